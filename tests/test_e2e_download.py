"""End to end: downloads through the HTTP API, the real browser and the fixture CDNs.

Files must be byte-identical to the fixture's media (sha256 from ``shortvid fixtures show``),
fetchable by a plain client without cookies, with Range and HEAD.
"""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from fixtures.site import FixtureSite
from scraper.http import platform_http_session
from server.keys import TOKENS
from tests.e2e import account_by_role, expected_channel, items_where, poll_job, start_app

pytestmark = pytest.mark.browser

VIDEO_ROUTES = {"douyin": "/api/video/download", "tiktok": "/api/tiktok/video/download"}
CHANNEL_ROUTES = {"douyin": "/api/channel/download", "tiktok": "/api/tiktok/channel/download"}
PLATFORMS = ["douyin", "tiktok"]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def fetch_plain(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, bytes, Any]:
    """A plain HTTP client: no cookies, no session, nothing but the URL."""
    async with aiohttp.ClientSession() as http, http.request(method, url, headers=headers or {}) as response:
        return response.status, await response.read(), response.headers


async def download_job(client: TestClient, token: str, platform: str, url: str) -> dict[str, Any]:
    response = await client.post(VIDEO_ROUTES[platform], json={"url": url}, headers=auth(token))
    body = await response.json()
    assert response.status == 200, body
    assert body["data"]["message"] == "Job queued. Poll GET /api/job/:jobId for download URL."
    return await poll_job(client, body["data"]["jobId"], deadline=120)


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_video_download_is_byte_identical_and_served_to_plain_clients(
    client: TestClient, token: str, dataset: dict[str, Any], platform: str
) -> None:
    _, item = items_where(dataset, platform=platform, account_state="public", state="public", kind="video")[0]
    job = await download_job(client, token, platform, item["url"])
    assert job["state"] == "completed", job
    result = job["result"]
    assert result["video_id"] == item["id"] and result["watermark"] is False
    assert result["download_url"].startswith("http://") and "/api/files/" in result["download_url"]
    assert result["source_url"].startswith("https://") and result["source_url"] != result["download_url"]
    assert result["download_url_expires_at"].endswith("Z")
    status, body, headers = await fetch_plain(result["download_url"])
    assert status == 200 and headers["Content-Type"] == "video/mp4"
    assert hashlib.sha256(body).hexdigest() == item["media_sha256"] != item["media_watermarked_sha256"]
    assert int(headers["Content-Length"]) == len(body) == item["media_size"]
    head_status, head_body, head_headers = await fetch_plain(result["download_url"], method="HEAD")
    assert head_status == 200 and head_body == b"" and int(head_headers["Content-Length"]) == len(body)
    part_status, part, part_headers = await fetch_plain(result["download_url"], {"Range": "bytes=4-11"})
    assert part_status == 206 and part == body[4:12] and part[:4] == b"ftyp"
    assert part_headers["Content-Range"] == f"bytes 4-11/{len(body)}"
    tail_status, tail, _ = await fetch_plain(result["download_url"], {"Range": "bytes=-10"})
    assert tail_status == 206 and tail == body[-10:]


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_direct_cdn_requests_without_the_session_are_refused(
    site: FixtureSite, client: TestClient, token: str, dataset: dict[str, Any], platform: str
) -> None:
    """So a download made outside the session (no cookies, no Referer) would fail the tests above."""
    _, item = items_where(dataset, platform=platform, account_state="public", state="public", kind="video")[1]
    job = await download_job(client, token, platform, item["url"])
    source = job["result"]["source_url"]
    async with (
        platform_http_session(map_to=site.address, ca_file=site.ca_pem_path) as http,
        http.get(source) as response,
    ):
        assert response.status == 403


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_photo_post_yields_its_images(
    client: TestClient, token: str, dataset: dict[str, Any], platform: str
) -> None:
    _, item = items_where(dataset, platform=platform, account_state="public", state="public", kind="photo")[0]
    job = await download_job(client, token, platform, item["url"])
    assert job["state"] == "completed", job
    files = job["result"]["files"]
    images = [f for f in files if f["role"] == "image"]
    assert [f["sha256"] for f in images] == item["image_sha256"]
    for view in images:
        status, body, headers = await fetch_plain(view["download_url"])
        assert status == 200 and headers["Content-Type"].startswith("image/")
        assert hashlib.sha256(body).hexdigest() == view["sha256"]
    music = [f for f in files if f["role"] == "music"]
    if item.get("music_sha256"):
        assert [f["sha256"] for f in music] == [item["music_sha256"]]


async def test_captcha_instead_of_media_is_retried_never_saved(
    site: FixtureSite, client: TestClient, token: str, dataset: dict[str, Any]
) -> None:
    _, item = items_where(dataset, platform="douyin", account_state="public", state="public", kind="video")[2]
    site.faults.media_captcha_next = 1
    try:
        job = await download_job(client, token, "douyin", item["url"])
    finally:
        site.faults.media_captcha_next = 0
    assert job["state"] == "completed", job
    status, body, _ = await fetch_plain(job["result"]["download_url"])
    assert status == 200 and hashlib.sha256(body).hexdigest() == item["media_sha256"]
    assert site.stats["douyin.media_captcha"] >= 1


