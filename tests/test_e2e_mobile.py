"""End to end with a mobile identity: TikTok serves its mobile web layouts to an iPhone.

The app's only identity is an iPhone (user agent and viewport), so every TikTok page the browser
loads is the mobile page: the post in an ``api-data`` script (2026 layout) or in
``webapp.reflow.video.detail`` (older layout), as ``fixtures.shapes_tiktok_mobile.mobile_layout``
picks. The results must still equal the fixture dataset, and the fixture's per-layout counters
prove the browser really got the mobile page.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from fixtures.shapes_tiktok_mobile import mobile_layout
from fixtures.site import FixtureSite
from scraper.config import Identity, load_browser_settings
from server.keys import TOKENS
from server.settings import Settings
from tests.e2e import items_where, poll_job, start_app

pytestmark = pytest.mark.browser

IPHONE = Identity(
    name="iphone",
    user_agent=(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Mobile/15E148 Safari/604.1"
    ),
    viewport_width=390,
    viewport_height=844,
)


@pytest.fixture(scope="module")
async def mobile_client(
    site: FixtureSite, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[TestClient]:
    """The whole app, its browser pool made of iPhone sessions only."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("e2e-mobile"), workers=1, rate_limit=0)
    browser = dataclasses.replace(load_browser_settings().pointed_at(site), identities=(IPHONE,), pool_size=1)
    client = await start_app(settings, browser)
    yield client
    await client.close()


@pytest.fixture
async def token(mobile_client: TestClient) -> str:
    value, _ = await mobile_client.app[TOKENS].create(
        name=f"e2e-mobile-{uuid.uuid4().hex[:8]}", credits=100_000
    )
    return value


def pick(
    dataset: dict[str, Any], kind: str, layout: str, state: str = "public"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first (account, item) of a public TikTok account with this kind, state and mobile layout."""
    return next(
        (account, item)
        for account, item in items_where(
            dataset, platform="tiktok", account_state="public", state=state, kind=kind
        )
        if mobile_layout(item["id"], item["kind"]) == layout
    )


async def run(client: TestClient, token: str, route: str, url: str) -> dict[str, Any]:
    response = await client.post(route, json={"url": url}, headers={"Authorization": f"Bearer {token}"})
    body = await response.json()
    assert response.status == 200, body
    return await poll_job(client, body["data"]["jobId"], deadline=120)


def assert_is_the_dataset(result: dict[str, Any], account: dict[str, Any], item: dict[str, Any]) -> None:
    assert (result["platform"], result["video_id"], result["title"]) == ("tiktok", item["id"], item["title"])
    created = datetime.fromisoformat(result["create_time"].replace("Z", "+00:00"))
    assert created == datetime.fromisoformat(item["create_time"].replace("Z", "+00:00"))
    author = result["author"]
    assert (author["uid"], author["sec_uid"], author["unique_id"], author["nickname"]) == (
        account["uid"],
        account["sec_uid"],
        account["unique_id"],
        account["nickname"],
    )
    stats = result["statistics"]
    assert (stats["likes"], stats["comments"], stats["shares"], stats["plays"], stats["collects"]) == (
        item["likes"],
        item["comments"],
        item["shares"],
        item["plays"],
        item["collects"],
    )
    assert result["music"]["title"] == item["music_title"]
    if item["kind"] == "video":
        assert result["media_type"] == "video" and result["duration"] == item["duration"] > 0
        platform_url = result.get("source_url") or result["download_url"]  # a download: shortvid's copy
        assert result["watermark"] is False and platform_url.startswith("https://")
    else:
        assert result["media_type"] == "photo" and result["duration"] == 0
        assert len(result["images"]) == item["images"] >= 1


@pytest.mark.parametrize(
    ("kind", "layout"), [("video", "reflow"), ("video", "api-data"), ("photo", "api-data")]
)
async def test_parse_reads_the_mobile_page(
    site: FixtureSite, mobile_client: TestClient, token: str, dataset: dict[str, Any], kind: str, layout: str
) -> None:
    account, item = pick(dataset, kind, layout)
    served = site.stats[f"tiktok.mobile_page.{layout}"]
    job = await run(mobile_client, token, "/api/tiktok/video/parse", item["url"])
    assert job["state"] == "completed", job
    assert_is_the_dataset(job["result"], account, item)
    assert site.stats[f"tiktok.mobile_page.{layout}"] > served, "the browser was not given the mobile page"


async def test_download_through_the_mobile_session(
    site: FixtureSite, mobile_client: TestClient, token: str, dataset: dict[str, Any]
) -> None:
    account, item = pick(dataset, "video", "api-data")
    served = site.stats["tiktok.mobile_page"]
    job = await run(mobile_client, token, "/api/tiktok/video/download", item["url"])
    assert job["state"] == "completed", job
    assert_is_the_dataset(job["result"], account, item)
    assert site.stats["tiktok.mobile_page"] > served
    async with aiohttp.ClientSession() as http, http.get(job["result"]["download_url"]) as response:
        body = await response.read()
    assert response.status == 200 and hashlib.sha256(body).hexdigest() == item["media_sha256"]


@pytest.mark.parametrize("layout", ["reflow", "api-data"])
async def test_deleted_item_fails_as_not_found(
    site: FixtureSite, mobile_client: TestClient, token: str, dataset: dict[str, Any], layout: str
) -> None:
    _, item = pick(dataset, "video", layout, state="deleted")
    served = site.stats[f"tiktok.mobile_page.{layout}"]
    job = await run(mobile_client, token, "/api/tiktok/video/parse", item["url"])
    assert job["state"] == "failed", job
    assert "not found" in job["error"].lower()
    assert site.stats[f"tiktok.mobile_page.{layout}"] > served
