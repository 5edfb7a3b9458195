"""The worker loop's outcomes with handlers injected in place of the browser."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import session_factory
from models.rows import JobRow
from models.tables import Job, JobState
from models.types import utcnow
from scraper.errors import Blocked, NotFound
from server.queue import JobQueue
from server.settings import Settings
from server.tokens import TokenStore
from server.worker import Worker, backoff
from tests.jobs import enqueue_job

SETTINGS = Settings(
    retry_base=timedelta(milliseconds=10),
    heartbeat=timedelta(milliseconds=50),
    job_timeout=timedelta(seconds=1),
    poll_interval=timedelta(milliseconds=20),
)


async def _setup(
    engine: AsyncEngine, handler: Any, *, lease: float = 30
) -> tuple[JobQueue, TokenStore, Worker, str]:
    sessions = session_factory(engine)
    queue = JobQueue(sessions, lease=timedelta(seconds=lease), result_ttl=timedelta(hours=1))
    tokens = TokenStore(sessions)
    await tokens.create(name="t", credits=100)
    info = await tokens.find("t")
    assert info is not None
    job = await queue.enqueue(
        token_id=info.id,
        job_type="test",
        platform="douyin",
        url="https://www.douyin.com/video/71234567890",
        payload={},
        cost=10,
        max_attempts=3,
    )
    worker = Worker(
        queue=queue,
        context=None,
        settings=SETTINGS,
        wakeup=asyncio.Event(),
        handlers={"test": handler},  # type: ignore[arg-type]
    )
    return queue, tokens, worker, job.id


async def _run_until_finished(queue: JobQueue, worker: Worker, job_id: str) -> JobRow:
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(15):
            while (job := await queue.get(job_id)) is not None and job.state not in JobState.FINISHED:
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
    assert job is not None
    return job


async def test_blocked_then_ok_retries_and_completes(engine: AsyncEngine) -> None:
    calls: list[int] = []

    async def flaky(pool: Any, job: Job) -> dict[str, Any]:
        calls.append(job.attempts)
        if job.attempts == 1:
            raise Blocked("captcha page")
        return {"ok": True}

    queue, tokens, worker, job_id = await _setup(engine, flaky)
    job = await _run_until_finished(queue, worker, job_id)
    assert job.state == JobState.COMPLETED and job.result == {"ok": True}
    assert calls == [1, 2]
    assert (await tokens.find("t")).credits == 90  # type: ignore[union-attr]


async def test_not_found_fails_at_once_and_refunds(engine: AsyncEngine) -> None:
    async def missing(pool: Any, job: Job) -> dict[str, Any]:
        raise NotFound("item doesn't exist")

    queue, tokens, worker, job_id = await _setup(engine, missing)
    job = await _run_until_finished(queue, worker, job_id)
    assert job.state == JobState.FAILED and job.attempts == 1
    assert job.error == "Video not found: item doesn't exist"
    assert (await tokens.find("t")).credits == 100  # type: ignore[union-attr]


async def test_always_blocked_gives_up_after_max_attempts(engine: AsyncEngine) -> None:
    async def blocked(pool: Any, job: Job) -> dict[str, Any]:
        raise Blocked("verify page")

    queue, tokens, worker, job_id = await _setup(engine, blocked)
    job = await _run_until_finished(queue, worker, job_id)
    assert job.state == JobState.FAILED and job.attempts == 3
    assert (
        job.error is not None
        and job.error.startswith("Blocked by the platform")
        and "3 attempts" in job.error
    )
    assert (await tokens.find("t")).credits == 100  # type: ignore[union-attr]


async def test_hung_handler_is_stopped_by_the_job_timeout(engine: AsyncEngine) -> None:
    async def hang(pool: Any, job: Job) -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {}

    queue, _, worker, job_id = await _setup(engine, hang)
    job = await _run_until_finished(queue, worker, job_id)
    assert job.state == JobState.FAILED and job.error_code == "timeout"


async def test_unexpected_exception_never_leaks_details(engine: AsyncEngine) -> None:
    async def bug(pool: Any, job: Job) -> dict[str, Any]:
        raise KeyError("secret internals")

    queue, _, worker, job_id = await _setup(engine, bug)
    job = await _run_until_finished(queue, worker, job_id)
    assert job.state == JobState.FAILED and "secret" not in (job.error or "")


async def test_lost_lease_abandons_work_without_overwriting(engine: AsyncEngine) -> None:
    started = asyncio.Event()

    async def slow(pool: Any, job: Job) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(0.5)
        return {"stale": True}

    queue, _, worker, job_id = await _setup(engine, slow, lease=30)
    claimed = await queue.claim(worker.name)
    assert claimed is not None
    processing = asyncio.create_task(worker.process(claimed))
    await started.wait()
    # Another node decides the lease expired and a new owner takes the job.
    later = utcnow() + timedelta(seconds=31)
    await queue.recover_expired(now=later)
    assert (await queue.claim("new-owner", now=later)) is not None
    await processing
    job = await queue.get(job_id)
    assert job is not None and job.state == JobState.ACTIVE and job.worker_id == "new-owner"
    assert job.result is None


def test_backoff_doubles_and_caps() -> None:
    settings = Settings(retry_base=timedelta(seconds=2), retry_cap=timedelta(seconds=10))
    assert [backoff(settings, n).total_seconds() for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]


async def test_shutdown_hands_the_running_job_back_without_spending_an_attempt(engine: AsyncEngine) -> None:
    started = asyncio.Event()

    async def slow(pool: Any, job: Job) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(3600)
        return {}

    queue, _, worker, job_id = await _setup(engine, slow)
    task = asyncio.create_task(worker.run())
    await started.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    job = await queue.get(job_id)
    assert job is not None and job.state == JobState.WAITING and job.attempts == 0 and job.worker_id is None
    assert (await queue.claim("next")) is not None


async def test_a_database_error_while_finishing_does_not_kill_the_loop(engine: AsyncEngine) -> None:
    async def ok(pool: Any, job: Job) -> dict[str, Any]:
        return {"ok": True}

    queue, _, worker, first_id = await _setup(engine, ok)
    real_complete = queue.complete_and_claim
    failures = [RuntimeError("database went away")]

    async def flaky_complete(*args: Any, **kwargs: Any) -> tuple[bool, JobRow | None]:
        if failures:
            raise failures.pop()
        return await real_complete(*args, **kwargs)

    queue.complete_and_claim = flaky_complete  # type: ignore[method-assign]
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(10):
            while failures:
                await asyncio.sleep(0.02)
        second = await enqueue_job(queue, 1, job_type="test")
        async with asyncio.timeout(10):
            while (job := await queue.get(second.id)) is not None and job.state != JobState.COMPLETED:
                await asyncio.sleep(0.02)
        assert not task.done()
        stuck = await queue.get(first_id)
        assert (
            stuck is not None and stuck.state == JobState.ACTIVE
        )  # recovery takes it up when the lease expires
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_busy_worker_claims_each_next_job_as_it_completes_the_last(engine: AsyncEngine) -> None:
    seen: list[str] = []

    async def ok(pool: Any, job: Job) -> dict[str, Any]:
        seen.append(job.id)
        return {"video_id": job.url.rsplit("/", 1)[-1]}

    queue, _, worker, first_id = await _setup(engine, ok)
    rest = [(await enqueue_job(queue, n, job_type="test")).id for n in range(4)]
    claimed_on_completion: list[str] = []
    real = queue.complete_and_claim

    async def recording(*args: Any, **kwargs: Any) -> tuple[bool, JobRow | None]:
        completed, following = await real(*args, **kwargs)
        if following is not None:
            claimed_on_completion.append(following.id)
        return completed, following

    queue.complete_and_claim = recording  # type: ignore[method-assign]
    last = await _run_until_finished(queue, worker, rest[-1])
    assert last.state == JobState.COMPLETED and last.result == {"video_id": "7000000000000000003"}
    assert seen == [first_id, *rest]  # in order, each once
    assert claimed_on_completion == rest  # every job after the first came with its predecessor's commit
    assert worker.processed == 5
