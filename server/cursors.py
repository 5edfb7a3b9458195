"""Opaque channel cursors: where a listing stopped, in a URL-safe token only this server makes.

A channel result with ``has_more`` carries ``cursor``; a channel request that sends it back lists
the next page. The token holds the platform, the account (the request's canonical URL, the
sec_uid and the TikTok handle), the query it continues (count, ``since`` as resolved then and as
typed, time zone) and the ``scraper.channel.Resume`` (last post returned, the platform's cursor
of the page to read next, whether pinned posts are still to come). It is
``base64url(JSON) "." base64url(HMAC-SHA256(key, JSON))[:16 bytes]``: the MAC is checked before
anything is read, and what it covers is validated field by field again (a key leaked or reused
must not make a cursor a way in), so a garbled, forged or foreign cursor is a 400, never a 500.
Nothing in a cursor is ever loaded: the account is checked against the request's own URL, which
was validated as every URL is, and the platform cursor is a bounded integer.

The key: ``SHORTVID_CURSOR_KEY`` when set (nodes that share a database must share it, or a
cursor made by one node's worker is refused by another's API), else a random key kept in the
data directory (``cursor.key``), made once. The cursor key is derived from it by HMAC, so the
configured secret is never used as is.

Paging follows Google's AIP-158: ``count`` (the page size) may change between pages; ``since``
and ``tz`` are the cursor's, and a request that names them must name the same ones.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from models.rows import JobRow
from models.video import Author
from scraper.channel import Position, Resume
from scraper.errors import ScraperError
from scraper.hosts import Platform
from scraper.since import MAX_COUNT, parse_timezone
from scraper.urls import ParsedUrl, classify
from server.error_map import bad_request
from server.job_routes import route_for
from server.settings import Settings

log = logging.getLogger(__name__)

KEY_ENV = "SHORTVID_CURSOR_KEY"
KEY_FILE = "cursor.key"
#: A cursor is a few hundred characters; anything much longer is not one of ours.
MAX_CURSOR_CHARS = 2048
_VERSION = 1
_MAC_BYTES = 16
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,2000}\.[A-Za-z0-9_-]{22}")
_IDENT = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PLATFORMS: tuple[Platform, ...] = ("douyin", "tiktok")
_MAX_MS = 2**53
_MAX_PAGE = 2**63 - 1
_FIELDS = frozenset("vpushcztiagn")

GARBLED = (
    'Invalid "cursor": it is not a cursor this server made, or it was changed. Send the "cursor" of a'
    " channel result back exactly as it came, or leave it out to list from the newest post."
)


class BadCursor(ValueError):
    """A cursor that is not one of ours, or not for this request (HTTP 400 with the message)."""


@dataclass(frozen=True, slots=True)
class ListingCursor:
    """What a cursor says: whose listing, which query, and where its next page starts."""

    platform: Platform
    url: str
    account: str | None
    handle: str | None
    count: int
    tz: str
    since: str | None
    since_input: str | None
    resume: Resume

    def to_json(self) -> dict[str, Any]:
        after = self.resume.after
        return {
            "v": _VERSION,
            "p": self.platform,
            "u": self.url,
            "s": self.account,
            "h": self.handle,
            "c": self.count,
            "z": self.tz,
            "t": self.since,
            "i": self.since_input,
            "a": [after.created_ms, after.video_id],
            "g": self.resume.page,
            "n": self.resume.pinned,
        }

    def same_account(self, parsed: ParsedUrl) -> bool:
        """``parsed`` (the request's URL) names the account this cursor continues."""
        if parsed.platform != self.platform:
            return False
        if parsed.canonical_url == self.url:
            return True
        if parsed.kind != "user" or not parsed.user:
            return False
        if self.platform == "douyin":
            return parsed.user == self.account
        return self.handle is not None and parsed.user.casefold() == self.handle.casefold()


# --- the token ----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def encode(cursor: ListingCursor, key: bytes) -> str:
    payload = json.dumps(cursor.to_json(), separators=(",", ":"), ensure_ascii=True).encode()
    return f"{_b64(payload)}.{_b64(_mac(key, payload))}"


def decode(token: object, key: bytes) -> ListingCursor:
    """The cursor ``token`` holds; ``BadCursor`` for anything this server did not make."""
    if not isinstance(token, str):
        raise BadCursor(f'"cursor" must be a string (the "cursor" of a channel result), not {_kind(token)}.')
    if not 0 < len(token) <= MAX_CURSOR_CHARS or not _TOKEN.fullmatch(token):
        raise BadCursor(GARBLED)
    body, _, mac = token.partition(".")
    try:
        payload, sent = _unb64(body), _unb64(mac)
    except (binascii.Error, ValueError):
        raise BadCursor(GARBLED) from None
    if not hmac.compare_digest(_mac(key, payload), sent):
        log.info(
            "a cursor failed its signature check (garbled, forged, or made with another key: nodes"
            " that share a database must share %s)",
            KEY_ENV,
        )
        raise BadCursor(GARBLED)
    try:
        return _read(json.loads(payload))
    except (ValueError, TypeError, KeyError, RecursionError, ScraperError):  # signed, yet not our shape
        raise BadCursor(GARBLED) from None


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _read(raw: Any) -> ListingCursor:
    """Every field checked for its type and bounds; ValueError for the first that is off."""
    if not isinstance(raw, dict) or set(raw) != _FIELDS or raw["v"] != _VERSION:
        raise ValueError("not a cursor of this version")
    platform = raw["p"]
    if platform not in _PLATFORMS:
        raise ValueError("platform")
    url = _text(raw["u"], 512)
    parsed = classify(url) if url else None
    if parsed is None or parsed.platform != platform or parsed.canonical_url != url:
        raise ValueError("url")
    created_ms, video_id = raw["a"]
    if not _int(created_ms, -1, _MAX_MS) or not _VIDEO_ID.fullmatch(_text(video_id, 64)):
        raise ValueError("after")
    page, pinned, count = raw["g"], raw["n"], raw["c"]
    if not _int(page, 0, _MAX_PAGE) or not isinstance(pinned, bool) or not _int(count, 1, MAX_COUNT):
        raise ValueError("page, pinned or count")
    tz = _text(raw["z"], 64)
    parse_timezone(tz, "UTC")  # its BadChannelParameter is a ValueError
    since, since_input = raw["t"], raw["i"]
    if since is not None and datetime.fromisoformat(_text(since, 40)).tzinfo is None:
        raise ValueError("since")
    if since_input is not None:
        _text(since_input, 16)
    account = _ident(raw["s"])
    return ListingCursor(
        platform=cast(Platform, platform),
        url=url,
        account=account,
        handle=_ident(raw["h"]),
        count=count,
        tz=tz,
        since=since,
        since_input=since_input,
        resume=Resume(after=Position(created_ms, video_id), page=page, pinned=pinned, account=account),
    )


def _text(value: object, limit: int) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit or not value.isprintable():
        raise ValueError("text")
    return value


def _int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _ident(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _IDENT.fullmatch(value):
        raise ValueError("identifier")
    return value


def _safe_ident(value: str | None) -> str | None:
    """An account id as a cursor can hold it; one of another shape is left out (the URL still binds)."""
    return value if value is not None and _IDENT.fullmatch(value) else None


# --- the key ------------------------------------------------------------------------------------


def cursor_key(settings: Settings) -> bytes:
    """This server's cursor key (see the module docstring for where it comes from)."""
    configured = settings.cursor_key.get_secret_value() if settings.cursor_key else None
    return _derived_key(settings.data_dir.resolve(), configured)


@functools.lru_cache(maxsize=8)
def _derived_key(data_dir: Path, configured: str | None) -> bytes:
    secret = configured.encode() if configured else _key_file(data_dir)
    return hmac.new(secret, b"shortvid channel cursor v1", hashlib.sha256).digest()


def _key_file(data_dir: Path) -> bytes:
    """The data directory's key, made at first use; a process racing to make it takes the winner's."""
    path = data_dir / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    draft = data_dir / f".{KEY_FILE}.{secrets.token_hex(8)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)  # atomic: never a half-written key, and never two keys
    finally:
        draft.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no cursor key; delete it to have a new one made")
    return key.encode()


# --- requests and jobs --------------------------------------------------------------------------


def continue_listing(
    options: dict[str, Any], body: dict[str, Any], parsed: ParsedUrl, settings: Settings
) -> dict[str, Any]:
    """``options`` (a channel route's, validated) continued from the body's ``cursor``, if any.

    The cursor fixes ``since`` and ``tz``; ``count`` is the body's if it names one, else the
    cursor's. Raises a 400 ``ApiError`` for a cursor that is garbled, of another platform or
    account, or that contradicts the body's ``since`` or ``tz``.
    """
    token = body.get("cursor")
    if token is None:
        return options
    try:
        cursor = decode(token, cursor_key(settings))
    except BadCursor as exc:
        raise bad_request(str(exc)) from exc
    if cursor.platform != parsed.platform:
        raise bad_request(
            f'Invalid "cursor": it continues a {cursor.platform} listing; send it to'
            f" POST {route_for(cursor.platform, 'channel.videos').path} with that profile's URL."
        )
    if not cursor.same_account(parsed):
        raise bad_request(
            f'Invalid "cursor": it continues the listing of another account ({cursor.url}); send it with'
            " that profile's URL, or leave it out to list this one from its newest post."
        )
    _same_query(cursor, options, body)
    return {
        **options,
        "count": options["count"] if body.get("count") is not None else cursor.count,
        "since": cursor.since,
        "since_input": cursor.since_input,
        "tz": cursor.tz,
        "cursor": resume_json(cursor.resume),
    }


def _same_query(cursor: ListingCursor, options: dict[str, Any], body: dict[str, Any]) -> None:
    """A ``since`` or ``tz`` in the body must be the listing's: the same words or the same day."""
    if body.get("tz") is not None and options["tz"] != cursor.tz:
        raise bad_request(
            f'"tz" {options["tz"]!r} is not the time zone of the listing the cursor continues'
            f" ({cursor.tz!r}); leave it out or send the same."
        )
    since = body.get("since")
    if since is None:
        return
    typed = isinstance(since, str) and cursor.since_input is not None
    same_words = typed and since.strip().lower() == str(cursor.since_input).strip().lower()
    if not same_words and options["since"] != cursor.since:
        listed = f'"{cursor.since_input}"' if cursor.since_input is not None else "no since"
        raise bad_request(
            f'"since" {since!r} is not the day of the listing the cursor continues ({listed});'
            " leave it out or send the same."
        )


def resume_json(resume: Resume) -> dict[str, Any]:
    """A ``Resume`` as the job's payload keeps it (and its dedupe key hashes it)."""
    after = resume.after
    return {
        "after": [after.created_ms, after.video_id],
        "page": resume.page,
        "pinned": resume.pinned,
        "account": resume.account,
    }


def resume_of(payload: Mapping[str, Any]) -> Resume | None:
    """The ``Resume`` a job's payload carries (``continue_listing`` put it there), if any."""
    raw = payload.get("cursor")
    if not isinstance(raw, dict):
        return None
    created_ms, video_id = raw["after"]
    return Resume(
        after=Position(int(created_ms), str(video_id)),
        page=int(raw["page"]),
        pinned=bool(raw["pinned"]),
        account=raw.get("account"),
    )


def cursor_maker(job: JobRow, settings: Settings) -> Callable[[Resume, Author], str]:
    """How ``job`` (a channel listing) turns where its next page starts into its result's cursor."""
    payload = job.payload
    key = cursor_key(settings)
    platform = classify(job.url).platform
    typed = payload.get("since_input")
    since_input = typed.strip().lower() if isinstance(typed, str) else None  # "today", "yesterday", a date

    def make(resume: Resume, author: Author) -> str:
        account = _safe_ident(resume.account)
        return encode(
            ListingCursor(
                platform=platform,
                url=job.url,
                account=account,
                handle=_safe_ident(author.unique_id) if platform == "tiktok" else None,
                count=int(payload["count"]),
                tz=str(payload["tz"]),
                since=payload.get("since"),
                since_input=since_input,
                resume=replace(resume, account=account),
            ),
            key,
        )

    return make
