"""The shared mechanism: load a platform page in a session and take its data.

Data arrives one of two ways, both produced by the site itself: hydration JSON
in the document (read once a DOM predicate holds) or JSON XHRs the page's own
JavaScript signs and sends (read from the intercepted responses). Platform
modules only say which URL, which predicate or XHR paths, and how to read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Page, Request, Response

from scraper.errors import Blocked, InvalidUrl, LayoutChanged, NetworkError, ScrapeTimeout
from scraper.hosts import host_allowed, platform_of_host
from scraper.outcome import (
    DEFINITIVE_MARKERS,
    api_answer_error,
    block_reason,
    page_response_error,
    page_title,
)
from scraper.pool import translate_playwright_error
from scraper.session import Session

log = logging.getLogger(__name__)

XhrReply = tuple[int, bytes, dict[str, str], str]

#: What the watchdog asks the page each poll: its state, title, and the first block marker its
#: markup holds (``outcome.definitive_block`` in the page, so 150 KB of DOM never crosses CDP).
LOOK_JS = """
(markers) => {
  const html = document.documentElement ? document.documentElement.outerHTML.slice(0, 200000) : "";
  return [document.readyState, document.title, markers.find((m) => html.includes(m)) || null];
}
"""
_MARKERS = [marker for marker, _ in DEFINITIVE_MARKERS]
_MARKER_REASONS = dict(DEFINITIVE_MARKERS)


@dataclass(frozen=True, slots=True)
class Capture:
    """What a page load produced: its final URL and title, the DOM, and the awaited XHR's JSON.

    ``html`` is empty unless the spec reads the document (``ready_js``): serialising the page
    costs as much as a fifth of a load, and XHR routes and short links never read it.
    """

    url: str
    title: str
    html: str
    xhr: Any | None = None


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """How to know a page has delivered its data."""

    ready_js: str | None = None
    xhr_path: str | None = None
    mobile: bool = False
    #: The pacing family the load spends (``scraper.pacing``): items, and short links to them.
    family: str = "item"

    @property
    def requests(self) -> int:
        """Requests of ``family`` the load makes: the page, and its data XHR when there is one."""
        return 2 if self.xhr_path else 1

    @property
    def reads_document(self) -> bool:
        """The data is in the DOM, so the capture carries the page's HTML."""
        return self.ready_js is not None


class XhrStream:
    """Every response whose path is ``path``, in arrival order, each body read at once."""

    def __init__(self, path: str, accept: Callable[[Response], bool] = lambda _: True) -> None:
        self.path = path
        self.accept = accept
        self.replies: asyncio.Queue[XhrReply | BaseException] = asyncio.Queue()
        self.seen = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def on_response(self, response: Response) -> None:
        if urlsplit(response.url).path != self.path or not self.accept(response):
            return
        self.seen += 1
        task = asyncio.get_running_loop().create_task(self._read(response))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, response: Response) -> None:
        try:
            body = await response.body()
        except Exception as exc:  # the page navigated away before we read it
            log.debug("could not read XHR body", exc_info=True)
            self.replies.put_nowait(Blocked(f"XHR {self.path} was cut off: {exc}"))
            return
        # ``headers`` lacks only the cookie headers and, unlike ``all_headers()``, costs no round trip.
        self.replies.put_nowait((response.status, body, response.headers, response.url))

    async def next_json(self) -> Any:
        """The next response's JSON; a block answer (empty body, 403, 429, HTML) raises."""
        reply = await self.replies.get()
        if isinstance(reply, BaseException):
            raise reply
        return parse_xhr(*reply)


