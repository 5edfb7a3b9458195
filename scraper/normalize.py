"""Platform JSON → one ``Video`` shape for TikTok and Douyin, and platform status → typed errors.

Pure functions, no I/O. The mechanisms (coercing string numbers, choosing the
best watermark-free rendition, reading URL expiry, building the author, stats,
music and images) are written once; what differs between the platforms is kept
in key tables and a few small functions. Shapes are documented in
``/work/shared/platforms.md`` (§A TikTok, §C Douyin, §F watermark-free URLs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from models.video import Author, Image, Music, Statistics, Video, iso_utc_ms
from scraper.errors import Blocked, LayoutChanged, NotFound, PrivateContent, ScraperError, Unavailable

JSON = dict[str, Any]
Platform = Literal["douyin", "tiktok"]
MediaType = Literal["video", "photo"]

__all__ = [
    "PostPage",
    "Profile",
    "Rendition",
    "best_rendition",
    "douyin_author",
    "douyin_aweme",
    "douyin_detail_aweme",
    "douyin_post_page",
    "douyin_profile",
    "douyin_render_aweme",
    "douyin_share_aweme",
    "douyin_status_error",
    "douyin_unwatermark",
    "douyin_web_to_aweme",
    "tiktok_author",
    "tiktok_item",
    "tiktok_item_list_page",
    "tiktok_status_error",
    "tiktok_user_detail",
    "tiktok_video_detail_item",
    "unix_to_iso",
    "url_expiry",
]

# --------------------------------------------------------------------------- coercions


def _int(value: Any) -> int | None:
    """An int from an int, float or digit string: both sites send counts and times either way."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str) and value.strip():
        try:
            return int(value.strip())
        except ValueError:
            try:
                return int(float(value))
            except ValueError:
                return None
    return None


def _dict(value: Any) -> JSON:
    """The value if it is an object, else ``{}``: absent parts arrive as ``null`` as often as missing."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    """A non-empty string (ids may come as ints)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        text = str(value).strip()
        return text or None
    return None


def _ident(value: Any) -> str | None:
    """An identifier, where ``""`` and ``"0"`` mean "none" (Douyin ``short_id: "0"``)."""
    text = _text(value)
    return None if text in (None, "0") else text


def _https(url: str) -> str:
    """Douyin web data uses protocol-relative URLs (``//v3-web.douyinvod.com/…``)."""
    return "https:" + url if url.startswith("//") else url


def _first_url(value: Any) -> str | None:
    """The first URL in any of the shapes both sites use for "a media address".

    A string, ``{url_list|urlList|UrlList: […]}``, ``{src}`` or a list of those.
    """
    if isinstance(value, str):
        return _https(value) if value else None
    if isinstance(value, list):
        return next((url for url in map(_first_url, value) if url), None)
    if isinstance(value, dict):
        for key in ("url_list", "urlList", "UrlList", "src", "url"):
            url = _first_url(value.get(key))
            if url:
                return url
    return None


def _first_int(sources: Sequence[JSON], key: str) -> int | None:
    """The first source that has ``key`` as a number wins (statsV2 before stats)."""
    return next((n for n in (_int(source.get(key)) for source in sources) if n is not None), None)


def unix_to_iso(seconds: int) -> str:
    """Unix seconds → the vendor's ISO 8601 UTC with milliseconds and ``Z``."""
    return iso_utc_ms(datetime.fromtimestamp(seconds, UTC))


def _required_id(value: Any, what: str) -> str:
    ident = _ident(value)
    if ident is None:
        raise LayoutChanged(f"{what}: the item has no id")
    return ident


def _required_time(value: Any, what: str) -> str:
    seconds = _int(value)
    if not seconds or seconds < 0:
        raise LayoutChanged(f"{what}: the item has no create time (got {value!r})")
    return unix_to_iso(seconds)


def _ms_to_s(value: Any) -> int:
    """Douyin durations are milliseconds; the API returns whole seconds, rounded half up."""
    ms = _int(value)
    return (ms + 500) // 1000 if ms and ms > 0 else 0


# --------------------------------------------------------------------------- media URLs


@dataclass(frozen=True)
class Rendition:
    """One way to download the video: a URL and what is known about it."""

    url: str
    codec: str = ""  # "h264", "h265", other, or "" when unknown
    bitrate: int = 0
    watermark: bool = False
    priority: int = 0  # tie-break: a ladder entry beats the default play address


