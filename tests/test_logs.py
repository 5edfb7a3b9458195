"""Structured logs: JSON lines that carry a job's id on every line of the job, key=value text with
the ``extra`` fields, and APScheduler quieted with named duties."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import session_factory
from models.tables import Job, JobState
from scraper.errors import NotFound
from scraper.pool import LEASED
from server.logs import JsonFormatter, KeyValueFormatter, configure_logging, job_context
from server.queue import JobQueue
from server.scheduler import NodeDuties, build_scheduler
from server.settings import Settings, log_format_from_env
from server.worker import Worker
from tests.jobs import enqueue_job

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SETTINGS = Settings(retry_base=timedelta(milliseconds=10), poll_interval=timedelta(milliseconds=20))


def _record(message: str, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("scraper.loader", logging.INFO, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


async def _deep_in_the_scraper(ctx: Any, job: Job) -> dict[str, Any]:
    logging.getLogger("scraper.loader").info("page loaded", extra={"route": "douyin.detail"})
    return {"ok": True}


async def _deleted(ctx: Any, job: Job) -> dict[str, Any]:
    raise NotFound("the video was deleted")


async def _run_jobs(engine: AsyncEngine, handlers: dict[str, Any], types: list[str]) -> list[str]:
    queue = JobQueue(session_factory(engine), lease=timedelta(seconds=30), result_ttl=timedelta(hours=1))
    ids = [(await enqueue_job(queue, n, job_type=kind)).id for n, kind in enumerate(types)]
    worker = Worker(queue=queue, context=None, settings=SETTINGS, wakeup=asyncio.Event(), handlers=handlers)  # type: ignore[arg-type]
    loop = asyncio.ensure_future(worker.run())
    try:
        # Polled, not woken by the job's end event: the worker logs its outcome line after the
        # state commits, so "the job ended" comes a step before "the worker said so".
        async with asyncio.timeout(15):  # bounds a hung test only
            for job_id in ids:
                while (job := await queue.get(job_id)) is not None and job.state not in JobState.FINISHED:
                    await asyncio.sleep(0.02)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    return ids


async def test_json_lines_carry_the_job_on_every_line_of_the_job(
    engine: AsyncEngine, json_lines: io.StringIO
) -> None:
    handlers = {"video.parse": _deep_in_the_scraper, "tiktok.video.parse": _deleted}
    completed, failed = await _run_jobs(engine, handlers, ["video.parse", "tiktok.video.parse"])
    entries = [json.loads(line) for line in json_lines.getvalue().splitlines()]  # each line is one object
    assert all(TIMESTAMP.match(e["ts"]) and e["level"] and e["logger"] and "message" in e for e in entries)

    ours = [e for e in entries if e.get("job_id") == completed]
    assert [e["message"] for e in ours] == ["job started", "page loaded", "job completed"]
    assert all(e["job_type"] == "video.parse" and e["attempt"] == 1 for e in ours)
    assert ours[1]["logger"] == "scraper.loader" and ours[1]["route"] == "douyin.detail"

    theirs = [e for e in entries if e.get("job_id") == failed]
    assert theirs[-1]["message"] == "job failed: Video not found: the video was deleted"
    assert theirs[-1]["error_code"] == "not_found" and theirs[-1]["job_type"] == "tiktok.video.parse"
    # Outside a job, lines carry no job.
    assert all(e.get("job_id") in (completed, failed) for e in entries if e["logger"] == "server.worker")


def test_key_value_text_shows_the_extra_fields() -> None:
    line = KeyValueFormatter().format(
        _record("route failed", code="blocked", error="captcha page", empty="", ratio=0.5)
    )
    head, fields = line.split(": route failed ")
    assert TIMESTAMP.match(head.split(" ")[0]) and head.endswith("INFO scraper.loader")
    assert fields == 'code=blocked error="captcha page" empty="" ratio=0.5'


def test_the_job_context_and_the_session_reach_every_format() -> None:
    with job_context(job_id="j-1", job_type="video.parse", attempt=2):
        leased = LEASED.get()
        assert leased == []
        leased.append("s7")  # as the pool does when the job leases a session
        text = KeyValueFormatter().format(_record("loaded", attempt=3))
        entry = json.loads(JsonFormatter().format(_record("loaded")))
    assert text.endswith("loaded job_id=j-1 job_type=video.parse attempt=3 session=s7")  # extra wins
    assert entry["job_id"] == "j-1" and entry["session"] == "s7" and entry["attempt"] == 2
    assert "job_id" not in json.loads(JsonFormatter().format(_record("after the job")))
    assert LEASED.get() is None


def test_json_keeps_one_line_for_any_text_and_value() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "title\u2028with\nbreaks %s", ("é",), None
        )
        record.exc_info = sys.exc_info()
    record.path = Path("downloads") / "a b.mp4"
    line = JsonFormatter().format(record)
    assert "\n" not in line and "\u2028" not in line
    entry = json.loads(line)
    assert entry["message"] == "title\u2028with\nbreaks é"
    assert entry["path"] == str(Path("downloads") / "a b.mp4") and "ValueError: boom" in entry["exc_info"]


def test_configure_logging_replaces_only_its_own_handler_and_quiets_apscheduler() -> None:
    root = logging.getLogger()
    level, before = root.level, list(root.handlers)
    first = configure_logging("text", stream=io.StringIO())
    second = configure_logging("json", stream=io.StringIO())
    try:
        assert first not in root.handlers and second in root.handlers
        assert [h for h in root.handlers if h is not second] == before
        assert isinstance(second.formatter, JsonFormatter)
        assert logging.getLogger("apscheduler.executors.default").getEffectiveLevel() == logging.WARNING
    finally:
        root.removeHandler(second)
        root.setLevel(level)


def test_the_log_format_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert log_format_from_env() == "text"
    monkeypatch.setenv("SHORTVID_LOG_FORMAT", "json")
    assert log_format_from_env() == "json"
    monkeypatch.setenv("SHORTVID_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="SHORTVID_LOG_FORMAT"):
        log_format_from_env()


def test_scheduled_duties_have_names() -> None:
    async def nothing() -> None:
        return None

    queue = SimpleNamespace(recover_expired=nothing, expire_results=nothing)
    files = SimpleNamespace(expire=nothing, enforce_cap=nothing, sweep_partials=lambda: 0)
    pool = SimpleNamespace(maintain=nothing)
    node = NodeDuties(registry=SimpleNamespace(beat=nothing), node_id="n")  # type: ignore[arg-type]
    scheduler = build_scheduler(Settings(), queue, pool, files, node)  # type: ignore[arg-type]
    jobs = {job.id: job.name for job in scheduler.get_jobs()}
    assert jobs == {
        name: name
        for name in (
            "recover_expired_leases",
            "expire_results",
            "node_heartbeat",
            "tidy_files",
            "sweep_orphan_files",
            "pool_census",
        )
    }
    assert logging.getLogger("apscheduler.executors.default").getEffectiveLevel() == logging.WARNING
