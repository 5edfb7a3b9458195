"""The shared mechanism: load a platform page in a session and take its data.

Data arrives one of two ways, both produced by the site itself: hydration JSON
in the document (read once a DOM predicate holds) or a JSON XHR the page's own
JavaScript signs and sends (read from the intercepted response). Platform
modules only say which URL, which predicate or XHR path, and how to read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Page, Request, Response

from scraper.blocks import block_reason, empty_api_body_reason, page_title
from scraper.errors import Blocked, InvalidUrl, LayoutChanged, NetworkError, RateLimited, ScrapeTimeout
from scraper.hosts import host_allowed
from scraper.pool import translate_playwright_error
from scraper.session import Session

log = logging.getLogger(__name__)


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


class _XhrCatcher:
    """Keeps the first response whose path is ``path``, with its body read at once."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.result: asyncio.Future[tuple[int, bytes, dict[str, str], str]] = (
            asyncio.get_running_loop().create_future()
        )
        self._tasks: set[asyncio.Task[None]] = set()

    def on_response(self, response: Response) -> None:
        if self.result.done() or urlsplit(response.url).path != self.path:
            return
        task = asyncio.get_running_loop().create_task(self._read(response))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, response: Response) -> None:
        try:
            body = await response.body()
        except Exception as exc:  # the page navigated away before we read it
            log.debug("could not read XHR body", exc_info=True)
            if not self.result.done():
                self.result.set_exception(Blocked(f"XHR {self.path} was cut off: {exc}"))
            return
        if not self.result.done():
            self.result.set_result((response.status, body, await response.all_headers(), response.url))


async def _goto(page: Page, url: str, seconds: float) -> None:
    """Navigate; a redirect to a non-platform host surfaces as a clear refusal, not a DNS error."""
    navigations: list[str] = []

    def remember(request: Request) -> None:
        if request.is_navigation_request() and request.frame == page.main_frame:
            navigations.append(request.url)

    page.on("request", remember)
    try:
        await page.goto(url, wait_until="domcontentloaded", timeout=seconds * 1000)
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


async def load(session: Session, url: str, spec: LoadSpec) -> Capture:
    """Load ``url`` in ``session`` and wait until ``spec`` is satisfied.

    Raises:
        Blocked / RateLimited: the platform's risk control answered instead of data.
        LayoutChanged: the page settled without the data where we expect it.
        ScrapeTimeout: the page kept loading past the data timeout.
    """
    settings = session.settings
    user_agent = settings.mobile_user_agent if spec.mobile else None
    async with session.page(user_agent=user_agent) as page:
        catcher = _XhrCatcher(spec.xhr_path) if spec.xhr_path else None
        if catcher:
            page.on("response", catcher.on_response)
        await _goto(page, url, settings.navigation_timeout)
        waits: list[asyncio.Future[Any]] = []
        if catcher:
            waits.append(catcher.result)
        if spec.ready_js and not await _holds(page, spec.ready_js):
            waits.append(asyncio.ensure_future(page.wait_for_function(spec.ready_js, timeout=0)))
        xhr: Any | None = None
        try:
            async with asyncio.timeout(settings.data_timeout):
                for waiter in waits:
                    await waiter
        except TimeoutError:
            raise await _diagnose(page, url) from None
        finally:
            for waiter in waits:
                if not waiter.done():
                    waiter.cancel()
                    with contextlib.suppress(BaseException):
                        await waiter
        if catcher:
            xhr = _parse_xhr(*catcher.result.result())
        html = await page.content()
        return Capture(url=page.url, title=await page.title(), html=html, xhr=xhr)


async def _holds(page: Page, predicate: str) -> bool:
    """Check the ready predicate once before polling: SSR pages usually hold at DOMContentLoaded."""
    try:
        return bool(await page.evaluate(predicate))
    except Exception:  # a challenge reload may swap the document under us; poll instead
        return False


def _parse_xhr(status: int, body: bytes, headers: dict[str, str], url: str) -> Any:
    reason = empty_api_body_reason(status, body, headers)
    if reason:
        raise (RateLimited if status == 429 else Blocked)(reason, url=url)
    try:
        return json.loads(body)
    except ValueError as exc:
        text = body[:4096].decode("utf-8", "replace")
        if block_reason(text):
            raise Blocked(f"{block_reason(text)} instead of JSON", url=url) from exc
        raise LayoutChanged(f"XHR {urlsplit(url).path} did not return JSON (HTTP {status})", url=url) from exc


async def _diagnose(page: Page, url: str) -> Exception:
    """Explain a page that never delivered its data: block, layout change, or slowness."""
    try:
        html = await page.content()
        state = await page.evaluate("document.readyState")
    except Exception as exc:
        return translate_playwright_error(exc)
    reason = block_reason(html)
    if reason:
        return Blocked(f"{reason} at {page.url}", url=url)
    title = page_title(html) or await page.title()
    if state == "complete":
        return LayoutChanged(
            f"the page loaded but its data was not found (layout changed?): {page.url} title={title!r}",
            url=url,
        )
    return ScrapeTimeout(f"the page did not deliver its data in time: {page.url} title={title!r}", url=url)
