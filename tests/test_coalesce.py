"""Coalescing and the short cache: identical requests share one scrape, each job keeps its own charge."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import session_factory
from models.tables import Job, JobState
from models.types import utcnow
from scraper.errors import Blocked, NotFound
from server.coalesce import Coalescer, dedupe_key
from server.keys import QUEUE, TOKENS
from server.queue import JobQueue
from server.settings import Settings
from server.tokens import TokenStore
from server.worker import Worker
from tests.e2e import start_app

URL = "https://www.douyin.com/video/7071967230287744267"
SETTINGS = Settings(
    heartbeat=timedelta(milliseconds=50),
    job_timeout=timedelta(seconds=10),
    poll_interval=timedelta(milliseconds=20),
)


class Stub:
    """A handler that counts its calls (the scrapes) and takes a while, so requests pile up.

    With a ``gate``, a scrape waits for it instead (the test opens it once followers are in flight).
    """

    def __init__(
        self, *, delay: float = 0.3, error: Exception | None = None, gate: asyncio.Event | None = None
    ) -> None:
        self.calls = 0
        self.delay = delay
        self.error = error
        self.gate = gate

    async def __call__(self, ctx: Any, job: Job) -> dict[str, Any]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        else:
            await asyncio.sleep(self.delay)  # a scrape's duration, not a wait for anything
        if self.error is not None:
            raise self.error
        return {"video_id": job.url.rsplit("/", 1)[-1], "scrape": self.calls}


@contextlib.asynccontextmanager
async def running(
    queue: JobQueue, settings: Settings, stub: Stub, n: int = 2, *, one_process: bool = False
) -> AsyncIterator[list[Worker]]:
    """``n`` workers with ``stub`` for every type: as on several nodes (they share only the database),
    or ``one_process`` (one coalescer, so followers are woken by the leader instead of polling)."""
    handlers = {t: stub for t in ("video.parse", "channel.videos", "video.download")}
    coalescer = Coalescer(queue, settings) if one_process else None
    workers = [
        Worker(
            queue=queue,
            context=None,  # type: ignore[arg-type]
            settings=settings,
            wakeup=asyncio.Event(),
            handlers=handlers,
            coalescer=coalescer,
        )
        for _ in range(n)
    ]
    tasks = [asyncio.ensure_future(w.run()) for w in workers]
    try:
        yield workers
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def in_state(queue: JobQueue, ids: list[str], state: str) -> None:
    """Wait until every job is in ``state`` (bounded, so a broken queue fails the test)."""
    async with asyncio.timeout(30):
        while True:
            jobs = [await queue.get(i) for i in ids]
            if all(job is not None and job.state == state for job in jobs):
                return
            await asyncio.sleep(0.02)


async def finished(queue: JobQueue, ids: list[str]) -> list[Job]:
    async with asyncio.timeout(30):
        while True:
            jobs = [await queue.get(i) for i in ids]
            if all(j is not None and j.state in JobState.FINISHED for j in jobs):
                return [j for j in jobs if j is not None]
            await asyncio.sleep(0.05)


# ---- the queue and worker on both engines -----------------------------------------------------


class Db:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        sessions = session_factory(engine)
        self.settings = settings
        self.queue = JobQueue(sessions, lease=timedelta(seconds=30), result_ttl=timedelta(hours=1))
        self.tokens = TokenStore(sessions)

    async def token(self) -> int:
        await self.tokens.create(name="t", credits=10_000)
        info = await self.tokens.find("t")
        assert info is not None and info.id is not None
        return info.id

    async def submit(
        self, token_id: int, *, url: str = URL, job_type: str = "video.parse", **options: Any
    ) -> str:
        job = await self.queue.enqueue(
            token_id=token_id,
            job_type=job_type,
            platform="douyin",
            url=url,
            payload={"canonical_url": url, **options},
            cost=10,
            max_attempts=3,
            dedupe_key=dedupe_key(self.settings, job_type, url, options),
        )
        return job.id

    async def credits(self) -> int:
        info = await self.tokens.find("t")
        assert info is not None
        return info.credits


async def test_a_burst_of_identical_jobs_is_one_scrape_each_job_charged(engine: AsyncEngine) -> None:
    db = Db(engine, SETTINGS)
    token = await db.token()
    ids = [await db.submit(token) for _ in range(100)]
    stub = Stub()
    async with running(db.queue, SETTINGS, stub):
        jobs = await finished(db.queue, ids)
        assert stub.calls == 1
        assert all(j.state == JobState.COMPLETED and j.cost == 10 for j in jobs)
        assert await db.credits() == 10_000 - 100 * 10
        shared = [j for j in jobs if j.result and j.result.get("cached") is True]
        assert len(shared) == 99
        assert all(j.result is not None and j.result["scrape"] == 1 for j in jobs)
        (own,) = [j for j in jobs if j not in shared]
        assert own.result is not None and "cached" not in own.result

        # Within the TTL: a later request reuses the result without a scrape.
        (later,) = await finished(db.queue, [await db.submit(token)])
        assert later.result is not None and later.result["cached"] is True and stub.calls == 1

        # refresh bypasses the cache; other options do not coalesce.
        (fresh,) = await finished(db.queue, [await db.submit(token, refresh=True)])
        assert fresh.result is not None and "cached" not in fresh.result and stub.calls == 2
        other_url = URL.replace("7071967230287744267", "7071967230287744268")
        (other,) = await finished(db.queue, [await db.submit(token, url=other_url)])
        assert other.result is not None and "cached" not in other.result and stub.calls == 3


async def test_after_the_ttl_a_new_scrape(engine: AsyncEngine) -> None:
    settings = SETTINGS.with_overrides(cache_ttl_item=timedelta(milliseconds=300))
    db = Db(engine, settings)
    token = await db.token()
    stub = Stub(delay=0)
    async with running(db.queue, settings, stub):
        await finished(db.queue, [await db.submit(token)])
        (again,) = await finished(db.queue, [await db.submit(token)])
        assert again.result is not None and again.result["cached"] is True and stub.calls == 1
        await asyncio.sleep(0.4)
        (late,) = await finished(db.queue, [await db.submit(token)])
        assert late.result is not None and "cached" not in late.result and stub.calls == 2


async def test_channel_options_and_downloads(engine: AsyncEngine) -> None:
    db = Db(engine, SETTINGS)
    token = await db.token()
    profile = "https://www.douyin.com/user/MS4wLjABAAAA"
    stub = Stub(delay=0.1)
    async with running(db.queue, SETTINGS, stub):
        common = {"job_type": "channel.videos", "url": profile, "tz": "Asia/Shanghai", "since": None}
        ids = [await db.submit(token, count=20, **common) for _ in range(3)]
        ids += [await db.submit(token, count=30, **common)]
        ids += [await db.submit(token, count=20, **{**common, "since": "2026-01-01T00:00:00+08:00"})]
        jobs = await finished(db.queue, ids)
        assert stub.calls == 3
        assert sum(bool(j.result and j.result.get("cached")) for j in jobs) == 2
        # Downloads never share (each job its own files).
        downloads = await finished(
            db.queue, [await db.submit(token, job_type="video.download") for _ in range(3)]
        )
        assert stub.calls == 6 and all(j.dedupe_key is None for j in downloads)


async def test_cache_off_is_one_scrape_per_job(engine: AsyncEngine) -> None:
    settings = SETTINGS.with_overrides(cache=False)
    db = Db(engine, settings)
    token = await db.token()
    stub = Stub(delay=0.05)
    async with running(db.queue, settings, stub):
        jobs = await finished(db.queue, [await db.submit(token) for _ in range(5)])
    assert stub.calls == 5 and not any(j.result and j.result.get("cached") for j in jobs)


async def test_followers_of_a_failed_leader_fail_the_same_and_are_refunded(engine: AsyncEngine) -> None:
    db = Db(engine, SETTINGS)
    token = await db.token()
    ids = [await db.submit(token) for _ in range(10)]
    stub = Stub(error=NotFound("item doesn't exist"), gate=asyncio.Event())
    # Ten workers: the leader's scrape waits until all ten jobs are in flight, nine of them following.
    async with running(db.queue, SETTINGS, stub, n=10):
        await in_state(db.queue, ids, JobState.ACTIVE)
        assert stub.gate is not None
        stub.gate.set()
        jobs = await finished(db.queue, ids)
        assert stub.calls == 1
        assert all(j.state == JobState.FAILED for j in jobs)
        assert len({(j.error, j.error_code) for j in jobs}) == 1
        assert await db.credits() == 10_000  # every job refunded its own charge
        # A failure is not cached: the next request scrapes again.
        stub.error = None
        (again,) = await finished(db.queue, [await db.submit(token)])
        assert again.state == JobState.COMPLETED and "cached" not in (again.result or {}) and stub.calls == 2


async def test_taking_the_lead_is_atomic(engine: AsyncEngine) -> None:
    """Twenty active jobs with one key race for the lead at once: exactly one gets it, on both
    engines, and it is free again when that job ends."""
    db = Db(engine, SETTINGS)
    token = await db.token()
    for _ in range(20):
        await db.submit(token)
    claims = [await db.queue.claim(f"w{n}") for n in range(20)]
    assert all(c is not None for c in claims)
    key = claims[0].dedupe_key if claims[0] else None
    assert key is not None
    since = utcnow() - timedelta(minutes=5)
    won = await asyncio.gather(
        *(db.queue.lead(c.id, c.worker_id or "", key, fresh_since=since) for c in claims if c is not None)
    )
    assert sum(won) == 1
    (leader,) = [c for c, w in zip(claims, won, strict=True) if w and c is not None]
    assert await db.queue.leader(key) == leader.id
    owner = leader.worker_id or ""
    await db.queue.retry_later(leader.id, owner, error="x", code="timeout", delay=timedelta())
    assert await db.queue.leader(key) is None
    other = next(c for c in claims if c is not None and c.id != leader.id)
    assert await db.queue.lead(other.id, other.worker_id or "", key, fresh_since=since)


async def test_followers_are_woken_by_a_leader_in_their_process(engine: AsyncEngine) -> None:
    """One process: followers wait on the leader's end, not on the poll (set far beyond the test's
    bound, so a follower that polled would never finish in time)."""
    settings = SETTINGS.with_overrides(poll_interval=timedelta(minutes=10))
    db = Db(engine, settings)
    token = await db.token()
    ids = [await db.submit(token) for _ in range(6)]
    stub = Stub(gate=asyncio.Event())
    async with running(db.queue, settings, stub, n=6, one_process=True):
        await in_state(db.queue, ids, JobState.ACTIVE)
        assert stub.gate is not None
        stub.gate.set()
        jobs = await finished(db.queue, ids)
    assert stub.calls == 1 and sum(j.shared for j in jobs) == 5
    assert all(j.state == JobState.COMPLETED for j in jobs)


async def test_a_leader_that_will_retry_hands_the_scrape_to_a_follower(engine: AsyncEngine) -> None:
    """A retryable failure of the leader ends its lead: a follower takes over and scrapes; the old
    leader, retried later, reuses that result. Nobody fails."""
    settings = SETTINGS.with_overrides(retry_base=timedelta(milliseconds=50))
    db = Db(engine, settings)
    token = await db.token()
    ids = [await db.submit(token) for _ in range(3)]

    class FlakyOnce(Stub):
        async def __call__(self, ctx: Any, job: Job) -> dict[str, Any]:
            if self.calls == 0:
                self.calls += 1
                assert self.gate is not None
                await self.gate.wait()
                raise Blocked("captcha")
            return await super().__call__(ctx, job)

    stub = FlakyOnce(delay=0, gate=asyncio.Event())
    async with running(db.queue, settings, stub, n=3):
        await in_state(db.queue, ids, JobState.ACTIVE)
        assert stub.gate is not None
        stub.gate.set()
        jobs = await finished(db.queue, ids)
    assert stub.calls == 2  # the failed attempt and the follower's scrape
    assert all(j.state == JobState.COMPLETED for j in jobs)
    assert sum(not j.shared for j in jobs) == 1


async def test_followers_of_a_leader_whose_worker_died_take_over(engine: AsyncEngine) -> None:
    """The leader's worker dies holding the lead; recovery (lease expired) ends the lead, a
    follower on another node sees it by its bounded poll and scrapes; the dead leader's job, taken
    up again, reuses that result. Both jobs end completed, each with its own charge."""
    db = Db(engine, SETTINGS)
    token = await db.token()
    dead_queue = JobQueue(session_factory(engine), lease=timedelta(seconds=1), result_ttl=timedelta(hours=1))
    first = await db.submit(token)
    claimed = await dead_queue.claim("dead-node:1:0")
    assert claimed is not None and claimed.id == first and claimed.dedupe_key is not None
    assert await dead_queue.lead(first, "dead-node:1:0", claimed.dedupe_key, fresh_since=utcnow())
    second = await db.submit(token)
    stub = Stub(delay=0)
    async with running(db.queue, SETTINGS, stub, n=1):
        await in_state(db.queue, [second], JobState.ACTIVE)  # following the dead leader
        assert stub.calls == 0
        recovered = await db.queue.recover_expired(now=utcnow() + timedelta(seconds=2))
        assert recovered.requeued == 1
        jobs = await finished(db.queue, [first, second])
    assert stub.calls == 1
    assert [j.state for j in jobs] == [JobState.COMPLETED, JobState.COMPLETED]
    assert jobs[0].shared and jobs[0].attempts == 2 and not jobs[1].shared
    assert await db.credits() == 10_000 - 2 * 10


# ---- over HTTP --------------------------------------------------------------------------------


async def _api(tmp_path: Path, **changes: Any) -> TestClient:
    settings = SETTINGS.with_overrides(data_dir=tmp_path, role="api", rate_limit=0, **changes)
    return await start_app(settings)


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[TestClient]:
    client = await _api(tmp_path)
    yield client
    await client.close()


async def _submit(client: TestClient, token: str, path: str, body: dict[str, Any]) -> str:
    response = await client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    payload = await response.json()
    assert response.status == 200, payload
    assert set(payload["data"]) == {"jobId", "message"}
    return str(payload["data"]["jobId"])


async def _views(client: TestClient, ids: list[str]) -> list[dict[str, Any]]:
    views = []
    for job_id in ids:
        body = await (await client.get(f"/api/job/{job_id}")).json()
        assert body["success"] is True
        views.append(body["data"])
    return views


async def test_http_burst_shares_one_scrape_and_keeps_the_vendor_shape(http: TestClient) -> None:
    token, _ = await http.app[TOKENS].create(name="c", credits=10_000)
    queue = http.app[QUEUE]
    ids = await asyncio.gather(
        *(_submit(http, token, "/api/video/parse", {"url": URL + "?x=1"}) for _ in range(100))
    )
    pending = await _views(http, list(ids[:1]))
    assert pending[0]["state"] == "waiting" and pending[0]["data"] == {"type": "video.parse", "url": URL}
    stub = Stub()
    async with running(queue, SETTINGS, stub):
        await finished(queue, list(ids))
        refreshed = await _submit(http, token, "/api/video/parse", {"url": URL, "refresh": True})
        await finished(queue, [refreshed])
        cached = await _submit(http, token, "/api/video/parse", {"url": URL})
        await finished(queue, [cached])
    views = await _views(http, [*ids, refreshed, cached])
    assert stub.calls == 2
    assert all(set(v) == {"id", "state", "result"} and v["state"] == "completed" for v in views)
    assert sum(v["result"].get("cached") is True for v in views[:100]) == 99
    assert "cached" not in views[100]["result"] and views[101]["result"]["cached"] is True
    info = await http.app[TOKENS].find("c")
    assert info is not None and info.credits == 10_000 - 102 * 10


async def test_http_cache_off(tmp_path: Path) -> None:
    client = await _api(tmp_path, cache=False)
    try:
        token, _ = await client.app[TOKENS].create(name="c", credits=10_000)
        ids = [await _submit(client, token, "/api/video/parse", {"url": URL}) for _ in range(4)]
        stub = Stub(delay=0.05)
        async with running(client.app[QUEUE], SETTINGS, stub):
            await finished(client.app[QUEUE], ids)
        views = await _views(client, ids)
        assert stub.calls == 4 and not any(v["result"].get("cached") for v in views)
    finally:
        await client.close()
