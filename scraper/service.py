"""Scraping operations as the worker and the CLI call them: URL in, normalized result out."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from models.video import Video
from scraper import douyin, tiktok
from scraper.channel import ChannelListing, ChannelQuery, ChannelRoute, list_channel
from scraper.errors import (
    Blocked,
    FastPathMissed,
    LayoutChanged,
    NotFound,
    ScraperError,
    ScrapeTimeout,
    WrongKind,
)
from scraper.fast import ChannelProgress, FastChannelRoute, FastItemRoute, fast_channel, fast_item
from scraper.hosts import Platform
from scraper.loader import LoadSpec, load
from scraper.outcome import Outcome, outcome_of
from scraper.pacing import ITEM, POSTS
from scraper.pool import BrowserPool
from scraper.routes import ItemRoute
from scraper.session import Session
from scraper.urls import ParsedUrl, classify

log = logging.getLogger(__name__)
T = TypeVar("T")

ITEM_ROUTES: dict[Platform, tuple[ItemRoute, ...]] = {
    "douyin": douyin.ITEM_ROUTES,
    "tiktok": tiktok.ITEM_ROUTES,
}
FAST_ITEM_ROUTES: dict[Platform, FastItemRoute] = {
    "douyin": douyin.FAST_ITEM_ROUTE,
    "tiktok": tiktok.FAST_ITEM_ROUTE,
}
FAST_CHANNEL_ROUTES: dict[Platform, FastChannelRoute] = {
    "douyin": douyin.FAST_CHANNEL_ROUTE,
    "tiktok": tiktok.FAST_CHANNEL_ROUTE,
}
#: Errors after which the next route may still succeed (the item itself is fine).
_FALL_THROUGH = (Blocked, ScrapeTimeout, LayoutChanged)


async def resolve_short(session: Session, parsed: ParsedUrl) -> ParsedUrl:
    """Follow a short link in the browser session and classify where it lands."""
    capture = await load(session, parsed.canonical_url, LoadSpec())
    try:
        target = classify(capture.url)
    except ScraperError as exc:
        raise NotFound(
            f"the short link {parsed.canonical_url} does not lead to a video or profile"
            f" (it went to {capture.url})",
            url=parsed.canonical_url,
        ) from exc
    if target.kind == "short":
        raise NotFound(f"the short link {parsed.canonical_url} redirects in a loop", url=parsed.canonical_url)
    return target


async def fetch_item(session: Session, parsed: ParsedUrl, *, fast: bool = True) -> Video:
    """The item by the fast route when enabled (``fast``: this attempt may use it), else, or when it
    misses, by the platform's navigation routes in order until one yields it.

    A block on the fast route is raised like any block: the pool scores the session and the
    next attempt (``fast=False``) navigates on another session.
    """
    if fast and session.settings.fast_path:
        fast_route = FAST_ITEM_ROUTES[parsed.platform]
        try:
            return await fast_item(session, fast_route, parsed)
        except FastPathMissed as exc:
            log.info("fast route %s missed: %s", fast_route.name, exc, extra={"route": fast_route.name})
    failures: list[ScraperError] = []
    for route in ITEM_ROUTES[parsed.platform]:
        try:
            capture = await load(session, route.page_url(parsed), route.spec)
            video = route.normalize(route.read(capture))
            for failure in failures:  # a block on an earlier route still marks this identity
                if outcome_of(failure) is Outcome.RISK:
                    session.record(failure)
            return video
        except _FALL_THROUGH as exc:
            log.info("route %s failed: %s", route.name, exc, extra={"route": route.name, "code": exc.code})
            failures.append(exc)
    # A block on any route means another session may succeed: report that, so the job is retried.
    raise next((e for e in failures if e.retryable), failures[-1])


MEDIA_REFERERS: dict[Platform, Callable[[Video], str]] = {
    "douyin": douyin.media_referer,
    "tiktok": tiktok.media_referer,
}

CHANNEL_ROUTES: dict[Platform, ChannelRoute] = {
    "douyin": douyin.CHANNEL_ROUTE,
    "tiktok": tiktok.CHANNEL_ROUTE,
}


async def in_fresh_sessions(
    pool: BrowserPool, work: Callable[[Session], Awaitable[T]], *, family: str | None = None
) -> T:
    """Run ``work`` in a session; on a block, crash or timeout run it again on another session.

    ``family`` (``scraper.pacing``): lease the session whose pacing lets it make such a request soonest.

    The pool has already cooled down or retired the failed session, so the next lease is a
    different identity. Business answers (not found, private) and layout changes are final.
    """
    attempts = max(1, pool.settings.risk_retries)
    last: ScraperError | None = None
    for attempt in range(1, attempts + 1):
        try:
            async with pool.session(family) as session:
                return await work(session)
        except ScraperError as exc:
            if not exc.retryable:
                raise
            last = exc
            log.info(
                "attempt %d/%d failed on a session: %s", attempt, attempts, exc, extra={"code": exc.code}
            )
    assert last is not None
    raise last


async def _user(session: Session, parsed: ParsedUrl) -> ParsedUrl:
    if parsed.kind == "short":
        parsed = await resolve_short(session, parsed)
    if parsed.kind != "user":
        raise WrongKind(
            f"{parsed.canonical_url} is a {parsed.kind}, not a profile; use the video routes",
            url=parsed.canonical_url,
        )
    return parsed


class ChannelJob:
    """One channel listing across attempts: by the posts API while it answers (a block mid-way
    resumes from the last cursor on the next session), by scrolling the profile page once the
    fast route has missed or is off.

    A continuation (``query.resume``) asks the posts API from the resume page at once; when
    pinned posts are still to come and that page is not the first, the first page is asked
    once before it for its pinned posts alone (the platforms send them nowhere else).
    """

    def __init__(self, query: ChannelQuery) -> None:
        self.query = query
        resume = query.resume
        self.progress = ChannelProgress(query)
        self.progress.cursor = resume.page if resume else 0
        self.pinned: ChannelProgress | None = None
        if resume is not None and resume.pinned and resume.page:
            first_page = replace(query, make_cursor=None)
            self.pinned = ChannelProgress(first_page)
            self.pinned.listing = ChannelListing(first_page, start=0, pinned_only=True)
        self.fast = True

    async def run(self, session: Session, user: ParsedUrl) -> dict[str, Any]:
        if self.fast and session.settings.fast_path:
            route = FAST_CHANNEL_ROUTES[user.platform]
            try:
                if self.pinned is not None and not self.pinned.listing.complete:
                    await fast_channel(session, route, user, self.pinned)
                    self.progress.profile = self.pinned.profile
                    self.progress.listing.take_pinned(self.pinned.listing)
                return await fast_channel(session, route, user, self.progress)
            except FastPathMissed as exc:
                log.info("fast route %s missed: %s", route.name, exc, extra={"route": route.name})
                self.fast = False
        return await list_channel(session, CHANNEL_ROUTES[user.platform], user, self.query)


class ItemJob:
    """One item across attempts: the fast route on the first, navigation on retries (after a block)."""

    def __init__(self) -> None:
        self.attempts = 0

    async def run(self, session: Session, parsed: ParsedUrl) -> Video:
        self.attempts += 1
        return await fetch_item(session, parsed, fast=self.attempts == 1)


async def list_videos(pool: BrowserPool, parsed: ParsedUrl, query: ChannelQuery) -> dict[str, Any]:
    """A channel's posts per ``query`` (short links are followed first)."""
    job = ChannelJob(query)

    async def work(session: Session) -> dict[str, Any]:
        return await job.run(session, await _user(session, parsed))

    return await in_fresh_sessions(pool, work, family=POSTS)


