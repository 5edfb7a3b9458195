"""One Chromium, N sessions, leased with ``async with pool.session(family="item") as s``.

The pool owns the browser's life: it relaunches Chromium when it disconnects
and after ``max_pages_per_browser`` pages (memory), leases only sessions that are
not cooling down (of those, the one whose pacing lets it go soonest), retires and
replaces worn-out ones, and turns Playwright's
exceptions into our typed errors in one place, so extractors only ever see
``scraper.errors``.

It keeps counters a monitor reads (``blocks`` by error code, ``relaunched`` by reason, ``retired``
by reason), and tells whoever listens which sessions a piece of work leased (``LEASED`` /
``current_session``), so log lines can name the identity without the scraper knowing about logs.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import itertools
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from playwright.async_api import Browser, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from scraper.config import BrowserSettings
from scraper.errors import BrowserCrashed, NetworkError, ScraperError, ScrapeTimeout
from scraper.session import Session, SessionState

log = logging.getLogger(__name__)

#: The ids of the sessions leased in this context, oldest first, when a caller set a list here (a
#: job runner does, and the tasks it starts share that list); None: nobody is listening.
LEASED: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("scraper_leased", default=None)
_CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("scraper_session", default=None)


def current_session() -> str | None:
    """The session this task holds now, else the last one its work leased; None if neither."""
    leased = LEASED.get()
    return _CURRENT.get() or (leased[-1] if leased else None)


_CRASH_MARKERS = ("Target closed", "has been closed", "Browser closed", "crashed", "Connection closed")
_NETWORK_MARKERS = ("net::ERR_", "NS_ERROR")


def translate_playwright_error(error: Exception) -> ScraperError:
    """Map a Playwright exception to our error types (timeouts, crashes, network)."""
    text = str(error)
    first = text.splitlines()[0] if text else type(error).__name__
    if isinstance(error, PlaywrightTimeout):
        return ScrapeTimeout(f"browser timed out: {first}")
    if any(marker in text for marker in _CRASH_MARKERS):
        return BrowserCrashed(f"browser died during the job: {first}")
    if any(marker in text for marker in _NETWORK_MARKERS):
        return NetworkError(f"network error: {first}")
    return BrowserCrashed(f"browser error: {first}")


class BrowserPool:
    """A Chromium with ``settings.pool_size`` sessions; safe to use from many tasks."""

    def __init__(self, settings: BrowserSettings) -> None:
        self.settings = settings
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._generation = 0
        self._idle: list[Session] = []
        self._busy: set[Session] = set()
        self._changed = asyncio.Condition()
        self._relaunch_lock = asyncio.Lock()
        self._old_browsers: list[Browser] = []
        self._identities = itertools.cycle(settings.identities)
        self._launched_at = 0.0
        self._pages_this_browser = 0
        self.retired: collections.Counter[str] = collections.Counter()
        #: Risk answers (``Outcome.RISK``) its sessions recorded, by error code.
        self.blocks: collections.Counter[str] = collections.Counter()
        #: Browser relaunches by reason: ``died`` (disconnected) or ``rollover`` (page budget).
        self.relaunched: collections.Counter[str] = collections.Counter()
        self.relaunches = 0
        self.leases = 0

    # ---- life -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._playwright = await async_playwright().start()
        await self._launch()
        for _ in range(self.settings.pool_size):
            self._idle.append(await self._new_session())
        log.info("browser pool started", extra={"sessions": self.settings.pool_size})

    async def close(self) -> None:
        for session in [*self._idle, *self._busy]:
            await session.close()
        self._idle.clear()
        for browser in [*self._old_browsers, self._browser]:
            if browser is not None:
                try:
                    await browser.close()
                except Exception:
                    log.debug("browser close failed", exc_info=True)
        if self._playwright is not None:
            await self._playwright.stop()
        self._browser = None
        self._playwright = None

    async def __aenter__(self) -> BrowserPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def browser_alive(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    async def _launch(self) -> None:
        assert self._playwright is not None
        self._browser = await self._playwright.chromium.launch(
            executable_path=self.settings.executable_path,
            headless=self.settings.headless,
            args=self.settings.launch_args(),
        )
        self._generation += 1
        self._launched_at = time.monotonic()
        self._pages_this_browser = 0

    def _count_page(self) -> None:
        self._pages_this_browser += 1

    def _count_block(self, code: str) -> None:
        """Every block a session records: a lease that raised it, or a route that failed before
        another route of the same attempt succeeded (``scraper.service.fetch_item``)."""
        self.blocks[code] += 1

    async def _new_session(self) -> Session:
        assert self._browser is not None
        session = await Session.create(self._browser, self.settings, self._generation, next(self._identities))
        session.on_page = self._count_page
        session.on_block = self._count_block
        return session

    async def _ensure_browser(self) -> None:
        """Relaunch Chromium if it died (or roll over to a fresh one past its page budget)."""
        rollover = self._pages_this_browser >= self.settings.max_pages_per_browser
        if self.browser_alive and not rollover:
            return
        async with self._relaunch_lock:
            rollover = self._pages_this_browser >= self.settings.max_pages_per_browser
            if self.browser_alive and not rollover:
                return
            if self.browser_alive and self._browser is not None:
                log.info("browser rolled over after %d pages", self._pages_this_browser)
                self._old_browsers.append(self._browser)  # closed once its last session is gone
                reason = "rollover"
            else:
                log.warning("browser is gone; relaunching")
                reason = "died"
                if self._browser is not None:
                    try:
                        await self._browser.close()
                    except Exception:
                        log.debug("closing dead browser failed", exc_info=True)
            await self._launch()
            self.relaunches += 1
            self.relaunched[reason] += 1

    async def _replace(self, session: Session) -> Session:
        """Close a retired or stale session and make a fresh identity in the current browser."""
        reason = session.retire_reason or (
            "stale_browser" if session.generation != self._generation else "retired"
        )
        self.retired[reason] += 1
        await session.close()
        await self._close_unused_old_browsers()
        return await self._new_session()

    async def _close_unused_old_browsers(self) -> None:
        in_use = {id(s.browser) for s in [*self._idle, *self._busy]}
        for browser in list(self._old_browsers):
            if id(browser) not in in_use:
                self._old_browsers.remove(browser)
                try:
                    await browser.close()
                except Exception:
                    log.debug("closing old browser failed", exc_info=True)

    def _stale(self, session: Session) -> bool:
        return session.generation != self._generation or session.worn_out()

    # ---- leasing ----------------------------------------------------------------------------

    def _soonest(self, family: str | None, now: float) -> tuple[Session | None, float]:
        """The idle, not cooling session whose pacer lets it make a ``family`` request soonest, and
        the seconds until it may (the first such session and 0 without a family); None if none."""
        ready = [s for s in self._idle if s.state(now) is not SessionState.COOLING]
        if not ready:
            return None, 0.0
        if family is None:
            return ready[0], 0.0
        waits = [(s.pacer.wait_time(family), s) for s in ready]
        wait, session = min(waits, key=lambda pair: pair[0])  # the first of equals: idle order
        return session, wait

    async def _take(self, family: str | None = None) -> Session:
        """The idle session that is not cooling down and can go soonest for ``family``; waits for a
        free session and for its pacing token within the lease timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.lease_timeout
        async with self._changed:
            while True:
                now = time.monotonic()
                session, token_wait = self._soonest(family, now)
                if session is not None and token_wait <= 0:
                    self._idle.remove(session)
                    self._busy.add(session)
                    return session
                remaining = deadline - loop.time()
                if remaining <= 0:
                    why = "all busy or cooling down" if session is None else f"pacing {family} requests"
                    raise ScrapeTimeout(f"no browser session became free in time ({why})")
                cooling_ends = [s.cooling_until - now for s in self._idle]
                tokens = [token_wait] if session is not None else []
                wait = min([remaining, *tokens, *[c for c in cooling_ends if c > 0]])
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=max(wait, 0.01))
                except TimeoutError:
                    pass

    async def _give_back(self, session: Session) -> None:
        async with self._changed:
            self._busy.discard(session)
            self._idle.append(session)
            self._changed.notify_all()

    @asynccontextmanager
    async def session(self, family: str | None = None) -> AsyncIterator[Session]:
        """Lease a session; its outcome is recorded; Playwright errors come out as ``ScraperError``.

        With a ``family`` (``scraper.pacing``), the session that can make such a request soonest,
        once it can; without one, the first free session (its requests still wait for tokens).
        """
        session = await self._take(family)
        outer = _CURRENT.get()  # a lease inside a lease gives the outer one back on exit
        try:
            await self._ensure_browser()
            if self._stale(session):
                self._busy.discard(session)
                session = await self._replace(session)
                self._busy.add(session)
            session.uses += 1
            self.leases += 1
            self._note_lease(session)
            try:
                yield session
            except ScraperError as exc:
                session.record(exc)  # a block is counted by _count_block
                raise
            except PlaywrightError as exc:
                error = translate_playwright_error(exc)
                session.record(error)
                raise error from exc
            else:
                session.record(None)
        finally:
            _CURRENT.set(outer)
            if self._stale(session):
                self._busy.discard(session)
                try:
                    session = await self._replace(session)
                except Exception:  # the browser is gone: the next lease relaunches and replaces again
                    log.debug("could not replace a retired session now", exc_info=True)
                self._busy.add(session)
            await self._give_back(session)

    @staticmethod
    def _note_lease(session: Session) -> None:
        _CURRENT.set(session.id)
        leased = LEASED.get()
        if leased is not None:
            leased.append(session.id)

    # ---- upkeep -----------------------------------------------------------------------------

    async def maintain(self) -> dict[str, Any]:
        """Periodic duty: relaunch or roll over the browser, replace worn-out idle sessions, top up."""
        await self._ensure_browser()
        async with self._changed:
            stale = [s for s in self._idle if self._stale(s)]
            for session in stale:
                self._idle.remove(session)
            missing = self.settings.pool_size - len(self._idle) - len(self._busy) - len(stale)
        fresh = [await self._replace(s) for s in stale]
        fresh += [await self._new_session() for _ in range(max(0, missing))]
        if fresh:
            async with self._changed:
                self._idle.extend(fresh)
                self._changed.notify_all()
        return self.census()

    def census(self) -> dict[str, Any]:
        """Sessions by state, browser uptime and counters, for health, logs and ``shortvid sessions``."""
        now = time.monotonic()
        sessions = [*self._idle, *self._busy]
        by_state = collections.Counter(s.state(now).value for s in sessions)
        return {
            "browser_alive": self.browser_alive,
            "browser_uptime_seconds": round(now - self._launched_at, 1) if self._browser else 0,
            "browser_pages": self._pages_this_browser,
            "sessions": {
                "total": len(sessions),
                "busy": len(self._busy),
                "idle": len(self._idle),
                **{state.value: by_state.get(state.value, 0) for state in SessionState},
            },
            "retired": dict(self.retired),
            "blocks": dict(self.blocks),
            "leases": self.leases,
            "relaunches": self.relaunches,
            "detail": [
                {**s.census(), "busy": s in self._busy, "pacing": s.pacer.census()}
                for s in sorted(sessions, key=lambda s: s.id)
            ],
        }
