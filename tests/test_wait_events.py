"""Waiting without polling: ``?wait=N`` and Server-Sent Events on jobs and tasks, woken by job events
(in process, and across nodes through PostgreSQL LISTEN/NOTIFY).

The nodes here run with ``wait_recheck`` at a minute, far past every wait, so only a wake-up can
bring an answer in time: a missed one shows as a job still running when the wait ends. Workers
run stub handlers held on a gate, so each state is held until the test moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url

from server.app import create_app
from server.job_events import JOB_EVENTS, LISTENER, JobEvents, Watch
from server.keys import QUEUE, SETTINGS, TOKENS, WAKEUP
from server.settings import Settings
from server.worker import Worker
from tests.conftest import PG_URL

DOUYIN = "https://www.douyin.com/video/7071967230287744267"
DOUYIN_PROFILE = "https://www.douyin.com/user/MS4wLjABAAAAxyz1234567"


# ---- nodes: an app (role api) on SQLite or a PostgreSQL database, workers with stub handlers ------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    """None: SQLite in each node's data directory; else a fresh PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield None
        return
    if not PG_URL:
        pytest.skip("SHORTVID_TEST_DATABASE_URL is not set")
    name = f"shortvid_wait_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


class Gate:
    """A stub handler that holds every job until released (``error``: it raises that instead)."""

    def __init__(self, result: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.result = result or {"video_id": "7071967230287744267"}
        self.error = error

    async def __call__(self, _context: Any, _job: Any) -> dict[str, Any]:
        self.entered.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.result


class Registrations:
    """Counts the waiters a node's ``JobEvents`` registered, so a test can await the n-th one, and
    records how each of their sleeps ended: ``woken`` (a wake-up) or not (its time ran out). A
    waiter re-reads its job when its time runs out too, so only ``woken`` tells that a wake-up,
    not the deadline, brought the answer."""

    def __init__(self, events: JobEvents) -> None:
        self.count = 0
        self.woken: list[bool] = []
        self._changed = asyncio.Event()
        original = events.watch
        registrations = self

        class Recorded:
            def __init__(self, inner: Watch) -> None:
                self.inner = inner

            async def wait(self, seconds: float) -> bool:
                woken = await self.inner.wait(seconds)
                registrations.woken.append(woken)
                return woken

        @contextlib.contextmanager
        def watch(job_id: str) -> Iterator[Any]:
            with original(job_id) as registered:
                self.count += 1
                self._changed.set()
                yield Recorded(registered)

        events.watch = watch  # type: ignore[method-assign]

    async def reach(self, n: int) -> None:
        while self.count < n:
            self._changed.clear()
            await self._changed.wait()


@dataclass
class Node:
    client: TestClient
    token: str
    secret: str
    registrations: Registrations
    workers: list[asyncio.Task[None]] = field(default_factory=list)

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def submit(self, path: str = "/api/video/parse", **body: Any) -> str:
        response = await self.client.post(path, json={"url": DOUYIN, **body}, headers=self.auth())
        data = await response.json()
        assert response.status == 200, data
        return str(data["data"].get("jobId") or data["data"]["taskId"])

    async def stop_workers(self) -> None:
        for task in self.workers:
            task.cancel()
        for task in self.workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.workers.clear()

    def run_worker(self, handlers: dict[str, Any]) -> None:
        """One worker on this node's queue with ``handlers`` (stopped when the node closes)."""
        app = self.client.app
        worker = Worker(
            queue=app[QUEUE],
            context=None,  # type: ignore[arg-type]  # stub handlers need no browser
            settings=app[SETTINGS],
            wakeup=app[WAKEUP],
            handlers=handlers,
        )
        self.workers.append(asyncio.create_task(worker.run()))


def node_settings(tmp_path: Path, database_url: str | None, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path,
        "database_url": database_url,
        "role": "api",  # no browser, no workers of the app's own: tests run stub workers
        "rate_limit": 0,
        "retry_base": timedelta(milliseconds=10),
        "poll_interval": timedelta(milliseconds=20),
        "wait_recheck": timedelta(seconds=60),
        "webhook_retry_base": timedelta(milliseconds=10),
        "cache": False,  # every job reaches its handler (a shared result would skip the gate)
    }
    return Settings(**{**base, **changes})


@contextlib.asynccontextmanager
async def start_node(tmp_path: Path, database_url: str | None, **changes: Any) -> AsyncIterator[Node]:
    app = create_app(node_settings(tmp_path, database_url, **changes), on_first_token=lambda *_: None)
    registrations = Registrations(app[JOB_EVENTS])
    client = TestClient(TestServer(app))
    await client.start_server()
    token, info = await app[TOKENS].create(name=f"client-{uuid.uuid4().hex[:6]}", credits=100_000)
    assert info.webhook_secret is not None
    node = Node(client, token, info.webhook_secret, registrations)
    try:
        yield node
    finally:
        await node.stop_workers()
        await client.close()


@pytest.fixture
async def node(tmp_path: Path, database_url: str | None) -> AsyncIterator[Node]:
    async with start_node(tmp_path / "node", database_url) as started:
        yield started


# ---- ?wait=N -------------------------------------------------------------------------------------


async def test_wait_answers_completed_in_one_request(node: Node) -> None:
    job_id = await node.submit()
    gate = Gate()
    node.run_worker({"video.parse": gate})
    await gate.entered.wait()
    poll = asyncio.ensure_future(node.client.get(f"/api/job/{job_id}?wait=10"))
    await node.registrations.reach(1)  # the poll waits now, on an active job
    gate.release.set()
    response = await poll
    body = await response.json()
    assert response.status == 200
    assert body == {"success": True, "data": {"id": job_id, "state": "completed", "result": gate.result}}
    assert node.registrations.woken == [True]  # woken by the completion, not by its deadline


async def test_wait_on_a_finished_job_answers_at_once(node: Node) -> None:
    job_id = await node.submit()
    gate = Gate()
    gate.release.set()
    node.run_worker({"video.parse": gate})
    first = await (await node.client.get(f"/api/job/{job_id}?wait=30")).json()
    assert first["data"]["state"] == "completed"
    again = await (await node.client.get(f"/api/job/{job_id}?wait=30")).json()
    assert again == first


async def test_wait_runs_out_with_the_state_then(node: Node) -> None:
    job_id = await node.submit()  # no worker: it stays waiting
    response = await node.client.get(f"/api/job/{job_id}?wait=0.1")
    body = await response.json()
    assert response.status == 200 and body["data"]["state"] == "waiting"


@pytest.mark.parametrize("wait", ["0", "0.0", "31", "30.5", "-1", "abc", "nan", "inf", "1e1", "", " 5", "5s"])
async def test_wait_outside_its_range_is_400_saying_what_to_fix(node: Node, wait: str) -> None:
    job_id = await node.submit()
    response = await node.client.get(f"/api/job/{job_id}", params={"wait": wait})
    assert response.status == 400
    assert (await response.json())["error"] == (
        '"wait" must be a number of seconds above 0 and at most 30, e.g. ?wait=10.'
    )


@pytest.mark.parametrize("wait", ["30", "0.5", ".5", "10.25"])
async def test_wait_in_range_is_accepted(node: Node, wait: str) -> None:
    job_id = await node.submit()
    gate = Gate()
    gate.release.set()
    node.run_worker({"video.parse": gate})
    response = await node.client.get(f"/api/job/{job_id}", params={"wait": wait})
    assert response.status == 200


async def test_wait_on_an_unknown_job_is_404_at_once(node: Node) -> None:
    unknown = await node.client.get(f"/api/job/{uuid.uuid4()}?wait=30")
    assert unknown.status == 404 and (await unknown.json())["error"] == "Job not found"
    junk = await node.client.get("/api/job/nope?wait=30")
    assert junk.status == 404
    assert node.registrations.count == 1  # the well-formed id registered; the junk one never did


async def test_waiters_beyond_the_limit_get_503(tmp_path: Path, database_url: str | None) -> None:
    async with start_node(tmp_path, database_url, max_waiters=1) as node:
        job_id = await node.submit()
        holding = asyncio.ensure_future(node.client.get(f"/api/job/{job_id}?wait=30"))
        await node.registrations.reach(1)
        refused = await node.client.get(f"/api/job/{job_id}?wait=5")
        assert refused.status == 503 and refused.headers["Retry-After"] == "2"
        assert "already wait on jobs" in (await refused.json())["error"]
        stream = await node.client.get(f"/api/job/{job_id}/events")
        assert stream.status == 503
        plain = await node.client.get(f"/api/job/{job_id}")  # a plain poll never waits, never refused
        assert plain.status == 200
        gate = Gate()
        gate.release.set()
        node.run_worker({"video.parse": gate})
        assert (await (await holding).json())["data"]["state"] == "completed"
        assert node.client.app[JOB_EVENTS].waiting == 0


# ---- Server-Sent Events --------------------------------------------------------------------------


async def next_event(response: ClientResponse) -> tuple[str, str]:
    """The next event of an SSE stream: (event name, data); comments (pings) skipped."""
    name, data = "message", []
    while True:
        raw = await response.content.readline()
        if not raw:
            raise EOFError("the stream ended")
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                return name, "\n".join(data)
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)