async def open_item(session: Session, parsed: ParsedUrl, job: ItemJob | None = None) -> Video:
    """A post from any item URL or short link, in ``session`` (whose cookies then fit its media)."""
    if parsed.kind == "short":
        parsed = await resolve_short(session, parsed)
    if parsed.kind not in ("video", "photo"):
        raise WrongKind(
            f"{parsed.canonical_url} is a profile, not a video; use the channel routes",
            url=parsed.canonical_url,
        )
    return await (job or ItemJob()).run(session, parsed)


async def parse_video(pool: BrowserPool, parsed: ParsedUrl) -> dict[str, Any]:
    """A video or photo post's normalized result (short links are followed first)."""
    job = ItemJob()

    async def work(session: Session) -> dict[str, Any]:
        return (await open_item(session, parsed, job)).to_result()

    return await in_fresh_sessions(pool, work, family=ITEM)


async def scrape_url(pool: BrowserPool, parsed: ParsedUrl, query: ChannelQuery) -> dict[str, Any]:
    """Whatever the URL is: a post's result, or a channel's listing per ``query`` (for the CLI)."""

    channel, item = ChannelJob(query), ItemJob()

    async def work(session: Session) -> dict[str, Any]:
        target = await resolve_short(session, parsed) if parsed.kind == "short" else parsed
        if target.kind == "user":
            return await channel.run(session, target)
        return (await item.run(session, target)).to_result()

    return await in_fresh_sessions(pool, work)
