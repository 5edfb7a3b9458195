"""The worker loop: claim, run with a heartbeat, then complete, retry later, or fail with a refund.

A completed job's UPDATE and the claim of the next job share one transaction (``complete_and_claim``),
so a busy worker spends one database write per job on its bookkeeping, not two.

Every line logged while a job runs (here, in the handler, deep in the scraper) carries the job's id,
type and attempt (``server.logs.job_context``) and the browser session it leased; outcomes are
counted in the app's metrics (``server.metrics``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from datetime import timedelta
from typing import Any

from models.rows import JobRow
from scraper.errors import ScraperError
from server.coalesce import Coalescer, LeaderFailed, Share
from server.error_map import job_error
from server.handlers import HANDLERS, JobHandler
from server.logs import job_context
from server.media import JobContext
from server.metrics import Metrics
from server.queue import JobQueue
from server.settings import Settings

log = logging.getLogger(__name__)


def worker_id(prefix: str = "") -> str:
    """Unique across machines and restarts: host, pid, random suffix."""
    base = prefix or socket.gethostname()
    return f"{base}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def backoff(settings: Settings, attempt: int) -> timedelta:
    """Exponential backoff for retryable failures, capped."""
    factor: int = 2 ** max(attempt - 1, 0)  # int ** int is typed Any (a negative power is a float)
    delay = settings.retry_base * factor
    return min(delay, settings.retry_cap)


class Worker:
    """One claim-and-run loop; a process runs several against one pool."""

    def __init__(
        self,
        *,
        queue: JobQueue,
        context: JobContext,
        settings: Settings,
        wakeup: asyncio.Event,
        handlers: dict[str, JobHandler] | None = None,
        name: str | None = None,
        coalescer: Coalescer | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.queue = queue
        self.context = context
        self.settings = settings
        self.wakeup = wakeup
        self.handlers = handlers or HANDLERS
        self.name = name or worker_id(settings.worker_name)
        #: Share one per process so followers wake when a leader here ends (else they poll).
        self.coalescer = coalescer or Coalescer(queue, settings)
        self.metrics = metrics or Metrics()
        self.processed = 0

    async def run(self) -> None:
        """Loop until cancelled. Database hiccups are logged and retried, never fatal."""
        job: JobRow | None = None
        while True:
            if job is None:
                # Cleared before looking, so a submit that lands during the claim still wakes the
                # wait below; cleared after (as it was), such a wake-up was lost and the job sat
                # for a whole poll interval (1 s by default) with the workers idle.
                self.wakeup.clear()
                try:
                    job = await self.queue.claim(self.name)
                except Exception:
                    log.exception("claim failed; retrying shortly")
                    await asyncio.sleep(self.settings.poll_interval.total_seconds())
                    continue
            if job is None:
                await self._idle()
                continue
            running = job
            try:
                job = await self.process(running)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The outcome could not be recorded (database down?): the lease will expire and
                # recovery takes the job up again; this loop must live on.
                log.exception("could not record the outcome of a job", extra=_job_fields(running))
                job = None
                await asyncio.sleep(self.settings.poll_interval.total_seconds())

    async def _idle(self) -> None:
        try:
            await asyncio.wait_for(self.wakeup.wait(), timeout=self.settings.poll_interval.total_seconds())
        except TimeoutError:
            pass

    async def process(self, job: JobRow) -> JobRow | None:
        """Run one claimed job to an outcome the queue records (fenced by our worker id).

        Returns the next job, already claimed for this worker when the outcome was a completion
        (the caller must run it: it is leased to us), else None."""
        with job_context(**_job_fields(job)):
            return await self._process(job)

    async def _process(self, job: JobRow) -> JobRow | None:
        handler = self.handlers.get(job.type)
        log.info("job started")
        if handler is None:
            started = time.monotonic()
            failed = await self.queue.fail(
                job.id, self.name, error=f"Unknown job type {job.type!r}", code="internal"
            )
            self._failed(job, "internal", started, failed)
            log.error("job failed: unknown job type", extra={"error_code": "internal"})
            return None
        share = Share()
        try:
            return await self._run(handler, job, share)
        finally:
            if share.leads and job.dedupe_key is not None:
                self.coalescer.ended(job.dedupe_key)  # the outcome is recorded: followers look now

    async def _run(self, handler: JobHandler, job: JobRow, share: Share) -> JobRow | None:
        started = time.monotonic()
        work = asyncio.ensure_future(self._run_handler(handler, job, share))
        beat = asyncio.ensure_future(self._heartbeat(job, work))
        try:
            result = await work
        except LeaderFailed as exc:
            failed = await self.queue.fail(job.id, self.name, error=exc.error, code=exc.code)
            self._failed(job, exc.code, started, failed)
            log.info("job failed with the job it followed", extra={"error_code": exc.code})
            return None
        except asyncio.CancelledError:
            current = asyncio.current_task()
            shutting_down = current is not None and current.cancelling() > 0
            if not shutting_down and beat.done() and not beat.cancelled() and beat.result() is False:
                log.warning("lease lost; abandoning job")
                return None
            # Stopping (restart, deploy): hand the job back at once, without spending an attempt.
            await asyncio.shield(self.queue.release(job.id, self.name))
            log.info("job released at shutdown")
            raise
        except Exception as exc:
            await self._on_error(job, exc, started)
            return None
        finally:
            beat.cancel()
        completed, following = await self.queue.complete_and_claim(
            job.id, self.name, result, shared=share.result is not None
        )
        if completed:
            self.processed += 1
            self.metrics.job_completed(job.type, time.monotonic() - started)
            log.info("job completed", extra={"cached": share.result is not None})
        else:
            log.warning("job completed after its lease was lost; result dropped")
        return following

    async def _run_handler(self, handler: JobHandler, job: JobRow, share: Share) -> dict[str, Any]:
        """The scrape, or the result of another job's (``share`` says which, and if this one leads)."""
        async with asyncio.timeout(self.settings.timeout_for(job.type).total_seconds()):
            await self.coalescer.share(job, self.name, share)
            if share.result is not None:
                return share.result
            return await handler(self.context, job)

    async def _heartbeat(self, job: JobRow, work: asyncio.Future[dict[str, Any]]) -> bool:
        """Renew the lease; if it was lost, cancel the work (another worker owns the job now)."""
        while True:
            await asyncio.sleep(self.settings.heartbeat.total_seconds())
            try:
                if not await self.queue.heartbeat(job.id, self.name):
                    work.cancel()
                    return False
            except Exception:
                log.exception("heartbeat failed")

    async def _on_error(self, job: JobRow, exc: Exception, started: float) -> None:
        message, code = job_error(exc)
        retryable = isinstance(exc, TimeoutError) or (isinstance(exc, ScraperError) and exc.retryable)
        if not isinstance(exc, ScraperError):
            log.exception("job raised an unexpected error", extra={"error_code": code}, exc_info=exc)
            retryable = True
        if retryable and job.attempts < job.max_attempts:
            delay = backoff(self.settings, job.attempts)
            if await self.queue.retry_later(job.id, self.name, error=message, code=code, delay=delay):
                self.metrics.job_retried(job.type, code, time.monotonic() - started)
            log.info(
                "job will retry: %s", message, extra={"error_code": code, "delay": delay.total_seconds()}
            )
            return
        if retryable:
            message = f"{message} (gave up after {job.attempts} attempts)"
        failed = await self.queue.fail(job.id, self.name, error=message, code=code)
        self._failed(job, code, started, failed)
        log.info("job failed: %s", message, extra={"error_code": code})

    def _failed(self, job: JobRow, code: str, started: float, recorded: bool) -> None:
        """Count a failure the queue recorded (``recorded``: we still owned the job), with its refund."""
        if recorded:
            refunded = job.cost if job.token_id is not None else 0
            self.metrics.job_failed(job.type, code, time.monotonic() - started, refunded=refunded)


def _job_fields(job: JobRow) -> dict[str, object]:
    """What every log line about ``job`` says (``job_context``)."""
    return {"job_id": job.id, "job_type": job.type, "attempt": job.attempts}
