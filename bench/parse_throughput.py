"""Parse throughput and browser memory against the offline fixture site.

Baseline (same run): a plain HTTP GET of each item's page through the mapped
non-browser client (no JavaScript, no challenge). Measured: the full job path
(HTTP API → queue → worker → Chromium → normalize) for the same items. Figures
are reported as ratios to the baseline because the machine is shared.

    .venv/bin/python -m bench.parse_throughput --items 40 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from bench.harness import api_against
from fixtures.site import FixtureSite
from scraper.chromium_processes import chromium_memory_mib
from scraper.http import platform_http_session


def chromium_rss_mib() -> float:
    """Resident memory of the Chromium processes this benchmark started, in MiB."""
    return chromium_memory_mib()["rss"]


def pick_items(site: FixtureSite, per_platform: int) -> list[tuple[str, str]]:
    return [
        (platform, url)
        for platform in ("douyin", "tiktok")
        for url in site.dataset.public_video_urls(platform)[:per_platform]
    ]


async def baseline(site: FixtureSite, items: list[tuple[str, str]]) -> float:
    """Seconds to GET every page with a plain client, sequentially."""
    async with platform_http_session(map_to=site.address, ca_file=site.ca_pem_path) as http:
        start = time.perf_counter()
        for _, url in items:
            async with http.get(url) as response:
                await response.read()
        return time.perf_counter() - start


async def through_api(site: FixtureSite, items: list[tuple[str, str]], workers: int) -> dict[str, Any]:
    async with api_against(site, workers=workers) as (client, headers):
        rss_start = chromium_rss_mib()
        start = time.perf_counter()
        submitted: dict[str, float] = {}
        for platform, url in items:
            path = "/api/video/parse" if platform == "douyin" else "/api/tiktok/video/parse"
            body = await (await client.post(path, json={"url": url}, headers=headers)).json()
            submitted[body["data"]["jobId"]] = time.perf_counter()
        latencies: list[float] = []
        states: dict[str, int] = {}
        pending = set(submitted)
        while pending:
            for job_id in list(pending):
                data = (await (await client.get(f"/api/job/{job_id}")).json())["data"]
                if data["state"] in ("completed", "failed"):
                    pending.discard(job_id)
                    states[data["state"]] = states.get(data["state"], 0) + 1
                    latencies.append(time.perf_counter() - submitted[job_id])
            await asyncio.sleep(0.5)  # a client polling each job twice a second
        elapsed = time.perf_counter() - start
        return {
            "seconds": elapsed,
            "states": states,
            "latency_median": statistics.median(latencies),
            "rss_start_mib": rss_start,
            "rss_end_mib": chromium_rss_mib(),
        }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=40, help="items per platform")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    async with FixtureSite() as site:
        items = pick_items(site, args.items)
        base = await baseline(site, items)
        full = await through_api(site, items, args.workers)
    n = len(items)
    report = {
        "items": n,
        "workers": args.workers,
        "baseline_plain_get_s_per_item": round(base / n, 4),
        "api_s_per_item": round(full["seconds"] / n, 4),
        "api_items_per_s": round(n / full["seconds"], 2),
        "ratio_api_to_plain_get": round(full["seconds"] / base, 1),
        "median_job_latency_s": round(full["latency_median"], 3),
        "states": full["states"],
        "chromium_rss_mib": {"start": round(full["rss_start_mib"]), "end": round(full["rss_end_mib"])},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
