"""The console's reads of the jobs table, on SQLite and PostgreSQL: scope by token, filters, paging,
counts by state, the chart's hour."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import session_factory
from models.types import utcnow
from server.console.queries import ConsoleQueries, JobFilter
from server.queue import JobQueue
from server.tokens import TokenStore


async def test_jobs_counts_and_activity_on_every_engine(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    tokens = TokenStore(sessions)
    queue = JobQueue(sessions, lease=timedelta(seconds=30), result_ttl=timedelta(hours=1))
    _, alice = await tokens.create(name="alice", credits=1000)
    _, bob = await tokens.create(name="bob", credits=1000)
    made: dict[str, list[str]] = {"alice": [], "bob": []}
    for owner, job_type in (
        ("alice", "video.parse"),
        ("alice", "tiktok.channel.videos"),
        ("bob", "video.parse"),
    ):
        token = alice if owner == "alice" else bob
        job = await queue.enqueue(
            token_id=token.id,
            job_type=job_type,
            platform="tiktok" if job_type.startswith("tiktok.") else "douyin",
            url="https://www.douyin.com/video/1",
            payload={},
            cost=10,
            max_attempts=1,
        )
        made[owner].append(job.id)
    claimed = await queue.claim("w")
    assert claimed is not None and claimed.id == made["alice"][0]
    assert await queue.fail(claimed.id, "w", error="Video not found: gone", code="not_found")

    queries = ConsoleQueries(engine)
    mine = await queries.jobs(JobFilter(token_id=alice.id))
    assert [line.id for line in mine] == made["alice"][::-1]  # newest first, alice's only
    everyone = await queries.jobs(JobFilter(token_id=None))
    assert {line.id for line in everyone} == {*made["alice"], *made["bob"]}
    failed = await queries.jobs(JobFilter(token_id=alice.id, state="failed"))
    assert [(line.id, line.error_code) for line in failed] == [(made["alice"][0], "not_found")]
    typed = await queries.jobs(JobFilter(token_id=None, job_type="video.parse"))
    assert {line.id for line in typed} == {made["alice"][0], made["bob"][0]}
    older = await queries.jobs(JobFilter(token_id=alice.id, before=mine[0].created_at))
    assert [line.id for line in older] == [made["alice"][0]]
    assert len(await queries.jobs(JobFilter(token_id=None), limit=1)) == 2  # one more: "there are older"

    day = await queries.states_since(alice.id, utcnow() - timedelta(hours=24))
    assert day == {"waiting": 1, "active": 0, "delayed": 0, "completed": 0, "failed": 1}
    assert sum((await queries.states_since(None, utcnow() - timedelta(hours=24))).values()) == 3
    assert await queries.states_since(None, utcnow() + timedelta(minutes=1)) == dict.fromkeys(day, 0)
    accepted, failures = await queries.activity(utcnow() - timedelta(hours=1))
    assert len(accepted) == 3 and len(failures) == 1
