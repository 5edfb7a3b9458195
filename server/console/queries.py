"""The console's reads of the ``jobs`` table: lists, counts by state, per-minute activity.

Plain SQLAlchemy Core over read-only sessions, portable between SQLite and PostgreSQL (no
dialect's date functions: rows are binned in Python). A user's reads are bound by ``token_id``
(indexed); an admin's see every token's jobs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import read_session_factory
from models.rows import JOBS
from models.tables import JobState
from models.types import utcnow

#: Jobs on one page of the list.
PAGE_SIZE = 50
#: Rows read at most for the activity chart (an hour of a busy pool fits; past it the chart is cut).
CHART_ROWS = 50_000
STATES = (JobState.WAITING, JobState.ACTIVE, JobState.DELAYED, JobState.COMPLETED, JobState.FAILED)

_LISTED = (
    JOBS.c.id,
    JOBS.c.type,
    JOBS.c.platform,
    JOBS.c.url,
    JOBS.c.state,
    JOBS.c.token_id,
    JOBS.c.attempts,
    JOBS.c.error,
    JOBS.c.error_code,
    JOBS.c.created_at,
    JOBS.c.finished_at,
)


@dataclass(frozen=True, slots=True)
class JobLine:
    """One row of the jobs list (no result: a channel listing's can be large)."""

    id: str
    type: str
    platform: str
    url: str
    state: str
    token_id: int | None
    attempts: int
    error: str | None
    error_code: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What the jobs list shows: whose (None: everyone's), which state and type, older than when."""

    token_id: int | None
    state: str | None = None
    job_type: str | None = None
    before: datetime | None = None


def _scoped(statement: Select[Any], token_id: int | None) -> Select[Any]:
    return statement if token_id is None else statement.where(JOBS.c.token_id == token_id)


class ConsoleQueries:
    """Read-only queries for the pages, over the app's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._reads = read_session_factory(engine)

    async def jobs(self, wanted: JobFilter, *, limit: int = PAGE_SIZE) -> list[JobLine]:
        """Newest first; ``limit`` + 1 rows are read so the caller knows whether more exist."""
        statement = _scoped(select(*_LISTED), wanted.token_id)
        if wanted.state:
            statement = statement.where(JOBS.c.state == wanted.state)
        if wanted.job_type:
            statement = statement.where(JOBS.c.type == wanted.job_type)
        if wanted.before is not None:
            statement = statement.where(JOBS.c.created_at < wanted.before)
        statement = statement.order_by(JOBS.c.created_at.desc(), JOBS.c.id.desc()).limit(limit + 1)
        async with self._reads() as session:
            rows = (await session.execute(statement)).all()
        return [JobLine(**row._mapping) for row in rows]

    async def states_since(self, token_id: int | None, since: datetime) -> dict[str, int]:
        """Jobs accepted since ``since``, by state (every state present, 0 when none)."""
        statement = _scoped(
            select(JOBS.c.state, func.count()).where(JOBS.c.created_at >= since).group_by(JOBS.c.state),
            token_id,
        )
        async with self._reads() as session:
            counts = {state: int(n) for state, n in (await session.execute(statement)).all()}
        return {state: counts.get(state, 0) for state in STATES} | counts

    async def activity(self, since: datetime) -> tuple[list[datetime], list[datetime]]:
        """When jobs were accepted since ``since``: all of them, and those that have failed (by
        acceptance too, so a minute's failed bar is the part of its jobs bar that failed)."""
        statement = (
            select(JOBS.c.created_at, JOBS.c.state).where(JOBS.c.created_at >= since).limit(CHART_ROWS)
        )
        async with self._reads() as session:
            rows = (await session.execute(statement)).all()
        accepted = [row.created_at for row in rows]
        failed = [row.created_at for row in rows if row.state == JobState.FAILED]
        return accepted, failed


def per_minute(moments: list[datetime], *, now: datetime | None = None, minutes: int = 60) -> list[int]:
    """Counts per whole minute over the last ``minutes``, oldest first (the last is this minute)."""
    now = now or utcnow()
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    counts: Counter[int] = Counter()
    for moment in moments:
        back = int((end - moment).total_seconds() // 60)
        if 0 <= back < minutes:
            counts[minutes - 1 - back] += 1
    return [counts.get(i, 0) for i in range(minutes)]
