"""Offline extraction: turn a saved page or API response into shortvid's result shapes.

Behind ``shortvid extract FILE``. It lets anyone check the parsers against a
real capture (or debug a failed job from a saved page) without a browser or a
network: the file kind is detected from its content, not its name.

Results (JSON-ready dicts):

* a video page, share page, ``RENDER_DATA`` page or detail response → the ``Video`` result;
* a post list (Douyin ``aweme_list``, TikTok ``itemList``) →
  ``{"videos", "has_more", "count", "max_cursor" | "cursor"}``;
* a profile (Douyin ``user`` / ``data[0]``, TikTok ``webapp.user-detail``) → ``{"author", "stats"}``;
* a TikTok oEmbed response → a **partial** Video-like dict (``"partial": true``: no create
  time, statistics or download URL are in oEmbed);
* a response-headers capture → ``{"status", "cookies"}`` (``tt_chain_token`` explains media 403s).

A deleted, private or blocked item raises the matching ``ScraperError`` (a
captcha or challenge page raises ``Blocked``); an unknown file raises ``LayoutChanged``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scraper import normalize, outcome, page_data
from scraper.errors import Blocked, LayoutChanged, ScraperError

JSON = dict[str, Any]
Handler = Callable[[JSON], JSON]

__all__ = ["extract_file", "extract_json", "extract_text", "main"]


# --------------------------------------------------------------------------- result shapes


def _page_result(page: normalize.PostPage, cursor_key: str) -> JSON:
    return {
        "videos": [video.to_result() for video in page.videos],
        "has_more": page.has_more,
        cursor_key: page.cursor,
        "count": len(page.videos),
    }


def _profile_result(profile: normalize.Profile) -> JSON:
    return {"author": profile.author.model_dump(mode="json"), "stats": dict(profile.stats)}


def _tiktok_scope(data: JSON) -> JSON:
    """A TikTok rehydration document or SIGI state: a profile page or a video page."""
    scope = data.get("__DEFAULT_SCOPE__", data)
    if isinstance(scope, dict) and "webapp.user-detail" in scope and "webapp.video-detail" not in scope:
        return _profile_result(normalize.tiktok_user_detail(scope))
    return normalize.tiktok_item(normalize.tiktok_video_detail_item(data)).to_result()


def _tiktok_bare_item(data: JSON) -> JSON:
    """A lone ``itemStruct`` (or a SIGI ``ItemModule`` entry) saved on its own."""
    return normalize.tiktok_item(data).to_result()


def _looks_like_tiktok_item(data: JSON) -> bool:
    return "id" in data and "createTime" in data and ("video" in data or "imagePost" in data)


def _douyin_detail(data: JSON) -> JSON:
    return normalize.douyin_aweme(normalize.douyin_detail_aweme(data)).to_result()


def _douyin_share(data: JSON) -> JSON:
    return normalize.douyin_aweme(normalize.douyin_share_aweme(data)).to_result()


def _douyin_render(data: JSON) -> JSON:
    return normalize.douyin_aweme(normalize.douyin_render_aweme(data)).to_result()


def _oembed(data: JSON) -> JSON:
    """oEmbed names the video and its author but has no time, stats or media: a partial result."""
    video_id = str(data.get("embed_product_id") or "")
    unique_id = data.get("author_unique_id") or None
    return {
        "partial": True,
        "platform": "tiktok",
        "video_id": video_id,
        "title": data.get("title") or "",
        "author": {"nickname": data.get("author_name") or "", "unique_id": unique_id},
        "cover_url": data.get("thumbnail_url"),
        "share_url": f"https://www.tiktok.com/@{unique_id or '_'}/video/{video_id}",
    }


def _set_cookies(headers: JSON) -> dict[str, str]:
    """``name=value`` of every ``Set-Cookie`` header (attributes dropped)."""
    values: Any = next((v for k, v in headers.items() if k.lower() == "set-cookie"), [])
    cookies: dict[str, str] = {}
    for line in [values] if isinstance(values, str) else values:
        name, _, value = str(line).split(";", 1)[0].partition("=")
        if name.strip():
            cookies[name.strip()] = value.strip()
    return cookies


def _headers_capture(data: JSON) -> JSON:
    return {"status": data.get("statusCode"), "cookies": _set_cookies(data["headers"])}


def _douyin_status_only(data: JSON) -> JSON:
    """A bare Douyin error envelope: raise what it stands for."""
    error = normalize.douyin_status_error(data)
    raise error if error is not None else LayoutChanged("Douyin envelope without data")


def _tiktok_status_only(data: JSON) -> JSON:
    """A bare TikTok error envelope: raise what it stands for."""
    error = normalize.tiktok_status_error(data.get("statusCode"), data.get("statusMsg"))
    raise error if error is not None else LayoutChanged("TikTok envelope without data")


# --------------------------------------------------------------------------- detection


def _has_user_list(data: JSON) -> bool:
    first = (data.get("data") or [None])[0] if isinstance(data.get("data"), list) else None
    return isinstance(first, dict) and "sec_uid" in first


def _nonzero(value: Any) -> bool:
    return value not in (None, 0, "0", "")


_TIKTOK_SCOPE_KEYS = (
    "__DEFAULT_SCOPE__",
    *normalize.TIKTOK_DETAIL_SCOPES,
    "webapp.user-detail",
    "itemInfo",
    "ItemModule",
)

# (does this JSON look like X?, what to do with it), most specific first.
_JSON_KINDS: tuple[tuple[Callable[[JSON], bool], Handler], ...] = (
    (lambda d: "aweme_detail" in d or "filter_detail" in d, _douyin_detail),
    (lambda d: "aweme_list" in d, lambda d: _page_result(normalize.douyin_post_page(d), "max_cursor")),
    (lambda d: "itemList" in d, lambda d: _page_result(normalize.tiktok_item_list_page(d), "cursor")),
    (lambda d: any(key in d for key in _TIKTOK_SCOPE_KEYS), _tiktok_scope),
    (_looks_like_tiktok_item, _tiktok_bare_item),
    (lambda d: "loaderData" in d, _douyin_share),
    (lambda d: "videoDetail" in (d.get("app") or {}), _douyin_render),
    (lambda d: isinstance(d.get("user"), dict), lambda d: _profile_result(normalize.douyin_profile(d))),
    (_has_user_list, lambda d: _profile_result(normalize.douyin_profile(d))),
    (lambda d: "embed_product_id" in d or d.get("provider_name") == "TikTok", _oembed),
    (lambda d: isinstance(d.get("headers"), dict) and "statusCode" in d, _headers_capture),
    (lambda d: _nonzero(d.get("status_code", d.get("code"))), _douyin_status_only),
    (lambda d: _nonzero(d.get("statusCode")), _tiktok_status_only),
)

# (find the hydration JSON in HTML, what to do with it), tried in order.
_HTML_KINDS: tuple[tuple[Callable[[str], JSON | None], Handler], ...] = (
    (page_data.tiktok_page_data, _tiktok_scope),
    (page_data.tiktok_sigi_state, _tiktok_scope),
    (page_data.douyin_router_data, _douyin_share),
    (page_data.douyin_render_data, _douyin_render),
)


def extract_json(data: Any, *, name: str = "") -> JSON:
    """Recognize a parsed API response / capture and return its result shape."""
    if isinstance(data, dict):
        for looks_like, handle in _JSON_KINDS:
            if looks_like(data):
                return handle(data)
    raise LayoutChanged(
        f"unrecognized file: {name or 'JSON'} is not a known TikTok/Douyin response "
        "(hint: expected aweme_detail, aweme_list, itemList, __DEFAULT_SCOPE__, loaderData, "
        "user, an oEmbed body or a response-headers capture)"
    )


def _extract_html(html: str, *, name: str) -> JSON:
    for find, handle in _HTML_KINDS:
        data = find(html)
        if data is not None:
            return handle(data)
    blocked = outcome.block_reason(html)
    if blocked:
        raise Blocked(f"{name or 'the page'} is a {blocked}, not a data page")
    raise LayoutChanged(
        f"unrecognized file: {name or 'HTML'} has no __UNIVERSAL_DATA_FOR_REHYDRATION__, SIGI_STATE, "
        "window._ROUTER_DATA or RENDER_DATA (hint: a challenge/captcha page, a shell page without a "
        "ttwid cookie, or a page saved before its data loaded?)"
    )


def extract_text(text: str, *, name: str = "") -> JSON:
    """Detect HTML vs JSON by content and extract the result."""
    body = text.lstrip("\ufeff \t\r\n")
    if not body:
        raise LayoutChanged(f"unrecognized file: {name or 'input'} is empty (hint: an empty 200 is a block)")
    if body[0] in "{[":
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            raise LayoutChanged(f"unrecognized file: {name or 'input'} is not valid JSON: {exc}") from exc
        return extract_json(data, name=name)
    return _extract_html(text, name=name)


def extract_file(path: Path) -> JSON:
    """Read a saved page or response and extract the result (see the module docstring)."""
    return extract_text(path.read_text(encoding="utf-8", errors="replace"), name=path.name)


def main(argv: Sequence[str] | None = None) -> int:
    """``shortvid extract FILE``: print the result as JSON; one-line error and exit 1 on failure."""
    parser = argparse.ArgumentParser(prog="shortvid extract", description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="saved HTML page or JSON response")
    args = parser.parse_args(argv)
    try:
        result = extract_file(args.file)
    except ScraperError as exc:
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
