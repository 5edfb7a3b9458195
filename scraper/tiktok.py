"""TikTok's differences: the video page SSRs the item in its hydration script(s).

Desktop pages carry it in ``__UNIVERSAL_DATA_FOR_REHYDRATION__``; mobile pages in
the same script's ``webapp.reflow.video.detail`` or (2026) in a separate
``api-data`` script next to it; pre-2023 pages in ``SIGI_STATE``.
``page_data.tiktok_page_data`` merges them, so one reader serves every layout.
"""

from __future__ import annotations

from typing import Any

from models.video import Video
from scraper import page_data
from scraper.channel import ChannelRoute
from scraper.errors import LayoutChanged
from scraper.loader import Capture, LivePage, LoadSpec
from scraper.routes import ItemRoute
from scraper.shapes.common import Profile
from scraper.shapes.tiktok import (
    tiktok_item,
    tiktok_item_list_page,
    tiktok_user_detail,
    tiktok_video_detail_item,
)

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


async def read_profile(live: LivePage) -> Profile:
    """``webapp.user-detail`` from the profile page's hydration JSON (10221 missing, 10222 private)."""
    await live.wait_ready(HYDRATION_READY)
    capture = await live.capture()
    return tiktok_user_detail(_hydration(capture), url=capture.url)


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


def media_referer(video: Video) -> str:
    """TikTok's CDN wants the video page as Referer (and the page's tt_chain_token cookie)."""
    return video.share_url or "https://www.tiktok.com/"
