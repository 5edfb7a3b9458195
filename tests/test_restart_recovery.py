"""A restarted node takes back its dead incarnation's jobs at once, and only those."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from fixtures.site import FixtureSite
from models.db import create_schema, make_engine, session_factory
from models.tables import JobState
from scraper.config import load_browser_settings
from server.node import Node, NodeBusy
from server.queue import JobQueue, Recovered
from server.settings import Settings
from server.tokens import TokenStore
from tests.e2e import items_where, poll_job, start_app
from tests.jobs import enqueue_job


def test_node_id_is_stable_per_data_dir_and_name(tmp_path: Path) -> None:
    first = Node.open(tmp_path / "a")
    first.close()
    again = Node.open(tmp_path / "a")
    other = Node.open(tmp_path / "b")
    named = Node.open(tmp_path / "a", "gpu box:7")  # another node name: its own files, its own lock
    try:
        assert again.node_id == first.node_id and again.incarnation != first.incarnation
        assert other.node_id != first.node_id
        assert named.node_id.startswith("gpu-box-7-") and named.node_id != first.node_id
        assert again.worker_id(3) == f"{again.node_id}:{again.incarnation}:3"
        assert again.worker_id(3).startswith(again.current) and again.current.startswith(again.prefix)
        assert len(named.worker_id(99)) <= 80  # fits jobs.worker_id
    finally:
        for node in (again, other, named):
            node.close()


def test_a_second_live_process_on_the_same_node_is_refused(tmp_path: Path) -> None:
    node = Node.open(tmp_path)
    try:
        with pytest.raises(NodeBusy, match=r"already runs with .* give each node its own"):
            Node.open(tmp_path)
    finally:
        node.close()
    Node.open(tmp_path).close()  # released with its holder


async def _claimed_by(queue: JobQueue, token_id: int, owners: list[str], max_attempts: int = 3) -> list[str]:
    """One job per owner, each claimed by that owner (a worker id)."""
    ids = []
    for n, owner in enumerate(owners):
        await enqueue_job(queue, n, token_id=token_id, cost=10, max_attempts=max_attempts)
        job = await queue.claim(owner)
        assert job is not None
        ids.append(job.id)
    return ids


async def test_only_earlier_incarnations_of_this_node_are_taken_back(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    queue = JobQueue(sessions, lease=timedelta(seconds=90), result_ttl=timedelta(hours=1))
    tokens = TokenStore(sessions)
    _, info = await tokens.create(name="t", credits=100)
    assert info.id is not None
    owners = ["n1:old:0", "n1:now:0", "n2:old:0", "n1x:old:0", "n_:old:0"]
    earlier, current, other_node, lookalike, wildcard = await _claimed_by(queue, info.id, owners)
    [spent] = await _claimed_by(queue, info.id, ["n1:older:1"], max_attempts=1)

    assert await queue.recover_restarted("n1:", "n1:now:") == Recovered(requeued=1, failed=1)
    assert await queue.recover_restarted("n1:", "n1:now:") == Recovered()
    states = {job_id: (await queue.get(job_id)).state for job_id in (earlier, spent)}  # type: ignore[union-attr]
    assert states == {earlier: JobState.DELAYED, spent: JobState.FAILED}
    for untouched in (current, other_node, lookalike, wildcard):
        assert (await queue.get(untouched)).state == JobState.ACTIVE  # type: ignore[union-attr]
    assert (await tokens.find("t")).credits == 100 - 10 * len(owners)  # type: ignore[union-attr]
    # "_" is a LIKE wildcard: the prefix is matched literally, so "n_:" takes back only its own.
    assert await queue.recover_restarted("n_:", "n_:now:") == Recovered(requeued=1)
    assert (await queue.get(lookalike)).state == JobState.ACTIVE  # type: ignore[union-attr]


@pytest.mark.browser
async def test_restarted_node_runs_its_orphan_long_before_the_lease(
    site: FixtureSite, dataset: dict[str, Any], tmp_path: Path
) -> None:
    """A job held by this node's dead incarnation completes within seconds, with a 90 s lease."""
    settings = Settings(data_dir=tmp_path, workers=1, lease=timedelta(seconds=90), rate_limit=0)
    [(_, item)] = items_where(dataset, platform="tiktok", state="public", kind="video")[:1]
    dead = Node.open(tmp_path)
    dead.close()
    engine = make_engine(settings.resolved_database_url)
    try:
        await create_schema(engine)
        queue = JobQueue(session_factory(engine), lease=settings.lease, result_ttl=settings.result_ttl)
        job = await queue.enqueue(
            token_id=None,
            job_type="tiktok.video.parse",
            platform="tiktok",
            url=item["url"],
            payload={},
            cost=0,
            max_attempts=3,
        )
        assert (await queue.claim(dead.worker_id(0))) is not None
    finally:
        await engine.dispose()
    started = time.monotonic()
    client = await start_app(settings, load_browser_settings().pointed_at(site))
    try:
        done = await poll_job(client, job.id, deadline=30)
    finally:
        await client.close()
    assert done["state"] == "completed", done
    assert time.monotonic() - started < settings.lease.total_seconds() / 3
