"""How long a 500-item channel takes end to end, and how many XHR pages it needed.

Baseline (same run): a single video parse through the same API, so the channel
figure reads as "N video parses' worth". Runs against the offline fixture site.

    .venv/bin/python -m bench.channel_500 --repeat 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from aiohttp.test_utils import TestClient

from bench.harness import api_against
from fixtures.site import FixtureSite

POSTS_XHR_STATS = {"douyin": "douyin.post", "tiktok": "tiktok.item_list"}
ROUTES = {
    "douyin": ("/api/video/parse", "/api/channel/videos"),
    "tiktok": ("/api/tiktok/video/parse", "/api/tiktok/channel/videos"),
}


async def run_job(client: TestClient, headers: dict[str, str], path: str, body: dict[str, Any]) -> float:
    start = time.perf_counter()
    job_id = (await (await client.post(path, json=body, headers=headers)).json())["data"]["jobId"]
    while True:
        data = (await (await client.get(f"/api/job/{job_id}")).json())["data"]
        if data["state"] in ("completed", "failed"):
            assert data["state"] == "completed", data
            return time.perf_counter() - start
        await asyncio.sleep(0.1)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    async with FixtureSite() as site:
        data = site.dataset.to_json()
        async with api_against(site, workers=1) as (client, headers):
            for platform, (video_route, channel_route) in ROUTES.items():
                big = next(a for a in data["accounts"] if a["platform"] == platform and a["role"] == "big")
                video = next(i for i in big["items"] if i["state"] == "public" and i["kind"] == "video")
                parse_times = [
                    await run_job(client, headers, video_route, {"url": video["url"]})
                    for _ in range(args.repeat)
                ]
                channel_times, pages = [], []
                for _ in range(args.repeat):
                    before = site.stats[POSTS_XHR_STATS[platform]]
                    body = {"url": big["profile_url"], "count": 500}
                    channel_times.append(await run_job(client, headers, channel_route, body))
                    pages.append(site.stats[POSTS_XHR_STATS[platform]] - before)
                video_s = statistics.median(parse_times)
                channel_s = statistics.median(channel_times)
                report[platform] = {
                    "video_parse_s": round(video_s, 2),
                    "channel_500_s": round(channel_s, 2),
                    "channel_500_in_video_parses": round(channel_s / video_s, 1),
                    "xhr_pages": pages,
                }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
