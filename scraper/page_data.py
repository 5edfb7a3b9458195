"""Find the hydration JSON that TikTok and Douyin embed in their page HTML.

Pure string work: no browser, no network. Each platform hides its data in a
different place (platforms.md §A.1, §C.1, §C.2); the two mechanisms shared here
are "the body of a ``<script id=…>``" and "the JSON literal after a JavaScript
assignment". A function returns ``None`` when its script is absent (so a caller
can try the next layout) and raises ``LayoutChanged`` when the script is there
but does not hold a JSON object (the site changed, or the page was cut short).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from scraper.errors import LayoutChanged

__all__ = [
    "TIKTOK_SCRIPT_IDS",
    "douyin_render_data",
    "douyin_router_data",
    "glued_json",
    "tiktok_api_data",
    "tiktok_page_data",
    "tiktok_sigi_state",
    "tiktok_universal_data",
]

_DECODER = json.JSONDecoder()


def _script_body(html: str, script_id: str) -> str | None:
    """The text inside ``<script … id="script_id" …>``, whatever the attribute order or quotes."""
    opening = r"<script\b[^>]*\bid\s*=\s*[\"']?" + re.escape(script_id) + r"[\"']?(?=[\s>/])[^>]*>"
    pattern = re.compile(opening + r"(.*?)</script\s*>", re.DOTALL | re.IGNORECASE)
    match = pattern.search(html)
    return match.group(1) if match else None


def _as_object(value: Any, what: str) -> dict[str, Any]:
    """Hydration data is always a JSON object; anything else means the layout moved."""
    if not isinstance(value, dict):
        raise LayoutChanged(f"{what} is not a JSON object (got {type(value).__name__})")
    return value


def _loads_object(text: str, what: str) -> dict[str, Any]:
    """``json.loads`` that reports a broken hydration script as a layout change."""
    try:
        return _as_object(json.loads(text), what)
    except json.JSONDecodeError as exc:
        raise LayoutChanged(f"{what} is not valid JSON: {exc}") from exc


def _object_after(text: str, start: int, what: str) -> dict[str, Any]:
    """Decode the JSON object that begins at (or after whitespace from) ``start``.

    ``raw_decode`` stops at the end of the literal, so a trailing ``;``, another
    statement or ``</script>`` after it does not matter, and a prettified
    multi-line literal decodes the same as a minified one.
    """
    brace = text.find("{", start)
    if brace < 0 or text[start:brace].strip():
        raise LayoutChanged(f"{what}: no JSON object after the assignment")
    try:
        value, _ = _DECODER.raw_decode(text, brace)
    except json.JSONDecodeError as exc:
        raise LayoutChanged(f"{what} is not valid JSON: {exc}") from exc
    return _as_object(value, what)


def _assigned_object(html: str, target: str, what: str) -> dict[str, Any] | None:
    """The object literal assigned to ``target`` (a regex for the left-hand side), if any."""
    match = re.search(target + r"\s*=\s*", html)
    if match is None:
        return None
    return _object_after(html, match.end(), what)


def tiktok_universal_data(html: str) -> dict[str, Any] | None:
    """The ``__UNIVERSAL_DATA_FOR_REHYDRATION__`` document (with ``__DEFAULT_SCOPE__``), 2023+ layout."""
    body = _script_body(html, "__UNIVERSAL_DATA_FOR_REHYDRATION__")
    if body is None:
        return None
    return _loads_object(body, "__UNIVERSAL_DATA_FOR_REHYDRATION__")


def tiktok_api_data(html: str) -> dict[str, Any] | None:
    """The 2026 mobile page's ``<script id="api-data">`` (``videoDetail``, ``commentList``).

    Seen in ``../shared/real-captures/tiktok-mobile-photo-page-api-data.Tiktok-Downloader-20260502.html``:
    there the rehydration scope holds only reflow settings and the post lives here.
    """
    body = _script_body(html, "api-data")
    if body is None:
        return None
    return _loads_object(body, "api-data")


#: The ``<script id=…>`` tags that carry a TikTok page's data, in any layout we know.
TIKTOK_SCRIPT_IDS = ("__UNIVERSAL_DATA_FOR_REHYDRATION__", "api-data", "SIGI_STATE", "sigi-persisted-data")


def tiktok_page_data(html: str) -> dict[str, Any] | None:
    """A TikTok page's data as one rehydration document, whichever script(s) carry it.

    The ``api-data`` script's keys (``videoDetail``, ``commentList``) and a legacy
    ``SIGI_STATE``'s (``ItemModule``, ``UserModule``, …) join the ``__DEFAULT_SCOPE__``
    of ``__UNIVERSAL_DATA_FOR_REHYDRATION__`` (their names do not collide), so the
    readers look in one place for every layout. ``None`` when none is there.
    """
    universal = tiktok_universal_data(html)
    extra = {**(tiktok_sigi_state(html) or {}), **(tiktok_api_data(html) or {})}
    if not extra:
        return universal
    scope = (universal or {}).get("__DEFAULT_SCOPE__")
    return {**(universal or {}), "__DEFAULT_SCOPE__": {**(scope if isinstance(scope, dict) else {}), **extra}}


def tiktok_sigi_state(html: str) -> dict[str, Any] | None:
    """The legacy ``SIGI_STATE`` (``ItemModule``, ``UserModule``, ``VideoPage``) of pre-2023 pages.

    It came either as a JSON script ``<script id="SIGI_STATE">`` or as the script
    ``<script id="sigi-persisted-data">window['SIGI_STATE']={…};…</script>``.
    """
    body = _script_body(html, "SIGI_STATE")
    if body is not None:
        return _loads_object(body, "SIGI_STATE")
    body = _script_body(html, "sigi-persisted-data")
    if body is None:
        return None
    state = _assigned_object(body, r"""window\[['"]SIGI_STATE['"]\]""", "sigi-persisted-data")
    return state if state is not None else _object_after(body, 0, "sigi-persisted-data")


# Between glued blocks only whitespace and chunk-size lines (hex digits) may stand.
_GLUE = re.compile(r"\s*(?:[0-9A-Fa-f]+\s*)*")


def glued_json(text: str) -> list[Any] | None:
    """The JSON values of a body that is several JSON objects glued together, or ``None``.

    Douyin's search XHR answers so: ``15838\r\n{"status_code":0,…}…`` — chunk-size
    lines and objects back to back (measured by ikenxuan/amagi, whose decoder
    ``packages/core/test/platforms/douyin/multi-json.test.ts`` @ ``eaffdd73`` pins it).
    Only whitespace and hex chunk sizes may stand between the objects, so a cut-off
    document is not mistaken for its inner fragments.
    """
    values: list[Any] = []
    at = 0
    while at < len(text):
        gap = _GLUE.match(text, at)
        at = gap.end() if gap else at
        if at >= len(text):
            break
        if text[at] != "{":
            return None
        try:
            value, at = _DECODER.raw_decode(text, at)
        except json.JSONDecodeError:
            return None
        values.append(value)
    return values or None


def douyin_router_data(html: str) -> dict[str, Any] | None:
    """``window._ROUTER_DATA = {…}`` of the iesdouyin share page (minified or prettified)."""
    return _assigned_object(html, r"window\._ROUTER_DATA", "window._ROUTER_DATA")


def douyin_render_data(html: str) -> dict[str, Any] | None:
    """``<script id="RENDER_DATA" type="application/json">`` — URL-encoded JSON on www.douyin.com."""
    body = _script_body(html, "RENDER_DATA")
    if body is None:
        return None
    return _loads_object(unquote(body.strip()), "RENDER_DATA")
