"""Helpers for end-to-end tests: the fixture site, an app wired to it, and job polling."""

from __future__ import annotations

import asyncio
import time as clock
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient, TestServer

from scraper.config import BrowserSettings
from server.app import create_app
from server.settings import Settings

FINISHED = ("completed", "failed")


async def start_app(settings: Settings, browser: BrowserSettings | None = None) -> TestClient:
    """The whole app (API, workers, pool, scheduler) on a test server; the caller closes it."""
    app = create_app(settings, browser=browser, on_first_token=lambda token, info: None)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def poll_job(client: TestClient, job_id: str, *, deadline: float = 90.0) -> dict[str, Any]:
    """Poll GET /api/job/{id} until it finishes; the deadline only bounds a hung test."""
    stop = clock.monotonic() + deadline
    while True:
        response = await client.get(f"/api/job/{job_id}")
        body = await response.json()
        assert response.status == 200, body
        if body["data"]["state"] in FINISHED:
            return body["data"]
        if clock.monotonic() > stop:
            raise AssertionError(f"job {job_id} did not finish: {body}")
        await asyncio.sleep(0.2)


def items_where(dataset: dict[str, Any], **conditions: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(account, item) pairs of the fixture dataset matching item/account conditions."""
    found = []
    for account in dataset["accounts"]:
        if "account_state" in conditions and account["state"] != conditions["account_state"]:
            continue
        if "platform" in conditions and account["platform"] != conditions["platform"]:
            continue
        for item in account["items"]:
            if all(item.get(k) == v for k, v in conditions.items() if k not in ("account_state", "platform")):
                found.append((account, item))
    return found


def created(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["create_time"].replace("Z", "+00:00"))


def expected_channel(account: dict[str, Any], count: int, since: datetime | None) -> list[str]:
    """The truth for a channel listing: public posts from ``since`` on, newest first, at most ``count``.

    Pinned posts obey the same rule: kept only inside ``since``, placed by their create time.
    """
    public = [i for i in account["items"] if i["state"] == "public"]
    inside = [i for i in public if since is None or created(i) >= since]
    inside.sort(key=created, reverse=True)
    return [i["id"] for i in inside[:count]]


def day_start(zone: str, days_ago: int = 0) -> datetime:
    """Midnight ``days_ago`` days before today in ``zone``, as UTC."""
    local_today = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
    day = local_today - timedelta(days=days_ago)
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def account_by_role(dataset: dict[str, Any], platform: str, role: str) -> dict[str, Any]:
    return next(a for a in dataset["accounts"] if a["platform"] == platform and a["role"] == role)
