"""Scraping operations as the worker and the CLI call them: URL in, normalized result out."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from models.video import Video
from scraper import douyin, tiktok
from scraper.channel import ChannelQuery, ChannelRoute, list_channel
from scraper.errors import Blocked, LayoutChanged, NotFound, ScraperError, ScrapeTimeout, WrongKind
from scraper.hosts import Platform
from scraper.loader import LoadSpec, load
from scraper.outcome import Outcome, outcome_of
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


async def fetch_item(session: Session, parsed: ParsedUrl) -> Video:
    """Run the platform's routes in order until one yields the item."""
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


async def in_fresh_sessions(pool: BrowserPool, work: Callable[[Session], Awaitable[T]]) -> T:
    """Run ``work`` in a session; on a block, crash or timeout run it again on another session.

    The pool has already cooled down or retired the failed session, so the next lease is a
    different identity. Business answers (not found, private) and layout changes are final.
    """
    attempts = max(1, pool.settings.risk_retries)
    last: ScraperError | None = None
    for attempt in range(1, attempts + 1):
        try:
            async with pool.session() as session:
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


async def list_videos(pool: BrowserPool, parsed: ParsedUrl, query: ChannelQuery) -> dict[str, Any]:
    """A channel's posts per ``query`` (short links are followed first)."""

    async def work(session: Session) -> dict[str, Any]:
        user = await _user(session, parsed)
        return await list_channel(session, CHANNEL_ROUTES[user.platform], user, query)

    return await in_fresh_sessions(pool, work)


async def open_item(session: Session, parsed: ParsedUrl) -> Video:
    """A post from any item URL or short link, in ``session`` (whose cookies then fit its media)."""
    if parsed.kind == "short":
        parsed = await resolve_short(session, parsed)
    if parsed.kind not in ("video", "photo"):
        raise WrongKind(
            f"{parsed.canonical_url} is a profile, not a video; use the channel routes",
            url=parsed.canonical_url,
        )
    return await fetch_item(session, parsed)


async def parse_video(pool: BrowserPool, parsed: ParsedUrl) -> dict[str, Any]:
    """A video or photo post's normalized result (short links are followed first)."""

    async def work(session: Session) -> dict[str, Any]:
        return (await open_item(session, parsed)).to_result()

    return await in_fresh_sessions(pool, work)


async def scrape_url(pool: BrowserPool, parsed: ParsedUrl, query: ChannelQuery) -> dict[str, Any]:
    """Whatever the URL is: a post's result, or a channel's listing per ``query`` (for the CLI)."""

    async def work(session: Session) -> dict[str, Any]:
        target = await resolve_short(session, parsed) if parsed.kind == "short" else parsed
        if target.kind == "user":
            return await list_channel(session, CHANNEL_ROUTES[target.platform], target, query)
        return (await fetch_item(session, target)).to_result()

    return await in_fresh_sessions(pool, work)
