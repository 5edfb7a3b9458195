"""The console tests' browser and server: pytest-playwright driving the Chromium ``playwright.config``
names, against ``shortvid serve --offline`` running in a process of its own."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserType,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Route,
    sync_playwright,
)

from scraper.config import load_browser_settings
from tests.e2e import REPO, ServeProcess, http_json

#: Screenshots of every page, desktop and phone, kept after the run (gitignored).
ARTIFACTS = Path(os.environ.get("SHORTVID_CONSOLE_ARTIFACTS", REPO / "test-artifacts" / "console"))
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


# pytest-playwright's sync API runs Playwright's own event loop for as long as its ``playwright``
# fixture lives (the whole session, as the plugin defines it). pytest-asyncio's tests cannot run
# while that loop exists ("Cannot run the event loop while another loop is running"), so here the
# chain from ``playwright`` to ``browser`` lives for one module: Playwright stops before any async
# test of another module starts. ``page``, ``context`` and ``new_context`` are the plugin's own.


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    engine: BrowserType = getattr(playwright, browser_name)
    return engine


@pytest.fixture(scope="module")
def browser(browser_type: BrowserType, browser_type_launch_args: dict[str, Any]) -> Iterator[Browser]:
    launched = browser_type.launch(**browser_type_launch_args)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def browser_context_args() -> dict[str, Any]:
    return {"viewport": DESKTOP}


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """Launch the Chromium and flags of ``playwright.config`` (Debian's where Playwright's is absent).

    Only the configured flags: not the pool's host-resolver rules, which refuse loopback addresses
    (a person's browser opening the console has no such rules either).
    """
    settings = load_browser_settings()
    return {
        "executable_path": settings.executable_path,
        "headless": settings.headless,
        "args": list(settings.args),
    }


@dataclass
class Console:
    """A running ``shortvid serve --offline`` and the tokens the tests sign in with."""

    base: str
    admin_token: str
    user_token: str
    user_name: str

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    server = ServeProcess(tmp_path_factory.mktemp("console") / "data", "--offline", "--workers", "2")
    server.start()
    try:
        admin = server.first_token()
        server.wait_ready()
        status, created = http_json(
            "POST", server.base + "/api/admin/tokens", {"name": "alice", "credits": 5000}, admin
        )
        assert status == 200, created
        yield Console(server.base, admin, created["data"]["token"], "alice")
    finally:
        server.stop()


@dataclass
class Guard:
    """What a page asked of hosts other than ours, and the CSP violations it reported."""

    foreign: list[str]
    csp: list[str]
    dialogs: list[str]


@pytest.fixture
def guard(page: Page, console: Console) -> Iterator[Guard]:
    """Abort (and record) every request to a host that is not the console's, record CSP
    violations and dialogs; the test fails at teardown if any happened (the console must work
    offline, within its own policy, and never run script from a result)."""
    ours = urlsplit(console.base).netloc
    seen = Guard([], [], [])

    def route(route: Route, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob") or parts.netloc == ours:
            route.continue_()
        else:
            seen.foreign.append(request.url)
            route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            seen.csp.append(message.text)

    page.context.route("**/*", route)
    page.on("console", on_console)
    page.on("dialog", lambda dialog: (seen.dialogs.append(dialog.message), dialog.dismiss()))
    page.set_viewport_size(DESKTOP)
    yield seen
    assert seen.foreign == [], f"requests left our origin: {seen.foreign}"
    assert seen.csp == [], f"CSP violations: {seen.csp}"
    assert seen.dialogs == [], f"dialogs opened: {seen.dialogs}"


Shoot = Callable[[Page, str], None]


@pytest.fixture(scope="session")
def shoot() -> Shoot:
    """``shoot(page, name)``: full-page screenshots at desktop and phone size, then back to desktop."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> None:
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
        page.set_viewport_size(DESKTOP)

    return take
