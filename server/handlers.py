"""What each job type does: the worker's dispatch table."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from models.rows import JobRow
from models.tables import DownloadItem, ItemState, StoredFile
from scraper.channel import ChannelQuery
from scraper.errors import ScraperError, Unavailable
from scraper.pacing import ITEM
from scraper.service import ItemJob, in_fresh_sessions, list_videos, open_item, parse_video
from scraper.session import Session
from scraper.urls import classify
from server.cursors import cursor_maker, resume_of
from server.error_map import job_error
from server.media import JobContext, download_result, fetch_media
from server.settings import Settings

log = logging.getLogger(__name__)

#: Handlers read the job's row as claimed (a frozen ``JobRow``, no ORM instance to build per job).
JobHandler = Callable[[JobContext, JobRow], Awaitable[dict[str, Any]]]


def channel_query(job: JobRow, settings: Settings | None = None) -> ChannelQuery:
    """The query fixed when the request was accepted ("today" means that day, even on a retry),
    continued from the request's cursor if it had one. With ``settings`` a result with more left
    carries the cursor of its next page (a listing job's; a download task has no such result)."""
    payload = job.payload
    since = payload.get("since")
    return ChannelQuery(
        count=int(payload["count"]),
        since=datetime.fromisoformat(since) if since else None,
        resume=resume_of(payload),
        make_cursor=cursor_maker(job, settings) if settings is not None else None,
    )


async def video_parse(ctx: JobContext, job: JobRow) -> dict[str, Any]:
    return await parse_video(ctx.pool, classify(job.url))


async def channel_videos(ctx: JobContext, job: JobRow) -> dict[str, Any]:
    return await list_videos(ctx.pool, classify(job.url), channel_query(job, ctx.settings))


async def video_download(ctx: JobContext, job: JobRow) -> dict[str, Any]:
    """Parse and download in one session lease, so the media request carries the parse's cookies."""
    parsed, attempts = classify(job.url), ItemJob()

    async def work(session: Session) -> dict[str, Any]:
        video = await open_item(session, parsed, attempts)
        return download_result(video, await fetch_media(session, video, ctx.files, job_id=job.id))

    return await in_fresh_sessions(ctx.pool, work, family=ITEM)


async def channel_download(ctx: JobContext, job: JobRow) -> dict[str, Any]:
    """List the channel once, then download each post not yet done, a few at a time.

    A resumed task (restart, dead worker) finds its items and skips the finished ones.
    """
    items = await ctx.tasks.items(job.id)
    if not items:
        listing = await list_videos(ctx.pool, classify(job.url), channel_query(job))
        items = await ctx.tasks.add_items(job.id, listing["videos"])
    limit = asyncio.Semaphore(ctx.settings.download_concurrency)

    async def one(item: DownloadItem) -> None:
        async with limit:
            await _download_item(ctx, job, item)

    await asyncio.gather(*(one(item) for item in items if item.state != ItemState.DONE))
    await ctx.files.unpin_job(job.id)
    counts = await ctx.tasks.counts(job.id)
    if counts.total and counts.done == 0:
        raise Unavailable(f"none of the {counts.total} posts could be downloaded")
    return {"total": counts.total, "done": counts.done, "failed": counts.failed}


async def _download_item(ctx: JobContext, job: JobRow, item: DownloadItem) -> None:
    """One post: parse and download in one session lease; blocks retry on fresh sessions."""
    assert item.id is not None
    parsed, attempts = classify(item.url), ItemJob()

    async def work(session: Session) -> list[StoredFile]:
        video = await open_item(session, parsed, attempts)
        return await fetch_media(session, video, ctx.files, job_id=job.id, pinned=True)

    try:
        rows = await in_fresh_sessions(ctx.pool, work, family=ITEM)
    except ScraperError as exc:
        message, _ = job_error(exc)
        log.info("task item failed", extra={"task": job.id, "video": item.video_id, "error": message})
        await ctx.tasks.finish_item(item.id, state=ItemState.FAILED, error=message)
        return
    await ctx.tasks.finish_item(
        item.id, state=ItemState.DONE, size=sum(r.size for r in rows), file_ids=[r.id for r in rows]
    )


HANDLERS: dict[str, JobHandler] = {
    "video.parse": video_parse,
    "tiktok.video.parse": video_parse,
    "channel.videos": channel_videos,
    "tiktok.channel.videos": channel_videos,
    "video.download": video_download,
    "tiktok.video.download": video_download,
    "channel.download": channel_download,
    "tiktok.channel.download": channel_download,
}
