"""The async engine, made from one URL: SQLite (embedded default) or PostgreSQL (scale-out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (registers the tables on SQLModel.metadata)


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


def _tune_sqlite(engine: AsyncEngine) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE.

    BEGIN IMMEDIATE takes the write lock when a transaction starts, so a
    transaction that reads and then writes can never fail to upgrade its lock
    (SQLITE_BUSY) under concurrent workers; writers simply queue.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers (job polling, token lookup) must not queue behind writers: WAL lets them read.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the engine for ``url`` with settings right for its dialect."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _tune_sqlite(engine)
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


async def create_schema(engine: AsyncEngine) -> None:
    """Create missing tables (idempotent; safe for several nodes starting at once on PostgreSQL)."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several nodes may start together; one creates, the others wait and find it done.
            await connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7250001)")
        await connection.run_sync(SQLModel.metadata.create_all)
