"""API tokens: creation (shown once), hashing, lookup, top-up, ban; each token's callback signing secret.

Tokens are 256-bit random strings, so one sha256 is enough to store them
safely (no dictionary to attack); lookup is by hash only.

Every token made gets a webhook signing secret with it (``models.tables.WebhookSecret``), shown
with the token. The server signs callback notifications with it, so it is stored as it is (a hash
could not sign). A secret of its own per token, rather than one derived from a server key: no key
has to be shared by every node (the data directories are per node), one leaked secret says
nothing about another's, and an admin can replace one token's secret without touching the rest.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlmodel import col

from models.db import read_sessions, uncancellable, writing
from models.tables import ApiToken, WebhookSecret
from models.video import iso_utc_ms
from server.credits import MAX_CREDITS, CreditsOutOfRange, check_credits


class TokenNameTaken(ValueError):
    """A token with this name exists already (HTTP 409)."""


TOKEN_PREFIX = "sv_"  # noqa: S105  (a marker, not a secret)
SECRET_PREFIX = "whsec_"  # noqa: S105  (a marker, not a secret)


_COUNT = select(func.count()).select_from(ApiToken)
#: The token lookup in SQLAlchemy Core: no ORM identity map on the path of every request.
_BY_HASH = select(
    *(
        col(getattr(ApiToken, name))
        for name in (
            "id",
            "name",
            "token_prefix",
            "credits",
            "unlimited",
            "banned",
            "is_admin",
            "created_at",
            "last_used_at",
        )
    )
).where(col(ApiToken.token_hash) == bindparam("digest"))


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    """A fresh random signing secret (256 bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token row without its hash, safe to print or return."""

    id: int
    name: str
    token_prefix: str
    credits: int
    unlimited: bool
    banned: bool
    is_admin: bool
    created_at: datetime
    last_used_at: datetime | None
    #: The callback signing secret, on the info ``create`` returns only (shown once, with the token);
    #: not part of the row's identity, and never in a repr (which logs may print).
    webhook_secret: str | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, row: ApiToken) -> TokenInfo:
        assert row.id is not None
        return cls(
            id=row.id,
            name=row.name,
            token_prefix=row.token_prefix,
            credits=row.credits,
            unlimited=row.unlimited,
            banned=row.banned,
            is_admin=row.is_admin,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
        )

    def to_json(self) -> dict[str, object]:
        shown: dict[str, object] = {"webhook_secret": self.webhook_secret} if self.webhook_secret else {}
        return {
            "id": self.id,
            "name": self.name,
            "token_prefix": self.token_prefix,
            "credits": None if self.unlimited else self.credits,
            "unlimited": self.unlimited,
            "banned": self.banned,
            "admin": self.is_admin,
            "created_at": iso_utc_ms(self.created_at),
            "last_used_at": iso_utc_ms(self.last_used_at) if self.last_used_at else None,
            **shown,
        }


class TokenStore:
    """Token operations over one session factory.

    ``lookup_cached`` (every authenticated request) is cached for ``cache_seconds``: credits are never
    taken from the cache (the charge is one guarded UPDATE), and this process's top-ups, bans and
    unbans drop it at once; another node's ban is seen within ``cache_seconds``, and the charge
    refuses a banned token meanwhile.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, cache_seconds: float = 2.0) -> None:
        self._sessions = sessions
        self._reads = read_sessions(sessions)
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, TokenInfo]] = {}

    @uncancellable
    async def create(
        self, *, name: str, credits: int = 0, unlimited: bool = False, admin: bool = False
    ) -> tuple[str, TokenInfo]:
        """Create a token and its signing secret; the plain token is returned here and never again
        (the info carries the secret, which an admin can also replace: ``rotate_webhook_secret``)."""
        check_credits(credits, "credits")
        token, row = _new_row(name=name, credits=credits, unlimited=unlimited, admin=admin)
        try:
            async with writing(self._sessions) as session:
                session.add(row)
                secret = await _add_secret(session, row)
        except IntegrityError as exc:
            raise TokenNameTaken(f"a token named {name!r} already exists; pick another name") from exc
        return token, replace(TokenInfo.of(row), webhook_secret=secret)

    async def webhook_secret(self, token_id: int) -> str | None:
        """The token's callback signing secret (None: made before callbacks existed, none yet)."""
        async with self._reads() as session:
            row = await session.get(WebhookSecret, token_id)
            return row.secret if row is not None else None

    @uncancellable
    async def rotate_webhook_secret(self, token_id: int) -> str:
        """Replace the token's signing secret (or give it its first); notifications sent from now on
        are signed with the new one."""
        secret = new_webhook_secret()
        async with writing(self._sessions) as session:
            if await session.get(ApiToken, token_id) is None:
                raise LookupError(f"no token {token_id}")
            await session.execute(delete(WebhookSecret).where(col(WebhookSecret.token_id) == token_id))
            session.add(WebhookSecret(token_id=token_id, secret=secret))
        return secret

    async def count(self) -> int:
        async with self._reads() as session:
            return int((await session.execute(_COUNT)).scalar_one())

    async def list(self) -> list[TokenInfo]:
        async with self._reads() as session:
            rows = (await session.execute(select(ApiToken).order_by(col(ApiToken.id)))).scalars().all()
            return [TokenInfo.of(r) for r in rows]

    async def lookup(self, token: str) -> TokenInfo | None:
        """The token's row as stored now, or None when unknown."""
        async with self._reads() as session:
            row = (await session.execute(_BY_HASH, {"digest": hash_token(token)})).first()
        return TokenInfo(**row._asdict()) if row else None

    async def lookup_cached(self, token: str) -> TokenInfo | None:
        """``lookup`` for authentication: a known token's row is reused for ``cache_seconds``
        (its ``credits`` may be stale; the charge reads its own), unknown tokens are never cached."""
        digest = hash_token(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        info = await self.lookup(token)
        if info is None:
            return None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self.cache_seconds, info)
        return info

    def forget(self) -> None:
        """Drop cached lookups (after a top-up, ban or unban in this process)."""
        self._cache.clear()

    async def find(self, ref: str) -> TokenInfo | None:
        """Find by exact name, else id, else printed prefix (names are unique; ids never clash with them
        because an all-digit name is looked up as a name first)."""
        tokens = await self.list()
        for matches in (
            [t for t in tokens if t.name == ref],
            [t for t in tokens if str(t.id) == ref],
            [t for t in tokens if t.token_prefix == ref],
        ):
            if matches:
                return matches[0]
        return None

    @uncancellable
    async def topup(self, token_id: int, amount: int) -> TokenInfo:
        """Add credits atomically (amount may be negative to correct, never below zero nor above the cap)."""
        check_credits(amount, "the top-up amount", allow_negative=True)
        self.forget()
        async with writing(self._sessions) as session:
            result = await session.execute(
                update(ApiToken)
                .where(
                    col(ApiToken.id) == token_id,
                    col(ApiToken.credits) + amount >= 0,
                    col(ApiToken.credits) + amount <= MAX_CREDITS,
                )
                .values(credits=ApiToken.credits + amount)
                .returning(ApiToken)
            )
            row = result.scalar_one_or_none()
        self.forget()  # again: a lookup racing the UPDATE may have cached the old row
        if row is None:
            if await self._exists(token_id):
                raise CreditsOutOfRange(
                    f"the top-up of {amount} would take the balance outside 0 to {MAX_CREDITS}"
                )
            raise LookupError(f"no token {token_id}")
        return TokenInfo.of(row)

    async def _exists(self, token_id: int) -> bool:
        async with self._reads() as session:
            return await session.get(ApiToken, token_id) is not None

    async def set_unlimited(self, token_id: int, unlimited: bool) -> TokenInfo:
        return await self._set(token_id, unlimited=unlimited)

    async def set_banned(self, token_id: int, banned: bool) -> TokenInfo:
        return await self._set(token_id, banned=banned)

    @uncancellable
    async def _set(self, token_id: int, **values: object) -> TokenInfo:
        self.forget()
        async with writing(self._sessions) as session:
            result = await session.execute(
                update(ApiToken).where(col(ApiToken.id) == token_id).values(**values).returning(ApiToken)
            )
            row = result.scalar_one_or_none()
        self.forget()  # again: a lookup racing the UPDATE may have cached the old row
        if row is None:
            raise LookupError(f"no token {token_id}")
        return TokenInfo.of(row)


