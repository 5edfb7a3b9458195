"""Whole transactions as one call: a synchronous function over a ``Connection``, run as one unit.

Why: through aiosqlite every statement, ``BEGIN`` and ``COMMIT`` is its own round trip between the
event loop and the connection's thread (a queue put, a wake-up through the loop's self-pipe, the
GIL handed back and forth). A poll by primary key cost 1.0-1.3 ms of CPU that way, 0.40-0.46 ms
as one call into a thread owning a plain ``sqlite3`` connection, and 0.16 ms called in place
(``bench.db_roundtrip``). So on SQLite the job queue's transactions run in place, on connections
that never wait (busy timeout 0) and never checkpoint; a transaction that meets another process's
lock is rolled back and run again in a thread that may wait the full busy timeout, and checkpoints
run in that thread too. The event loop is therefore never held by a lock or an fsync, only by
SQLite doing the work itself (tens of microseconds on pages the OS has cached). On PostgreSQL the
same functions run through ``AsyncConnection.run_sync`` over asyncpg, which has no thread to hop to.

The work functions must not await or touch the event loop, and must be safe to run again after a
rollback; they get a connection inside an open transaction (committed when they return, rolled
back when they raise).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import AUTOCOMMIT, BUSY_TIMEOUT_MS, READ_ONLY, tune_sqlite, writer_turn

log = logging.getLogger(__name__)
R = TypeVar("R")


class Transactions(ABC):
    """Runs ``work(connection)`` in a write or a read-only transaction."""

    @abstractmethod
    async def write(self, work: Callable[[Connection], R], *, one_statement: bool = False) -> R:
        """A write transaction (SQLite: the process's writer turn, then BEGIN IMMEDIATE).

        ``one_statement``: the work is a single statement, atomic on its own, so it runs in
        autocommit (no BEGIN and COMMIT around it: two round trips fewer on PostgreSQL)."""

    @abstractmethod
    async def read(self, work: Callable[[Connection], R]) -> R:
        """A read of one statement (SQLite: its own implicit transaction, never waiting for writers
        under WAL); a read of several statements may see commits land between them."""

    @abstractmethod
    def close(self) -> None:
        """Release threads and connections (idempotent)."""

    @abstractmethod
    async def drain(self) -> None:
        """Wait for the runner's own background work (before ``close``)."""


class _AsyncDriverTransactions(Transactions):
    """PostgreSQL (asyncpg): the work runs in SQLAlchemy's greenlet over the async connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # Autocommit: one statement needs no BEGIN and COMMIT (or ROLLBACK) round trips around it.
        self._one_statement = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._reads = self._one_statement.execution_options(**{READ_ONLY: True})

    async def write(self, work: Callable[[Connection], R], *, one_statement: bool = False) -> R:
        if one_statement:
            async with self._one_statement.connect() as connection:
                return await connection.run_sync(work)
        async with self._engine.begin() as connection:
            return await connection.run_sync(work)

    async def read(self, work: Callable[[Connection], R]) -> R:
        async with self._reads.connect() as connection:
            return await connection.run_sync(work)

    def close(self) -> None:
        """Nothing of its own: the async engine's pool holds the connections."""

    async def drain(self) -> None:
        """Nothing runs in the background."""


class SqliteTransactions(Transactions):
    """SQLite: in place on non-waiting connections; in a thread when another process holds a lock.

    Writes take the process's writer turn, shared with the aiosqlite writers (tokens, files,
    tasks), so writers of this process never meet on SQLite's file lock; only another process
    (the CLI, a second node on the same file) can make a transaction wait, and that one waits
    in the writer thread, off the event loop.
    """

    #: Commits in place between two checkpoints (SQLite's own default is 1,000 WAL pages).
    checkpoint_every = 200

    def __init__(self, engine: AsyncEngine) -> None:
        self._turn = writer_turn(engine)
        self._in_place = _plain_sqlite_engine(engine, busy_ms=0, autocheckpoint=False)
        self._in_place_one = self._in_place.execution_options(**{AUTOCOMMIT: True})
        self._in_place_reads = self._in_place.execution_options(**{READ_ONLY: True, AUTOCOMMIT: True})
        self._waiting = _plain_sqlite_engine(engine, busy_ms=BUSY_TIMEOUT_MS, autocheckpoint=True)
        self._waiting_reads = self._waiting.execution_options(**{READ_ONLY: True, AUTOCOMMIT: True})
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        self._commits = 0
        self._checkpoint: asyncio.Future[None] | None = None
        #: Transactions that met another process's lock and ran in the thread (for tests, health).
        self.waited = 0

    async def write(self, work: Callable[[Connection], R], *, one_statement: bool = False) -> R:
        async with self._turn:
            try:
                if one_statement:
                    with self._in_place_one.connect() as connection:
                        result = work(connection)
                else:
                    with self._in_place.begin() as connection:
                        result = work(connection)
            except OperationalError as exc:
                if not _busy(exc):
                    raise
            else:
                self._committed()
                return result
            self.waited += 1
            return await asyncio.get_running_loop().run_in_executor(self._thread, _begin, self._waiting, work)

    async def read(self, work: Callable[[Connection], R]) -> R:
        try:
            with self._in_place_reads.connect() as connection:
                return work(connection)
        except OperationalError as exc:
            if not _busy(exc):
                raise
        self.waited += 1
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, _connect, self._waiting_reads, work
        )

    def _committed(self) -> None:
        """Count a commit made in place; every so often, checkpoint the WAL."""
        self._commits += 1
        if self._commits < self.checkpoint_every or (self._checkpoint and not self._checkpoint.done()):
            return
        self._commits = 0
        self._checkpoint = asyncio.ensure_future(self._checkpoint_in_turn())

    async def _checkpoint_in_turn(self) -> None:
        """Checkpoint in the thread during a writer turn of its own: with this process's writers
        paused it always catches up, so the next commit starts the WAL over (a checkpoint racing
        the writers never catches up under steady load, and the WAL would grow without end)."""
        async with self._turn:
            # Outside any transaction (a checkpoint inside one is refused): the no-BEGIN options.
            await asyncio.get_running_loop().run_in_executor(self._thread, _checkpoint, self._waiting_reads)

    async def drain(self) -> None:
        """Wait for a checkpoint under way (before closing)."""
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)

    def close(self) -> None:
        _close(self._thread, self._in_place, self._waiting)


