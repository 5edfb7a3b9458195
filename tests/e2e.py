"""Helpers for end-to-end tests: the fixture site, an app wired to it, and job polling."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp.test_utils import TestClient

FINISHED = ("completed", "failed")


async def poll_job(client: TestClient, job_id: str, *, deadline: float = 90.0) -> dict[str, Any]:
    """Poll GET /api/job/{id} until it finishes; the deadline only bounds a hung test."""
    stop = time.monotonic() + deadline
    while True:
        response = await client.get(f"/api/job/{job_id}")
        body = await response.json()
        assert response.status == 200, body
        if body["data"]["state"] in FINISHED:
            return body["data"]
        if time.monotonic() > stop:
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
