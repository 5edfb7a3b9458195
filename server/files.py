"""The file store: media under ``<data>/files/<platform>/<author>/<item>/``, a row per file.

Files expire after a TTL, and the total size is capped by deleting the oldest
unpinned files first (a running channel task pins its files until it ends).

Each row names the node whose disk holds its bytes (``node_id``; None for a store every node
mounts). Upkeep runs on every node but touches only the bytes that node holds, and deletes a
row only once its bytes are gone, so no node deletes another's row and leaves bytes behind, and
no node counts another's bytes against its cap.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from models.db import read_sessions, uncancellable, writing
from models.tables import StoredFile
from models.types import utcnow
from scraper.download import Downloaded, MediaRole

log = logging.getLogger(__name__)

#: Rows read per query during upkeep (memory bound, not a cap on a run).
_BATCH = 500
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
        node_id: str | None = None,
        shared: bool = False,
    ) -> None:
        self.root = root.resolve()
        self._sessions = sessions
        self._reads = read_sessions(sessions)
        self.ttl = ttl
        self.max_bytes = max_bytes
        #: The node whose disk this is; None: no node identity (tests, tools).
        self.node_id = node_id
        #: Every node mounts this store: its rows say no owner, and every node keeps them.
        self.shared = shared or node_id is None

    @property
    def owner(self) -> str | None:
        """The ``node_id`` this store writes on its rows."""
        return None if self.shared else self.node_id

    def holds(self, row: StoredFile) -> bool:
        """Whether this node may serve the row's bytes from its own disk (they may still be gone)."""
        return row.node_id is None or row.node_id == self.node_id

    def _kept_here(self) -> ColumnElement[bool]:
        """Rows whose bytes this node keeps: its own, or every ownerless one on a shared store."""
        if self.shared:
            return col(StoredFile.node_id).is_(None)
        return col(StoredFile.node_id) == self.node_id

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
            node_id=self.owner,
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
        return self._on_disk(row.relpath)

    @uncancellable
    async def unpin_job(self, job_id: str) -> None:
        async with writing(self._sessions) as session:
            await session.execute(
                update(StoredFile).where(col(StoredFile.job_id) == job_id).values(pinned=False)
            )

    async def total_bytes(self) -> int:
        """Bytes this node keeps (what its cap counts); another node's files are not on its disk."""
        async with self._reads() as session:
            total = await session.execute(
                select(func.coalesce(func.sum(col(StoredFile.size)), 0)).where(self._kept_here())
            )
            return int(total.scalar_one())

    @uncancellable
    async def expire(self, *, now: datetime | None = None) -> int:
        """Delete this node's files past their TTL, bytes first, then rows; and the rows of lost files
        past their TTL, whose bytes no node can reach. Idempotent."""
        now = now or utcnow()
        removed = 0
        while True:
            async with self._reads() as session:
                batch = (
                    await session.execute(
                        select(col(StoredFile.id), col(StoredFile.relpath))
                        .where(col(StoredFile.expires_at) < now, self._kept_here())
                        .limit(_BATCH)
                    )
                ).all()
            if not batch:
                break
            removed += await self._delete(batch)
        async with writing(self._sessions) as session:
            lost = await session.execute(
                delete(StoredFile)
                .where(col(StoredFile.expires_at) < now, col(StoredFile.lost_at).is_not(None))
                .returning(col(StoredFile.id))
            )
            removed += len(lost.all())
        return removed

    @uncancellable
    async def enforce_cap(self) -> int:
        """Delete this node's oldest unpinned files until what it keeps fits ``max_bytes``."""
        excess = await self.total_bytes() - self.max_bytes
        removed = 0
        while excess > 0:
            async with self._reads() as session:
                oldest = (
                    await session.execute(
                        select(col(StoredFile.id), col(StoredFile.relpath), col(StoredFile.size))
                        .where(self._kept_here(), col(StoredFile.pinned) == False)  # noqa: E712
                        .order_by(col(StoredFile.created_at))
                        .limit(100)
                    )
                ).all()
            if not oldest:
                break
            victims: list[tuple[str, str]] = []
            for file_id, relpath, size in oldest:
                if excess <= 0:
                    break
                victims.append((file_id, relpath))
                excess -= size
            removed += await self._delete(victims)
        return removed

    async def _delete(self, rows: Sequence[Any]) -> int:
        """Unlink the bytes, then delete the rows: a crash between leaves a row that answers 404 and
        is deleted by the next run, never bytes that no row points to."""
        for _, relpath in rows:
            self._unlink(relpath)
        async with writing(self._sessions) as session:
            deleted = await session.execute(
                delete(StoredFile)
                .where(col(StoredFile.id).in_([file_id for file_id, _ in rows]))
                .returning(col(StoredFile.id))
            )
            return len(deleted.all())

    @uncancellable
    async def adopt_ownerless(self) -> int:
        """Give this node the ownerless rows (written before nodes were recorded) whose bytes are on
        its disk, so its upkeep keeps them; a shared store leaves them ownerless (every node's)."""
        if self.shared:
            return 0
        adopted, after = 0, ""
        while True:
            async with self._reads() as session:
                batch = (
                    await session.execute(
                        select(col(StoredFile.id), col(StoredFile.relpath))
                        .where(col(StoredFile.node_id).is_(None), col(StoredFile.id) > after)
                        .order_by(col(StoredFile.id))
                        .limit(_BATCH)
                    )
                ).all()
            if not batch:
                return adopted
            after = batch[-1][0]
            here = [file_id for file_id, relpath in batch if self._on_disk(relpath)]
            if here:
                async with writing(self._sessions) as session:
                    taken = await session.execute(
                        update(StoredFile)
                        .where(col(StoredFile.id).in_(here), col(StoredFile.node_id).is_(None))
                        .values(node_id=self.node_id)
                        .returning(col(StoredFile.id))
                    )
                    adopted += len(taken.all())

    def _on_disk(self, relpath: str) -> Path | None:
        path = (self.root / relpath).resolve()
        return path if path.is_relative_to(self.root) and path.is_file() else None

    @uncancellable
    async def mark_lost(self, gone_nodes: list[str], *, now: datetime | None = None) -> int:
        """Mark the files of nodes gone past the grace period lost: they answer 410, not 503."""
        gone = [node_id for node_id in gone_nodes if node_id != self.node_id]
        if not gone:
            return 0
        async with writing(self._sessions) as session:
            marked = await session.execute(
                update(StoredFile)
                .where(col(StoredFile.node_id).in_(gone), col(StoredFile.lost_at).is_(None))
                .values(lost_at=now or utcnow())
                .returning(col(StoredFile.id))
            )
            return len(marked.all())

    def sweep_partials(self, *, older_than: float = 3600) -> int:
        """Remove ``.part`` files a crashed download left behind."""
        cutoff = time.time() - older_than
        count = 0
        for part in self.root.rglob("*.part") if self.root.exists() else ():
            if part.stat().st_mtime < cutoff:
                part.unlink(missing_ok=True)
                count += 1
        return count

    async def sweep_orphans(self, *, older_than: float = 3600) -> int:
        """Remove files on this disk that no row of this node points to (a row deleted elsewhere,
        a crash between writing a file and registering it). Young files are left: a download may
        be registering them right now."""
        cutoff = time.time() - older_than
        candidates = [
            path
            for path in (self.root.rglob("*") if self.root.exists() else ())
            if path.is_file() and path.suffix != ".part" and path.stat().st_mtime < cutoff
        ]
        count = 0
        for start in range(0, len(candidates), _BATCH):
            chunk = {str(path.relative_to(self.root)): path for path in candidates[start : start + _BATCH]}
            async with self._reads() as session:
                known = set(
                    (
                        await session.execute(
                            select(col(StoredFile.relpath)).where(
                                col(StoredFile.relpath).in_(list(chunk)),
                                or_(self._kept_here(), col(StoredFile.node_id).is_(None)),
                            )
                        )
                    ).scalars()
                )
            for relpath in chunk:
                if relpath not in known:
                    self._unlink(relpath)
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
