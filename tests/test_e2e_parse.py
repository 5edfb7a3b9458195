"""End to end: HTTP API → job → worker → real Chromium → offline fixture site → result.

The fixture dataset (``shortvid fixtures show``) is the truth every result is compared with.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from fixtures.site import FixtureSite
from scraper.config import load_browser_settings
from server.keys import TOKENS
from server.settings import Settings
from tests.e2e import items_where, poll_job, start_app

pytestmark = pytest.mark.browser


def route_for(platform: str) -> str:
    return "/api/video/parse" if platform == "douyin" else "/api/tiktok/video/parse"


async def submit(client: TestClient, token: str, platform: str, url: str) -> str:
    response = await client.post(
        route_for(platform), json={"url": url}, headers={"Authorization": f"Bearer {token}"}
    )
    body = await response.json()
    assert response.status == 200, body
    return str(body["data"]["jobId"])


async def credits(client: TestClient, token: str) -> int:
    info = await client.app[TOKENS].lookup(token)
    assert info is not None
    return info.credits


def assert_matches_dataset(result: dict[str, Any], account: dict[str, Any], item: dict[str, Any]) -> None:
    """Every vendor field filled, and equal to the fixture's truth."""
    assert result["video_id"] == item["id"]
    assert result["title"] == item["title"]
    assert datetime.fromisoformat(result["create_time"].replace("Z", "+00:00")) == datetime.fromisoformat(
        item["create_time"].replace("Z", "+00:00")
    )
    assert result["create_time"].endswith("Z") and len(result["create_time"]) == 24
    assert result["author"]["nickname"] == account["nickname"]
    assert result["author"]["sec_uid"] == account["sec_uid"]
    assert result["author"]["uid"] == account["uid"]
    stats = result["statistics"]
    assert (stats["likes"], stats["comments"], stats["shares"]) == (
        item["likes"],
        item["comments"],
        item["shares"],
    )
    assert result["cover_url"].startswith("https://")
    if item["kind"] == "video":
        assert result["duration"] == item["duration"] > 0
        assert result["download_url"].startswith("https://")
        assert result["watermark"] is False
    else:
        assert result["media_type"] == "photo"
        assert len(result["images"]) == item["images"] >= 1


@pytest.mark.parametrize("platform", ["douyin", "tiktok"])
@pytest.mark.parametrize("kind", ["video", "photo"])
async def test_public_item_completes_with_every_field(
    client: TestClient, token: str, dataset: dict[str, Any], platform: str, kind: str
) -> None:
    account, item = items_where(
        dataset, platform=platform, account_state="public", state="public", kind=kind
    )[0]
    before = await credits(client, token)
    job = await poll_job(client, await submit(client, token, platform, item["url"]))
    assert job["state"] == "completed", job
    assert_matches_dataset(job["result"], account, item)
    assert job["result"]["platform"] == platform
    assert await credits(client, token) == before - 10


@pytest.mark.parametrize("platform", ["douyin", "tiktok"])
async def test_short_link_is_followed_by_the_browser(
    client: TestClient, token: str, dataset: dict[str, Any], platform: str
) -> None:
    links = [
        link
        for link in dataset["short_links"]
        if (platform == "douyin") == ("douyin" in link["url"]) and ("/video/" in link["target"])
    ]
    assert links, "the fixture dataset has a short link to a video"
    link = links[0]
    [(account, item)] = [(a, i) for a in dataset["accounts"] for i in a["items"] if i["id"] in link["target"]]
    job = await poll_job(client, await submit(client, token, platform, link["url"]))
    assert job["state"] == "completed", job
    assert_matches_dataset(job["result"], account, item)


@pytest.mark.parametrize("platform", ["douyin", "tiktok"])
@pytest.mark.parametrize(("state", "needle"), [("deleted", "not found"), ("private", "private")])
async def test_unavailable_item_fails_clearly_and_refunds(
    client: TestClient, token: str, dataset: dict[str, Any], platform: str, state: str, needle: str
) -> None:
    _, item = items_where(dataset, platform=platform, state=state)[0]
    before = await credits(client, token)
    job = await poll_job(client, await submit(client, token, platform, item["url"]))
    assert job["state"] == "failed", job
    assert needle in job["error"].lower()
    assert await credits(client, token) == before


async def test_unknown_short_link_fails_and_refunds(client: TestClient, token: str) -> None:
    before = await credits(client, token)
    job = await poll_job(client, await submit(client, token, "tiktok", "https://vm.tiktok.com/ZZZZNOPE1/"))
    assert job["state"] == "failed"
    assert "short link" in job["error"]
    assert await credits(client, token) == before


def test_fixture_dataset_is_the_cli_output(dataset: dict[str, Any], tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    shown = subprocess.run(
        [sys.executable, "-m", "server.cli", "fixtures", "show"], capture_output=True, text=True, check=True
    )
    printed = json.loads(shown.stdout)
    assert [a["profile_url"] for a in printed["accounts"]] == [a["profile_url"] for a in dataset["accounts"]]


async def test_jobs_survive_a_restart_and_a_dead_worker(
    site: FixtureSite, dataset: dict[str, Any], tmp_path: Path
) -> None:
    """Accepted while no worker runs, one job orphaned by a 'crashed' worker: both complete after restart."""
    from datetime import timedelta

    from server.keys import QUEUE

    [(_, first), (_, second)] = items_where(dataset, platform="tiktok", state="public", kind="video")[:2]
    api_only = Settings(
        data_dir=tmp_path, role="api", lease=timedelta(seconds=1), heartbeat=timedelta(seconds=0.3)
    )
    api_client = await start_app(api_only)
    app = api_client.app
    token, _ = await app[TOKENS].create(name="restart", credits=100)
    queued = await submit(api_client, token, "tiktok", first["url"])
    orphaned = await submit(api_client, token, "tiktok", second["url"])
    claimed = await app[QUEUE].claim("worker-that-dies")
    assert claimed is not None and claimed.id == queued  # oldest first; it now "crashes" holding the lease
    await api_client.close()

    full = Settings(
        data_dir=tmp_path,
        lease=timedelta(seconds=1),
        heartbeat=timedelta(seconds=0.3),
        workers=1,
        recover_every=timedelta(seconds=1),
    )
    browser = load_browser_settings().pointed_at(site)
    restarted = await start_app(full, browser)
    try:
        for job_id, item in ((queued, first), (orphaned, second)):
            job = await poll_job(restarted, job_id)
            assert job["state"] == "completed", job
            assert job["result"]["video_id"] == item["id"]
    finally:
        await restarted.close()
