"""The fast path (in-page fetch() on a resident page) against the navigation path, in one run.

Three measurements against the offline fixture site, in alternating rounds so that a noisy
neighbour hits both sides alike:

* the full job path (HTTP API → queue → worker → Chromium → normalize) for TikTok and Douyin
  items with ``fast_path`` on and off (two apps, one Chromium each, the idle one parked);
* a 500-item channel through the same two apps;
* the floor: the same fixture requests as raw in-page ``fetch()`` calls on resident pages,
  at the same concurrency, with nothing else around them.

Chromium CPU seconds per item come from /proc (the browser and its reaped renderers).

    .venv/bin/python -m bench.fast_path --items 30 --rounds 3 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import replace
from typing import Any

from aiohttp.test_utils import TestClient

from bench.harness import api_against, wait_all
from bench.parse_throughput import pick_items
from fixtures.site import FixtureSite
from scraper.chromium_processes import chromium_cpu_seconds
from scraper.config import load_browser_settings
from scraper.fast import call
from scraper.pool import BrowserPool
from scraper.service import FAST_ITEM_ROUTES
from scraper.urls import classify

PARSE = {"douyin": "/api/video/parse", "tiktok": "/api/tiktok/video/parse"}
CHANNEL = {"douyin": "/api/channel/videos", "tiktok": "/api/tiktok/channel/videos"}
#: How often the client looks at its pending jobs (the same for both sides).
POLL_SECONDS = 0.02


def big_account(site: FixtureSite, platform: str) -> str:
    data = site.dataset.to_json()
    return str(
        next(a for a in data["accounts"] if a["platform"] == platform and a["role"] == "big")["profile_url"]
    )


async def run_jobs(
    client: TestClient, headers: dict[str, str], jobs: list[tuple[str, dict[str, Any]]]
) -> float:
    """Submit every job, poll until all ended (all must complete); the seconds it took."""
    start = time.perf_counter()
    submitted: list[str] = []
    for path, body in jobs:
        answer = await (await client.post(path, json={**body, "refresh": True}, headers=headers)).json()
        submitted.append(answer["data"]["jobId"])
    await wait_all(client, submitted, poll=POLL_SECONDS)
    return time.perf_counter() - start


async def floor(pool: BrowserPool, platform: str, urls: list[str], concurrency: int) -> float:
    """Seconds for the raw in-page fetches of ``urls`` (their fast requests), ``concurrency`` at once."""
    route = FAST_ITEM_ROUTES[platform]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for url in urls:
        queue.put_nowait(url)

    async def lane() -> None:
        async with pool.session() as session:
            while not queue.empty():
                parsed = classify(queue.get_nowait())
                await call(session, route.origin, route.request(parsed), route.family)

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - start


class Side:
    """Totals of one side (fast on / off / floor): seconds and Chromium CPU per kind of work."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.units: dict[str, int] = {}

    def add(self, kind: str, seconds: float, cpu: float, units: int) -> None:
        self.seconds[kind] = self.seconds.get(kind, 0.0) + seconds
        self.cpu[kind] = self.cpu.get(kind, 0.0) + cpu
        self.units[kind] = self.units.get(kind, 0) + units

    def per_second(self, kind: str) -> float:
        return self.units[kind] / self.seconds[kind]

    def cpu_per_unit(self, kind: str) -> float:
        return self.cpu[kind] / self.units[kind]


async def measured(side: Side, kind: str, units: int, work: Any) -> None:
    cpu = chromium_cpu_seconds()
    seconds = await work
    side.add(kind, seconds, chromium_cpu_seconds() - cpu, units)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=30, help="items per platform and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="API workers = pool sessions = floor lanes")
    parser.add_argument("--channel", type=int, default=500, help="posts of the channel job (0: skip)")
    args = parser.parse_args()
    sides = {"fast": Side(), "navigation": Side(), "floor": Side()}
    async with FixtureSite() as site:
        warm_count = 4 * args.workers  # enough that every session of every side has opened its pages
        chosen = pick_items(site, args.items * args.rounds + warm_count)
        items = {p: [url for platform, url in chosen if platform == p] for p in PARSE}
        warm_items = {p: urls[-warm_count:] for p, urls in items.items()}
        browser = replace(load_browser_settings().pointed_at(site), pool_size=args.workers)
        async with (
            api_against(site, workers=args.workers, fast_path=True) as fast,
            api_against(site, workers=args.workers, fast_path=False) as navigation,
            BrowserPool(browser) as floor_pool,
        ):
            apps = {"fast": fast, "navigation": navigation}
            for platform in PARSE:  # warm every side: resident pages open, challenges passed
                warm = [(PARSE[platform], {"url": url}) for url in warm_items[platform]]
                for client, headers in apps.values():
                    await run_jobs(client, headers, warm)
                await floor(floor_pool, platform, warm_items[platform], args.workers)
            for r in range(args.rounds):
                order = ["fast", "navigation", "floor"] if r % 2 == 0 else ["floor", "navigation", "fast"]
                for platform in PARSE:
                    urls = items[platform][r * args.items : (r + 1) * args.items]
                    for name in order:
                        kind = f"{platform}_item"
                        if name == "floor":
                            await measured(
                                sides[name], kind, len(urls), floor(floor_pool, platform, urls, args.workers)
                            )
                        else:
                            client, headers = apps[name]
                            jobs = [(PARSE[platform], {"url": url}) for url in urls]
                            await measured(sides[name], kind, len(urls), run_jobs(client, headers, jobs))
                    if args.channel:
                        body = {"url": big_account(site, platform), "count": args.channel}
                        for name in [n for n in order if n != "floor"]:
                            client, headers = apps[name]
                            job = [(CHANNEL[platform], body)]
                            await measured(
                                sides[name], f"{platform}_channel", 1, run_jobs(client, headers, job)
                            )
    report: dict[str, Any] = {"items_per_round": args.items, "rounds": args.rounds, "workers": args.workers}
    fast, navigation, raw = sides["fast"], sides["navigation"], sides["floor"]
    for platform in PARSE:
        kind = f"{platform}_item"
        report[kind] = {
            "fast_items_per_s": round(fast.per_second(kind), 2),
            "navigation_items_per_s": round(navigation.per_second(kind), 2),
            "floor_fetches_per_s": round(raw.per_second(kind), 2),
            "fast_vs_navigation": round(fast.per_second(kind) / navigation.per_second(kind), 2),
            "fast_vs_floor": round(fast.per_second(kind) / raw.per_second(kind), 2),
            "chromium_cpu_s_per_item": {
                "fast": round(fast.cpu_per_unit(kind), 4),
                "navigation": round(navigation.cpu_per_unit(kind), 4),
                "floor": round(raw.cpu_per_unit(kind), 4),
            },
            "cpu_navigation_vs_fast": round(
                navigation.cpu_per_unit(kind) / max(fast.cpu_per_unit(kind), 1e-6), 1
            ),
        }
        if args.channel:
            kind = f"{platform}_channel"
            report[kind] = {
                "posts": args.channel,
                "fast_s": round(fast.seconds[kind] / fast.units[kind], 3),
                "navigation_s": round(navigation.seconds[kind] / navigation.units[kind], 3),
                "speedup": round(navigation.seconds[kind] / fast.seconds[kind], 2),
            }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
