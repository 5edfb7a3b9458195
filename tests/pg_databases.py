"""Whole PostgreSQL databases for tests that start real nodes (which use the default schema)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from sqlalchemy.engine import make_url


def _admin(url: str, sql: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


@contextmanager
def fresh_database(url: str, prefix: str = "shortvid_test") -> Iterator[str]:
    """An empty database beside the one ``url`` names, its URL yielded, dropped afterwards.

    Call it outside a running event loop (it runs its own for the two statements).
    """
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _admin(url, f"CREATE DATABASE {name}")
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
