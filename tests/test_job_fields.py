"""Jobs say more (ours): ``?detail=1`` adds timestamps, attempts, a stable ``error_code`` and
``retryable`` after the vendor's keys, which stay as they are; tasks carry them always; one
timestamp format (ISO 8601 UTC, milliseconds, ``Z``) for every timestamp we add."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from models.tables import JobErrorCode
from scraper import errors
from server.error_map import job_error
from server.keys import QUEUE, TOKENS
from server.queue import _LEASE_EXPIRED, _RESTARTED
from tests.test_wait_events import Gate, Node, start_node

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
DOUYIN = "https://www.douyin.com/video/7071967230287744267"


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    async with start_node(tmp_path, None) as started:
        yield started


async def _view(node: Node, job_id: str, query: str = "") -> dict[str, Any]:
    response = await node.client.get(f"/api/job/{job_id}{query}")
    body = await response.json()
    assert response.status == 200, body
    return dict(body["data"])


async def test_the_vendor_shape_is_unchanged_without_detail(node: Node) -> None:
    job_id = await node.submit()
    assert await _view(node, job_id) == {
        "id": job_id,
        "state": "waiting",
        "data": {"type": "video.parse", "url": DOUYIN},
    }
    assert await _view(node, job_id, "?detail=0") == await _view(node, job_id)


async def test_detail_adds_times_and_attempts_after_the_vendor_keys(node: Node) -> None:
    job_id = await node.submit()
    waiting = await _view(node, job_id, "?detail=1")
    assert list(waiting)[:3] == ["id", "state", "data"]
    assert ISO_MS.fullmatch(waiting["created_at"])
    assert waiting["started_at"] is None and waiting["finished_at"] is None and waiting["attempts"] == 0
    gate = Gate()
    gate.release.set()
    node.run_worker({"video.parse": gate})
    done = await _view(node, job_id, "?wait=30&detail=true")
    assert list(done)[:3] == ["id", "state", "result"] and done["result"] == gate.result
    assert done["attempts"] == 1 and "error_code" not in done
    created, started, finished = (
        datetime.strptime(done[key], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        for key in ("created_at", "started_at", "finished_at")
    )
    assert created <= started <= finished
    assert all(ISO_MS.fullmatch(done[key]) for key in ("created_at", "started_at", "finished_at"))


async def test_a_failure_keeps_the_vendor_error_and_adds_a_code(node: Node) -> None:
    job_id = await node.submit()
    gate = Gate(error=errors.PrivateContent("only the owner can see it"))
    gate.release.set()
    node.run_worker({"video.parse": gate})
    vendor = await _view(node, job_id, "?wait=30")
    assert vendor == {"id": job_id, "state": "failed", "error": "Video is private: only the owner can see it"}
    detailed = await _view(node, job_id, "?detail=1")
    assert {key: detailed[key] for key in ("error", "error_code", "retryable")} == {
        "error": vendor["error"],
        "error_code": "private",
        "retryable": False,
    }


async def test_a_delayed_job_says_why_it_waits(node: Node) -> None:
    job_id = await node.submit()
    queue = node.client.app[QUEUE]
    assert await queue.claim("w") is not None
    assert await queue.retry_later(
        job_id, "w", error="Blocked by the platform: captcha", code="blocked", delay=timedelta(days=1)
    )
    view = await _view(node, job_id, "?detail=1")
    assert view["state"] == "delayed" and view["last_error"].startswith("Blocked")
    assert view["error_code"] == "blocked" and view["retryable"] is True and view["attempts"] == 1


async def test_a_stored_code_outside_the_set_is_shown_as_internal(node: Node) -> None:
    job_id = await node.submit()
    queue = node.client.app[QUEUE]
    assert await queue.claim("w") is not None
    assert await queue.fail(job_id, "w", error="something odd", code="something_new")
    view = await _view(node, job_id, "?detail=1")
    assert view["error"] == "something odd" and view["error_code"] == "internal" and view["retryable"] is True


@pytest.mark.parametrize("value", ["yes", "2", "", "TRUE1"])
async def test_detail_takes_only_booleans(node: Node, value: str) -> None:
    job_id = await node.submit()
    response = await node.client.get(f"/api/job/{job_id}", params={"detail": value})
    assert response.status == 400 and '"detail" must be 1 or true' in (await response.json())["error"]


async def test_a_task_carries_the_fields_always(node: Node) -> None:
    profile = "https://www.douyin.com/user/MS4wLjABAAAAxyz1234567"
    task_id = await node.submit("/api/channel/download", url=profile, count=2)
    gate = Gate(error=errors.NotFound("no such account"))
    gate.release.set()
    node.run_worker({"channel.download": gate})
    task = (await (await node.client.get(f"/api/task/{task_id}?wait=30")).json())["data"]
    assert task["status"] == "failed" and task["error"].startswith("Video not found")
    assert task["error_code"] == "not_found" and task["retryable"] is False and task["attempts"] == 1
    assert all(ISO_MS.fullmatch(task[key]) for key in ("created_at", "started_at", "finished_at"))
    assert "callback" not in task


async def test_admin_token_timestamps_use_the_same_format(node: Node) -> None:
    admin, _ = await node.client.app[TOKENS].create(name="ops", unlimited=True, admin=True)
    listed = await node.client.get("/api/admin/tokens", headers={"Authorization": f"Bearer {admin}"})
    for token in (await listed.json())["data"]:
        assert ISO_MS.fullmatch(token["created_at"])
        assert token["last_used_at"] is None or ISO_MS.fullmatch(token["last_used_at"])


# ---- the stable set of codes ----------------------------------------------------------------------

#: Codes that never reach a job: the fast path falls back to navigation; the base class is abstract.
_NEVER_STORED = {errors.FastPathMissed.code, errors.ScraperError.code}


def _error_classes(base: type[errors.ScraperError]) -> list[type[errors.ScraperError]]:
    found = []
    for sub in base.__subclasses__():
        found += [sub, *_error_classes(sub)]
    return found


@pytest.mark.parametrize(
    "kind",
    [kind for kind in _error_classes(errors.ScraperError) if job_error(kind("x"))[1] not in _NEVER_STORED],
    ids=lambda kind: kind.__name__,
)
def test_every_scraper_error_has_a_stable_code_that_agrees_on_retrying(
    kind: type[errors.ScraperError],
) -> None:
    _, code = job_error(kind("x"))
    assert code in JobErrorCode.ALL
    assert (code in JobErrorCode.RETRYABLE) is kind.retryable, code


def test_the_queue_and_worker_codes_are_in_the_set() -> None:
    assert job_error(TimeoutError())[1] in JobErrorCode.RETRYABLE
    assert job_error(RuntimeError())[1] == JobErrorCode.INTERNAL
    assert {_LEASE_EXPIRED[1], _RESTARTED[1], "lost"} <= JobErrorCode.RETRYABLE
    assert not JobErrorCode.FINAL & JobErrorCode.RETRYABLE
    assert JobErrorCode.public(None) is None and JobErrorCode.public("not_found") == "not_found"
