"""APScheduler duties. Each is idempotent SQL or pool upkeep, so every node may run them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from scraper.pool import BrowserPool
from server.files import FileStore
from server.queue import JobQueue
from server.settings import Settings

log = logging.getLogger(__name__)


def _logged(name: str, duty: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            outcome = await duty()
            if outcome:
                log.info("%s: %s", name, outcome)
        except Exception:
            log.exception("scheduled duty %s failed", name)

    return run


def build_scheduler(
    settings: Settings, queue: JobQueue, pool: BrowserPool | None, files: FileStore | None = None
) -> AsyncIOScheduler:
    """The scheduler with our duties; start it inside the running loop."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    options = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}

    async def recover() -> object:
        recovered = await queue.recover_expired()
        return recovered._asdict() if any(recovered) else None

    scheduler.add_job(
        _logged("recover_expired_leases", recover),
        "interval",
        seconds=settings.recover_every.total_seconds(),
        id="recover",
        **options,
    )
    scheduler.add_job(
        _logged("expire_results", queue.expire_results),
        "interval",
        seconds=settings.expire_every.total_seconds(),
        id="expire",
        **options,
    )
    if files is not None:

        async def tidy_files() -> object:
            expired = await files.expire()
            evicted = await files.enforce_cap()
            partials = files.sweep_partials()
            return (
                {"expired": expired, "evicted": evicted, "partials": partials} if expired or evicted else None
            )

        scheduler.add_job(
            _logged("tidy_files", tidy_files),
            "interval",
            seconds=settings.expire_every.total_seconds(),
            id="files",
            **options,
        )
    if pool is not None:

        async def upkeep() -> object:
            census = await pool.maintain()
            return {key: value for key, value in census.items() if key != "detail"}

        scheduler.add_job(_logged("pool census", upkeep), "interval", seconds=30, id="pool", **options)
    return scheduler
