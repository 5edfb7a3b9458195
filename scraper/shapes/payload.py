"""Place any saved TikTok or Douyin payload: one post, a list of posts, a profile, or a status.

The decision is made from the payload's own keys, never from what we expected
to fetch: the envelopes we know by name first (Douyin ``aweme_detail``, post
lists, TikTok page documents, the share page's ``loaderData``, ``RENDER_DATA``,
profiles), then a payload that *is* a post, then any list of posts found
inside it, then a bare status envelope. What cannot be placed is a
``LayoutChanged`` that names the keys found.

Posts are found by shape (``is_tiktok_item``: camelCase ``id`` with ``video`` /
``author{uniqueId}``; ``is_douyin_aweme``: ``aweme_id`` with ``video`` / ``author``),
not by the container's name, because the containers vary by endpoint and keep
changing. Seen in real responses:

* ``itemList`` — TikTok ``/api/post/item_list/`` (platforms.md §B.2);
* ``item_list`` — TikTok ``/api/search/item/full/``;
* ``data: [{type: 1, item}, {type: 4, user_list}, …]`` — TikTok ``/api/search/general/full/``
  (a 2026 body, 282 KB, starts ``{"status_code":0,"data":[{"type":1,"item":{"id":"7650052642089225493",…``
  in a research note of the code index whose repository the index does not name);
* ``data: [{type: 1, aweme_info}]`` — Douyin general search, sent as glued JSON blocks
  (ikenxuan/amagi ``packages/core/test/platforms/douyin/multi-json.test.ts`` @ ``eaffdd73``;
  see ``page_data.glued_json``);
* ``{code, msg, data: {status_code, aweme_list | data}}`` — third-party envelopes around TikTok
  app-API awemes (VideoData/TiKTok-data ``TikTok搜索Api/*.md`` @ ``db73fc5a``; their platform
  comes from their hosts, ``douyin.aweme_platform``).

The search is breadth-first and bounded (``MAX_DEPTH`` levels), does not descend
into a post (a post's ``originalItem`` or ``mix_info`` is not another listing entry),
and stops at the shallowest container, so nested lists never outrank the page's own.
A mapping counts only when each post sits under its own id (SIGI's ``ItemModule``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.video import Video
from scraper.errors import LayoutChanged
from scraper.shapes.common import Platform, PostPage, Profile, raise_status
from scraper.shapes.douyin import (
    douyin_aweme,
    douyin_detail_aweme,
    douyin_post_page,
    douyin_profile,
    douyin_render_aweme,
    douyin_share_aweme,
    douyin_status_error,
    is_douyin_aweme,
)
from scraper.shapes.tiktok import (
    TIKTOK_DOCUMENT_KEYS,
    is_tiktok_item,
    tiktok_document,
    tiktok_item,
    tiktok_item_list_page,
    tiktok_status_error,
    tiktok_status_message,
)
from scraper.shapes.values import JSON, as_dict, as_int, as_list

Placed = Video | PostPage | Profile

__all__ = [
    "MAX_DEPTH",
    "FoundPosts",
    "Placed",
    "describe_keys",
    "find_posts",
    "place_payload",
    "read_payload",
]

#: How deep below the payload's top a list of posts may sit (``__DEFAULT_SCOPE__`` →
#: ``webapp.user-detail`` → ``userInfo`` → ``itemList`` is 4).
MAX_DEPTH = 5

# Search results wrap each post with its result type: ``{"type": 1, "item": {…}}`` (TikTok),
# ``{"type": 1, "aweme_info": {…}}`` (Douyin).
_WRAPPERS = ("item", "aweme_info", "aweme")

_READERS: dict[Platform, Callable[[JSON], Video]] = {"tiktok": tiktok_item, "douyin": douyin_aweme}


def _post(value: Any) -> tuple[Platform, JSON] | None:
    """The platform and the post, if ``value`` is one (or wraps one, as search results do)."""
    for candidate in (value, *(as_dict(value).get(key) for key in _WRAPPERS)):
        if is_tiktok_item(candidate):
            return "tiktok", candidate
        if is_douyin_aweme(candidate):
            return "douyin", candidate
    return None


@dataclass(frozen=True)
class FoundPosts:
    """Posts found in a payload and the object that held their container (its paging keys)."""

    posts: list[tuple[Platform, JSON]]
    holder: JSON


def _id_of(post: JSON) -> str:
    return str(post.get("id") or post.get("aweme_id") or post.get("awemeId"))


def _posts_in(container: Any) -> list[tuple[Platform, JSON]]:
    """The posts of a list (other entries, e.g. a general search's user cards, are skipped), or of
    a mapping of id → post (SIGI's ``ItemModule``: each post under its own id)."""
    if isinstance(container, list):
        return [post for post in map(_post, container) if post is not None]
    posts = [(key, _post(value)) for key, value in as_dict(container).items()]
    return [
        post
        for key, post in posts
        if post is not None and post[1] is container[key] and _id_of(post[1]) == key
    ]


def _children(node: Any) -> list[Any]:
    values = node if isinstance(node, list) else list(as_dict(node).values())
    return [value for value in values if isinstance(value, dict | list)]


def find_posts(data: Any, *, max_depth: int = MAX_DEPTH) -> FoundPosts | None:
    """The shallowest container of posts in ``data`` (see the module docstring), or ``None``."""
    if posts := _posts_in(data):
        return FoundPosts(posts, {})
    queue: deque[tuple[Any, int]] = deque([(data, 0)])
    while queue:
        node, depth = queue.popleft()
        children = _children(node)
        for child in children:
            if posts := _posts_in(child):
                return FoundPosts(posts, as_dict(node))
        if depth < max_depth:
            queue.extend((child, depth + 1) for child in children if _post(child) is None)
    return None


def _listing(found: FoundPosts) -> PostPage:
    holder = found.holder
    platforms = {platform for platform, _ in found.posts}
    return PostPage(
        videos=[_READERS[platform](post) for platform, post in found.posts],
        has_more=bool(as_int(holder.get("has_more", holder.get("hasMore")))),
        cursor=as_int(holder.get("cursor", holder.get("max_cursor"))) or 0,
        cursor_key="max_cursor" if platforms == {"douyin"} and "max_cursor" in holder else "cursor",
    )


# --------------------------------------------------------------------------- known envelopes


def _render_data(data: JSON) -> bool:
    """``RENDER_DATA``: ``app.videoDetail`` (2026) or the older ``<route>.aweme.detail``."""
    if "videoDetail" in as_dict(data.get("app")):
        return True
    return any("detail" in as_dict(as_dict(value).get("aweme")) for value in data.values())


def _douyin_user_list(data: JSON) -> bool:
    """``/im/user/info/``: ``data: [{uid, sec_uid, …}]``."""
    return "sec_uid" in as_dict(next(iter(as_list(data.get("data"))), None))


# (does the payload say it is X?, read it as X), most specific first.
_ENVELOPES: tuple[tuple[Callable[[JSON], bool], Callable[[JSON, str | None], Placed | None]], ...] = (
    (
        lambda d: "aweme_detail" in d or "filter_detail" in d,
        lambda d, url: douyin_aweme(douyin_detail_aweme(d, url=url)),
    ),
    (lambda d: "aweme_list" in d, lambda d, url: douyin_post_page(d, url=url)),
    (
        lambda d: "itemList" in d and "__DEFAULT_SCOPE__" not in d,
        lambda d, url: tiktok_item_list_page(d, url=url),
    ),
    (lambda d: any(key in d for key in TIKTOK_DOCUMENT_KEYS), lambda d, url: tiktok_document(d, url=url)),
    (lambda d: "loaderData" in d, lambda d, url: douyin_aweme(douyin_share_aweme(d, url=url))),
    (_render_data, lambda d, url: douyin_aweme(douyin_render_aweme(d, url=url))),
    (
        lambda d: isinstance(d.get("user"), dict) or _douyin_user_list(d),
        lambda d, url: douyin_profile(d, url=url),
    ),
)


def _status(data: JSON, url: str | None) -> None:
    """A bare error envelope raises what it stands for (``statusCode``: TikTok; ``status_code``: Douyin)."""
    if as_int(data.get("statusCode")):
        raise_status(tiktok_status_error(data["statusCode"], tiktok_status_message(data), url=url))
    if data.get("status_code", data.get("code")) not in (None, 0, "0", ""):
        raise_status(douyin_status_error(data, url=url))


def describe_keys(data: Any) -> str:
    """What was found, for the error: the top-level keys (and the page scope's, when there is one)."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}"
    found = f"keys: {sorted(data)[:16]}"
    scope = data.get("__DEFAULT_SCOPE__")
    return found + (f"; __DEFAULT_SCOPE__ keys: {sorted(scope)[:16]}" if isinstance(scope, dict) else "")


def place_payload(data: Any, *, url: str | None = None) -> Placed | None:
    """A parsed page document or API response → ``Video``, ``PostPage`` (a listing) or ``Profile``;
    ``None`` when it holds nothing we can place. Raises the typed error a status or filter stands for.
    """
    if isinstance(data, dict):
        for says, read in _ENVELOPES:
            if says(data) and (placed := read(data, url)) is not None:
                return placed
        if (post := _post(data)) is not None and post[1] is data:
            platform, item = post
            return _READERS[platform](item)
    found = find_posts(data)
    if found is not None:
        return _listing(found)
    if isinstance(data, dict):
        _status(data, url)
    return None


def read_payload(data: Any, *, url: str | None = None) -> Placed:
    """``place_payload``, with a ``LayoutChanged`` naming the keys found when nothing can be placed."""
    placed = place_payload(data, url=url)
    if placed is None:
        raise LayoutChanged(
            f"no TikTok or Douyin post, post list or profile here ({describe_keys(data)})", url=url
        )
    return placed
