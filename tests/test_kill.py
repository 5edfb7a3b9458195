"""Real process kills: `shortvid serve` SIGKILLed mid-run loses no job and refunds exactly once.

SQLite: one node killed twice and restarted on its data directory takes its orphans back at once
(not after the 90 s lease). PostgreSQL: of two worker nodes, one is killed for good; the survivor
takes its orphans up once their (short) lease runs out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from fixtures.dataset import build_dataset
from models.db import make_engine, read_session_factory, sqlite_url
from models.tables import ApiToken, Job, JobState
from tests.conftest import PG_URL
from tests.e2e import ServeProcess, http_json, items_where
from tests.pg_databases import fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CREDITS = 10_000
COST = 10  # video.parse and tiktok.video.parse
ROUTES = {"douyin": "/api/video/parse", "tiktok": "/api/tiktok/video/parse"}
Rows = dict[str, tuple[str, str | None, int]]  # job id -> (state, worker id, attempts)


def _targets(n_public: int, n_deleted: int) -> list[tuple[str, str]]:
    """(platform, url) of fixture videos: public ones alternating platforms, then deleted ones."""
    dataset = build_dataset().to_json()
    public = {p: items_where(dataset, platform=p, state="public", kind="video") for p in ROUTES}
    picked = [("douyin", "tiktok")[n % 2] for n in range(n_public)]
    urls = [(p, public[p][n // 2][1]["url"]) for n, p in enumerate(picked)]
    deleted = items_where(dataset, state="deleted", kind="video")[:n_deleted]
    return urls + [(account["platform"], item["url"]) for account, item in deleted]


def _funded_token(base: str, admin: str) -> str:
    status, body = http_json("POST", base + "/api/admin/tokens", {"name": "kill", "credits": CREDITS}, admin)
    assert status == 200, body
    return str(body["data"]["token"])


def _submit(base: str, token: str, targets: list[tuple[str, str]]) -> list[str]:
    ids = []
    for platform, url in targets:
        status, body = http_json("POST", base + ROUTES[platform], {"url": url}, token)
        assert status == 200, body
        ids.append(str(body["data"]["jobId"]))
    return ids


async def _rows(engine: AsyncEngine) -> Rows:
    async with read_session_factory(engine)() as session:
        found = await session.execute(select(Job.id, Job.state, Job.worker_id, Job.attempts))
        return {job_id: (state, worker, attempts) for job_id, state, worker, attempts in found.all()}


async def _credits(engine: AsyncEngine) -> int:
    async with read_session_factory(engine)() as session:
        return int((await session.scalars(select(ApiToken.credits).where(ApiToken.name == "kill"))).one())


async def _until(engine: AsyncEngine, done: Callable[[Rows], bool], what: str, deadline: float = 60) -> Rows:
    """Poll the jobs table until ``done`` holds (the deadline only bounds a hung test)."""
    stop = time.monotonic() + deadline
    while not done(rows := await _rows(engine)):
        assert time.monotonic() < stop, f"timed out waiting for {what}: {rows}"
        await asyncio.sleep(0.05)
    return rows


def _active(rows: Rows, prefix: str = "") -> dict[str, str]:
    """Active jobs (of workers whose id starts with ``prefix``) -> their worker id."""
    return {
        job_id: worker
        for job_id, (state, worker, _) in rows.items()
        if state == JobState.ACTIVE and worker and worker.startswith(prefix)
    }


def _taken_up(orphans: dict[str, str]) -> Callable[[Rows], bool]:
    """No orphan is still held by the worker that died."""
    return lambda rows: all(_active(rows).get(job_id) != worker for job_id, worker in orphans.items())


def _all_finished(ids: list[str]) -> Callable[[Rows], bool]:
    return lambda rows: all(rows[job_id][0] in JobState.FINISHED for job_id in ids)


async def _kill_and_measure(
    victim: ServeProcess, engine: AsyncEngine, *, restart: bool, lease: float
) -> tuple[dict[str, str], float]:
    """SIGKILL ``victim`` while it runs a job; (its orphans, time until all were taken up / lease)."""
    prefix = _node_id(victim.data_dir) + ":"
    await _until(engine, lambda rows: bool(_active(rows, prefix)), "an active job on the victim")
    victim.kill()
    killed = time.monotonic()
    orphans = _active(await _rows(engine), prefix)
    if restart:
        victim.start()
        await asyncio.to_thread(victim.wait_ready)
    await _until(engine, _taken_up(orphans), "the orphans to be taken up", deadline=3 * lease)
    return orphans, (time.monotonic() - killed) / lease


def _node_id(data_dir: Path) -> str:
    [stored] = data_dir.glob("node-*.id")
    return stored.read_text().strip()


async def _check_ledger(engine: AsyncEngine, submitted: list[str], orphans: set[str], deleted: int) -> int:
    """Every job ended once: finished, the orphans on a later attempt, credits charged only for
    completed jobs (failures refunded exactly once). Returns how many jobs were lost (0)."""
    rows = await _rows(engine)
    lost = [job_id for job_id in submitted if rows[job_id][0] not in JobState.FINISHED]
    completed = sum(1 for job_id in submitted if rows[job_id][0] == JobState.COMPLETED)
    assert not lost
    assert completed == len(submitted) - deleted, rows
    assert all(rows[job_id][2] >= 2 for job_id in orphans), rows
    assert await _credits(engine) == CREDITS - COST * completed
    return len(lost)


def _report(record_property: Callable[[str, object], None], **numbers: object) -> None:
    for name, value in numbers.items():
        record_property(name, value)
    print("kill test:", ", ".join(f"{name}={value}" for name, value in numbers.items()))


def _second_process_is_refused(data_dir: Path) -> None:
    """Two processes on one node's data directory: the second exits at start with a clear message."""
    second = ServeProcess(data_dir, "--offline")
    second.start()
    try:
        assert second.process is not None and second.process.wait(timeout=60) == 2
    finally:
        second.stop()
    assert "already runs with" in second.log.read_text()


