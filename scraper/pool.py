"""One Chromium, N sessions, leased with ``async with pool.session() as s``.

The pool owns the browser's life: it relaunches Chromium when it disconnects,
replaces worn-out sessions, and turns Playwright's exceptions into our typed
errors in one place, so extractors only ever see ``scraper.errors``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from playwright.async_api import Browser, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from scraper.config import BrowserSettings
from scraper.errors import Blocked, BrowserCrashed, NetworkError, ScraperError, ScrapeTimeout
from scraper.session import Session

log = logging.getLogger(__name__)

_CRASH_MARKERS = ("Target closed", "has been closed", "Browser closed", "crashed", "Connection closed")
_NETWORK_MARKERS = ("net::ERR_", "NS_ERROR")


def translate_playwright_error(error: Exception) -> ScraperError:
    """Map a Playwright exception to our error types (timeouts, crashes, network)."""
    text = str(error)
    if isinstance(error, PlaywrightTimeout):
        return ScrapeTimeout(f"browser timed out: {text.splitlines()[0]}")
    if any(marker in text for marker in _CRASH_MARKERS):
        return BrowserCrashed(f"browser died during the job: {text.splitlines()[0]}")
    if any(marker in text for marker in _NETWORK_MARKERS):
        return NetworkError(f"network error: {text.splitlines()[0]}")
    return BrowserCrashed(f"browser error: {text.splitlines()[0]}")


def _record_failure(session: Session, error: ScraperError) -> None:
    """Count a failure against the session; a block or a crash retires the identity at once."""
    if not error.retryable:
        return  # not found, private...: the platform answered; the session is fine
    session.errors += 1
    session.last_error = error.code
    if isinstance(error, (Blocked, BrowserCrashed)):
        session.retire_requested = True


class BrowserPool:
    """A Chromium with ``settings.pool_size`` sessions; safe to use from many tasks."""

    def __init__(self, settings: BrowserSettings) -> None:
        self.settings = settings
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._generation = 0
        self._idle: asyncio.Queue[Session] = asyncio.Queue()
        self._busy: set[Session] = set()
        self._relaunch_lock = asyncio.Lock()
        self._launched_at = 0.0
        self.retired = 0
        self.relaunches = 0
        self.leases = 0

    async def start(self) -> None:
        self._playwright = await async_playwright().start()
        await self._launch()
        for _ in range(self.settings.pool_size):
            self._idle.put_nowait(await self._new_session())
        log.info("browser pool started", extra={"sessions": self.settings.pool_size})

    async def close(self) -> None:
        while not self._idle.empty():
            await self._idle.get_nowait().close()
        if self._browser is not None:
            try:
                await self._browser.close()
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

    async def _new_session(self) -> Session:
        assert self._browser is not None
        return await Session.create(self._browser, self.settings, self._generation)

    async def _ensure_browser(self) -> None:
        """Relaunch Chromium if it died; sessions of the dead browser are replaced when leased."""
        if self.browser_alive:
            return
        async with self._relaunch_lock:
            if self.browser_alive:
                return
            log.warning("browser is gone; relaunching")
            if self._browser is not None:
                try:
                    await self._browser.close()
                except Exception:
                    log.debug("closing dead browser failed", exc_info=True)
            await self._launch()
            self.relaunches += 1

    async def _fresh(self, session: Session) -> Session:
        """The session itself, or a replacement if it is worn out or from a dead browser."""
        if session.generation == self._generation and not session.worn_out():
            return session
        await session.close()
        self.retired += 1
        return await self._new_session()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        """Lease a session; Playwright errors inside come out as ``ScraperError`` subclasses."""
        try:
            leased = await asyncio.wait_for(self._idle.get(), timeout=self.settings.lease_timeout)
        except TimeoutError as exc:
            raise ScrapeTimeout("no browser session became free in time") from exc
        session = leased
        try:
            await self._ensure_browser()
            session = await self._fresh(leased)
            session.uses += 1
            self.leases += 1
            self._busy.add(session)
            try:
                yield session
            except ScraperError as exc:
                _record_failure(session, exc)
                raise
            except PlaywrightError as exc:
                error = translate_playwright_error(exc)
                _record_failure(session, error)
                raise error from exc
        finally:
            self._busy.discard(session)
            if session.worn_out():
                try:
                    session = await self._fresh(session)
                except Exception:  # browser gone: the next lease relaunches and replaces it
                    log.debug("could not replace a retired session now", exc_info=True)
            self._idle.put_nowait(session)

    async def maintain(self) -> None:
        """Periodic duty: relaunch a dead browser, replace idle worn-out sessions."""
        await self._ensure_browser()
        for _ in range(self._idle.qsize()):
            try:
                session = self._idle.get_nowait()
            except asyncio.QueueEmpty:  # leased meanwhile
                return
            try:
                session = await self._fresh(session)
            finally:
                self._idle.put_nowait(session)

    def census(self) -> dict[str, Any]:
        """Sessions by state, browser uptime and counters, for health and logs."""
        return {
            "browser_alive": self.browser_alive,
            "browser_uptime_seconds": round(time.monotonic() - self._launched_at, 1) if self._browser else 0,
            "sessions": {"idle": self._idle.qsize(), "busy": len(self._busy)},
            "leases": self.leases,
            "retired": self.retired,
            "relaunches": self.relaunches,
        }