def _new_row(*, name: str, credits: int, unlimited: bool, admin: bool) -> tuple[str, ApiToken]:
    """A fresh token and its row; the plain token exists only in the returned pair."""
    token = new_token()
    row = ApiToken(
        name=name,
        token_hash=hash_token(token),
        token_prefix=token[:10],
        credits=credits,
        unlimited=unlimited,
        is_admin=admin,
    )
    return token, row


async def _add_secret(session: AsyncSession, row: ApiToken) -> str:
    """Give a new token row its signing secret in the same transaction (flushes to learn its id)."""
    await session.flush()
    assert row.id is not None
    secret = new_webhook_secret()
    session.add(WebhookSecret(token_id=row.id, secret=secret))
    return secret


async def bootstrap_admin(connection: AsyncConnection) -> tuple[str, TokenInfo] | None:
    """Make the first-start admin token (unlimited) if no token exists; None when one does.

    Call it on ``models.db.upgrade_schema``'s connection: under that lock nodes starting together
    take turns, so one makes the token and the rest find it. An ``admin`` token made meanwhile some
    other way (``shortvid token create``) is a lost race too, not an error.
    """
    async with AsyncSession(bind=connection, expire_on_commit=False) as session:
        if (await session.execute(_COUNT)).scalar_one():
            return None
        token, row = _new_row(name="admin", credits=0, unlimited=True, admin=True)
        try:
            async with session.begin_nested():  # a savepoint: a clash must not undo the upgrade
                session.add(row)
                secret = await _add_secret(session, row)
        except IntegrityError:
            return None
        return token, replace(TokenInfo.of(row), webhook_secret=secret)
