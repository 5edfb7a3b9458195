"""GET /metrics through the HTTP API: its protection, and counters that move with real jobs.

The jobs run on workers with stub handlers (no browser); the pool's counters are checked against
a stand-in pool, and once against a real Chromium (``browser``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from models.tables import Job
from models.types import utcnow
from scraper.config import load_browser_settings
from scraper.errors import Blocked, NotFound
from scraper.pool import LEASED, BrowserPool, current_session
from server.app import create_app
from server.keys import QUEUE, TOKENS, WAKEUP
from server.logs import job_context
from server.metrics import METRICS, Metrics
from server.routes.metrics import is_loopback
from server.settings import Settings, SettingsError, load_settings
from server.worker import Worker
from tests.e2e import poll_job

DOUYIN = "https://www.douyin.com/video/7071967230287744267"
DOUYIN_RETRIED = "https://www.douyin.com/video/7071967230287744268"
TIKTOK = "https://www.tiktok.com/@a3noticias/video/6806030056956251397"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


@dataclass
class Node:
    client: TestClient
    admin: str
    user: str

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def metrics(self) -> str:
        response = await self.client.get("/metrics", headers=self.auth(self.admin))
        assert response.status == 200, await response.text()
        return await response.text()


async def _ok(ctx: Any, job: Job) -> dict[str, Any]:
    return {"video_id": job.url.rsplit("/", 1)[-1]}


async def _gone(ctx: Any, job: Job) -> dict[str, Any]:
    raise NotFound("the video was deleted")


async def _blocked_once(ctx: Any, job: Job) -> dict[str, Any]:
    if job.attempts == 1:
        raise Blocked("captcha page")
    return await _ok(ctx, job)


@contextlib.asynccontextmanager
async def _start(settings: Settings, handlers: dict[str, Any] | None = None) -> AsyncIterator[Node]:
    """An API node (no browser) with one worker running ``handlers``, an admin and a client token."""
    app = create_app(settings, on_first_token=lambda token, info: None)
    client = TestClient(TestServer(app))
    await client.start_server()
    admin, _ = await app[TOKENS].create(name="ops", unlimited=True, admin=True)
    user, _ = await app[TOKENS].create(name="client", credits=1000)
    worker = Worker(
        queue=app[QUEUE],
        context=None,  # type: ignore[arg-type]  # the stub handlers need no browser
        settings=settings,
        wakeup=app[WAKEUP],
        handlers=handlers or {},
        metrics=app[METRICS],
    )
    loop = asyncio.ensure_future(worker.run())
    try:
        yield Node(client, admin, user)
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await client.close()


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        role="api",  # no browser pool, no workers of the app's own: the test runs one
        rate_limit=0,
        retry_base=timedelta(milliseconds=10),
        poll_interval=timedelta(milliseconds=20),
        **changes,
    )


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    handlers = {"video.parse": _ok, "tiktok.video.parse": _gone, "video.download": _blocked_once}
    async with _start(_settings(tmp_path), handlers) as started:
        yield started


async def _submit(node: Node, path: str, url: str) -> dict[str, Any]:
    response = await node.client.post(path, json={"url": url}, headers=node.auth(node.user))
    assert response.status == 200, await response.text()
    return await poll_job(node.client, (await response.json())["data"]["jobId"], deadline=30)


async def test_metrics_move_with_jobs_requests_and_refunds(node: Node) -> None:
    before = await node.metrics()
    assert value(before, "shortvid_jobs_total", type="video.parse", state="completed") is None
    assert value(before, "shortvid_queue_depth") == 0

    completed = await _submit(node, "/api/video/parse", DOUYIN)
    failed = await _submit(node, "/api/tiktok/video/parse", TIKTOK)
    retried = await _submit(node, "/api/video/download", DOUYIN_RETRIED)
    assert (completed["state"], failed["state"], retried["state"]) == ("completed", "failed", "completed")
    assert (await node.client.get("/api/no/such/route")).status == 404

    text = await node.metrics()
    assert value(text, "shortvid_jobs_total", type="video.parse", state="completed") == 1
    assert value(text, "shortvid_jobs_total", type="tiktok.video.parse", state="failed") == 1
    assert value(text, "shortvid_jobs_total", type="video.download", state="completed") == 1
    assert value(text, "shortvid_job_failures_total", type="tiktok.video.parse", code="not_found") == 1
    assert value(text, "shortvid_job_retries_total", type="video.download", code="blocked") == 1
    # Credits: the failed job's 10 came back; nothing was refunded for the others.
    assert value(text, "shortvid_credits_refunded_total", type="tiktok.video.parse") == 10
    assert value(text, "shortvid_credits_refunded_total", type="video.parse") is None
    # One duration per attempt, labelled by how the attempt ended.
    histogram = "shortvid_job_duration_seconds_count"
    assert value(text, histogram, type="video.parse", outcome="completed") == 1
    assert value(text, histogram, type="tiktok.video.parse", outcome="failed") == 1
    assert value(text, histogram, type="video.download", outcome="retry") == 1
    assert value(text, histogram, type="video.download", outcome="completed") == 1
    # Requests by route template and status; a raw path never becomes a label.
    requests = "shortvid_http_requests_total"
    assert value(text, requests, method="POST", route="/api/video/parse", status="200") == 1
    assert value(text, requests, method="POST", route="/api/tiktok/video/parse", status="200") == 1
    assert value(text, requests, method="GET", route="unmatched", status="404") == 1
    assert value(text, requests, method="GET", route="/metrics", status="200") == 1  # the first scrape
    assert (value(text, requests, method="GET", route="/api/job/{job_id}", status="200") or 0) >= 3
    assert completed["id"] not in text and "/api/no/such/route" not in text
    # The queue census is read at scrape time.
    assert value(text, "shortvid_queue_jobs", state="completed") == 2
    assert value(text, "shortvid_queue_jobs", state="failed") == 1
    assert value(text, "shortvid_queue_depth") == 0
    assert "shortvid_sessions" not in text  # role api: no browser pool here


async def test_an_error_answer_is_counted_with_its_status(node: Node) -> None:
    await node.client.post(
        "/api/video/parse", json={"url": "https://example.com/x"}, headers=node.auth(node.user)
    )
    await node.client.post("/api/video/parse", json={"url": DOUYIN})  # no token
    text = await node.metrics()
    requests = "shortvid_http_requests_total"
    assert value(text, requests, method="POST", route="/api/video/parse", status="400") == 1
    assert value(text, requests, method="POST", route="/api/video/parse", status="401") == 1


async def test_credits_charged_at_submit_are_counted(node: Node) -> None:
    await _submit(node, "/api/video/parse", DOUYIN)
    text = await node.metrics()
    assert value(text, "shortvid_credits_charged_total", type="video.parse") == 10


async def test_a_job_recovery_fails_for_good_is_counted_with_its_refund(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, max_attempts=1), on_first_token=lambda token, info: None)
    async with TestClient(TestServer(app)) as client:  # no worker: the test plays the one that dies
        admin, _ = await app[TOKENS].create(name="ops", unlimited=True, admin=True)
        user, _ = await app[TOKENS].create(name="client", credits=1000)
        node, queue = Node(client, admin, user), app[QUEUE]
        response = await node.client.post(
            "/api/video/parse", json={"url": DOUYIN}, headers=node.auth(node.user)
        )
        job_id = (await response.json())["data"]["jobId"]
        claimed = await queue.claim("dead-worker:1:1")  # its only attempt, then the worker dies
        assert claimed is not None and claimed.id == job_id
        recovered = await queue.recover_expired(now=utcnow() + timedelta(hours=1))
        assert recovered.failed == 1
        text = await node.metrics()
        assert value(text, "shortvid_jobs_total", type="video.parse", state="failed") == 1
        assert value(text, "shortvid_job_failures_total", type="video.parse", code="lost") == 1
        assert value(text, "shortvid_credits_refunded_total", type="video.parse") == 10


async def test_metrics_need_an_admin_token_by_default(node: Node) -> None:
    anonymous = await node.client.get("/metrics")
    assert anonymous.status == 401
    assert (await anonymous.json())["success"] is False
    assert (await node.client.get("/metrics", headers=node.auth(node.user))).status == 403
    admitted = await node.client.get("/metrics", headers=node.auth(node.admin))
    assert admitted.status == 200
    assert admitted.headers["Content-Type"].startswith("text/plain")
    openmetrics = await node.client.get(
        "/metrics", headers={**node.auth(node.admin), "Accept": "application/openmetrics-text"}
    )
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await openmetrics.text()).rstrip().endswith("# EOF")


@pytest.mark.parametrize("mode", ["loopback", "open"])
async def test_metrics_without_a_token_when_configured(tmp_path: Path, mode: str) -> None:
    async with _start(_settings(tmp_path, metrics_auth=mode)) as node:
        response = await node.client.get("/metrics")  # the test client connects from 127.0.0.1
        assert response.status == 200
        assert "shortvid_queue_depth" in await response.text()


def test_loopback_means_the_loopback_addresses_only() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.10") and is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")
    for remote in ("10.0.0.1", "192.168.1.2", "::ffff:10.0.0.1", "2001:db8::1", "", None, "localhost"):
        assert not is_loopback(remote), remote


def test_metrics_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().metrics_auth == "admin"
    monkeypatch.setenv("SHORTVID_METRICS_AUTH", "loopback")
    assert load_settings().metrics_auth == "loopback"
    monkeypatch.setenv("SHORTVID_METRICS_AUTH", "nobody")
    with pytest.raises(SettingsError, match="SHORTVID_METRICS_AUTH"):
        load_settings()


class _StandInPool:
    def __init__(self) -> None:
        self.blocks = collections.Counter({"rate_limited": 2})
        self.relaunched = collections.Counter({"died": 1})
        self.retired = collections.Counter({"error_score": 3})

    def census(self) -> dict[str, Any]:
        return {
            "browser_alive": True,
            "sessions": {"total": 3, "busy": 1, "idle": 2, "healthy": 1, "cooling": 2, "retired": 0},
        }


def test_the_pool_is_read_when_metrics_are_collected() -> None:
    metrics, pool = Metrics(), _StandInPool()
    metrics.refresh(None, pool)
    text = metrics.render()[0].decode()
    assert value(text, "shortvid_sessions", state="cooling") == 2
    assert value(text, "shortvid_sessions", state="healthy") == 1
    assert value(text, "shortvid_sessions_busy") == 1
    assert value(text, "shortvid_browser_up") == 1
    assert value(text, "shortvid_blocks_total", kind="rate_limited") == 2
    assert value(text, "shortvid_blocks_total", kind="blocked") == 0  # present before the first one
    assert value(text, "shortvid_browser_relaunches_total", reason="died") == 1
    assert value(text, "shortvid_sessions_retired_total", reason="error_score") == 3
    pool.blocks["blocked"] += 1  # no copy was taken: the next scrape sees it
    assert value(metrics.render()[0].decode(), "shortvid_blocks_total", kind="blocked") == 1
    assert "shortvid_queue_depth" not in text  # no queue census was given


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    first = create_app(_settings(tmp_path / "a"), on_first_token=lambda token, info: None)
    second = create_app(_settings(tmp_path / "b"), on_first_token=lambda token, info: None)
    first[METRICS].job_completed("video.parse", 0.1)
    assert "shortvid_jobs_total" in first[METRICS].render()[0].decode()
    assert (
        value(
            second[METRICS].render()[0].decode(), "shortvid_jobs_total", type="video.parse", state="completed"
        )
        is None
    )


@pytest.mark.browser
async def test_a_real_pool_counts_blocks_and_relaunches() -> None:
    settings = replace(load_browser_settings(), pool_size=1)
    async with BrowserPool(settings) as pool:
        with pytest.raises(Blocked):
            async with pool.session():
                raise Blocked("captcha page")
        with pytest.raises(NotFound):  # a business answer is no block
            async with pool.session():
                raise NotFound("deleted")
        async with pool.session() as session:  # a route blocked, then another route of it succeeded
            session.record(Blocked("captcha on the first route"))
        assert pool._browser is not None
        await pool._browser.close()
        with job_context(job_id="j"):  # log lines name the session a job holds, then the last it held
            async with pool.session() as session:  # the lease relaunches the dead browser
                assert current_session() == session.id
            assert current_session() == session.id and LEASED.get() == [session.id]
        assert current_session() is None
        metrics = Metrics()
        metrics.refresh(None, pool)
        text = metrics.render()[0].decode()
    assert value(text, "shortvid_blocks_total", kind="blocked") == 2
    assert value(text, "shortvid_blocks_total", kind="rate_limited") == 0
    assert value(text, "shortvid_browser_relaunches_total", reason="died") == 1
    assert value(text, "shortvid_browser_relaunches_total", reason="rollover") == 0
    assert pool.census()["blocks"] == {"blocked": 2}
