"""What every benchmark needs: the full app wired to a fixture site, with an unlimited token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

from aiohttp.test_utils import TestClient, TestServer

from fixtures.site import FixtureSite
from scraper.config import load_browser_settings
from server.app import create_app
from server.keys import TOKENS
from server.settings import Settings


@asynccontextmanager
async def api_against(site: FixtureSite, *, workers: int) -> AsyncIterator[tuple[TestClient, dict[str, str]]]:
    """A running app (its own data dir) scraping ``site``, and the auth headers to call it."""
    with TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), workers=workers, rate_limit_per_minute=0)
        browser = load_browser_settings().pointed_at(site)
        app = create_app(settings, browser=browser, on_first_token=lambda token, info: None)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            token, _ = await app[TOKENS].create(name="bench", unlimited=True)
            yield client, {"Authorization": f"Bearer {token}"}
        finally:
            await client.close()