class LivePage:
    """A loaded page we keep talking to: wait for data, read XHR streams, scroll for more.

    Every wait watches the page: a definitive block (captcha, verify page) fails at
    once, and a page that has settled (loaded, no requests in flight) without its
    data fails fast as a layout change instead of running into the timeout.
    """

    #: How long a page must stay settled without data before we call it a layout change.
    SETTLE_SECONDS = 2.0
    #: How often the watchdog looks at the page while waiting.
    POLL_SECONDS = 0.4

    def __init__(self, page: Page, session: Session, streams: dict[str, XhrStream]) -> None:
        self.page = page
        self.session = session
        self.streams = streams
        self.in_flight = 0
        #: Requests since this job's navigation began: a reused tab's last document may still
        #: answer the same XHR path until the new one commits.
        self._ours: set[Request] = set()
        self._navigated = False
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def detach(self) -> None:
        """Stop listening: the tab may serve the session's next job."""
        self.page.remove_listener("request", self._started)
        self.page.remove_listener("requestfinished", self._ended)
        self.page.remove_listener("requestfailed", self._ended)
        for stream in self.streams.values():
            self.page.remove_listener("response", stream.on_response)
        self._ours.clear()

    def _started(self, request: Request) -> None:
        self.in_flight += 1
        if not self._navigated and request.is_navigation_request():
            self._navigated = _in_main_frame(self.page, request)
        if self._navigated:
            self._ours.add(request)

    def made_here(self, response: Response) -> bool:
        """True when ``response`` answers a request of this job's document, not the tab's last one."""
        return response.request in self._ours

    def _ended(self, request: Request) -> None:
        self.in_flight = max(0, self.in_flight - 1)

    @property
    def data_timeout(self) -> float:
        return self.session.settings.data_timeout

    async def next_json(self, path: str) -> Any:
        """The next response of the XHR ``path``; explains the page if none comes."""
        return await self._watch(self.streams[path].next_json(), what=f"the {path} response")

    async def poll_json(self, path: str, seconds: float) -> Any | None:
        """The next response of ``path`` if one arrives within ``seconds``, else None."""
        try:
            async with asyncio.timeout(seconds):
                return await self.streams[path].next_json()
        except TimeoutError:
            return None

    async def wait_ready(self, predicate: str) -> None:
        """Wait until the JavaScript ``predicate`` holds (checked once before polling)."""
        if await _holds(self.page, predicate):
            return
        await self._watch(self.page.wait_for_function(predicate, timeout=0), what="the page data")

    async def _watch(self, awaitable: Awaitable[Any], *, what: str) -> Any:
        waiter = asyncio.ensure_future(awaitable)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.data_timeout
        settled_since: float | None = None
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=self.POLL_SECONDS)
                if done:
                    return waiter.result()
                now = loop.time()
                if now >= deadline:
                    raise await diagnose(self.page)
                state = await self._look()
                if state is None:
                    continue  # the document is being replaced (challenge reload); look again
                ready_state, title, marker = state
                reason = _MARKER_REASONS.get(marker) if marker else None
                if reason:
                    raise Blocked(f"{reason} at {self.page.url}", url=self.page.url)
                if ready_state == "complete" and self.in_flight == 0 and not waiter.done():
                    settled_since = settled_since if settled_since is not None else now
                    if now - settled_since >= self.SETTLE_SECONDS:
                        raise LayoutChanged(
                            f"layout changed: {self.page.url} loaded and settled without {what}"
                            f" (title {title!r})",
                            url=self.page.url,
                        )
                else:
                    settled_since = None
        finally:
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(BaseException):
                    await waiter

    async def _look(self) -> tuple[str, str, str | None] | None:
        """Ready state, title and block marker of the current document, in one small evaluate."""
        try:
            ready_state, title, marker = await self.page.evaluate(LOOK_JS, _MARKERS)
        except Exception:  # navigation in progress
            return None
        return str(ready_state), str(title), marker

    async def scroll_to_bottom(self) -> None:
        """Scroll as a reader would, so the page's own code loads the next page of posts."""
        await self.page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")

    async def capture(self, xhr: Any | None = None, *, html: bool = True) -> Capture:
        """The page as it is now; ``html=False`` skips serialising the DOM (data came by XHR)."""
        return Capture(
            url=self.page.url,
            title=await self.page.title(),
            html=await self.page.content() if html else "",
            xhr=xhr,
        )


