"""Schema-driven fuzzing: schemathesis against a live offline app, from its own OpenAPI document.

The app (role api, with one worker of stub handlers, so no browser) listens on a loopback port
in a thread of its own, since schemathesis calls it with a blocking HTTP client. Every operation
of the document is run through schemathesis's examples, coverage and fuzzing phases, positive and
negative data, with a funded user token (an admin token on the admin routes). The checks: no 5xx,
every status documented, every body and Content-Type and documented header as declared.
The budget per operation is small and fixed, so the run takes seconds; the number of cases run
is reported at the end (``-s`` prints it, and it is a user property of the last test).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import hypothesis
import pytest
import requests
import schemathesis
from aiohttp import web
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from models.rows import JobRow
from models.video import Author, Video
from scraper.errors import NotFound
from server.app import create_app
from server.keys import QUEUE, TOKENS, WAKEUP
from server.media import download_result
from server.metrics import METRICS
from server.openapi import build_document
from server.settings import Settings
from server.worker import Worker

#: Fuzzing examples per operation (the examples and coverage phases add their own cases).
MAX_EXAMPLES = 25
#: Scenarios of linked calls (submit → poll, create token → top up ...), up to 6 calls each.
STATEFUL_EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]
ADMIN_TAGS = {"admin", "ops"}
USER_TOKEN = "sv_" + secrets.token_urlsafe(32)
ADMIN_TOKEN = "sv_" + secrets.token_urlsafe(32)


# --------------------------------------------------------------------------- stub job handlers


def _video(job: JobRow) -> Video:
    item = job.url.rstrip("/").rsplit("/", 1)[-1]
    return Video(
        video_id=item if item.isdigit() else "7328000000000000000",
        title="a post",
        create_time="2026-04-02T10:00:00.000Z",
        platform="tiktok" if "tiktok" in job.url else "douyin",
        duration=15,
        author=Author(nickname="someone", uid="1", sec_uid="MS4wLjABAAAAx"),
    )


async def _parse(ctx: Any, job: JobRow) -> dict[str, Any]:
    return _video(job).to_result()


async def _not_found(ctx: Any, job: JobRow) -> dict[str, Any]:
    raise NotFound("the video was deleted")


async def _download(ctx: Any, job: JobRow) -> dict[str, Any]:
    return download_result(_video(job), [])


async def _listing(ctx: Any, job: JobRow) -> dict[str, Any]:
    videos = [_video(job).to_result() for _ in range(2)]
    author = Author(nickname="someone").model_dump(mode="json")
    return {"author": author, "videos": videos, "count": 2, "has_more": False}


async def _task(ctx: Any, job: JobRow) -> dict[str, Any]:
    return {"total": 0, "done": 0, "failed": 0}


HANDLERS = {
    "video.parse": _parse,
    "tiktok.video.parse": _parse,
    "video.download": _not_found,
    "tiktok.video.download": _download,
    "channel.videos": _listing,
    "tiktok.channel.videos": _listing,
    "channel.download": _task,
    "tiktok.channel.download": _task,
}


# --------------------------------------------------------------------------- the live app


@dataclass
class LiveApp:
    """The app on a loopback port, run by an event loop in its own thread."""

    settings: Settings
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    url: str = ""
    _runner: web.AppRunner | None = None
    _worker: asyncio.Task[None] | None = None

    def run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=60)

    async def start(self) -> None:
        app = create_app(self.settings, on_first_token=lambda token, info: None)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        # The tokens are fixed at import (the cases are built at collection, auth included).
        with mock.patch("server.tokens.new_token", return_value=USER_TOKEN):
            await app[TOKENS].create(name="fuzz-user", credits=10**9)
        with mock.patch("server.tokens.new_token", return_value=ADMIN_TOKEN):
            await app[TOKENS].create(name="fuzz-admin", unlimited=True, admin=True)
        worker = Worker(
            queue=app[QUEUE],
            context=None,  # type: ignore[arg-type]  # the stub handlers need no browser
            settings=self.settings,
            wakeup=app[WAKEUP],
            handlers=HANDLERS,  # type: ignore[arg-type]
            metrics=app[METRICS],
        )
        self._worker = asyncio.ensure_future(worker.run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    settings = Settings(
        data_dir=Path(tmp_path_factory.mktemp("schemathesis")),
        role="api",
        rate_limit=0,
        poll_interval=timedelta(milliseconds=50),
        retry_base=timedelta(milliseconds=10),
    )
    live = LiveApp(settings)
    thread = threading.Thread(target=live.loop.run_forever, name="live-app", daemon=True)
    thread.start()
    try:
        live.run(live.start())
        yield live
    finally:
        with contextlib.suppress(Exception):
            live.run(live.stop())
        live.loop.call_soon_threadsafe(live.loop.stop)
        thread.join(timeout=30)
        live.loop.close()


@dataclass
class Tally:
    cases: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    views: collections.Counter[str] = field(default_factory=collections.Counter)


TALLY = Tally()


def _document() -> dict[str, Any]:
    """The document of an app built as ``live`` builds it (the router is all it reads)."""
    return build_document(create_app(Settings(data_dir=Path("unused"), role="api")))


# Loaded at import, as pytest collects one test per operation from it; the base URL comes at run time.
schema = schemathesis.openapi.from_dict(_document())
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
schema.config.update(request_timeout=30)


def _token_kind(case: Any, context: Any) -> str:
    return "admin" if set(context.operation.tags or ()) & ADMIN_TAGS else "user"


@schema.auth(refresh_interval=None, retry_on=[], cache_by_key=_token_kind)
class Tokens:
    """The user token on the vendor routes, the admin token on admin and ops routes."""

    def get(self, case: Any, context: Any) -> str:
        return ADMIN_TOKEN if _token_kind(case, context) == "admin" else USER_TOKEN

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
def test_every_operation_keeps_its_schema(case: Any, live: LiveApp) -> None:
    response = case.call_and_validate(base_url=live.url, checks=CHECKS)
    TALLY.cases[case.operation.label] += 1
    TALLY.statuses[response.status_code] += 1


def test_linked_operations_keep_their_schema(live: LiveApp) -> None:
    """The document's links, followed: submit then poll the job or task (which the stub worker runs
    to an end), create a token then top it up or ban it; each answer checked like the others."""

    examples = _example_urls(_document())

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            """About half the submits get their route's example URL, so that jobs are made to follow
            (which half depends on the generated body alone: the run must replay the same)."""
            url = examples.get(case.operation.label)
            if url and isinstance(case.body, dict) and len(repr(case.body)) % 2 == 0:
                case.body = {**case.body, "url": url}

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": live.url}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)
            TALLY.cases["stateful " + case.operation.label] += 1
            TALLY.statuses[response.status_code] += 1
            TALLY.views[_view_kind(response)] += 1

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=True,
            # No shrinking: a replay meets a server whose state moved on (names taken, credits spent).
            phases=[hypothesis.Phase.generate],
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )


def _example_urls(document: dict[str, Any]) -> dict[str, str]:
    """The vendor example URL of each submit operation, by its label (``POST /api/video/parse``)."""
    found = {}
    for path, item in document["paths"].items():
        body = item.get("post", {}).get("requestBody", {}).get("content", {}).get("application/json", {})
        for example in body.get("examples", {}).values():
            if "url" in example["value"]:
                found[f"POST {path}"] = example["value"]["url"]
    return found


def _view_kind(response: Any) -> str:
    """A job view's state, a task view's status, or "" for other answers."""
    try:
        body = response.json()
    except ValueError:
        return ""
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, dict):
        return str(data.get("state") or (data.get("status") if "taskId" in data else "") or "")
    return ""


def test_the_served_document_is_the_one_fuzzed(live: LiveApp) -> None:
    assert requests.get(f"{live.url}/api/openapi.json", timeout=30).json() == _document()


def test_every_operation_was_fuzzed(live: LiveApp, record_property: Any) -> None:
    """Runs after the fuzzing: every documented operation got cases; reports how many in all."""
    document = requests.get(f"{live.url}/api/openapi.json", timeout=30).json()
    operations = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item}
    assert {label for label in TALLY.cases if not label.startswith("stateful ")} == operations
    total = sum(TALLY.cases.values())
    record_property("schemathesis_cases", total)
    print(
        f"\nschemathesis: {total} cases over {len(operations)} operations; statuses {dict(TALLY.statuses)};"
        f" views followed by links {dict(TALLY.views)}"
    )
    assert all(status < 500 for status in TALLY.statuses)
