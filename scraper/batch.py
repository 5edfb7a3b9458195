"""Download a post or a whole channel to a folder, without the server (``shortvid download``).

The same mechanism as the server's jobs: each post is parsed and its media
downloaded in one session lease, so the media requests carry that session's
cookies; a block or timeout retries the post on a fresh session.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scraper.channel import ChannelQuery
from scraper.download import Downloaded, download, media_plan
from scraper.errors import ScraperError
from scraper.pool import BrowserPool
from scraper.service import MEDIA_REFERERS, in_fresh_sessions, list_videos, open_item, resolve_short
from scraper.session import Session
from scraper.urls import ParsedUrl, classify

EXTENSIONS = {"video": ".mp4", "image": ".jpg", "music": ".mp3"}


@dataclass
class BatchReport:
    """What a batch download did, post by post."""

    files: list[Downloaded] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


def _safe(text: str | None) -> str:
    kept = "".join(c if c.isalnum() or c in "._-" else "_" for c in (text or ""))[:64].strip("._")
    return kept or "unknown"


async def download_post(pool: BrowserPool, parsed: ParsedUrl, folder: Path) -> list[Downloaded]:
    """One post's files under ``folder/<platform>/<author>/<id>/``, retried on fresh sessions."""

    async def work(session: Session) -> list[Downloaded]:
        video = await open_item(session, parsed)
        author = video.author.unique_id or video.author.sec_uid or video.author.uid
        base = folder / _safe(video.platform) / _safe(author) / _safe(video.video_id)
        referer = MEDIA_REFERERS[video.platform](video)
        files = []
        for role, name, url in media_plan(video):
            target = base / f"{name}.{uuid.uuid4().hex[:8]}{EXTENSIONS[role]}"
            files.append(await download(session, url, target, role=role, referer=referer))
        return files

    return await in_fresh_sessions(pool, work)


async def download_url(
    pool: BrowserPool,
    text: str,
    folder: Path,
    *,
    query: ChannelQuery,
    concurrency: int = 2,
    on_total: Callable[[int], None] = lambda total: None,
    on_post: Callable[[str, bool], None] = lambda post, ok: None,
) -> BatchReport:
    """A video, a photo post, or a channel (per ``query``) into ``folder``."""
    parsed = classify(text)
    report = BatchReport()
    if parsed.kind == "short":
        short = parsed

        async def follow(session: Session) -> ParsedUrl:
            return await resolve_short(session, short)

        parsed = await in_fresh_sessions(pool, follow)
    if parsed.kind != "user":
        on_total(1)
        report.files += await download_post(pool, parsed, folder)
        report.done.append(parsed.id or parsed.canonical_url)
        on_post(parsed.id or "", True)
        return report
    listing = await list_videos(pool, parsed, query)
    posts = [(v["video_id"], v["share_url"]) for v in listing["videos"]]
    on_total(len(posts))
    limit = asyncio.Semaphore(concurrency)

    async def one(video_id: str, url: str) -> None:
        async with limit:
            try:
                report.files.extend(await download_post(pool, classify(url), folder))
                report.done.append(video_id)
                on_post(video_id, True)
            except ScraperError as exc:
                report.failed[video_id] = exc.message
                on_post(video_id, False)

    await asyncio.gather(*(one(video_id, url) for video_id, url in posts))
    return report
