"""A bare Chromium for tests that drive pages without the pool, launched as ``playwright.config`` says.

The executable and flags come from the same settings the pool uses, so these tests run
wherever the pool does (Playwright's own browser or Debian's) instead of skipping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from playwright.async_api import Browser, async_playwright

from scraper.config import load_browser_settings


@asynccontextmanager
async def bare_chromium(extra_args: Sequence[str] = ()) -> AsyncIterator[Browser]:
    settings = load_browser_settings()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=settings.executable_path,
            headless=settings.headless,
            args=[*settings.args, *extra_args],
        )
        try:
            yield browser
        finally:
            await browser.close()
