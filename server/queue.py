"""The job queue over the ``jobs`` table: enqueue (with the charge), claim, heartbeat, finish, recover.

Every transition is one UPDATE guarded by the state it leaves (and, for the
worker's own transitions, by ``worker_id``), so a worker whose lease ran out
can never overwrite the next owner's outcome, and a refund happens exactly
once: it rides on the single UPDATE that moves a job into ``failed``. Every
transition out of ``active`` also ends the job's lead of its dedupe key
(``leads``), so followers of a job that failed, retried or died take over.

Each transition is published (``notify(job_id, state)``, ``server.job_events``) once its
transaction has returned, from the async method: in place of a poll, waiters of this process wake
on it. On PostgreSQL a trigger also NOTIFYs the change from inside the transaction, for other nodes.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Update,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ClauseElement
from sqlmodel import col

from models.db import uncancellable
from models.rows import JOB_COLUMNS, JOBS, JobRow
from models.tables import ApiToken, Callback, CallbackState, Job, JobState
from models.transactions import transactions
from models.types import utcnow

log = logging.getLogger(__name__)

_LOST = "The worker running this job stopped responding too many times"
#: (error, code) a recovered job carries while it waits for its next attempt.
_LEASE_EXPIRED = ("worker lease expired; retrying", "lease_expired")
_RESTARTED = ("the worker restarted; retrying", "worker_restarted")


#: Told ``(job id, new state)`` after a transition commits (``JobEvents.publish``).
Notify = Callable[[str, str], None]


def _no_one(job_id: str, state: str) -> None:
    """The default ``Notify``: nobody waits (tests, the CLI)."""


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """A ``callback_url`` accepted with a job (already checked), and where the job will be readable
    (``result_prefix`` + the job's id: ``https://host/api/job/``)."""

    url: str
    result_prefix: str


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


_JOBS = JOBS


def _state_in(states: Sequence[str]) -> ColumnElement[bool]:
    """``state = a OR state = b``: the same rows as ``state IN (…)``, without the expanding parameter
    that SQLAlchemy re-renders on every execution (half the CPU of the claim, py-spy said)."""
    return or_(*(_JOBS.c.state == state for state in states))


_CLAIMABLE = _state_in(JobState.CLAIMABLE)
#: The poll's read, built once: SQLAlchemy Core over every column, bound by id.
_BY_ID = select(*JOB_COLUMNS).where(_JOBS.c.id == bindparam("job_id"))


# The hot statements are built once, bound by parameters: building them per call (an alias's
# column proxies above all) cost more CPU than running them (py-spy of ``bench.api_overhead``).


def _fresh_scrape(jobs: FromClause) -> ColumnElement[bool]:
    """A job of ``jobs`` that scraped ``:key`` itself (not a copy), completed since ``:since``."""
    return and_(
        jobs.c.dedupe_key == bindparam("key"),
        jobs.c.state == JobState.COMPLETED,
        jobs.c.shared == False,  # noqa: E712
        jobs.c.finished_at >= bindparam("since"),
        jobs.c.result_expired == False,  # noqa: E712
    )


_CHARGE = (
    update(ApiToken)
    .where(
        col(ApiToken.id) == bindparam("token"),
        col(ApiToken.banned) == False,  # noqa: E712
        (col(ApiToken.unlimited) == True) | (col(ApiToken.credits) >= bindparam("cost")),  # noqa: E712
    )
    .values(
        credits=case((col(ApiToken.unlimited), ApiToken.credits), else_=ApiToken.credits - bindparam("cost")),
        last_used_at=bindparam("at"),
    )
    .returning(col(ApiToken.unlimited))
)
_BALANCE = select(col(ApiToken.credits), col(ApiToken.banned)).where(col(ApiToken.id) == bindparam("token"))
_DUE = (
    select(_JOBS.c.id)
    .where(_CLAIMABLE, _JOBS.c.run_at <= bindparam("at"))
    .order_by(_JOBS.c.run_at, _JOBS.c.created_at)
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
_CLAIM = (
    update(_JOBS)
    .where(_JOBS.c.id == _DUE, _CLAIMABLE)
    .values(
        state=JobState.ACTIVE,
        worker_id=bindparam("claimer"),
        locked_until=bindparam("lease_until"),
        attempts=_JOBS.c.attempts + 1,
        started_at=func.coalesce(_JOBS.c.started_at, bindparam("at")),
        updated_at=bindparam("at"),
    )
    .returning(*JOB_COLUMNS)
)
_OTHER = _JOBS.alias("other")
_LEAD = (
    update(_JOBS)
    .where(
        _JOBS.c.id == bindparam("job_id"),
        _JOBS.c.worker_id == bindparam("owner"),
        _JOBS.c.state == JobState.ACTIVE,
        ~select(_OTHER.c.id)
        .where(
            or_(
                and_(_OTHER.c.dedupe_key == bindparam("key"), _OTHER.c.leads),
                _fresh_scrape(_OTHER),
            )
        )
        .exists(),
    )
    .values(leads=True)
    .returning(_JOBS.c.id)
)
_RECENT_RESULT = (
    select(_JOBS.c.result).where(_fresh_scrape(_JOBS)).order_by(_JOBS.c.finished_at.desc()).limit(1)
)
_FAILED_SINCE = (
    select(*JOB_COLUMNS)
    .where(
        _JOBS.c.dedupe_key == bindparam("key"),
        _JOBS.c.state == JobState.FAILED,
        _JOBS.c.finished_at >= bindparam("since"),
    )
    .order_by(_JOBS.c.finished_at.desc())
    .limit(1)
)
_LEADER = select(_JOBS.c.id).where(_JOBS.c.dedupe_key == bindparam("key"), _JOBS.c.leads)
_INSERT = insert(_JOBS)
_INSERT_CALLBACK = insert(Callback)
_OWNED = (
    update(_JOBS)
    .where(
        _JOBS.c.id == bindparam("job_id"),
        _JOBS.c.worker_id == bindparam("owner"),
        _JOBS.c.state == JobState.ACTIVE,
    )
    .returning(_JOBS.c.id)
)


class JobQueue:
    """Queue operations; safe for many workers in many processes on SQLite and PostgreSQL.

    Every statement is SQLAlchemy Core on a plain connection (no ORM session, no identity map):
    the ORM cost several times the CPU of the same SQL on the path of every request and job. Each
    operation is one synchronous transaction function handed whole to ``models.transactions``
    (one thread hop per transaction on SQLite instead of one per statement).
    """

    #: Orphaned jobs read per query during recovery (memory bound, not a cap on a run).
    recover_batch = 200

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        lease: timedelta,
        result_ttl: timedelta,
        notify: Notify = _no_one,
    ) -> None:
        engine: AsyncEngine = sessions.kw["bind"]
        self._tx = transactions(engine)
        self.lease = lease
        self.result_ttl = result_ttl
        #: Told of every transition once it committed; may be set after construction (app wiring).
        self.notify = notify
        #: Told (job type, credits refunded) of each job recovery failed for good: no worker
        #: records those, so this is how the metrics count them.
        self.on_lost: Callable[[str, int], None] = lambda job_type, refunded: None

    @uncancellable
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
        dedupe_key: str | None = None,
        callback: CallbackRequest | None = None,
    ) -> JobRow:
        """Charge the token and insert the job (and its callback's delivery row) in one transaction
        (no overdraft under concurrency, no job without its callback)."""
        now = utcnow()

        def insert_job(connection: Connection) -> JobRow:
            charged = 0
            if token_id is not None:
                charged = self._charge(connection, token_id, cost)
            job = JobRow(
                id=str(uuid.uuid4()),
                type=job_type,
                platform=platform,
                url=url,
                payload=payload,
                state=JobState.WAITING,
                token_id=token_id,
                cost=charged,
                attempts=0,
                max_attempts=max_attempts,
                worker_id=None,
                result=None,
                error=None,
                error_code=None,
                result_expired=False,
                created_at=now,
                updated_at=now,
                run_at=now,
                locked_until=None,
                started_at=None,
                finished_at=None,
                result_expires_at=None,
                dedupe_key=dedupe_key,
                leads=False,
                shared=False,
            )
            connection.execute(_INSERT, job.columns())
            if callback is not None:
                connection.execute(
                    _INSERT_CALLBACK,
                    {
                        "job_id": job.id,
                        "url": callback.url,
                        "result_url": callback.result_prefix + job.id,
                        "state": CallbackState.PENDING,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
            return job

        return await self._tx.write(insert_job)

    @staticmethod
    def _charge(session: Connection, token_id: int, cost: int) -> int:
        """Take ``cost`` credits in one conditional UPDATE; returns what was charged (0 if unlimited)."""
        row = session.execute(_CHARGE, {"token": token_id, "cost": cost, "at": utcnow()}).first()
        if row is not None:
            return 0 if row[0] else cost
        current = session.execute(_BALANCE, {"token": token_id}).first()
        if current is None:
            raise TokenGone()
        if current[1]:
            raise TokenBanned()
        raise InsufficientCredits(cost, int(current[0]))

    @uncancellable
    async def claim(self, worker_id: str, *, now: datetime | None = None) -> JobRow | None:
        """Atomically take the oldest due job and lease it to ``worker_id``.

        PostgreSQL: the inner SELECT locks its row with FOR UPDATE SKIP LOCKED, so
        concurrent claimers pass over each other. SQLite renders no FOR UPDATE; its
        single writer serialises the UPDATE, and the repeated state guard makes a
        second claimer of the same row match nothing.
        """
        at = now or utcnow()
        job = await self._tx.write(
            lambda connection: self._claim(connection, worker_id, at), one_statement=True
        )
        if job is not None:
            self.notify(job.id, JobState.ACTIVE)
        return job

    def _claim(self, connection: Connection, worker_id: str, now: datetime) -> JobRow | None:
        parameters = {"claimer": worker_id, "lease_until": now + self.lease, "at": now}
        return _one_row(connection, _CLAIM, parameters)

    async def heartbeat(self, job_id: str, worker_id: str) -> bool:
        """Extend the lease; False means the lease was lost and the worker must stop."""
        now = utcnow()
        return await self._owned_update(job_id, worker_id, locked_until=now + self.lease, updated_at=now)

    @uncancellable
    async def complete(
        self, job_id: str, worker_id: str, result: dict[str, Any], *, shared: bool = False
    ) -> bool:
        """Record the result (``shared``: copied from another job's scrape) and end any lead."""
        now = utcnow()
        completed = await self._tx.write(
            lambda connection: self._complete(connection, job_id, worker_id, result, shared, now)
        )
        if completed:
            self.notify(job_id, JobState.COMPLETED)
        return completed

    @uncancellable
    async def complete_and_claim(
        self, job_id: str, worker_id: str, result: dict[str, Any], *, shared: bool = False
    ) -> tuple[bool, JobRow | None]:
        """``complete``, then ``claim`` the next due job for the same worker, in one transaction:
        one writer turn (SQLite) and one commit instead of two per job. The claim is the same
        guarded UPDATE as ``claim``'s, so it is as exclusive; a lost lease claims nothing."""
        now = utcnow()

        def complete_then_claim(connection: Connection) -> tuple[bool, JobRow | None]:
            if not self._complete(connection, job_id, worker_id, result, shared, now):
                return False, None
            return True, self._claim(connection, worker_id, now)

        completed, following = await self._tx.write(complete_then_claim)
        if completed:
            self.notify(job_id, JobState.COMPLETED)
        if following is not None:
            self.notify(following.id, JobState.ACTIVE)
        return completed, following

    def _complete(
        self,
        connection: Connection,
        job_id: str,
        worker_id: str,
        result: dict[str, Any],
        shared: bool,
        now: datetime,
    ) -> bool:
        return self._owned(
            connection,
            job_id,
            worker_id,
            state=JobState.COMPLETED,
            result=result,
            shared=shared,
            leads=False,
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
        return await self._moved(
            job_id,
            worker_id,
            state=JobState.DELAYED,
            leads=False,
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
        return await self._moved(
            job_id,
            worker_id,
            state=JobState.WAITING,
            leads=False,
            worker_id=None,
            locked_until=None,
            attempts=_JOBS.c.attempts - 1,
            run_at=now,
            updated_at=now,
        )

    @uncancellable
    async def fail(self, job_id: str, worker_id: str, *, error: str, code: str) -> bool:
        """Fail the job and refund its credits, if this worker still owns it."""
        now = utcnow()

        def fail_and_refund(connection: Connection) -> bool:
            rows = connection.execute(
                update(Job)
                .where(
                    col(Job.id) == job_id,
                    col(Job.worker_id) == worker_id,
                    col(Job.state) == JobState.ACTIVE,
                )
                .values(**self._failed_values(now, error, code))
                .returning(col(Job.token_id), col(Job.cost))
            ).all()
            self._refund(connection, rows)
            return bool(rows)

        failed = await self._tx.write(fail_and_refund)
        if failed:
            self.notify(job_id, JobState.FAILED)
        return failed

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
            batch = (
                select(col(Job.id))
                .where(orphaned, col(Job.id) > after)
                .order_by(col(Job.id))
                .limit(self.recover_batch)
            )
            ids = await self._tx.read(functools.partial(_ids, statement=batch))
            for job_id in ids:
                yield job_id
            if len(ids) < self.recover_batch:
                return
            after = ids[-1]

    @uncancellable
    async def _take_up_one(
        self, job_id: str, orphaned: ColumnElement[bool], now: datetime, retry: tuple[str, str]
    ) -> str | None:
        """Fail and refund, or requeue, one job; each UPDATE repeats the guard, so of two nodes
        recovering at once only one moves the job (and refunds it). None: someone else did."""
        mine = and_(col(Job.id) == job_id, orphaned)
        error, code = retry
        lost: list[tuple[str, int]] = []  # filled by the transaction; read once it committed

        def fail_or_requeue(connection: Connection) -> str | None:
            lost.clear()  # a transaction rolled back and run again starts over
            failed = connection.execute(
                update(Job)
                .where(mine, col(Job.attempts) >= Job.max_attempts)
                .values(**self._failed_values(now, _LOST, "lost"))
                .returning(col(Job.token_id), col(Job.cost), col(Job.type))
            ).all()
            if failed:
                self._refund(connection, [(token_id, cost) for token_id, cost, _ in failed])
                lost.extend(
                    (job_type, cost if token_id is not None else 0) for token_id, cost, job_type in failed
                )
                return "failed"
            requeued = connection.execute(
                update(Job)
                .where(mine)
                .values(
                    state=JobState.DELAYED,
                    leads=False,
                    worker_id=None,
                    locked_until=None,
                    run_at=now,
                    error=error,
                    error_code=code,
                    updated_at=now,
                )
                .returning(col(Job.id))
            ).all()
            return "requeued" if requeued else None

        outcome = await self._tx.write(fail_or_requeue)
        if outcome is not None:
            self.notify(job_id, JobState.FAILED if outcome == "failed" else JobState.DELAYED)
        for job_type, refunded in lost:
            self.on_lost(job_type, refunded)
        return outcome

    @uncancellable
    async def expire_results(self, *, now: datetime | None = None) -> int:
        """Drop results past their TTL; the row stays so the API can say the result expired."""
        now = now or utcnow()
        statement = (
            update(Job)
            .where(
                col(Job.state).in_(JobState.FINISHED),
                col(Job.result_expires_at) < now,
                col(Job.result_expired) == False,  # noqa: E712
            )
            .values(result=None, result_expired=True, payload={}, updated_at=now)
            .returning(col(Job.id))
        )
        return await self._tx.write(
            lambda connection: len(connection.execute(statement).all()), one_statement=True
        )

    async def recent_result(self, dedupe_key: str, *, since: datetime) -> dict[str, Any] | None:
        """The result of the newest scrape with this key completed at or after ``since`` (any node).

        Only scrapes count, not copies of them (``shared``), so reuse never outlives the TTL."""
        parameters = {"key": dedupe_key, "since": since}
        result: dict[str, Any] | None = await self._tx.read(
            lambda connection: connection.execute(_RECENT_RESULT, parameters).scalar_one_or_none()
        )
        return result

    @uncancellable
    async def lead(self, job_id: str, worker_id: str, dedupe_key: str, *, fresh_since: datetime) -> bool:
        """Make this active job the one that scrapes for its key; False: another leads, or a scrape
        finished since ``fresh_since`` (reuse it).

        Atomic on both engines and across nodes: the guard sees no leader and no fresh result, and
        the unique partial index ``ux_jobs_leader`` refuses a second leader whose UPDATE raced past
        the guard (PostgreSQL blocks it on the first one's row, then raises).
        """
        parameters = {"job_id": job_id, "owner": worker_id, "key": dedupe_key, "since": fresh_since}
        try:
            return await self._tx.write(
                lambda connection: connection.execute(_LEAD, parameters).first() is not None,
                one_statement=True,
            )
        except IntegrityError:
            return False

    async def failed_since(self, dedupe_key: str, since: datetime) -> JobRow | None:
        """The newest job of this key that failed at or after ``since`` (a leader this one saw end)."""
        parameters = {"key": dedupe_key, "since": since}
        return await self._tx.read(lambda connection: _one_row(connection, _FAILED_SINCE, parameters))

    async def leader(self, dedupe_key: str) -> str | None:
        """The id of the job now scraping for this key, if any."""
        leader: str | None = await self._tx.read(
            lambda connection: connection.execute(_LEADER, {"key": dedupe_key}).scalar_one_or_none()
        )
        return leader

    async def get(self, job_id: str) -> JobRow | None:
        """The job as stored now (the poll route's read: one Core SELECT, no ORM)."""
        return await self._tx.read(lambda connection: _one_row(connection, _BY_ID, {"job_id": job_id}))

    async def counts(self) -> QueueCounts:
        statement = select(col(Job.state), func.count()).group_by(col(Job.state))
        rows = await self._tx.read(lambda connection: connection.execute(statement).all())
        return QueueCounts({str(state): int(n) for state, n in rows})

    def _failed_values(self, now: datetime, error: str, code: str) -> dict[str, Any]:
        return {
            "state": JobState.FAILED,
            "leads": False,
            "error": error,
            "error_code": code,
            "locked_until": None,
            "finished_at": now,
            "updated_at": now,
            "result_expires_at": now + self.result_ttl,
        }

    @uncancellable
    async def _owned_update(self, job_id: str, owner: str, **values: Any) -> bool:
        return await self._tx.write(
            lambda connection: self._owned(connection, job_id, owner, **values), one_statement=True
        )

    @uncancellable
    async def _moved(self, job_id: str, owner: str, *, state: str, **values: Any) -> bool:
        """``_owned_update`` that moves the job to ``state``, published once it committed."""
        moved = await self._owned_update(job_id, owner, state=state, **values)
        if moved:
            self.notify(job_id, state)
        return moved

    @staticmethod
    def _owned(connection: Connection, job_id: str, owner: str, **values: Any) -> bool:
        """One UPDATE fenced by the owner and the ``active`` state; False: the lease was lost.

        Plain values are bound as parameters of one prebuilt statement (the SET clause follows
        their names); SQL expressions (``attempts - 1``) need a statement of their own."""
        expressions = {name: value for name, value in values.items() if isinstance(value, ClauseElement)}
        statement: Update = _OWNED.values(**expressions) if expressions else _OWNED
        plain = {name: value for name, value in values.items() if name not in expressions}
        return connection.execute(statement, {"job_id": job_id, "owner": owner, **plain}).first() is not None

    @staticmethod
    def _refund(session: Connection, rows: Sequence[Any]) -> None:
        """Give back what failed jobs charged (unlimited tokens were charged 0)."""
        for token_id, cost in rows:
            if token_id is not None and cost:
                session.execute(
                    update(ApiToken)
                    .where(col(ApiToken.id) == token_id)
                    .values(credits=ApiToken.credits + cost)
                )


def _one_row(
    connection: Connection, statement: Any, parameters: dict[str, Any] | None = None
) -> JobRow | None:
    """The first row of a SELECT over ``JOB_COLUMNS`` as a ``JobRow``, or None."""
    row = connection.execute(statement, parameters).first()
    return JobRow.of(row) if row is not None else None


def _ids(connection: Connection, statement: Any) -> Sequence[str]:
    ids: Sequence[str] = connection.scalars(statement).all()
    return ids
