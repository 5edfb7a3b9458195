"""The browser pool against a tiny local https server posing as www.tiktok.com.

Proves the SSRF boundary (redirect hops, subresources, IP literals), resource
blocking, and that the pool relaunches a browser that died.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.async_api import Error as PlaywrightError

from scraper.chromium_processes import chromium_memory_mib, own_chromium_processes
from scraper.config import Identity, load_browser_settings
from scraper.errors import Blocked, BrowserCrashed, InvalidUrl, LayoutChanged, ScrapeTimeout
from scraper.loader import LoadSpec, live_page, load
from scraper.pool import BrowserPool
from scraper.session import should_abort

pytestmark = pytest.mark.browser


class MiniSite:
    """Serves a few pages on one port for every host; records what each request asked for."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.cookies: list[dict[str, str]] = []
        self.port = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.host.split(":")[0], request.path))
        self.cookies.append(dict(request.cookies))
        if request.path == "/to-evil":
            raise web.HTTPFound("https://evil.example/steal")
        if request.path == "/to-ip":
            raise web.HTTPFound(f"https://127.0.0.1:{self.port}/internal")
        if request.path == "/page":
            html = (
                "<html><head><title>ok</title></head><body><img src='https://www.tiktok.com/pic.png'>"
                "<img src='https://evil.example/pixel.png'><script>"
                "fetch('https://evil.example/xhr').catch(() => {});"
                f"fetch('https://127.0.0.1:{self.port}/ip-xhr').catch(() => {{}});"
                "document.title = 'ready';</script></body></html>"
            )
            return web.Response(text=html, content_type="text/html")
        if request.path == "/tick":
            return web.json_response({"tick": len(self.seen), "from": request.query.get("from")})
        if request.path == "/ticker":  # a document whose script keeps calling home
            html = (
                "<html><body><script>setInterval(() => fetch('/tick?from=ticker'), 5);</script></body></html>"
            )
            return web.Response(text=html, content_type="text/html")
        if request.path == "/tick-once":  # a document that asks the same path once
            html = "<html><body><script>fetch('/tick?from=once');</script></body></html>"
            return web.Response(text=html, content_type="text/html")
        return web.Response(text="<html><body>other</body></html>", content_type="text/html")


