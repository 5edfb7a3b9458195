"""Douyin's differences: the web page fetches the item by a signed XHR; the share page SSRs it.

The fast route asks ``/aweme/v1/web/aweme/detail/`` itself from the session's resident
www.douyin.com page (bdms, hooked into ``fetch``, appends ``a_bogus``); channels page
``aweme/post/`` by ``max_cursor``. Navigation route 1 loads ``www.douyin.com/video/ID``
(or ``/note/ID``): the browser passes the acrawler challenge, the page's own JavaScript signs
``/aweme/v1/web/aweme/detail/`` and we read that response. Route 2, used when
route 1 is blocked, loads the iesdouyin share page with a mobile user agent
and reads ``window._ROUTER_DATA``.
"""

from __future__ import annotations

from typing import Any

from models.video import Video
from scraper import page_data
from scraper.channel import ChannelRoute, missing_account
from scraper.errors import LayoutChanged
from scraper.fast import FastChannelRoute, FastItemRoute, FastRequest
from scraper.loader import Capture, LivePage, LoadSpec
from scraper.resident import Origin, Param, cookie, literal, page_value
from scraper.routes import ItemRoute
from scraper.shapes.common import Profile
from scraper.shapes.douyin import (
    douyin_aweme,
    douyin_detail_aweme,
    douyin_post_page,
    douyin_profile,
    douyin_share_aweme,
)
from scraper.urls import ParsedUrl

DETAIL_XHR_PATH = "/aweme/v1/web/aweme/detail/"
POST_XHR_PATH = "/aweme/v1/web/aweme/post/"
PROFILE_XHR_PATH = "/aweme/v1/web/user/profile/other/"
ROUTER_DATA_READY = (
    "() => { const d = window._ROUTER_DATA && window._ROUTER_DATA.loaderData;"
    " return !!d && Object.values(d).some(v => v && v.videoInfoRes); }"
)


def web_page_url(parsed: ParsedUrl) -> str:
    return parsed.canonical_url


def share_page_url(parsed: ParsedUrl) -> str:
    section = "note" if parsed.kind == "photo" else "video"
    return f"https://www.iesdouyin.com/share/{section}/{parsed.id}/"


def read_detail_xhr(capture: Capture) -> dict[str, Any]:
    if not isinstance(capture.xhr, dict):
        raise LayoutChanged(f"detail XHR on {capture.url} was not a JSON object", url=capture.url)
    return douyin_detail_aweme(capture.xhr, url=capture.url)


def read_share_page(capture: Capture) -> dict[str, Any]:
    data = page_data.douyin_router_data(capture.html)
    if data is None:
        raise LayoutChanged(f"no _ROUTER_DATA on {capture.url} (title {capture.title!r})", url=capture.url)
    return douyin_share_aweme(data, url=capture.url)


def profile_of(payload: Any, url: str) -> Profile:
    """A ``user/profile/other/`` answer (``user`` null with a status code: no such account)."""
    if isinstance(payload, dict) and payload.get("user") is None and payload.get("status_code"):
        raise missing_account(url)
    return douyin_profile(payload, url=url)


async def read_profile(live: LivePage) -> Profile:
    """The profile XHR the user page sends."""
    return profile_of(await live.next_json(PROFILE_XHR_PATH), live.page.url)


ITEM_ROUTES: tuple[ItemRoute, ...] = (
    ItemRoute(
        name="douyin.web_detail",
        page_url=web_page_url,
        spec=LoadSpec(xhr_path=DETAIL_XHR_PATH),
        read=read_detail_xhr,
        normalize=douyin_aweme,
    ),
    ItemRoute(
        name="douyin.share_page",
        page_url=share_page_url,
        spec=LoadSpec(ready_js=ROUTER_DATA_READY, mobile=True),
        read=read_share_page,
        normalize=douyin_aweme,
    ),
)

CHANNEL_ROUTE = ChannelRoute(
    name="douyin.user_page",
    page_url=lambda parsed: parsed.canonical_url,
    posts_xhr=POST_XHR_PATH,
    extra_xhrs=(PROFILE_XHR_PATH,),
    read_profile=read_profile,
    read_posts=douyin_post_page,
)


