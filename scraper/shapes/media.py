"""Media addresses: the renditions a post offers, which one to download, and when its URL expires.

Both platforms describe a rendition the same way (a URL list, a ``url_key`` /
``UrlKey`` like ``<uri>_h264_540p_822668``, a codec flag); the platform modules
turn their addresses into ``Rendition`` values and this module chooses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from scraper.shapes.values import JSON, as_int, unix_to_iso

__all__ = ["Rendition", "best_rendition", "codec", "download_fields", "url_expiry", "url_key"]


@dataclass(frozen=True)
class Rendition:
    """One way to download the video: a URL and what is known about it."""

    url: str
    codec: str = ""  # "h264", "h265", other, or "" when unknown
    bitrate: int = 0
    watermark: bool = False
    priority: int = 0  # tie-break: a ladder entry beats the default play address
    width: int | None = None  # the rendition's own frame size, where the address says it
    height: int | None = None
    size: int | None = None  # bytes (``DataSize`` / ``data_size``), where the address says it


_URL_KEY = re.compile(r"_([a-z0-9]+)_\d+p_(\d+)$")
_DOUYIN_PATH_EXPIRY = re.compile(r"^/[0-9a-f]{32}/([0-9a-f]{8})/video/")


def codec(name: Any) -> str:
    """Normalize codec names: ``h265_hvc1`` and ByteDance's ``bytevc1`` are both HEVC."""
    text = str(name or "").lower()
    if text.startswith(("h264", "avc")):
        return "h264"
    if text.startswith(("h265", "hevc", "bytevc1")):
        return "h265"
    return text


def url_key(key: Any) -> tuple[str, int]:
    """Codec and bitrate from a ``UrlKey``/``url_key`` like ``<uri>_h264_540p_822668``."""
    match = _URL_KEY.search(str(key or ""))
    return (codec(match.group(1)), int(match.group(2))) if match else ("", 0)


def _codec_rank(name: str) -> int:
    """h264 plays everywhere; an unknown codec is probably the default (h264) stream; HEVC last."""
    return {"h264": 2, "": 1}.get(name, 0)


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
    seconds = next((as_int(value) for value in parse_qs(parts.query).get("expire", [])), None)
    if seconds:
        return unix_to_iso(seconds)
    match = _DOUYIN_PATH_EXPIRY.match(parts.path)
    return unix_to_iso(int(match.group(1), 16)) if match else None


def download_fields(rendition: Rendition | None) -> JSON:
    """The result's ``download_url``, ``watermark`` and ``download_url_expires_at``."""
    if rendition is None:
        return {"download_url": None, "watermark": None, "download_url_expires_at": None}
    return {
        "download_url": rendition.url,
        "watermark": rendition.watermark,
        "download_url_expires_at": url_expiry(rendition.url),
    }
