"""A resident page per session and platform: one tab kept open on the platform's own origin.

Once the page has passed the platform's challenge (acrawler, WAF) and its security SDK is
loaded, item and list data are fetched by ``fetch()`` calls made *inside* it: the request
carries the session's cookies, leaves from Chromium's own network stack (TLS fingerprint and
all) and is signed by the site's own SDK, either because the SDK hooks ``fetch`` (Douyin's
bdms appends ``a_bogus``) or through the function it exposes (TikTok's
``byted_acrawler.frontierSign``, which TikTok-Api's ``TikTokApi/tiktok.py`` calls the same
way). No navigation, no render: the data is one request. Nothing here computes a signature,
and no JavaScript is built from strings: every value reaches the page as an ``evaluate``
argument of the constant scripts below.
"""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Page

from scraper.errors import InvalidUrl, NetworkError
from scraper.hosts import Platform, host_allowed
from scraper.loader import LivePage, goto
from scraper.pool import translate_playwright_error
from scraper.session import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a platform's resident page lives and how to know its SDK is ready to sign."""

    platform: Platform
    home: str
    #: A JS predicate: the challenge is passed and the signing SDK is loaded.
    ready_js: str


@dataclass(frozen=True, slots=True)
class Signer:
    """A signing function the site exposes: ``window.<path>(url)`` → ``{param: value}`` or a string."""

    function: str
    param: str


@dataclass(frozen=True, slots=True)
class Reply:
    """An in-page ``fetch()`` answer, as the page saw it."""

    status: int
    url: str
    headers: dict[str, str]
    body: bytes


#: Browser values a query parameter may take (``("env", name)``); the other kinds are a literal,
#: a cookie, or a value of a JSON script the page rendered. Checked here, so a typo fails at
#: import instead of sending a silent "undefined".
PAGE_VALUES = frozenset(
    {
        "screen_width",
        "screen_height",
        "language",
        "platform",
        "online",
        "cookie_enabled",
        "chrome_version",
        "app_version",
        "cpu_core_num",
        "device_memory",
        "downlink",
        "effective_type",
        "round_trip_time",
        "tz_name",
        "history_len",
        "focus_state",
        "page_visible",
        "os_name",
        "os",
        "os_version",
    }
)

#: The one script that builds a query from ``[name, kind, value]`` triples, signs it when a
#: ``signer`` is given (else the page's hooked ``fetch`` does), fetches it with the page's
#: cookies and returns what came back. Text bodies only: every answer we read is JSON or HTML.
FETCH_JS = """
async ({path, params, signer, accept}) => {
  const ua = navigator.userAgent, conn = navigator.connection || {};
  const chrome = (ua.match(/Chrome\\/([\\d.]+)/) || [])[1] || "";
  const osName = /Windows/.test(ua) ? "Windows" : /Mac OS X/.test(ua) ? "Mac OS"
    : /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : "Linux";
  const osVersion = ((ua.match(/Windows NT ([\\d.]+)/) || ua.match(/OS X ([\\d_]+)/)
    || ua.match(/OS ([\\d_]+) like/) || [])[1] || "").replace(/_/g, ".");
  const env = {
    screen_width: () => screen.width, screen_height: () => screen.height,
    language: () => navigator.language, platform: () => navigator.platform,
    online: () => navigator.onLine, cookie_enabled: () => navigator.cookieEnabled,
    chrome_version: () => chrome, app_version: () => navigator.appVersion,
    cpu_core_num: () => navigator.hardwareConcurrency || 8, device_memory: () => navigator.deviceMemory || 8,
    downlink: () => conn.downlink || 10, effective_type: () => conn.effectiveType || "4g",
    round_trip_time: () => conn.rtt || 50,
    tz_name: () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
    history_len: () => history.length, focus_state: () => document.hasFocus(),
    page_visible: () => document.visibilityState === "visible",
    os_name: () => osName, os: () => osName.replace(" OS", "").toLowerCase(), os_version: () => osVersion,
  };
  const cookie = (name) => {
    const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return hit ? hit.slice(name.length + 1) : "";
  };
  const scripts = {};
  const fromScript = (spec) => {
    const [id, ...path] = spec.split("/");
    if (!(id in scripts)) {
      try { scripts[id] = JSON.parse(document.getElementById(id).textContent); }
      catch (e) { scripts[id] = null; }
    }
    const hit = path.reduce((o, k) => (o == null ? o : o[k]), scripts[id]);
    return hit == null ? "" : String(hit);
  };
  const resolve = {cookie, env: (k) => String(env[k]()), script: fromScript, literal: (v) => v};
  const query = new URLSearchParams();
  for (const [name, kind, value] of params) query.append(name, resolve[kind](value));
  let url = new URL(path, location.origin).href + (params.length ? "?" + query.toString() : "");
  if (signer) {
    const fn = signer.function.split(".").reduce((o, k) => (o == null ? o : o[k]), window);
    if (typeof fn !== "function") throw new Error("signer " + signer.function + " is not loaded");
    const signed = await fn(url);
    const value = typeof signed === "string" ? signed : signed && signed[signer.param];
    if (!value) throw new Error("signer " + signer.function + " returned no " + signer.param);
    url += "&" + signer.param + "=" + encodeURIComponent(value);
  }
  const response = await fetch(url, {credentials: "include", headers: {accept}});
  const headers = {};
  response.headers.forEach((v, k) => { headers[k] = v; });
  return {status: response.status, url: response.url, headers, body: await response.text()};
}
"""

