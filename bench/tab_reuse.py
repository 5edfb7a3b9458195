"""A reused tab per session vs a new tab per parse: time per parse and Chromium memory, same run.

The two modes alternate in rounds, so a noisy neighbour on this shared machine hits both.

    .venv/bin/python -m bench.tab_reuse --rounds 4 --parses 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from typing import Any

from bench.memory import public_post_urls, run_mode
from fixtures.site import FixtureSite

MODES: dict[str, dict[str, Any]] = {"new_tab": {"reuse_tabs": False}, "reused_tab": {"reuse_tabs": True}}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--parses", type=int, default=100, help="parses per mode per round")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    async with FixtureSite() as site:
        urls = public_post_urls(site)
        for round_no in range(args.rounds):
            for mode, overrides in MODES.items():
                run = await run_mode(site, urls, mode, args.parses, args.parses, overrides)
                runs[mode].append(run)
                print(json.dumps({"round": round_no, "mode": mode, **run}), file=sys.stderr, flush=True)
    report: dict[str, Any] = {
        mode: {
            "seconds_per_parse_median": round(statistics.median(r["seconds_per_parse"] for r in rs), 3),
            "rss_peak_mib_median": round(statistics.median(r["rss_peak_mib"] for r in rs), 1),
            "pss_peak_mib_median": round(statistics.median(r["pss_peak_mib"] for r in rs), 1),
            "failures": sum(r["failures"] for r in rs),
        }
        for mode, rs in runs.items()
    }
    new, reused = report["new_tab"], report["reused_tab"]
    report["ratio_seconds_reused_to_new"] = round(
        reused["seconds_per_parse_median"] / new["seconds_per_parse_median"], 2
    )
    for kind in ("rss", "pss"):
        report[f"ratio_{kind}_reused_to_new"] = round(
            reused[f"{kind}_peak_mib_median"] / new[f"{kind}_peak_mib_median"], 2
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
