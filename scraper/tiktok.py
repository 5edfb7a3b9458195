"""TikTok's differences: the video page SSRs the item in ``__UNIVERSAL_DATA_FOR_REHYDRATION__``."""

from __future__ import annotations

from typing import Any

from models.video import Video
from scraper import normalize, page_data
from scraper.channel import ChannelRoute
from scraper.errors import LayoutChanged
from scraper.loader import Capture, LivePage, LoadSpec
from scraper.normalize import Profile
from scraper.routes import ItemRoute

HYDRATION_READY = "() => !!document.getElementById('__UNIVERSAL_DATA_FOR_REHYDRATION__')"


ITEM_LIST_XHR = "/api/post/item_list/"


def _hydration(capture: Capture) -> dict[str, Any]:
    data = page_data.tiktok_page_data(capture.html)
    if data is None:
        raise LayoutChanged(
            f"no __UNIVERSAL_DATA_FOR_REHYDRATION__ on {capture.url} (title {capture.title!r})",
            url=capture.url,
        )
    return data


def read_video_page(capture: Capture) -> dict[str, Any]:
    """The itemStruct from the page's hydration JSON (status codes become typed errors)."""
    return normalize.tiktok_video_detail_item(_hydration(capture), url=capture.url)


async def read_profile(live: LivePage) -> Profile:
    """``webapp.user-detail`` from the profile page's hydration JSON (10221 missing, 10222 private)."""
    await live.wait_ready(HYDRATION_READY)
    capture = await live.capture()
    return normalize.tiktok_user_detail(_hydration(capture), url=capture.url)


ITEM_ROUTES: tuple[ItemRoute, ...] = (
    ItemRoute(
        name="tiktok.video_page",
        page_url=lambda parsed: parsed.canonical_url,
        spec=LoadSpec(ready_js=HYDRATION_READY),
        read=read_video_page,
        normalize=normalize.tiktok_item,
    ),
)

CHANNEL_ROUTE = ChannelRoute(
    name="tiktok.profile",
    page_url=lambda parsed: parsed.canonical_url,
    posts_xhr=ITEM_LIST_XHR,
    extra_xhrs=(),
    read_profile=read_profile,
    read_posts=normalize.tiktok_item_list_page,
)


def media_referer(video: Video) -> str:
    """TikTok's CDN wants the video page as Referer (and the page's tt_chain_token cookie)."""
    return video.share_url or "https://www.tiktok.com/"
