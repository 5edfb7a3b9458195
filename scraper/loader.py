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
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Page, Request, Response

from scraper.errors import Blocked, InvalidUrl, LayoutChanged, NetworkError, ScrapeTimeout
from scraper.hosts import host_allowed
from scraper.outcome import api_answer_error, block_reason, definitive_block, page_response_error, page_title
from scraper.pool import translate_playwright_error
from scraper.session import Session

log = logging.getLogger(__name__)

XhrReply = tuple[int, bytes, dict[str, str], str]


@dataclass(frozen=True, slots=True)
class Capture:
    """What a page load produced: its final URL and title, the DOM, and the awaited XHR's JSON."""

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


class XhrStream:
    """Every response whose path is ``path``, in arrival order, each body read at once."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.replies: asyncio.Queue[XhrReply | BaseException] = asyncio.Queue()
        self.seen = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def on_response(self, response: Response) -> None:
        if urlsplit(response.url).path != self.path:
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
        self.replies.put_nowait((response.status, body, await response.all_headers(), response.url))

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

    def _started(self, request: Request) -> None:
        self.in_flight += 1

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
                ready_state, html = state
                reason = definitive_block(html)
                if reason:
                    raise Blocked(f"{reason} at {self.page.url}", url=self.page.url)
                if ready_state == "complete" and self.in_flight == 0 and not waiter.done():
                    settled_since = settled_since if settled_since is not None else now
                    if now - settled_since >= self.SETTLE_SECONDS:
                        raise LayoutChanged(
                            f"layout changed: {self.page.url} loaded and settled without {what}"
                            f" (title {page_title(html) or await self.page.title()!r})",
                            url=self.page.url,
                        )
                else:
                    settled_since = None
        finally:
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(BaseException):
                    await waiter

    async def _look(self) -> tuple[str, str] | None:
        try:
            return await self.page.evaluate("document.readyState"), await self.page.content()
        except Exception:  # navigation in progress
            return None

    async def scroll_to_bottom(self) -> None:
        """Scroll as a reader would, so the page's own code loads the next page of posts."""
        await self.page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")

    async def capture(self, xhr: Any | None = None) -> Capture:
        return Capture(
            url=self.page.url, title=await self.page.title(), html=await self.page.content(), xhr=xhr
        )


async def _goto(page: Page, url: str, seconds: float) -> None:
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
        blocked = page_response_error(response.status, await response.all_headers(), page.url)
        if blocked is not None:
            raise blocked


@contextlib.asynccontextmanager
async def live_page(
    session: Session, url: str, *, xhr_paths: Sequence[str] = (), mobile: bool = False
) -> AsyncIterator[LivePage]:
    """Open ``url`` in a new tab of ``session`` with the XHR paths intercepted from the start."""
    user_agent = session.settings.mobile_user_agent if mobile else None
    async with session.page(user_agent=user_agent) as page:
        streams = {path: XhrStream(path) for path in xhr_paths}
        live = LivePage(page, session, streams)
        for stream in streams.values():
            page.on("response", stream.on_response)
        try:
            await _goto(page, url, session.settings.navigation_timeout)
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
    async with live_page(session, url, xhr_paths=paths, mobile=spec.mobile) as live:
        xhr = await live.next_json(spec.xhr_path) if spec.xhr_path else None
        if spec.ready_js:
            await live.wait_ready(spec.ready_js)
        return await live.capture(xhr)


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