_URL_KEY = re.compile(r"_([a-z0-9]+)_\d+p_(\d+)$")
_DOUYIN_PATH_EXPIRY = re.compile(r"^/[0-9a-f]{32}/([0-9a-f]{8})/video/")
_RATIO = re.compile(r"([?&]ratio=)[^&]*")


def _codec(name: Any) -> str:
    """Normalize codec names: ``h265_hvc1`` and ByteDance's ``bytevc1`` are both HEVC."""
    text = str(name or "").lower()
    if text.startswith(("h264", "avc")):
        return "h264"
    if text.startswith(("h265", "hevc", "bytevc1")):
        return "h265"
    return text


def _url_key(key: Any) -> tuple[str, int]:
    """Codec and bitrate from a ``UrlKey``/``url_key`` like ``<uri>_h264_540p_822668``."""
    match = _URL_KEY.search(str(key or ""))
    return (_codec(match.group(1)), int(match.group(2))) if match else ("", 0)


def _codec_rank(codec: str) -> int:
    """h264 plays everywhere; an unknown codec is probably the default (h264) stream; HEVC last."""
    return {"h264": 2, "": 1}.get(codec, 0)


def best_rendition(renditions: Iterable[Rendition]) -> Rendition | None:
    """Watermark-free first, then h264 (compatibility), then the highest bitrate."""
    return max(
        renditions,
        key=lambda r: (not r.watermark, _codec_rank(r.codec), r.bitrate, r.priority),
        default=None,
    )


def url_expiry(url: str | None) -> str | None:
    """When a signed media URL stops working, if the URL says so.

    TikTok puts it in the ``expire=`` query parameter; Douyin's CDN puts it in
    the path as ``/<32 hex>/<8 hex unix>/video/`` (platforms.md §A.4, §C.1).
    """
    if not url:
        return None
    parts = urlsplit(url)
    seconds = next((_int(value) for value in parse_qs(parts.query).get("expire", [])), None)
    if seconds:
        return unix_to_iso(seconds)
    match = _DOUYIN_PATH_EXPIRY.match(parts.path)
    return unix_to_iso(int(match.group(1), 16)) if match else None


def _download_fields(rendition: Rendition | None) -> JSON:
    if rendition is None:
        return {"download_url": None, "watermark": None, "download_url_expires_at": None}
    return {
        "download_url": rendition.url,
        "watermark": rendition.watermark,
        "download_url_expires_at": url_expiry(rendition.url),
    }


def _tiktok_url_ok(url: str) -> bool:
    """yt-dlp drops ``www.tiktok.com/aweme/v1/play`` URLs as broken (platforms.md §A.3)."""
    return urlsplit(url).hostname != "www.tiktok.com"


def _tiktok_renditions(video: JSON) -> list[Rendition]:
    """The ``bitrateInfo`` ladder, then ``playAddr``, then the watermarked ``downloadAddr``."""
    found: list[Rendition] = []
    for entry in map(_dict, _list(video.get("bitrateInfo"))):
        play = _dict(entry.get("PlayAddr"))
        url = next((u for u in map(_first_url, _list(play.get("UrlList"))) if u and _tiktok_url_ok(u)), None)
        if url:
            key_codec, key_bitrate = _url_key(play.get("UrlKey"))
            codec = _codec(entry.get("CodecType")) or key_codec
            found.append(Rendition(url, codec, _int(entry.get("Bitrate")) or key_bitrate, priority=1))
    for key, watermark in (("playAddr", False), ("downloadAddr", True)):
        url = _first_url(video.get(key))
        if url and _tiktok_url_ok(url):
            found.append(
                Rendition(url, _codec(video.get("codecType")), _int(video.get("bitrate")) or 0, watermark)
            )
    return found


def douyin_unwatermark(url: str) -> str:
    """Share-page ``/playwm/`` (watermarked, 720p) → ``/play/`` at ``ratio=1080p`` (platforms.md §F)."""
    url = url.replace("/playwm/", "/play/")
    return _RATIO.sub(r"\g<1>1080p", url)