@pytest.fixture(scope="module")
async def mini() -> AsyncIterator[tuple[MiniSite, str]]:
    ca = trustme.CA()
    cert = ca.issue_cert("www.tiktok.com", "evil.example", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    site = MiniSite()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", site.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await tcp.start()
    site.port = runner.addresses[0][1]
    leaf = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
    spki = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    yield site, base64.b64encode(hashlib.sha256(spki).digest()).decode()
    await runner.cleanup()


@pytest.fixture(scope="module")
async def pool(mini: tuple[MiniSite, str]) -> AsyncIterator[BrowserPool]:
    site, spki = mini
    settings = replace(
        load_browser_settings().with_fixture(f"127.0.0.1:{site.port}", spki), pool_size=1, data_timeout=60
    )
    async with BrowserPool(settings) as browser_pool:
        yield browser_pool


async def test_subresources_to_other_hosts_never_leave_the_browser(
    mini: tuple[MiniSite, str], pool: BrowserPool
) -> None:
    site, _ = mini
    site.seen.clear()
    async with pool.session() as session:
        capture = await load(
            session, "https://www.tiktok.com/page", LoadSpec(ready_js="() => document.title === 'ready'")
        )
    assert capture.title == "ready"
    assert ("www.tiktok.com", "/page") in site.seen
    assert all(host == "www.tiktok.com" for host, _ in site.seen), site.seen
    assert ("www.tiktok.com", "/pic.png") not in site.seen  # images are blocked resource types


@pytest.mark.parametrize("path", ["/to-evil", "/to-ip"])
async def test_redirect_outside_the_platform_is_refused(
    mini: tuple[MiniSite, str], pool: BrowserPool, path: str
) -> None:
    site, _ = mini
    site.seen.clear()
    with pytest.raises(InvalidUrl, match="outside the platform"):
        async with pool.session() as session:
            await load(session, "https://www.tiktok.com" + path, LoadSpec())
    assert [p for _, p in site.seen] == [path]


async def test_pool_relaunches_a_dead_browser(pool: BrowserPool) -> None:
    before = pool.relaunches
    assert pool._browser is not None
    await pool._browser.close()
    assert not pool.browser_alive
    async with pool.session() as session:
        capture = await load(
            session, "https://www.tiktok.com/other", LoadSpec(ready_js="() => !!document.body")
        )
    assert "other" in capture.html
    assert pool.browser_alive and pool.relaunches == before + 1


def test_should_abort_is_a_plain_predicate() -> None:
    blocked = frozenset({"image"})
    assert should_abort("https://evil.example/x", "document", blocked)
    assert should_abort("https://127.0.0.1/x", "xhr", blocked)
    assert should_abort("file:///etc/passwd", "document", blocked)
    assert should_abort("https://p16-sign.tiktokcdn.com/a.jpg", "image", blocked)
    assert not should_abort("https://www.douyin.com/video/1", "document", blocked)
    assert not should_abort("data:text/plain,hi", "image", frozenset())


async def test_a_page_that_settles_without_its_data_fails_fast_as_layout_changed(pool: BrowserPool) -> None:
    """With a 60 s data timeout, the settle check (not the timeout) must be what answers."""
    with pytest.raises(LayoutChanged) as caught:
        async with pool.session() as session:
            await load(session, "https://www.tiktok.com/other", LoadSpec(ready_js="() => !!window.__never__"))
    message = str(caught.value)
    assert message.startswith("layout changed:") and "settled without" in message
    assert "https://www.tiktok.com/other" in message and "title" in message


async def test_identity_cookies_are_imported_and_sent(mini: tuple[MiniSite, str], tmp_path: Path) -> None:
    site, spki = mini
    jar = tmp_path / "cookies.txt"
    jar.write_text(
        "# Netscape HTTP Cookie File\n"
        "#HttpOnly_.tiktok.com\tTRUE\t/\tTRUE\t4102444800\tsessionid\tlogged-in-identity\n"
        ".example.com\tTRUE\t/\tTRUE\t4102444800\tleak\tnever-loaded\n"
    )
    identity = Identity(
        name="logged-in", cookies_file=str(jar), locale="en-US", user_agent="ShortvidTest/1.0"
    )
    settings = replace(
        load_browser_settings().with_fixture(f"127.0.0.1:{site.port}", spki),
        pool_size=1,
        identities=(identity,),
    )
    site.cookies.clear()
    async with BrowserPool(settings) as own_pool, own_pool.session() as session:
        names = {c["name"] for c in await session.context.cookies()}
        await load(session, "https://www.tiktok.com/other", LoadSpec())
        census = own_pool.census()
    assert names == {"sessionid"}
    assert site.cookies[-1].get("sessionid") == "logged-in-identity"
    assert census["detail"][0]["identity"] == "logged-in"


async def test_rollover_after_page_budget_top_up_and_cooling(mini: tuple[MiniSite, str]) -> None:
    site, spki = mini
    settings = replace(
        load_browser_settings().with_fixture(f"127.0.0.1:{site.port}", spki),
        pool_size=2,
        max_pages_per_browser=3,
        cooldown_base=30.0,
    )
    async with BrowserPool(settings) as own:
        first_browser = own._browser
        for _ in range(3):
            async with own.session() as session:
                await load(session, "https://www.tiktok.com/other", LoadSpec())
        async with own.session() as session:  # past the page budget: a fresh browser takes over
            await load(session, "https://www.tiktok.com/other", LoadSpec())
            assert session.browser is own._browser is not first_browser
        await own.maintain()  # the remaining old-browser session is replaced; the old browser closes
        assert own.relaunches == 1 and first_browser is not None and not first_browser.is_connected()
        assert {s.browser for s in own._idle} == {own._browser}

        # A risk signal cools a session down; leases go to the other one meanwhile.
        with pytest.raises(Blocked):
            async with own.session() as session:
                blocked_id = session.id
                raise Blocked("captcha page")
        for _ in range(2):
            async with own.session() as session:
                assert session.id != blocked_id
        assert own.census()["sessions"]["cooling"] == 1

        # A crash retires the identity; maintain tops the pool back up to its size.
        with pytest.raises(BrowserCrashed):
            async with own.session() as session:
                raise BrowserCrashed("page crashed")
        own._idle.pop()  # as if a replacement could not be made at that moment
        census = await own.maintain()
        assert census["sessions"]["total"] == 2 and census["retired"].get("crashed") == 1


async def test_a_session_goes_straight_to_the_next_url_in_its_tab_and_blanks_it_only_when_parking(
    pool: BrowserPool,
) -> None:
    async with pool.session() as session:
        async with live_page(session, "https://www.tiktok.com/ticker", xhr_paths=["/tick"]) as live:
            first, old_stream = live.page, live.streams["/tick"]
            assert (await live.next_json("/tick"))["from"] == "ticker"  # the page's script is calling home
        assert first.url == "https://www.tiktok.com/ticker" and not first.is_closed()  # not blanked
        heard = old_stream.seen
        async with live_page(session, "https://www.tiktok.com/tick-once", xhr_paths=["/tick"]) as live:
            assert live.page is first
            # The ticker kept answering until the new document committed; none of that is ours.
            assert (await live.next_json("/tick"))["from"] == "once"
        assert old_stream.seen == heard  # the last job's listeners were removed from the shared tab
        async with live_page(session, "https://www.tiktok.com/ticker") as live:
            assert live.page is first
        await session.park()
        assert first.url == "about:blank" and not first.is_closed()  # parked: the ticker's script is gone
        async with live_page(session, "https://www.tiktok.com/other", mobile=True) as live:
            mobile = live.page
            assert mobile is not first  # a tab with a user-agent override is never shared
        assert mobile.is_closed()


async def test_an_idle_session_parks_its_tabs_by_itself(mini: tuple[MiniSite, str]) -> None:
    site, spki = mini
    settings = replace(
        load_browser_settings().with_fixture(f"127.0.0.1:{site.port}", spki), pool_size=1, tab_park_after=0.0
    )
    async with BrowserPool(settings) as own, own.session() as session:
        async with live_page(session, "https://www.tiktok.com/ticker") as live:
            tab = live.page
        parking = session._park_task
        assert parking is not None
        await parking  # scheduled when the tab went idle, after tab_park_after seconds
        assert tab.url == "about:blank" and not tab.is_closed()
        async with live_page(session, "https://www.tiktok.com/other") as live:
            assert live.page is tab  # a parked tab is reused


async def test_one_tab_per_platform_recycled_after_its_use_budget(mini: tuple[MiniSite, str]) -> None:
    site, spki = mini
    settings = replace(
        load_browser_settings().with_fixture(f"127.0.0.1:{site.port}", spki), pool_size=1, tab_max_uses=3
    )
    async with BrowserPool(settings) as own, own.session() as session:
        tabs = []
        for url in ["https://www.tiktok.com/other", "https://www.douyin.com/other"] * 3:
            async with live_page(session, url) as live:
                tabs.append(live.page)
        tiktok, douyin = tabs[0::2], tabs[1::2]
        assert len(set(tiktok)) == len(set(douyin)) == 1 and tiktok[0] is not douyin[0]  # no swapping
        assert tiktok[0].is_closed() and douyin[0].is_closed()  # third use: closed, not kept
        async with live_page(session, "https://www.tiktok.com/other") as live:
            assert live.page is not tiktok[0] and not live.page.is_closed()


async def test_a_tab_whose_job_timed_out_is_not_kept(pool: BrowserPool) -> None:
    async with pool.session() as session:
        async with live_page(session, "https://www.tiktok.com/other") as live:
            kept = live.page
        assert not kept.is_closed()
        with pytest.raises(ScrapeTimeout):
            async with live_page(session, "https://www.tiktok.com/other") as live:
                assert live.page is kept
                raise ScrapeTimeout("the page did not deliver its data in time")
        assert kept.is_closed()
        with pytest.raises(Blocked):  # the platform answered: the tab is fine and stays
            async with live_page(session, "https://www.tiktok.com/other") as live:
                kept = live.page
                raise Blocked("captcha page")
        assert not kept.is_closed()


async def test_a_proxied_session_checks_every_request_itself(mini: tuple[MiniSite, str]) -> None:
    """Behind a proxy, hosts resolve at the proxy, past our resolver rules: the route filter refuses
    a non-platform host before the request is sent (the proxy here is dead, so a platform URL fails
    on the proxy connection instead)."""
    site, spki = mini
    identity = Identity(name="proxied", proxy="http://127.0.0.1:9")
    settings = replace(
        load_browser_settings().with_fixture(f"127.0.0.1:{site.port}", spki),
        pool_size=1,
        identities=(identity,),
    )
    async with BrowserPool(settings) as own, own.session() as session:
        assert session.filters_requests
        page = await session.context.new_page()
        with pytest.raises(PlaywrightError, match="ERR_BLOCKED_BY_CLIENT"):
            await page.goto("https://evil.example/steal")
        assert session.aborted_requests == 1
        with pytest.raises(
            PlaywrightError, match=r"ERR_PROXY_CONNECTION_FAILED|ERR_TUNNEL_CONNECTION_FAILED"
        ):
            await page.goto("https://www.tiktok.com/other")
        assert session.aborted_requests == 1


async def test_without_tab_reuse_each_load_gets_a_new_tab(mini: tuple[MiniSite, str]) -> None:
    site, spki = mini
    settings = replace(
        load_browser_settings().with_fixture(f"127.0.0.1:{site.port}", spki), pool_size=1, reuse_tabs=False
    )
    async with BrowserPool(settings) as own, own.session() as session:
        async with live_page(session, "https://www.tiktok.com/other") as live:
            first = live.page
        assert first.is_closed()
        async with live_page(session, "https://www.tiktok.com/other") as live:
            assert live.page is not first


async def test_the_pools_chromium_processes_are_found_with_their_memory(pool: BrowserPool) -> None:
    async with pool.session() as session:
        await load(session, "https://www.tiktok.com/other", LoadSpec())
    processes = own_chromium_processes()
    assert len([p for p in processes if p.is_browser]) == 1  # one browser; the rest are its children
    assert any("--type=renderer" in p.command for p in processes)
    memory = chromium_memory_mib()
    assert 0 < memory["pss"] <= memory["rss"]
    stranger = subprocess.Popen(["sleep", "30"])  # a process with no Chromium below it
    try:
        assert own_chromium_processes(root=stranger.pid) == []
    finally:
        stranger.kill()
        stranger.wait()
