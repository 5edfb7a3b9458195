"""The file store: media under ``<data>/files/<platform>/<author>/<item>/``, a row per file.

Files expire after a TTL, and the total size is capped by deleting the oldest
unpinned files first (a running channel task pins its files until it ends).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from models.db import read_sessions, uncancellable, writing
from models.tables import StoredFile
from models.types import utcnow
from scraper.download import Downloaded, MediaRole

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
EXTENSIONS = {
    "video/mp4": ".mp4",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
}


def safe_part(text: str | None, fallback: str) -> str:
    """A path component a person can read and no input can escape with."""
    cleaned = _UNSAFE.sub("_", text or "").strip("._")[:64]
    return cleaned or fallback


class FileStore:
    """Files on disk plus their rows; every path it hands out stays under ``root``."""

    def __init__(
        self,
        root: Path,
        sessions: async_sessionmaker[AsyncSession],
        *,
        ttl: timedelta,
        max_bytes: int,
    ) -> None:
        self.root = root.resolve()
        self._sessions = sessions
        self._reads = read_sessions(sessions)
        self.ttl = ttl
        self.max_bytes = max_bytes

    def target(self, *, platform: str, author: str | None, item_id: str, name: str) -> Path:
        """Where a new file goes: ``<platform>/<author>/<item>/<name>`` (the caller makes names unique)."""
        path = (
            self.root
            / safe_part(platform, "unknown")
            / safe_part(author, "unknown")
            / safe_part(item_id, "item")
            / safe_part(name, "file")
        )
        return path

    # Not ``uncancellable``: a download cancelled at shutdown must not leave a file row that no task
    # item records (the resumed item downloads again), so its row rolls back with the caller.
    async def register(
        self,
        downloaded: Downloaded,
        *,
        platform: str,
        item_id: str,
        role: MediaRole,
        job_id: str | None,
        pinned: bool = False,
    ) -> StoredFile:
        """Record a file that ``scraper.download`` wrote whole under ``root``."""
        row = StoredFile(
            platform=platform,
            item_id=item_id,
            role=role,
            relpath=str(downloaded.path.resolve().relative_to(self.root)),
            size=downloaded.size,
            sha256=downloaded.sha256,
            content_type=downloaded.content_type,
            source_url=downloaded.source_url[:4096],
            job_id=job_id,
            pinned=pinned,
            expires_at=utcnow() + self.ttl,
        )
        async with writing(self._sessions) as session:
            session.add(row)
        return row

    async def get(self, file_id: str) -> StoredFile | None:
        async with self._reads() as session:
            return await session.get(StoredFile, file_id)

    async def many(self, file_ids: list[str]) -> list[StoredFile]:
        if not file_ids:
            return []
        async with self._reads() as session:
            rows = (
                (await session.execute(select(StoredFile).where(col(StoredFile.id).in_(file_ids))))
                .scalars()
                .all()
            )
        order = {file_id: n for n, file_id in enumerate(file_ids)}
        return sorted(rows, key=lambda row: order[row.id])

    def path_of(self, row: StoredFile) -> Path | None:
        """The file's path if it is still on disk and inside the store."""
        path = (self.root / row.relpath).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path

    @uncancellable
    async def unpin_job(self, job_id: str) -> None:
        async with writing(self._sessions) as session:
            await session.execute(
                update(StoredFile).where(col(StoredFile.job_id) == job_id).values(pinned=False)
            )

    async def total_bytes(self) -> int:
        async with self._reads() as session:
            return int(
                (await session.execute(select(func.coalesce(func.sum(col(StoredFile.size)), 0)))).scalar_one()
            )

    @uncancellable
    async def expire(self, *, now: datetime | None = None) -> int:
        """Delete files past their TTL (rows and bytes). Idempotent; any node may run it."""
        now = now or utcnow()
        async with writing(self._sessions) as session:
            rows = (
                await session.execute(
                    delete(StoredFile)
                    .where(col(StoredFile.expires_at) < now)
                    .returning(col(StoredFile.relpath))
                )
            ).all()
        for (relpath,) in rows:
            self._unlink(relpath)
        return len(rows)

    @uncancellable
    async def enforce_cap(self) -> int:
        """Delete the oldest unpinned files until the store fits ``max_bytes``."""
        excess = await self.total_bytes() - self.max_bytes
        removed = 0
        while excess > 0:
            async with writing(self._sessions) as session:
                oldest = (
                    await session.execute(
                        select(col(StoredFile.id), col(StoredFile.size))
                        .where(col(StoredFile.pinned) == False)  # noqa: E712
                        .order_by(col(StoredFile.created_at))
                        .limit(100)
                    )
                ).all()
                if not oldest:
                    break
                victims: list[str] = []
                for file_id, size in oldest:
                    if excess <= 0:
                        break
                    victims.append(file_id)
                    excess -= size
                rows = (
                    await session.execute(
                        delete(StoredFile)
                        .where(col(StoredFile.id).in_(victims))
                        .returning(col(StoredFile.relpath))
                    )
                ).all()
            for (relpath,) in rows:
                self._unlink(relpath)
            removed += len(rows)
        return removed

    def sweep_partials(self, *, older_than: float = 3600) -> int:
        """Remove ``.part`` files a crashed download left behind."""
        cutoff = time.time() - older_than
        count = 0
        for part in self.root.rglob("*.part") if self.root.exists() else ():
            if part.stat().st_mtime < cutoff:
                part.unlink(missing_ok=True)
                count += 1
        return count

    def _unlink(self, relpath: str) -> None:
        path = (self.root / relpath).resolve()
        if path.is_relative_to(self.root):
            path.unlink(missing_ok=True)
            for parent in (path.parent, path.parent.parent, path.parent.parent.parent):
                if parent == self.root or not parent.is_relative_to(self.root):
                    break
                try:
                    parent.rmdir()  # only when empty
                except OSError:
                    break
