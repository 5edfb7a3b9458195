"""The shared channel mechanism: load a profile, read its posts XHRs, scroll for more.

The page's own JavaScript signs every posts request; we only scroll like a
reader and read the responses. Platform modules give a ``ChannelRoute``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.video import Video
from scraper.errors import NotFound, PrivateContent
from scraper.loader import LivePage, diagnose, live_page
from scraper.pacing import PAGE, POSTS
from scraper.session import Session
from scraper.shapes.common import PostPage, Profile
from scraper.urls import ParsedUrl

log = logging.getLogger(__name__)

#: Scrolls without a new posts response before we conclude the page stopped loading.
MAX_SILENT_SCROLLS = 3


@dataclass(frozen=True, slots=True)
class ChannelRoute:
    """A platform's profile page: where it is, which XHRs carry it, how to read them."""

    name: str
    page_url: Callable[[ParsedUrl], str]
    posts_xhr: str
    extra_xhrs: tuple[str, ...]
    read_profile: Callable[[LivePage], Awaitable[Profile]]
    read_posts: Callable[[dict[str, Any]], PostPage]


@dataclass(frozen=True, slots=True)
class ChannelQuery:
    """What the client asked for: how many, and from which instant (start of a day) on."""

    count: int
    since: datetime | None = None


@dataclass
class ChannelListing:
    """Posts gathered so far, deduplicated, with the stop rules of a ``ChannelQuery``."""

    query: ChannelQuery
    regular: list[Video] = field(default_factory=list)
    pinned: list[Video] = field(default_factory=list)
    reached_since: bool = False
    platform_has_more: bool = True
    pages: int = 0
    _ids: set[str] = field(default_factory=set)

    def add(self, page: PostPage) -> None:
        self.pages += 1
        self.platform_has_more = page.has_more
        for video in page.videos:
            if video.video_id in self._ids:
                continue
            self._ids.add(video.video_id)
            if video.is_pinned:
                if self._in_range(video):
                    self.pinned.append(video)
            elif self._in_range(video):
                self.regular.append(video)
            elif _created(video) is not None:
                self.reached_since = True  # regular posts come newest first: the rest are older

    def _in_range(self, video: Video) -> bool:
        """Inside ``since`` (all are, without one); an undated post cannot be shown to be, so it is not."""
        since, created = self.query.since, _created(video)
        return since is None or (created is not None and created >= since)

    @property
    def complete(self) -> bool:
        """Nothing more to load: enough regular posts, the since day passed, or the channel ended."""
        return len(self.regular) >= self.query.count or self.reached_since or not self.platform_has_more

    def result(self, profile: Profile) -> dict[str, Any]:
        merged = sorted(self.regular + self.pinned, key=lambda v: _created(v) or _UNKNOWN, reverse=True)
        videos = merged[: self.query.count]
        truncated = len(merged) > self.query.count
        has_more = truncated or (self.platform_has_more and not self.reached_since)
        return {
            "author": profile.author.model_dump(mode="json"),
            "videos": [v.to_result() for v in videos],
            "count": len(videos),
            "has_more": has_more,
        }


#: Where a post without a create time sorts: after every dated one.
_UNKNOWN = datetime.min.replace(tzinfo=UTC)


def _created(video: Video) -> datetime | None:
    if video.create_time is None:
        return None
    return datetime.fromisoformat(video.create_time.replace("Z", "+00:00"))


async def list_channel(
    session: Session, route: ChannelRoute, parsed: ParsedUrl, query: ChannelQuery
) -> dict[str, Any]:
    """A channel's posts, newest first, per ``query`` (pinned posts placed by their create time)."""
    url = route.page_url(parsed)
    await session.pacer.acquire(POSTS)  # the profile page's app asks for the first posts page itself
    xhrs = (route.posts_xhr, *route.extra_xhrs)
    async with live_page(session, url, xhr_paths=xhrs, family=PAGE, cost=1 + len(route.extra_xhrs)) as live:
        profile = await route.read_profile(live)
        if profile.private:
            raise PrivateContent(f"the account {url} is private", url=url)
        listing = ChannelListing(query)
        listing.add(route.read_posts(await live.next_json(route.posts_xhr)))
        while not listing.complete:
            payload = await _scroll_for_more(live, route.posts_xhr)
            listing.add(route.read_posts(payload))
        log.info(
            "channel listed",
            extra={"route": route.name, "pages": listing.pages, "regular": len(listing.regular)},
        )
        return listing.result(profile)


async def _scroll_for_more(live: LivePage, path: str) -> Any:
    """Scroll until the page requests the next posts page; a few silent scrolls mean it stopped."""
    wait = live.data_timeout / MAX_SILENT_SCROLLS
    await live.session.pacer.acquire(POSTS)  # the scroll makes the page ask for one more posts page
    for _ in range(MAX_SILENT_SCROLLS):
        await live.scroll_to_bottom()
        payload = await live.poll_json(path, wait)
        if payload is not None:
            return payload
    raise await diagnose(live.page)


def missing_account(url: str) -> NotFound:
    return NotFound(f"the account {url} does not exist or was banned", url=url)
