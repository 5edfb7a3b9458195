"""The shared channel mechanism: load a profile, read its posts XHRs, scroll for more.

The page's own JavaScript signs every posts request; we only scroll like a
reader and read the responses. Platform modules give a ``ChannelRoute``.

A listing is one page of a channel's order (newest first; see ``Position``). When more is
left, ``ChannelListing.result`` says where the next page starts (a ``Resume``: the last post
returned, the platform cursor of the first posts page still holding an unreturned post, and
whether pinned posts are still to come), and a listing given that ``Resume`` continues there:
the posts API from that cursor on the fast path, or, since a profile page can only be scrolled
from its top, by scrolling and skipping every post up to the last one returned.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from models.video import Author, Video
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
class Position:
    """A post's place in a listing's order: newest first by create time (ms), then by id.

    Undated posts (``created_ms`` -1) come after every dated one. Ids compare as numbers when they
    are digits of any length (shorter first), so the order is total and the same on every page.
    """

    created_ms: int
    video_id: str

    @classmethod
    def of(cls, video: Video) -> Position:
        created = _created(video)
        return cls(-1 if created is None else (created - _EPOCH) // _MS, video.video_id)

    @property
    def key(self) -> tuple[int, int, str]:
        """Sorts ascending; a listing lists descending."""
        return (self.created_ms, len(self.video_id), self.video_id)


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a listing continues one that stopped with more left (``ChannelListing.resume``).

    ``after``: the last post the previous page returned; only posts after it in the order are
    listed. ``page``: the platform cursor of the first posts page holding a post not yet
    returned (0: the first page). ``pinned``: pinned posts after ``after`` are still to come;
    the platforms send pinned posts on the first page only. ``account``: the sec_uid of the
    account listed, so a continuation of another account fails instead of mixing two channels.
    """

    after: Position
    page: int = 0
    pinned: bool = False
    account: str | None = None


#: Turns where the next page starts into the result's opaque ``cursor`` (the server signs it).
CursorMaker = Callable[[Resume, Author], str]


@dataclass(frozen=True, slots=True)
class ChannelQuery:
    """What the client asked for: how many, from which instant (start of a day) on, and after which
    post of an earlier page (``resume``). ``make_cursor`` (the server's) adds ``cursor`` to a
    result with more left; without it a result has none (the CLI)."""

    count: int
    since: datetime | None = None
    resume: Resume | None = None
    make_cursor: CursorMaker | None = field(default=None, compare=False)


