"""APScheduler duties. Each is idempotent SQL or pool upkeep, so every node may run them.

Each duty has an id and a name (APScheduler's log lines and ``scheduler.get_jobs()`` say which);
APScheduler's own line for every run of every duty is kept down to warnings (``server.logs``), and a
duty logs a line only when it did something.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from models.types import utcnow
from scraper.pool import BrowserPool
from server.files import FileStore
from server.logs import quiet_chatty_loggers
from server.node_registry import NodeRegistry
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


@dataclass(frozen=True, slots=True)
class NodeDuties:
    """This node's place in the registry: its heartbeat, and who marks the files of gone nodes lost."""

    registry: NodeRegistry
    node_id: str


#: How often each node looks for files on its disk that no row points to.
ORPHAN_SWEEP_SECONDS = 3600


def build_scheduler(
    settings: Settings,
    queue: JobQueue,
    pool: BrowserPool | None,
    files: FileStore | None = None,
    node: NodeDuties | None = None,
) -> AsyncIOScheduler:
    """The scheduler with our duties; start it inside the running loop."""
    quiet_chatty_loggers()
    scheduler = AsyncIOScheduler(timezone="UTC")

    async def recover() -> object:
        recovered = await queue.recover_expired()
        return recovered._asdict() if any(recovered) else None

    _every(scheduler, settings.recover_every.total_seconds(), "recover_expired_leases", recover)
    _every(scheduler, settings.expire_every.total_seconds(), "expire_results", queue.expire_results)
    if node is not None:

        async def heartbeat() -> object:
            await node.registry.beat(node.node_id)
            return None

        _every(scheduler, settings.node_heartbeat.total_seconds(), "node_heartbeat", heartbeat)
    if files is not None:

        async def tidy_files() -> object:
            """This node's bytes only (``FileStore``); and the files of nodes gone too long marked lost."""
            lost = 0
            if node is not None:
                gone = await node.registry.gone_since(utcnow() - settings.files_lost_after)
                lost = await files.mark_lost(gone)
            expired = await files.expire()
            evicted = await files.enforce_cap()
            partials = files.sweep_partials()
            done = {"expired": expired, "evicted": evicted, "partials": partials, "marked_lost": lost}
            return done if any(done.values()) else None

        async def sweep_orphans() -> object:
            orphans = await files.sweep_orphans()
            return {"orphans": orphans} if orphans else None

        _every(scheduler, settings.expire_every.total_seconds(), "tidy_files", tidy_files)
        _every(scheduler, ORPHAN_SWEEP_SECONDS, "sweep_orphan_files", sweep_orphans)
    if pool is not None:

        async def upkeep() -> object:
            census = await pool.maintain()
            return {key: value for key, value in census.items() if key != "detail"}

        _every(scheduler, 30, "pool_census", upkeep)
    return scheduler
