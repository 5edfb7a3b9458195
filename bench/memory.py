"""Chromium memory over many parses, with session/browser recycling on and off (same run).

Each mode parses the same posts (cycling through the fixture's public posts) with the pool
directly, sampling the RSS of the pool's Chromium processes every ``--every`` parses.

    .venv/bin/python -m bench.memory --parses 2000 --every 100
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from dataclasses import replace
from typing import Any

from fixtures.site import FixtureSite
from scraper.chromium_processes import chromium_memory_mib
from scraper.config import load_browser_settings
from scraper.pool import BrowserPool
from scraper.service import parse_video
from scraper.urls import classify

MODES = {
    "recycling_on": {"max_pages_per_browser": 400, "session_max_uses": 100},
    "recycling_off": {"max_pages_per_browser": 10**9, "session_max_uses": 10**9, "session_max_age": 10.0**9},
}


def pool_memory_mib() -> dict[str, float]:
    """RSS and PSS of this process's Chromiums, in MiB.

    RSS counts Chromium's shared code once per process, so a mode with more renderer
    processes looks worse than it is; PSS splits shared pages between their users.
    """
    return chromium_memory_mib()


def pool_rss_mib() -> float:
    """RSS of the pool's Chromium processes, in MiB (see ``pool_memory_mib``)."""
    return pool_memory_mib()["rss"]


def public_post_urls(site: FixtureSite) -> list[str]:
    """Every public post of public accounts in the fixture dataset: parses that should all succeed."""
    data = site.dataset.to_json()
    return [
        item["url"]
        for account in data["accounts"]
        if account["state"] == "public"
        for item in account["items"]
        if item["state"] == "public"
    ]


async def run_mode(
    site: FixtureSite, urls: list[str], mode: str, parses: int, every: int, overrides: dict[str, Any]
) -> dict[str, Any]:
    """Parse ``parses`` posts with two workers on a pool configured with ``overrides``."""
    settings = replace(load_browser_settings().pointed_at(site), pool_size=2, **overrides)
    curve: list[tuple[int, float]] = []
    pss_curve: list[tuple[int, float]] = []
    failures = 0
    start = time.perf_counter()
    async with BrowserPool(settings) as pool:
        jobs = itertools.islice(itertools.cycle(urls), parses)
        done = 0
        lock = asyncio.Lock()

        async def worker() -> None:
            nonlocal done, failures
            for url in jobs:
                try:
                    await parse_video(pool, classify(url))
                except Exception:
                    failures += 1
                async with lock:
                    done += 1
                    if done % every == 0:
                        memory = pool_memory_mib()
                        curve.append((done, memory["rss"]))
                        pss_curve.append((done, memory["pss"]))
                        print(
                            json.dumps(
                                {
                                    "mode": mode,
                                    "done": done,
                                    "rss_mib": memory["rss"],
                                    "pss_mib": memory["pss"],
                                }
                            ),
                            file=sys.stderr,
                            flush=True,
                        )

        await asyncio.gather(worker(), worker())
        census = pool.census()
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "seconds_per_parse": round((time.perf_counter() - start) / parses, 3),
        "failures": failures,
        "rss_curve_mib": curve,
        "rss_peak_mib": max(r for _, r in curve),
        "rss_last_mib": curve[-1][1],
        "pss_curve_mib": pss_curve,
        "pss_peak_mib": max(p for _, p in pss_curve),
        "relaunches": census["relaunches"],
        "retired": census["retired"],
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parses", type=int, default=2000)
    parser.add_argument("--every", type=int, default=100)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    async with FixtureSite() as site:
        urls = public_post_urls(site)
        for mode, overrides in MODES.items():
            report[mode] = await run_mode(site, urls, mode, args.parses, args.every, overrides)
    on, off = report["recycling_on"], report["recycling_off"]
    report["ratio_peak_rss_on_to_off"] = round(on["rss_peak_mib"] / off["rss_peak_mib"], 2)
    report["ratio_last_rss_on_to_off"] = round(on["rss_last_mib"] / off["rss_last_mib"], 2)
    report["ratio_seconds_on_to_off"] = round(on["seconds"] / off["seconds"], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
