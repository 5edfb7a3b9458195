"""The fast path (in-page fetch() on a resident page) against the fixture site, in the real Chromium.

* Healthy: items and channels come without navigating (no new tabs, no page routes).
* Equal: for every item class the fast result equals the navigation result field by field,
  signed media URLs aside (set ``SHORTVID_TEST_ALL_ITEMS=1`` for every fixture item).
* Blocks: each block kind the fast path meets is risk (the session is scored) and the item
  still comes, by navigation on the next attempt; a challenge in a reply and a layout
  surprise fall back to navigation in the same session.
* A listing blocked mid-way resumes from its last cursor on a fresh session and returns
  every post once.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pytest

from fixtures.site import FixtureSite
from models.video import Video
from scraper import errors, service
from scraper.channel import ChannelQuery
from scraper.config import load_browser_settings
from scraper.fast import FastChannelRoute, FastRequest
from scraper.loader import Capture
from scraper.pacing import parse_limits
from scraper.pool import BrowserPool
from scraper.service import fetch_item, list_videos, parse_video
from scraper.shapes.common import Profile
from scraper.urls import ParsedUrl, classify
from tests.e2e import account_by_role, expected_channel, items_where, risk_seen

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
async def pool(site: FixtureSite) -> AsyncIterator[BrowserPool]:
    settings = replace(
        load_browser_settings().pointed_at(site), pool_size=2, cooldown_base=0.2, cooldown_max=1.0
    )
    async with BrowserPool(settings) as browser_pool:
        yield browser_pool


@pytest.fixture(autouse=True)
def clean_faults(site: FixtureSite) -> None:
    site.faults.clear()


def tabs_opened(pool: BrowserPool) -> int:
    """Tabs the browser has served (page loads, and resident pages opened)."""
    return int(pool.census()["browser_pages"])


#: Douyin's video CDN signs in the path: ``/<32 hex signature>/<8 hex expiry>/video/tos/…``.
SIGNED_PATH = re.compile(r"^/[0-9a-f]{32}/[0-9a-f]{8}/")


def unsigned(value: Any) -> Any:
    """A result with signed media URLs reduced to scheme, host and path, and their expiries dropped."""
    if isinstance(value, dict):
        return {k: unsigned(v) for k, v in value.items() if not k.endswith("_expires_at")}
    if isinstance(value, list):
        return [unsigned(v) for v in value]
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        parts = urlsplit(value)
        return f"{parts.scheme}://{parts.hostname}{SIGNED_PATH.sub('/', parts.path)}"
    return value


# --- healthy --------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["douyin", "tiktok"])
async def test_items_come_by_the_fast_path_without_navigating(
    pool: BrowserPool, site: FixtureSite, dataset: dict[str, Any], platform: str
) -> None:
    items = items_where(dataset, platform=platform, account_state="public", state="public", kind="video")
    for _, item in items[:2]:  # each of the two sessions opens its resident page
        await parse_video(pool, classify(item["url"]))
    answers = "douyin.detail" if platform == "douyin" else "tiktok.video_page"
    tabs, api, pages = tabs_opened(pool), site.stats[answers], site.stats["douyin.video_page"]
    for _, item in items[2:7]:
        result = await parse_video(pool, classify(item["url"]))
        assert result["video_id"] == item["id"]
    assert tabs_opened(pool) == tabs  # no tab was opened: no navigation
    assert site.stats["douyin.video_page"] == pages
    assert site.stats[answers] == api + 5


@pytest.mark.parametrize("platform", ["douyin", "tiktok"])
async def test_channels_come_by_the_posts_api_without_scrolling(
    pool: BrowserPool, site: FixtureSite, dataset: dict[str, Any], platform: str
) -> None:
    account = account_by_role(dataset, platform, "big")
    tabs = tabs_opened(pool)
    result = await list_videos(pool, classify(account["profile_url"]), ChannelQuery(count=120))
    assert [v["video_id"] for v in result["videos"]] == expected_channel(account, 120, None)
    assert tabs_opened(pool) <= tabs + 1  # at most the resident page of a fresh session
    assert site.stats["douyin.user_page"] == 0  # the profile came by the API, its page was not loaded


# --- equality -------------------------------------------------------------------------------------


#: Items compared per class of (platform, account, kind, item state, account state) that is not a
#: plain public video: the replica makes the items of one class from one template.
PER_CLASS = 3


def item_class(account: dict[str, Any], item: dict[str, Any]) -> tuple[str, ...]:
    return (account["platform"], account["role"], item["kind"], item["state"], account["state"])


def equality_sample(dataset: dict[str, Any]) -> list[tuple[str, str]]:
    """(platform, url): three items of every class of photo, deleted and private post, the first plain
    video of every account and every 40th (every item with SHORTVID_TEST_ALL_ITEMS=1)."""
    every = os.environ.get("SHORTVID_TEST_ALL_ITEMS") == "1"
    picked = []
    taken: dict[tuple[str, ...], int] = {}
    for platform in ("douyin", "tiktok"):
        videos = 0
        for account, item in items_where(dataset, platform=platform):
            plain = item["kind"] == "video" and item["state"] == "public" and account["state"] == "public"
            videos += plain
            kind = item_class(account, item)
            taken[kind] = taken.get(kind, 0) + 1
            if every or taken[kind] <= (1 if plain else PER_CLASS) or videos % 40 == 1:
                picked.append((platform, item["url"]))
    return picked


async def outcome(run: Awaitable[Video]) -> Any:
    """The result without its signatures, or the error's type."""
    try:
        return unsigned((await run).to_result())
    except errors.ScraperError as exc:
        return type(exc).__name__


