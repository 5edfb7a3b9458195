"""Job events: wake whoever waits on a job when its state changes, in this process and across nodes.

In process, each waiter (a ``?wait=`` poll, an event stream) holds a ``Watch`` registered under its
job's id, and the queue publishes ``(job id, state)`` once each transition's transaction has
returned. On PostgreSQL a trigger (migration 0004) NOTIFYs every state change from the transaction
that made it, so the notification is delivered on commit and never before the row can be read; one
LISTEN connection per process (``PostgresListener``) turns notifications into the same publishes,
which is how a waiter on an api-only node hears a worker node finish a job.

A notification is only a hint: the waiter re-reads the row after every wake-up, and once after
registering and before it first sleeps (a change landing between an earlier read and the
registration would otherwise be missed: the lost wake-up). So a notification may be lost,
repeated or late without harm; every wait is bounded by its own timeout and re-reads its row at
least every ``recheck`` seconds, which covers what no notification reaches (another process on the
same SQLite file, the LISTEN connection while it reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

import asyncpg
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from models.tables import JobState

log = logging.getLogger(__name__)

#: The NOTIFY channel the trigger of migration 0004 sends on; payload ``"<job id> <state>"``.
CHANNEL = "shortvid_jobs"

Row = TypeVar("Row")


class TooManyWaiters(Exception):
    """This process already holds ``max_waiters`` waits and streams (the route answers 503)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} waiters already")
        self.limit = limit


