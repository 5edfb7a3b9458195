"""Bearer authentication, bans, a per-token request rate limit, and the vendor's error bodies.

Once a request's token is known (not on a 401, nor a banned token's 403), its answer carries the
token's standing: ``X-RateLimit-Limit`` (requests a minute), ``X-RateLimit-Remaining`` (left in
the window after this one) and ``X-RateLimit-Reset`` (GitHub's convention: the Unix time, in
seconds, at which the oldest request in the sliding window leaves it and ``Remaining`` goes up);
a 429 adds ``Retry-After`` (seconds until then). ``server.middleware.stamp_headers`` writes them.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from aiohttp import web

from server.error_map import ApiError
from server.keys import TOKENS
from server.tokens import TokenInfo

MISSING_TOKEN = 'Unauthorized: Missing or invalid token format. Use "Bearer <token>"'
INVALID_TOKEN = "Unauthorized: Invalid token. Check the token or ask the admin for a new one."
BANNED = "Forbidden: Your account has been banned. Contact admin."


def insufficient_credits(need: int, have: int) -> str:
    return f"Payment Required: Insufficient credits. You need {need} credits, but have {have}."


@dataclass(frozen=True, slots=True)
class RateDecision:
    """One request against its token's limit, and what the ``X-RateLimit-*`` headers say about it."""

    allowed: bool
    limit: int
    remaining: int
    #: Seconds until the oldest request in the window leaves it (then ``remaining`` goes up).
    reset_after: float

    def headers(self, *, wall_now: float | None = None) -> dict[str, str]:
        """``X-RateLimit-Limit/Remaining/Reset``, Reset as GitHub's: the Unix time in whole seconds
        (rounded up) when a request slot frees; a refusal adds ``Retry-After`` in seconds."""
        now = time.time() if wall_now is None else wall_now
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(now + self.reset_after)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.reset_after)))
        return headers


class RateLimiter:
    """Sliding one-minute window per token, in this process (each API node limits its own share)."""

    WINDOW = 60.0

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: defaultdict[int, deque[float]] = defaultdict(deque)

    def allow(self, token_id: int, *, now: float | None = None) -> bool:
        return self.check(token_id, now=now).allowed

    def check(self, token_id: int, *, now: float | None = None) -> RateDecision:
        """Count this request if the window has room (with the limit off, 0, every request has)."""
        if self.per_minute <= 0:
            return RateDecision(allowed=True, limit=0, remaining=0, reset_after=0.0)
        now = time.monotonic() if now is None else now
        hits = self._hits[token_id]
        while hits and hits[0] <= now - self.WINDOW:
            hits.popleft()
        allowed = len(hits) < self.per_minute
        if allowed:
            hits.append(now)
        return RateDecision(
            allowed=allowed,
            limit=self.per_minute,
            remaining=self.per_minute - len(hits),
            reset_after=max(0.0, hits[0] + self.WINDOW - now),
        )


RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
#: The authenticated request's decision, for the response's ``X-RateLimit-*`` headers.
RATE_DECISION = web.RequestKey("rate_decision", RateDecision)


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
    limiter = request.app[RATE_LIMITER]
    decision = limiter.check(info.id)
    if limiter.per_minute > 0:
        request[RATE_DECISION] = decision  # every answer from here on says where the token stands
    if not decision.allowed:
        raise ApiError(
            429,
            f"Too Many Requests: more than {limiter.per_minute} requests a minute"
            " for this token. Slow down and retry.",
            headers={"Retry-After": str(max(1, math.ceil(decision.reset_after)))},
        )
    return info
