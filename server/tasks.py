"""Channel download tasks: the task is a ``channel.download`` job; its posts are ``DownloadItem`` rows.

Items survive restarts: a resumed task only touches items that are not done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from models.db import read_sessions, uncancellable, writing
from models.tables import DownloadItem, ItemState
from models.types import utcnow


@dataclass(frozen=True, slots=True)
class TaskCounts:
    total: int
    done: int
    failed: int


class TaskStore:
    """Item rows of download tasks."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._reads = read_sessions(sessions)

    async def items(self, task_id: str) -> list[DownloadItem]:
        async with self._reads() as session:
            rows = await session.execute(
                select(DownloadItem)
                .where(col(DownloadItem.task_id) == task_id)
                .order_by(col(DownloadItem.position))
            )
            return list(rows.scalars().all())

    @uncancellable
    async def add_items(self, task_id: str, posts: Sequence[dict[str, Any]]) -> list[DownloadItem]:
        """Record the listed posts once (a resumed task finds them already there)."""
        async with writing(self._sessions) as session:
            existing = (
                await session.execute(
                    select(col(DownloadItem.id)).where(col(DownloadItem.task_id) == task_id).limit(1)
                )
            ).first()
            if existing is None:
                for position, post in enumerate(posts):
                    session.add(
                        DownloadItem(
                            task_id=task_id,
                            position=position,
                            video_id=post["video_id"],
                            url=post["share_url"],
                            media_type=post.get("media_type", "video"),
                        )
                    )
        return await self.items(task_id)

    @uncancellable
    async def finish_item(
        self,
        item_id: int,
        *,
        state: str,
        size: int = 0,
        file_ids: list[str] | None = None,
        error: str | None = None,
    ) -> None:
        async with writing(self._sessions) as session:
            await session.execute(
                update(DownloadItem)
                .where(col(DownloadItem.id) == item_id)
                .values(
                    state=state,
                    bytes=size,
                    file_ids=file_ids or [],
                    error=error,
                    attempts=DownloadItem.attempts + 1,
                    updated_at=utcnow(),
                )
            )

    async def counts(self, task_id: str) -> TaskCounts:
        items = await self.items(task_id)
        return TaskCounts(
            total=len(items),
            done=sum(i.state == ItemState.DONE for i in items),
            failed=sum(i.state == ItemState.FAILED for i in items),
        )
