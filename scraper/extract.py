"""Offline extraction: turn a saved page or API response into shortvid's result shapes.

Behind ``shortvid extract FILE``. It lets anyone check the parsers against a
real capture (or debug a failed job from a saved page) without a browser or a
network: the file kind is detected from its content, not its name, and the
payload is placed by its own keys (``scraper.shapes.payload``).

Results (JSON-ready dicts):

* one post (a video page in any layout, share page, ``RENDER_DATA`` page, detail
  response, a bare item) → the ``Video`` result (``missing`` names the fields the
  platform did not send);
* anything holding a list of posts (Douyin ``aweme_list``, TikTok ``itemList``, a
  SIGI_STATE profile page, search responses, …) → a listing
  ``{"author", "videos", "count", "has_more", "cursor" | "max_cursor"}``
  (``author`` is ``null`` unless the payload names the account);
* a profile (Douyin ``user`` / ``data[0]``, TikTok ``webapp.user-detail``) → ``{"author", "stats"}``;
* a TikTok oEmbed response → a **partial** Video-like dict (``"partial": true``: no create
  time, statistics or download URL are in oEmbed);
* a response-headers capture → ``{"status", "cookies"}`` (``tt_chain_token`` explains media 403s).

A deleted, private or blocked item raises the matching ``ScraperError`` (a
captcha or challenge page raises ``Blocked``); an unknown file raises
``LayoutChanged`` naming the keys it found.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scraper import outcome, page_data
from scraper.errors import Blocked, LayoutChanged, ScraperError
from scraper.shapes.common import PostPage, Profile
from scraper.shapes.payload import Placed, describe_keys, place_payload

JSON = dict[str, Any]
Handler = Callable[[JSON], JSON]

__all__ = ["extract_file", "extract_json", "extract_text", "main"]


# --------------------------------------------------------------------------- result shapes


def listing_result(page: PostPage) -> JSON:
    """A list of posts as the channel listing's shape, plus the platform's cursor."""
    return {
        "author": page.author.model_dump(mode="json") if page.author else None,
        "videos": [video.to_result() for video in page.videos],
        "count": len(page.videos),
        "has_more": page.has_more,
        page.cursor_key: page.cursor,
    }


def result_of(placed: Placed) -> JSON:
    """A placed payload (post, listing, profile) as its JSON result."""
    if isinstance(placed, PostPage):
        return listing_result(placed)
    if isinstance(placed, Profile):
        return {"author": placed.author.model_dump(mode="json"), "stats": dict(placed.stats)}
    return placed.to_result()


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


# --------------------------------------------------------------------------- detection

# Captures that are not platform payloads, recognized by their own keys before anything else
# (a headers capture has a ``statusCode`` that is HTTP's, not TikTok's).
_CAPTURE_KINDS: tuple[tuple[Callable[[JSON], bool], Handler], ...] = (
    (lambda d: "embed_product_id" in d or d.get("provider_name") == "TikTok", _oembed),
    (lambda d: isinstance(d.get("headers"), dict) and "statusCode" in d, _headers_capture),
)

# Find the hydration JSON in HTML, tried in order (TikTok's merges every script layout).
_HTML_FINDERS: tuple[Callable[[str], JSON | None], ...] = (
    page_data.tiktok_page_data,
    page_data.douyin_router_data,
    page_data.douyin_render_data,
)


def extract_json(data: Any, *, name: str = "") -> JSON:
    """Recognize a parsed API response / capture and return its result shape."""
    if isinstance(data, dict):
        for looks_like, handle in _CAPTURE_KINDS:
            if looks_like(data):
                return handle(data)
    placed = place_payload(data)
    if placed is None:
        raise LayoutChanged(
            f"unrecognized file: {name or 'JSON'} holds no TikTok/Douyin post, post list or profile "
            f"({describe_keys(data)}; hint: expected aweme_detail, aweme_list, itemList, __DEFAULT_SCOPE__, "
            "loaderData, user, an oEmbed body or a response-headers capture)"
        )
    return result_of(placed)


def _extract_html(html: str, *, name: str) -> JSON:
    for find in _HTML_FINDERS:
        data = find(html)
        if data is not None:
            return extract_json(data, name=name)
    blocked = outcome.block_reason(html)
    if blocked:
        raise Blocked(f"{name or 'the page'} is a {blocked}, not a data page")
    raise LayoutChanged(
        f"unrecognized file: {name or 'HTML'} has no __UNIVERSAL_DATA_FOR_REHYDRATION__, api-data, "
        "SIGI_STATE, window._ROUTER_DATA or RENDER_DATA (hint: a challenge/captcha page, a shell page "
        "without a ttwid cookie, or a page saved before its data loaded?)"
    )


def _extract_glued(values: list[Any], *, name: str) -> JSON:
    """Glued JSON blocks (Douyin search): one listing of every block's posts; other blocks are noise."""
    placed = [place_payload(value) for value in values if isinstance(value, dict)]
    pages = [page for page in placed if isinstance(page, PostPage)]
    if not pages:
        if len(placed) == 1 and placed[0] is not None:
            return result_of(placed[0])
        raise LayoutChanged(
            f"unrecognized file: {name or 'input'} is {len(values)} glued JSON values without posts"
        )
    last = pages[-1]
    merged = PostPage([video for page in pages for video in page.videos], last.has_more, last.cursor)
    return listing_result(merged)


#: A chunk-size line before glued JSON blocks (see ``page_data.glued_json``).
_CHUNK_SIZE = re.compile(r"[0-9A-Fa-f]+\r?\n\s*\{")


def extract_text(text: str, *, name: str = "") -> JSON:
    """Detect HTML vs JSON by content and extract the result."""
    body = text.lstrip("\ufeff \t\r\n")
    if not body:
        raise LayoutChanged(f"unrecognized file: {name or 'input'} is empty (hint: an empty 200 is a block)")
    if body[0] in "{[" or _CHUNK_SIZE.match(body):
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            glued = page_data.glued_json(body)
            if glued is None:
                raise LayoutChanged(f"unrecognized file: {name or 'input'} is not valid JSON: {exc}") from exc
            return _extract_glued(glued, name=name)
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
