"""A job in the queue, as the tests of the queue, the worker and recovery make them."""

from __future__ import annotations

from models.rows import JobRow
from server.queue import JobQueue


def douyin_video(n: int) -> str:
    """The n-th distinct Douyin video URL (ids are 19 digits)."""
    return f"https://www.douyin.com/video/7{n:018d}"


async def enqueue_job(
    queue: JobQueue,
    n: int = 0,
    *,
    token_id: int | None = None,
    cost: int = 0,
    job_type: str = "video.parse",
    max_attempts: int = 3,
) -> JobRow:
    """Charge ``cost`` to ``token_id`` (if any) and queue a job for the n-th Douyin video."""
    return await queue.enqueue(
        token_id=token_id,
        job_type=job_type,
        platform="douyin",
        url=douyin_video(n),
        payload={},
        cost=cost,
        max_attempts=max_attempts,
    )
