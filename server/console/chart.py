"""The admin page's chart: jobs and blocks per minute over the last hour, drawn as an SVG.

Jobs come from the database (every node's). Blocks are counted by this node's browser pool as a
running total with no time attached, so a sampler reads the total every few seconds and keeps, per
minute, the last total seen; a minute's blocks are the growth since the minute before. The chart
is markup only (bars and labels in an inline SVG), so it needs no script and no inline style.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

MINUTES = 60


class BlockHistory:
    """Running block totals by minute (monotonic clock), for the last ``MINUTES`` minutes."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._totals: OrderedDict[int, int] = OrderedDict()

    def record(self, total: int) -> None:
        minute = int(self._clock() // 60)
        self._totals[minute] = total
        self._totals.move_to_end(minute)
        while len(self._totals) > MINUTES + 1:
            self._totals.popitem(last=False)

    def per_minute(self) -> list[int]:
        """Blocks in each of the last ``MINUTES`` minutes, oldest first (0 before the first sample)."""
        now = int(self._clock() // 60)
        out: list[int] = []
        previous: int | None = None
        for minute in range(now - MINUTES, now + 1):
            total = self._totals.get(minute, previous)
            if minute > now - MINUTES:
                out.append(max(0, total - previous) if total is not None and previous is not None else 0)
            previous = total
        return out


BLOCKS = web.AppKey("console_block_history", BlockHistory)


def block_sampler(
    read_total: Callable[[web.Application], int | None], *, every: float = 10.0
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` that samples ``read_total(app)`` (None: no pool here) every ``every`` s."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        history = app[BLOCKS]

        async def sample() -> None:
            while True:
                total = read_total(app)
                if total is not None:
                    history.record(total)
                await asyncio.sleep(every)

        task = asyncio.create_task(sample(), name="console:block-sampler")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """Geometry of a two-series bar chart in a ``width`` x ``height`` viewBox."""

    width: int
    height: int
    top: int
    baseline: int
    peak: int
    jobs: list[Bar]
    failed: list[Bar]
    blocks: list[Bar]
    totals: dict[str, int]


def chart(
    jobs: list[int], failed: list[int], blocks: list[int], *, width: int = 720, height: int = 180
) -> Chart:
    """Bars per minute: jobs accepted (failed ones overlaid) and blocks, on one scale."""
    top, bottom = 14, 22
    plot = height - top - bottom
    peak = max([1, *jobs, *blocks])
    slot = width / max(1, len(jobs))
    bar = max(1.0, slot * 0.42)

    def bars(values: list[int], offset: float, name: str) -> list[Bar]:
        out = []
        for i, value in enumerate(values):
            h = plot * value / peak
            ago = len(values) - 1 - i
            when = "this minute" if ago == 0 else f"{ago} min ago"
            out.append(Bar(i * slot + offset, top + plot - h, bar, h, value, f"{when}: {value} {name}"))
        return out

    return Chart(
        width=width,
        height=height,
        top=top,
        baseline=top + plot,
        peak=peak,
        jobs=bars(jobs, slot * 0.06, "jobs"),
        failed=bars(failed, slot * 0.06, "failed"),
        blocks=bars(blocks, slot * 0.52, "blocks"),
        totals={"jobs": sum(jobs), "failed": sum(failed), "blocks": sum(blocks)},
    )
