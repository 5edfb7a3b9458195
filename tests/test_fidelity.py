"""Structural fidelity: the replica carries what our extractors read in the real captures.

For each capture in ``../shared/real-captures`` the real extractor (``scraper.extract.extract_json``)
runs over the capture's JSON wrapped in a recording ``dict``; every key it looks up (``[]``,
``get``, ``in``, iteration) is logged as a path (``itemInfo.itemStruct.stats.diggCount``, list
indices collapsed to ``[]``, a mapping walked by iteration to ``*``) with the JSON type found.
The fixture's counterpart (same kind of page or XHR, fetched over HTTPS from the running replica
or built by its own shape functions) must then

* carry every path the extractor *found* in the real one, with the same JSON types, and
* lack every path the extractor *probed but did not find* there (a ``statsV2`` or ``imagePost``
  the real page lacks would send the extractor down another branch).

What the replica leaves out or adds on purpose is listed below (path → reason), so the replica
cannot drift from the real sites unnoticed. Block pages: the fixture's must contain the markers
``scraper/outcome.py`` keys on that the real ones contain.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fixtures.dataset import Item
from fixtures.listing import page
from fixtures.pages.blocks import captcha_page, security_check_page, waf_page
from fixtures.shapes_common import Clock
from fixtures.shapes_douyin import detail_response
from fixtures.shapes_douyin_user import post_response, profile_response
from fixtures.site import FixtureSite
from scraper import outcome, page_data
from scraper.errors import ScraperError
from scraper.extract import extract_json
from scraper.http import platform_http_session

CAPTURES = Path(__file__).resolve().parents[1].parent / "shared" / "real-captures"
pytestmark = pytest.mark.skipif(not CAPTURES.is_dir(), reason=f"real captures not present at {CAPTURES}")

DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
KeyPath = tuple[str, ...]

# --------------------------------------------------------------------------- what the replica differs in

#: Real paths the extractor reads that the replica does not carry (or carries with another type).
MISSING: dict[str, dict[str, str]] = {
    "tiktok-sigi-itemmodule-item.TikTok-Api-pr1107-20240124.json": {
        **{
            path: "legacy SIGI_STATE ItemModule (2023): the author is a uniqueId string with flat "
            "authorId/authorSecId/nickname/avatarThumb beside it; the replica serves the 2024+ page "
            "form, where the author is an object"
            for path in ("author", "authorId", "authorSecId", "nickname", "avatarThumb")
        },
    },
}
NEWER_PLAY_ADDR = "added in 2025+ (the 2026 jarvis-2 capture has it); the replica follows the newer page"
#: Paths the extractor probes that the real capture lacks but the replica carries.
EXTRA: dict[str, dict[str, str]] = {
    "tiktok-video-page.Embed-20240610.html": {
        f"__DEFAULT_SCOPE__.webapp.video-detail.itemInfo.itemStruct.video.bitrateInfo[].PlayAddr.{name}": (
            NEWER_PLAY_ADDR
        )
        for name in ("Width", "Height")
    },
    "tiktok-sigi-itemmodule-item.TikTok-Api-pr1107-20240124.json": {
        "statsV2": "the legacy ItemModule item has only stats; the 2024+ page form adds statsV2 "
        "(exact counts, as strings)",
        "video.bitrateInfo[].PlayAddr.Width": NEWER_PLAY_ADDR,
        "video.bitrateInfo[].PlayAddr.Height": NEWER_PLAY_ADDR,
    },
    "douyin-iesdouyin-share-video-page.verse91-20250812.prettified.html": {
        "loaderData.video_(id)/page.videoInfoRes.item_list[].video.duration": "absent in this 2025-08 "
        "capture, present in the 2025-12 bmad one; the replica follows the newer page",
    },
}
#: Captures with no counterpart in the replica.
NO_COUNTERPART: dict[str, str] = {
    "douyin-web-api-user_base_info.TikTokDownload-20230804.json": "/aweme/v1/web/im/user/info/ is never "
    "called by the scraper (only `shortvid extract` reads saved copies), so the replica does not serve it",
}

# --------------------------------------------------------------------------- the recorder


def json_type(value: Any) -> str:
    """The JSON type of a decoded value (ints and floats are both ``number``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


@dataclass
class Reads:
    """What an extractor looked up: paths found (with the JSON types there) and paths it missed."""

    found: dict[KeyPath, set[str]] = field(default_factory=dict)
    missed: set[KeyPath] = field(default_factory=set)

    def hit(self, path: KeyPath, value: Any) -> None:
        self.found.setdefault(path, set()).add(json_type(value))

    @property
    def absent(self) -> set[KeyPath]:
        """Probed and never found (a path found in one list element and not another is not absent)."""
        return self.missed - set(self.found)


class RecordingDict(dict[str, Any]):
    """A decoded JSON object that logs every key looked up in it."""

    def __init__(self, data: dict[str, Any], path: KeyPath, reads: Reads) -> None:
        super().__init__({k: recording(v, (*path, k), reads) for k, v in data.items()})
        self.path, self.reads = path, reads

    def _looked_up(self, key: object) -> None:
        path = (*self.path, str(key))
        if dict.__contains__(self, key):
            self.reads.hit(path, dict.__getitem__(self, key))
        else:
            self.reads.missed.add(path)

    def __getitem__(self, key: str) -> Any:
        self._looked_up(key)
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        self._looked_up(key)
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        self._looked_up(key)
        return dict.__contains__(self, key)

    def _walked(self) -> None:
        for value in dict.values(self):
            self.reads.hit((*self.path, "*"), value)

    def __iter__(self) -> Iterator[str]:
        self._walked()
        return dict.__iter__(self)

    def keys(self) -> Any:
        self._walked()
        return dict.keys(self)

    def values(self) -> Any:
        self._walked()
        return dict.values(self)

    def items(self) -> Any:
        self._walked()
        return dict.items(self)


class RecordingList(list[Any]):
    """A decoded JSON array that logs the elements read (as ``path[]``)."""

    def __init__(self, data: list[Any], path: KeyPath, reads: Reads) -> None:
        super().__init__(recording(v, (*path, "[]"), reads) for v in data)
        self.path, self.reads = path, reads

    def __iter__(self) -> Iterator[Any]:
        for value in list.__iter__(self):
            self.reads.hit((*self.path, "[]"), value)
        return list.__iter__(self)

    def __getitem__(self, index: Any) -> Any:
        value = list.__getitem__(self, index)
        for element in value if isinstance(index, slice) else [value]:
            self.reads.hit((*self.path, "[]"), element)
        return value


def recording(value: Any, path: KeyPath, reads: Reads) -> Any:
    if isinstance(value, dict):
        return RecordingDict(value, path, reads)
    if isinstance(value, list):
        return RecordingList(value, path, reads)
    return value


def extractor_reads(data: Any) -> Reads:
    """Run the real extractor over ``data`` and return what it read (an error result is fine: a
    deleted item's answer is read as far as the extractor goes)."""
    reads = Reads()
    try:
        extract_json(recording(data, (), reads))
    except ScraperError:
        pass
    return reads


def show(path: KeyPath) -> str:
    """``('a', '[]', 'b')`` → ``a[].b``."""
    return ".".join(path).replace(".[]", "[]")


def types_at(data: Any, path: KeyPath) -> set[str]:
    """The JSON types found at ``path`` in plain decoded JSON (every element for ``[]``/``*``)."""
    nodes = [data]
    for step in path:
        if step == "[]":
            nodes = [v for n in nodes if isinstance(n, list) for v in n]
        elif step == "*":
            nodes = [v for n in nodes if isinstance(n, dict) for v in n.values()]
        else:
            nodes = [n[step] for n in nodes if isinstance(n, dict) and step in n]
    return {json_type(n) for n in nodes}


# --------------------------------------------------------------------------- the data on both sides


def hydration(html: str) -> Any:
    """The JSON a page carries, found the way ``scraper.extract`` looks for it."""
    finders = (
        page_data.tiktok_page_data,
        page_data.tiktok_sigi_state,
        page_data.douyin_router_data,
        page_data.douyin_render_data,
    )
    return next((data for data in (find(html) for find in finders) if data is not None), None)


def real_data(name: str) -> Any:
    text = (CAPTURES / name).read_text(encoding="utf-8")
    return json.loads(text) if text.lstrip()[:1] in "{[" else hydration(text)


@pytest.fixture(scope="module")
async def site() -> Any:
    async with FixtureSite() as running:
        yield running


def a_post(site: FixtureSite, platform: str, kind: str, state: str = "public") -> Item:
    """A post like the captures': of a public account, not pinned, with hashtags when public."""
    return next(
        i
        for i in site.dataset.items(platform)
        if (i.kind, i.state, i.author.state) == (kind, state, "public")
        and not i.pinned
        and (i.hashtags or state != "public")
    )


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


async def fetch(site: FixtureSite, url: str, ua: str, *, times: int = 1) -> Answer:
    """GET ``url`` from the replica ``times`` times in one cookie jar (the share page wants a
    ``ttwid`` first); the last answer."""
    async with platform_http_session(
        map_to=site.address, ca_file=site.ca_pem_path, headers={"User-Agent": ua}
    ) as http:
        for _ in range(times):
            async with http.get(url, allow_redirects=False) as response:
                answer = Answer(
                    response.status,
                    response.reason or "",
                    list(response.headers.items()),
                    await response.read(),
                )
        return answer


async def page_json(site: FixtureSite, url: str, ua: str, *, times: int = 1) -> Any:
    return hydration((await fetch(site, url, ua, times=times)).body.decode())


async def tiktok_desktop_page(site: FixtureSite) -> Any:
    return await page_json(site, a_post(site, "tiktok", "video").url, DESKTOP_UA)


async def tiktok_mobile_photo_page(site: FixtureSite) -> Any:
    return await page_json(site, a_post(site, "tiktok", "photo").url, IPHONE_UA)


async def tiktok_desktop_item(site: FixtureSite) -> Any:
    return (await tiktok_desktop_page(site))["__DEFAULT_SCOPE__"]["webapp.video-detail"]["itemInfo"][
        "itemStruct"
    ]


async def tiktok_page_headers(site: FixtureSite) -> Any:
    """The replica's page response in the capture's form: status, reason and headers by lower name."""
    answer = await fetch(site, a_post(site, "tiktok", "video").url, DESKTOP_UA)
    headers: dict[str, list[str]] = {}
    for name, value in answer.headers:
        headers.setdefault(name.lower(), []).append(value)
    return {"statusCode": answer.status, "reasonPhrase": answer.reason, "headers": headers}


async def tiktok_oembed(site: FixtureSite) -> Any:
    item = a_post(site, "tiktok", "video")
    return json.loads(
        (await fetch(site, f"https://www.tiktok.com/oembed?url={item.url}&format=json", DESKTOP_UA)).body
    )


async def douyin_share_page(site: FixtureSite) -> Any:
    item = a_post(site, "douyin", "video")
    return await page_json(site, f"https://www.iesdouyin.com/share/video/{item.id}/", IPHONE_UA, times=2)


async def douyin_detail(site: FixtureSite) -> Any:
    item = a_post(site, "douyin", "video")
    return detail_response(item.id, item, site.secrets.server_key, Clock.current())


async def douyin_self_visible_detail(site: FixtureSite) -> Any:
    item = a_post(site, "douyin", "video", state="private")
    return detail_response(item.id, item, site.secrets.server_key, Clock.current())


async def douyin_posts(site: FixtureSite) -> Any:
    """The first post page of an account with a pinned post (the capture's one item is pinned)."""
    account = next(i.author for i in site.dataset.items("douyin") if i.pinned and i.author.state == "public")
    return post_response(page(account, 0, 18, pinned_extra=True), site.secrets.server_key, Clock.current())


async def douyin_profile(site: FixtureSite) -> Any:
    account = a_post(site, "douyin", "video").author
    return profile_response(account, site.secrets.server_key, Clock.current())


COUNTERPARTS: dict[str, Callable[[FixtureSite], Awaitable[Any]]] = {
    "tiktok-video-page.Embed-20240610.html": tiktok_desktop_page,
    "tiktok-video-page.jarvis-2-20260630.html": tiktok_desktop_page,
    "tiktok-mobile-photo-page-api-data.Tiktok-Downloader-20260502.html": tiktok_mobile_photo_page,
    "tiktok-sigi-itemmodule-item.TikTok-Api-pr1107-20240124.json": tiktok_desktop_item,
    "tiktok-video-page.Embed-20240610.response-headers.json": tiktok_page_headers,
    "tiktok-oembed.Embed-20240610.json": tiktok_oembed,
    "douyin-iesdouyin-share-video-page.verse91-20250812.prettified.html": douyin_share_page,
    "douyin-iesdouyin-share-video-page.bmad-method-knowledge-20251217.html": douyin_share_page,
    "douyin-web-api-user_post_detail.TikTokDownload-20230804.json": douyin_detail,
    "douyin-web-api-user_post_delete.TikTokDownload-20230804.json": douyin_self_visible_detail,
    "douyin-web-api-user_post_info_video.TikTokDownload-20230804.json": douyin_posts,
    "douyin-web-api-user_profile_info.TikTokDownload-20230804.json": douyin_profile,
}
#: Block pages: the capture and the replica's page for the same block.
BLOCK_PAGES: dict[str, Callable[[FixtureSite], str]] = {
    "tiktok-waf-challenge-page.snaptik-20260330.html": lambda site: waf_page(site.state),
    "tiktok-captcha-security-check-page.tkkstarlink-20260415.html": lambda site: security_check_page(),
    "douyin-captcha-middle-page.douyinstream-pro-20260115.html": lambda site: captcha_page(),
}

# --------------------------------------------------------------------------- the tests


def test_every_capture_is_compared() -> None:
    captures = {p.name for p in CAPTURES.iterdir() if p.name != "README.md"}
    assert captures == set(COUNTERPARTS) | set(BLOCK_PAGES) | set(NO_COUNTERPART)
    assert set(MISSING) | set(EXTRA) <= set(COUNTERPARTS)


@pytest.mark.parametrize("capture", sorted(COUNTERPARTS))
async def test_replica_carries_what_the_extractor_reads(site: FixtureSite, capture: str) -> None:
    reads = extractor_reads(real_data(capture))
    assert reads.found, f"the extractor read nothing in {capture}"
    replica = await COUNTERPARTS[capture](site)
    missing, extra = MISSING.get(capture, {}), EXTRA.get(capture, {})
    wrong = {
        show(path): f"real {sorted(types)}, replica {sorted(types_at(replica, path)) or 'absent'}"
        for path, types in reads.found.items()
        if show(path) not in missing and not types <= types_at(replica, path)
    }
    assert not wrong, f"{capture}: the replica lacks what the real one has: {json.dumps(wrong, indent=1)}"
    added = sorted(show(path) for path in reads.absent if show(path) not in extra and types_at(replica, path))
    assert not added, (
        f"{capture}: the replica has paths the real one lacks (the extractor probes them): {added}"
    )
    stale = {p for p in missing if not any(show(path) == p for path in reads.found)}
    stale |= {p for p in extra if not any(show(path) == p for path in reads.absent)}
    assert not stale, f"{capture}: listed differences the extractor no longer reads: {sorted(stale)}"


@pytest.mark.parametrize("capture", sorted(BLOCK_PAGES))
def test_block_pages_carry_the_real_markers(site: FixtureSite, capture: str) -> None:
    real = (CAPTURES / capture).read_text(encoding="utf-8")
    replica = BLOCK_PAGES[capture](site)
    markers = [m for m, _ in (*outcome.DEFINITIVE_MARKERS, *outcome.TRANSIENT_MARKERS) if m in real]
    assert markers, f"{capture}: outcome.py keys on nothing in the real page"
    assert [m for m in markers if m not in replica] == []
    assert outcome.block_reason(replica) == outcome.block_reason(real)


async def test_the_replica_sets_the_real_visitor_cookies(site: FixtureSite) -> None:
    """The response-headers capture is read by iteration (``headers.*``), so its paths say little;
    what the scraper needs from it is the visitor cookies, the CDN's ``tt_chain_token`` above all.
    ``ak_bmsc`` is Akamai Bot Manager's cookie: the replica has no CDN edge in front of it."""
    real = extract_json(real_data("tiktok-video-page.Embed-20240610.response-headers.json"))["cookies"]
    replica = extract_json(await tiktok_page_headers(site))["cookies"]
    assert set(real) - {"ak_bmsc"} == set(replica)