async def test_sqlite_node_killed_twice_and_restarted(tmp_path: Path, record_property: Any) -> None:
    lease, kills = 90.0, 2
    env = {"SHORTVID_LEASE": str(lease), "SHORTVID_RATE_LIMIT": "0", "SHORTVID_WORKERS": "2"}
    node = ServeProcess(tmp_path / "node", "--offline", env=env)
    engine = make_engine(sqlite_url(node.data_dir))
    submitted: list[str] = []
    orphans: set[str] = set()
    ratios: list[float] = []
    try:
        node.start()
        admin = await asyncio.to_thread(node.first_token)
        await asyncio.to_thread(node.wait_ready)
        _second_process_is_refused(node.data_dir)
        token = _funded_token(node.base, admin)
        for _ in range(kills):
            submitted += _submit(node.base, token, _targets(7, 1))
            killed, ratio = await _kill_and_measure(node, engine, restart=True, lease=lease)
            orphans |= killed.keys()
            ratios.append(round(ratio, 3))
        await _until(engine, _all_finished(submitted), "every job to finish", deadline=90)
        lost = await _check_ledger(engine, submitted, orphans, deleted=kills)
    finally:
        node.stop()
        await engine.dispose()
    _report(
        record_property,
        jobs_submitted=len(submitted),
        kills_survived=kills,
        orphans=len(orphans),
        jobs_lost=lost,
        recovery_to_lease=ratios,
    )
    assert max(ratios) < 1 / 3


@pytest.mark.pg
def test_pg_worker_killed_for_good_its_jobs_are_taken_up(tmp_path: Path, record_property: Any) -> None:
    """Sync: real nodes need a whole database of their own, and fresh_database runs its own loop."""
    if not PG_URL:
        pytest.skip("SHORTVID_TEST_DATABASE_URL is not set")
    lease, heartbeat = 6.0, 2.0
    with fresh_database(PG_URL, prefix="shortvid_kill") as url:
        submitted, orphans, lost, ratio = asyncio.run(_api_and_two_workers(tmp_path, url, lease, heartbeat))
    _report(
        record_property,
        jobs_submitted=len(submitted),
        kills_survived=1,
        orphans=len(orphans),
        jobs_lost=lost,
        recovery_to_lease=round(ratio, 3),
    )
    # Nobody takes the orphans before their lease (renewed until the kill) runs out: that node is gone.
    assert (lease - heartbeat) / lease <= ratio < 2


async def _api_and_two_workers(
    tmp_path: Path, url: str, lease: float, heartbeat: float
) -> tuple[list[str], dict[str, str], int, float]:
    """An api node and two worker nodes on one database; one worker is killed mid-run for good."""
    env = {
        "SHORTVID_DATABASE_URL": url,
        "SHORTVID_LEASE": str(lease),
        "SHORTVID_HEARTBEAT": str(heartbeat),
        "SHORTVID_RECOVER_EVERY": "1",
        "SHORTVID_RATE_LIMIT": "0",
        "SHORTVID_WORKERS": "2",
    }
    api = ServeProcess(tmp_path / "api", "--role", "api", env=env)
    workers = [ServeProcess(tmp_path / f"w{n}", "--role", "worker", "--offline", env=env) for n in (1, 2)]
    engine = make_engine(url)
    try:
        api.start()
        admin = await asyncio.to_thread(api.first_token)  # before the workers: one admin token
        for worker in workers:
            worker.start()
        for process in (api, *workers):
            await asyncio.to_thread(process.wait_ready)
        token = _funded_token(api.base, admin)
        submitted = _submit(api.base, token, _targets(14, 2))
        orphans, ratio = await _kill_and_measure(workers[0], engine, restart=False, lease=lease)
        await _until(engine, _all_finished(submitted), "every job to finish", deadline=90)
        lost = await _check_ledger(engine, submitted, set(orphans), deleted=2)
    finally:
        for process in (*workers, api):
            process.stop()
        await engine.dispose()
    return submitted, orphans, lost, ratio
