"""The SQLite transaction runner: in place when nothing else holds a lock, in its thread when another
process does (the event loop keeps serving), and the WAL kept in check by its own checkpoints."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import create_schema, make_engine, session_factory
from models.tables import JobState
from models.transactions import SqliteTransactions, dispose_engine, transactions
from server.queue import JobQueue
from tests.jobs import enqueue_job


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    await create_schema(engine)
    yield engine
    await dispose_engine(engine)


def _sqlite_runner(engine: AsyncEngine) -> SqliteTransactions:
    runner = transactions(engine)
    assert isinstance(runner, SqliteTransactions)
    return runner


def _queue(engine: AsyncEngine) -> JobQueue:
    return JobQueue(session_factory(engine), lease=timedelta(seconds=30), result_ttl=timedelta(hours=1))


def _database_file(engine: AsyncEngine) -> str:
    assert engine.url.database is not None
    return engine.url.database


async def test_a_write_waits_out_another_process_lock_off_the_event_loop(sqlite_engine: AsyncEngine) -> None:
    queue = _queue(sqlite_engine)
    first = await enqueue_job(queue, 1)
    runner = _sqlite_runner(sqlite_engine)
    assert runner.waited == 0  # nothing else held a lock: everything ran in place
    other_process = sqlite3.connect(_database_file(sqlite_engine), isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")  # another process (the CLI, a node) holds the write lock
    try:
        write = asyncio.ensure_future(enqueue_job(queue, 2))
        # The loop is free while the write waits: reads go on (WAL) and see only committed rows.
        for _ in range(20):
            await asyncio.sleep(0)  # a turn of the loop for the write (reads in place never yield)
            polled = await queue.get(first.id)
            assert polled is not None and polled.state == JobState.WAITING
        assert not write.done()
        assert runner.waited == 1
    finally:
        other_process.execute("ROLLBACK")
        other_process.close()
    second = await asyncio.wait_for(write, 30)  # a bound for liveness, not a timing claim
    stored = await queue.get(second.id)
    assert stored is not None and stored.url == second.url
    assert (await queue.counts()).by_state == {JobState.WAITING: 2}


async def test_a_transaction_that_raises_commits_nothing(sqlite_engine: AsyncEngine) -> None:
    runner = transactions(sqlite_engine)

    def insert_then_fail(connection: Connection) -> None:
        connection.execute(text("CREATE TABLE scratch (n INTEGER)"))
        connection.execute(text("INSERT INTO scratch VALUES (1)"))
        raise RuntimeError("the work changed its mind")

    with pytest.raises(RuntimeError):
        await runner.write(insert_then_fail)
    tables = await runner.read(
        lambda connection: connection.execute(
            text("SELECT name FROM sqlite_master WHERE name = 'scratch'")
        ).all()
    )
    assert tables == []


async def _wal_pages_after(engine: AsyncEngine, writes: int, checkpoint_every: int) -> int:
    runner = _sqlite_runner(engine)
    runner.checkpoint_every = checkpoint_every
    queue = _queue(engine)
    for n in range(writes):
        await enqueue_job(queue, n)
    await runner.drain()
    wal = Path(_database_file(engine) + "-wal")
    return wal.stat().st_size // 4096


async def test_commits_made_in_place_are_checkpointed(tmp_path: Path) -> None:
    """In-place connections never checkpoint (that would fsync on the event loop), so the runner
    must: without its checkpoints the WAL grows by every commit, with them it is reused."""
    sizes = {}
    for every in (25, 10**9):
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / f'every-{every}.db'}")
        await create_schema(engine)
        try:
            sizes[every] = await _wal_pages_after(engine, 400, every)
        finally:
            await dispose_engine(engine)
    assert sizes[10**9] > 400  # each commit appended at least a page: nothing checkpointed it
    assert sizes[25] * 4 < sizes[10**9]
