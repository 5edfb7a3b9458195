"""Prometheus metrics of one app, in a registry of its own (tests make many apps in one process).

Counters move where things happen: the request middleware, the submit route (credits charged) and
the worker (jobs by type and outcome, attempt durations, refunds). What the queue and the browser
pool already keep is read when ``/metrics`` is scraped instead of being counted twice: the queue's
depth from a census the route refreshes just before (collecting never waits on the database), and
the pool's sessions by state, blocks and relaunches from its own counters.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Any, Literal, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from models.tables import JobState
from server.queue import QueueCounts

# A ``*_created`` sample per series doubles the output for a start time Prometheus does not use.
disable_created_metrics()  # type: ignore[no-untyped-call]  # it has no annotations

#: From a cached parse (tens of ms) to a channel download task (its limit is two hours).
JOB_DURATION_BUCKETS = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    7200.0,
)
#: Methods get their own label value; any other word a client sends is counted as ``other``.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Label values present from the start (at 0), so ``rate()`` sees the first event.
_BLOCK_KINDS = ("blocked", "rate_limited")
_RELAUNCH_REASONS = ("died", "rollover")
_SESSION_STATES = ("healthy", "cooling", "retired")


class PoolStats(Protocol):
    """What the metrics read from a browser pool (``scraper.pool.BrowserPool``)."""

    blocks: collections.Counter[str]
    relaunched: collections.Counter[str]
    retired: collections.Counter[str]

    def census(self) -> dict[str, Any]: ...


class _Census(Collector):
    """Gauges and counters read at collect time from the last queue census and the pool."""

    def __init__(self) -> None:
        self.queue: QueueCounts | None = None
        self.pool: PoolStats | None = None

    def collect(self) -> Iterable[Metric]:
        if self.queue is not None:
            yield from _queue_metrics(self.queue)
        if self.pool is not None:
            yield from _pool_metrics(self.pool)


def _queue_metrics(counts: QueueCounts) -> Iterable[Metric]:
    depth = GaugeMetricFamily(
        "shortvid_queue_depth", "Jobs waiting, delayed (retrying) or running, over every node."
    )
    depth.add_metric([], counts.depth)
    jobs = GaugeMetricFamily("shortvid_queue_jobs", "Jobs in the jobs table by state.", labels=["state"])
    for state in (JobState.WAITING, JobState.DELAYED, JobState.ACTIVE, *JobState.FINISHED):
        jobs.add_metric([state], counts.by_state.get(state, 0))
    return depth, jobs


def _pool_metrics(pool: PoolStats) -> Iterable[Metric]:
    census = pool.census()
    sessions = GaugeMetricFamily(
        "shortvid_sessions", "This node's browser sessions by health state.", labels=["state"]
    )
    for state in _SESSION_STATES:
        sessions.add_metric([state], census["sessions"].get(state, 0))
    busy = GaugeMetricFamily("shortvid_sessions_busy", "This node's browser sessions leased right now.")
    busy.add_metric([], census["sessions"].get("busy", 0))
    alive = GaugeMetricFamily("shortvid_browser_up", "1 while this node's Chromium is connected.")
    alive.add_metric([], 1 if census["browser_alive"] else 0)
    blocks = CounterMetricFamily(
        "shortvid_blocks",
        "Platform risk answers (captcha, verify, empty body, 403/429) by kind.",
        labels=["kind"],
    )
    relaunches = CounterMetricFamily(
        "shortvid_browser_relaunches",
        "Chromium relaunches: died, or rolled over past its page budget.",
        labels=["reason"],
    )
    retired = CounterMetricFamily(
        "shortvid_sessions_retired", "Sessions retired, by reason.", labels=["reason"]
    )
    for family, counts, seeded in (
        (blocks, pool.blocks, _BLOCK_KINDS),
        (relaunches, pool.relaunched, _RELAUNCH_REASONS),
        (retired, pool.retired, ()),
    ):
        for label in sorted({*seeded, *counts}):
            family.add_metric([label], counts.get(label, 0))
    return sessions, busy, alive, blocks, relaunches, retired


#: How a request for a file on another node's disk ended: streamed from its owner (whole or a range),
#: the owner down (stopped, gone, unknown), unreachable, refusing our signature, without the bytes,
#: cut off mid-stream, or this node without the nodes' secret.
RelayOutcome = Literal["streamed", "owner_down", "unreachable", "refused", "not_found", "broken", "no_secret"]


class Metrics:
    """The app's metrics and the calls that record them; ``render`` writes the exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._requests = Counter(
            "shortvid_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self._jobs = Counter(
            "shortvid_jobs",
            "Jobs this node's workers brought to a final state, by type and state.",
            ["type", "state"],
            registry=registry,
        )
        self._failures = Counter(
            "shortvid_job_failures",
            "Failed jobs by type and error code.",
            ["type", "code"],
            registry=registry,
        )
        self._retries = Counter(
            "shortvid_job_retries",
            "Attempts that ended in a retry later, by type and error code.",
            ["type", "code"],
            registry=registry,
        )
        self._durations = Histogram(
            "shortvid_job_duration_seconds",
            "Time of one attempt, from its start to its recorded outcome (completed, failed, retry).",
            ["type", "outcome"],
            buckets=JOB_DURATION_BUCKETS,
            registry=registry,
        )
        self._charged = Counter(
            "shortvid_credits_charged",
            "Credits charged when jobs were accepted.",
            ["type"],
            registry=registry,
        )
        self._refunded = Counter(
            "shortvid_credits_refunded", "Credits given back for failed jobs.", ["type"], registry=registry
        )
        self._relays = Counter(
            "shortvid_file_relays",
            "File requests this node answered for another node's bytes, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self._census = _Census()
        registry.register(self._census)

    # ---- recording -----------------------------------------------------------------------------

    def request(self, method: str, route: str, status: int) -> None:
        self._requests.labels(method if method in _METHODS else "other", route, str(status)).inc()

    def job_completed(self, job_type: str, seconds: float) -> None:
        self._jobs.labels(job_type, JobState.COMPLETED).inc()
        self._durations.labels(job_type, JobState.COMPLETED).observe(seconds)

    def job_failed(self, job_type: str, code: str, seconds: float, *, refunded: int) -> None:
        """A failure the worker recorded; ``refunded``: the credits its UPDATE gave back."""
        self._jobs.labels(job_type, JobState.FAILED).inc()
        self._failures.labels(job_type, code).inc()
        self._durations.labels(job_type, JobState.FAILED).observe(seconds)
        if refunded:
            self._refunded.labels(job_type).inc(refunded)

    def job_lost(self, job_type: str, refunded: int) -> None:
        """A job recovery failed for good (its worker died on its last attempt): no duration to tell."""
        self._jobs.labels(job_type, JobState.FAILED).inc()
        self._failures.labels(job_type, "lost").inc()
        if refunded:
            self._refunded.labels(job_type).inc(refunded)

    def job_retried(self, job_type: str, code: str, seconds: float) -> None:
        self._retries.labels(job_type, code).inc()
        self._durations.labels(job_type, "retry").observe(seconds)

    def file_relayed(self, outcome: RelayOutcome) -> None:
        self._relays.labels(outcome).inc()

    def credits_charged(self, job_type: str, amount: int) -> None:
        if amount:
            self._charged.labels(job_type).inc(amount)

    # ---- exposition ----------------------------------------------------------------------------

    def refresh(self, queue: QueueCounts | None, pool: PoolStats | None) -> None:
        """What the next collection reports of the queue (a census just taken) and the pool."""
        self._census.queue = queue
        self._census.pool = pool

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition in the format ``accept`` asks for (text by default) and its content type."""
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type


METRICS = web.AppKey("metrics", Metrics)
