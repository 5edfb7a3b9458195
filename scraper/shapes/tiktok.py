"""TikTok's shapes: ``itemStruct`` → ``Video``, page scopes and statuses, post lists, profiles.

Where the data lives is described in ``../shared/platforms.md`` §A (video page,
``itemStruct``) and §B (profile, ``/api/post/item_list/``). TikTok is camelCase
throughout; counts come as ints in ``stats`` and exact strings in ``statsV2``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from models.video import Author, Video
from scraper.errors import Blocked, LayoutChanged, NotFound, PrivateContent, ScraperError, Unavailable
from scraper.shapes.common import (
    AuthorKeys,
    MusicKeys,
    Post,
    PostPage,
    Profile,
    build_video,
    counts,
    images,
    make_author,
    music,
    photo_media,
    post_url,
    profile_stats,
    raise_status,
    required_id,
    shows_post,
    title_of,
    unix_time,
    video_media,
)
from scraper.shapes.media import Rendition, codec, url_key
from scraper.shapes.values import JSON, as_dict, as_ident, as_int, as_list, as_text, first_url

__all__ = [
    "TIKTOK_DETAIL_SCOPES",
    "TIKTOK_DOCUMENT_KEYS",
    "is_tiktok_item",
    "tiktok_author",
    "tiktok_document",
    "tiktok_item",
    "tiktok_item_list_page",
    "tiktok_status_error",
    "tiktok_status_message",
    "tiktok_user_detail",
    "tiktok_video_detail_item",
]

# --------------------------------------------------------------------------- key tables

AUTHOR_KEYS = AuthorKeys(
    uid=("id",),
    sec_uid=("secUid",),
    unique_id=("uniqueId",),
    avatar_url=("avatarLarger", "avatarMedium", "avatarThumb"),
)
STAT_KEYS = {
    "likes": "diggCount",
    "comments": "commentCount",
    "shares": "shareCount",
    "plays": "playCount",
    "collects": "collectCount",
}
MUSIC_KEYS = MusicKeys(title="title", author="authorName", url="playUrl", duration="duration")
PROFILE_STAT_KEYS = {
    "followers": "followerCount",
    "following": "followingCount",
    "likes": "heart",
    "videos": "videoCount",
}

# --------------------------------------------------------------------------- items


def _url_ok(url: str) -> bool:
    """yt-dlp drops ``www.tiktok.com/aweme/v1/play`` URLs as broken (platforms.md §A.3)."""
    return urlsplit(url).hostname != "www.tiktok.com"


def _address(
    address: JSON, *, codec_name: Any = None, bitrate: Any = None, priority: int = 0
) -> Rendition | None:
    """A ``PlayAddr`` / ``PlayAddrStruct`` (``{Uri, UrlList, UrlKey, DataSize, Width, Height, …}``)."""
    url = next((u for u in map(first_url, as_list(address.get("UrlList"))) if u and _url_ok(u)), None)
    if not url:
        return None
    key_codec, key_bitrate = url_key(address.get("UrlKey"))
    return Rendition(
        url,
        codec(codec_name) or key_codec,
        as_int(bitrate) or key_bitrate,
        priority=priority,
        width=as_int(address.get("Width")) or None,
        height=as_int(address.get("Height")) or None,
        size=as_int(address.get("DataSize")),
    )


def _renditions(video: JSON) -> list[Rendition]:
    """The ``bitrateInfo`` ladder and ``playAddr``; ``PlayAddrStruct`` where neither has a usable URL;
    the watermarked ``downloadAddr`` last.

    ``PlayAddrStruct`` (2025+, e.g. ``../shared/real-captures/tiktok-video-page.jarvis-2-20260630.html``)
    describes the ``playAddr`` stream with its size and frame size.
    """
    found = [
        rendition
        for entry in map(as_dict, as_list(video.get("bitrateInfo")))
        if (
            rendition := _address(
                as_dict(entry.get("PlayAddr")),
                codec_name=entry.get("CodecType"),
                bitrate=entry.get("Bitrate"),
                priority=1,
            )
        )
    ]
    play = first_url(video.get("playAddr"))
    if play and _url_ok(play):
        found.append(Rendition(play, codec(video.get("codecType")), as_int(video.get("bitrate")) or 0))
    struct = None if found else _address(as_dict(video.get("PlayAddrStruct")))
    download = first_url(video.get("downloadAddr"))
    marked = Rendition(download, codec(video.get("codecType")), watermark=True) if download else None
    return found + [r for r in (struct, marked) if r is not None and _url_ok(r.url)]


def _item_author(item: JSON) -> JSON | None:
    """The ``author`` object; legacy SIGI ``ItemModule`` items carry a uniqueId string plus flat fields."""
    author = item.get("author")
    if isinstance(author, dict):
        return author or None
    flat = {
        "uniqueId": author,
        "id": item.get("authorId"),
        "secUid": item.get("authorSecId"),
        "nickname": item.get("nickname"),
        "avatarThumb": item.get("avatarThumb"),
    }
    return flat if any(flat.values()) else None


def is_tiktok_item(value: Any) -> bool:
    """Whether ``value`` is an ``itemStruct``, judged by its own keys.

    A camelCase ``id`` (no ``aweme_id``), the post's media (``video``/``imagePost``)
    or a TikTok author (``author{uniqueId|secUid}``, or SIGI's string author), and
    at least two of those and ``createTime``/``stats`` — so a user object (``id``,
    ``createTime``, no media, no author) or a comment is not taken for a post.
    """
    if not isinstance(value, dict) or "aweme_id" in value or as_ident(value.get("id")) is None:
        return False
    author = value.get("author")
    return shows_post(
        media=isinstance(value.get("video"), dict) or isinstance(value.get("imagePost"), dict),
        author=isinstance(author, str) or bool({"uniqueId", "secUid"} & set(as_dict(author))),
        others=("createTime" in value, any(isinstance(value.get(k), dict) for k in ("stats", "statsV2"))),
    )


def tiktok_author(user: JSON) -> Author:
    """TikTok ``author``/``user`` (camelCase; avatars are plain URL strings)."""
    return make_author(user, AUTHOR_KEYS)


def tiktok_item(item: JSON) -> Video:
    """An ``itemStruct`` (video page, ``/api/item/detail/``, ``item_list``, search) → ``Video``."""
    video_id = required_id(item.get("id"), "TikTok itemStruct")
    video = as_dict(item.get("video"))
    image_post = as_dict(item.get("imagePost"))
    raw_author = _item_author(item)
    author = tiktok_author(raw_author) if raw_author else None
    post = Post(
        platform="tiktok",
        video_id=video_id,
        title=title_of(item.get("desc"), image_post.get("title")),
        create_time=unix_time(item.get("createTime")),
        author=author,
        counts=counts([as_dict(item.get("statsV2")), as_dict(item.get("stats"))], STAT_KEYS),
        music=music(item.get("music"), MUSIC_KEYS),
        cover_url=first_url(video.get("cover"))
        or first_url(video.get("originCover"))
        or first_url(as_dict(image_post.get("cover")).get("imageURL")),
        share_url=post_url("tiktok", video_id, photo=bool(image_post), author=author),
        is_pinned=bool(item.get("isPinnedItem")),
    )
    if image_post:
        found = images(image_post.get("images"), ("imageURL",), ("imageWidth", "imageHeight"))
        return build_video(post, photo_media(found))
    return build_video(post, video_media(video, as_int(video.get("duration")), _renditions(video)))


# --------------------------------------------------------------------------- status


_STATUS: dict[int, tuple[type[ScraperError], str]] = {
    10204: (NotFound, "item doesn't exist"),
    10221: (NotFound, "user banned or doesn't exist"),
    10216: (PrivateContent, "private post"),
    10222: (PrivateContent, "private account"),
    10231: (Unavailable, "not available in this region"),
    10000: (Blocked, "verification required"),
    10101: (Blocked, "request refused (SysErrPanic)"),
}


def tiktok_status_error(code: Any, message: Any = None, *, url: str | None = None) -> ScraperError | None:
    """The typed error for a TikTok ``statusCode``; ``None`` when it is 0 (or absent)."""
    number = as_int(code)
    if not number:
        return None
    kind, meaning = _STATUS.get(number, (Unavailable, "unknown status"))
    said = f": {message}" if as_text(message) else ""
    return kind(f"TikTok statusCode {number} ({meaning}){said}", url=url)


def tiktok_status_message(detail: JSON) -> Any:
    """``statusMsg`` (desktop, APIs) or ``statusMessage`` (the mobile ``api-data`` script)."""
    return detail.get("statusMsg") or detail.get("statusMessage")


# --------------------------------------------------------------------------- page documents


def _scope(document: JSON) -> JSON:
    """Accept the whole rehydration document or its ``__DEFAULT_SCOPE__``."""
    inner = document.get("__DEFAULT_SCOPE__")
    return inner if isinstance(inner, dict) else document


#: Where a TikTok document keeps the item detail, by layout: the desktop page; the mobile reflow
#: page (``webapp.reflow.video.detail`` with ``statusCode``/``statusMessage``, beside the *sharer's*
#: ``webapp.reflow.global.shareUser``, which is not the author); and the 2026 mobile page's separate
#: ``api-data`` script (real capture in ``../shared/real-captures/``:
#: ``tiktok-mobile-photo-page-api-data.Tiktok-Downloader-20260502.html``).
TIKTOK_DETAIL_SCOPES = ("webapp.video-detail", "webapp.reflow.video.detail", "videoDetail")


def _detail_scope(scope: JSON) -> JSON | None:
    """The first detail scope that says something (a non-empty one beats an empty placeholder)."""
    details = [scope[key] for key in TIKTOK_DETAIL_SCOPES if isinstance(scope.get(key), dict)]
    return next((detail for detail in details if detail), details[0] if details else None)


# Legacy SIGI_STATE (platforms.md §A.1): ``ItemModule`` keyed by item id, ``UserModule.users`` /
# ``UserModule.stats`` keyed by uniqueId, ``ItemList["user-post"]`` (ids, ``hasMore``, ``cursor``),
# and ``VideoPage`` (a video page) or ``UserPage`` (a profile page) with the page's status.

_ITEM_ID_IN_URL = re.compile(r"/(?:video|photo)/(\d+)")


def _sigi_items(state: JSON) -> list[JSON]:
    """``ItemModule``'s items, in ``ItemList["user-post"].list`` order where the page gives one."""
    module = {key: item for key, item in as_dict(state.get("ItemModule")).items() if isinstance(item, dict)}
    order = [
        str(key) for key in as_list(as_dict(as_dict(state.get("ItemList")).get("user-post")).get("list"))
    ]
    ordered = [module[key] for key in order if key in module]
    return ordered + [item for key, item in module.items() if key not in order]


def _sigi_with_user(item: JSON, users: JSON) -> JSON:
    """Put the ``UserModule`` user in place of a string ``author`` (its full profile fields)."""
    author = item.get("author")
    if isinstance(author, str) and isinstance(users.get(author), dict):
        return {**item, "author": users[author]}
    return item


def _sigi_is_listing(state: JSON, url: str | None) -> bool:
    """A profile page (``UserPage``, ``ItemList["user-post"]``) or several items: a listing.

    A video page (``VideoPage``), the item the URL names, or a lone item: one video.
    """
    items = as_dict(state.get("ItemModule"))
    wanted = _ITEM_ID_IN_URL.search(url or "")
    if (wanted and wanted.group(1) in items) or "VideoPage" in state:
        return False
    profile = "UserPage" in state or "user-post" in as_dict(state.get("ItemList"))
    return profile or len(items) != 1


def _sigi_detail(state: JSON, url: str | None) -> JSON:
    """A SIGI_STATE video page → the ``webapp.video-detail`` shape."""
    items = as_dict(state.get("ItemModule"))
    wanted = _ITEM_ID_IN_URL.search(url or "")
    item = as_dict(items.get(wanted.group(1))) if wanted else {}
    item = item or next(iter(_sigi_items(state)), {})
    users = as_dict(as_dict(state.get("UserModule")).get("users"))
    page = as_dict(state.get("VideoPage"))
    status = {"statusCode": page.get("statusCode"), "statusMsg": tiktok_status_message(page)}
    return {**status, "itemInfo": {"itemStruct": _sigi_with_user(item, users)}}


def _sigi_user(state: JSON) -> tuple[str | None, JSON]:
    """The page's account: ``UserPage.uniqueId`` in ``UserModule.users``, or the only user there."""
    users = as_dict(as_dict(state.get("UserModule")).get("users"))
    name = as_text(as_dict(state.get("UserPage")).get("uniqueId"))
    if name is None and len(users) == 1:
        name = next(iter(users))
    return name, as_dict(users.get(name)) if name else {}


def _sigi_listing(state: JSON, url: str | None) -> PostPage:
    """A SIGI_STATE profile page → its posts and account (``hasMore``/``cursor`` from ``ItemList``)."""
    page = as_dict(state.get("UserPage"))
    raise_status(tiktok_status_error(page.get("statusCode"), tiktok_status_message(page), url=url))
    users = as_dict(as_dict(state.get("UserModule")).get("users"))
    _, user = _sigi_user(state)
    posts = as_dict(as_dict(state.get("ItemList")).get("user-post"))
    return PostPage(
        videos=[tiktok_item(_sigi_with_user(item, users)) for item in _sigi_items(state) if item.get("id")],
        has_more=bool(posts.get("hasMore")),
        cursor=as_int(posts.get("cursor")) or 0,
        author=tiktok_author(user) if user else None,
    )


def _video_detail(document: JSON, url: str | None) -> JSON:
    scope = _scope(document)
    detail = _detail_scope(scope)
    if detail is not None:
        return detail
    if "ItemModule" in scope:
        if _sigi_is_listing(scope, url):
            count = len(as_dict(scope.get("ItemModule")))
            raise LayoutChanged(
                f"the TikTok SIGI_STATE is a listing ({count} posts), not a video page", url=url
            )
        return _sigi_detail(scope, url)
    if "itemInfo" in scope or "statusCode" in scope:  # /api/item/detail/ or the detail itself
        return scope
    raise LayoutChanged(
        f"no {' / '.join(TIKTOK_DETAIL_SCOPES)} in the TikTok data (keys: {sorted(scope)[:12]})", url=url
    )


def tiktok_video_detail_item(document: JSON, *, url: str | None = None) -> JSON:
    """The ``itemStruct`` of a video page, or the typed error the page's status stands for.

    Accepts the rehydration document, its ``__DEFAULT_SCOPE__``, an
    ``/api/item/detail/`` response, or a legacy ``SIGI_STATE`` video page.
    """
    detail = _video_detail(document, url)
    raise_status(tiktok_status_error(detail.get("statusCode"), tiktok_status_message(detail), url=url))
    item = as_dict(as_dict(detail.get("itemInfo")).get("itemStruct"))
    if not item:
        raise LayoutChanged("TikTok video-detail has statusCode 0 but no itemInfo.itemStruct", url=url)
    if not item.get("video") and item.get("isContentClassified"):
        raise Unavailable("TikTok age-restricted content: login required", url=url)
    return item


# --------------------------------------------------------------------------- lists and profiles


def tiktok_item_list_page(payload: JSON, *, url: str | None = None) -> PostPage:
    """``/api/post/item_list/`` → videos, ``hasMore``, ``cursor`` (a string on the wire)."""
    if not payload:
        raise Blocked("TikTok answered with an empty body (bad signature or device id)", url=url)
    raise_status(tiktok_status_error(payload.get("statusCode", payload.get("status_code")), url=url))
    return PostPage(
        videos=[tiktok_item(item) for item in map(as_dict, as_list(payload.get("itemList")))],
        has_more=bool(payload.get("hasMore")),
        cursor=as_int(payload.get("cursor")) or 0,
    )


def _sigi_profile(state: JSON, url: str | None) -> Profile:
    """A SIGI_STATE profile: ``UserModule.users[uniqueId]`` and ``UserModule.stats[uniqueId]``."""
    page = as_dict(state.get("UserPage"))
    raise_status(tiktok_status_error(page.get("statusCode"), tiktok_status_message(page), url=url))
    name, user = _sigi_user(state)
    if not user:
        raise LayoutChanged("TikTok SIGI_STATE has no UserModule.users entry for the page's account", url=url)
    stats = as_dict(as_dict(as_dict(state.get("UserModule")).get("stats")).get(name or ""))
    return Profile(
        tiktok_author(user),
        profile_stats([stats, as_dict(user.get("stats"))], PROFILE_STAT_KEYS),
        private=bool(user.get("privateAccount") or user.get("secret")),
    )


def tiktok_user_detail(document: JSON, *, url: str | None = None) -> Profile:
    """``webapp.user-detail`` (or a SIGI ``UserModule``) → author and counters.

    Exact ``statsV2`` first: ``stats`` is rounded and ``heartCount`` can overflow.
    """
    scope = _scope(document)
    detail = as_dict(scope.get("webapp.user-detail"))
    if not detail:
        if "UserModule" in scope:
            return _sigi_profile(scope, url)
        raise LayoutChanged("no webapp.user-detail in the TikTok page data", url=url)
    raise_status(tiktok_status_error(detail.get("statusCode"), tiktok_status_message(detail), url=url))
    info = as_dict(detail.get("userInfo"))
    user = as_dict(info.get("user"))
    if not user:
        raise LayoutChanged("TikTok user-detail has statusCode 0 but no userInfo.user", url=url)
    sources = [as_dict(info.get("statsV2")), as_dict(info.get("stats"))]
    return Profile(
        tiktok_author(user),
        profile_stats(sources, PROFILE_STAT_KEYS),
        private=bool(user.get("privateAccount") or user.get("secret")),
    )


# --------------------------------------------------------------------------- whole documents

#: Keys by which a payload says it is a TikTok page document or API detail response.
TIKTOK_DOCUMENT_KEYS = (
    "__DEFAULT_SCOPE__",
    *TIKTOK_DETAIL_SCOPES,
    "webapp.user-detail",
    "itemInfo",
    "ItemModule",
    "UserModule",
)


def tiktok_document(document: JSON, *, url: str | None = None) -> Video | PostPage | Profile | None:
    """Place a TikTok page document (any layout) or detail response: one video, a listing, a profile.

    ``None`` when it holds none of the parts we know, so the caller can look
    further (and name what it found). A profile page whose ``userInfo.itemList``
    holds posts, and a SIGI profile page, are listings, never their first item.
    """
    scope = _scope(document)
    if _detail_scope(scope) is not None or "itemInfo" in scope:
        return tiktok_item(tiktok_video_detail_item(scope, url=url))
    if "webapp.user-detail" in scope:
        profile = tiktok_user_detail(scope, url=url)
        info = as_dict(as_dict(scope["webapp.user-detail"]).get("userInfo"))
        posts = [tiktok_item(item) for item in as_list(info.get("itemList")) if is_tiktok_item(item)]
        return PostPage(posts, has_more=False, author=profile.author) if posts else profile
    if "ItemModule" in scope:
        if _sigi_is_listing(scope, url):
            return _sigi_listing(scope, url)
        return tiktok_item(tiktok_video_detail_item(scope, url=url))
    if "UserModule" in scope:
        return tiktok_user_detail(scope, url=url)
    return None
