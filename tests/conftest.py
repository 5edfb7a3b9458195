"""Shared fixtures: databases (SQLite always, PostgreSQL when SHORTVID_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import create_schema, make_engine

PG_URL = os.environ.get("SHORTVID_TEST_DATABASE_URL")
_PG_SCHEMAS: dict[AsyncEngine, str] = {}


async def _fresh_pg_engine() -> AsyncEngine:
    """A PostgreSQL engine on a schema of its own, so test runs never see each other's rows."""
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(PG_URL or "")
    async with admin.begin() as connection:
        await connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    await admin.dispose()
    from sqlalchemy.ext.asyncio import create_async_engine

    from models.db import normalize_url

    engine = create_async_engine(
        normalize_url(PG_URL or ""),
        connect_args={"server_settings": {"search_path": schema}},
        pool_size=20,
        max_overflow=10,
    )
    _PG_SCHEMAS[engine] = schema
    return engine


async def _drop_pg_schema(engine: AsyncEngine) -> None:
    schema = _PG_SCHEMAS.pop(engine)
    await engine.dispose()
    admin = make_engine(PG_URL or "")
    async with admin.begin() as connection:
        await connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    await admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A fresh database on each engine we support."""
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("SHORTVID_TEST_DATABASE_URL is not set")
        engine = await _fresh_pg_engine()
        await create_schema(engine)
        yield engine
        await _drop_pg_schema(engine)
    else:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
        await create_schema(engine)
        yield engine
        await engine.dispose()