Param = tuple[str, str, str]


def literal(name: str, value: str) -> Param:
    return (name, "literal", value)


def cookie(name: str, cookie_name: str | None = None) -> Param:
    return (name, "cookie", cookie_name or name)


def script_value(name: str, script_id: str, *path: str) -> Param:
    """A value from a JSON script the page itself rendered (``<script id=script_id>``), by key path."""
    return (name, "script", "/".join((script_id, *path)))


def page_value(name: str, what: str | None = None) -> Param:
    key = what or name
    if key not in PAGE_VALUES:
        raise ValueError(f"unknown page value {key!r} (one of {sorted(PAGE_VALUES)})")
    return (name, "env", key)


class ResidentPage:
    """One open tab on a platform's origin, used by one job at a time (its session's lease)."""

    def __init__(self, page: Page, origin: Origin, session: Session) -> None:
        self.page = page
        self.origin = origin
        self.session = session
        self.opened = time.monotonic()
        self.fetches = 0

    @classmethod
    async def open(cls, session: Session, origin: Origin) -> ResidentPage:
        """Open the platform's home page and wait until it has passed the challenge and can sign."""
        page = (await session.new_tab(origin.platform)).page  # with the session's request blocking
        session.pages += 1
        session.on_page()
        try:
            await goto(page, origin.home, session.settings.navigation_timeout)
            live = LivePage(page, session, {})
            try:
                await live.wait_ready(origin.ready_js)
            finally:
                live.detach()
        except BaseException:
            await _close(page)
            raise
        log.debug("resident page open", extra={"platform": origin.platform, "session": session.id})
        return cls(page, origin, session)

    @property
    def usable(self) -> bool:
        settings = self.session.settings
        return (
            not self.page.is_closed()
            and time.monotonic() - self.opened < settings.resident_max_age
            and self.fetches < settings.resident_max_fetches
        )

    async def fetch(
        self,
        path: str,
        params: tuple[Param, ...] = (),
        *,
        signer: Signer | None = None,
        accept: str = "application/json, text/plain, */*",
    ) -> Reply:
        """``fetch()`` ``path`` (same origin, or an absolute platform URL) from inside the page."""
        target = urlsplit(path)
        if target.scheme and not host_allowed(target.hostname):
            raise InvalidUrl(f"refusing an in-page fetch outside the platforms: {target.hostname}")
        self.fetches += 1
        argument: dict[str, Any] = {
            "path": path,
            "params": [list(p) for p in params],
            "signer": {"function": signer.function, "param": signer.param} if signer else None,
            "accept": accept,
        }
        try:
            raw = await self.page.evaluate(FETCH_JS, argument)
        except Exception as exc:
            text = str(exc)
            if "Failed to fetch" in text:
                # The browser refused or lost the request (refused host, CORS, reset): not the item's fault.
                raise NetworkError(
                    f"the in-page fetch of {target.path} failed: {text.splitlines()[0]}"
                ) from exc
            raise translate_playwright_error(exc) from exc
        final = urlsplit(str(raw["url"]))
        if final.hostname and not host_allowed(final.hostname):
            raise InvalidUrl(f"the in-page fetch was redirected outside the platforms ({final.hostname})")
        body = str(raw["body"]).encode("utf-8", "surrogatepass")
        return Reply(int(raw["status"]), str(raw["url"]), dict(raw["headers"]), body)

    async def close(self) -> None:
        await _close(self.page)


_resident: weakref.WeakKeyDictionary[Session, dict[Platform, ResidentPage]] = weakref.WeakKeyDictionary()


async def resident_page(session: Session, origin: Origin) -> ResidentPage:
    """The session's resident page for ``origin``, (re)opened when missing, closed, old or worn."""
    pages = _resident.setdefault(session, {})
    current = pages.get(origin.platform)
    if current is not None and current.usable:
        return current
    if current is not None:
        await current.close()
        pages.pop(origin.platform, None)
    opened = await ResidentPage.open(session, origin)
    pages[origin.platform] = opened
    return opened


async def drop_resident(session: Session, platform: Platform) -> None:
    """Forget the session's resident page (after a block or a challenge seen in a reply)."""
    current = _resident.get(session, {}).pop(platform, None)
    if current is not None:
        await current.close()


async def _close(page: Page) -> None:
    try:
        await page.close()
    except Exception:  # the browser may already be gone
        log.debug("resident page close failed", exc_info=True)