def _busy(exc: OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (extended codes included): another connection holds a lock."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _begin(engine: Engine, work: Callable[[Connection], R]) -> R:
    with engine.begin() as connection:
        return work(connection)


def _connect(engine: Engine, work: Callable[[Connection], R]) -> R:
    with engine.connect() as connection:
        return work(connection)


def _checkpoint(engine: Engine) -> None:
    """A PASSIVE checkpoint: copies what it can without waiting for readers or writers."""
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    except Exception:  # a missed checkpoint is retried after the next commits
        log.warning("WAL checkpoint failed", exc_info=True)


def _plain_sqlite_engine(engine: AsyncEngine, *, busy_ms: int, autocheckpoint: bool) -> Engine:
    """The async engine's database through the standard library's driver, tuned the same way."""
    url = engine.url.set(drivername="sqlite+pysqlite")
    # check_same_thread off: the engine is used from one thread at a time, not always the same one.
    connect_args = {"timeout": busy_ms / 1000, "check_same_thread": False}
    sync = create_engine(url, connect_args=connect_args, pool_size=1, max_overflow=2)
    tune_sqlite(sync, busy_ms=busy_ms, autocheckpoint=autocheckpoint)
    return sync


def _close(thread: ThreadPoolExecutor, *engines: Engine) -> None:
    thread.shutdown(wait=True)
    for engine in engines:
        engine.dispose()


_RUNNERS: weakref.WeakKeyDictionary[Engine, Transactions] = weakref.WeakKeyDictionary()


def transactions(engine: AsyncEngine) -> Transactions:
    """The runner of this engine's database (one per engine: one writer thread per SQLite file)."""
    key = engine.sync_engine
    runner = _RUNNERS.get(key)
    if runner is None:
        if engine.dialect.name == "sqlite":
            runner = SqliteTransactions(engine)
        else:
            runner = _AsyncDriverTransactions(engine)
        _RUNNERS[key] = runner
    return runner


async def dispose_engine(engine: AsyncEngine) -> None:
    """``engine.dispose()`` plus the runner's thread and plain connections."""
    runner = _RUNNERS.pop(engine.sync_engine, None)
    if runner is not None:
        await runner.drain()
        await asyncio.get_running_loop().run_in_executor(None, runner.close)
    await engine.dispose()
