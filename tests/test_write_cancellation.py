"""A write cancelled half-way (a job's timeout, a stopped heartbeat, a lost lease) never leaves the
database locked: the transaction ends on its own and the next writer goes at once.

Before ``models.db.uncancellable``, a cancellation inside ``BEGIN IMMEDIATE`` on SQLite left the
write lock with a dropped connection, and every later writer waited out the 30 s busy timeout
(seen in CI as a job timing out in ``JobQueue.lead``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import session_factory
from models.tables import JobState
from server.queue import JobQueue
from tests.jobs import enqueue_job


async def test_writes_cancelled_at_any_point_leave_no_lock(engine: AsyncEngine) -> None:
    queue = JobQueue(session_factory(engine), lease=timedelta(seconds=30), result_ttl=timedelta(hours=1))
    job = await enqueue_job(queue)
    claimed = await queue.claim("w1", now=job.created_at)
    assert claimed is not None and claimed.id == job.id
    for steps in range(200):  # cancel the write after 0, 1, 2 … turns of the event loop
        write = asyncio.ensure_future(queue.heartbeat(job.id, "w1") if steps % 2 else enqueue_job(queue))
        for _ in range(steps % 50):
            await asyncio.sleep(0)
        write.cancel()
        # A bound for liveness, not a timing claim: a leaked lock would hold this for 30 s.
        async with asyncio.timeout(10):
            assert await queue.heartbeat(job.id, "w1")
    async with asyncio.timeout(10):
        assert await queue.complete(job.id, "w1", {"video_id": "1"})
    done = await queue.get(job.id)
    assert done is not None and done.state == JobState.COMPLETED
