"""The job path's own overhead: POST and poll latency against a bare aiohttp handler, same run.

The workers run a no-op handler, so only the API, the queue and the database are measured. Each
client submits a parse of a distinct URL (no coalescing), then polls it until it completes. The
bare handler reads the same JSON body and answers a JSON envelope, so the ratio is what the job
path adds over aiohttp itself. The clients run in a separate process, so the server's event loop
(API, workers and database driver, as in ``serve --role all``) carries only the server's work and
the figures are its own; the bare handler is measured the same way. SQLite always; PostgreSQL when
SHORTVID_TEST_DATABASE_URL is set (a fresh database, dropped afterwards). ``--profile FILE`` writes
a cProfile of the server process during the job-path runs.

.venv/bin/python -m bench.api_overhead --requests 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import multiprocessing
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from models.rows import JobRow
from server.app import create_app
from server.coalesce import Coalescer
from server.keys import QUEUE, TOKENS, WAKEUP
from server.settings import Settings
from server.worker import Worker
from tests.pg_databases import fresh_database

#: A Douyin item id is 19 digits; each request gets its own so no two jobs coalesce.
_ID_BASE = 7_000_000_000_000_000_000


async def _noop(ctx: Any, job: JobRow) -> dict[str, Any]:
    return {"video_id": job.url.rsplit("/", 1)[-1]}


def _bare_app() -> web.Application:
    async def post(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"success": True, "data": {"jobId": str(body["url"])[-8:], "message": ""}})

    async def get(request: web.Request) -> web.Response:
        job = request.match_info["job_id"]
        return web.json_response({"success": True, "data": {"id": job, "state": "completed", "result": {}}})

    app = web.Application()
    app.router.add_post("/api/video/parse", post)
    app.router.add_get("/api/job/{job_id}", get)
    return app


@contextlib.asynccontextmanager
async def _job_api(data_dir: Path, database_url: str | None, workers: int) -> AsyncIterator[tuple[str, str]]:
    """The real API (role api) plus ``workers`` no-op workers on its queue: (base URL, token)."""
    settings = Settings(data_dir=data_dir, database_url=database_url, role="api", rate_limit=0)
    app = create_app(settings, on_first_token=lambda token, info: None)
    server = TestServer(app)
    await server.start_server()
    handlers = {"video.parse": _noop}
    coalescer = Coalescer(app[QUEUE], settings)
    made = [
        Worker(queue=app[QUEUE], context=None, settings=settings, wakeup=app[WAKEUP], handlers=handlers)  # type: ignore[arg-type]
        for _ in range(workers)
    ]
    for worker in made:
        worker.coalescer = coalescer
    loops = [asyncio.ensure_future(worker.run()) for worker in made]
    try:
        token, _ = await app[TOKENS].create(name="bench", credits=2_000_000_000)
        yield str(server.make_url("")), token
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await server.close()


@contextlib.asynccontextmanager
async def _bare_api() -> AsyncIterator[tuple[str, str]]:
    server = TestServer(_bare_app())
    await server.start_server()
    try:
        yield str(server.make_url("")), "bare"
    finally:
        await server.close()


async def _client(
    session: aiohttp.ClientSession, base: str, token: str, n: int, posts: list[float], polls: list[float]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(n):
        url = f"https://www.douyin.com/video/{_ID_BASE + random.randrange(10**18)}"
        start = time.perf_counter()
        async with session.post(f"{base}/api/video/parse", json={"url": url}, headers=headers) as response:
            body = await response.json()
        posts.append(time.perf_counter() - start)
        assert body["success"], body
        job_id = body["data"]["jobId"]
        while True:
            start = time.perf_counter()
            async with session.get(f"{base}/api/job/{job_id}") as response:
                view = (await response.json())["data"]
            polls.append(time.perf_counter() - start)
            if view["state"] in ("completed", "failed"):
                break
            await asyncio.sleep(0.02)  # a client's pause between polls, not measured


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def _load(base: str, token: str, clients: int, requests: int) -> tuple[list[float], list[float]]:
    posts: list[float] = []
    polls: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _client(session, base, token, 5, [], [])  # warm-up: connections, caches, JIT of plans
        runs: list[Awaitable[None]] = [
            _client(session, base, token, requests, posts, polls) for _ in range(clients)
        ]
        await asyncio.gather(*runs)
    return posts, polls


def _load_process(base: str, token: str, clients: int, requests: int) -> tuple[list[float], list[float]]:
    """The client side, run in its own process (its event loop is not the server's)."""
    return asyncio.run(_load(base, token, clients, requests))


async def _measure(
    api: Callable[[], Any], clients: int, requests: int, profile: cProfile.Profile | None = None
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    spawn = multiprocessing.get_context("spawn")  # no fork of a process that runs driver threads
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as clients_process:
        await loop.run_in_executor(clients_process, time.perf_counter)  # started before timing
        async with api() as (base, token):
            if profile is not None:
                profile.enable()
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                posts, polls = await loop.run_in_executor(
                    clients_process, _load_process, base, token, clients, requests
                )
            finally:
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                if profile is not None:
                    profile.disable()
    return {
        # The server process's CPU (every thread) per request served, and its share of one core.
        "server_cpu_ms_per_request": round(1000 * cpu / (len(posts) + len(polls)), 3),
        "server_cpu_busy": round(cpu / wall, 2),
        # Polls a client made per job (each 20 ms apart): how long jobs waited in the queue.
        "polls_per_job": round(len(polls) / len(posts), 1),
        "jobs_per_s": round(len(posts) / wall, 1),
        "post_p50_ms": _ms(posts, 0.50),
        "post_p99_ms": _ms(posts, 0.99),
        "poll_p50_ms": _ms(polls, 0.50),
        "poll_p99_ms": _ms(polls, 0.99),
    }


async def _engine_report(
    database_url: str | None, clients: int, requests: int, profile: cProfile.Profile | None = None
) -> dict[str, Any]:
    with TemporaryDirectory() as data_dir:
        job = await _measure(lambda: _job_api(Path(data_dir), database_url, 2), clients, requests, profile)
    bare = await _measure(_bare_api, clients, requests)
    ratios = {
        key: round(job[key] / bare[key], 1) if bare[key] else None for key in job if key.endswith("_ms")
    }
    return {"job_path": job, "bare": bare, "ratio_to_bare": ratios}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100, help="POSTs per client")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--engines", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--profile", type=Path, help="write a cProfile of the server to this file")
    args = parser.parse_args()
    profile = cProfile.Profile() if args.profile else None
    pg_url = os.environ.get("SHORTVID_TEST_DATABASE_URL")
    report: dict[str, Any] = {}
    for clients in args.clients:
        if "sqlite" in args.engines:
            report[f"sqlite_{clients}"] = asyncio.run(_engine_report(None, clients, args.requests, profile))
        if pg_url and "postgresql" in args.engines:
            with fresh_database(pg_url, prefix="shortvid_bench") as url:
                report[f"postgresql_{clients}"] = asyncio.run(
                    _engine_report(url, clients, args.requests, profile)
                )
    if profile is not None:
        profile.dump_stats(args.profile)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