def _douyin_rendition(
    address: Any, *, codec: str = "", bitrate: Any = None, watermark: bool = False, priority: int = 0
) -> Rendition | None:
    """One Douyin ``play_addr``-shaped address; a ``/playwm/`` play URL is rewritten to its clean twin."""
    url = _first_url(_dict(address).get("url_list"))
    if not url:
        return None
    if "/playwm/" in url and not watermark:
        url = douyin_unwatermark(url)
    key_codec, key_bitrate = _url_key(_dict(address).get("url_key"))
    return Rendition(url, codec or key_codec, _int(bitrate) or key_bitrate, watermark, priority)


def _douyin_entry_codec(entry: JSON) -> str:
    """A ``bit_rate[]`` entry flags HEVC with ``is_h265``/``is_bytevc1``; 0 means h264."""
    if _int(entry.get("is_h265")) or _int(entry.get("is_bytevc1")):
        return "h265"
    return "h264" if "is_h265" in entry else ""


def _douyin_renditions(video: JSON) -> list[Rendition]:
    """``bit_rate[]`` ladder, the single play addresses, then the watermarked ``download_addr``."""
    found = [
        _douyin_rendition(
            entry.get("play_addr"),
            codec=_douyin_entry_codec(entry),
            bitrate=entry.get("bit_rate"),
            priority=1,
        )
        for entry in map(_dict, _list(video.get("bit_rate")))
    ]
    play_codec = _url_key(_dict(video.get("play_addr")).get("url_key"))[0]
    play_codec = play_codec or ("h265" if _int(video.get("is_h265")) else "")
    found += [
        _douyin_rendition(video.get("play_addr_h264"), codec="h264"),
        _douyin_rendition(video.get("play_addr"), codec=play_codec),
        _douyin_rendition(video.get("play_addr_265"), codec="h265"),
        _douyin_rendition(video.get("download_addr"), watermark=True),
    ]
    return [rendition for rendition in found if rendition is not None]


# --------------------------------------------------------------------------- shared parts

# Platform differences as data: which key holds what.
_AUTHOR_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "tiktok": {
        "uid": ("id",),
        "sec_uid": ("secUid",),
        "unique_id": ("uniqueId",),
        "avatar_url": ("avatarLarger", "avatarMedium", "avatarThumb"),
    },
    "douyin": {
        "uid": ("uid",),
        "sec_uid": ("sec_uid",),
        "unique_id": ("unique_id", "short_id"),
        "avatar_url": ("avatar_larger", "avatar_medium", "avatar_thumb"),
    },
}
_STAT_KEYS: dict[str, dict[str, str]] = {
    "tiktok": {
        "likes": "diggCount",
        "comments": "commentCount",
        "shares": "shareCount",
        "plays": "playCount",
        "collects": "collectCount",
    },
    "douyin": {
        "likes": "digg_count",
        "comments": "comment_count",
        "shares": "share_count",
        "plays": "play_count",
        "collects": "collect_count",
    },
}
# title, author, url, duration (seconds on both sites)
_MUSIC_KEYS: dict[str, tuple[str, str, str, str]] = {
    "tiktok": ("title", "authorName", "playUrl", "duration"),
    "douyin": ("title", "author", "play_url", "duration"),
}
_PROFILE_STAT_KEYS: dict[str, dict[str, str]] = {
    "tiktok": {
        "followers": "followerCount",
        "following": "followingCount",
        "likes": "heart",
        "videos": "videoCount",
    },
    "douyin": {
        "followers": "follower_count",
        "following": "following_count",
        "likes": "total_favorited",
        "videos": "aweme_count",
    },
}


def _author(user: JSON, keys: Mapping[str, tuple[str, ...]]) -> Author:
    def pick(field: str, read: Callable[[Any], str | None]) -> str | None:
        return next((value for value in (read(user.get(name)) for name in keys[field]) if value), None)

    return Author(
        nickname=_text(user.get("nickname")) or "",
        uid=pick("uid", _ident),
        sec_uid=pick("sec_uid", _ident),
        unique_id=pick("unique_id", _ident),
        avatar_url=pick("avatar_url", _first_url),
    )


def tiktok_author(user: JSON) -> Author:
    """TikTok ``author``/``user`` (camelCase; avatars are plain URL strings)."""
    return _author(user, _AUTHOR_KEYS["tiktok"])


def douyin_author(user: JSON) -> Author:
    """Douyin ``author``/``user``; ``unique_id`` falls back to ``short_id``; share items lack ``uid``."""
    return _author(user, _AUTHOR_KEYS["douyin"])