async def test_captcha_every_time_is_reported_and_refunded(
    site: FixtureSite, client: TestClient, token: str, dataset: dict[str, Any]
) -> None:
    _, item = items_where(dataset, platform="douyin", account_state="public", state="public", kind="video")[3]
    before = (await client.app[TOKENS].lookup(token)).credits  # type: ignore[union-attr]
    site.faults.media_captcha_next = 10_000
    try:
        job = await download_job(client, token, "douyin", item["url"])
    finally:
        site.faults.media_captcha_next = 0
    assert job["state"] == "failed", job
    assert "blocked" in job["error"].lower() and "captcha" in job["error"].lower()
    assert (await client.app[TOKENS].lookup(token)).credits == before  # type: ignore[union-attr]


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_channel_download_task(
    client: TestClient, token: str, dataset: dict[str, Any], platform: str
) -> None:
    account = account_by_role(dataset, platform, "photos" if platform == "tiktok" else "medium")
    body = {"url": account["profile_url"], "count": 6}
    response = await client.post(CHANNEL_ROUTES[platform], json=body, headers=auth(token))
    started = (await response.json())["data"]
    assert response.status == 200 and started["status"] == "started" and started["total"] == 6
    task = await poll_task(client, started["taskId"])
    expected = expected_channel(account, 6, None)
    assert task["status"] == "completed", task
    assert [i["video_id"] for i in task["items"]] == expected
    assert task["total"] == task["done"] == len(expected) and task["failed"] == 0
    truth = {i["id"]: i for i in account["items"]}
    for entry in task["items"]:
        status, body_bytes, _ = await fetch_plain(entry["download_url"])
        assert status == 200 and entry["state"] == "done" and entry["bytes"] >= len(body_bytes)
        want = truth[entry["video_id"]]
        first = want["media_sha256"] or want["image_sha256"][0]
        assert hashlib.sha256(body_bytes).hexdigest() == first


async def poll_task(client: TestClient, task_id: str, *, deadline: float = 180) -> dict[str, Any]:
    import asyncio
    import time

    stop = time.monotonic() + deadline
    while True:
        data = (await (await client.get(f"/api/task/{task_id}")).json())["data"]
        if data["status"] in ("completed", "partial", "failed"):
            return data
        assert time.monotonic() < stop, data
        await asyncio.sleep(0.2)


async def test_channel_task_survives_a_restart_with_every_file_once(
    site: FixtureSite, dataset: dict[str, Any], tmp_path: Any
) -> None:
    """Stop the server mid-task; on restart the task resumes, skips finished posts, and ends complete."""
    import asyncio

    from models.db import make_engine, session_factory
    from models.tables import StoredFile
    from scraper.config import load_browser_settings
    from server.keys import FILES
    from server.settings import Settings
    from server.tasks import TaskStore

    settings = Settings(data_dir=tmp_path, workers=1, download_concurrency=1, rate_limit=0)
    browser = load_browser_settings().pointed_at(site)

    account = account_by_role(dataset, "douyin", "medium")
    first = await start_app(settings, browser)
    token, _ = await first.app[TOKENS].create(name="restart", credits=100)
    body = {"url": account["profile_url"], "count": 20}
    task_id = (await (await first.post(CHANNEL_ROUTES["douyin"], json=body, headers=auth(token))).json())[
        "data"
    ]["taskId"]
    while True:  # wait until some, not all, posts are done
        view = (await (await first.get(f"/api/task/{task_id}")).json())["data"]
        if view["done"] >= 3:
            break
        assert view["status"] in ("started", "running"), view
        await asyncio.sleep(0.1)
    await first.close()
    # Snapshots once nothing runs any more: what the stopped server finished, what the CDN served.
    served_before = site.stats["douyin.media_served"]
    engine = make_engine(settings.resolved_database_url)
    try:
        stopped_items = await TaskStore(session_factory(engine)).items(task_id)
    finally:
        await engine.dispose()
    done_before = {i.video_id for i in stopped_items if i.state == "done"}
    assert 3 <= len(done_before) < 20

    second = await start_app(settings, browser)
    try:
        task = await poll_task(second, task_id)
        assert task["status"] == "completed", task
        expected = expected_channel(account, 20, None)
        assert [i["video_id"] for i in task["items"]] == expected
        assert task["done"] == len(expected) and task["failed"] == 0
        # Finished posts were not downloaded again: at most the one in flight is fetched twice.
        served_after = site.stats["douyin.media_served"] - served_before
        videos_left = sum(
            1 for i in task["items"] if i["video_id"] not in done_before and i["media_type"] == "video"
        )
        assert videos_left <= served_after <= videos_left + 1
        store = second.app[FILES]
        async with store._reads() as session:
            from sqlalchemy import select

            rows = (
                (await session.execute(select(StoredFile).where(StoredFile.job_id == task_id)))
                .scalars()
                .all()
            )
        item_files = [f for i in task["items"] for f in i["files"]]
        assert sorted(r.id for r in rows) == sorted(f["download_url"].rsplit("/", 1)[1] for f in item_files)
        on_disk = sorted(p for p in store.root.rglob("*") if p.is_file())
        assert on_disk == sorted(store.root / r.relpath for r in rows)  # every file once, no leftovers
        assert all(not r.pinned for r in rows)
    finally:
        await second.close()