async def test_fast_and_navigation_results_are_equal(pool: BrowserPool, dataset: dict[str, Any]) -> None:
    sample = equality_sample(dataset)
    sampled = {url for _, url in sample}
    classes = {item_class(a, i) for a in dataset["accounts"] for i in a["items"]}
    assert classes == {
        item_class(a, i) for a in dataset["accounts"] for i in a["items"] if i["url"] in sampled
    }
    for _, url in sample:
        async with pool.session() as session:
            fast = await outcome(fetch_item(session, classify(url), fast=True))
            navigation = await outcome(fetch_item(session, classify(url), fast=False))
        assert fast == navigation, url


# --- blocks and fallbacks -------------------------------------------------------------------------


ITEM_BLOCKS = [
    ("douyin", "douyin.api_empty"),
    ("douyin", "douyin.argus"),
    ("douyin", "douyin.status4"),
    ("douyin", "douyin.http429"),
    ("tiktok", "tiktok.block_shell"),
    ("tiktok", "tiktok.verify"),
    ("tiktok", "tiktok.captcha"),
]


@pytest.mark.parametrize(("platform", "kind"), ITEM_BLOCKS)
async def test_a_block_on_the_fast_path_scores_the_session_and_navigation_brings_the_item(
    pool: BrowserPool, site: FixtureSite, dataset: dict[str, Any], platform: str, kind: str
) -> None:
    _, item = items_where(dataset, platform=platform, account_state="public", state="public", kind="video")[8]
    await parse_video(pool, classify(item["url"]))  # warm: resident pages open, sessions healthy
    await pool.maintain()
    before, tabs, served = pool.census(), tabs_opened(pool), site.stats[f"fault.{kind}"]
    site.faults.block(kind, next=1)
    result = await parse_video(pool, classify(item["url"]))
    assert result["video_id"] == item["id"]
    assert site.stats[f"fault.{kind}"] == served + 1
    assert risk_seen(pool.census(), before)
    assert tabs_opened(pool) > tabs  # the second attempt navigated


async def test_a_waf_challenge_in_a_reply_falls_back_to_navigation_in_the_same_session(
    pool: BrowserPool, site: FixtureSite, dataset: dict[str, Any]
) -> None:
    _, item = items_where(dataset, platform="tiktok", account_state="public", state="public", kind="video")[9]
    parsed = classify(item["url"])
    served = site.stats["fault.tiktok.waf"]
    async with pool.session() as session:
        await fetch_item(session, parsed)
        score, pages = session.score, session.pages
        site.faults.block("tiktok.waf", next=1)
        video = await fetch_item(session, parsed)
        assert video.video_id == item["id"]
        assert session.pages > pages and session.score <= score  # navigated, not scored
    assert site.stats["fault.tiktok.waf"] == served + 1


