"""Douyin's shapes: aweme → ``Video``, detail, share and ``RENDER_DATA`` envelopes, post lists, profiles.

Where the data lives is described in ``../shared/platforms.md`` §C (web API
detail and post list, iesdouyin share page, ``RENDER_DATA``) and §F (watermark-free
URLs). The web API is snake_case; ``RENDER_DATA`` is the same aweme in camelCase.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from models.video import Author, Video
from scraper.errors import Blocked, LayoutChanged, NotFound, PrivateContent, ScraperError
from scraper.shapes.common import (
    AuthorKeys,
    MusicKeys,
    Platform,
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
from scraper.shapes.media import Rendition, url_key
from scraper.shapes.values import JSON, as_dict, as_ident, as_int, as_list, as_text, first_url, ms_to_s

__all__ = [
    "aweme_platform",
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
    "is_douyin_aweme",
]

# --------------------------------------------------------------------------- key tables

AUTHOR_KEYS = AuthorKeys(
    uid=("uid",),
    sec_uid=("sec_uid",),
    unique_id=("unique_id", "short_id"),
    avatar_url=("avatar_larger", "avatar_medium", "avatar_thumb"),
)
STAT_KEYS = {
    "likes": "digg_count",
    "comments": "comment_count",
    "shares": "share_count",
    "plays": "play_count",
    "collects": "collect_count",
}
MUSIC_KEYS = MusicKeys(title="title", author="author", url="play_url", duration="duration")
PROFILE_STAT_KEYS = {
    "followers": "follower_count",
    "following": "following_count",
    "likes": "total_favorited",
    "videos": "aweme_count",
}

# --------------------------------------------------------------------------- media

_RATIO = re.compile(r"([?&]ratio=)[^&]*")


def douyin_unwatermark(url: str) -> str:
    """Share-page ``/playwm/`` (watermarked, 720p) → ``/play/`` at ``ratio=1080p`` (platforms.md §F)."""
    url = url.replace("/playwm/", "/play/")
    return _RATIO.sub(r"\g<1>1080p", url)


def _rendition(
    address: Any, *, codec: str = "", bitrate: Any = None, watermark: bool = False, priority: int = 0
) -> Rendition | None:
    """One ``play_addr``-shaped address; a ``/playwm/`` play URL is rewritten to its clean twin."""
    url = first_url(as_dict(address).get("url_list"))
    if not url:
        return None
    if "/playwm/" in url and not watermark:
        url = douyin_unwatermark(url)
    fields = as_dict(address)
    key_codec, key_bitrate = url_key(fields.get("url_key"))
    return Rendition(
        url,
        codec or key_codec,
        as_int(bitrate) or key_bitrate,
        watermark,
        priority,
        width=as_int(fields.get("width")) or None,
        height=as_int(fields.get("height")) or None,
        size=as_int(fields.get("data_size")),
    )


def _entry_codec(entry: JSON) -> str:
    """A ``bit_rate[]`` entry flags HEVC with ``is_h265``/``is_bytevc1``; 0 means h264."""
    if as_int(entry.get("is_h265")) or as_int(entry.get("is_bytevc1")):
        return "h265"
    return "h264" if "is_h265" in entry else ""


def _renditions(video: JSON) -> list[Rendition]:
    """``bit_rate[]`` ladder, the single play addresses, then the watermarked ``download_addr``."""
    found = [
        _rendition(
            entry.get("play_addr"), codec=_entry_codec(entry), bitrate=entry.get("bit_rate"), priority=1
        )
        for entry in map(as_dict, as_list(video.get("bit_rate")))
    ]
    play_codec = url_key(as_dict(video.get("play_addr")).get("url_key"))[0]
    play_codec = play_codec or ("h265" if as_int(video.get("is_h265")) else "")
    found += [
        _rendition(video.get("play_addr_h264"), codec="h264"),
        _rendition(video.get("play_addr"), codec=play_codec),
        _rendition(video.get("play_addr_265"), codec="h265"),
        _rendition(video.get("download_addr"), watermark=True),
    ]
    return [rendition for rendition in found if rendition is not None]


# --------------------------------------------------------------------------- items


def douyin_author(user: JSON) -> Author:
    """Douyin ``author``/``user``; ``unique_id`` falls back to ``short_id``; share items lack ``uid``."""
    return make_author(user, AUTHOR_KEYS)


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
    urls = [url for url in (first_url(item) for item in as_list(value) or [value]) if url]
    return {"url_list": urls}


def douyin_web_to_aweme(detail: JSON) -> JSON:
    """The camelCase web shape (``RENDER_DATA`` ``videoDetail``) → the snake_case API aweme shape.

    Keys are converted mechanically (``awemeId`` → ``aweme_id``, ``urlList`` →
    ``url_list``); the few structural differences are patched by name.
    """
    aweme: JSON = _snake_keys(detail)
    aweme["author"] = as_dict(aweme.get("author_info")) or as_dict(aweme.get("author"))
    aweme["statistics"] = as_dict(aweme.get("stats")) or as_dict(aweme.get("statistics"))
    video = as_dict(aweme.get("video"))
    video["play_addr"] = _web_address(video.get("play_addr"))
    video["bit_rate"] = [
        {**entry, "play_addr": _web_address(entry.get("play_addr"))}
        for entry in map(as_dict, as_list(video.get("bit_rate_list")) or as_list(video.get("bit_rate")))
    ]
    if "download_addr" in video:
        video["download_addr"] = _web_address(video.get("download_addr"))
    aweme["video"] = video
    return aweme


def _is_photo(aweme: JSON) -> bool:
    """Image/note posts: ``aweme_type`` 68, ``media_type`` 2, or a non-empty ``images`` list."""
    typed = as_int(aweme.get("aweme_type")) == 68 or as_int(aweme.get("media_type")) == 2
    return typed or bool(as_list(aweme.get("images")))


def is_douyin_aweme(value: Any) -> bool:
    """Whether ``value`` is an aweme, judged by its own keys.

    ``aweme_id`` (or the web shape's ``awemeId``), its media (``video``/``images``)
    or an ``author`` object, and at least two of those and ``create_time``/``desc``/
    ``statistics`` — so a comment (``cid``, ``aweme_id``, ``create_time``, ``user``)
    or a statistics block (which repeats ``aweme_id``) is not taken for a post.
    """
    if not isinstance(value, dict) or "cid" in value:
        return False
    if as_ident(value.get("aweme_id")) is None and as_ident(value.get("awemeId")) is None:
        return False
    return shows_post(
        media=isinstance(value.get("video"), dict) or bool(as_list(value.get("images"))),
        author=any(isinstance(value.get(key), dict) for key in ("author", "authorInfo")),
        others=(
            "create_time" in value or "createTime" in value,
            "desc" in value,
            any(isinstance(value.get(key), dict) for key in ("statistics", "stats")),
        ),
    )


#: Hosts of TikTok's app API awemes: the same snake_case shape as Douyin's, served from TikTok
#: (e.g. the 2021 search responses in VideoData/TiKTok-data
#: ``TikTok搜索Api/TikTokAPI接口，关键词搜索视频.md`` @ ``db73fc5a``: ``v19-us.tiktokcdn.com``, ``a=1233``).
_TIKTOK_HOSTS = ("tiktok.com", "tiktokcdn.com", "tiktokcdn-us.com", "tiktokcdn-eu.com", "tiktokv.com")


def aweme_platform(aweme: JSON) -> Platform:
    """Whose aweme this is, by its own links: its share URL or play address on a TikTok host → TikTok."""
    urls = (as_text(aweme.get("share_url")), first_url(as_dict(as_dict(aweme.get("video")).get("play_addr"))))
    hosts = [urlsplit(url).hostname or "" for url in urls if url]
    tiktok = any(host == name or host.endswith("." + name) for host in hosts for name in _TIKTOK_HOSTS)
    return "tiktok" if tiktok else "douyin"


def douyin_aweme(aweme: JSON) -> Video:
    """An aweme (Douyin web API detail, post-list item, reduced share item, web camelCase; or a
    TikTok app-API aweme, labelled by ``aweme_platform``) → ``Video``."""
    if "awemeId" in aweme:
        aweme = douyin_web_to_aweme(aweme)
    video_id = required_id(aweme.get("aweme_id"), "Douyin aweme")
    video = as_dict(aweme.get("video"))
    photo = _is_photo(aweme)
    author = as_dict(aweme.get("author"))
    platform = aweme_platform(aweme)
    own_author = douyin_author(author) if author else None
    # url_list is unwatermarked; download_url_list carries the tplv-dy-water watermark.
    found = images(aweme.get("images"), ("url_list", "download_url_list"), ("width", "height"))
    post = Post(
        platform=platform,
        video_id=video_id,
        title=title_of(aweme.get("desc")),
        create_time=unix_time(aweme.get("create_time")),
        author=own_author,
        # Douyin's web API always sends play_count 0 (hidden); TikTok's app API sends the real count.
        counts=counts(
            [as_dict(aweme.get("statistics"))], STAT_KEYS, hidden=("plays",) if platform == "douyin" else ()
        ),
        music=music(aweme.get("music"), MUSIC_KEYS),
        cover_url=first_url(video.get("cover"))
        or first_url(video.get("origin_cover"))
        or (found[0].url if found else None),
        share_url=as_text(aweme.get("share_url"))
        or post_url(platform, video_id, photo=photo, author=own_author),
        is_pinned=as_int(aweme.get("is_top")) == 1,
    )
    if photo:
        return build_video(post, photo_media(found))
    duration = ms_to_s(aweme.get("duration") or video.get("duration"))
    return build_video(post, video_media(video, duration, _renditions(video)))


# --------------------------------------------------------------------------- status

_PRIVATE_FILTERS = frozenset({"status_self_see"})
# Phrases of Douyin's risk-control answers ("server dozed off", "environment at risk", "verify", "too often").
_RISK_PHRASES = ("打瞌睡", "风险", "验证", "频繁")
_RISK_CODES = frozenset({4})


def _filter_error(filtered: JSON, *, url: str | None) -> ScraperError:
    """``filter_detail``/``filter_list[]``: self-visible → private; deleted, missing, other → not found."""
    reason = as_text(filtered.get("filter_reason")) or "unknown"
    kind = PrivateContent if reason in _PRIVATE_FILTERS else NotFound
    notice = " — ".join(
        t for t in (as_text(filtered.get("notice")), as_text(filtered.get("detail_msg"))) if t
    )
    return kind(f"Douyin filtered the item ({reason})" + (f": {notice}" if notice else ""), url=url)


def douyin_status_error(payload: JSON, *, url: str | None = None) -> ScraperError | None:
    """The typed error for a non-zero Douyin ``status_code`` (or ``code``) envelope, else ``None``.

    Risk-control answers (``status_code`` 4 "服务器打瞌睡", "当前环境存在风险") mean
    rotate and retry (``Blocked``); any other code means we do not understand it.
    """
    if not payload:
        return Blocked("Douyin answered with an empty body (risk control)", url=url)
    raw = payload.get("status_code", payload.get("code"))
    code = as_int(raw)
    if code == 0 or raw is None:
        return None
    code = code if code is not None else raw  # e.g. "code": "10001010A"
    message = as_text(payload.get("status_msg")) or as_text(payload.get("msg")) or ""
    text = f"Douyin status_code {code}" + (f": {message}" if message else "")
    if code in _RISK_CODES or any(phrase in message for phrase in _RISK_PHRASES):
        return Blocked(text, url=url)
    return LayoutChanged(text, url=url)


# --------------------------------------------------------------------------- envelopes


def douyin_detail_aweme(payload: JSON, *, url: str | None = None) -> JSON:
    """``/aweme/v1/web/aweme/detail/`` response → ``aweme_detail``, or the typed error it stands for."""
    raise_status(douyin_status_error(payload, url=url))
    aweme = as_dict(payload.get("aweme_detail"))
    if aweme:
        if as_dict(aweme.get("status")).get("is_delete"):
            raise NotFound("Douyin item is deleted (status.is_delete)", url=url)
        return aweme
    filtered = as_dict(payload.get("filter_detail"))
    if filtered:
        raise _filter_error(filtered, url=url)
    if "aweme_detail" in payload:
        raise NotFound("Douyin aweme_detail is null (no filter_detail given)", url=url)
    raise LayoutChanged(f"no aweme_detail in the Douyin response (keys: {sorted(payload)[:12]})", url=url)


_SHARE_PAGE_KEYS = ("video_(id)/page", "note_(id)/page")


def _share_page(loader: JSON) -> JSON | None:
    """The route entry holding ``videoInfoRes``: video, note, or any other ``*_(id)/page`` route."""
    named = [loader.get(key) for key in _SHARE_PAGE_KEYS]
    named += [value for key, value in loader.items() if key.endswith("_(id)/page")]
    named += [value for value in loader.values() if "videoInfoRes" in as_dict(value)]
    return next((value for value in named if isinstance(value, dict)), None)


def douyin_share_aweme(router_data: JSON, *, url: str | None = None) -> JSON:
    """iesdouyin ``_ROUTER_DATA`` → ``videoInfoRes.item_list[0]`` (a reduced aweme), or the typed error."""
    page = _share_page(as_dict(router_data.get("loaderData")))
    if page is None:
        keys = sorted(as_dict(router_data.get("loaderData")))
        raise LayoutChanged(f"no '*_(id)/page' route in _ROUTER_DATA.loaderData (keys: {keys[:12]})", url=url)
    result = page.get("videoInfoRes")
    if not isinstance(result, dict):
        raise LayoutChanged("share page has no videoInfoRes (served without a valid ttwid cookie?)", url=url)
    raise_status(douyin_status_error(result, url=url))
    items = [item for item in as_list(result.get("item_list")) if isinstance(item, dict)]
    if items:
        return items[0]
    filters = [f for f in as_list(result.get("filter_list")) if isinstance(f, dict)]
    if filters:
        raise _filter_error(filters[0], url=url)
    raise NotFound("Douyin share page has an empty item_list", url=url)


def douyin_render_aweme(render_data: JSON, *, url: str | None = None) -> JSON:
    """``RENDER_DATA`` → the aweme (converted to the API shape), from ``app.videoDetail`` (2026)
    or the older ``<route>.aweme.detail``; ``null`` there means deleted → ``NotFound``.
    """
    app = as_dict(render_data.get("app"))
    if "videoDetail" in app:
        detail = app["videoDetail"]
    else:
        holders = [as_dict(v)["aweme"] for v in render_data.values() if "aweme" in as_dict(v)]
        if not holders:
            keys = sorted(render_data)[:12]
            raise LayoutChanged(f"no app.videoDetail in RENDER_DATA (keys: {keys})", url=url)
        detail = as_dict(holders[0]).get("detail")
    if not isinstance(detail, dict) or not detail:
        raise NotFound("Douyin videoDetail is null: the item was deleted or never existed", url=url)
    return douyin_web_to_aweme(detail) if "awemeId" in detail else detail


# --------------------------------------------------------------------------- lists and profiles


def douyin_post_page(payload: JSON, *, url: str | None = None) -> PostPage:
    """``/aweme/v1/web/aweme/post/`` → videos (pinned first, as sent), ``has_more``, ``max_cursor``."""
    raise_status(douyin_status_error(payload, url=url))
    awemes = payload.get("aweme_list")
    if awemes is not None and not isinstance(awemes, list):
        raise LayoutChanged("Douyin aweme_list is not a list", url=url)
    return PostPage(
        videos=[douyin_aweme(aweme) for aweme in map(as_dict, awemes or [])],
        has_more=bool(as_int(payload.get("has_more"))),
        cursor=as_int(payload.get("max_cursor")) or 0,
        cursor_key="max_cursor",
    )


def douyin_profile(payload: JSON, *, url: str | None = None) -> Profile:
    """``/user/profile/other/`` (``user``) or ``/im/user/info/`` (``data[0]``) → author and counters."""
    raise_status(douyin_status_error(payload, url=url))
    user = as_dict(payload.get("user")) or next(iter(map(as_dict, as_list(payload.get("data")))), {})
    if not user:
        raise LayoutChanged("no user in the Douyin profile response", url=url)
    return Profile(
        douyin_author(user),
        profile_stats([user], PROFILE_STAT_KEYS),
        private=bool(as_int(user.get("secret"))),
    )