async def goto(page: Page, url: str, seconds: float) -> None:
    """Navigate; a redirect to a non-platform host surfaces as a clear refusal, not a DNS error.

    A document answer that is a block by itself (block shell header, 429) fails here.
    """
    navigations: list[str] = []

    def remember(request: Request) -> None:
        if request.is_navigation_request() and request.frame == page.main_frame:
            navigations.append(request.url)

    page.on("request", remember)
    try:
        response = await page.goto(url, wait_until="domcontentloaded", timeout=seconds * 1000)
    except Exception as exc:
        last = navigations[-1] if navigations else url
        if not host_allowed(urlsplit(last).hostname):
            host = urlsplit(last).hostname
            raise InvalidUrl(f"the link redirected outside the platform ({host}); refused") from exc
        error = translate_playwright_error(exc)
        if isinstance(error, NetworkError) and "ERR_ABORTED" in str(exc):
            return  # a script navigated (challenge reload) while we waited; carry on
        raise error from exc
    finally:
        page.remove_listener("request", remember)
    if response is not None:
        blocked = page_response_error(response.status, response.headers, page.url)  # no round trip
        if blocked is not None:
            raise blocked


@contextlib.asynccontextmanager
async def live_page(
    session: Session,
    url: str,
    *,
    xhr_paths: Sequence[str] = (),
    mobile: bool = False,
    family: str = "page",
    cost: float = 1.0,
) -> AsyncIterator[LivePage]:
    """Open ``url`` in a tab of ``session`` (its platform's reused one, or a new one) with the XHR
    paths intercepted from the start, answers to the tab's previous document ignored. The load
    first waits for ``cost`` tokens of the session's ``family`` bucket (``scraper.pacing``)."""
    user_agent = session.settings.mobile_user_agent if mobile else None
    platform = platform_of_host(urlsplit(url).hostname)
    async with session.page(user_agent=user_agent, platform=platform) as page:
        live = LivePage(page, session, {})
        live.streams.update({path: XhrStream(path, live.made_here) for path in xhr_paths})
        for stream in live.streams.values():
            page.on("response", stream.on_response)
        try:
            await session.pacer.acquire(family, cost)
            await goto(page, url, session.settings.navigation_timeout)
            yield live
        finally:
            live.detach()


async def load(session: Session, url: str, spec: LoadSpec) -> Capture:
    """Load ``url`` in ``session`` and wait until ``spec`` is satisfied.

    Raises:
        Blocked / RateLimited: the platform's risk control answered instead of data.
        LayoutChanged: the page settled without the data where we expect it.
        ScrapeTimeout: the page kept loading past the data timeout.
    """
    paths = [spec.xhr_path] if spec.xhr_path else []
    async with live_page(
        session, url, xhr_paths=paths, mobile=spec.mobile, family=spec.family, cost=spec.requests
    ) as live:
        xhr = await live.next_json(spec.xhr_path) if spec.xhr_path else None
        if spec.ready_js:
            await live.wait_ready(spec.ready_js)
        return await live.capture(xhr, html=spec.reads_document)


def _in_main_frame(page: Page, request: Request) -> bool:
    try:
        return request.frame == page.main_frame
    except Exception:  # a service worker's request has no frame
        return False


async def _holds(page: Page, predicate: str) -> bool:
    """Check the ready predicate once before polling: SSR pages usually hold at DOMContentLoaded."""
    try:
        return bool(await page.evaluate(predicate))
    except Exception:  # a challenge reload may swap the document under us; poll instead
        return False


def parse_xhr(status: int, body: bytes, headers: dict[str, str], url: str) -> Any:
    """An XHR body as JSON, or the block it really is."""
    error = api_answer_error(status, body, headers, url)
    if error is not None:
        raise error
    try:
        return json.loads(body)
    except ValueError as exc:
        raise LayoutChanged(f"XHR {urlsplit(url).path} did not return JSON (HTTP {status})", url=url) from exc


async def diagnose(page: Page) -> Exception:
    """Explain a page that never delivered its data: block, layout change, or slowness."""
    try:
        html = await page.content()
        state = await page.evaluate("document.readyState")
    except Exception as exc:
        return translate_playwright_error(exc)
    reason = block_reason(html)
    if reason:
        return Blocked(f"{reason} at {page.url}", url=page.url)
    title = page_title(html) or await page.title()
    if state == "complete":
        return LayoutChanged(
            f"the page loaded but its data was not found (layout changed?): {page.url} title={title!r}",
            url=page.url,
        )
    return ScrapeTimeout(
        f"the page did not deliver its data in time: {page.url} title={title!r}", url=page.url
    )
