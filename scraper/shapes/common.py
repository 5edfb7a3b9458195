"""The parts of a post both platforms have, assembled into one ``Video`` the same way.

A platform module says *where* each part is (its key tables and a few small
functions); this module says *what* a part is: an author from a user object,
counters, music, images, the video-or-photo media, and which result fields the
platform did not send. It also holds the shapes that are not a single post:
``PostPage`` (a list of posts) and ``Profile``.

Required of a post is its id alone: the vendor contract cannot name a post
without ``video_id``, while every other field has an empty value it allows
(``create_time`` may be ``null``). So an absent field never fails the item; it is
left empty and named in ``Video.missing``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from models.video import Author, Image, Music, Statistics, Video
from scraper.errors import LayoutChanged, ScraperError
from scraper.shapes.media import Rendition, best_rendition, download_fields
from scraper.shapes.values import (
    JSON,
    as_dict,
    as_ident,
    as_int,
    as_list,
    as_text,
    first_int,
    first_url,
    unix_to_iso,
)

Platform = Literal["douyin", "tiktok"]
MediaType = Literal["video", "photo"]
Counts = dict[str, int | None]

__all__ = [
    "AuthorKeys",
    "Counts",
    "Media",
    "MusicKeys",
    "Platform",
    "Post",
    "PostPage",
    "Profile",
    "build_video",
    "counts",
    "images",
    "make_author",
    "music",
    "photo_media",
    "post_url",
    "profile_stats",
    "raise_status",
    "required_id",
    "shows_post",
    "title_of",
    "unix_time",
    "video_media",
]


# --------------------------------------------------------------------------- key tables


@dataclass(frozen=True)
class AuthorKeys:
    """Where a platform's user object keeps each author field, best key first."""

    uid: tuple[str, ...]
    sec_uid: tuple[str, ...]
    unique_id: tuple[str, ...]
    avatar_url: tuple[str, ...]


@dataclass(frozen=True)
class MusicKeys:
    """Where a platform's music object keeps title, author, URL and duration (seconds on both)."""

    title: str
    author: str
    url: str
    duration: str


# --------------------------------------------------------------------------- parts


def required_id(value: Any, what: str) -> str:
    """The one field a post cannot do without: the vendor result has no way to name it otherwise."""
    ident = as_ident(value)
    if ident is None:
        raise LayoutChanged(f"{what}: the item has no id")
    return ident


def unix_time(value: Any) -> str | None:
    """A create time (unix seconds, int or string) as ISO 8601; ``None`` when absent or unreadable."""
    seconds = as_int(value)
    return unix_to_iso(seconds) if seconds and seconds > 0 else None


def title_of(*captions: Any) -> str | None:
    """The first non-empty caption; ``""`` when only empty ones were sent; ``None`` when none was."""
    sent = [caption.strip() for caption in captions if isinstance(caption, str)]
    return next((caption for caption in sent if caption), "" if sent else None)


def shows_post(*, media: bool, author: bool, others: Iterable[bool]) -> bool:
    """The rule both platforms' post recognizers share: an object is a post when it shows its
    media or its author, and at least two of its marks (an id alone proves nothing)."""
    return (media or author) and sum([media, author, *others]) >= 2


#: A post's page when the payload names none: (URL template, path word for a video, for a photo post).
_POST_URLS: dict[Platform, tuple[str, str, str]] = {
    "tiktok": ("https://www.tiktok.com/@{user}/{kind}/{id}", "video", "photo"),
    "douyin": ("https://www.douyin.com/{kind}/{id}", "video", "note"),
}


def post_url(platform: Platform, video_id: str, *, photo: bool, author: Author | None) -> str:
    """The canonical page of a post (TikTok's names the author; ``_`` when unknown)."""
    template, video_word, photo_word = _POST_URLS[platform]
    user = (author.unique_id if author else None) or "_"
    return template.format(user=user, kind=photo_word if photo else video_word, id=video_id)


def make_author(user: JSON, keys: AuthorKeys) -> Author:
    def pick(names: tuple[str, ...], read: Callable[[Any], str | None]) -> str | None:
        return next((value for value in (read(user.get(name)) for name in names) if value), None)

    return Author(
        nickname=as_text(user.get("nickname")) or "",
        uid=pick(keys.uid, as_ident),
        sec_uid=pick(keys.sec_uid, as_ident),
        unique_id=pick(keys.unique_id, as_ident),
        avatar_url=pick(keys.avatar_url, first_url),
    )


def counts(sources: Sequence[JSON], keys: Mapping[str, str], *, hidden: Iterable[str] = ()) -> Counts:
    """Counters from the first source that has them; a ``hidden`` count of 0 means "not shown", so null."""
    values = {name: first_int(sources, key) for name, key in keys.items()}
    for name in hidden:
        if values.get(name) == 0:
            values[name] = None
    return values


