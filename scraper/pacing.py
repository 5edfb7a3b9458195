"""Pacing per identity: a token bucket per endpoint family, so one session never asks too fast.

The real sites block an identity that sends requests faster than a person would (issue 11:
twenty requests in 13 s from one address, all refused). A session therefore spends a token of
its family's bucket before each request it makes, and the pool leases the session whose bucket
lets it go soonest. Families and their limits are data (``[pacing]`` in ``playwright.config``):

* ``item``: an item's page load or detail API call;
* ``posts``: one page of an author's posts (the posts API, however it is triggered);
* ``page``: other page loads and their side requests (profile pages, the profile API).

The defaults are Evil0ctal/Douyin_TikTok_Download_API v5's per-identity endpoint policies
(src/dtk/scheduler/policies.py: ``content_detail`` capacity 5 at 0.30/s, ``author_posts`` 3 at
0.12/s, ``author_profile`` 4 at 0.20/s, the same for Douyin and TikTok).

Time is read from an injected clock and waits go through an injected sleep, so the maths is
tested without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: The family of an item (video page load, item detail API call).
ITEM = "item"
#: The family of one page of an author's posts.
POSTS = "posts"
#: Other page loads: profile pages and the requests their app makes for the profile.
PAGE = "page"


@dataclass(frozen=True, slots=True)
class Limit:
    """A family's limit: ``rate`` tokens per second on average, at most ``burst`` at once."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"a pacing rate is tokens per second above 0, not {self.rate!r}")
        if self.burst < 1:
            raise ValueError(f"a pacing burst is at least 1 token, not {self.burst!r}")


#: Family -> limit, as v5 publishes them (src/dtk/scheduler/policies.py, see the module docstring).
DEFAULT_LIMITS: tuple[tuple[str, Limit], ...] = (
    (ITEM, Limit(rate=0.30, burst=5)),
    (POSTS, Limit(rate=0.12, burst=3)),
    (PAGE, Limit(rate=0.20, burst=4)),
)


class TokenBucket:
    """Starts full; refills continuously at ``rate`` up to ``burst``; a request spends ``cost``.

    A cost above the burst could never be met, so it is clamped to it: the request waits for a
    full bucket and empties it.
    """

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self._tokens = float(limit.burst)
        self._stamp = now

    def tokens(self, now: float) -> float:
        """Tokens available at ``now`` (a clock that steps back adds none)."""
        elapsed = max(0.0, now - self._stamp)
        return min(float(self.limit.burst), self._tokens + elapsed * self.limit.rate)

    def wait_time(self, now: float, cost: float = 1.0) -> float:
        """Seconds from ``now`` until ``cost`` tokens are there (0 when they already are)."""
        missing = self._clamp(cost) - self.tokens(now)
        return max(0.0, missing / self.limit.rate)

    def try_spend(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if they are there; False (nothing spent) if not."""
        available = self.tokens(now)
        need = self._clamp(cost)
        if available < need:
            return False
        self._tokens = available - need
        self._stamp = max(self._stamp, now)
        return True

    def _clamp(self, cost: float) -> float:
        if cost < 0:
            raise ValueError(f"a request costs 0 tokens or more, not {cost!r}")
        return min(float(cost), float(self.limit.burst))


class Pacer:
    """One session's buckets, one per family. Disabled, it never waits (and counts nothing)."""

    def __init__(
        self,
        limits: Iterable[tuple[str, Limit]] = DEFAULT_LIMITS,
        *,
        enabled: bool = True,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.enabled = enabled
        self.clock = clock
        self._sleep = sleep
        now = clock()
        self._buckets: Mapping[str, TokenBucket] = {family: TokenBucket(lim, now) for family, lim in limits}
        #: Requests paced per family, and seconds spent waiting for tokens (census and benchmarks).
        self.spent: dict[str, int] = dict.fromkeys(self._buckets, 0)
        self.waited = 0.0

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(self._buckets)

    def _bucket(self, family: str) -> TokenBucket:
        try:
            return self._buckets[family]
        except KeyError:
            known = ", ".join(self._buckets)
            raise ValueError(f"no pacing limit for the family {family!r}; known: {known}") from None

    def wait_time(self, family: str, now: float | None = None, cost: float = 1.0) -> float:
        """Seconds until this session may make a ``family`` request (0: now). What the pool asks."""
        bucket = self._bucket(family)
        if not self.enabled:
            return 0.0
        return bucket.wait_time(self.clock() if now is None else now, cost)

    async def acquire(self, family: str, cost: float = 1.0) -> float:
        """Wait until ``cost`` tokens of ``family`` are there, then spend them; the seconds waited.

        Call it right before the request (a page load, an in-page ``fetch()``): tokens spent
        early would let the requests bunch up again.
        """
        bucket = self._bucket(family)
        if not self.enabled:
            return 0.0
        waited = 0.0
        while not bucket.try_spend(self.clock(), cost):
            pause = bucket.wait_time(self.clock(), cost)
            await self._sleep(max(pause, 1e-3))
            waited += pause
        self.spent[family] += 1
        self.waited += waited
        return waited

    def census(self) -> dict[str, object]:
        """Tokens left per family (rounded), requests paced and seconds waited."""
        now = self.clock()
        return {
            "enabled": self.enabled,
            "tokens": {family: round(b.tokens(now), 2) for family, b in self._buckets.items()},
            "spent": dict(self.spent),
            "waited_seconds": round(self.waited, 1),
        }


def parse_limits(table: Mapping[str, object], where: str = "[pacing]") -> tuple[tuple[str, Limit], ...]:
    """Family limits from a config table (``item = {rate = 0.3, burst = 5}`` …) over the defaults.

    Raises:
        ValueError: a family that is not a ``{rate, burst}`` table, an unknown key in one, a rate
            that is not above 0 or a burst that is not a whole number of at least 1.
    """
    limits = dict(DEFAULT_LIMITS)
    for family, value in table.items():
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} {family}: expected a table {{rate = …, burst = …}}, got {value!r}")
        unknown = set(value) - {"rate", "burst"}
        if unknown:
            raise ValueError(f"{where} {family}: unknown keys {sorted(unknown)}; known: ['burst', 'rate']")
        base = limits.get(family)
        rate, burst = (
            value.get("rate", base.rate if base else None),
            value.get("burst", base.burst if base else None),
        )
        if rate is None or burst is None:
            raise ValueError(f"{where} {family}: a new family needs both rate and burst")
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            raise ValueError(f"{where} {family}: rate must be a number of tokens per second, not {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int):
            raise ValueError(f"{where} {family}: burst must be a whole number of tokens, not {burst!r}")
        try:
            limits[family] = Limit(rate=float(rate), burst=burst)
        except ValueError as exc:
            raise ValueError(f"{where} {family}: {exc}") from None
    return tuple(limits.items())
