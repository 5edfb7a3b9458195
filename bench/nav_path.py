"""The navigation path vs bare Playwright on the same fixture pages, one worker, same run.

Bare Playwright: one tab, ``goto`` each item page and read its JSON (TikTok: the hydration
script; Douyin: the signed ``aweme/detail`` XHR the page sends). Ours: ``fetch_item`` on a
leased session of a one-session pool with the fast path off, so every item is a page load
through the navigation routes. Modes alternate in rounds so a noisy neighbour on this shared
machine hits both; figures are loads/s and ours/bare ratios (target ≥ 0.8).

    .venv/bin/python -m bench.nav_path --rounds 4 --loads 40
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Browser, Page, async_playwright

from fixtures.site import FixtureSite
from scraper.config import BrowserSettings, load_browser_settings
from scraper.douyin import DETAIL_XHR_PATH
from scraper.hosts import Platform
from scraper.pool import BrowserPool
from scraper.service import fetch_item
from scraper.urls import classify

PLATFORMS: tuple[Platform, ...] = ("tiktok", "douyin")
HYDRATION_JSON = "() => JSON.parse(document.getElementById('__UNIVERSAL_DATA_FOR_REHYDRATION__').textContent)"
Loader = Callable[[str], Awaitable[Any]]


def video_urls(site: FixtureSite, platform: Platform) -> list[str]:
    return site.dataset.public_video_urls(platform)


def bare_loader(page: Page, platform: Platform) -> Loader:
    """Load a page in one reused tab and read its data, as a plain Playwright script would."""

    async def tiktok(url: str) -> Any:
        await page.goto(url, wait_until="domcontentloaded")
        return await page.evaluate(HYDRATION_JSON)

    async def douyin(url: str) -> Any:
        async with page.expect_response(lambda r: urlsplit(r.url).path == DETAIL_XHR_PATH) as reply:
            await page.goto(url, wait_until="domcontentloaded")
        return await (await reply.value).json()

    return tiktok if platform == "tiktok" else douyin


def our_loader(pool: BrowserPool) -> Loader:
    """One job's worth of the navigation path: lease a session, run the item routes."""

    async def load(url: str) -> Any:
        async with pool.session() as session:
            return await fetch_item(session, classify(url))

    return load


async def timed(load: Loader, urls: list[str]) -> float:
    """Loads per second over ``urls``, one at a time."""
    start = time.perf_counter()
    for url in urls:
        await load(url)
    return len(urls) / (time.perf_counter() - start)


async def launch_bare(playwright: Any, settings: BrowserSettings) -> Browser:
    """The same Chromium with the same flags (host mapping included) as the pool's."""
    browser: Browser = await playwright.chromium.launch(
        executable_path=settings.executable_path, headless=settings.headless, args=settings.launch_args()
    )
    return browser


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--loads", type=int, default=40, help="loads per platform per mode per round")
    args = parser.parse_args()
    rates: dict[str, list[float]] = {f"{p}.{m}": [] for p in PLATFORMS for m in ("bare", "ours")}
    async with FixtureSite() as site, async_playwright() as playwright:
        settings = replace(load_browser_settings().pointed_at(site), pool_size=1, fast_path=False)
        browser = await launch_bare(playwright, settings)
        page = await (await browser.new_context()).new_page()
        async with BrowserPool(settings) as pool:
            loaders = {
                (p, m): bare_loader(page, p) if m == "bare" else our_loader(pool)
                for p in PLATFORMS
                for m in ("bare", "ours")
            }
            cycles = {p: itertools.cycle(video_urls(site, p)) for p in PLATFORMS}
            for (platform, _), load in loaders.items():  # warm-up: challenge cookies, caches, renderer
                await load(next(cycles[platform]))
            for round_no in range(args.rounds):
                for platform in PLATFORMS:
                    urls = list(itertools.islice(cycles[platform], args.loads))
                    for mode in ("bare", "ours"):
                        rate = await timed(loaders[(platform, mode)], urls)
                        rates[f"{platform}.{mode}"].append(rate)
                        line = {"round": round_no, "platform": platform, "mode": mode, "loads_per_s": rate}
                        print(json.dumps(line), file=sys.stderr, flush=True)
        await browser.close()
    report: dict[str, Any] = {"rounds": args.rounds, "loads_per_round": args.loads}
    for platform in PLATFORMS:
        bare, ours = rates[f"{platform}.bare"], rates[f"{platform}.ours"]
        report[platform] = {
            "bare_loads_per_s": round(statistics.median(bare), 2),
            "ours_loads_per_s": round(statistics.median(ours), 2),
            "ratio_ours_to_bare": round(statistics.median(ours) / statistics.median(bare), 2),
            # each round's pair ran back to back, so its ratio is the least disturbed by neighbours
            "ratio_per_round_median": round(
                statistics.median(o / b for o, b in zip(ours, bare, strict=True)), 2
            ),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
