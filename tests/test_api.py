"""The HTTP contract without a browser (role=api): auth, credits, validation, envelopes, polling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from models.tables import JobState
from server.keys import QUEUE, TOKENS
from server.settings import Settings
from tests.e2e import start_app

DOUYIN_VIDEO = "https://www.douyin.com/video/7071967230287744267"
TIKTOK_VIDEO = "https://www.tiktok.com/@a3noticias/video/6806030056956251397"


@dataclass
class Api:
    client: TestClient
    token: str

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    first: list[str] = []
    settings = Settings(data_dir=tmp_path, role="api", rate_limit=50, max_body_bytes=16384)
    client = await start_app(settings, first_tokens=first)
    app = client.app
    token, _ = await app[TOKENS].create(name="client", credits=100)
    try:
        yield Api(client, token)
    finally:
        await client.close()
    assert len(first) == 1  # the bootstrap admin token was made once


async def test_health_keeps_the_vendor_shape(api: Api) -> None:
    response = await api.client.get("/api/health")
    body = await response.json()
    assert response.status == 200
    assert body["success"] is True and body["status"] == "ok"
    assert body["timestamp"].endswith("Z") and len(body["timestamp"]) == 24


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Token abc"}, {"Authorization": "Bearer"}, {"Authorization": "Bearer a b"}],
)
async def test_missing_or_malformed_token_is_401_in_vendor_words(api: Api, headers: dict[str, str]) -> None:
    response = await api.client.post("/api/video/parse", json={"url": DOUYIN_VIDEO}, headers=headers)
    assert response.status == 401
    assert await response.json() == {
        "success": False,
        "error": 'Unauthorized: Missing or invalid token format. Use "Bearer <token>"',
    }


async def test_unknown_token_is_401_saying_invalid(api: Api) -> None:
    response = await api.client.post(
        "/api/video/parse", json={"url": DOUYIN_VIDEO}, headers=api.auth("sv_nope")
    )
    assert response.status == 401
    assert "Invalid token" in (await response.json())["error"]


async def test_banned_token_is_403(api: Api) -> None:
    tokens = api.client.app[TOKENS]
    token, info = await tokens.create(name="bad", credits=100)
    await tokens.set_banned(info.id, True)
    response = await api.client.post("/api/video/parse", json={"url": DOUYIN_VIDEO}, headers=api.auth(token))
    assert response.status == 403
    assert await response.json() == {
        "success": False,
        "error": "Forbidden: Your account has been banned. Contact admin.",
    }


async def test_insufficient_credits_is_402_with_real_numbers(api: Api) -> None:
    token, _ = await api.client.app[TOKENS].create(name="poor", credits=4)
    response = await api.client.post(
        "/api/tiktok/video/parse", json={"url": TIKTOK_VIDEO}, headers=api.auth(token)
    )
    assert response.status == 402
    assert await response.json() == {
        "success": False,
        "error": "Payment Required: Insufficient credits. You need 10 credits, but have 4.",
    }


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/api/video/parse", b"{not json", "Malformed JSON"),
        ("/api/video/parse", b"", "Missing JSON body"),
        ("/api/video/parse", b"[1]", "must be an object"),
        ("/api/video/parse", b"{}", 'Missing "url"'),
        ("/api/video/parse", b'{"url": 5}', '"url" must be a string'),
        ("/api/video/parse", b'{"url": "https://example.com/video/1"}', "not a Douyin or TikTok"),
        ("/api/video/parse", b'{"url": "' + TIKTOK_VIDEO.encode() + b'"}', "/api/tiktok/video/parse"),
        ("/api/tiktok/video/parse", b'{"url": "' + DOUYIN_VIDEO.encode() + b'"}', "/api/video/parse"),
        (
            "/api/video/parse",
            b'{"url": "https://www.douyin.com/user/MS4wLjABAAAAxyz1234567"}',
            "/api/channel/videos",
        ),
    ],
)
async def test_bad_input_is_400_with_a_fix_it_message(api: Api, path: str, body: bytes, needle: str) -> None:
    response = await api.client.post(
        path, data=body, headers={**api.auth(), "Content-Type": "application/json"}
    )
    payload = await response.json()
    assert response.status == 400, payload
    assert payload["success"] is False and needle in payload["error"]


async def test_rejected_input_costs_nothing(api: Api) -> None:
    await api.client.post("/api/video/parse", json={"url": "https://example.com/"}, headers=api.auth())
    info = await api.client.app[TOKENS].lookup(api.token)
    assert info is not None and info.credits == 100


async def test_body_over_the_limit_is_413(api: Api) -> None:
    response = await api.client.post(
        "/api/video/parse", json={"url": DOUYIN_VIDEO, "pad": "x" * 20_000}, headers=api.auth()
    )
    assert response.status == 413
    assert "too large" in (await response.json())["error"]


async def test_unknown_route_and_wrong_method_use_the_envelope(api: Api) -> None:
    missing = await api.client.get("/api/nope")
    assert missing.status == 404 and (await missing.json())["success"] is False
    wrong = await api.client.get("/api/video/parse")
    assert wrong.status == 405 and (await wrong.json())["success"] is False


async def test_accepted_job_charges_and_polls_as_waiting(api: Api) -> None:
    response = await api.client.post("/api/video/parse", json={"url": DOUYIN_VIDEO}, headers=api.auth())
    body = await response.json()
    assert response.status == 200
    assert body["data"]["message"] == "Job queued. Poll GET /api/job/:jobId for result."
    job_id = body["data"]["jobId"]
    info = await api.client.app[TOKENS].lookup(api.token)
    assert info is not None and info.credits == 90
    poll = await (await api.client.get(f"/api/job/{job_id}")).json()
    assert poll == {
        "success": True,
        "data": {"id": job_id, "state": "waiting", "data": {"type": "video.parse", "url": DOUYIN_VIDEO}},
    }


async def test_share_text_is_accepted(api: Api) -> None:
    text = "7.43 复制打开抖音，看看【作品】 https://v.douyin.com/iRNBho6u/ 07/20 ZzG:/"
    response = await api.client.post("/api/video/parse", json={"url": text}, headers=api.auth())
    assert response.status == 200


async def test_unknown_and_expired_jobs_are_404(api: Api) -> None:
    unknown = await api.client.get("/api/job/00000000-0000-0000-0000-000000000000")
    assert unknown.status == 404 and await unknown.json() == {"success": False, "error": "Job not found"}
    junk = await api.client.get("/api/job/../../etc")
    assert junk.status == 404
    job_id = (
        await (
            await api.client.post("/api/video/parse", json={"url": DOUYIN_VIDEO}, headers=api.auth())
        ).json()
    )["data"]["jobId"]
    queue = api.client.app[QUEUE]
    await queue.claim("w")
    await queue.complete(job_id, "w", {"video_id": "1"})
    done = await (await api.client.get(f"/api/job/{job_id}")).json()
    assert done["data"] == {"id": job_id, "state": JobState.COMPLETED, "result": {"video_id": "1"}}
    from models.types import utcnow

    await queue.expire_results(now=utcnow() + timedelta(days=2))
    expired = await api.client.get(f"/api/job/{job_id}")
    assert expired.status == 404 and "expired" in (await expired.json())["error"]


async def test_concurrent_submissions_never_overdraw(api: Api) -> None:
    token, _ = await api.client.app[TOKENS].create(name="burst", credits=45)
    responses = await asyncio.gather(
        *(
            api.client.post("/api/video/parse", json={"url": DOUYIN_VIDEO}, headers=api.auth(token))
            for _ in range(12)
        )
    )
    statuses = sorted(r.status for r in responses)
    assert statuses.count(200) == 4 and statuses.count(402) == 8
    info = await api.client.app[TOKENS].lookup(token)
    assert info is not None and info.credits == 5


async def test_request_rate_limit_is_429(api: Api) -> None:
    statuses = []
    for _ in range(55):
        response = await api.client.post("/api/video/parse", json={}, headers=api.auth())
        statuses.append(response.status)
    assert statuses.count(429) == 5


async def test_admin_routes_need_an_admin_token(api: Api) -> None:
    tokens = api.client.app[TOKENS]
    admin_token, _ = await tokens.create(name="root", unlimited=True, admin=True)
    denied = await api.client.get("/api/admin/tokens", headers=api.auth())
    assert denied.status == 403
    created = await api.client.post(
        "/api/admin/tokens", json={"name": "bob", "credits": 30}, headers=api.auth(admin_token)
    )
    body = (await created.json())["data"]
    assert created.status == 200 and body["token"].startswith("sv_") and body["credits"] == 30
    topped = await api.client.post(
        f"/api/admin/tokens/{body['id']}/topup", json={"amount": 20}, headers=api.auth(admin_token)
    )
    assert (await topped.json())["data"]["credits"] == 50
    banned = await api.client.post("/api/admin/tokens/bob/ban", headers=api.auth(admin_token))
    assert (await banned.json())["data"]["banned"] is True
    blocked = await api.client.post(
        "/api/video/parse", json={"url": DOUYIN_VIDEO}, headers=api.auth(body["token"])
    )
    assert blocked.status == 403
    listed = await (await api.client.get("/api/admin/tokens", headers=api.auth(admin_token))).json()
    assert body["token"] not in str(listed) and {t["name"] for t in listed["data"]} >= {"bob", "root"}
    bad = await api.client.post(
        "/api/admin/tokens", json={"name": "x", "credits": -1}, headers=api.auth(admin_token)
    )
    assert bad.status == 400
    missing = await api.client.post("/api/admin/tokens/nobody/ban", headers=api.auth(admin_token))
    assert missing.status == 404


async def test_share_text_stores_only_its_url_and_deep_json_is_400(api: Api) -> None:
    text = "长文案 " * 600 + "https://v.douyin.com/iRNBho6u/ 07/20 ZzG:/"
    response = await api.client.post("/api/video/parse", json={"url": text}, headers=api.auth())
    job_id = (await response.json())["data"]["jobId"]
    poll = await (await api.client.get(f"/api/job/{job_id}")).json()
    assert poll["data"]["data"]["url"] == "https://v.douyin.com/iRNBho6u/"
    deep = await api.client.post(
        "/api/video/parse", data=b"[" * 3000, headers={**api.auth(), "Content-Type": "application/json"}
    )
    assert deep.status in (400, 413)


DOUYIN_PROFILE = "https://www.douyin.com/user/MS4wLjABAAAA" + "x" * 64
TIKTOK_PROFILE = "https://www.tiktok.com/@some.creator"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"count": 0}, '"count" must be from 1 to 500'),
        ({"count": 501}, '"count" must be from 1 to 500'),
        ({"count": "20"}, '"count" must be a whole number'),
        ({"count": True}, '"count" must be a whole number'),
        ({"since": "last week"}, '"since" must be "today", "yesterday" or a date'),
        ({"since": "2026-02-30"}, "is not a real date"),
        ({"since": "2999-01-01"}, "in the future"),
        ({"since": 20260101}, '"since" must be'),
        ({"tz": "Mars/Base"}, "unknown time zone"),
        ({"url": DOUYIN_VIDEO}, "/api/video/parse"),
        ({"url": TIKTOK_PROFILE}, "/api/tiktok/channel/videos"),
    ],
)
async def test_channel_parameters_are_validated(api: Api, body: dict[str, object], needle: str) -> None:
    response = await api.client.post(
        "/api/channel/videos", json={"url": DOUYIN_PROFILE, **body}, headers=api.auth()
    )
    payload = await response.json()
    assert response.status == 400, payload
    assert needle in payload["error"]
    info = await api.client.app[TOKENS].lookup(api.token)
    assert info is not None and info.credits == 100


async def test_channel_job_costs_20_and_fixes_since_at_acceptance(api: Api) -> None:
    body = {"url": TIKTOK_PROFILE, "count": 7, "since": "today"}
    response = await api.client.post("/api/tiktok/channel/videos", json=body, headers=api.auth())
    job_id = (await response.json())["data"]["jobId"]
    info = await api.client.app[TOKENS].lookup(api.token)
    assert info is not None and info.credits == 80
    job = await api.client.app[QUEUE].get(job_id)
    assert job is not None and job.type == "tiktok.channel.videos"
    assert job.payload["count"] == 7 and job.payload["tz"] == "UTC"
    assert job.payload["since"].endswith("T00:00:00+00:00")
    douyin = await api.client.post("/api/channel/videos", json={"url": DOUYIN_PROFILE}, headers=api.auth())
    row = await api.client.app[QUEUE].get((await douyin.json())["data"]["jobId"])
    assert row is not None and row.payload["count"] == 20 and row.payload["tz"] == "Asia/Shanghai"


async def test_download_routes_contract(api: Api) -> None:
    video = await api.client.post(
        "/api/tiktok/video/download", json={"url": TIKTOK_VIDEO}, headers=api.auth()
    )
    assert (await video.json())["data"]["message"] == "Job queued. Poll GET /api/job/:jobId for download URL."
    task = await api.client.post(
        "/api/channel/download", json={"url": DOUYIN_PROFILE, "count": 10}, headers=api.auth()
    )
    data = (await task.json())["data"]
    assert task.status == 200 and data["status"] == "started" and data["total"] == 10
    view = (await (await api.client.get(f"/api/task/{data['taskId']}")).json())["data"]
    assert view["status"] == "started" and view["total"] == 10 and view["done"] == 0 and view["items"] == []
    info = await api.client.app[TOKENS].lookup(api.token)
    assert info is not None and info.credits == 100 - 10 - 20
    not_a_task = (await video.json())["data"]["jobId"]
    assert (await api.client.get(f"/api/task/{not_a_task}")).status == 404
    assert (await api.client.get("/api/task/nope")).status == 404
    missing = await api.client.get("/api/files/00000000-0000-0000-0000-000000000000")
    assert missing.status == 404 and "File not found" in (await missing.json())["error"]
    bad = await api.client.post(
        "/api/tiktok/channel/download", json={"url": TIKTOK_PROFILE, "count": 0}, headers=api.auth()
    )
    assert bad.status == 400
