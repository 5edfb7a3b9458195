"""Alembic migrations: today's databases upgrade in place, models and migrations agree, reruns are no-ops."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, column, event, insert, table, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import SQLModel

from models.db import create_schema, make_engine
from models.migrations import BASELINE, alembic_config
from models.tables import ApiToken, Job
from tests.conftest import PG_URL, _drop_pg_schema, _fresh_pg_engine

REPO = Path(__file__).resolve().parents[1]
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
INT32_MAX = 2**31 - 1
WIDENED = {("api_tokens", "credits"), ("jobs", "cost"), ("stored_files", "size"), ("download_items", "bytes")}

# Frozen: the DDL that ``SQLModel.metadata.create_all`` emitted before migrations existed.
LEGACY_DDL = """
CREATE TABLE api_tokens (
    id {serial} NOT NULL, name VARCHAR(100) NOT NULL, token_hash VARCHAR(64) NOT NULL,
    token_prefix VARCHAR(16) NOT NULL, credits INTEGER NOT NULL, unlimited BOOLEAN NOT NULL,
    banned BOOLEAN NOT NULL, is_admin BOOLEAN NOT NULL, created_at {when} NOT NULL, last_used_at {when},
    PRIMARY KEY (id), UNIQUE (name)
);
CREATE UNIQUE INDEX ix_api_tokens_token_hash ON api_tokens (token_hash);
CREATE TABLE stored_files (
    id VARCHAR(36) NOT NULL, platform VARCHAR(10) NOT NULL, item_id VARCHAR(32) NOT NULL,
    role VARCHAR(16) NOT NULL, relpath VARCHAR(512) NOT NULL, size INTEGER NOT NULL,
    sha256 VARCHAR(64) NOT NULL, content_type VARCHAR(64) NOT NULL, source_url VARCHAR(4096) NOT NULL,
    job_id VARCHAR(36), pinned BOOLEAN NOT NULL, created_at {when} NOT NULL, expires_at {when},
    PRIMARY KEY (id)
);
CREATE INDEX ix_files_item ON stored_files (platform, item_id);
CREATE INDEX ix_stored_files_expires_at ON stored_files (expires_at);
CREATE INDEX ix_stored_files_job_id ON stored_files (job_id);
CREATE TABLE jobs (
    id VARCHAR(36) NOT NULL, type VARCHAR(40) NOT NULL, platform VARCHAR(10) NOT NULL,
    url VARCHAR(2048) NOT NULL, payload JSON NOT NULL, state VARCHAR(12) NOT NULL, token_id INTEGER,
    cost INTEGER NOT NULL, attempts INTEGER NOT NULL, max_attempts INTEGER NOT NULL, worker_id VARCHAR(80),
    result JSON, error VARCHAR, error_code VARCHAR(40), result_expired BOOLEAN NOT NULL,
    created_at {when} NOT NULL, updated_at {when} NOT NULL, run_at {when} NOT NULL, locked_until {when},
    started_at {when}, finished_at {when}, result_expires_at {when},
    PRIMARY KEY (id), FOREIGN KEY(token_id) REFERENCES api_tokens (id)
);
CREATE INDEX ix_jobs_claim ON jobs (state, run_at);
CREATE INDEX ix_jobs_result_expires_at ON jobs (result_expires_at);
CREATE INDEX ix_jobs_token_id ON jobs (token_id);
CREATE TABLE download_items (
    id {serial} NOT NULL, task_id VARCHAR(36) NOT NULL, position INTEGER NOT NULL,
    video_id VARCHAR(32) NOT NULL, url VARCHAR(2048) NOT NULL, media_type VARCHAR(8) NOT NULL,
    state VARCHAR(12) NOT NULL, bytes INTEGER NOT NULL, file_ids JSON NOT NULL, error VARCHAR,
    attempts INTEGER NOT NULL, updated_at {when} NOT NULL,
    PRIMARY KEY (id), FOREIGN KEY(task_id) REFERENCES jobs (id)
);
CREATE UNIQUE INDEX ix_download_items_task ON download_items (task_id, position);
"""
DIALECT_TYPES = {
    "sqlite": {"serial": "INTEGER", "when": "DATETIME"},
    "postgresql": {"serial": "SERIAL", "when": "TIMESTAMP WITH TIME ZONE"},
}

EngineFactory = Callable[[], Awaitable[AsyncEngine]]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
async def empty_engines(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineFactory]:
    """Makes engines on empty databases (SQLite files, or PostgreSQL schemas of their own)."""
    if request.param == "postgresql" and not PG_URL:
        pytest.skip("SHORTVID_TEST_DATABASE_URL is not set")
    made: list[AsyncEngine] = []

    async def new_engine() -> AsyncEngine:
        if request.param == "postgresql":
            engine = await _fresh_pg_engine()
        else:
            engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / f'db{len(made)}.sqlite'}")
        made.append(engine)
        return engine

    yield new_engine
    for engine in made:
        await (_drop_pg_schema(engine) if request.param == "postgresql" else engine.dispose())


async def _legacy_database(engine: AsyncEngine) -> None:
    """Today's schema, made the way today's code makes it (no ``alembic_version``)."""
    ddl = LEGACY_DDL.format(**DIALECT_TYPES[engine.dialect.name])
    async with engine.begin() as connection:
        for statement in filter(str.strip, ddl.split(";")):
            await connection.exec_driver_sql(statement)


async def _run(engine: AsyncEngine, fn: Callable[[Connection], Any]) -> Any:
    async with engine.connect() as connection:
        return await connection.run_sync(fn)


def _differences(connection: Connection, target: MetaData = SQLModel.metadata) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), target))


def _version(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def test_todays_database_is_upgraded_in_place(empty_engines: EngineFactory) -> None:
    engine = await empty_engines()
    await _legacy_database(engine)
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        token = ApiToken(name="old", token_hash="h" * 64, token_prefix="sv_old", credits=INT32_MAX)
        session.add(token)
        await session.flush()
        job = Job(
            type="video.parse", platform="douyin", url="https://v.douyin.com/x/", token_id=token.id, cost=5
        )
        # Only the columns today's schema has (later revisions add some, e.g. 0003's dedupe_key).
        # A bare table of those columns, so no model default fills in a newer one.
        values = job.model_dump(exclude={"dedupe_key", "leads", "shared"})
        typed = SQLModel.metadata.tables["jobs"].c
        legacy_jobs = table("jobs", *(column(name, typed[name].type) for name in values))
        await session.execute(insert(legacy_jobs).values(**values))

    await create_schema(engine)

    assert await _run(engine, _version) == HEAD
    assert await _run(engine, _differences) == []
    async with AsyncSession(engine) as session, session.begin():
        kept = await session.get(Job, job.id)
        assert kept is not None and kept.token_id == token.id and kept.cost == 5
        # A refund landing on a full 32-bit balance (what overflowed on PostgreSQL).
        await session.execute(
            update(ApiToken).where(ApiToken.id == token.id).values(credits=ApiToken.credits + 10)  # type: ignore[arg-type]
        )
    async with AsyncSession(engine) as session:
        assert (await session.get_one(ApiToken, token.id)).credits == INT32_MAX + 10
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            types = await connection.execute(
                text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns"
                    " WHERE table_schema = current_schema()"
                )
            )
            widened = {(table, column): kind for table, column, kind in types if (table, column) in WIDENED}
        assert widened == dict.fromkeys(WIDENED, "bigint")


async def test_baseline_revision_is_todays_schema(empty_engines: EngineFactory) -> None:
    legacy, migrated = await empty_engines(), await empty_engines()
    await _legacy_database(legacy)
    todays = MetaData()
    await _run(legacy, lambda connection: todays.reflect(connection))
    await _run(migrated, lambda connection: command.upgrade(alembic_config(connection), BASELINE))
    assert await _run(migrated, lambda connection: _differences(connection, todays)) == []


async def test_empty_database_is_migrated_to_the_models(empty_engines: EngineFactory) -> None:
    engine = await empty_engines()
    await create_schema(engine)
    assert await _run(engine, _version) == HEAD
    assert await _run(engine, _differences) == []
    if engine.dialect.name == "sqlite":  # switched off for the batch migrations only
        async with engine.connect() as connection:
            assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1


async def test_create_schema_twice_is_a_no_op(empty_engines: EngineFactory) -> None:
    engine = await empty_engines()
    await create_schema(engine)
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    await create_schema(engine)
    assert await _run(engine, _version) == HEAD
    assert not {"CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE"} & set(statements), statements


def test_command_line_migrates_a_database(tmp_path: Path) -> None:
    """``python -m models.migrations`` is the alembic CLI without an alembic.ini."""
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"

    def alembic(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "models.migrations", "-x", f"url={url}", *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        ).stdout

    alembic("upgrade", "head")
    assert f"{HEAD} (head)" in alembic("current")
