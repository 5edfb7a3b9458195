"""TikTok's differences: the video page SSRs the item in ``__UNIVERSAL_DATA_FOR_REHYDRATION__``."""

from __future__ import annotations

from typing import Any

from scraper import normalize, page_data
from scraper.errors import LayoutChanged
from scraper.loader import Capture, LoadSpec
from scraper.routes import ItemRoute

HYDRATION_READY = "() => !!document.getElementById('__UNIVERSAL_DATA_FOR_REHYDRATION__')"


def read_video_page(capture: Capture) -> dict[str, Any]:
    """The itemStruct from the page's hydration JSON (status codes become typed errors)."""
    data = page_data.tiktok_universal_data(capture.html)
    if data is None:
        raise LayoutChanged(
            f"no __UNIVERSAL_DATA_FOR_REHYDRATION__ on {capture.url} (title {capture.title!r})",
            url=capture.url,
        )
    return normalize.tiktok_video_detail_item(data, url=capture.url)


ITEM_ROUTES: tuple[ItemRoute, ...] = (
    ItemRoute(
        name="tiktok.video_page",
        page_url=lambda parsed: parsed.canonical_url,
        spec=LoadSpec(ready_js=HYDRATION_READY),
        read=read_video_page,
        normalize=normalize.tiktok_item,
    ),
)