def _statistics(
    sources: Sequence[JSON], keys: Mapping[str, str], *, hidden: Iterable[str] = ()
) -> Statistics:
    """Counts from the first source that has them; a ``hidden`` count of 0 means "not shown", so null."""
    values = {name: _first_int(sources, key) for name, key in keys.items()}
    for name in hidden:
        if values.get(name) == 0:
            values[name] = None
    return Statistics(
        likes=values["likes"] or 0,
        comments=values["comments"] or 0,
        shares=values["shares"] or 0,
        plays=values["plays"],
        collects=values["collects"],
    )


def _music(music: Any, keys: tuple[str, str, str, str]) -> Music | None:
    if not isinstance(music, dict) or not music:
        return None
    title, author, url, duration = keys
    return Music(
        title=_text(music.get(title)),
        author=_text(music.get(author)),
        url=_first_url(music.get(url)),
        duration=_int(music.get(duration)),
    )


def _images(items: Any, url_keys: tuple[str, ...], size_keys: tuple[str, str]) -> list[Image]:
    """Photo-post images; the first of ``url_keys`` that has a URL wins (unwatermarked lists first)."""
    images: list[Image] = []
    for item in map(_dict, _list(items)):
        url = next((u for u in (_first_url(item.get(key)) for key in url_keys) if u), None)
        if url:
            width, height = (_int(item.get(key)) or None for key in size_keys)
            images.append(Image(url=url, width=width, height=height))
    return images


@dataclass(frozen=True)
class _Media:
    """What differs between a video and a photo post in the result."""

    media_type: MediaType
    duration: int
    download: JSON
    images: list[Image] | None = None
    width: int | None = None
    height: int | None = None


def _video_media(video: JSON, duration: int, renditions: list[Rendition]) -> _Media:
    return _Media(
        media_type="video",
        duration=duration,
        download=_download_fields(best_rendition(renditions)),
        width=_int(video.get("width")) or None,
        height=_int(video.get("height")) or None,
    )


def _photo_media(images: list[Image]) -> _Media:
    return _Media(media_type="photo", duration=0, download=_download_fields(None), images=images)


@dataclass(frozen=True)
class _Common:
    """The platform-independent part of a result, assembled the same way for both sites."""

    platform: Platform
    video_id: str
    title: str
    create_time: str
    author: Author
    statistics: Statistics
    music: Music | None
    cover_url: str | None
    share_url: str
    is_pinned: bool


def _video(common: _Common, media: _Media) -> Video:
    return Video(
        platform=common.platform,
        video_id=common.video_id,
        title=common.title,
        create_time=common.create_time,
        author=common.author,
        statistics=common.statistics,
        music=common.music,
        cover_url=common.cover_url,
        share_url=common.share_url,
        is_pinned=common.is_pinned,
        media_type=media.media_type,
        duration=media.duration,
        images=media.images,
        width=media.width,
        height=media.height,
        **media.download,
    )


# --------------------------------------------------------------------------- TikTok items


def _tiktok_item_author(item: JSON) -> JSON:
    """Legacy SIGI ``ItemModule`` items carry the author as a uniqueId string plus flat fields."""
    author = item.get("author")
    if isinstance(author, dict):
        return author
    return {
        "uniqueId": author,
        "id": item.get("authorId"),
        "secUid": item.get("authorSecId"),
        "nickname": item.get("nickname"),
        "avatarThumb": item.get("avatarThumb"),
    }


def tiktok_item(item: JSON) -> Video:
    """An ``itemStruct`` (video page, ``/api/item/detail/``, ``item_list``) → ``Video``."""
    video_id = _required_id(item.get("id"), "TikTok itemStruct")
    video = _dict(item.get("video"))
    image_post = _dict(item.get("imagePost"))
    author = tiktok_author(_tiktok_item_author(item))
    kind = "photo" if image_post else "video"
    common = _Common(
        platform="tiktok",
        video_id=video_id,
        title=_text(item.get("desc")) or _text(image_post.get("title")) or "",
        create_time=_required_time(item.get("createTime"), f"TikTok item {video_id}"),
        author=author,
        statistics=_statistics([_dict(item.get("statsV2")), _dict(item.get("stats"))], _STAT_KEYS["tiktok"]),
        music=_music(item.get("music"), _MUSIC_KEYS["tiktok"]),
        cover_url=_first_url(video.get("cover"))
        or _first_url(video.get("originCover"))
        or _first_url(_dict(image_post.get("cover")).get("imageURL")),
        share_url=f"https://www.tiktok.com/@{author.unique_id or '_'}/{kind}/{video_id}",
        is_pinned=bool(item.get("isPinnedItem")),
    )
    if image_post:
        images = _images(image_post.get("images"), ("imageURL",), ("imageWidth", "imageHeight"))
        return _video(common, _photo_media(images))
    return _video(common, _video_media(video, _int(video.get("duration")) or 0, _tiktok_renditions(video)))


