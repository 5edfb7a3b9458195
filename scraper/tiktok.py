"""TikTok's differences: the video page SSRs the item in its hydration script(s).

Desktop pages carry it in ``__UNIVERSAL_DATA_FOR_REHYDRATION__``; mobile pages in
the same script's ``webapp.reflow.video.detail`` or (2026) in a separate
``api-data`` script next to it; pre-2023 pages in ``SIGI_STATE``.
``page_data.tiktok_page_data`` merges them, so one reader serves every layout.

The fast routes fetch the same video or profile page's HTML from the session's resident
www.tiktok.com page (no signature needed for SSR pages) and read it with the same readers;
channels page ``/api/post/item_list/`` by its cursor, signed by the page's own
``byted_acrawler.frontierSign``.
"""

from __future__ import annotations

from typing import Any

from models.video import Video
from scraper import page_data
from scraper.channel import ChannelRoute
from scraper.errors import LayoutChanged
from scraper.fast import FastChannelRoute, FastItemRoute, FastRequest
from scraper.loader import Capture, LivePage, LoadSpec
from scraper.resident import Origin, Param, Signer, cookie, literal, page_value, script_value
from scraper.routes import ItemRoute
from scraper.shapes.common import Profile
from scraper.shapes.tiktok import (
    tiktok_item,
    tiktok_item_list_page,
    tiktok_user_detail,
    tiktok_video_detail_item,
)
from scraper.urls import ParsedUrl

#: Ready when any of ``page_data.TIKTOK_SCRIPT_IDS`` is in the DOM (all of a page's scripts are
#: server-rendered, so at DOMContentLoaded the api-data script sits beside the rehydration one).
HYDRATION_READY = (
    "() => ['__UNIVERSAL_DATA_FOR_REHYDRATION__', 'api-data', 'SIGI_STATE', 'sigi-persisted-data']"
    ".some(id => !!document.getElementById(id))"
)


ITEM_LIST_XHR = "/api/post/item_list/"


def _hydration(capture: Capture) -> dict[str, Any]:
    data = page_data.tiktok_page_data(capture.html)
    if data is None:
        raise LayoutChanged(
            f"no __UNIVERSAL_DATA_FOR_REHYDRATION__, api-data or SIGI_STATE on {capture.url}"
            f" (title {capture.title!r})",
            url=capture.url,
        )
    return data


def read_video_page(capture: Capture) -> dict[str, Any]:
    """The itemStruct from the page's hydration JSON (status codes become typed errors)."""
    return tiktok_video_detail_item(_hydration(capture), url=capture.url)


def profile_of(capture: Capture) -> Profile:
    """``webapp.user-detail`` from the profile page's hydration JSON (10221 missing, 10222 private)."""
    return tiktok_user_detail(_hydration(capture), url=capture.url)


async def read_profile(live: LivePage) -> Profile:
    await live.wait_ready(HYDRATION_READY)
    return profile_of(await live.capture())


ITEM_ROUTES: tuple[ItemRoute, ...] = (
    ItemRoute(
        name="tiktok.video_page",
        page_url=lambda parsed: parsed.canonical_url,
        spec=LoadSpec(ready_js=HYDRATION_READY),
        read=read_video_page,
        normalize=tiktok_item,
    ),
)

CHANNEL_ROUTE = ChannelRoute(
    name="tiktok.profile",
    page_url=lambda parsed: parsed.canonical_url,
    posts_xhr=ITEM_LIST_XHR,
    extra_xhrs=(),
    read_profile=read_profile,
    read_posts=tiktok_item_list_page,
)


# --- fast routes: pages and the posts API asked from the resident page ----------------------------

ORIGIN = Origin(
    platform="tiktok",
    home="https://www.tiktok.com/",
    ready_js="() => !!window.byted_acrawler && typeof window.byted_acrawler.frontierSign === 'function'",
)
#: TikTok-Api signs the URLs it builds with this function of the page's webmssdk
#: (TikTokApi/tiktok.py ``generate_x_bogus`` / ``sign_url``).
SIGNER = Signer(function="byted_acrawler.frontierSign", param="X-Bogus")
_CONTEXT = ("__UNIVERSAL_DATA_FOR_REHYDRATION__", "__DEFAULT_SCOPE__", "webapp.app-context")
#: The item_list query in the web app's (alphabetical) order, as TikTok-Api's session parameters
#: (TikTokApi/tiktok.py ``__create_session``) and ``User.videos`` (TikTokApi/api/user.py) send it;
#: device id, odin id, region and language come from the resident page's own app-context.
ITEM_LIST_COUNT = 35


def item_list_params(sec_uid: str, cursor: int) -> tuple[Param, ...]:
    return (
        literal("aid", "1988"),
        script_value("app_language", *_CONTEXT, "language"),
        literal("app_name", "tiktok_web"),
        page_value("browser_language", "language"),
        literal("browser_name", "Mozilla"),
        page_value("browser_online", "online"),
        page_value("browser_platform", "platform"),
        page_value("browser_version", "app_version"),
        literal("channel", "tiktok_web"),
        page_value("cookie_enabled"),
        literal("count", str(ITEM_LIST_COUNT)),
        literal("coverFormat", "2"),
        literal("cursor", str(cursor)),
        literal("data_collection_enabled", "true"),
        script_value("device_id", *_CONTEXT, "wid"),
        literal("device_platform", "web_pc"),
        page_value("focus_state"),
        literal("from_page", "user"),
        page_value("history_len"),
        literal("is_fullscreen", "false"),
        page_value("is_page_visible", "page_visible"),
        script_value("language", *_CONTEXT, "language"),
        literal("needPinnedItemIds", "true"),
        script_value("odinId", *_CONTEXT, "odinId"),
        page_value("os"),
        literal("post_item_list_request_type", "0"),
        literal("priority_region", ""),
        literal("referer", ""),
        script_value("region", *_CONTEXT, "region"),
        page_value("screen_height"),
        page_value("screen_width"),
        literal("secUid", sec_uid),
        page_value("tz_name"),
        literal("user_is_login", "false"),
        script_value("webcast_language", *_CONTEXT, "language"),
        cookie("msToken"),
    )


def page_request(parsed: ParsedUrl) -> FastRequest:
    return FastRequest(parsed.canonical_url, answer="html")


def posts_request(parsed: ParsedUrl, profile: Profile, cursor: int) -> FastRequest:
    sec_uid = profile.author.sec_uid
    if not sec_uid:
        raise LayoutChanged(f"the profile {parsed.canonical_url} carries no secUid", url=parsed.canonical_url)
    return FastRequest(ITEM_LIST_XHR, item_list_params(sec_uid, cursor), signer=SIGNER)


def read_fast_profile(capture: Capture, parsed: ParsedUrl) -> Profile:
    return profile_of(capture)


# The profile and the video come as the same HTML a navigation loads, read by the same readers.
FAST_ITEM_ROUTE = FastItemRoute("tiktok.fast_page", ORIGIN, page_request, read_video_page, tiktok_item)
FAST_CHANNEL_ROUTE = FastChannelRoute(
    "tiktok.fast_item_list", ORIGIN, page_request, read_fast_profile, posts_request, tiktok_item_list_page
)


def media_referer(video: Video) -> str:
    """TikTok's CDN wants the video page as Referer (and the page's tt_chain_token cookie)."""
    return video.share_url or "https://www.tiktok.com/"