# --- fast routes: the web API asked from the resident page ---------------------------------------

ORIGIN = Origin(
    platform="douyin",
    home="https://www.douyin.com/",
    # bdms is loaded only past the acrawler challenge (the challenge page carries acrawler alone).
    ready_js="() => !!window.bdms && typeof window.bdms === 'object'",
)
#: The query the web app sends with every ``/aweme/v1/web/`` call, in its order: the public
#: Evil0ctal/Douyin_TikTok_Download_API crawlers/douyin/web/models.py ``BaseRequestModel``
#: (its hard-coded browser values here come from the page itself; verifyFp/fp from the
#: ``s_v_web_id`` cookie bdms sets, msToken from bdms's cookie, a_bogus appended by bdms).
WEB_PARAMS: tuple[Param, ...] = (
    literal("device_platform", "webapp"),
    literal("aid", "6383"),
    literal("channel", "channel_pc_web"),
    literal("pc_client_type", "1"),
    literal("version_code", "290100"),
    literal("version_name", "29.1.0"),
    page_value("cookie_enabled"),
    page_value("screen_width"),
    page_value("screen_height"),
    page_value("browser_language", "language"),
    page_value("browser_platform", "platform"),
    literal("browser_name", "Chrome"),
    page_value("browser_version", "chrome_version"),
    page_value("browser_online", "online"),
    literal("engine_name", "Blink"),
    page_value("engine_version", "chrome_version"),
    page_value("os_name"),
    page_value("os_version"),
    page_value("cpu_core_num"),
    page_value("device_memory"),
    literal("platform", "PC"),
    page_value("downlink"),
    page_value("effective_type"),
    page_value("round_trip_time"),
    literal("update_version_code", "170400"),
    cookie("verifyFp", "s_v_web_id"),
    cookie("fp", "s_v_web_id"),
)
#: Per-endpoint parameters, as the same models (``PostDetail``, ``UserPost``, ``UserProfile``) send them.
POST_PAGE_SIZE = 18


def web_api(path: str, *extra: Param) -> FastRequest:
    return FastRequest(path, (*WEB_PARAMS, *extra, cookie("msToken")))


def detail_request(parsed: ParsedUrl) -> FastRequest:
    return web_api(DETAIL_XHR_PATH, literal("aweme_id", parsed.id or ""))


def profile_request(parsed: ParsedUrl) -> FastRequest:
    return web_api(
        PROFILE_XHR_PATH,
        literal("publish_video_strategy_type", "2"),
        literal("source", "channel_pc_web"),
        literal("sec_user_id", parsed.user or ""),
        literal("personal_center_strategy", "1"),
    )


def posts_request(parsed: ParsedUrl, profile: Profile, cursor: int) -> FastRequest:
    return web_api(
        POST_XHR_PATH,
        literal("sec_user_id", parsed.user or ""),
        literal("max_cursor", str(cursor)),
        literal("locate_query", "false"),
        literal("show_live_replay_strategy", "1"),
        literal("need_time_list", "1"),
        literal("time_list_query", "0"),
        literal("whale_cut_token", ""),
        literal("cut_version", "1"),
        literal("count", str(POST_PAGE_SIZE)),
        literal("publish_video_strategy_type", "2"),
    )


def read_fast_profile(capture: Capture, parsed: ParsedUrl) -> Profile:
    return profile_of(capture.xhr, parsed.canonical_url)


# (name, origin, request, reader, normalizer) / (name, origin, profile request, reader, posts request, reader)
FAST_ITEM_ROUTE = FastItemRoute("douyin.fast_detail", ORIGIN, detail_request, read_detail_xhr, douyin_aweme)
FAST_CHANNEL_ROUTE = FastChannelRoute(
    "douyin.fast_posts", ORIGIN, profile_request, read_fast_profile, posts_request, douyin_post_page
)


def media_referer(video: Video) -> str:
    """Douyin's CDN nodes refuse media without this Referer (X-CCDN-FORBID-CODE 020200)."""
    return "https://www.douyin.com/"
