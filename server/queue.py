"""The job queue over the ``jobs`` table: enqueue (with the charge), claim, heartbeat, finish, recover.

Every transition is one UPDATE guarded by the state it leaves (and, for the
worker's own transitions, by ``worker_id``), so a worker whose lease ran out
can never overwrite the next owner's outcome, and a refund happens exactly
once: it rides on the single UPDATE that moves a job into ``failed``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from models.db import read_sessions
from models.tables import ApiToken, Job, JobState
from models.types import utcnow

log = logging.getLogger(__name__)

_LOST = "The worker running this job stopped responding too many times"
#: (error, code) a recovered job carries while it waits for its next attempt.
_LEASE_EXPIRED = ("worker lease expired; retrying", "lease_expired")
_RESTARTED = ("the worker restarted; retrying", "worker_restarted")


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


class Recovered(NamedTuple):
    """What one recovery run did; ``skipped`` jobs raised and are tried again on the next run."""

    requeued: int = 0
    failed: int = 0
    skipped: int = 0


_CLAIMABLE = col(Job.state).in_(JobState.CLAIMABLE)


class JobQueue:
    """Queue operations; safe for many workers in many processes on SQLite and PostgreSQL."""

    #: Orphaned jobs read per query during recovery (memory bound, not a cap on a run).
    recover_batch = 200

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
                    col(ApiToken.id) == token_id,
                    col(ApiToken.banned) == False,  # noqa: E712
                    (col(ApiToken.unlimited) == True) | (col(ApiToken.credits) >= cost),  # noqa: E712
                )
                .values(
                    credits=case((col(ApiToken.unlimited), ApiToken.credits), else_=ApiToken.credits - cost),
                    last_used_at=utcnow(),
                )
                .returning(col(ApiToken.unlimited))
            )
        ).first()
        if row is not None:
            return 0 if row[0] else cost
        current = (
            await session.execute(
                select(col(ApiToken.credits), col(ApiToken.banned)).where(col(ApiToken.id) == token_id)
            )
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
            select(col(Job.id))
            .where(_CLAIMABLE, col(Job.run_at) <= now)
            .order_by(col(Job.run_at), col(Job.created_at))
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        statement = (
            update(Job)
            .where(col(Job.id) == due, _CLAIMABLE)
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
                    .where(
                        col(Job.id) == job_id,
                        col(Job.worker_id) == worker_id,
                        col(Job.state) == JobState.ACTIVE,
                    )
                    .values(**self._failed_values(now, error, code))
                    .returning(col(Job.token_id), col(Job.cost))
                )
            ).all()
            await self._refund(session, rows)
        return bool(rows)

    async def recover_expired(self, *, now: datetime | None = None) -> Recovered:
        """Take up jobs whose worker died (lease expired): requeue, or fail and refund when out of attempts.

        Idempotent: every node's scheduler may run it.
        """
        now = now or utcnow()
        expired = and_(col(Job.state) == JobState.ACTIVE, col(Job.locked_until) < now)
        return await self._take_up(expired, now, _LEASE_EXPIRED)

    async def recover_restarted(self, node_prefix: str, current_prefix: str) -> Recovered:
        """Take back at once the jobs an earlier incarnation of this node held when it died.

        Waiting for their leases would stall them for a whole lease after a restart. The
        caller proves the earlier incarnation is dead (it holds the node's lock), so its
        leases need not run out. Jobs of other nodes fail the first prefix guard, jobs
        of the current incarnation the second.
        """
        owner = col(Job.worker_id)
        orphaned = and_(
            col(Job.state) == JobState.ACTIVE,
            owner.startswith(node_prefix, autoescape=True),
            ~owner.startswith(current_prefix, autoescape=True),
        )
        return await self._take_up(orphaned, utcnow(), _RESTARTED)

    async def _take_up(
        self, orphaned: ColumnElement[bool], now: datetime, retry: tuple[str, str]
    ) -> Recovered:
        """Recover each orphaned job in its own transaction, so one that cannot be recovered
        (its refund fails) is logged and skipped instead of stalling every other job."""
        counts = {"requeued": 0, "failed": 0, "skipped": 0}
        async for job_id in self._orphan_ids(orphaned):
            try:
                outcome = await self._take_up_one(job_id, orphaned, now, retry)
            except Exception as exc:
                log.error(
                    "could not recover job %s: %r", job_id, exc, extra={"job": job_id, "error": repr(exc)}
                )
                outcome = "skipped"
            if outcome:
                counts[outcome] += 1
        return Recovered(**counts)

    async def _orphan_ids(self, orphaned: ColumnElement[bool]) -> AsyncIterator[str]:
        """Ids of the orphaned jobs in bounded batches (keyset by id, so skipped jobs do not repeat)."""
        after = ""
        while True:
            async with self._reads() as session:
                batch = (
                    select(col(Job.id))
                    .where(orphaned, col(Job.id) > after)
                    .order_by(col(Job.id))
                    .limit(self.recover_batch)
                )
                ids = (await session.scalars(batch)).all()
            for job_id in ids:
                yield job_id
            if len(ids) < self.recover_batch:
                return
            after = ids[-1]

    async def _take_up_one(
        self, job_id: str, orphaned: ColumnElement[bool], now: datetime, retry: tuple[str, str]
    ) -> str | None:
        """Fail and refund, or requeue, one job; each UPDATE repeats the guard, so of two nodes
        recovering at once only one moves the job (and refunds it). None: someone else did."""
        mine = and_(col(Job.id) == job_id, orphaned)
        async with self._sessions() as session, session.begin():
            failed = (
                await session.execute(
                    update(Job)
                    .where(mine, col(Job.attempts) >= Job.max_attempts)
                    .values(**self._failed_values(now, _LOST, "lost"))
                    .returning(col(Job.token_id), col(Job.cost))
                )
            ).all()
            if failed:
                await self._refund(session, failed)
                return "failed"
            error, code = retry
            requeued = (
                await session.execute(
                    update(Job)
                    .where(mine)
                    .values(
                        state=JobState.DELAYED,
                        worker_id=None,
                        locked_until=None,
                        run_at=now,
                        error=error,
                        error_code=code,
                        updated_at=now,
                    )
                    .returning(col(Job.id))
                )
            ).all()
        return "requeued" if requeued else None

    async def expire_results(self, *, now: datetime | None = None) -> int:
        """Drop results past their TTL; the row stays so the API can say the result expired."""
        now = now or utcnow()
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    update(Job)
                    .where(
                        col(Job.state).in_(JobState.FINISHED),
                        col(Job.result_expires_at) < now,
                        col(Job.result_expired) == False,  # noqa: E712
                    )
                    .values(result=None, result_expired=True, payload={}, updated_at=now)
                    .returning(col(Job.id))
                )
            ).all()
        return len(rows)

    async def get(self, job_id: str) -> Job | None:
        async with self._reads() as session:
            return await session.get(Job, job_id)

    async def counts(self) -> QueueCounts:
        async with self._reads() as session:
            rows = (
                await session.execute(select(col(Job.state), func.count()).group_by(col(Job.state)))
            ).all()
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
                    .where(
                        col(Job.id) == job_id,
                        col(Job.worker_id) == owner,
                        col(Job.state) == JobState.ACTIVE,
                    )
                    .values(**values)
                    .returning(col(Job.id))
                )
            ).all()
        return bool(rows)

    @staticmethod
    async def _refund(session: AsyncSession, rows: Sequence[Any]) -> None:
        """Give back what failed jobs charged (unlimited tokens were charged 0)."""
        for token_id, cost in rows:
            if token_id is not None and cost:
                await session.execute(
                    update(ApiToken)
                    .where(col(ApiToken.id) == token_id)
                    .values(credits=ApiToken.credits + cost)
                )
