"""Douyin's differences: the web page fetches the item by a signed XHR; the share page SSRs it.

Route 1 loads ``www.douyin.com/video/ID`` (or ``/note/ID``): the browser passes
the acrawler challenge, the page's own JavaScript signs
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
from scraper.loader import Capture, LivePage, LoadSpec
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


async def read_profile(live: LivePage) -> Profile:
    """The profile XHR the user page sends (``user`` null with a status code: no such account)."""
    payload = await live.next_json(PROFILE_XHR_PATH)
    if isinstance(payload, dict) and payload.get("user") is None and payload.get("status_code"):
        raise missing_account(live.page.url)
    return douyin_profile(payload, url=live.page.url)


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


def media_referer(video: Video) -> str:
    """Douyin's CDN nodes refuse media without this Referer (X-CCDN-FORBID-CODE 020200)."""
    return "https://www.douyin.com/"
