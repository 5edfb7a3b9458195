"""The first-start admin token: made once, under the schema lock, however many nodes start together."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from models.db import make_engine, session_factory, upgrade_schema
from models.tables import ApiToken
from server.tokens import TokenInfo, TokenNameTaken, TokenStore, bootstrap_admin
from tests.conftest import PG_URL
from tests.e2e import ServeProcess
from tests.pg_databases import fresh_database


async def _start_node(engine: AsyncEngine) -> tuple[str, TokenInfo] | None:
    """What a node's start-up does with the database."""
    async with upgrade_schema(engine) as connection:
        return await bootstrap_admin(connection)


async def test_nodes_starting_together_make_one_admin_token(engine: AsyncEngine) -> None:
    made = [first for first in await asyncio.gather(*(_start_node(engine) for _ in range(3))) if first]
    assert len(made) == 1
    token, info = made[0]
    assert info.name == "admin" and info.is_admin and info.unlimited
    tokens = TokenStore(session_factory(engine))
    assert await tokens.lookup(token) == info
    assert await _start_node(engine) is None  # a restart finds it


async def test_an_admin_name_taken_meanwhile_is_a_lost_race(engine: AsyncEngine) -> None:
    """`shortvid token create --name admin` commits between the count and the insert (PostgreSQL
    only: SQLite's BEGIN IMMEDIATE lets no other writer in between)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("needs a concurrent writer")
    async with engine.connect() as other, AsyncSession(bind=other) as session:
        session.add(ApiToken(name="admin", token_hash="x" * 64, token_prefix="sv_x", credits=1))
        await session.flush()  # the row is in, not yet committed: the count below cannot see it
        starting = asyncio.create_task(_start_node(engine))
        async with engine.connect() as probe:  # until the node's insert waits on the unique name
            while not (await probe.exec_driver_sql(WAITING_ON_A_LOCK)).scalar():
                assert not starting.done(), starting.result()
                await asyncio.sleep(0.05)
        await session.commit()
    assert await starting is None
    assert [(t.name, t.credits) for t in await TokenStore(session_factory(engine)).list()] == [("admin", 1)]


WAITING_ON_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def test_a_duplicate_name_is_a_typed_error(engine: AsyncEngine) -> None:
    tokens = TokenStore(session_factory(engine))
    await tokens.create(name="twice", credits=1)
    with pytest.raises(TokenNameTaken, match="a token named 'twice' already exists") as raised:
        await tokens.create(name="twice", credits=1)
    assert isinstance(raised.value, ValueError)


# ---- three real `shortvid serve` processes on one empty PostgreSQL ----------------------------------


def _count_admin_tokens(url: str) -> int:
    async def run() -> int:
        engine = make_engine(url)
        try:
            async with engine.connect() as connection:
                return int(
                    (
                        await connection.execute(select(func.count()).where(col(ApiToken.is_admin)))
                    ).scalar_one()
                )
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.mark.pg
@pytest.mark.slow
def test_three_nodes_started_together_on_an_empty_database(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("SHORTVID_TEST_DATABASE_URL is not set")
    with fresh_database(PG_URL, "shortvid_race") as db:
        # Role api: no browser needed, and start-up is nearly all schema and bootstrap.
        nodes = [ServeProcess(tmp_path / f"n{n}", "--role", "api", "--database-url", db) for n in range(3)]
        try:
            for node in nodes:
                node.start()
            for node in nodes:
                node.wait_ready()  # also asserts it is still running
            assert _count_admin_tokens(db) == 1
            processes = [node.process for node in nodes]
        finally:
            for node in nodes:
                node.stop()
    outputs = [process.stdout.read() for process in processes if process and process.stdout]
    assert len(outputs) == 3
    printed = [line for out in outputs for line in out.splitlines() if line.startswith("sv_")]
    assert len(printed) == 1, outputs