@pytest.mark.parametrize("platform", ["douyin", "tiktok"])
async def test_a_layout_surprise_on_the_fast_path_falls_back_to_navigation(
    pool: BrowserPool, dataset: dict[str, Any], monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    def surprise(capture: Capture) -> dict[str, Any]:
        raise errors.LayoutChanged("the fast answer moved")

    route = service.FAST_ITEM_ROUTES[platform]
    monkeypatch.setitem(service.FAST_ITEM_ROUTES, platform, replace(route, read=surprise))
    _, item = items_where(dataset, platform=platform, account_state="public", state="public", kind="photo")[0]
    async with pool.session() as session:
        pages = session.pages
        video = await fetch_item(session, classify(item["url"]))
        assert video.video_id == item["id"] and session.pages > pages


async def test_a_channel_layout_surprise_falls_back_to_scrolling(
    pool: BrowserPool, dataset: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def surprise(payload: dict[str, Any]) -> Any:
        raise errors.LayoutChanged("aweme_list moved")

    route = service.FAST_CHANNEL_ROUTES["douyin"]
    monkeypatch.setitem(service.FAST_CHANNEL_ROUTES, "douyin", replace(route, read_posts=surprise))
    account = account_by_role(dataset, "douyin", "medium")
    result = await list_videos(pool, classify(account["profile_url"]), ChannelQuery(count=30))
    assert [v["video_id"] for v in result["videos"]] == expected_channel(account, 30, None)


# --- resume ---------------------------------------------------------------------------------------

LISTING_BLOCKS = [
    ("douyin", "douyin.api_empty"),
    ("tiktok", "tiktok.api_empty"),
    ("tiktok", "tiktok.http429"),
]


@pytest.mark.parametrize(("platform", "kind"), LISTING_BLOCKS)
async def test_a_listing_blocked_midway_resumes_from_its_cursor(
    pool: BrowserPool,
    site: FixtureSite,
    dataset: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    platform: str,
    kind: str,
) -> None:
    route: FastChannelRoute = service.FAST_CHANNEL_ROUTES[platform]
    asked: list[int] = []

    def posts(parsed: ParsedUrl, profile: Profile, cursor: int) -> FastRequest:
        asked.append(cursor)
        if len(asked) == 3:  # the third page is blocked, once
            site.faults.block(kind, next=1)
        return route.posts(parsed, profile, cursor)

    monkeypatch.setitem(service.FAST_CHANNEL_ROUTES, platform, replace(route, posts=posts))
    account = account_by_role(dataset, platform, "big")
    count = 150
    before, served = pool.census(), site.stats[f"fault.{kind}"]
    result = await list_videos(pool, classify(account["profile_url"]), ChannelQuery(count=count))
    ids = [v["video_id"] for v in result["videos"]]
    assert ids == expected_channel(account, count, None) and len(set(ids)) == len(ids)
    assert site.stats[f"fault.{kind}"] == served + 1 and risk_seen(pool.census(), before)
    assert asked[0] == 0 and asked.count(0) == 1  # never started over
    assert asked[2] == asked[3]  # the blocked page was asked again, on the next session
    assert len(set(asked)) == len(asked) - 1


# --- pacing ---------------------------------------------------------------------------------------

#: The fixture's sticky rule: more than 1 item request per second (burst 2) blocks the identity.
RATE_RULE = (1.0, 2)


async def items_in_a_row(site: FixtureSite, urls: list[str], **settings: Any) -> tuple[int, int]:
    """(sessions the rule blocked, items that came) for ``urls`` one after the other on one pool."""
    blocked = site.stats["fault.session_blocked"]
    base = load_browser_settings().pointed_at(site)
    came = 0
    browser = replace(base, pool_size=1, cooldown_base=0.1, cooldown_max=0.2, risk_retries=1, **settings)
    async with BrowserPool(browser) as own:
        for url in urls:
            try:
                came += (await parse_video(own, classify(url)))["video_id"] in url
            except errors.ScraperError:
                pass
    return site.stats["fault.session_blocked"] - blocked, came


@pytest.mark.parametrize("platform", ["douyin", "tiktok"])
async def test_pacing_spaces_fast_fetches_so_the_rate_rule_never_blocks(
    site: FixtureSite, dataset: dict[str, Any], platform: str
) -> None:
    urls = [i["url"] for _, i in items_where(dataset, platform=platform, state="public", kind="video")[30:34]]
    site.faults.session_rates = {"item": RATE_RULE}
    burst_blocked, _ = await items_in_a_row(site, urls, pacing=False)
    site.faults.clear()
    site.faults.session_rates = {"item": RATE_RULE}
    paced = parse_limits({"item": {"rate": 0.8, "burst": 1}})
    paced_blocked, came = await items_in_a_row(site, urls, pacing=True, pacing_limits=paced)
    assert burst_blocked >= 1  # asking as fast as the fast path can gets the identity blocked
    assert (paced_blocked, came) == (0, len(urls))  # the same items, paced, never are
