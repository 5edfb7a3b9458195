"""Callbacks: a signed POST to the client's ``callback_url`` when its job ends, retried, never inward.

The URL is checked when the job is submitted (``check_callback_url``) and again at every attempt:
``https`` only, and every address its host resolves to must be public (no private, loopback,
link-local, multicast, reserved or unspecified address, IPv4-mapped forms included). At delivery
the check runs inside the HTTP client's resolver (``_CheckedResolver``), so the connection goes to
the very addresses that were checked: a name that resolved to a public address at the check and
to an internal one at the connect (DNS rebinding) is never reached. No proxy from the environment,
no redirects followed, a time limit per attempt, and at most ``_ERROR_BYTES`` of an answer read.

Delivery state lives in ``callbacks`` (an outbox row made with the job in one transaction), so it
survives restarts and is shown on the job. The loop (``WebhookDispatcher``) is woken when a job
ends (``JobEvents``: in process, or a NOTIFY from another node on PostgreSQL) and looks for due
rows every ``webhook_sweep_every`` seconds besides (retries, a restart). Claiming a row pushes its
``next_attempt_at`` past the attempt's time limit, so of several nodes one delivers (PostgreSQL:
``FOR UPDATE SKIP LOCKED``; SQLite: one writer) and a node dying mid-attempt leaves the row due
again. Delivery is therefore at least once: receivers dedupe by job id.

The body is compact JSON; ``X-Shortvid-Signature: sha256=<hex>`` is HMAC-SHA256 of exactly those
bytes with the token's secret (``server.tokens``). ``sent_at`` in the body (also the
``X-Shortvid-Timestamp`` header, in Unix seconds) lets receivers refuse old replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from yarl import URL

from models.rows import JobRow
from models.tables import Callback, CallbackState, Job, JobErrorCode, JobState, WebhookSecret
from models.transactions import transactions
from models.types import utcnow
from models.video import iso_utc_ms
from server.queue import JobQueue
from server.settings import Settings

log = logging.getLogger(__name__)

MAX_URL_LENGTH = 2048
SIGNATURE_HEADER = "X-Shortvid-Signature"
TIMESTAMP_HEADER = "X-Shortvid-Timestamp"
JOB_HEADER = "X-Shortvid-Job-Id"
EVENT = "job.finished"
#: How much of a failed answer's body is kept in ``last_error`` (and all that is ever read).
_ERROR_BYTES = 200
_RESOLVE_TIMEOUT = 5.0
#: Past an attempt's time limit, before a claimed row is due again (its node is presumed dead).
_CLAIM_MARGIN = timedelta(seconds=30)
#: Retry delays grow by this factor: base, base x 4, ...
_BACKOFF = 4


class BadCallback(ValueError):
    """A callback URL we will not call; the message says what to fix (a 400 at submit)."""


class UnsafeAddress(OSError):
    """A host resolved to an address callbacks may not reach (raised inside the HTTP client's resolver,
    which aiohttp reports as a DNS error)."""


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the low 32 bits are an IPv4 address


def _embedded_ipv4(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, Teredo), which is the one reached;
    else the address itself. Python reports e.g. 64:ff9b::7f00:1 as global, yet it is 127.0.0.1."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # (server, client): the client is the one traffic reaches
    return address


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which addresses callbacks may reach: public ones; loopback too only when a test says so."""

    allow_loopback: bool = False

    def refusal(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        """Why ``address`` may not be called, or None when it may."""
        address = _embedded_ipv4(address)
        if address.is_loopback:
            return None if self.allow_loopback else "a loopback address"
        for refused, reason in (
            (address.is_unspecified, "an unspecified address"),
            (address.is_link_local, "a link-local address"),
            (address.is_multicast, "a multicast address"),
            (address.is_private, "a private address"),
            (address.is_reserved, "a reserved address"),
            (not address.is_global, "a non-public address"),
        ):
            if refused:
                return reason
        return None

    def check(self, host: str, addresses: Sequence[str]) -> None:
        """Raise UnsafeAddress unless every one of ``addresses`` (of ``host``) may be called."""
        if not addresses:
            raise UnsafeAddress(f"{host} resolved to no address")
        for text in addresses:
            reason = self.refusal(ipaddress.ip_address(text.split("%", 1)[0]))
            if reason is not None:
                raise UnsafeAddress(f"{host} resolves to {text}, {reason}; callbacks only go to public hosts")


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def parse_callback_url(value: object, *, allow_http: bool = False) -> URL:
    """The URL if its form is acceptable (no network), else BadCallback saying what to fix."""
    if not isinstance(value, str) or not value:
        raise BadCallback('"callback_url" must be a non-empty string (an https:// URL).')
    if len(value) > MAX_URL_LENGTH or not value.isascii() or not value.isprintable() or " " in value:
        raise BadCallback(
            f'"callback_url" must be an https:// URL of at most {MAX_URL_LENGTH} printable ASCII characters.'
        )
    try:
        url = URL(value)
        host = url.host
        port = url.port
    except ValueError as exc:
        raise BadCallback(f'"callback_url" is not a valid URL: {exc}.') from exc
    schemes = ("https", "http") if allow_http else ("https",)
    if url.scheme not in schemes:
        raise BadCallback('"callback_url" must start with https:// (callbacks are sent over TLS only).')
    if not host or port is None:
        raise BadCallback('"callback_url" must name a host, e.g. https://hooks.example.com/shortvid.')
    if url.user is not None or url.password is not None:
        raise BadCallback('"callback_url" must not carry a user name or password; use a secret path.')
    return url


async def _resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (TCP), through the system resolver."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(_RESOLVE_TIMEOUT):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


async def check_callback_url(value: object, *, allow_http: bool, policy: AddressPolicy) -> str:
    """The URL to store, once its form and every address of its host passed; else BadCallback."""
    url = parse_callback_url(value, allow_http=allow_http)
    host, port = url.host or "", url.port or 443
    literal = _literal(host)
    try:
        if literal is not None:
            policy.check(host, [str(literal)])
        else:
            try:
                addresses = await _resolve(host, port)
            except (OSError, TimeoutError) as exc:
                raise BadCallback(f'"callback_url" host {host!r} does not resolve; check the name.') from exc
            policy.check(host, addresses)
    except UnsafeAddress as exc:
        raise BadCallback(f'"callback_url" is refused: {exc}.') from exc
    return str(url)


class _CheckedResolver(AbstractResolver):
    """The HTTP client's resolver: resolves once and refuses the connection unless every address
    passes the policy, so the connection goes to an address that was checked."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        self._policy.check(host, [result["host"] for result in results])
        return results

    async def close(self) -> None:
        await self._inner.close()


def signature(secret: str, body: bytes) -> str:
    """The ``X-Shortvid-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def notification(
    job: JobRow, *, result_url: str, attempt: int, sent_at: datetime, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a callback says: which job, how it ended, where to read it; small on purpose."""
    failed = job.state == JobState.FAILED
    code = JobErrorCode.public(job.error_code) if failed else None
    return {
        "event": EVENT,
        "id": job.id,
        "type": job.type,
        "state": job.state,
        "error_code": code,
        "retryable": (code in JobErrorCode.RETRYABLE) if code is not None else None,
        "result_url": result_url,
        "finished_at": iso_utc_ms(job.finished_at) if job.finished_at else None,
        "sent_at": iso_utc_ms(sent_at),
        "attempt": attempt,
        **(extra or {}),
    }


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this node took: one attempt is ours to make."""

    job_id: str
    url: str
    result_url: str
    attempt: int
    secret: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt went; ``final``: no further attempt (delivered, or never deliverable)."""

    delivered: bool
    error: str | None = None
    status: int | None = None
    final: bool = False


_FINISHED = or_(*(col(Job.state) == state for state in JobState.FINISHED))
_PENDING = col(Callback.state) == CallbackState.PENDING


class CallbackStore:
    """The ``callbacks`` rows: claim due deliveries, record attempts, show a job's delivery."""

    def __init__(
        self, engine: AsyncEngine, *, attempts: int, retry_base: timedelta, lease: timedelta
    ) -> None:
        self._tx = transactions(engine)
        self.attempts = attempts
        self.retry_base = retry_base
        self.lease = lease

    @classmethod
    def for_settings(cls, engine: AsyncEngine, settings: Settings) -> CallbackStore:
        """Attempts and backoff as configured; a claim lasts an attempt's limit and a margin."""
        return cls(
            engine,
            attempts=settings.webhook_attempts,
            retry_base=settings.webhook_retry_base,
            lease=settings.webhook_timeout + _CLAIM_MARGIN,
        )

    async def claim(self, *, limit: int, now: datetime | None = None) -> list[Claimed]:
        """Take up to ``limit`` due deliveries of ended jobs for one attempt each; fail those whose
        last attempt was interrupted (a node died in it)."""
        at = now or utcnow()
        due = (
            select(
                col(Callback.job_id),
                col(Callback.url),
                col(Callback.result_url),
                col(Callback.attempts),
                col(WebhookSecret.secret),
            )
            .join(Job, col(Job.id) == col(Callback.job_id))
            .outerjoin(WebhookSecret, col(WebhookSecret.token_id) == col(Job.token_id))
            .where(
                _PENDING,
                col(Callback.next_attempt_at) <= at,
                col(Callback.attempts) < self.attempts,
                _FINISHED,
            )
            .order_by(col(Callback.next_attempt_at))
            .limit(limit)
            .with_for_update(skip_locked=True, of=Callback)
        )
        interrupted = (
            update(Callback)
            .where(_PENDING, col(Callback.next_attempt_at) <= at, col(Callback.attempts) >= self.attempts)
            .values(
                state=CallbackState.FAILED,
                last_error="the last attempt was interrupted (the node delivering it stopped)",
                updated_at=at,
            )
        )

        def take(connection: Connection) -> list[Claimed]:
            connection.execute(interrupted)
            taken: list[Claimed] = []
            for job_id, url, result_url, attempts, secret in connection.execute(due).all():
                moved = connection.execute(
                    update(Callback)
                    .where(
                        col(Callback.job_id) == job_id,
                        _PENDING,
                        col(Callback.attempts) == attempts,
                    )
                    .values(attempts=attempts + 1, next_attempt_at=at + self.lease, updated_at=at)
                ).rowcount
                if moved:
                    taken.append(Claimed(job_id, url, result_url, attempts + 1, secret))
            return taken

        return await self._tx.write(take)

    async def record(self, claimed: Claimed, outcome: Outcome, *, now: datetime | None = None) -> str:
        """Store an attempt's outcome; the delivery's state after it."""
        at = now or utcnow()
        values: dict[str, Any]
        if outcome.delivered:
            state, values = CallbackState.DELIVERED, {"delivered_at": at, "last_error": None}
        elif outcome.final or claimed.attempt >= self.attempts:
            state, values = CallbackState.FAILED, {"last_error": _clip(outcome.error)}
        else:
            retry = self.retry_base * (_BACKOFF ** (claimed.attempt - 1))
            state = CallbackState.PENDING
            values = {"last_error": _clip(outcome.error), "next_attempt_at": at + retry}
        statement = (
            update(Callback)
            .where(  # still our attempt, and still pending: a row another node closed stays closed
                col(Callback.job_id) == claimed.job_id, col(Callback.attempts) == claimed.attempt, _PENDING
            )
            .values(state=state, last_status=outcome.status, updated_at=at, **values)
        )
        await self._tx.write(lambda connection: connection.execute(statement), one_statement=True)
        return state

    async def next_due(self) -> datetime | None:
        """When the soonest pending delivery of an ended job is due (None: none is)."""
        statement = (
            select(func.min(col(Callback.next_attempt_at)))
            .join(Job, col(Job.id) == col(Callback.job_id))
            .where(and_(_PENDING, _FINISHED))
        )
        when: datetime | None = await self._tx.read(lambda connection: connection.execute(statement).scalar())
        return when

    async def view(self, job_id: str) -> dict[str, Any] | None:
        """The delivery as the job view shows it: ``{url, state, attempts, last_error, ...}``."""
        statement = select(
            col(Callback.url),
            col(Callback.state),
            col(Callback.attempts),
            col(Callback.last_error),
            col(Callback.last_status),
            col(Callback.delivered_at),
        ).where(col(Callback.job_id) == job_id)
        row = await self._tx.read(lambda connection: connection.execute(statement).first())
        if row is None:
            return None
        url, state, attempts, last_error, last_status, delivered_at = row
        return {
            "url": url,
            "state": state,
            "attempts": attempts,
            "last_error": last_error,
            "last_status": last_status,
            "delivered_at": iso_utc_ms(delivered_at) if delivered_at else None,
        }


def _clip(error: str | None) -> str | None:
    return error[:500] if error else error


#: Extra fields of a job's notification (a channel task's ``status``), by the app's wiring.
Describe = Callable[[JobRow], Awaitable[dict[str, Any]]]


async def _nothing_more(job: JobRow) -> dict[str, Any]:
    return {}


class WebhookDispatcher:
    """This process's delivery loop: woken by job ends (``kick``), it claims due deliveries and makes
    one attempt each, a few at a time."""

    #: Deliveries claimed (and attempted at once) per round.
    batch = 8
    #: A pause between rounds, so a stream of job ends costs a few claim queries a second, not one each.
    min_gap = 0.05

    def __init__(
        self,
        store: CallbackStore,
        queue: JobQueue,
        settings: Settings,
        *,
        describe: Describe = _nothing_more,
    ) -> None:
        self.store = store
        self.queue = queue
        self.settings = settings
        self.describe = describe
        self.policy = AddressPolicy(allow_loopback=settings.webhook_allow_loopback)
        self._kicked = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None

    def kick(self, _job_id: str = "") -> None:
        """A job ended somewhere: look for due deliveries now (``JobEvents.on_end``)."""
        self._kicked.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[WebhookDispatcher]:
        """The HTTP client and the loop, for the block (the loop is cancelled and awaited on exit)."""
        resolver = _CheckedResolver(self.policy)
        connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False, limit=32)
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout.total_seconds())
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, trust_env=False, auto_decompress=False
        ) as http:
            self._http = http
            task = asyncio.create_task(self._run(), name="webhook-deliveries")
            try:
                yield self
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                self._http = None

    async def _run(self) -> None:
        sweep = self.settings.webhook_sweep_every.total_seconds()
        while True:
            self._kicked.clear()  # before looking: a job ending meanwhile wakes the wait below
            wait = sweep
            try:
                # A read first: most job ends have no callback, and a claim is a write transaction.
                due = await self.store.next_due()
                if due is not None and due <= utcnow():
                    await self.deliver_due()
                    due = await self.store.next_due()
                if due is not None:
                    wait = min(sweep, max((due - utcnow()).total_seconds(), 0.0))
            except Exception:
                log.exception("callback delivery round failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._kicked.wait()
            await asyncio.sleep(self.min_gap)

    async def deliver_due(self) -> int:
        """Attempt every delivery due now; how many attempts were made."""
        made = 0
        while claimed := await self.store.claim(limit=self.batch):
            await asyncio.gather(*(self._deliver(c) for c in claimed))
            made += len(claimed)
        return made

    async def _deliver(self, claimed: Claimed) -> None:
        try:
            outcome = await self.attempt(claimed)
        except Exception as exc:  # ours, not the receiver's: retried like a failed attempt
            log.exception("callback attempt raised", extra={"job_id": claimed.job_id})
            outcome = Outcome(delivered=False, error=f"internal error: {exc!r}")
        state = await self.store.record(claimed, outcome)
        log.info(
            "callback %s",
            state,
            extra={
                "job_id": claimed.job_id,
                "attempt": claimed.attempt,
                "status": outcome.status,
                "error": outcome.error,
            },
        )

    async def attempt(self, claimed: Claimed) -> Outcome:
        """One POST of the job's notification, signed; checked again first."""
        if claimed.secret is None:
            return Outcome(delivered=False, error="the token has no signing secret", final=True)
        job = await self.queue.get(claimed.job_id)
        if job is None:
            return Outcome(delivered=False, error="the job no longer exists", final=True)
        try:
            url = parse_callback_url(claimed.url, allow_http=self.settings.webhook_allow_http)
            literal = _literal(url.host or "")
            if literal is not None:  # aiohttp connects to a literal without asking the resolver
                self.policy.check(url.host or "", [str(literal)])
        except (BadCallback, UnsafeAddress) as exc:
            return Outcome(delivered=False, error=str(exc), final=True)
        sent_at = utcnow()
        body = json.dumps(
            notification(
                job,
                result_url=claimed.result_url,
                attempt=claimed.attempt,
                sent_at=sent_at,
                extra=await self.describe(job),
            ),
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "shortvid-callbacks/1",
            SIGNATURE_HEADER: signature(claimed.secret, body),
            TIMESTAMP_HEADER: str(int(sent_at.timestamp())),
            JOB_HEADER: job.id,
        }
        assert self._http is not None, "deliveries run inside running()"
        try:
            async with self._http.post(url, data=body, headers=headers, allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    return Outcome(delivered=True, status=response.status)
                if 300 <= response.status < 400:
                    error = f"HTTP {response.status}: redirects are not followed; call back the final URL"
                    return Outcome(delivered=False, status=response.status, error=error)
                head = await response.content.read(_ERROR_BYTES)
                text = head.decode("utf-8", "replace").strip()
                return Outcome(
                    delivered=False,
                    status=response.status,
                    error=f"HTTP {response.status}" + (f": {text}" if text else ""),
                )
        except aiohttp.ClientConnectorDNSError as exc:
            if isinstance(exc.os_error, UnsafeAddress):
                return Outcome(delivered=False, error=str(exc.os_error), final=True)
            return Outcome(delivered=False, error=f"could not resolve {url.host}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Outcome(delivered=False, error=f"{type(exc).__name__}: {exc}".rstrip(": "))


CALLBACKS = web.AppKey("callbacks", CallbackStore)
DISPATCHER = web.AppKey("webhook_dispatcher", WebhookDispatcher)
