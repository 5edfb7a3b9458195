"""Pacing soak: items parsed at the fixture's per-session rate rule, pacing off vs on, in one run.

The fixture blocks a session for good once it asks for items faster than a token bucket allows
(``Faults.session_rates``, as the real sites limit an identity per endpoint). Both modes parse the
same public items (Douyin and TikTok, navigation path) on a pool of the same size, each item in
its own lease of the session that can go soonest, retried on a fresh session after a block like
the job path does. Reported per mode: blocks per 1,000 items (blocked responses and sessions
blocked), items that still failed, and items per second, with pacing-on to pacing-off ratios.

The rule is scaled up from the real sites' (v5 publishes 0.30/s, burst 5, per identity) so that
a short run sees many refills: 0.5 item requests per second, burst 2, per session; pacing runs
just inside it (0.45/s, burst 2).

    .venv/bin/python -m bench.pacing_soak                 # 80 items per mode
    .venv/bin/python -m bench.pacing_soak --items 1000    # longer
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from dataclasses import replace
from typing import Any

from fixtures.site import FixtureSite
from scraper.config import BrowserSettings, load_browser_settings
from scraper.errors import ScraperError
from scraper.pacing import ITEM, Limit
from scraper.pool import BrowserPool
from scraper.service import fetch_item
from scraper.urls import classify

#: The fixture's rule (rate per second, burst) per session for item requests, and pacing inside it.
FIXTURE_RULE = (0.5, 2)
PACING = Limit(rate=0.45, burst=2)
#: Leases per item before it counts as failed (the job path's risk_retries).
ATTEMPTS = 3


async def parse_one(pool: BrowserPool, url: str) -> bool:
    """One item, retried on a fresh lease after a block; True if it came back."""
    for _ in range(ATTEMPTS):
        try:
            async with pool.session(family=ITEM) as session:
                await fetch_item(session, classify(url), fast=False)
            return True
        except ScraperError as exc:
            if not exc.retryable:
                return False
    return False


async def soak(site: FixtureSite, settings: BrowserSettings, urls: list[str]) -> dict[str, Any]:
    """Parse every URL, ``pool_size`` at a time; what the fixture blocked meanwhile."""
    site.faults.clear()
    site.faults.session_rates = {ITEM: FIXTURE_RULE}
    before = dict(site.stats)
    queue = iter(urls)
    done = {"completed": 0, "failed": 0}
    start = time.perf_counter()
    async with BrowserPool(settings) as pool:

        async def worker() -> None:
            for url in queue:
                done["completed" if await parse_one(pool, url) else "failed"] += 1

        await asyncio.gather(*(worker() for _ in range(settings.pool_size)))
        retired = dict(pool.retired)
    seconds = time.perf_counter() - start
    blocked_responses = site.stats["fault.session"] - before.get("fault.session", 0)
    blocked_sessions = site.stats["fault.session_blocked"] - before.get("fault.session_blocked", 0)
    items = len(urls)
    return {
        "items": items,
        **done,
        "seconds": round(seconds, 1),
        "items_per_second": round(items / seconds, 2),
        "blocked_responses": blocked_responses,
        "blocked_sessions": blocked_sessions,
        "blocked_responses_per_1000_items": round(1000 * blocked_responses / items, 1),
        "blocked_sessions_per_1000_items": round(1000 * blocked_sessions / items, 1),
        "sessions_retired": retired,
    }


def ratio(on: float, off: float) -> float | None:
    return round(on / off, 3) if off else None


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=80, help="items per mode")
    parser.add_argument("--pool-size", type=int, default=4)
    args = parser.parse_args()
    async with FixtureSite() as site:
        data = site.dataset.to_json()
        public = [
            item["url"]
            for account in data["accounts"]
            if account["state"] == "public"
            for item in account["items"]
            if item["state"] == "public"
        ]
        urls = list(itertools.islice(itertools.cycle(public), args.items))
        base = replace(
            load_browser_settings().pointed_at(site),
            pool_size=args.pool_size,
            fast_path=False,
            cooldown_base=0.5,
            cooldown_max=2.0,
            pacing_limits=((ITEM, PACING),),
        )
        off = await soak(site, replace(base, pacing=False), urls)
        on = await soak(site, replace(base, pacing=True), urls)
    report = {
        "fixture_rule_item_per_session": {"rate": FIXTURE_RULE[0], "burst": FIXTURE_RULE[1]},
        "pacing_item": {"rate": PACING.rate, "burst": PACING.burst},
        "pool_size": args.pool_size,
        "pacing_off": off,
        "pacing_on": on,
        "ratios_on_to_off": {
            "blocked_responses": ratio(on["blocked_responses"], off["blocked_responses"]),
            "blocked_sessions": ratio(on["blocked_sessions"], off["blocked_sessions"]),
            "items_per_second": ratio(on["items_per_second"], off["items_per_second"]),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