def music(raw: Any, keys: MusicKeys) -> Music | None:
    if not isinstance(raw, dict) or not raw:
        return None
    return Music(
        title=as_text(raw.get(keys.title)),
        author=as_text(raw.get(keys.author)),
        url=first_url(raw.get(keys.url)),
        duration=as_int(raw.get(keys.duration)),
    )


def images(items: Any, url_keys: tuple[str, ...], size_keys: tuple[str, str]) -> list[Image]:
    """Photo-post images; the first of ``url_keys`` that has a URL wins (unwatermarked lists first)."""
    found: list[Image] = []
    for item in map(as_dict, as_list(items)):
        url = next((u for u in (first_url(item.get(key)) for key in url_keys) if u), None)
        if url:
            width, height = (as_int(item.get(key)) or None for key in size_keys)
            found.append(Image(url=url, width=width, height=height))
    return found


# --------------------------------------------------------------------------- one post


@dataclass(frozen=True)
class Media:
    """What differs between a video and a photo post in the result (``None``: not sent)."""

    media_type: MediaType
    duration: int | None
    rendition: Rendition | None = None
    images: list[Image] | None = None
    width: int | None = None
    height: int | None = None


def video_media(video: JSON, duration: int | None, renditions: list[Rendition]) -> Media:
    """The best rendition; the frame size from the video object, else from that rendition."""
    best = best_rendition(renditions)
    return Media(
        media_type="video",
        duration=duration if duration and duration > 0 else None,
        rendition=best,
        width=as_int(video.get("width")) or (best.width if best else None) or None,
        height=as_int(video.get("height")) or (best.height if best else None) or None,
    )


def photo_media(found: list[Image]) -> Media:
    return Media(media_type="photo", duration=0, images=found)


@dataclass(frozen=True)
class Post:
    """The platform-independent part of a result; ``None`` marks a part the platform did not send."""

    platform: Platform
    video_id: str
    title: str | None
    create_time: str | None
    author: Author | None
    counts: Counts
    music: Music | None
    cover_url: str | None
    share_url: str
    is_pinned: bool


#: The counters the vendor result types as ``int``: absent ones read 0, so they are named in ``missing``.
_VENDOR_COUNTS = ("likes", "comments", "shares")


def _missing(post: Post, media: Media) -> list[str]:
    """The result fields the platform did not send, in the result's field order."""
    absent_counts = [name for name in _VENDOR_COUNTS if post.counts.get(name) is None]
    photo = media.media_type == "photo"
    fields = {
        "title": post.title is None,
        "author": post.author is None,
        "cover_url": post.cover_url is None,
        "download_url": not photo and media.rendition is None,
        "duration": media.duration is None,
        "create_time": post.create_time is None,
        "statistics": len(absent_counts) == len(_VENDOR_COUNTS),
        "music": post.music is None,
        "images": photo and not media.images,
        "width": not photo and media.width is None,
        "height": not photo and media.height is None,
    }
    names = [name for name, absent in fields.items() if absent]
    if not fields["statistics"]:
        at = names.index("music") if "music" in names else len(names)
        names[at:at] = [f"statistics.{name}" for name in absent_counts]
    return names


def build_video(post: Post, media: Media) -> Video:
    values = post.counts
    return Video(
        platform=post.platform,
        video_id=post.video_id,
        title=post.title or "",
        create_time=post.create_time,
        author=post.author or Author(),
        statistics=Statistics(
            likes=values.get("likes") or 0,
            comments=values.get("comments") or 0,
            shares=values.get("shares") or 0,
            plays=values.get("plays"),
            collects=values.get("collects"),
        ),
        music=post.music,
        cover_url=post.cover_url,
        share_url=post.share_url,
        is_pinned=post.is_pinned,
        media_type=media.media_type,
        duration=media.duration or 0,
        images=media.images,
        width=media.width,
        height=media.height,
        missing=_missing(post, media),
        **download_fields(media.rendition),
    )


# --------------------------------------------------------------------------- pages and profiles


@dataclass(frozen=True)
class PostPage:
    """A list of posts: one page of a channel, a search, or a page that embeds several posts.

    ``author`` is the account the page belongs to when the payload says so (a
    profile page); ``cursor_key`` is the platform's name for the cursor.
    """

    videos: list[Video]
    has_more: bool
    cursor: int = 0
    author: Author | None = None
    cursor_key: str = "cursor"


@dataclass(frozen=True)
class Profile:
    """An account and its counters (``None`` where the response does not carry one)."""

    author: Author
    stats: Counts
    private: bool = False


def profile_stats(sources: Sequence[JSON], keys: Mapping[str, str]) -> Counts:
    return {name: first_int(sources, key) for name, key in keys.items()}


def raise_status(error: ScraperError | None) -> None:
    if error is not None:
        raise error
