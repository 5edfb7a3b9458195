"""The job queue over the ``jobs`` table: enqueue (with the charge), claim, heartbeat, finish, recover.

Every transition is one UPDATE guarded by the state it leaves (and, for the
worker's own transitions, by ``worker_id``), so a worker whose lease ran out
can never overwrite the next owner's outcome, and a refund happens exactly
once: it rides on the single UPDATE that moves a job into ``failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.db import read_sessions
from models.tables import ApiToken, Job, JobState
from models.types import utcnow


class InsufficientCredits(Exception):
    """The token cannot pay for the job."""

    def __init__(self, need: int, have: int) -> None:
        super().__init__(f"need {need} credits, have {have}")
        self.need = need
        self.have = have


class TokenBanned(Exception):
    """The token is banned."""


class TokenGone(Exception):
    """The token was deleted between authentication and charging."""


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """Jobs by state, for health and census."""

    by_state: dict[str, int]

    @property
    def depth(self) -> int:
        return sum(self.by_state.get(s, 0) for s in (*JobState.CLAIMABLE, JobState.ACTIVE))


_CLAIMABLE = Job.state.in_(JobState.CLAIMABLE)  # type: ignore[attr-defined]


class JobQueue:
    """Queue operations; safe for many workers in many processes on SQLite and PostgreSQL."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        lease: timedelta,
        result_ttl: timedelta,
    ) -> None:
        self._sessions = sessions
        self._reads = read_sessions(sessions)
        self.lease = lease
        self.result_ttl = result_ttl

    async def enqueue(
        self,
        *,
        token_id: int | None,
        job_type: str,
        platform: str,
        url: str,
        payload: dict[str, Any],
        cost: int,
        max_attempts: int,
    ) -> Job:
        """Charge the token and insert the job in one transaction (no overdraft under concurrency)."""
        async with self._sessions() as session, session.begin():
            charged = 0
            if token_id is not None:
                charged = await self._charge(session, token_id, cost)
            job = Job(
                type=job_type,
                platform=platform,
                url=url,
                payload=payload,
                token_id=token_id,
                cost=charged,
                max_attempts=max_attempts,
            )
            session.add(job)
        return job

    @staticmethod
    async def _charge(session: AsyncSession, token_id: int, cost: int) -> int:
        """Take ``cost`` credits in one conditional UPDATE; returns what was charged (0 if unlimited)."""
        row = (
            await session.execute(
                update(ApiToken)
                .where(
                    ApiToken.id == token_id,  # type: ignore[arg-type]
                    ApiToken.banned == False,  # noqa: E712
                    (ApiToken.unlimited == True) | (ApiToken.credits >= cost),  # noqa: E712
                )
                .values(
                    credits=case((ApiToken.unlimited, ApiToken.credits), else_=ApiToken.credits - cost),
                    last_used_at=utcnow(),
                )
                .returning(ApiToken.unlimited)
            )
        ).first()
        if row is not None:
            return 0 if row[0] else cost
        current = (
            await session.execute(select(ApiToken.credits, ApiToken.banned).where(ApiToken.id == token_id))
        ).first()
        if current is None:
            raise TokenGone()
        if current[1]:
            raise TokenBanned()
        raise InsufficientCredits(cost, int(current[0]))

    async def claim(self, worker_id: str, *, now: datetime | None = None) -> Job | None:
        """Atomically take the oldest due job and lease it to ``worker_id``.

        PostgreSQL: the inner SELECT locks its row with FOR UPDATE SKIP LOCKED, so
        concurrent claimers pass over each other. SQLite renders no FOR UPDATE; its
        single writer serialises the UPDATE, and the repeated state guard makes a
        second claimer of the same row match nothing.
        """
        now = now or utcnow()
        due = (
            select(Job.id)
            .where(_CLAIMABLE, Job.run_at <= now)  # type: ignore[arg-type]
            .order_by(Job.run_at, Job.created_at)  # type: ignore[arg-type]
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        statement = (
            update(Job)
            .where(Job.id == due, _CLAIMABLE)  # type: ignore[arg-type]
            .values(
                state=JobState.ACTIVE,
                worker_id=worker_id,
                locked_until=now + self.lease,
                attempts=Job.attempts + 1,
                started_at=func.coalesce(Job.started_at, now),
                updated_at=now,
            )
            .returning(Job)
        )
        async with self._sessions() as session, session.begin():
            return (await session.execute(statement)).scalars().first()

    async def heartbeat(self, job_id: str, worker_id: str) -> bool:
        """Extend the lease; False means the lease was lost and the worker must stop."""
        now = utcnow()
        return await self._owned_update(job_id, worker_id, locked_until=now + self.lease, updated_at=now)

    async def complete(self, job_id: str, worker_id: str, result: dict[str, Any]) -> bool:
        now = utcnow()
        return await self._owned_update(
            job_id,
            worker_id,
            state=JobState.COMPLETED,
            result=result,
            error=None,
            error_code=None,
            locked_until=None,
            finished_at=now,
            updated_at=now,
            result_expires_at=now + self.result_ttl,
        )

    async def retry_later(
        self, job_id: str, worker_id: str, *, error: str, code: str, delay: timedelta
    ) -> bool:
        """Put the job back as ``delayed`` until ``now + delay``."""
        now = utcnow()
        return await self._owned_update(
            job_id,
            worker_id,
            state=JobState.DELAYED,
            error=error,
            error_code=code,
            worker_id=None,
            locked_until=None,
            run_at=now + delay,
            updated_at=now,
        )

    async def release(self, job_id: str, worker_id: str) -> bool:
        """Give a job back untouched (the worker is stopping): waiting again, the attempt not counted."""
        now = utcnow()
        return await self._owned_update(
            job_id,
            worker_id,
            state=JobState.WAITING,
            worker_id=None,
            locked_until=None,
            attempts=Job.attempts - 1,
            run_at=now,
            updated_at=now,
        )

    async def fail(self, job_id: str, worker_id: str, *, error: str, code: str) -> bool:
        """Fail the job and refund its credits, if this worker still owns it."""
        now = utcnow()
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.worker_id == worker_id, Job.state == JobState.ACTIVE)  # type: ignore[arg-type]
                    .values(**self._failed_values(now, error, code))
                    .returning(Job.token_id, Job.cost)
                )
            ).all()
            await self._refund(session, rows)
        return bool(rows)

    async def recover_expired(self, *, now: datetime | None = None) -> tuple[int, int]:
        """Take up jobs whose worker died (lease expired): requeue, or fail and refund when out of attempts.

        Idempotent: every node's scheduler may run it.
        """
        now = now or utcnow()
        expired = and_(Job.state == JobState.ACTIVE, Job.locked_until < now)  # type: ignore[arg-type]
        async with self._sessions() as session, session.begin():
            failed = (
                await session.execute(
                    update(Job)
                    .where(expired, Job.attempts >= Job.max_attempts)  # type: ignore[arg-type]
                    .values(
                        **self._failed_values(
                            now, "The worker running this job stopped responding too many times", "lost"
                        )
                    )
                    .returning(Job.token_id, Job.cost)
                )
            ).all()
            await self._refund(session, failed)
            requeued = (
                await session.execute(
                    update(Job)
                    .where(expired)
                    .values(
                        state=JobState.DELAYED,
                        worker_id=None,
                        locked_until=None,
                        run_at=now,
                        error="worker lease expired; retrying",
                        error_code="lease_expired",
                        updated_at=now,
                    )
                    .returning(Job.id)
                )
            ).all()
        return len(requeued), len(failed)

    async def expire_results(self, *, now: datetime | None = None) -> int:
        """Drop results past their TTL; the row stays so the API can say the result expired."""
        now = now or utcnow()
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    update(Job)
                    .where(
                        Job.state.in_(JobState.FINISHED),  # type: ignore[attr-defined]
                        Job.result_expires_at < now,  # type: ignore[arg-type,operator]
                        Job.result_expired == False,  # noqa: E712
                    )
                    .values(result=None, result_expired=True, payload={}, updated_at=now)
                    .returning(Job.id)
                )
            ).all()
        return len(rows)

    async def get(self, job_id: str) -> Job | None:
        async with self._reads() as session:
            return await session.get(Job, job_id)

    async def counts(self) -> QueueCounts:
        async with self._reads() as session:
            rows = (await session.execute(select(Job.state, func.count()).group_by(Job.state))).all()
        return QueueCounts({str(state): int(n) for state, n in rows})

    def _failed_values(self, now: datetime, error: str, code: str) -> dict[str, Any]:
        return {
            "state": JobState.FAILED,
            "error": error,
            "error_code": code,
            "locked_until": None,
            "finished_at": now,
            "updated_at": now,
            "result_expires_at": now + self.result_ttl,
        }

    async def _owned_update(self, job_id: str, owner: str, **values: Any) -> bool:
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.worker_id == owner, Job.state == JobState.ACTIVE)  # type: ignore[arg-type]
                    .values(**values)
                    .returning(Job.id)
                )
            ).all()
        return bool(rows)

    @staticmethod
    async def _refund(session: AsyncSession, rows: Sequence[Any]) -> None:
        """Give back what failed jobs charged (unlimited tokens were charged 0)."""
        for token_id, cost in rows:
            if token_id is not None and cost:
                await session.execute(
                    update(ApiToken).where(ApiToken.id == token_id).values(credits=ApiToken.credits + cost)  # type: ignore[arg-type]
                )
