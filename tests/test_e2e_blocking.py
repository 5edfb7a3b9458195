"""The pool under the platforms' risk control (fixture failure modes), end to end through the API.

Each block kind is recognised as risk control and the work moves to a fresh session; a deleted
item is never blamed on the session; a killed Chromium is relaunched and the job still completes.
These run the navigation path (``fast_path`` off), which meets every page kind; the fast path's
own blocks and fallbacks are in tests/test_fast_path.py.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from fixtures.site import FixtureSite
from scraper.chromium_processes import own_chromium_processes
from scraper.config import load_browser_settings
from server.keys import POOL, TOKENS
from server.settings import Settings
from tests.e2e import account_by_role, items_where, poll_job, risk_seen, start_app

pytestmark = pytest.mark.browser

PARSE = {"douyin": "/api/video/parse", "tiktok": "/api/tiktok/video/parse"}
CHANNEL = {"douyin": "/api/channel/videos", "tiktok": "/api/tiktok/channel/videos"}


@pytest.fixture(scope="module")
async def app_client(
    site: FixtureSite, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("blocking"),
        workers=2,
        rate_limit=0,
        retry_base=timedelta(milliseconds=200),
        cache=False,  # every submission must scrape: the tests plant a fault for the next load
    )
    browser = replace(
        load_browser_settings().pointed_at(site), cooldown_base=0.2, cooldown_max=1.0, fast_path=False
    )
    client = await start_app(settings, browser)
    yield client
    await client.close()


@pytest.fixture
async def funded(app_client: TestClient, site: FixtureSite) -> AsyncIterator[str]:
    token, _ = await app_client.app[TOKENS].create(name=f"b-{uuid.uuid4().hex[:6]}", credits=100_000)
    site.faults.clear()
    yield token
    site.faults.clear()


async def submit(client: TestClient, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    payload = await response.json()
    assert response.status == 200, payload
    return await poll_job(client, payload["data"]["jobId"], deadline=120)


VIDEO_PAGE_KINDS = [
    ("tiktok", "tiktok.block_shell"),
    ("tiktok", "tiktok.verify"),
    ("tiktok", "tiktok.captcha"),
    ("douyin", "douyin.captcha"),
]
XHR_KINDS = [
    ("douyin", "douyin.api_empty"),
    ("douyin", "douyin.argus"),
    ("douyin", "douyin.status4"),
    ("douyin", "douyin.http429"),
    ("tiktok", "tiktok.api_empty"),
    ("tiktok", "tiktok.http429"),
]


@pytest.mark.parametrize(("platform", "kind"), VIDEO_PAGE_KINDS + XHR_KINDS)
async def test_each_block_kind_is_risk_and_moves_to_a_fresh_session(
    app_client: TestClient, funded: str, site: FixtureSite, dataset: dict[str, Any], platform: str, kind: str
) -> None:
    before = app_client.app[POOL].census()
    site.faults.block(kind, next=1)
    if kind.startswith("tiktok.") and kind.split(".")[1] in ("api_empty", "http429"):
        account = account_by_role(dataset, platform, "medium")
        job = await submit(app_client, funded, CHANNEL[platform], {"url": account["profile_url"], "count": 5})
        assert job["state"] == "completed", job
        assert len(job["result"]["videos"]) == 5
    else:
        _, item = items_where(
            dataset, platform=platform, account_state="public", state="public", kind="video"
        )[5]
        job = await submit(app_client, funded, PARSE[platform], {"url": item["url"]})
        assert job["state"] == "completed", job
        assert job["result"]["video_id"] == item["id"]
    assert site.stats[f"fault.{kind}"] == 1  # the block was served once, and the job still completed
    assert risk_seen(app_client.app[POOL].census(), before)


async def test_waf_challenge_is_passed_transparently(
    app_client: TestClient, funded: str, site: FixtureSite, dataset: dict[str, Any]
) -> None:
    _, item = items_where(dataset, platform="tiktok", account_state="public", state="public", kind="video")[6]
    site.faults.block("tiktok.waf", next=1)
    job = await submit(app_client, funded, PARSE["tiktok"], {"url": item["url"]})
    assert job["state"] == "completed" and job["result"]["video_id"] == item["id"]
    assert site.stats["tiktok.waf_passed"] >= 1


async def test_jobs_complete_with_thirty_percent_of_page_loads_blocked(
    app_client: TestClient, funded: str, site: FixtureSite, dataset: dict[str, Any]
) -> None:
    site.faults.seed = 11
    site.faults.rates.update({"tiktok.verify": 0.3, "douyin.captcha": 0.3})
    for platform in ("tiktok", "douyin"):
        items = items_where(dataset, platform=platform, account_state="public", state="public", kind="video")
        for _, item in items[10:16]:
            job = await submit(app_client, funded, PARSE[platform], {"url": item["url"]})
            assert job["state"] == "completed", job
            assert job["result"]["video_id"] == item["id"]
    assert site.stats["fault.tiktok.verify"] + site.stats["fault.douyin.captcha"] >= 1


async def test_every_session_blocked_fails_as_blocked_not_not_found(
    app_client: TestClient, funded: str, site: FixtureSite, dataset: dict[str, Any]
) -> None:
    _, item = items_where(dataset, platform="tiktok", account_state="public", state="public", kind="video")[
        20
    ]
    before = (await app_client.app[TOKENS].lookup(funded)).credits  # type: ignore[union-attr]
    site.faults.rates["tiktok.verify"] = 1.0
    job = await submit(app_client, funded, PARSE["tiktok"], {"url": item["url"]})
    assert job["state"] == "failed", job
    assert job["error"].startswith("Blocked by the platform") and "not found" not in job["error"].lower()
    assert (await app_client.app[TOKENS].lookup(funded)).credits == before  # type: ignore[union-attr]


async def test_a_deleted_item_never_retires_or_scores_a_session(
    app_client: TestClient, funded: str, dataset: dict[str, Any]
) -> None:
    pool = app_client.app[POOL]
    await pool.maintain()
    before = pool.census()
    for platform in ("douyin", "tiktok"):
        _, item = items_where(dataset, platform=platform, state="deleted")[0]
        for _ in range(3):
            job = await submit(app_client, funded, PARSE[platform], {"url": item["url"]})
            assert job["state"] == "failed" and "not found" in job["error"].lower()
    after = pool.census()
    assert after["retired"] == before["retired"]
    scores = {s["id"]: s["score"] for s in before["detail"]}
    for session in after["detail"]:
        assert session["id"] in scores  # the same identities are still serving
        assert session["score"] <= scores[session["id"]] and session["state"] != "retired"


def browser_pids() -> list[int]:
    """Chromium browser processes started by this test process (children of its Playwright driver)."""
    return [process.pid for process in own_chromium_processes() if process.is_browser]


async def test_killed_chromium_is_relaunched_and_the_job_completes(
    app_client: TestClient, funded: str, site: FixtureSite, dataset: dict[str, Any]
) -> None:
    import asyncio

    pool = app_client.app[POOL]
    relaunches = pool.relaunches
    account = account_by_role(dataset, "douyin", "big")
    response = await app_client.post(
        CHANNEL["douyin"],
        json={"url": account["profile_url"], "count": 300},
        headers={"Authorization": f"Bearer {funded}"},
    )
    job_id = (await response.json())["data"]["jobId"]
    before = site.stats["douyin.post"]
    while site.stats["douyin.post"] < before + 3:  # the listing is under way in the browser
        await asyncio.sleep(0.05)
    pids = browser_pids()
    assert pids, "found the Chromium browser process"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    job = await poll_job(app_client, job_id, deadline=180)
    assert job["state"] == "completed", job
    assert len(job["result"]["videos"]) == 300
    assert pool.relaunches > relaunches and pool.browser_alive