# --------------------------------------------------------------------------- Douyin items


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _snake_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel_to_snake(key): _snake_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_snake_keys(item) for item in value]
    return value


def _web_address(value: Any) -> JSON:
    """Web ``playAddr: [{src}, …]`` → API ``play_addr: {url_list: […]}``."""
    if isinstance(value, dict):
        return value
    urls = [url for url in (_first_url(item) for item in _list(value) or [value]) if url]
    return {"url_list": urls}


def douyin_web_to_aweme(detail: JSON) -> JSON:
    """The camelCase web shape (``RENDER_DATA`` ``videoDetail``) → the snake_case API aweme shape.

    Keys are converted mechanically (``awemeId`` → ``aweme_id``, ``urlList`` →
    ``url_list``); the few structural differences are patched by name.
    """
    aweme: JSON = _snake_keys(detail)
    aweme["author"] = _dict(aweme.get("author_info")) or _dict(aweme.get("author"))
    aweme["statistics"] = _dict(aweme.get("stats")) or _dict(aweme.get("statistics"))
    video = _dict(aweme.get("video"))
    video["play_addr"] = _web_address(video.get("play_addr"))
    video["bit_rate"] = [
        {**entry, "play_addr": _web_address(entry.get("play_addr"))}
        for entry in map(_dict, _list(video.get("bit_rate_list")) or _list(video.get("bit_rate")))
    ]
    if "download_addr" in video:
        video["download_addr"] = _web_address(video.get("download_addr"))
    aweme["video"] = video
    return aweme


def _douyin_is_photo(aweme: JSON) -> bool:
    """Image/note posts: ``aweme_type`` 68, ``media_type`` 2, or a non-empty ``images`` list."""
    typed = _int(aweme.get("aweme_type")) == 68 or _int(aweme.get("media_type")) == 2
    return typed or bool(_list(aweme.get("images")))


def douyin_aweme(aweme: JSON) -> Video:
    """A Douyin aweme (web API detail, post-list item, reduced share item, web camelCase) → ``Video``."""
    if "awemeId" in aweme:
        aweme = douyin_web_to_aweme(aweme)
    video_id = _required_id(aweme.get("aweme_id"), "Douyin aweme")
    video = _dict(aweme.get("video"))
    photo = _douyin_is_photo(aweme)
    # url_list is unwatermarked; download_url_list carries the tplv-dy-water watermark.
    images = _images(aweme.get("images"), ("url_list", "download_url_list"), ("width", "height"))
    common = _Common(
        platform="douyin",
        video_id=video_id,
        title=_text(aweme.get("desc")) or "",
        create_time=_required_time(aweme.get("create_time"), f"Douyin aweme {video_id}"),
        author=douyin_author(_dict(aweme.get("author"))),
        statistics=_statistics([_dict(aweme.get("statistics"))], _STAT_KEYS["douyin"], hidden=("plays",)),
        music=_music(aweme.get("music"), _MUSIC_KEYS["douyin"]),
        cover_url=_first_url(video.get("cover"))
        or _first_url(video.get("origin_cover"))
        or (images[0].url if images else None),
        share_url=_text(aweme.get("share_url"))
        or f"https://www.douyin.com/{'note' if photo else 'video'}/{video_id}",
        is_pinned=_int(aweme.get("is_top")) == 1,
    )
    if photo:
        return _video(common, _photo_media(images))
    duration = _ms_to_s(aweme.get("duration") or video.get("duration"))
    return _video(common, _video_media(video, duration, _douyin_renditions(video)))


# --------------------------------------------------------------------------- TikTok status


