"""Scale-out end to end on PostgreSQL: an api node and two worker nodes as separate processes (their
own data directories and ports). Channel downloads land on the workers' disks; every download_url,
fetched from the api node, gives the fixture's exact bytes with Range and HEAD; a stopped or killed
owner turns its files into a 503 while the other worker's files still serve."""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from fixtures.dataset import build_dataset
from tests.conftest import PG_URL
from tests.e2e import ServeProcess, account_by_role, http_json
from tests.pg_databases import fresh_database

pytestmark = [pytest.mark.pg, pytest.mark.slow]

SECRET = "scale-out test secret shared by every node"
ENV = {
    "SHORTVID_RATE_LIMIT": "0",
    "SHORTVID_WORKERS": "1",
    "SHORTVID_NODE_SECRET": SECRET,
    "SHORTVID_NODE_HEARTBEAT": "0.5",
    "SHORTVID_NODE_TIMEOUT": "3",
}
CHANNEL_ROUTES = {"douyin": "/api/channel/download", "tiktok": "/api/tiktok/channel/download"}


def _get(url: str, *, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _node_id(process: ServeProcess) -> str:
    [stored] = process.data_dir.glob("node-*.id")
    return stored.read_text().strip()


def _channel_task(api: ServeProcess, token: str, platform: str, account: dict[str, Any]) -> dict[str, Any]:
    status, body = http_json(
        "POST", api.base + CHANNEL_ROUTES[platform], {"url": account["profile_url"], "count": 4}, token
    )
    assert status == 200, body
    task_id = body["data"]["taskId"]
    stop = time.monotonic() + 120
    while True:
        status, body = http_json("GET", f"{api.base}/api/task/{task_id}?wait=30")
        assert status == 200, body
        if body["data"]["status"] in ("completed", "partial", "failed"):
            task: dict[str, Any] = body["data"]
            assert task["status"] == "completed" and task["done"] == 4, task
            return task
        assert time.monotonic() < stop, body


def _nodes(api: ServeProcess, admin: str) -> dict[str, dict[str, Any]]:
    status, body = http_json("GET", api.base + "/api/admin/nodes", token=admin)
    assert status == 200, body
    return {node["id"]: node for node in body["data"]}


def _until_state(api: ServeProcess, admin: str, node_id: str, state: str) -> None:
    stop = time.monotonic() + 30  # bounds a hung test; the timeout under test is 3 s
    while _nodes(api, admin)[node_id]["state"] != state:
        assert time.monotonic() < stop, f"{node_id} never became {state}"
        time.sleep(0.2)


def _check_served(base: str, task: dict[str, Any], truth: dict[str, Any]) -> None:
    """Every file of the task through ``base``: whole (fixture bytes), a Range, and HEAD."""
    for item in task["items"]:
        want = truth[item["video_id"]]
        for file in item["files"]:
            url = base + file["download_url"][file["download_url"].index("/api/files/") :]
            status, headers, body = _get(url)
            assert status == 200 and len(body) == file["size"] == int(headers["Content-Length"]), url
            assert hashlib.sha256(body).hexdigest() == file["sha256"] == headers["X-Content-SHA256"]
            status, headers, part = _get(url, headers={"Range": "bytes=10-109"})
            assert status == 206 and part == body[10:110]
            assert headers["Content-Range"] == f"bytes 10-109/{len(body)}"
            status, headers, empty = _get(url, method="HEAD")
            assert status == 200 and empty == b"" and int(headers["Content-Length"]) == len(body)
        # The fixture's own bytes: its video, or its first image for a photo post.
        assert item["files"][0]["sha256"] == (want["media_sha256"] or want["image_sha256"][0]), item[
            "video_id"
        ]


def _unavailable(base: str, task: dict[str, Any], node_id: str, state: str) -> None:
    for item in task["items"]:
        path = item["download_url"][item["download_url"].index("/api/files/") :]
        status, headers, body = _get(base + path)
        assert status == 503 and headers["Retry-After"].isdigit(), body
        assert node_id in body.decode() and f"is {state} since" in body.decode()


def test_every_node_serves_every_file_and_a_dead_owner_is_a_503(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("SHORTVID_TEST_DATABASE_URL is not set")
    dataset = build_dataset().to_json()
    accounts = {platform: account_by_role(dataset, platform, "medium") for platform in ("douyin", "tiktok")}
    truth = {item["id"]: item for account in accounts.values() for item in account["items"]}
    with fresh_database(PG_URL, prefix="shortvid_scale") as url:
        env = {**ENV, "SHORTVID_DATABASE_URL": url}
        api = ServeProcess(tmp_path / "api", "--role", "api", env=env)
        first, second = (
            ServeProcess(tmp_path / f"w{n}", "--role", "worker", "--offline", env=env) for n in (1, 2)
        )
        try:
            api.start()
            admin = api.first_token()
            first.start()
            api.wait_ready()
            first.wait_ready()
            status, body = http_json(
                "POST", api.base + "/api/admin/tokens", {"name": "c", "credits": 1000}, admin
            )
            assert status == 200, body
            token = body["data"]["token"]

            on_first = _channel_task(api, token, "douyin", accounts["douyin"])  # the only worker
            first.stop()  # a clean stop: its files are unavailable at once, and say why
            _unavailable(api.base, on_first, _node_id(first), "stopped")

            second.start()
            second.wait_ready()
            on_second = _channel_task(api, token, "tiktok", accounts["tiktok"])
            first.start()  # back on its data directory: the same node, its files reachable again
            first.wait_ready()
            _until_state(api, admin, _node_id(first), "up")

            nodes = _nodes(api, admin)
            held = {
                task_id: sum(len(i["files"]) for i in task["items"])
                for task_id, task in (("a", on_first), ("b", on_second))
            }
            assert (
                nodes[_node_id(first)]["files"] == held["a"] and nodes[_node_id(second)]["files"] == held["b"]
            )
            assert {nodes[_node_id(p)]["role"] for p in (first, second)} == {"worker"}
            assert not list((tmp_path / "api").rglob("*.mp4"))  # the api node holds no bytes
            for task in (on_first, on_second):
                _check_served(api.base, task, truth)
            _check_served(second.base, on_first, truth)  # a worker relays its peer's files too

            first.kill()  # no shutdown code: only the heartbeat stopping tells the others
            _until_state(api, admin, _node_id(first), "gone")
            _unavailable(api.base, on_first, _node_id(first), "gone")
            _check_served(api.base, on_second, truth)
        finally:
            for process in (first, second, api):
                process.stop()
