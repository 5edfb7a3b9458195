"""Headers on every answer: ``X-Request-ID`` (the client's when sane, else made; in the logs), and the
token's ``X-RateLimit-Limit/Remaining/Reset`` on authenticated routes, the 429 and errors included."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from server.auth import RateLimiter
from server.keys import TOKENS
from server.settings import Settings
from tests.e2e import start_app

VIDEO = "https://www.douyin.com/video/7071967230287744267"
MADE_ID = re.compile(r"^[0-9a-f]{32}$")
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
log = logging.getLogger("tests.headers")


async def _boom(request: web.Request) -> web.Response:
    log.info("about to fail")
    raise RuntimeError("a bug")


async def _streamed(request: web.Request) -> web.StreamResponse:
    """An answer whose headers leave before its handler returns (as Server-Sent Events do)."""
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    await response.write(b"part one\n")
    await response.write_eof()
    return response


@dataclass
class Api:
    client: TestClient
    token: str

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}


async def _api(tmp_path: Path, rate_limit: int) -> Api:
    def test_routes(app: web.Application) -> None:
        app.router.add_get("/test/boom", _boom)
        app.router.add_get("/test/streamed", _streamed)

    client = await start_app(
        Settings(data_dir=tmp_path, role="api", rate_limit=rate_limit), routes=test_routes
    )
    token, _ = await client.app[TOKENS].create(name="client", credits=1000)
    return Api(client, token)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    api = await _api(tmp_path, rate_limit=3)
    yield api
    await api.client.close()


# --- X-Request-ID ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/health", 200),
        ("GET", "/api/job/not-a-job", 404),
        ("GET", "/no/such/route", 404),
        ("DELETE", "/api/health", 405),
        ("POST", "/api/video/parse", 401),
        ("GET", "/test/boom", 500),
        ("GET", "/test/streamed", 200),
    ],
)
async def test_every_answer_has_a_request_id_made_or_echoed(
    api: Api, method: str, path: str, status: int
) -> None:
    made = await api.client.request(method, path)
    assert made.status == status
    assert MADE_ID.match(made.headers["X-Request-ID"])
    again = await api.client.request(method, path)
    assert again.headers["X-Request-ID"] != made.headers["X-Request-ID"]  # one per request
    echoed = await api.client.request(method, path, headers={"X-Request-ID": "lb-7f3a.92_req-1"})
    assert echoed.status == status and echoed.headers["X-Request-ID"] == "lb-7f3a.92_req-1"


@pytest.mark.parametrize(
    "sent",
    ["a" * 129, "two words", 'quote"d', "semi;colon", "comma,separated", "tab\there", ""],
)
async def test_an_insane_request_id_is_replaced(api: Api, sent: str) -> None:
    response = await api.client.get("/api/health", headers={"X-Request-ID": sent})
    assert MADE_ID.match(response.headers["X-Request-ID"])


async def test_two_request_ids_are_replaced_by_one(api: Api) -> None:
    response = await api.client.get("/api/health", headers=[("X-Request-ID", "a"), ("X-Request-ID", "b")])
    assert MADE_ID.match(response.headers["X-Request-ID"])
    assert len(response.headers.getall("X-Request-ID")) == 1


async def test_the_longest_sane_request_id_is_kept(api: Api) -> None:
    sent = "A1!#$%&'*+-.^_`|~" + "z" * 111
    assert len(sent) == 128
    response = await api.client.get("/api/health", headers={"X-Request-ID": sent})
    assert response.headers["X-Request-ID"] == sent


async def test_the_request_id_is_on_every_line_logged_for_the_request(
    api: Api, json_lines: io.StringIO
) -> None:
    response = await api.client.get("/test/boom", headers={"X-Request-ID": "trace-42"})
    assert response.status == 500
    assert await response.json() == {"success": False, "error": "Internal server error"}
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    mine = [line for line in lines if line["message"] in ("about to fail", "unhandled error")]
    assert len(mine) == 2 and all(line["request_id"] == "trace-42" for line in mine)
    await api.client.get("/api/health")
    log.info("outside any request")
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert "request_id" not in next(line for line in lines if line["message"] == "outside any request")


# --- X-RateLimit-* ---------------------------------------------------------------------------------


def _rate(response: ClientResponse) -> tuple[int, int, int]:
    """(Limit, Remaining, Reset) of an answer."""
    limit, remaining, reset = (int(response.headers[name]) for name in RATE_HEADERS)
    return limit, remaining, reset


async def test_authenticated_answers_say_the_tokens_rate_standing_and_the_429_when_to_retry(api: Api) -> None:
    before = int(time.time())
    ok = await api.client.post("/api/video/parse", json={"url": VIDEO}, headers=api.auth())
    bad = await api.client.post("/api/video/parse", json={"url": "not a url"}, headers=api.auth())
    unknown = await api.client.get("/api/admin/tokens", headers=api.auth())  # 403: not an admin token
    refused = await api.client.post("/api/video/parse", json={"url": VIDEO}, headers=api.auth())
    after = int(time.time())
    assert [r.status for r in (ok, bad, unknown, refused)] == [200, 400, 403, 429]
    assert [_rate(r)[:2] for r in (ok, bad, unknown, refused)] == [(3, 2), (3, 1), (3, 0), (3, 0)]
    resets = [_rate(r)[2] for r in (ok, bad, unknown, refused)]
    # Reset: the Unix time when the oldest request of the window (the first one) leaves it.
    assert before + 60 <= min(resets) and max(resets) <= after + 61 and max(resets) - min(resets) <= 1
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60 and resets[3] <= after + retry_after + 1
    assert (await refused.json())["error"].startswith("Too Many Requests")
    assert MADE_ID.match(refused.headers["X-Request-ID"])


async def test_no_rate_headers_where_no_token_is_known(api: Api) -> None:
    for response in (
        await api.client.get("/api/health"),
        await api.client.post("/api/video/parse", json={"url": VIDEO}),
        await api.client.post("/api/video/parse", json={"url": VIDEO}, headers=api.auth("sv_unknown")),
        await api.client.get("/no/such/route", headers=api.auth()),
    ):
        assert not any(name in response.headers for name in RATE_HEADERS), response.status


async def test_no_rate_headers_when_the_limit_is_off(tmp_path: Path) -> None:
    api = await _api(tmp_path, rate_limit=0)
    try:
        response = await api.client.post("/api/video/parse", json={"url": VIDEO}, headers=api.auth())
        assert response.status == 200
        assert not any(name in response.headers for name in RATE_HEADERS)
    finally:
        await api.client.close()


def test_the_window_slides_one_request_at_a_time() -> None:
    limiter = RateLimiter(2)
    first, second = limiter.check(1, now=100.0), limiter.check(1, now=130.0)
    assert (first.remaining, first.reset_after) == (1, 60.0)
    assert (second.remaining, second.reset_after) == (0, 30.0)  # the first request leaves at 160
    refused = limiter.check(1, now=150.0)
    assert not refused.allowed and (refused.remaining, refused.reset_after) == (0, 10.0)
    assert refused.headers(wall_now=1_000.2) == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1011",
        "Retry-After": "10",
    }
    later = limiter.check(1, now=160.0)  # the first left: room for one, until the second leaves at 190
    assert later.allowed and (later.remaining, later.reset_after) == (0, 30.0)
    assert limiter.check(2, now=160.0).remaining == 1  # each token has its own window
