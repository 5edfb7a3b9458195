"""The short token-lookup cache: what it may serve stale, what drops it, and what it never decides."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import session_factory, writing
from models.tables import ApiToken
from server.queue import JobQueue, TokenBanned
from server.tokens import TokenStore
from tests.jobs import enqueue_job


def _stores(engine: AsyncEngine, cache_seconds: float = 3600) -> tuple[TokenStore, JobQueue]:
    sessions = session_factory(engine)
    queue = JobQueue(sessions, lease=timedelta(seconds=60), result_ttl=timedelta(hours=1))
    return TokenStore(sessions, cache_seconds=cache_seconds), queue


async def _enqueue(queue: JobQueue, token_id: int, cost: int = 10) -> str:
    return (await enqueue_job(queue, 1, token_id=token_id, cost=cost)).id


async def _set_credits_behind_its_back(engine: AsyncEngine, token_id: int, credits: int) -> None:
    """Another node's write: this process's store does not see it happen."""
    async with writing(session_factory(engine)) as session:
        await session.execute(update(ApiToken).where(ApiToken.id == token_id).values(credits=credits))  # type: ignore[arg-type]


async def test_a_known_token_is_served_from_the_cache_until_it_expires(engine: AsyncEngine) -> None:
    tokens, _ = _stores(engine)
    token, info = await tokens.create(name="t", credits=50)
    assert (await tokens.lookup_cached(token)) == info
    await _set_credits_behind_its_back(engine, info.id, 7)
    cached = await tokens.lookup_cached(token)
    assert cached is not None and cached.credits == 50  # within the window: the row as first read
    assert (await tokens.lookup(token)).credits == 7  # type: ignore[union-attr]
    uncached, _ = _stores(engine, cache_seconds=0)
    fresh = await uncached.lookup_cached(token)
    assert fresh is not None and fresh.credits == 7  # an expired entry is read again


async def test_top_up_ban_and_unban_in_this_process_drop_the_cache_at_once(engine: AsyncEngine) -> None:
    tokens, _ = _stores(engine)
    token, info = await tokens.create(name="t", credits=50)
    await tokens.lookup_cached(token)
    await tokens.topup(info.id, 25)
    assert (await tokens.lookup_cached(token)).credits == 75  # type: ignore[union-attr]
    await tokens.set_banned(info.id, True)
    assert (await tokens.lookup_cached(token)).banned  # type: ignore[union-attr]
    await tokens.set_banned(info.id, False)
    assert not (await tokens.lookup_cached(token)).banned  # type: ignore[union-attr]


async def test_an_unknown_token_is_never_cached(engine: AsyncEngine) -> None:
    tokens, _ = _stores(engine)
    assert await tokens.lookup_cached("sv_not-a-token") is None
    token, info = await tokens.create(name="t", credits=1)
    assert (await tokens.lookup_cached(token)) == info  # known as soon as it exists


async def test_the_charge_not_the_cache_decides_credits_and_bans(engine: AsyncEngine) -> None:
    tokens, queue = _stores(engine)
    token, info = await tokens.create(name="t", credits=50)
    await tokens.lookup_cached(token)
    # Another node bans the token and empties it; this node's cache still has the old row.
    other, _ = _stores(engine)
    await other.set_banned(info.id, True)
    cached = await tokens.lookup_cached(token)
    assert cached is not None and not cached.banned
    with pytest.raises(TokenBanned):
        await _enqueue(queue, info.id)
    await other.set_banned(info.id, False)
    await _set_credits_behind_its_back(engine, info.id, 15)
    await _enqueue(queue, info.id, cost=10)
    found = await tokens.lookup(token)
    assert found is not None and found.credits == 5  # charged from the stored 15, not the cached 50
