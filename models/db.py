"""The async engine, made from one URL: SQLite (embedded default) or PostgreSQL (scale-out)."""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from alembic import command
from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

import models.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from models.migrations import BASELINE, BASELINE_TABLES, alembic_config

log = logging.getLogger(__name__)


def sqlite_url(data_dir: Path) -> str:
    """The default database: one SQLite file under the data directory."""
    return f"sqlite+aiosqlite:///{(data_dir / 'shortvid.db').resolve()}"


def normalize_url(url: str) -> str:
    """Accept the plain ``postgresql://`` / ``sqlite://`` spellings users paste, use async drivers."""
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


#: Execution option marking a session that only reads (a deferred transaction on SQLite).
READ_ONLY = "shortvid_read_only"
#: Execution option for work of one statement (SQLite: no BEGIN; the statement is its own transaction).
AUTOCOMMIT = "shortvid_autocommit"


#: How long a connection waits on another's lock before SQLITE_BUSY (other processes: CLI, nodes).
BUSY_TIMEOUT_MS = 30_000


def tune_sqlite(engine: Engine, *, busy_ms: int = BUSY_TIMEOUT_MS, autocheckpoint: bool = True) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE.

    BEGIN IMMEDIATE takes the write lock when a transaction starts, so a
    transaction that reads and then writes can never fail to upgrade its lock
    (SQLITE_BUSY) under concurrent workers; writers simply queue. ``autocheckpoint``
    off: this connection's commits never run a checkpoint (someone else must).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers (job polling, token lookup) must not queue behind writers: WAL lets them read.
        options = connection.get_execution_options()
        if options.get(AUTOCOMMIT, False):
            return  # each statement its own implicit read transaction: no BEGIN round trip
        connection.exec_driver_sql("BEGIN" if options.get(READ_ONLY, False) else "BEGIN IMMEDIATE")


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the engine for ``url`` with settings right for its dialect."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        tune_sqlite(engine.sync_engine)
        return engine
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep attributes after commit (rows are handed to the API layer)."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads only; on SQLite they never take the write lock."""
    return async_sessionmaker(
        engine.execution_options(**{READ_ONLY: True}), class_=AsyncSession, expire_on_commit=False
    )


def read_sessions(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """The read-only twin of a session factory (same engine and pool)."""
    return read_session_factory(sessions.kw["bind"])


P = ParamSpec("P")
R = TypeVar("R")
#: Write transactions still finishing after their caller was cancelled (kept so they are not lost).
_FINISHING: set[asyncio.Task[Any]] = set()


def uncancellable(write: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Run a write transaction to its end even when its caller is cancelled.

    A cancellation landing inside a transaction (a job's timeout, its heartbeat being stopped, a
    lost lease) made SQLAlchemy drop the aiosqlite connection with its ``BEGIN IMMEDIATE`` still
    open: SQLite's write lock stayed held and every later writer waited out the 30 s busy timeout.
    The caller still sees its cancellation; the transaction commits or rolls back on its own.
    """

    @functools.wraps(write)
    async def shielded(*args: P.args, **kwargs: P.kwargs) -> R:
        task: asyncio.Task[R] = asyncio.ensure_future(write(*args, **kwargs))
        _FINISHING.add(task)
        task.add_done_callback(_FINISHING.discard)
        return await asyncio.shield(task)

    return shielded


class WriterTurn:
    """The SQLite writers' asyncio lock, which reports turns that run long.

    A writer turn is a few milliseconds; one held or awaited for ``SLOW`` seconds means a holder
    was stuck (on SQLite's own lock, the connection pool, a cancelled operation), and the log
    names the task that held it, so a stall can be traced instead of guessed.
    """

    SLOW = 5.0

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._since = 0.0

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        asked = loop.time()
        await self._lock.acquire()
        self._since = loop.time()
        if self._since - asked > self.SLOW:
            log.warning("the SQLite writer turn came after %.1f s", self._since - asked)

    async def __aexit__(self, *exc: object) -> None:
        held = asyncio.get_running_loop().time() - self._since
        self._lock.release()
        if held > self.SLOW:
            task = asyncio.current_task()
            log.warning("%s held the SQLite writer turn for %.1f s", task.get_name() if task else "?", held)


_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, WriterTurn] = weakref.WeakKeyDictionary()


def writer_turn(engine: AsyncEngine) -> AbstractAsyncContextManager[object]:
    """SQLite: one writer turn per engine; PostgreSQL: nothing (its row locks do the work)."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    return _SQLITE_WRITERS.setdefault(engine.sync_engine, WriterTurn())


@asynccontextmanager
async def writing(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A write transaction. On SQLite the writers of this process take turns on an asyncio lock
    instead of waiting in SQLite's busy handler, which sleeps in growing steps (up to 100 ms per try)
    and made POST p99 reach 1.6 s at 16 clients; the busy timeout still covers other processes."""
    async with writer_turn(sessions.kw["bind"]), sessions() as session, session.begin():
        yield session


@asynccontextmanager
async def writing_core(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``writing`` for SQLAlchemy Core on the hot path: a connection, no ORM session around it."""
    async with writer_turn(engine), engine.begin() as connection:
        yield connection


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool whose transactions only read (deferred, no write lock, on SQLite)."""
    return engine.execution_options(**{READ_ONLY: True})


#: PostgreSQL advisory lock key held while the schema is upgraded and first-start rows are made.
SCHEMA_LOCK = 7250001


@asynccontextmanager
async def schema_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One transaction that nodes starting together take one at a time.

    PostgreSQL: ``pg_advisory_xact_lock`` - a transaction-level lock, so the commit (or a crashed
    node's dropped connection) releases it and it can never be left held. SQLite: BEGIN IMMEDIATE
    already excludes other writers; foreign keys are switched off for the connection (only possible
    outside a transaction) because batch migrations recreate tables that other tables reference.
    """
    async with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            await _sqlite_foreign_keys(connection, on=False)
        try:
            async with connection.begin():
                if connection.dialect.name == "postgresql":
                    await connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
                yield connection
        finally:
            if sqlite:
                await _sqlite_foreign_keys(connection, on=True)


async def _sqlite_foreign_keys(connection: AsyncConnection, *, on: bool) -> None:
    # On the driver connection: a statement through SQLAlchemy would begin a transaction first.
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _upgrade_to_head(connection: Connection) -> None:
    config = alembic_config(connection)
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables and tables & BASELINE_TABLES:
        command.stamp(config, BASELINE)  # made by create_all before migrations existed
    command.upgrade(config, "head")


@asynccontextmanager
async def upgrade_schema(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Upgrade to the newest revision; yield the connection still inside the locked transaction.

    First-start rows (the bootstrap admin token) are made there, so of several nodes starting at
    once exactly one makes them and the others find them done. Everything commits together.
    """
    async with schema_transaction(engine) as connection:
        await connection.run_sync(_upgrade_to_head)
        yield connection


async def create_schema(engine: AsyncEngine) -> None:
    """Upgrade the database to the newest revision (idempotent; safe for nodes starting at once)."""
    async with upgrade_schema(engine):
        pass
