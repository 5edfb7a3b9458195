"""The fast path: item and channel data by in-page ``fetch()`` on a resident page, no navigation.

Platform modules describe their fast routes as data (which request, which reader); this
module runs them and sorts every answer through the outcome classifier exactly as the
navigation path does. What a fast answer can mean:

* data: read by the *same* readers as the navigation path, so results are identical;
* a business answer (deleted, private): final, as on the navigation path;
* a block (empty body, ``tt_orcas_res``, captcha or verify page, 403/429): raised, so the pool
  scores the session as today and the job's next attempt runs on another session;
* a challenge in the reply (WAF, acrawler), a layout surprise or a slow answer:
  ``FastPathMissed``, and the caller falls back to navigation in the same session, which
  passes challenges by running the page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from models.video import Video
from scraper import errors
from scraper.channel import ChannelListing, ChannelQuery
from scraper.errors import FastPathMissed
from scraper.loader import Capture, parse_xhr
from scraper.outcome import block_reason, definitive_block, page_response_error, page_title
from scraper.pacing import ITEM, PAGE, POSTS
from scraper.resident import Origin, Param, Reply, Signer, drop_resident, resident_page
from scraper.session import Session
from scraper.shapes.common import PostPage, Profile
from scraper.urls import ParsedUrl

log = logging.getLogger(__name__)

HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@dataclass(frozen=True, slots=True)
class FastRequest:
    """One in-page request: a same-origin path (or platform URL), its query and how it is signed."""

    path: str
    params: tuple[Param, ...] = ()
    signer: Signer | None = None
    answer: Literal["json", "html"] = "json"


@dataclass(frozen=True, slots=True)
class FastItemRoute:
    """An item by one in-page request, read by the navigation route's own reader."""

    name: str
    origin: Origin
    request: Callable[[ParsedUrl], FastRequest]
    read: Callable[[Capture], dict[str, Any]]
    normalize: Callable[[dict[str, Any]], Video]
    family: str = ITEM


@dataclass(frozen=True, slots=True)
class FastChannelRoute:
    """A profile by one request, then its posts API paged by its cursor, without scrolling."""

    name: str
    origin: Origin
    profile: Callable[[ParsedUrl], FastRequest]
    read_profile: Callable[[Capture, ParsedUrl], Profile]
    posts: Callable[[ParsedUrl, Profile, int], FastRequest]
    read_posts: Callable[[dict[str, Any]], PostPage]


@dataclass
class ChannelProgress:
    """What a listing has gathered so far: kept across attempts, so a block mid-way resumes from
    the last cursor on a fresh session and every post comes back once."""

    query: ChannelQuery
    listing: ChannelListing = field(init=False)
    profile: Profile | None = None
    cursor: int = 0

    def __post_init__(self) -> None:
        self.listing = ChannelListing(self.query)


async def call(session: Session, origin: Origin, request: FastRequest, family: str) -> Capture:
    """Run ``request`` in the session's resident page; the answer as a Capture, or the error it is."""
    page = await resident_page(session, origin)
    await session.pacer.acquire(family)  # the identity's token bucket for this endpoint family
    accept = HTML_ACCEPT if request.answer == "html" else "application/json, text/plain, */*"
    try:
        reply = await page.fetch(request.path, request.params, signer=request.signer, accept=accept)
    except errors.ScrapeTimeout as exc:
        raise FastPathMissed(f"the in-page fetch of {request.path} timed out") from exc
    try:
        return read_reply(reply, request)
    except (errors.Blocked, FastPathMissed):
        await drop_resident(session, origin.platform)  # reopen (and re-pass the challenge) next time
        raise


def read_reply(reply: Reply, request: FastRequest) -> Capture:
    """The reply as the navigation path's Capture, or the block / miss it is."""
    if request.answer == "json":
        return Capture(
            url=reply.url,
            title="",
            html="",
            xhr=parse_xhr(reply.status, reply.body, reply.headers, reply.url),
        )
    blocked = page_response_error(reply.status, reply.headers, reply.url)
    if blocked is not None:
        raise blocked
    html = reply.body.decode("utf-8", "replace")
    definitive = definitive_block(html)
    if definitive:
        raise errors.Blocked(f"{definitive} in the in-page fetch of {reply.url}", url=reply.url)
    transient = block_reason(html, headers=reply.headers)
    if transient:
        raise FastPathMissed(f"{transient} in the in-page fetch of {reply.url}", url=reply.url)
    return Capture(url=reply.url, title=page_title(html), html=html)


async def fast_item(session: Session, route: FastItemRoute, parsed: ParsedUrl) -> Video:
    """The item by ``route``; a layout surprise is ``FastPathMissed``, never a failure."""
    capture = await call(session, route.origin, route.request(parsed), route.family)
    try:
        return route.normalize(route.read(capture))
    except errors.LayoutChanged as exc:
        raise FastPathMissed(f"{route.name}: {exc}", url=capture.url) from exc


async def fast_channel(
    session: Session, route: FastChannelRoute, parsed: ParsedUrl, progress: ChannelProgress
) -> dict[str, Any]:
    """The channel per ``progress.query``, continuing from ``progress`` (profile, cursor, posts)."""
    try:
        if progress.profile is None:
            capture = await call(session, route.origin, route.profile(parsed), PAGE)
            progress.profile = route.read_profile(capture, parsed)
        profile = progress.profile
        if profile.private:
            url = parsed.canonical_url
            raise errors.PrivateContent(f"the account {url} is private", url=url)
        listing = progress.listing
        while not listing.complete:
            request = route.posts(parsed, profile, progress.cursor)
            capture = await call(session, route.origin, request, POSTS)
            if not isinstance(capture.xhr, dict):
                raise errors.LayoutChanged(f"{route.name}: the posts answer is not a JSON object")
            page = route.read_posts(capture.xhr)
            if page.has_more and page.cursor == progress.cursor and listing.pages:
                raise errors.LayoutChanged(f"{route.name}: the posts cursor did not move ({page.cursor})")
            listing.add(page)
            progress.cursor = page.cursor
    except errors.LayoutChanged as exc:
        raise FastPathMissed(f"{route.name}: {exc}", url=parsed.canonical_url) from exc
    log.info(
        "channel listed", extra={"route": route.name, "pages": listing.pages, "regular": len(listing.regular)}
    )
    return listing.result(profile)