async def states(response: ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The ``state`` events' jobs until ``end``, which must come last, before the stream closes."""
    while True:
        name, data = await next_event(response)
        if name == "end":
            assert await response.content.read() == b""
            return
        assert name == "state", name
        yield json.loads(data)


async def test_events_stream_waiting_active_completed(node: Node) -> None:
    job_id = await node.submit()
    response = await node.client.get(f"/api/job/{job_id}/events")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    seen = states(response)
    waiting = await anext(seen)
    assert waiting["state"] == "waiting" and waiting["attempts"] == 0 and waiting["started_at"] is None
    gate = Gate()
    node.run_worker({"video.parse": gate})
    active = await anext(seen)
    assert active["state"] == "active" and active["attempts"] == 1 and active["started_at"]
    gate.release.set()
    completed = await anext(seen)
    assert completed["state"] == "completed" and completed["result"] == gate.result
    assert completed["finished_at"] and "data" not in completed
    assert [job async for job in seen] == []  # then ``end``, and the stream closes
    assert node.client.app[JOB_EVENTS].waiting == 0


async def test_events_of_a_finished_job(node: Node) -> None:
    job_id = await node.submit()
    gate = Gate()
    gate.release.set()
    node.run_worker({"video.parse": gate})
    assert (await (await node.client.get(f"/api/job/{job_id}?wait=30")).json())["data"][
        "state"
    ] == "completed"
    response = await node.client.get(f"/api/job/{job_id}/events")
    assert [job["state"] async for job in states(response)] == ["completed"]
    # An EventSource reconnecting after the end is told to stop (204), not fed the end again.
    again = await node.client.get(f"/api/job/{job_id}/events", headers={"Last-Event-ID": "1"})
    assert again.status == 204


async def test_events_of_an_unknown_job_are_404(node: Node) -> None:
    for path in (
        f"/api/job/{uuid.uuid4()}/events",
        "/api/job/nope/events",
        f"/api/task/{uuid.uuid4()}/events",
    ):
        response = await node.client.get(path)
        assert response.status == 404 and (await response.json())["success"] is False


async def test_an_event_stream_ends_after_its_longest_time(tmp_path: Path, database_url: str | None) -> None:
    async with start_node(tmp_path, database_url, sse_max_duration=timedelta(milliseconds=100)) as node:
        job_id = await node.submit()  # never runs
        response = await node.client.get(f"/api/job/{job_id}/events")
        assert await next_event(response) == ("state", await _state_json(node, job_id))
        assert await response.content.read() == b""  # closed without ``end``: the client reconnects
        assert node.client.app[JOB_EVENTS].waiting == 0


async def _state_json(node: Node, job_id: str) -> str:
    view = (await (await node.client.get(f"/api/job/{job_id}?detail=1")).json())["data"]
    return json.dumps(view)


# ---- channel tasks -------------------------------------------------------------------------------


async def test_task_wait_and_events(node: Node) -> None:
    task_id = await node.submit("/api/channel/download", url=DOUYIN_PROFILE, count=3)
    response = await node.client.get(f"/api/task/{task_id}/events")
    seen = states(response)
    assert (await anext(seen))["status"] == "started"
    gate = Gate(result={"videos": []})
    node.run_worker({"channel.download": gate})
    assert (await anext(seen))["status"] == "running"
    poll = asyncio.ensure_future(node.client.get(f"/api/task/{task_id}?wait=10"))
    await node.registrations.reach(2)
    gate.release.set()
    done = (await (await poll).json())["data"]
    assert done["status"] == "completed" and done["taskId"] == task_id and done["finished_at"]
    assert [view["status"] async for view in seen] == ["completed"]


# ---- across nodes on PostgreSQL ------------------------------------------------------------------


@pytest.mark.pg
@pytest.mark.skipif(not PG_URL, reason="SHORTVID_TEST_DATABASE_URL is not set")
async def test_a_waiter_on_an_api_node_hears_a_worker_node(tmp_path: Path, database_url: str | None) -> None:
    if database_url is None:
        pytest.skip("PostgreSQL only")
    async with (
        start_node(tmp_path / "api", database_url) as api,
        start_node(tmp_path / "worker", database_url) as worker_node,  # its own JobEvents, a stub worker
    ):
        listener = api.client.app[LISTENER]
        await listener.connected()
        await _completion_heard_across_nodes(api, worker_node)
        # PostgreSQL drops the LISTEN connection (a restart does the same): the listener comes back
        # and the next completion is heard as well.
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", listener.server_pid)
        finally:
            await admin.close()
        await listener.connected(after=1)
        await _completion_heard_across_nodes(api, worker_node)


async def _completion_heard_across_nodes(api: Node, worker_node: Node) -> None:
    """A job submitted on ``api`` and run by a worker of ``worker_node``; the wait on ``api`` (whose
    own queue never moves the job, and which re-reads only after a minute) answers completed."""
    job_id = await api.submit()
    gate = Gate()
    worker_node.run_worker({"video.parse": gate})
    await gate.entered.wait()
    before = api.registrations.count
    poll = asyncio.ensure_future(api.client.get(f"/api/job/{job_id}?wait=20"))
    await api.registrations.reach(before + 1)
    gate.release.set()
    body = await (await poll).json()
    assert body["data"]["state"] == "completed", body
    assert api.registrations.woken[-1] is True  # the NOTIFY woke it, not its deadline
    await worker_node.stop_workers()  # the next round's job must reach the next round's gate
