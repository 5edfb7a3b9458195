"""Download a parsed post's media into the file store, through the session that parsed it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from models.tables import StoredFile
from models.video import Video, iso_utc_ms
from scraper.download import MediaRole, download, media_plan
from scraper.pool import BrowserPool
from scraper.service import MEDIA_REFERERS
from scraper.session import Session
from server.files import FileStore
from server.settings import Settings
from server.tasks import TaskStore

FILE_ROUTE = "/api/files/"
_DEFAULT_EXT: dict[MediaRole, str] = {"video": ".mp4", "image": ".jpg", "music": ".mp3"}


@dataclass(frozen=True, slots=True)
class JobContext:
    """What job handlers may use: the browser pool, the file store, task items, settings."""

    pool: BrowserPool
    files: FileStore
    tasks: TaskStore
    settings: Settings


async def fetch_media(
    session: Session, video: Video, files: FileStore, *, job_id: str | None, pinned: bool = False
) -> list[StoredFile]:
    """Download every file of ``video`` with ``session``'s cookies and register them."""
    referer = MEDIA_REFERERS[video.platform](video)
    author = video.author.unique_id or video.author.sec_uid or video.author.uid
    rows: list[StoredFile] = []
    for role, name, url in media_plan(video):
        target = files.target(
            platform=video.platform,
            author=author,
            item_id=video.video_id,
            name=f"{name}.{uuid.uuid4().hex[:8]}{_DEFAULT_EXT[role]}",
        )
        done = await download(session, url, target, role=role, referer=referer)
        try:
            row = await files.register(
                done, platform=video.platform, item_id=video.video_id, role=role, job_id=job_id, pinned=pinned
            )
        except BaseException:  # a file without its row would never be served nor expired
            target.unlink(missing_ok=True)
            raise
        rows.append(row)
    return rows


def file_view(row: StoredFile) -> dict[str, Any]:
    """A stored file as a client sees it (``download_url`` made absolute when answered)."""
    return {
        "role": row.role,
        "download_url": FILE_ROUTE + row.id,
        "size": row.size,
        "sha256": row.sha256,
        "content_type": row.content_type,
        "expires_at": iso_utc_ms(row.expires_at) if row.expires_at else None,
    }


def download_result(video: Video, rows: list[StoredFile]) -> dict[str, Any]:
    """The video result with shortvid's own ``download_url``; the platform's URL moves to ``source_url``."""
    result = video.to_result()
    result["source_url"] = video.download_url
    result["source_url_expires_at"] = video.download_url_expires_at
    result["files"] = [file_view(row) for row in rows]
    primary = rows[0] if rows else None
    result["download_url"] = FILE_ROUTE + primary.id if primary else None
    result["download_url_expires_at"] = (
        iso_utc_ms(primary.expires_at) if primary and primary.expires_at else None
    )
    return result


def absolutize(value: Any, base: str) -> Any:
    """Turn every ``download_url`` that points at our file route into an absolute URL."""
    if isinstance(value, dict):
        return {key: _absolute(key, item, base) for key, item in value.items()}
    if isinstance(value, list):
        return [absolutize(item, base) for item in value]
    return value


def _absolute(key: str, item: Any, base: str) -> Any:
    if key == "download_url" and isinstance(item, str) and item.startswith(FILE_ROUTE):
        return base + item
    return absolutize(item, base)