@dataclass
class ChannelListing:
    """Posts gathered so far, deduplicated, with the stop rules of a ``ChannelQuery``.

    ``start`` is the platform cursor the first page added was asked with (None: the query's
    resume page, as the fast path asks; the navigation path reads from the top, 0). With
    ``pinned_only`` the listing takes the pinned posts of one first page and nothing else.
    """

    query: ChannelQuery
    start: int | None = None
    pinned_only: bool = False
    regular: list[Video] = field(default_factory=list)
    pinned: list[Video] = field(default_factory=list)
    reached_since: bool = False
    platform_has_more: bool = True
    pages: int = 0
    _ids: set[str] = field(default_factory=set)
    #: Each regular post's page: the platform cursor that page was asked with.
    _page_of: dict[str, int] = field(default_factory=dict)
    _next_cursor: int = 0
    _dated: int = 0
    #: A dated regular post was met, kept or not (a continuation skips those of earlier pages).
    _met_dated: bool = False

    def __post_init__(self) -> None:
        resume = self.query.resume
        self._next_cursor = self.start if self.start is not None else resume.page if resume else 0

    def add(self, page: PostPage) -> None:
        asked_with, self._next_cursor = self._next_cursor, page.cursor
        self.pages += 1
        if not self.pinned_only:
            self.platform_has_more = page.has_more
        for video in page.videos:
            if video.video_id in self._ids:
                continue
            self._ids.add(video.video_id)
            self._met_dated = self._met_dated or (not video.is_pinned and video.create_time is not None)
            if not self._after_resume(video):
                continue  # returned by an earlier page
            if video.is_pinned:
                if self._in_range(video):
                    self.pinned.append(video)
            elif self.pinned_only:
                continue
            elif self._in_range(video):
                self.regular.append(video)
                self._page_of[video.video_id] = asked_with
                self._dated += video.create_time is not None
            elif _created(video) is not None:
                self.reached_since = True  # regular posts come newest first: the rest are older

    def take_pinned(self, other: ChannelListing) -> None:
        """The pinned posts ``other`` (a ``pinned_only`` listing of the first page) found."""
        for video in other.pinned:
            if video.video_id not in self._ids:
                self._ids.add(video.video_id)
                self.pinned.append(video)

    def _in_range(self, video: Video) -> bool:
        """Inside ``since`` (all are, without one); an undated post cannot be shown to be, so it is not."""
        since, created = self.query.since, _created(video)
        return since is None or (created is not None and created >= since)

    def _after_resume(self, video: Video) -> bool:
        resume = self.query.resume
        return resume is None or Position.of(video).key < resume.after.key

    @property
    def complete(self) -> bool:
        """Nothing more to load: enough regular posts, the since day passed, or the channel ended.

        Undated posts sort after every dated one, so they do not fill a page that more dated
        posts may follow. Only a listing that has met no dated post at all stops at as many
        undated ones as asked for: a layout that lost its create times must not page through a
        whole channel (its pages are then in id order).
        """
        if self.pinned_only:
            return self.pages > 0
        count, undated = self.query.count, len(self.regular) - self._dated
        enough = self._dated >= count or (not self._met_dated and undated >= count)
        return enough or self.reached_since or not self.platform_has_more

    def result(self, profile: Profile) -> dict[str, Any]:
        """The vendor's listing shape; ``cursor`` too when more is left and the query can make one.

        Raises ``NotFound`` when a continued listing finds another account than the cursor's.
        """
        self._check_account(profile)
        merged = sorted(self.regular + self.pinned, key=lambda v: Position.of(v).key, reverse=True)
        videos = merged[: self.query.count]
        truncated = len(merged) > self.query.count
        has_more = truncated or (self.platform_has_more and not self.reached_since)
        result: dict[str, Any] = {
            "author": profile.author.model_dump(mode="json"),
            "videos": [v.to_result() for v in videos],
            "count": len(videos),
            "has_more": has_more,
        }
        make_cursor = self.query.make_cursor
        if has_more and videos and make_cursor is not None:
            result["cursor"] = make_cursor(self.resume(videos, profile), profile.author)
        return result

    def resume(self, returned: list[Video], profile: Profile) -> Resume:
        """Where the page after ``returned`` (this listing's page, non-empty) starts."""
        shown = {video.video_id for video in returned}
        page = next((self._page_of[v.video_id] for v in self.regular if v.video_id not in shown), None)
        return Resume(
            after=Position.of(returned[-1]),
            page=self._next_cursor if page is None else page,
            pinned=any(video.video_id not in shown for video in self.pinned),
            account=profile.author.sec_uid,
        )

    def _check_account(self, profile: Profile) -> None:
        resume, found = self.query.resume, profile.author.sec_uid
        if resume is not None and resume.account and found and found != resume.account:
            raise NotFound(
                f"the profile now belongs to another account (sec_uid {found}) than the one the cursor"
                f" continues ({resume.account}); list it again without the cursor"
            )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _created(video: Video) -> datetime | None:
    if video.create_time is None:
        return None
    return datetime.fromisoformat(video.create_time.replace("Z", "+00:00"))


async def list_channel(
    session: Session, route: ChannelRoute, parsed: ParsedUrl, query: ChannelQuery
) -> dict[str, Any]:
    """A channel's posts, newest first, per ``query`` (pinned posts placed by their create time).

    A profile page lists from its top: a continuation (``query.resume``) scrolls past the posts
    earlier pages returned, skipping them, until it has its own.
    """
    url = route.page_url(parsed)
    await session.pacer.acquire(POSTS)  # the profile page's app asks for the first posts page itself
    xhrs = (route.posts_xhr, *route.extra_xhrs)
    async with live_page(session, url, xhr_paths=xhrs, family=PAGE, cost=1 + len(route.extra_xhrs)) as live:
        profile = await route.read_profile(live)
        if profile.private:
            raise PrivateContent(f"the account {url} is private", url=url)
        listing = ChannelListing(query, start=0)
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
