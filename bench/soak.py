"""Soak: many jobs through the API with the platforms' blocks on at a seeded rate.

Counts jobs lost (never finished) and jobs wrongly failed (a public post that failed);
deleted posts are mixed in and must fail as "not found", not as blocked. Baseline in the
same run: the same number of jobs with blocks off.

    SHORTVID_POOL_SIZE=4 SHORTVID_COOLDOWN_BASE=2 .venv/bin/python -m bench.soak --jobs 2000 --block-rate 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from typing import Any

from aiohttp.test_utils import TestClient

from bench.harness import api_against
from bench.memory import pool_rss_mib
from fixtures.site import FixtureSite
from server.keys import POOL

ROUTES = {"douyin": "/api/video/parse", "tiktok": "/api/tiktok/video/parse"}
PAGE_KINDS = ("tiktok.verify", "tiktok.block_shell", "douyin.captcha")
XHR_KINDS = ("douyin.api_empty", "douyin.argus", "douyin.status4")


async def run(
    client: TestClient, headers: dict[str, str], posts: list[tuple[str, str, str]], jobs: int
) -> dict[str, Any]:
    """Submit ``jobs`` jobs (bounded in flight) and wait for every one to finish."""
    outcomes: dict[str, int] = {"completed": 0, "failed_correctly": 0, "wrongly_failed": 0, "lost": 0}
    errors: dict[str, int] = {}
    rss: list[float] = []
    start = time.perf_counter()
    pending: dict[str, str] = {}
    source = itertools.islice(itertools.cycle(posts), jobs)
    submitted = 0
    while True:
        while len(pending) < 20:
            try:
                platform, url, state = next(source)
            except StopIteration:
                break
            body = await (await client.post(ROUTES[platform], json={"url": url}, headers=headers)).json()
            pending[body["data"]["jobId"]] = state
            submitted += 1
        if not pending:
            break
        await asyncio.sleep(0.5)
        for job_id, state in list(pending.items()):
            data = (await (await client.get(f"/api/job/{job_id}")).json())["data"]
            if data["state"] == "completed":
                outcomes["completed" if state == "public" else "wrongly_failed"] += 1
            elif data["state"] == "failed":
                right = state != "public" and "not found" in data["error"].lower()
                outcomes["failed_correctly" if right else "wrongly_failed"] += 1
                errors[data["error"][:80]] = errors.get(data["error"][:80], 0) + 1
            else:
                continue
            del pending[job_id]
        finished = sum(outcomes.values())
        if finished // 100 > len(rss):
            rss.append(round(pool_rss_mib(), 1))
            print(
                json.dumps({"finished": finished, **outcomes, "rss_mib": rss[-1]}),
                file=sys.stderr,
                flush=True,
            )
        if time.perf_counter() - start > 3 * 3600:
            outcomes["lost"] = len(pending)
            break
    return {
        "seconds": round(time.perf_counter() - start, 1),
        **outcomes,
        "errors": errors,
        "rss_mib": rss[::5],
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--block-rate", type=float, default=0.1)
    parser.add_argument("--baseline-jobs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    async with FixtureSite() as site:
        data = site.dataset.to_json()
        posts = [
            (account["platform"], item["url"], item["state"])
            for account in data["accounts"]
            if account["state"] == "public"
            for item in account["items"]
            if item["state"] in ("public", "deleted")
        ]
        async with api_against(site, workers=args.workers) as (client, headers):
            baseline = await run(client, headers, posts, args.baseline_jobs)
            site.faults.seed = 20261121
            for kind in PAGE_KINDS + XHR_KINDS:
                site.faults.rates[kind] = args.block_rate
            soak = await run(client, headers, posts, args.jobs)
            blocks = {k: v for k, v in site.stats.items() if k.startswith("fault.")}
            census = client.app[POOL].census()
    report = {
        "block_rate_per_response": args.block_rate,
        "baseline": {k: v for k, v in baseline.items() if k != "rss_mib_every_100_jobs"},
        "soak": soak,
        "blocks_served": blocks,
        "s_per_job_ratio_soak_to_baseline": round(
            (soak["seconds"] / args.jobs) / (baseline["seconds"] / args.baseline_jobs), 2
        ),
        "pool": {k: v for k, v in census.items() if k != "detail"},
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
