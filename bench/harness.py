"""What every benchmark needs: the full app wired to a fixture site, with an unlimited token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

from aiohttp.test_utils import TestClient

from fixtures.site import FixtureSite
from scraper.config import load_browser_settings
from server.keys import TOKENS
from server.settings import Settings
from tests.e2e import start_app


@asynccontextmanager
async def api_against(site: FixtureSite, *, workers: int) -> AsyncIterator[tuple[TestClient, dict[str, str]]]:
    """A running app (its own data dir) scraping ``site``, and the auth headers to call it."""
    with TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), workers=workers, rate_limit_per_minute=0)
        browser = load_browser_settings().pointed_at(site)
        client = await start_app(settings, browser)
        try:
            token, _ = await client.app[TOKENS].create(name="bench", unlimited=True)
            yield client, {"Authorization": f"Bearer {token}"}
        finally:
            await client.close()
