"""Download a post or a whole channel to a folder, without the server (``shortvid download``).

The same mechanism as the server's jobs: each post is parsed and its media
downloaded in one session lease, so the media requests carry that session's
cookies; a block or timeout retries the post on a fresh session.

Files are named by an output template (``scraper.naming``) and each finished post is recorded
in a download archive (``scraper.archive``): a post in the archive, or whose files are all
already there, is skipped, so running the same download twice fetches nothing the second time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from models.video import Video
from scraper.archive import DownloadArchive
from scraper.channel import ChannelQuery
from scraper.download import Downloaded, MediaRole, download, media_plan
from scraper.errors import ScraperError
from scraper.naming import DEFAULT_TEMPLATE, OutputTemplate
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
    #: Posts not fetched: in the archive, or every file already in the folder.
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


#: Called with (file path, bytes so far, bytes expected or None, finished) as a file downloads.
FileProgress = Callable[[Path, int, int | None, bool], None]


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a download goes: the folder, how files are named, and what is already there."""

    folder: Path
    template: OutputTemplate = field(default_factory=lambda: OutputTemplate.parse(DEFAULT_TEMPLATE))
    archive: DownloadArchive | None = None

    def paths(self, video: Video) -> list[tuple[MediaRole, Path, str]]:
        """(role, target, url) of each file of the post, named by the template."""
        plan = media_plan(video)
        images = sum(1 for role, _, _ in plan if role == "image")
        numbered = iter(range(1, images + 1))
        files = []
        for role, _, url in plan:
            number = next(numbered) if role == "image" and images > 1 else None
            relative = self.template.path_for(video, ext=EXTENSIONS[role].lstrip("."), number=number)
            files.append((role, self.folder / relative, url))
        return files

    def known(self, platform: str, video_id: str | None) -> bool:
        return bool(video_id) and self.archive is not None and (platform, video_id or "") in self.archive


async def download_post(
    pool: BrowserPool,
    parsed: ParsedUrl,
    where: Destination,
    on_bytes: FileProgress = lambda path, done, total, finished: None,
) -> tuple[Video, list[Downloaded]]:
    """One post's files under ``where``, retried on fresh sessions; files already there are kept.

    Returns the post and the files written now (none when all were there)."""

    async def work(session: Session) -> tuple[Video, list[Downloaded]]:
        video = await open_item(session, parsed)
        referer = MEDIA_REFERERS[video.platform](video)
        written = []
        for role, target, url in where.paths(video):
            if target.is_file() and target.stat().st_size > 0:
                continue  # downloaded before (the archive was lost, or another tool put it there)

            def progress(done: int, total: int | None, target: Path = target) -> None:
                on_bytes(target, done, total, False)

            file = await download(session, url, target, role=role, referer=referer, on_progress=progress)
            on_bytes(target, file.size, file.size, True)
            written.append(file)
        return video, written

    return await in_fresh_sessions(pool, work)


async def download_url(
    pool: BrowserPool,
    text: str,
    where: Destination,
    *,
    query: ChannelQuery,
    concurrency: int = 2,
    on_total: Callable[[int], None] = lambda total: None,
    on_post: Callable[[str, bool], None] = lambda post, ok: None,
    on_bytes: FileProgress = lambda path, done, total, finished: None,
) -> BatchReport:
    """A video, a photo post, or a channel (per ``query``) into ``where``; posts already there are
    skipped (``report.skipped``), every post fetched now is recorded in the archive."""
    parsed = classify(text)
    report = BatchReport()
    if parsed.kind == "short":
        short = parsed

        async def follow(session: Session) -> ParsedUrl:
            return await resolve_short(session, short)

        parsed = await in_fresh_sessions(pool, follow)
    if parsed.kind != "user":
        on_total(1)
        await _one_post(pool, parsed, where, report, on_bytes, raise_errors=True)
        on_post(parsed.id or "", True)
        return report
    listing = await list_videos(pool, parsed, query)
    posts = [(v["video_id"], v["share_url"]) for v in listing["videos"]]
    on_total(len(posts))
    limit = asyncio.Semaphore(concurrency)

    async def one(video_id: str, url: str) -> None:
        async with limit:
            ok = await _one_post(pool, classify(url), where, report, on_bytes, raise_errors=False)
            on_post(video_id, ok)

    await asyncio.gather(*(one(video_id, url) for video_id, url in posts))
    return report


async def _one_post(
    pool: BrowserPool,
    parsed: ParsedUrl,
    where: Destination,
    report: BatchReport,
    on_bytes: FileProgress,
    *,
    raise_errors: bool,
) -> bool:
    """Skip, or download and record, one post; False when it failed (kept in ``report.failed``)."""
    post = parsed.id or parsed.canonical_url
    if where.known(parsed.platform, parsed.id):
        report.skipped.append(post)
        return True
    try:
        video, written = await download_post(pool, parsed, where, on_bytes)
    except ScraperError as exc:
        if raise_errors:
            raise
        report.failed[post] = exc.message
        return False
    (report.done if written else report.skipped).append(video.video_id)
    report.files.extend(written)
    if where.archive is not None:
        where.archive.add(video.platform, video.video_id)
    return True
