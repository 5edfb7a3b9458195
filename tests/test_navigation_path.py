"""The navigation path against the fixture site: what its page loads fetch, and what they never reach.

An unproxied session has no per-request route filter (it would turn Chromium's HTTP cache off
and cost a round trip per request): the resolver rules keep it on the platforms and its tabs'
CDP ``Fetch`` patterns refuse blocked resource types. Everything is counted where it would
arrive, at the fixture site.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from fixtures.site import FixtureSite
from scraper.config import load_browser_settings
from scraper.douyin import DETAIL_XHR_PATH, ROUTER_DATA_READY, share_page_url
from scraper.hosts import Platform
from scraper.loader import LoadSpec, live_page, load
from scraper.pool import BrowserPool
from scraper.session import blocking_patterns
from scraper.tiktok import HYDRATION_READY
from scraper.urls import classify

pytestmark = pytest.mark.browser


def video_urls(site: FixtureSite, platform: Platform) -> list[str]:
    return site.dataset.public_video_urls(platform)


@pytest.fixture(scope="module")
async def pool(site: FixtureSite) -> AsyncIterator[BrowserPool]:
    settings = replace(load_browser_settings().pointed_at(site), pool_size=1)
    async with BrowserPool(settings) as browser_pool:
        yield browser_pool


async def test_an_unproxied_page_cannot_reach_a_host_off_the_platforms(
    site: FixtureSite, pool: BrowserPool
) -> None:
    """The fixture site listens on a loopback address: asked for by that address or by any
    non-platform name, the page must fail without one request arriving there. Such a request
    would land on the site's catch-all route, ``static`` (``fixtures.site.build_app``), which
    the page's own scripts and styles have finished with by DOMContentLoaded."""
    _, port = site.address.rsplit(":", 1)
    async with pool.session() as session:
        assert not session.filters_requests
        async with live_page(session, video_urls(site, "tiktok")[0]) as live:
            before = site.stats["static"]
            for target in (
                f"https://127.0.0.1:{port}/x",
                f"https://localhost:{port}/x",
                "https://evil.example/x",
            ):
                outcome = await live.page.evaluate(
                    "(url) => fetch(url, {mode: 'no-cors'}).then(() => 'reached', (e) => 'refused: ' + e)",
                    target,
                )
                assert outcome.startswith("refused"), (target, outcome)
            assert site.stats["static"] == before


async def test_blocked_resource_types_are_never_fetched(site: FixtureSite, pool: BrowserPool) -> None:
    """The share page shows its cover as an <img>: the fixture CDN must not see that request."""
    parsed = classify(video_urls(site, "douyin")[0])
    async with pool.session() as session:
        aborted = session.aborted_requests
        images = site.stats["douyin.image"]
        capture = await load(
            session, share_page_url(parsed), LoadSpec(ready_js=ROUTER_DATA_READY, mobile=True)
        )
        assert 'class="poster"' in capture.html  # the page did ask for its cover image
        assert site.stats["douyin.image"] == images
        assert session.aborted_requests > aborted


async def test_static_assets_come_from_the_http_cache_on_the_next_page(
    site: FixtureSite, pool: BrowserPool
) -> None:
    """The platforms' JS/CSS are served cacheable for a year; a second video page fetches none."""
    first, second = video_urls(site, "tiktok")[:2]
    async with pool.session() as session:
        await load(session, first, LoadSpec(ready_js=HYDRATION_READY))
        static = site.stats["static"]
        assert static > 0
        capture = await load(session, second, LoadSpec(ready_js=HYDRATION_READY))
    assert "__UNIVERSAL_DATA_FOR_REHYDRATION__" in capture.html
    assert site.stats["static"] == static


async def test_an_xhr_load_does_not_serialise_the_page(site: FixtureSite, pool: BrowserPool) -> None:
    async with pool.session() as session:
        capture = await load(session, video_urls(site, "douyin")[0], LoadSpec(xhr_path=DETAIL_XHR_PATH))
    assert isinstance(capture.xhr, dict) and capture.xhr.get("aweme_detail")
    assert capture.html == "" and capture.url.startswith("https://www.douyin.com/video/")


def test_blocking_patterns_carry_types_and_escaped_substrings() -> None:
    patterns = blocking_patterns(frozenset({"image", "font"}), ("/web/report", "a*b?c"))
    assert patterns == [
        {"resourceType": "Font", "requestStage": "Request"},
        {"resourceType": "Image", "requestStage": "Request"},
        {"urlPattern": "*/web/report*", "requestStage": "Request"},
        {"urlPattern": "*a\\*b\\?c*", "requestStage": "Request"},
    ]
    with pytest.raises(ValueError, match="unknown resource types"):
        blocking_patterns(frozenset({"picture"}), ())


def test_tab_settings_come_from_the_config_and_the_environment() -> None:
    defaults = load_browser_settings(env={})
    assert (defaults.tab_max_uses, defaults.tab_park_after) == (50, 2.0)  # playwright.config [pool]
    overridden = load_browser_settings(env={"SHORTVID_TAB_MAX_USES": "7", "SHORTVID_TAB_PARK_AFTER": "0.5"})
    assert (overridden.tab_max_uses, overridden.tab_park_after) == (7, 0.5)
