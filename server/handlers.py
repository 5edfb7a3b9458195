"""What each job type does, given a browser pool: the worker's dispatch table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from models.tables import Job
from scraper.channel import ChannelQuery
from scraper.pool import BrowserPool
from scraper.service import list_videos, parse_video
from scraper.urls import classify

JobHandler = Callable[[BrowserPool, Job], Awaitable[dict[str, Any]]]


async def video_parse(pool: BrowserPool, job: Job) -> dict[str, Any]:
    return await parse_video(pool, classify(job.url))


def channel_query(payload: dict[str, Any]) -> ChannelQuery:
    """The query fixed when the request was accepted ("today" means that day, even on a retry)."""
    since = payload.get("since")
    return ChannelQuery(count=int(payload["count"]), since=datetime.fromisoformat(since) if since else None)


async def channel_videos(pool: BrowserPool, job: Job) -> dict[str, Any]:
    return await list_videos(pool, classify(job.url), channel_query(job.payload))


HANDLERS: dict[str, JobHandler] = {
    "video.parse": video_parse,
    "tiktok.video.parse": video_parse,
    "channel.videos": channel_videos,
    "tiktok.channel.videos": channel_videos,
}
