"""What every benchmark needs: the full app wired to a fixture site, with an unlimited token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from aiohttp.test_utils import TestClient

from fixtures.site import FixtureSite
from scraper.config import load_browser_settings
from server.keys import TOKENS
from server.settings import Settings
from tests.e2e import start_app


@asynccontextmanager
async def api_against(
    site: FixtureSite, *, workers: int, **browser_overrides: Any
) -> AsyncIterator[tuple[TestClient, dict[str, str]]]:
    """A running app (its own data dir) scraping ``site``, and the auth headers to call it;
    ``browser_overrides`` replace fields of the browser settings (``fast_path=False`` …)."""
    with TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), workers=workers, rate_limit=0)
        browser = replace(load_browser_settings().pointed_at(site), **browser_overrides)
        client = await start_app(settings, browser)
        try:
            token, _ = await client.app[TOKENS].create(name="bench", unlimited=True)
            yield client, {"Authorization": f"Bearer {token}"}
        finally:
            await client.close()


async def wait_all(client: TestClient, job_ids: Sequence[str], poll: float) -> None:
    """Wait until every job has ended; each must have completed.

    The jobs are looked at in submission order, moving past one only once it has ended, so a
    round still ends within one ``poll`` of its last job while a sweep costs one request: polling
    every pending job every sweep made the client's own requests (90 jobs every 20 ms) a load on
    the event loop it shares with the server, and the fast path measured slower with more items.
    """
    pending = list(job_ids)
    while pending:
        data = (await (await client.get(f"/api/job/{pending[0]}")).json())["data"]
        if data["state"] in ("completed", "failed"):
            assert data["state"] == "completed", data
            pending.pop(0)
            continue
        await asyncio.sleep(poll)
