"""Issue 9's defects, one test each at the HTTP level (the fuzzers in test_fuzz_api.py cover their classes).

Stalled connections are tested on the real listening socket (``server.connections.GuardedSite``),
with short deadlines; the waits are bounded and the assertions are about what the server closed,
not about how fast it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from server import cli
from server.app import create_app
from server.connections import CONNECTIONS, GuardedSite
from server.credits import MAX_CREDITS
from server.keys import QUEUE, TOKENS
from server.settings import Settings
from tests.e2e import start_app

VIDEO_ID = "7071967230287744267"


@dataclass
class Api:
    client: TestClient
    token: str
    admin: str

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    async def credits(self, name: str = "client") -> int:
        info = await self.client.app[TOKENS].find(name)
        assert info is not None
        return info.credits


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    first: list[str] = []
    client = await start_app(Settings(data_dir=tmp_path, role="api", rate_limit=0), first_tokens=first)
    app = client.app
    token, _ = await app[TOKENS].create(name="client", credits=1000)
    try:
        yield Api(client, token, first[0])
    finally:
        await client.close()


# --------------------------------------------------------------------------- defects 3 and 4: URLs


@pytest.mark.parametrize(
    ("route", "url", "stored"),
    [
        ("/api/video/parse", f"www.douyin.com/video/{VIDEO_ID}", f"https://www.douyin.com/video/{VIDEO_ID}"),
        (
            "/api/video/parse",
            f"//www.douyin.com/video/{VIDEO_ID}",
            f"https://www.douyin.com/video/{VIDEO_ID}",
        ),
        ("/api/tiktok/channel/videos", "tiktok.com/@name", "https://www.tiktok.com/@name"),
        (
            "/api/video/download",
            f"www.douyin.com/video/{VIDEO_ID}?x=http://127.0.0.1:9/",
            f"https://www.douyin.com/video/{VIDEO_ID}",
        ),
        (
            "/api/tiktok/video/parse",
            "看看 https://www.tiktok.com/@a/video/6806030056956251397?next=http://169.254.169.254/ 吧",
            "https://www.tiktok.com/@a/video/6806030056956251397",
        ),
    ],
)
async def test_accepted_job_stores_the_canonical_classified_url(
    api: Api, route: str, url: str, stored: str
) -> None:
    response = await api.client.post(route, json={"url": url}, headers=api.auth())
    assert response.status == 200, await response.text()
    job_id = (await response.json())["data"]["jobId"]
    job = await api.client.app[QUEUE].get(job_id)
    assert job is not None and job.url == stored
    poll = await (await api.client.get(f"/api/job/{job_id}")).json()
    assert poll["data"]["data"]["url"] == stored


@pytest.mark.parametrize(
    "url",
    ["https://[::1]", "https://www.douyin.com]/video/1 x", "https://[::1", "http://[::ffff:127.0.0.1]/x"],
)
async def test_brackets_in_hosts_are_400(api: Api, url: str) -> None:
    response = await api.client.post("/api/video/parse", json={"url": url}, headers=api.auth())
    assert response.status == 400
    assert "IP addresses are not accepted" in (await response.json())["error"]
    assert await api.credits() == 1000


# --------------------------------------------------------------------------- defect 5: days and zones


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"since": "0001-01-01"}, 400, "out of range: use a day from 1970-01-01 to today"),
        ({"since": "0001-01-01", "tz": "Etc/GMT-14"}, 400, "out of range"),
        ({"since": "1969-12-31", "tz": "Etc/GMT+12"}, 400, "out of range"),
        ({"since": "9999-12-31", "tz": "Etc/GMT-14"}, 400, "in the future"),
        ({"since": "1970-01-01", "tz": "Etc/GMT-14"}, 200, None),
        ({"since": "today", "tz": "Etc/GMT-14"}, 200, None),
        ({"since": "yesterday", "tz": "Etc/GMT+12"}, 200, None),
        ({"tz": "Pacific/Kiritimati"}, 200, None),
    ],
)
async def test_days_and_zones_far_from_now(
    api: Api, body: dict[str, str], status: int, message: str | None
) -> None:
    response = await api.client.post(
        "/api/tiktok/channel/videos", json={"url": "https://www.tiktok.com/@nasa", **body}, headers=api.auth()
    )
    assert response.status == status, await response.text()
    if message:
        assert message in (await response.json())["error"]


# --------------------------------------------------------------------------- defect 8: admin inputs


async def test_admin_duplicate_name_is_409(api: Api) -> None:
    response = await api.client.post(
        "/api/admin/tokens", json={"name": "client", "credits": 5}, headers=api.auth(api.admin)
    )
    assert response.status == 409
    assert "a token named 'client' already exists" in (await response.json())["error"]


@pytest.mark.parametrize("credits", [3 * 10**9, 10**20, 3e9, 1e20, -1, "10", None, True])
async def test_admin_credits_out_of_range_are_400(api: Api, credits: object) -> None:
    response = await api.client.post(
        "/api/admin/tokens", json={"name": "big", "credits": credits}, headers=api.auth(api.admin)
    )
    assert response.status == 400
    assert f"from 0 to {MAX_CREDITS}" in (await response.json())["error"]
    assert await api.client.app[TOKENS].find("big") is None


async def test_admin_topups_are_bounded(api: Api) -> None:
    created = await api.client.post(
        "/api/admin/tokens", json={"name": "big", "credits": MAX_CREDITS}, headers=api.auth(api.admin)
    )
    assert created.status == 200
    for amount, status in ((10, 400), (10**20, 400), (-(10**20), 400), (-10, 200), (10, 200)):
        response = await api.client.post(
            "/api/admin/tokens/big/topup", json={"amount": amount}, headers=api.auth(api.admin)
        )
        assert response.status == status, (amount, await response.text())
    assert await api.credits("big") == MAX_CREDITS
    missing = await api.client.post(
        "/api/admin/tokens/nobody/topup", json={"amount": 1}, headers=api.auth(api.admin)
    )
    assert missing.status == 404


@pytest.mark.parametrize(
    "argv",
    [
        ["create", "--name", "big", "--credits", "3000000000"],
        ["create", "--name", "big", "--credits", str(10**20)],
        ["create", "--name", "big", "--credits", "-5"],
    ],
)
def test_cli_credits_out_of_range_exit_2(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["token", "--data-dir", str(tmp_path), *argv]) == 2
    assert f"from 0 to {MAX_CREDITS}" in capsys.readouterr().err


def test_cli_duplicate_name_and_topup_over_the_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = ["token", "--data-dir", str(tmp_path)]
    assert cli.main([*token, "create", "--name", "big", "--credits", str(MAX_CREDITS)]) == 0
    assert cli.main([*token, "create", "--name", "big", "--credits", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main([*token, "topup", "big", "10"]) == 2
    assert f"outside 0 to {MAX_CREDITS}" in capsys.readouterr().err


# --------------------------------------------------------------------------- defect 9: stalled clients


@dataclass
class Listening:
    app: web.Application
    port: int


@pytest.fixture
async def listening(tmp_path: Path) -> AsyncIterator[Listening]:
    """The app on a real socket behind the connection guard, with one-second deadlines."""
    settings = Settings(
        data_dir=tmp_path,
        role="api",
        header_timeout=timedelta(seconds=1),
        body_timeout=timedelta(seconds=1),
        max_connections_per_client=300,
    )
    app = create_app(settings, on_first_token=lambda token, info: None)
    runner = web.AppRunner(app, keepalive_timeout=30)
    await runner.setup()
    site = GuardedSite(runner, app[CONNECTIONS], "127.0.0.1", 0)
    await site.start()
    try:
        yield Listening(app, site.port)
    finally:
        await runner.cleanup()


async def _closed_by_server(reader: asyncio.StreamReader, *, within: float) -> bytes:
    """Read until the server closes the connection (bounded); what it sent before closing."""
    return await asyncio.wait_for(reader.read(), within)


async def test_stalled_headers_are_closed_after_the_header_timeout(listening: Listening) -> None:
    connections = [await asyncio.open_connection("127.0.0.1", listening.port) for _ in range(200)]
    for _, writer in connections:
        writer.write(b"POST /api/video/parse HTTP/1.1\r\nHost: x\r\nContent-Type: appl")  # never finished
    try:
        assert listening.app[CONNECTIONS].open_count() == 200
        closed = await asyncio.gather(*(_closed_by_server(r, within=15) for r, _ in connections))
        assert all(data == b"" for data in closed)  # closed without an answer
        assert listening.app[CONNECTIONS].open_count() == 0
    finally:
        for _, writer in connections:
            writer.close()


async def test_idle_connections_that_send_nothing_are_closed(listening: Listening) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", listening.port)
    try:
        assert await _closed_by_server(reader, within=15) == b""
    finally:
        writer.close()


def _headers(head: bytes) -> list[tuple[str, str]]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines if line)]


async def test_stalled_body_is_a_408(listening: Listening) -> None:
    token, _ = await listening.app[TOKENS].create(name="t", credits=100)
    reader, writer = await asyncio.open_connection("127.0.0.1", listening.port)
    try:
        writer.write(
            b"POST /api/video/parse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {token}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"url": "https://www.dou'
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
        length = int(next(v for k, v in _headers(head) if k == "content-length"))
        body = await asyncio.wait_for(reader.readexactly(length), 15)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 408")
    assert "did not arrive within 1 seconds" in json.loads(body)["error"]
    info = await listening.app[TOKENS].find("t")
    assert info is not None and info.credits == 100


async def test_connections_per_client_address_are_capped(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, role="api", max_connections_per_client=20)
    app = create_app(settings, on_first_token=lambda token, info: None)
    runner = web.AppRunner(app)
    await runner.setup()
    site = GuardedSite(runner, app[CONNECTIONS], "127.0.0.1", 0)
    await site.start()
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(50):
            opened.append(await asyncio.open_connection("127.0.0.1", site.port))
        # accepted in order: the last 30 are refused and see EOF at once; once they have, every
        # connection has been through the server's accept callback, so the count is final
        refused = await asyncio.gather(*(_closed_by_server(r, within=5) for r, _ in opened[20:]))
        assert refused == [b""] * 30
        assert app[CONNECTIONS].open_count("127.0.0.1") == 20
        # the admitted ones still work
        reader, writer = opened[0]
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await _closed_by_server(reader, within=10)).startswith(b"HTTP/1.1 200")
    finally:
        for _, writer in opened:
            writer.close()
        with contextlib.suppress(Exception):
            await runner.cleanup()
