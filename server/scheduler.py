"""APScheduler duties. Each is idempotent SQL or pool upkeep, so every node may run them.

Each duty has an id and a name (APScheduler's log lines and ``scheduler.get_jobs()`` say which);
APScheduler's own line for every run of every duty is kept down to warnings (``server.logs``), and a
duty logs a line only when it did something.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from scraper.pool import BrowserPool
from server.files import FileStore
from server.logs import quiet_chatty_loggers
from server.queue import JobQueue
from server.settings import Settings

log = logging.getLogger(__name__)


def _logged(name: str, duty: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            outcome = await duty()
            if outcome:
                log.info("%s: %s", name, outcome, extra={"duty": name})
        except Exception:
            log.exception("scheduled duty %s failed", name, extra={"duty": name})

    return run


def _every(
    scheduler: AsyncIOScheduler, seconds: float, name: str, duty: Callable[[], Awaitable[object]]
) -> None:
    """Run ``duty`` every ``seconds``, one run at a time, under ``name`` (its id too)."""
    scheduler.add_job(
        _logged(name, duty),
        "interval",
        seconds=seconds,
        id=name,
        name=name,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=30,
    )


def build_scheduler(
    settings: Settings, queue: JobQueue, pool: BrowserPool | None, files: FileStore | None = None
) -> AsyncIOScheduler:
    """The scheduler with our duties; start it inside the running loop."""
    quiet_chatty_loggers()
    scheduler = AsyncIOScheduler(timezone="UTC")

    async def recover() -> object:
        recovered = await queue.recover_expired()
        return recovered._asdict() if any(recovered) else None

    _every(scheduler, settings.recover_every.total_seconds(), "recover_expired_leases", recover)
    _every(scheduler, settings.expire_every.total_seconds(), "expire_results", queue.expire_results)
    if files is not None:

        async def tidy_files() -> object:
            expired = await files.expire()
            evicted = await files.enforce_cap()
            partials = files.sweep_partials()
            return (
                {"expired": expired, "evicted": evicted, "partials": partials} if expired or evicted else None
            )

        _every(scheduler, settings.expire_every.total_seconds(), "tidy_files", tidy_files)
    if pool is not None:

        async def upkeep() -> object:
            census = await pool.maintain()
            return {key: value for key, value in census.items() if key != "detail"}

        _every(scheduler, 30, "pool_census", upkeep)
    return scheduler
