"""Coalescing and the short result cache: which requests are the same work, and who scrapes it.

Two requests are the same when they have the same job type, canonical URL and options (a channel's
count, resolved ``since`` day and zone). Their jobs carry the same ``dedupe_key``. Before scraping,
a job reuses a scrape of its key younger than the TTL, or else tries to become the key's leader
(atomic in the database, see ``JobQueue.lead``), or else follows the leader: it waits for it, woken
at once when the leader ran in this process and by a bounded poll when it runs on another node.
A leader that completes hands every follower its result (``cached: true``); one that fails makes
them fail the same way, each refunding its own charge; one that is retried or dies (its lease
recovered) ends its lead, and a follower takes over. Each job keeps its own charge, state and result.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.rows import JobRow
from models.tables import JobState
from models.types import utcnow
from server.queue import JobQueue
from server.settings import Settings

log = logging.getLogger(__name__)


def dedupe_key(settings: Settings, job_type: str, url: str, options: dict[str, Any]) -> str | None:
    """The key of this request, or None when its job must never be shared (downloads, cache off).

    A channel page continued from a cursor is keyed by where it starts too: it is other work.
    """
    if settings.cache_ttl_for(job_type) is None:
        return None
    same = {
        "type": job_type,
        "url": url,
        "count": options.get("count"),
        "since": options.get("since"),
        "tz": options.get("tz"),
    }
    if options.get("cursor") is not None:  # only then, so first pages keep the keys they always had
        same["cursor"] = options["cursor"]
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()


def shared_result(result: dict[str, Any]) -> dict[str, Any]:
    """Another job's result as this job's own: a copy marked ``cached``."""
    return {**result, "cached": True}


class LeaderFailed(Exception):
    """The job this one followed failed: this one fails the same way (and refunds its own charge)."""

    def __init__(self, error: str, code: str) -> None:
        super().__init__(error)
        self.error = error
        self.code = code


@dataclass(slots=True)
class Share:
    """What a job does instead of, or around, its scrape."""

    #: A result to take (another job's scrape); None: this job scrapes.
    result: dict[str, Any] | None = None
    #: This job leads its key: when it ends, wake the followers in this process.
    leads: bool = False


class Coalescer:
    """Leads or follows per dedupe key; one per process, shared by its workers."""

    def __init__(self, queue: JobQueue, settings: Settings) -> None:
        self.queue = queue
        self.settings = settings
        self._ended: dict[str, asyncio.Event] = {}

    def ended(self, key: str) -> None:
        """The leader of ``key`` in this process recorded its outcome: wake its followers here."""
        event = self._ended.pop(key, None)
        if event is not None:
            event.set()

    async def share(self, job: JobRow, worker_id: str, share: Share) -> None:
        """Reuse a fresh scrape, lead, or follow the leader until it ends (see the module doc).

        Fills in ``share``: a result to take, or ``leads`` (then this job scrapes). Raises
        ``LeaderFailed`` when the job it followed failed.
        """
        key = job.dedupe_key
        ttl = self.settings.cache_ttl_for(job.type)
        if key is None or ttl is None or job.payload.get("refresh"):
            return
        followed: str | None = None
        looked_again = False
        refused_at: datetime | None = None
        while True:
            # Taken before looking, so an end recorded after the look still wakes this wait.
            woken = self._ended.setdefault(key, asyncio.Event())
            if followed is not None:
                outcome = await self.queue.get(followed)
                if outcome is not None and outcome.state == JobState.COMPLETED and outcome.result:
                    log.info("job shares the result it waited for", extra={"job": job.id, "leader": followed})
                    share.result = shared_result(outcome.result)
                    return
                if outcome is not None and outcome.state == JobState.FAILED:
                    raise LeaderFailed(outcome.error or "failed", outcome.error_code or "internal")
            asked = utcnow()
            since = asked - ttl
            # Leading is tried first: it is refused when a fresh scrape exists, and for a key nobody
            # else asked for (the usual case) it is the only statement.
            if await self.queue.lead(job.id, worker_id, key, fresh_since=since):
                share.leads = True
                if followed is not None:
                    # The job followed may have failed since it was looked at (its end freed the
                    # lead): then this one fails the same way, and its own followers after it.
                    outcome = await self.queue.get(followed)
                    if outcome is not None and outcome.state == JobState.FAILED:
                        raise LeaderFailed(outcome.error or "failed", outcome.error_code or "internal")
                return
            refused_at = refused_at or asked
            recent = await self.queue.recent_result(key, since=since)
            if recent is not None:
                log.info("job reuses a recent result", extra={"job": job.id})
                share.result = shared_result(recent)
                return
            followed = await self.queue.leader(key)
            if followed is None:
                # The lead was refused, so someone led; if it ended in failure since, this job was
                # its follower and fails the same way instead of scraping again.
                failed = await self.queue.failed_since(key, refused_at)
                if failed is not None:
                    raise LeaderFailed(failed.error or "failed", failed.error_code or "internal")
            if followed is None and not looked_again:
                looked_again = True
                continue  # the leader ended between the two looks: look again at once, once
            looked_again = False
            with contextlib.suppress(TimeoutError):
                # Woken by a leader here; a leader on another node is seen by this bounded poll.
                await asyncio.wait_for(woken.wait(), self.settings.poll_interval.total_seconds())
