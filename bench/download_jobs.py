"""Cost of a download job against a parse job of the same posts (same run, same fixture site).

.venv/bin/python -m bench.download_jobs --items 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from aiohttp.test_utils import TestClient

from bench.harness import api_against, wait_all
from bench.parse_throughput import pick_items
from fixtures.site import FixtureSite

ROUTES = {
    "parse": {"douyin": "/api/video/parse", "tiktok": "/api/tiktok/video/parse"},
    "download": {"douyin": "/api/video/download", "tiktok": "/api/tiktok/video/download"},
}


async def run_all(
    client: TestClient, headers: dict[str, str], kind: str, items: list[tuple[str, str]]
) -> float:
    start = time.perf_counter()
    jobs = []
    for platform, url in items:
        body = await (await client.post(ROUTES[kind][platform], json={"url": url}, headers=headers)).json()
        jobs.append(body["data"]["jobId"])
    await wait_all(client, jobs, poll=0.25)
    return time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10, help="posts per platform")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    async with FixtureSite() as site:
        items = pick_items(site, args.items)
        async with api_against(site, workers=args.workers) as (client, headers):
            parse_s = await run_all(client, headers, "parse", items)
            download_s = await run_all(client, headers, "download", items)
            media = site.stats["douyin.media_served"] + site.stats["tiktok.media_served"]
    report: dict[str, Any] = {
        "jobs": len(items),
        "parse_s_per_job": round(parse_s / len(items), 3),
        "download_s_per_job": round(download_s / len(items), 3),
        "ratio_download_to_parse": round(download_s / parse_s, 2),
        "media_files_served": media,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
