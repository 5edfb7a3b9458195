"""Shared fixtures: databases (SQLite always, PostgreSQL when SHORTVID_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import io
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy.ext.asyncio import AsyncEngine

from fixtures.site import FixtureSite
from models.db import create_schema, make_engine
from models.transactions import dispose_engine
from scraper.config import load_browser_settings
from server.keys import TOKENS
from server.settings import Settings, env_name
from tests.e2e import start_app

PG_URL = os.environ.get("SHORTVID_TEST_DATABASE_URL")

# Tests build their Settings from what they pass, not from a developer's shell or .env: the
# server's variables are taken out of this process's environment (subprocesses get theirs explicitly).
for _name in [env_name(field) for field in Settings.model_fields]:
    os.environ.pop(_name, None)
Settings.model_config["env_file"] = None

# Fuzzing budgets: two hundred examples per property by default, many more for a soak run
# (HYPOTHESIS_PROFILE=soak). No deadlines: these machines are shared and their timing is noise.
_FUZZ = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
hypothesis_settings.register_profile("default", max_examples=200, **_FUZZ)  # type: ignore[arg-type]
hypothesis_settings.register_profile("soak", max_examples=5000, **_FUZZ)  # type: ignore[arg-type]
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
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
    await dispose_engine(engine)
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
        await dispose_engine(engine)


# ---- end-to-end: the fixture site, an app wired to it, a funded token ------------------------------


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[FixtureSite]:
    async with FixtureSite() as fixture_site:
        yield fixture_site


@pytest.fixture(scope="module")
def dataset(site: FixtureSite) -> dict[str, Any]:
    return site.dataset.to_json()


@pytest.fixture(scope="module")
async def client(site: FixtureSite, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TestClient]:
    # Retries a quarter of a second apart, not 2 s: tests that exhaust attempts wait for no clock.
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("e2e"),
        workers=2,
        rate_limit=0,
        retry_base=timedelta(milliseconds=250),
    )
    browser = load_browser_settings().pointed_at(site)
    test_client = await start_app(settings, browser)
    yield test_client
    await test_client.close()


@pytest.fixture
async def token(client: TestClient) -> str:
    value, _ = await client.app[TOKENS].create(name=f"e2e-{uuid.uuid4().hex[:8]}", credits=100_000)
    return value


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Everything logged at INFO and up during the test, as ``SHORTVID_LOG_FORMAT=json`` writes it."""
    from server.logs import configure_logging

    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging("json", stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
