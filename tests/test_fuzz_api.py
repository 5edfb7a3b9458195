"""Property-based fuzzing of every route (hypothesis), through the real HTTP stack (role api).

Properties, whatever the body, path or headers: never a 5xx; a 4xx charges nothing and makes no
job; an accepted job's stored URL is the canonical URL of a platform page of the route's platform.
Budgets come from the hypothesis profile (conftest: a few hundred examples per route by default,
``HYPOTHESIS_PROFILE=soak`` for many more).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scraper.hosts import platform_of_host
from scraper.urls import classify
from server.job_routes import JOB_ROUTES, JobRoute
from server.keys import QUEUE, TOKENS
from server.settings import Settings
from tests.e2e import start_app
from tests.strategies import (
    admin_body,
    any_url,
    authorization_values,
    deep_nesting,
    json_values,
    raw_header_bytes,
    submit_body,
)

MAX_BODY = 16 * 1024


@dataclass
class Target:
    client: TestClient
    token: str
    token_id: int
    admin: str

    def bearer(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}


@pytest.fixture(scope="module")
async def target(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    admin: list[str] = []
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("fuzz"), role="api", rate_limit=0, max_body_bytes=MAX_BODY
    )
    client = await start_app(settings, first_tokens=admin)
    token, info = await client.app[TOKENS].create(name="fuzz", credits=10**9)
    try:
        yield Target(client, token, info.id, admin[0])
    finally:
        await client.close()


async def _credits(target: Target) -> int:
    info = await target.client.app[TOKENS].find(str(target.token_id))
    assert info is not None
    return info.credits


async def _job_count(target: Target) -> int:
    return sum((await target.client.app[QUEUE].counts()).by_state.values())


def _no_5xx(status: int, text: str) -> None:
    assert status < 500, f"HTTP {status}: {text[:300]}"


async def _submit(target: Target, route: JobRoute, raw: bytes, headers: dict[str, str]) -> None:
    """POST ``raw`` to ``route`` and check the three properties."""
    before, jobs_before = await _credits(target), await _job_count(target)
    response = await target.client.post(
        route.path, data=raw, headers={"Content-Type": "application/json", **headers}
    )
    text = await response.text()
    _no_5xx(response.status, text)
    body = json.loads(text)
    assert isinstance(body, dict) and isinstance(body.get("success"), bool)
    if response.status >= 400:
        assert body["success"] is False and body["error"]
        assert await _credits(target) == before, "a refused request must charge nothing"
        assert await _job_count(target) == jobs_before, "a refused request must make no job"
        return
    assert response.status == 200
    job_id = body["data"]["taskId" if route.task else "jobId"]
    job = await target.client.app[QUEUE].get(job_id)
    assert job is not None
    parsed = classify(job.url)
    assert parsed.canonical_url == job.url, "the stored URL is exactly the classified one"
    assert parsed.platform == route.platform == platform_of_host(job.url.split("/")[2])
    assert await _credits(target) == before - job.cost


@pytest.mark.parametrize("route", JOB_ROUTES, ids=[r.path for r in JOB_ROUTES])
@settings(max_examples=settings().max_examples // 3)  # per route: eight routes share one body strategy
@given(body=submit_body())
@example(body={"url": "www.douyin.com/video/7071967230287744267"})
@example(body={"url": "//www.douyin.com/video/7071967230287744267"})
@example(body={"url": "tiktok.com/@name"})
@example(body={"url": "www.douyin.com/video/7071967230287744267?x=http://127.0.0.1:9/"})
@example(body={"url": "https://[::1]"})
@example(body={"url": "https://www.douyin.com]/video/1 x"})
@example(body={"url": "https://www.douyin.com/user/MS4wLjABAAAA85mPkf3FPVNmf_X", "since": "0001-01-01"})
@example(body={"url": "https://www.tiktok.com/@nasa", "since": "0001-01-01", "tz": "Etc/GMT-14"})
@example(body={"url": "https://www.tiktok.com/@nasa", "tz": "Etc/GMT-14", "since": "today"})
@example(body={"url": "https://www.tiktok.com/@nasa", "count": 10**20})
async def test_submit_routes_fuzzed(target: Target, route: JobRoute, body: Any) -> None:
    await _submit(target, route, json.dumps(body, allow_nan=True).encode(), target.bearer())


@given(raw=st.one_of(deep_nesting(), st.binary(max_size=200).map(lambda b: b.decode("latin-1")), st.just("")))
@example(raw='{"url": "' + "a" * (MAX_BODY + 10) + '"}')
@example(raw='{"url": "\\ud800"}')
@example(raw='{"url": "x", "count": 1' + "0" * 5000 + "}")
async def test_submit_raw_bodies(target: Target, raw: str) -> None:
    await _submit(target, JOB_ROUTES[0], raw.encode("utf-8", "surrogatepass"), target.bearer())


@given(url=any_url(), authorization=authorization_values())
async def test_submit_with_any_authorization(target: Target, url: str, authorization: str) -> None:
    raw = json.dumps({"url": url}).encode()
    await _submit(target, JOB_ROUTES[1], raw, {"Authorization": authorization})


async def _raw_request(target: Target, head: bytes) -> int:
    """Send a hand-written HTTP/1.1 request (bytes no client library would send); the status."""
    server = target.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])


@given(value=raw_header_bytes())
@example(value=b"Bearer \xff\xfe")
async def test_undecodable_authorization_is_401(target: Target, value: bytes) -> None:
    before = await _credits(target)
    body = json.dumps({"url": "https://www.douyin.com/video/7071967230287744267"}).encode()
    head = (
        b"POST /api/video/parse HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nAuthorization: "
        + value
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    status = await _raw_request(target, head)
    assert status in (400, 401), status  # 400 only where the HTTP parser itself refuses the bytes
    if value == b"Bearer \xff\xfe":
        assert status == 401
    assert await _credits(target) == before


@given(value=st.binary(min_size=1, max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b))
async def test_undecodable_headers_elsewhere_are_never_5xx(target: Target, value: bytes) -> None:
    for path, header in ((b"/api/job/x", b"Host"), (b"/api/files/x", b"Range"), (b"/api/health", b"X-Any")):
        head = b"GET " + path + b" HTTP/1.1\r\n" + header + b": " + value + b"\r\nConnection: close\r\n\r\n"
        if header != b"Host":
            head = head.replace(b"\r\n\r\n", b"\r\nHost: t\r\n\r\n")
        assert await _raw_request(target, head) < 500


_path_segment = st.one_of(st.text(max_size=60), st.uuids().map(str), st.just("\x00"), st.just("a" * 3000))


@given(segment=_path_segment, range_header=st.one_of(st.none(), st.text(max_size=40)))
async def test_read_routes_fuzzed(target: Target, segment: str, range_header: str | None) -> None:
    quoted = quote(segment, safe="")
    headers = {"Range": range_header} if range_header and range_header.isprintable() else {}
    for method, path in (
        ("GET", f"/api/job/{quoted}"),
        ("GET", f"/api/job/{quoted}?wait=1"),
        ("GET", f"/api/task/{quoted}"),
        ("GET", f"/api/files/{quoted}"),
        ("HEAD", f"/api/files/{quoted}"),
        ("GET", "/api/health"),
        ("GET", f"/api/{quoted}"),
    ):
        response = await target.client.request(method, path, headers=headers)
        _no_5xx(response.status, await response.text())


@settings(max_examples=settings().max_examples // 3)  # six requests an example, each a write on most
@given(body=admin_body(), ref=_path_segment, authorization=st.one_of(st.none(), authorization_values()))
@example(body={"name": "admin", "credits": 1}, ref="fuzz", authorization=None)
@example(body={"name": "big", "credits": 3 * 10**9}, ref="fuzz", authorization=None)
@example(body={"name": "big", "credits": 10**20}, ref="fuzz", authorization=None)
@example(body={"name": "big", "credits": 3e9}, ref="fuzz", authorization=None)
@example(body={"amount": 10**20}, ref="fuzz", authorization=None)
async def test_admin_routes_fuzzed(target: Target, body: Any, ref: str, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else target.bearer(target.admin)
    raw = json.dumps(body, allow_nan=True)
    quoted = quote(ref, safe="") or "x"
    before = await _credits(target)
    for method, path in (
        ("GET", "/api/admin/tokens"),
        ("POST", "/api/admin/tokens"),
        ("POST", f"/api/admin/tokens/{quoted}/topup"),
        ("POST", f"/api/admin/tokens/{quoted}/ban"),
        ("POST", f"/api/admin/tokens/{quoted}/unban"),
        ("GET", "/api/admin/sessions"),
    ):
        response = await target.client.request(method, path, data=raw, headers=headers)
        _no_5xx(response.status, await response.text())
    # whatever happened to the fuzz token, put it back (the other properties read its credits)
    tokens = target.client.app[TOKENS]
    await tokens.set_banned(target.token_id, False)
    now = await _credits(target)
    if now != before:
        await tokens.topup(target.token_id, before - now)


@given(value=json_values())
async def test_admin_credit_fields_are_bounded(target: Target, value: Any) -> None:
    """Any credits or amount value is a 200 within the bounds, else a 400 that names the range."""
    response = await target.client.post(
        "/api/admin/tokens/fuzz/topup",
        data=json.dumps({"amount": value}),
        headers=target.bearer(target.admin),
    )
    _no_5xx(response.status, await response.text())
    if response.status == 400:
        assert (
            "must be a whole number from" in (await response.json())["error"]
            or "would take" in (await response.json())["error"]
        )
    elif response.status == 200:
        await target.client.app[TOKENS].topup(target.token_id, -value)
