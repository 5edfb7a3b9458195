"""Queue semantics on SQLite and PostgreSQL: exclusive claims, fencing, refunds, recovery."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import session_factory
from models.tables import JobState
from models.types import utcnow
from server.credits import MAX_CREDITS
from server.queue import InsufficientCredits, JobQueue, Recovered, TokenBanned
from server.tokens import TokenStore
from tests.jobs import enqueue_job


def _queue(engine: AsyncEngine, lease: float = 60) -> tuple[JobQueue, TokenStore]:
    sessions = session_factory(engine)
    return JobQueue(sessions, lease=timedelta(seconds=lease), result_ttl=timedelta(hours=1)), TokenStore(
        sessions
    )


async def _enqueue(
    queue: JobQueue, token_id: int | None, n: int = 1, cost: int = 10, max_attempts: int = 3
) -> list[str]:
    ids = []
    for i in range(n):
        job = await enqueue_job(queue, i, token_id=token_id, cost=cost, max_attempts=max_attempts)
        ids.append(job.id)
    return ids


async def test_concurrent_claimers_never_claim_a_job_twice(engine: AsyncEngine) -> None:
    queue, _ = _queue(engine)
    ids = await _enqueue(queue, None, n=60)
    claimed: list[str] = []

    async def claimer(name: str) -> None:
        while (job := await queue.claim(name)) is not None:
            claimed.append(job.id)

    await asyncio.gather(*(claimer(f"w{i}") for i in range(12)))
    assert sorted(claimed) == sorted(ids)
    assert len(set(claimed)) == len(claimed)


async def test_charge_is_atomic_under_concurrency(engine: AsyncEngine) -> None:
    queue, tokens = _queue(engine)
    _, info = await tokens.create(name="t", credits=95)

    async def attempt() -> bool:
        try:
            await _enqueue(queue, info.id)
            return True
        except InsufficientCredits:
            return False

    results = await asyncio.gather(*(attempt() for _ in range(30)))
    assert results.count(True) == 9
    after = await tokens.find(str(info.id))
    assert after is not None and after.credits == 5


async def test_insufficient_and_banned(engine: AsyncEngine) -> None:
    queue, tokens = _queue(engine)
    _, poor = await tokens.create(name="poor", credits=3)
    with pytest.raises(InsufficientCredits) as caught:
        await _enqueue(queue, poor.id)
    assert (caught.value.need, caught.value.have) == (10, 3)
    _, banned = await tokens.create(name="b", credits=100)
    await tokens.set_banned(banned.id, True)
    with pytest.raises(TokenBanned):
        await _enqueue(queue, banned.id)
    _, rich = await tokens.create(name="u", unlimited=True)
    await _enqueue(queue, rich.id)
    assert (await tokens.find("u")).credits == 0  # type: ignore[union-attr]


async def test_fencing_and_refund_once(engine: AsyncEngine) -> None:
    queue, tokens = _queue(engine)
    _, info = await tokens.create(name="t", credits=10)
    [job_id] = await _enqueue(queue, info.id)
    job = await queue.claim("a")
    assert job is not None and job.id == job_id and job.state == JobState.ACTIVE
    assert not await queue.complete(job_id, "b", {"x": 1})
    assert await queue.fail(job_id, "a", error="gone", code="not_found")
    assert not await queue.fail(job_id, "a", error="gone", code="not_found")
    assert (await tokens.find("t")).credits == 10  # type: ignore[union-attr]
    row = await queue.get(job_id)
    assert row is not None and row.state == JobState.FAILED and row.error == "gone"


async def test_expired_lease_is_taken_up_and_old_owner_fenced(engine: AsyncEngine) -> None:
    queue, tokens = _queue(engine, lease=60)
    _, info = await tokens.create(name="t", credits=30)
    [job_id] = await _enqueue(queue, info.id)
    assert (await queue.claim("dead")) is not None
    later = utcnow() + timedelta(seconds=61)
    assert await queue.recover_expired(now=later) == Recovered(requeued=1)
    job = await queue.claim("alive", now=later)
    assert job is not None and job.id == job_id and job.attempts == 2
    assert not await queue.complete(job_id, "dead", {"stale": True})
    assert await queue.complete(job_id, "alive", {"fresh": True})
    assert (await queue.get(job_id)).result == {"fresh": True}  # type: ignore[union-attr]


async def test_out_of_attempts_fails_with_refund(engine: AsyncEngine) -> None:
    queue, tokens = _queue(engine, lease=1)
    _, info = await tokens.create(name="t", credits=10)
    [job_id] = await _enqueue(queue, info.id)
    moment = utcnow()
    for _ in range(3):
        moment += timedelta(seconds=5)
        assert (await queue.claim("w", now=moment)) is not None
        moment += timedelta(seconds=5)
        await queue.recover_expired(now=moment)
    row = await queue.get(job_id)
    assert row is not None and row.state == JobState.FAILED and row.error_code == "lost"
    assert (await tokens.find("t")).credits == 10  # type: ignore[union-attr]


async def test_delayed_job_waits_for_its_time(engine: AsyncEngine) -> None:
    queue, _ = _queue(engine)
    [job_id] = await _enqueue(queue, None)
    assert (await queue.claim("w")) is not None
    assert await queue.retry_later(job_id, "w", error="blocked", code="blocked", delay=timedelta(seconds=30))
    assert (await queue.claim("w")) is None
    job = await queue.claim("w", now=utcnow() + timedelta(seconds=31))
    assert job is not None and job.state == JobState.ACTIVE


async def test_results_expire(engine: AsyncEngine) -> None:
    queue, _ = _queue(engine)
    [job_id] = await _enqueue(queue, None)
    await queue.claim("w")
    await queue.complete(job_id, "w", {"video_id": "1"})
    assert await queue.expire_results(now=utcnow() + timedelta(hours=2)) == 1
    row = await queue.get(job_id)
    assert row is not None and row.result is None and row.result_expired


#: A trigger that makes every refund to one token fail inside the database, per dialect.
_REFUSE_REFUNDS = {
    "sqlite": [
        "CREATE TRIGGER refuse_refund BEFORE UPDATE OF credits ON api_tokens"
        " WHEN NEW.id = {token} AND NEW.credits > OLD.credits"
        " BEGIN SELECT RAISE(ABORT, 'refund refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_refund() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'refund refused'; END $$",
        "CREATE TRIGGER refuse_refund BEFORE UPDATE OF credits ON api_tokens FOR EACH ROW"
        " WHEN (NEW.id = {token} AND NEW.credits > OLD.credits) EXECUTE FUNCTION refuse_refund()",
    ],
}
_ALLOW_REFUNDS = {
    "sqlite": ["DROP TRIGGER refuse_refund"],
    "postgresql": ["DROP TRIGGER refuse_refund ON api_tokens", "DROP FUNCTION refuse_refund"],
}


async def _run_ddl(engine: AsyncEngine, statements: dict[str, list[str]], **names: object) -> None:
    async with engine.begin() as connection:
        for statement in statements[engine.dialect.name]:
            await connection.exec_driver_sql(statement.format(**names))


async def test_a_job_whose_refund_fails_does_not_stall_recovery(engine: AsyncEngine) -> None:
    """One job's refund raising (in the database) is skipped; the other token's orphan is requeued
    in the same run, and the skipped job is failed and refunded once on the next run."""
    queue, tokens = _queue(engine, lease=60)
    _, bad = await tokens.create(name="bad", credits=10)
    _, good = await tokens.create(name="good", credits=10)
    [bad_job] = await _enqueue(queue, bad.id, max_attempts=1)
    [good_job] = await _enqueue(queue, good.id)
    assert (await queue.claim("dead")) is not None and (await queue.claim("dead")) is not None
    later = utcnow() + timedelta(seconds=61)
    await _run_ddl(engine, _REFUSE_REFUNDS, token=bad.id)
    try:
        assert await queue.recover_expired(now=later) == Recovered(requeued=1, skipped=1)
    finally:
        await _run_ddl(engine, _ALLOW_REFUNDS)
    assert (await queue.get(good_job)).state == JobState.DELAYED  # type: ignore[union-attr]
    assert (await queue.get(bad_job)).state == JobState.ACTIVE  # type: ignore[union-attr]
    assert (await tokens.find("bad")).credits == 0  # type: ignore[union-attr]
    assert await queue.recover_expired(now=later) == Recovered(failed=1)
    assert await queue.recover_expired(now=later) == Recovered()
    row = await queue.get(bad_job)
    assert row is not None and row.state == JobState.FAILED and row.error_code == "lost"
    assert (await tokens.find("bad")).credits == 10  # type: ignore[union-attr]


async def test_recovery_walks_every_batch_and_refunds_once_under_concurrency(engine: AsyncEngine) -> None:
    """Two nodes recovering at once, over more orphans than one batch: each job moves once."""
    queue, tokens = _queue(engine, lease=60)
    queue.recover_batch = 7
    _, info = await tokens.create(name="t", credits=300)
    out_of_attempts = await _enqueue(queue, info.id, n=20, max_attempts=1)
    retryable = await _enqueue(queue, info.id, n=5)
    while await queue.claim("dead") is not None:
        pass
    later = utcnow() + timedelta(seconds=61)
    runs = await asyncio.gather(*(queue.recover_expired(now=later) for _ in range(2)))
    assert sum(r.failed for r in runs) == len(out_of_attempts)
    assert sum(r.requeued for r in runs) == len(retryable)
    assert (await tokens.find("t")).credits == 300 - 10 * len(retryable)  # type: ignore[union-attr]


async def _credits(tokens: TokenStore, name: str) -> int:
    info = await tokens.find(name)
    assert info is not None
    return info.credits


async def test_a_refund_onto_a_full_balance_does_not_overflow_or_stall_recovery(engine: AsyncEngine) -> None:
    """Issue 9, defect 2: a token at 2^31-1 is charged, topped back up to the cap, then refunded.

    On a 32-bit credits column the refund overflowed, the job stayed active and every recovery
    run rolled back; on 64-bit columns the balance goes past the cap and everything moves on.
    """
    queue, tokens = _queue(engine, lease=0.01)
    _, big = await tokens.create(name="big", credits=MAX_CREDITS)
    _, other = await tokens.create(name="other", credits=100)
    (refunded,) = await _enqueue(queue, big.id)
    await tokens.topup(big.id, 10)  # back at the cap
    claimed = await queue.claim("w1")
    assert claimed is not None and claimed.id == refunded
    assert await queue.fail(refunded, "w1", error="Video not found: deleted", code="not_found")
    assert await _credits(tokens, "big") == MAX_CREDITS + 10
    (orphan,) = await _enqueue(queue, other.id, max_attempts=1)
    assert await queue.claim("w2") is not None
    later = utcnow() + timedelta(seconds=1)  # past the 10 ms lease, without sleeping
    assert await queue.recover_expired(now=later) == Recovered(failed=1)
    job = await queue.get(orphan)
    assert job is not None and job.state == JobState.FAILED
    assert await _credits(tokens, "other") == 100


async def test_complete_and_claim_completes_then_leases_the_next_job_to_the_same_worker(
    engine: AsyncEngine,
) -> None:
    queue, _ = _queue(engine)
    first, second, third = await _enqueue(queue, None, n=3)
    job = await queue.claim("w")
    assert job is not None and job.id == first
    completed, following = await queue.complete_and_claim(first, "w", {"n": 1})
    assert completed and following is not None and following.id == second
    assert following.state == JobState.ACTIVE and following.worker_id == "w" and following.attempts == 1
    row = await queue.get(first)
    assert row is not None and row.state == JobState.COMPLETED and row.result == {"n": 1}
    # The next claimer passes over the job already leased: it gets the third.
    other = await queue.claim("other")
    assert other is not None and other.id == third


async def test_complete_and_claim_by_a_worker_that_lost_its_lease_changes_nothing(
    engine: AsyncEngine,
) -> None:
    queue, _ = _queue(engine, lease=1)
    first, second = await _enqueue(queue, None, n=2)
    assert (await queue.claim("dead")) is not None
    later = utcnow() + timedelta(seconds=5)
    assert (await queue.recover_expired(now=later)).requeued == 1
    completed, following = await queue.complete_and_claim(first, "dead", {"stale": True})
    assert not completed and following is None
    rows = [await queue.get(i) for i in (first, second)]
    assert [r.state for r in rows if r is not None] == [JobState.DELAYED, JobState.WAITING]
    assert rows[0] is not None and rows[0].result is None