_TIKTOK_STATUS: dict[int, tuple[type[ScraperError], str]] = {
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
    number = _int(code)
    if not number:
        return None
    kind, meaning = _TIKTOK_STATUS.get(number, (Unavailable, "unknown status"))
    said = f": {message}" if _text(message) else ""
    return kind(f"TikTok statusCode {number} ({meaning}){said}", url=url)


def _tiktok_scope(scope: JSON) -> JSON:
    """Accept the whole rehydration document or its ``__DEFAULT_SCOPE__``."""
    inner = scope.get("__DEFAULT_SCOPE__")
    return inner if isinstance(inner, dict) else scope


_ITEM_ID_IN_URL = re.compile(r"/(?:video|photo)/(\d+)")


def _sigi_detail(state: JSON, url: str | None) -> JSON:
    """Legacy SIGI_STATE → the ``webapp.video-detail`` shape (``ItemModule`` keyed by id)."""
    items = _dict(state.get("ItemModule"))
    wanted = _ITEM_ID_IN_URL.search(url or "")
    item = _dict(items.get(wanted.group(1))) if wanted else {}
    item = item or next((value for value in items.values() if isinstance(value, dict)), {})
    users = _dict(_dict(state.get("UserModule")).get("users"))
    if isinstance(item.get("author"), str) and isinstance(users.get(item["author"]), dict):
        item = {**item, "author": users[item["author"]]}
    page = _dict(state.get("VideoPage"))
    status = {"statusCode": page.get("statusCode"), "statusMsg": page.get("statusMsg")}
    return {**status, "itemInfo": {"itemStruct": item}}


#: Where a TikTok document keeps the item detail, by layout: the desktop page, the mobile
#: reflow page (platforms.md §A.1), and the 2026 mobile page's separate ``api-data`` script
#: (``../shared/real-captures/tiktok-mobile-photo-page-api-data.Tiktok-Downloader-20260502.html``).
TIKTOK_DETAIL_SCOPES = ("webapp.video-detail", "webapp.reflow.video.detail", "videoDetail")


def _tiktok_video_detail(scope: JSON, url: str | None) -> JSON:
    scope = _tiktok_scope(scope)
    detail: JSON | None = next(
        (scope[key] for key in TIKTOK_DETAIL_SCOPES if isinstance(scope.get(key), dict)), None
    )
    if detail is not None:
        return detail
    if "ItemModule" in scope:
        return _sigi_detail(scope, url)
    if "itemInfo" in scope or "statusCode" in scope:  # /api/item/detail/ or the detail itself
        return scope
    raise LayoutChanged(
        f"no {' / '.join(TIKTOK_DETAIL_SCOPES)} in the TikTok data (keys: {sorted(scope)[:12]})", url=url
    )


def tiktok_status_message(detail: JSON) -> Any:
    """``statusMsg`` (desktop, APIs) or ``statusMessage`` (the mobile ``api-data`` script)."""
    return detail.get("statusMsg") or detail.get("statusMessage")


def tiktok_video_detail_item(scope: JSON, *, url: str | None = None) -> JSON:
    """The ``itemStruct`` of a video page, or the typed error the page's status stands for.

    Accepts the rehydration document, its ``__DEFAULT_SCOPE__``, an
    ``/api/item/detail/`` response, or a legacy ``SIGI_STATE``.
    """
    detail = _tiktok_video_detail(scope, url)
    error = tiktok_status_error(detail.get("statusCode"), tiktok_status_message(detail), url=url)
    if error is not None:
        raise error
    item = _dict(_dict(detail.get("itemInfo")).get("itemStruct"))
    if not item:
        raise LayoutChanged("TikTok video-detail has statusCode 0 but no itemInfo.itemStruct", url=url)
    if not item.get("video") and item.get("isContentClassified"):
        raise Unavailable("TikTok age-restricted content: login required", url=url)
    return item


# --------------------------------------------------------------------------- Douyin status

_DOUYIN_PRIVATE_FILTERS = frozenset({"status_self_see"})
# Phrases of Douyin's risk-control answers ("server dozed off", "environment at risk", "verify", "too often").
_DOUYIN_RISK_PHRASES = ("打瞌睡", "风险", "验证", "频繁")
_DOUYIN_RISK_CODES = frozenset({4})


def _douyin_filter_error(filtered: JSON, *, url: str | None) -> ScraperError:
    """``filter_detail``/``filter_list[]``: self-visible → private; deleted, missing, other → not found."""
    reason = _text(filtered.get("filter_reason")) or "unknown"
    kind = PrivateContent if reason in _DOUYIN_PRIVATE_FILTERS else NotFound
    notice = " — ".join(t for t in (_text(filtered.get("notice")), _text(filtered.get("detail_msg"))) if t)
    return kind(f"Douyin filtered the item ({reason})" + (f": {notice}" if notice else ""), url=url)


def douyin_status_error(payload: JSON, *, url: str | None = None) -> ScraperError | None:
    """The typed error for a non-zero Douyin ``status_code`` (or ``code``) envelope, else ``None``.

    Risk-control answers (``status_code`` 4 "服务器打瞌睡", "当前环境存在风险") mean
    rotate and retry (``Blocked``); any other code means we do not understand it.
    """
    if not payload:
        return Blocked("Douyin answered with an empty body (risk control)", url=url)
    raw = payload.get("status_code", payload.get("code"))
    code = _int(raw)
    if code == 0 or raw is None:
        return None
    code = code if code is not None else raw  # e.g. "code": "10001010A"
    message = _text(payload.get("status_msg")) or _text(payload.get("msg")) or ""
    text = f"Douyin status_code {code}" + (f": {message}" if message else "")
    if code in _DOUYIN_RISK_CODES or any(phrase in message for phrase in _DOUYIN_RISK_PHRASES):
        return Blocked(text, url=url)
    return LayoutChanged(text, url=url)


def _raise_status(error: ScraperError | None) -> None:
    if error is not None:
        raise error


def douyin_detail_aweme(payload: JSON, *, url: str | None = None) -> JSON:
    """``/aweme/v1/web/aweme/detail/`` response → ``aweme_detail``, or the typed error it stands for."""
    _raise_status(douyin_status_error(payload, url=url))
    aweme = _dict(payload.get("aweme_detail"))
    if aweme:
        if _dict(aweme.get("status")).get("is_delete"):
            raise NotFound("Douyin item is deleted (status.is_delete)", url=url)
        return aweme
    filtered = _dict(payload.get("filter_detail"))
    if filtered:
        raise _douyin_filter_error(filtered, url=url)
    if "aweme_detail" in payload:
        raise NotFound("Douyin aweme_detail is null (no filter_detail given)", url=url)
    raise LayoutChanged(f"no aweme_detail in the Douyin response (keys: {sorted(payload)[:12]})", url=url)


_SHARE_PAGE_KEYS = ("video_(id)/page", "note_(id)/page")


def _share_page(loader: JSON) -> JSON | None:
    """The route entry holding ``videoInfoRes``: video, note, or any other ``*_(id)/page`` route."""
    named = [loader.get(key) for key in _SHARE_PAGE_KEYS]
    named += [value for key, value in loader.items() if key.endswith("_(id)/page")]
    named += [value for value in loader.values() if "videoInfoRes" in _dict(value)]
    return next((value for value in named if isinstance(value, dict)), None)


def douyin_share_aweme(router_data: JSON, *, url: str | None = None) -> JSON:
    """iesdouyin ``_ROUTER_DATA`` → ``videoInfoRes.item_list[0]`` (a reduced aweme), or the typed error."""
    page = _share_page(_dict(router_data.get("loaderData")))
    if page is None:
        keys = sorted(_dict(router_data.get("loaderData")))
        raise LayoutChanged(f"no '*_(id)/page' route in _ROUTER_DATA.loaderData (keys: {keys[:12]})", url=url)
    result = page.get("videoInfoRes")
    if not isinstance(result, dict):
        raise LayoutChanged("share page has no videoInfoRes (served without a valid ttwid cookie?)", url=url)
    _raise_status(douyin_status_error(result, url=url))
    items = [item for item in _list(result.get("item_list")) if isinstance(item, dict)]
    if items:
        return items[0]
    filters = [f for f in _list(result.get("filter_list")) if isinstance(f, dict)]
    if filters:
        raise _douyin_filter_error(filters[0], url=url)
    raise NotFound("Douyin share page has an empty item_list", url=url)


def douyin_render_aweme(render_data: JSON, *, url: str | None = None) -> JSON:
    """``RENDER_DATA`` → the aweme (converted to the API shape), from ``app.videoDetail`` (2026)
    or the older ``<route>.aweme.detail``; ``null`` there means deleted → ``NotFound``.
    """
    app = _dict(render_data.get("app"))
    if "videoDetail" in app:
        detail = app["videoDetail"]
    else:
        holders = [_dict(v)["aweme"] for v in render_data.values() if "aweme" in _dict(v)]
        if not holders:
            keys = sorted(render_data)[:12]
            raise LayoutChanged(f"no app.videoDetail in RENDER_DATA (keys: {keys})", url=url)
        detail = _dict(holders[0]).get("detail")
    if not isinstance(detail, dict) or not detail:
        raise NotFound("Douyin videoDetail is null: the item was deleted or never existed", url=url)
    return douyin_web_to_aweme(detail) if "awemeId" in detail else detail


# --------------------------------------------------------------------------- pages and profiles


@dataclass(frozen=True)
class PostPage:
    """One page of a channel's posts and how to ask for the next."""

    videos: list[Video]
    has_more: bool
    cursor: int


@dataclass(frozen=True)
class Profile:
    """An account and its counters (``None`` where the response does not carry one)."""

    author: Author
    stats: dict[str, int | None]
    private: bool = False


def douyin_post_page(payload: JSON, *, url: str | None = None) -> PostPage:
    """``/aweme/v1/web/aweme/post/`` → videos (pinned first, as sent), ``has_more``, ``max_cursor``."""
    _raise_status(douyin_status_error(payload, url=url))
    awemes = payload.get("aweme_list")
    if awemes is not None and not isinstance(awemes, list):
        raise LayoutChanged("Douyin aweme_list is not a list", url=url)
    return PostPage(
        videos=[douyin_aweme(aweme) for aweme in map(_dict, awemes or [])],
        has_more=bool(_int(payload.get("has_more"))),
        cursor=_int(payload.get("max_cursor")) or 0,
    )


def tiktok_item_list_page(payload: JSON, *, url: str | None = None) -> PostPage:
    """``/api/post/item_list/`` → videos, ``hasMore``, ``cursor`` (a string on the wire)."""
    if not payload:
        raise Blocked("TikTok answered with an empty body (bad signature or device id)", url=url)
    _raise_status(tiktok_status_error(payload.get("statusCode", payload.get("status_code")), url=url))
    return PostPage(
        videos=[tiktok_item(item) for item in map(_dict, _list(payload.get("itemList")))],
        has_more=bool(payload.get("hasMore")),
        cursor=_int(payload.get("cursor")) or 0,
    )


def _profile_stats(sources: Sequence[JSON], keys: Mapping[str, str]) -> dict[str, int | None]:
    return {name: _first_int(sources, key) for name, key in keys.items()}


def douyin_profile(payload: JSON, *, url: str | None = None) -> Profile:
    """``/user/profile/other/`` (``user``) or ``/im/user/info/`` (``data[0]``) → author and counters."""
    _raise_status(douyin_status_error(payload, url=url))
    user = _dict(payload.get("user")) or next(iter(map(_dict, _list(payload.get("data")))), {})
    if not user:
        raise LayoutChanged("no user in the Douyin profile response", url=url)
    return Profile(
        douyin_author(user),
        _profile_stats([user], _PROFILE_STAT_KEYS["douyin"]),
        private=bool(_int(user.get("secret"))),
    )


def tiktok_user_detail(scope: JSON, *, url: str | None = None) -> Profile:
    """``webapp.user-detail`` → author and counters (exact ``statsV2`` first; ``heartCount`` can overflow)."""
    detail = _dict(_tiktok_scope(scope).get("webapp.user-detail"))
    if not detail:
        raise LayoutChanged("no webapp.user-detail in the TikTok page data", url=url)
    _raise_status(tiktok_status_error(detail.get("statusCode"), detail.get("statusMsg"), url=url))
    info = _dict(detail.get("userInfo"))
    user = _dict(info.get("user"))
    if not user:
        raise LayoutChanged("TikTok user-detail has statusCode 0 but no userInfo.user", url=url)
    sources = [_dict(info.get("statsV2")), _dict(info.get("stats"))]
    return Profile(
        tiktok_author(user),
        _profile_stats(sources, _PROFILE_STAT_KEYS["tiktok"]),
        private=bool(user.get("privateAccount") or user.get("secret")),
    )