class Watch:
    """One waiter's wake-up: set by a publish for its job, cleared when the waiter wakes."""

    __slots__ = ("_event", "job_id")

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self._event = asyncio.Event()

    def wake(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Sleep until woken or ``seconds`` pass; True if woken (a publish since the last wait)."""
        try:
            async with asyncio.timeout(max(seconds, 0)):
                await self._event.wait()
        except TimeoutError:
            return False
        self._event.clear()
        return True


class JobEvents:
    """The process's waiters by job id, bounded, and the listeners of job ends (callbacks)."""

    def __init__(self, *, max_waiters: int) -> None:
        self.max_waiters = max_waiters
        self._watches: dict[str, set[Watch]] = {}
        self._count = 0
        self._ended: list[Callable[[str], None]] = []

    @property
    def waiting(self) -> int:
        """Waits and streams open now."""
        return self._count

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[Watch]:
        """Register a waiter for ``job_id`` for the block; TooManyWaiters past ``max_waiters``."""
        if self._count >= self.max_waiters:
            raise TooManyWaiters(self.max_waiters)
        watch = Watch(job_id)
        self._watches.setdefault(job_id, set()).add(watch)
        self._count += 1
        try:
            yield watch
        finally:
            self._count -= 1
            watches = self._watches.get(job_id)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[job_id]

    def on_end(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(job_id)`` whenever a job is published as completed or failed."""
        self._ended.append(listener)

    def publish(self, job_id: str, state: str) -> None:
        """A job's state changed (its transaction has committed): wake its waiters."""
        for watch in self._watches.get(job_id, ()):
            watch.wake()
        if state in JobState.FINISHED:
            for listener in self._ended:
                try:
                    listener(job_id)
                except Exception:  # a listener must never fail the queue operation that published
                    log.exception("a job-end listener failed", extra={"job_id": job_id})

    def wake_all(self) -> None:
        """Wake every waiter to re-read its job (after notifications may have been missed)."""
        for watches in self._watches.values():
            for watch in watches:
                watch.wake()


async def wait_for_end(
    events: JobEvents,
    job_id: str,
    read: Callable[[], Awaitable[Row | None]],
    finished: Callable[[Row], bool],
    *,
    within: float,
    recheck: float,
) -> Row | None:
    """The row once ``finished(row)``, or as it is after ``within`` seconds (None: no such job).

    Registers before the first read, so a change after that read still wakes this waiter."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    with events.watch(job_id) as watch:
        row = await read()
        while row is not None and not finished(row):
            left = deadline - loop.time()
            if left <= 0:
                break
            await watch.wait(min(left, recheck))
            row = await read()
        return row


async def follow(
    events: JobEvents,
    job_id: str,
    read: Callable[[], Awaitable[Row | None]],
    finished: Callable[[Row], bool],
    *,
    duration: float,
    recheck: float,
) -> AsyncGenerator[Row, None]:
    """The row as read at once, then after every wake-up (and every ``recheck`` seconds), until it is
    ``finished`` (that row included) or ``duration`` seconds pass. The caller drops repeats.

    The first ``__anext__`` registers the waiter (TooManyWaiters) and reads (nothing: no such job);
    close the generator (``contextlib.aclosing``) to unregister when stopping early."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration
    with events.watch(job_id) as watch:
        while True:
            row = await read()
            if row is None:
                return
            yield row
            left = deadline - loop.time()
            if finished(row) or left <= 0:
                return
            await watch.wait(min(left, recheck))


Connect = Callable[[], Awaitable[asyncpg.Connection]]


class PostgresListener:
    """This process's one LISTEN connection, feeding NOTIFYs into ``JobEvents``; it reconnects.

    A connection that the server closed (a restart, ``pg_terminate_backend``) is noticed at once
    through asyncpg's termination callback; one that died silently (a network partition) by a ping
    every ``ping_every`` seconds. Notifications sent while no connection listened are lost, so every
    waiter is woken to re-read its job once the listener is back.
    """

    def __init__(
        self,
        events: JobEvents,
        connect: Connect,
        *,
        ping_every: float = 15.0,
        retry_first: float = 0.2,
        retry_cap: float = 10.0,
    ) -> None:
        self.events = events
        self._connect = connect
        self.ping_every = ping_every
        self.retry_first = retry_first
        self.retry_cap = retry_cap
        #: Connections made so far (tests wait for the next one after cutting the current one).
        self.connections = 0
        self.server_pid: int | None = None
        self._changed = asyncio.Condition()

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with a capped backoff."""
        delay = self.retry_first
        while True:
            try:
                connection = await asyncio.wait_for(self._connect(), timeout=10)
            except Exception as exc:  # down, restarting, refusing: try again, never give up
                log.warning("LISTEN connection failed: %r; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_cap)
                continue
            delay = self.retry_first
            try:
                await self._listen(connection)
            except Exception as exc:
                log.warning("LISTEN connection lost: %r; reconnecting", exc)
            finally:
                self.server_pid = None
                connection.terminate()

    async def _listen(self, connection: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(CHANNEL, self._notified)
        self.server_pid = connection.get_server_pid()
        async with self._changed:
            self.connections += 1
            self._changed.notify_all()
        self.events.wake_all()  # whatever was sent while nobody listened: re-read now
        while not lost.is_set():
            try:
                async with asyncio.timeout(self.ping_every):
                    await lost.wait()
            except TimeoutError:
                await asyncio.wait_for(connection.fetchval("SELECT 1"), timeout=self.ping_every)
        raise ConnectionResetError("the server closed the LISTEN connection")

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        job_id, _, state = str(payload).partition(" ")
        self.events.publish(job_id, state)

    async def connected(self, *, after: int = 0) -> int:
        """Wait until more than ``after`` connections were made and one listens now."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.connections > after and self.server_pid is not None)
        return self.connections


def asyncpg_connector(engine: AsyncEngine) -> Connect:
    """A plain asyncpg connection to the engine's database (its URL's host, user, database, ssl)."""
    _args, options = engine.dialect.create_connect_args(engine.url)

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(**options)

    return connect


@contextlib.asynccontextmanager
async def listening(events: JobEvents, engine: AsyncEngine) -> AsyncIterator[PostgresListener | None]:
    """On PostgreSQL, run a listener for the block (cancelled and awaited on exit); else nothing."""
    if engine.dialect.name != "postgresql":
        yield None
        return
    listener = PostgresListener(events, asyncpg_connector(engine))
    task = asyncio.create_task(listener.run(), name="job-events-listener")
    try:
        yield listener
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


JOB_EVENTS = web.AppKey("job_events", JobEvents)
LISTENER = web.AppKey("job_events_listener", PostgresListener)
