"""Coercions both sites need: numbers and ids arrive as ints or strings, absent parts as ``null``.

Every reader in ``scraper.shapes`` goes through these, so "what counts as a
number, an id, a URL" is decided once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from models.video import iso_utc_ms

JSON = dict[str, Any]

__all__ = [
    "JSON",
    "as_dict",
    "as_ident",
    "as_int",
    "as_list",
    "as_text",
    "first_int",
    "first_url",
    "https",
    "ms_to_s",
    "unix_to_iso",
]


def as_int(value: Any) -> int | None:
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


def as_dict(value: Any) -> JSON:
    """The value if it is an object, else ``{}``: absent parts arrive as ``null`` as often as missing."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_text(value: Any) -> str | None:
    """A non-empty string (ids may come as ints)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        text = str(value).strip()
        return text or None
    return None


def as_ident(value: Any) -> str | None:
    """An identifier, where ``""`` and ``"0"`` mean "none" (Douyin ``short_id: "0"``)."""
    text = as_text(value)
    return None if text in (None, "0") else text


def https(url: str) -> str:
    """Douyin web data uses protocol-relative URLs (``//v3-web.douyinvod.com/…``)."""
    return "https:" + url if url.startswith("//") else url


def first_url(value: Any) -> str | None:
    """The first URL in any of the shapes both sites use for "a media address".

    A string, ``{url_list|urlList|UrlList: […]}``, ``{src}`` or a list of those.
    """
    if isinstance(value, str):
        return https(value) if value else None
    if isinstance(value, list):
        return next((url for url in map(first_url, value) if url), None)
    if isinstance(value, dict):
        for key in ("url_list", "urlList", "UrlList", "src", "url"):
            url = first_url(value.get(key))
            if url:
                return url
    return None


def first_int(sources: Sequence[JSON], key: str) -> int | None:
    """The first source that has ``key`` as a number wins (statsV2 before stats)."""
    return next((n for n in (as_int(source.get(key)) for source in sources) if n is not None), None)


def unix_to_iso(seconds: int) -> str:
    """Unix seconds → the vendor's ISO 8601 UTC with milliseconds and ``Z``."""
    return iso_utc_ms(datetime.fromtimestamp(seconds, UTC))


def ms_to_s(value: Any) -> int:
    """Douyin durations are milliseconds; the API returns whole seconds, rounded half up."""
    ms = as_int(value)
    return (ms + 500) // 1000 if ms and ms > 0 else 0
