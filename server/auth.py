"""Bearer authentication, bans, a per-token request rate limit, and the vendor's error bodies."""

from __future__ import annotations

import time
from collections import defaultdict, deque

from aiohttp import web

from server.error_map import ApiError
from server.keys import TOKENS
from server.tokens import TokenInfo

MISSING_TOKEN = 'Unauthorized: Missing or invalid token format. Use "Bearer <token>"'
INVALID_TOKEN = "Unauthorized: Invalid token. Check the token or ask the admin for a new one."
BANNED = "Forbidden: Your account has been banned. Contact admin."


def insufficient_credits(need: int, have: int) -> str:
    return f"Payment Required: Insufficient credits. You need {need} credits, but have {have}."


class RateLimiter:
    """Sliding one-minute window per token, in this process (each API node limits its own share)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: defaultdict[int, deque[float]] = defaultdict(deque)

    def allow(self, token_id: int, *, now: float | None = None) -> bool:
        if self.per_minute <= 0:
            return True
        now = time.monotonic() if now is None else now
        hits = self._hits[token_id]
        while hits and hits[0] <= now - 60:
            hits.popleft()
        if len(hits) >= self.per_minute:
            return False
        hits.append(now)
        return True


RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)


def bearer_token(request: web.Request) -> str:
    """The token from ``Authorization: Bearer <token>`` or a 401 in the vendor's words."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _token_shaped(token):
        raise ApiError(401, MISSING_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    return token


def _token_shaped(token: str) -> bool:
    """Printable ASCII without spaces, at most 200 characters.

    aiohttp hands undecodable header bytes over as surrogate escapes (``Bearer \\udcff``);
    those, like any non-ASCII or control character, can be no token of ours, so they are a
    401 here rather than an encoding error when the token is hashed.
    """
    return 0 < len(token) <= 200 and token.isascii() and token.isprintable() and " " not in token


async def authenticate(request: web.Request) -> TokenInfo:
    """The caller's token row; 401 unknown, 403 banned, 429 over its request rate."""
    token = bearer_token(request)
    info = await request.app[TOKENS].lookup_cached(token)
    if info is None:
        raise ApiError(401, INVALID_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    if info.banned:
        raise ApiError(403, BANNED)
    if not request.app[RATE_LIMITER].allow(info.id):
        raise ApiError(
            429,
            f"Too Many Requests: more than {request.app[RATE_LIMITER].per_minute} requests a minute"
            " for this token. Slow down and retry.",
            headers={"Retry-After": "60"},
        )
    return info
