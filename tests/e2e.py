"""Helpers for end-to-end tests: the fixture site, an app wired to it, and job polling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time as clock
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from scraper.chromium_processes import own_chromium_processes
from scraper.config import BrowserSettings
from server.app import create_app
from server.settings import Settings

FINISHED = ("completed", "failed")
REPO = Path(__file__).resolve().parents[1]


async def start_app(
    settings: Settings,
    browser: BrowserSettings | None = None,
    *,
    port: int | None = None,
    first_tokens: list[str] | None = None,
    routes: Callable[[web.Application], None] = lambda app: None,
) -> TestClient:
    """The app as ``settings`` make it (API only, or with workers, pool and scheduler) on a test server
    on loopback; the caller closes it. ``first_tokens`` gets the admin token a first start prints,
    ``routes`` adds a test's own routes before the app starts."""
    tokens = first_tokens if first_tokens is not None else []
    app = create_app(settings, browser=browser, on_first_token=lambda token, info: tokens.append(token))
    routes(app)
    client = TestClient(TestServer(app, host="127.0.0.1", port=port or 0))
    await client.start_server()
    return client


async def poll_job(client: TestClient, job_id: str, *, deadline: float = 90.0) -> dict[str, Any]:
    """Poll GET /api/job/{id} until it finishes; the deadline only bounds a hung test."""
    stop = clock.monotonic() + deadline
    while True:
        response = await client.get(f"/api/job/{job_id}")
        body = await response.json()
        assert response.status == 200, body
        if body["data"]["state"] in FINISHED:
            return body["data"]
        if clock.monotonic() > stop:
            raise AssertionError(f"job {job_id} did not finish: {body}")
        await asyncio.sleep(0.2)


def items_where(dataset: dict[str, Any], **conditions: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(account, item) pairs of the fixture dataset matching item/account conditions."""
    found = []
    for account in dataset["accounts"]:
        if "account_state" in conditions and account["state"] != conditions["account_state"]:
            continue
        if "platform" in conditions and account["platform"] != conditions["platform"]:
            continue
        for item in account["items"]:
            if all(item.get(k) == v for k, v in conditions.items() if k not in ("account_state", "platform")):
                found.append((account, item))
    return found


def created(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["create_time"].replace("Z", "+00:00"))


def expected_channel(account: dict[str, Any], count: int, since: datetime | None) -> list[str]:
    """The truth for a channel listing: public posts from ``since`` on, newest first, at most ``count``.

    Pinned posts obey the same rule: kept only inside ``since``, placed by their create time.
    """
    public = [i for i in account["items"] if i["state"] == "public"]
    inside = [i for i in public if since is None or created(i) >= since]
    inside.sort(key=created, reverse=True)
    return [i["id"] for i in inside[:count]]


def day_start(zone: str, days_ago: int = 0) -> datetime:
    """Midnight ``days_ago`` days before today in ``zone``, as UTC."""
    local_today = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
    day = local_today - timedelta(days=days_ago)
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def risk_seen(census: dict[str, Any], before: dict[str, Any]) -> bool:
    """Between two pool censuses a session recorded a risk signal: it is cooling, scored, or was
    retired for it."""
    retired = sum(census["retired"].values()) > sum(before["retired"].values())
    return retired or any(s["last_error"] in ("blocked", "rate_limited") for s in census["detail"])


def account_by_role(dataset: dict[str, Any], platform: str, role: str) -> dict[str, Any]:
    return next(a for a in dataset["accounts"] if a["platform"] == platform and a["role"] == role)


# ---- `shortvid serve` as a real process --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_json(
    method: str, url: str, body: dict[str, object] | None = None, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    """One JSON request with urllib (no event loop needed); HTTP errors return their status and body."""
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class ServeProcess:
    """`shortvid serve` in a process group of its own, so it can be SIGKILLed like a crashing machine
    (its Chromium included) and started again on the same data directory."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.args = ["serve", "--data-dir", str(data_dir), "--port", str(self.port), *args]
        self.env = {**os.environ, "SHORTVID_DATA_DIR": str(data_dir), **(env or {})}
        self.log = data_dir.parent / f"{data_dir.name}-serve.log"
        self.process: subprocess.Popen[str] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", *self.args],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=self.env,
                cwd=REPO,
                start_new_session=True,
            )

    def first_token(self) -> str:
        """The admin token a first start on an empty database prints."""
        stdout = self._running().stdout
        assert stdout is not None
        while not (line := stdout.readline()).startswith("sv_"):
            assert line, f"serve exited before printing the first token; see {self.log}"
        return line.strip()

    def wait_ready(self, deadline: float = 60) -> None:
        """Until /api/health answers (the app has started: workers run, start-up recovery done)."""
        stop = clock.monotonic() + deadline
        while True:
            assert self._running().poll() is None, f"serve exited; see {self.log}"
            try:
                if http_json("GET", self.base + "/api/health")[0] == 200:
                    return
            except OSError:
                pass
            assert clock.monotonic() < stop, f"serve never answered; see {self.log}"
            clock.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the node and every process it started, at once: no shutdown code runs."""
        process = self._running()
        browsers = own_chromium_processes(process.pid)  # Playwright detaches them from our group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for browser in browsers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(browser.pid, signal.SIGKILL)
        process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        """Terminate gracefully if still running (for finally blocks), killing whatever lingers."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        if self.process.poll() is None:
            self.kill()
        self.process = None

    def _running(self) -> subprocess.Popen[str]:
        assert self.process is not None, "not started"
        return self.process
