"""End to end: channel listings through the HTTP API, the real browser and the fixture site.

The expected ids come from the fixture dataset (``shortvid fixtures show``) with the
rule of vendor-api.md, computed independently of the scraper.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from server.keys import TOKENS
from tests.e2e import account_by_role, day_start, expected_channel, poll_job

pytestmark = pytest.mark.browser

ROUTES = {"douyin": "/api/channel/videos", "tiktok": "/api/tiktok/channel/videos"}
ZONES = {"douyin": "Asia/Shanghai", "tiktok": "UTC"}
PLATFORMS = ["douyin", "tiktok"]


async def list_channel(client: TestClient, token: str, platform: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(ROUTES[platform], json=body, headers={"Authorization": f"Bearer {token}"})
    payload = await response.json()
    assert response.status == 200, payload
    return await poll_job(client, payload["data"]["jobId"], deadline=180)


async def list_since(
    client: TestClient,
    token: str,
    platform: str,
    body: Callable[[datetime], dict[str, Any]],
    zone: str,
    days_ago: int,
) -> tuple[dict[str, Any], datetime]:
    """A listing with a ``since`` day and the day's start we expect; asked again if midnight in
    ``zone`` passed while the job ran (the server fixes the day when it accepts the request)."""
    for _ in range(2):
        start = day_start(zone, days_ago)
        job = await list_channel(client, token, platform, body(start))
        if day_start(zone, days_ago) == start:
            return job, start
    raise AssertionError(f"the day in {zone} changed twice while one listing ran")


def assert_listing(job: dict[str, Any], account: dict[str, Any], count: int, since: datetime | None) -> None:
    assert job["state"] == "completed", job
    result = job["result"]
    expected = expected_channel(account, count, since)
    got = [video["video_id"] for video in result["videos"]]
    assert got == expected
    assert result["count"] == len(expected)
    times = [video["create_time"] for video in result["videos"]]
    assert times == sorted(times, reverse=True) and len(set(got)) == len(got)
    inside = len(expected_channel(account, 10_000, since))
    if inside != count:
        assert result["has_more"] is (inside > count)
    assert result["author"]["nickname"] == account["nickname"]
    assert result["author"]["sec_uid"] == account["sec_uid"]
    truth = {item["id"]: item for item in account["items"]}
    for video in result["videos"]:  # each video carries the full video result
        item = truth[video["video_id"]]
        assert video["title"] == item["title"] and video["platform"] == account["platform"]
        assert video["statistics"]["likes"] == item["likes"]
        assert video["is_pinned"] is item["pinned"]
        assert (video["download_url"] is not None) is (item["kind"] == "video")


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(
    ("role", "count"),
    [("medium", 5), ("medium", 100), ("big", 100), ("single", 20), ("photos", 20)],
    ids=["smaller-than-a-page", "beyond-the-channel", "several-pages", "one-item", "photo-posts"],
)
async def test_count(
    client: TestClient, token: str, dataset: dict[str, Any], platform: str, role: str, count: int
) -> None:
    account = account_by_role(dataset, platform, role)
    job = await list_channel(client, token, platform, {"url": account["profile_url"], "count": count})
    assert_listing(job, account, count, None)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(("since", "days_ago"), [("today", 0), ("yesterday", 1), ("date", 6)])
async def test_since(
    client: TestClient, token: str, dataset: dict[str, Any], platform: str, since: str, days_ago: int
) -> None:
    account = account_by_role(dataset, platform, "big")

    def body(start: datetime) -> dict[str, Any]:
        value = start.astimezone(ZoneInfo(ZONES[platform])).date().isoformat()
        return {"url": account["profile_url"], "count": 500, "since": value if since == "date" else since}

    job, start = await list_since(client, token, platform, body, ZONES[platform], days_ago)
    assert job["result"]["videos"], "the dataset has posts on these days"
    assert_listing(job, account, 500, start)
    assert not any(v["is_pinned"] for v in job["result"]["videos"])  # pinned posts are older than the rest


async def test_since_follows_the_requested_time_zone(
    client: TestClient, token: str, dataset: dict[str, Any]
) -> None:
    account = account_by_role(dataset, "tiktok", "big")
    body = {"url": account["profile_url"], "count": 500, "since": "yesterday", "tz": "Asia/Tokyo"}
    job, start = await list_since(client, token, "tiktok", lambda _: body, "Asia/Tokyo", 1)
    assert_listing(job, account, 500, start)


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_pinned_old_posts_are_placed_by_their_time(
    client: TestClient, token: str, dataset: dict[str, Any], platform: str
) -> None:
    account = account_by_role(dataset, platform, "medium")
    assert any(i["pinned"] for i in account["items"])
    job = await list_channel(client, token, platform, {"url": account["profile_url"], "count": 500})
    assert_listing(job, account, 500, None)
    flags = [v["is_pinned"] for v in job["result"]["videos"]]
    assert flags[-sum(flags) :] == [True] * sum(flags)  # the old pinned posts sort to the end


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_five_hundred_items(
    client: TestClient, token: str, dataset: dict[str, Any], platform: str
) -> None:
    account = account_by_role(dataset, platform, "big")
    job = await list_channel(client, token, platform, {"url": account["profile_url"], "count": 500})
    assert len(job["result"]["videos"]) == 500
    assert_listing(job, account, 500, None)


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_empty_channel_completes_with_no_videos(
    client: TestClient, token: str, dataset: dict[str, Any], platform: str
) -> None:
    account = account_by_role(dataset, platform, "empty")
    job = await list_channel(client, token, platform, {"url": account["profile_url"]})
    assert job["state"] == "completed", job
    assert (
        job["result"]["videos"] == [] and job["result"]["count"] == 0 and job["result"]["has_more"] is False
    )


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(("role", "needle"), [("private", "private"), ("missing", "not found")])
async def test_private_and_missing_accounts_fail_and_refund(
    client: TestClient, token: str, dataset: dict[str, Any], platform: str, role: str, needle: str
) -> None:
    account = account_by_role(dataset, platform, role)
    before = (await client.app[TOKENS].lookup(token)).credits  # type: ignore[union-attr]
    job = await list_channel(client, token, platform, {"url": account["profile_url"], "count": 10})
    assert job["state"] == "failed", job
    assert needle in job["error"].lower()
    assert (await client.app[TOKENS].lookup(token)).credits == before  # type: ignore[union-attr]


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_profile_short_link(
    client: TestClient, token: str, dataset: dict[str, Any], platform: str
) -> None:
    link = next(s for s in dataset["short_links"] if s["platform"] == platform and s["kind"] == "profile")
    account = next(a for a in dataset["accounts"] if a["platform"] == platform and a["user"] == link["user"])
    job = await list_channel(client, token, platform, {"url": link["url"], "count": 3})
    assert_listing(job, account, 3, None)


async def test_iesdouyin_share_user_form(client: TestClient, token: str, dataset: dict[str, Any]) -> None:
    account = account_by_role(dataset, "douyin", "medium")
    url = f"https://www.iesdouyin.com/share/user/{account['sec_uid']}?u_code=x&did=1"
    job = await list_channel(client, token, "douyin", {"url": url, "count": 7})
    assert_listing(job, account, 7, None)
