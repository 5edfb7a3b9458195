"""What each job type does, given a browser pool: the worker's dispatch table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from models.tables import Job
from scraper.pool import BrowserPool
from scraper.service import parse_video
from scraper.urls import classify

JobHandler = Callable[[BrowserPool, Job], Awaitable[dict[str, Any]]]


async def video_parse(pool: BrowserPool, job: Job) -> dict[str, Any]:
    return await parse_video(pool, classify(job.url))


HANDLERS: dict[str, JobHandler] = {
    "video.parse": video_parse,
    "tiktok.video.parse": video_parse,
}
