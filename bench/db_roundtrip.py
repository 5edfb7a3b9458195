"""One poll's read (a job by primary key) three ways on the same SQLite file, same run.

- ``aiosqlite``: an async SQLAlchemy connection, every statement a hop to the driver's thread;
- ``thread``: the whole read as one call into a thread owning a plain ``sqlite3`` connection;
- ``in_place``: the job queue's path (``models.transactions``), called on the event loop.

Reports wall and CPU microseconds per read at 1 and 16 concurrent readers; the ratios to
``in_place`` are what ``models.transactions`` chose between.

.venv/bin/python -m bench.db_roundtrip --reads 3000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from sqlalchemy import bindparam, create_engine, select

from models.db import READ_ONLY, create_schema, make_engine, session_factory, tune_sqlite
from models.rows import JOB_COLUMNS, JOBS, JobRow
from models.transactions import dispose_engine
from server.queue import JobQueue
from tests.jobs import enqueue_job

_BY_ID = select(*JOB_COLUMNS).where(JOBS.c.id == bindparam("job_id"))


async def _time(
    read: Callable[[str], Awaitable[Any]], ids: list[str], reads: int, readers: int
) -> dict[str, float]:
    limit = asyncio.Semaphore(readers)

    async def one(n: int) -> None:
        async with limit:
            await read(ids[n % len(ids)])

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(n) for n in range(reads)))
    return {
        "wall_us": round(1e6 * (time.perf_counter() - wall) / reads, 1),
        "cpu_us": round(1e6 * (time.process_time() - cpu) / reads, 1),
    }


async def _run(reads: int) -> dict[str, Any]:
    with TemporaryDirectory() as directory:
        path = Path(directory) / "bench.db"
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        await create_schema(engine)
        queue = JobQueue(session_factory(engine), lease=timedelta(seconds=30), result_ttl=timedelta(hours=1))
        ids = [(await enqueue_job(queue, n)).id for n in range(200)]
        async_reads = engine.execution_options(**{READ_ONLY: True})
        plain = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
        tune_sqlite(plain)
        plain_reads = plain.execution_options(**{READ_ONLY: True})
        thread = ThreadPoolExecutor(1)
        loop = asyncio.get_running_loop()

        async def by_aiosqlite(job_id: str) -> JobRow | None:
            async with async_reads.connect() as connection:
                row = (await connection.execute(_BY_ID, {"job_id": job_id})).first()
            return JobRow.of(row) if row is not None else None

        def read_plain(job_id: str) -> JobRow | None:
            with plain_reads.connect() as connection:
                row = connection.execute(_BY_ID, {"job_id": job_id}).first()
            return JobRow.of(row) if row is not None else None

        async def by_thread(job_id: str) -> JobRow | None:
            return await loop.run_in_executor(thread, read_plain, job_id)

        variants: dict[str, Callable[[str], Awaitable[Any]]] = {
            "aiosqlite": by_aiosqlite,
            "thread": by_thread,
            "in_place": queue.get,
        }
        report: dict[str, Any] = {}
        for readers in (1, 16):
            for _round in range(2):  # alternating rounds; the second of each is kept
                figures = {name: await _time(read, ids, reads, readers) for name, read in variants.items()}
            base = figures["in_place"]["cpu_us"]
            report[f"readers_{readers}"] = {
                **figures,
                "cpu_ratio_to_in_place": {name: round(f["cpu_us"] / base, 1) for name, f in figures.items()},
            }
        thread.shutdown()
        plain.dispose()
        await dispose_engine(engine)
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=3000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_run(args.reads)), indent=2))


if __name__ == "__main__":
    main()
