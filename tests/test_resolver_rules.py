"""The SSRF boundary for real: the pool's Chromium never connects to loopback.

Checking that ``--host-resolver-rules`` is on the command line proves little: a rule in the
wrong order, a pattern too wide, or Chromium dialling IP literals and ``*.localhost`` without
asking the resolver would each open the hole. So the pool runs as ``shortvid serve --offline``
runs it (production launch arguments, pointed at the fixture site), and a plain TCP listener on
127.0.0.1 and ::1 counts every connection it gets while the browser is sent there: by every
spelling of a loopback address, directly and through a platform page's 302, script and meta
refresh; in a bare context of that browser (the resolver rules alone) and in a pool session
(the rules, plus a request filter only for proxied sessions). The rules must hold on their own:
Chromium (156) preconnects to a navigation's target before a request filter sees the request, so
a filter aborts the request but not the TCP connection. A control browser whose rules let loopback through
shows the listener does see a browser that is not confined.

Refused hosts are mapped to the limited broadcast address rather than ``~NOTFOUND``: a navigation
that fails with a DNS error makes Chromium probe Google's DNS, past the rules (see
``REFUSE_HOSTS_TO`` in scraper/hosts.py); the last test here checks from its net log that none ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request

from fixtures.pages.redirect_probe import KINDS, redirect_pages, redirect_url
from fixtures.site import FixtureSite, build_app
from scraper.config import Identity, load_browser_settings
from scraper.hosts import ALL_DOMAINS, REFUSE_HOSTS_TO, host_allowed, resolver_rules
from scraper.pool import BrowserPool
from tests.chromium import bare_chromium

#: Every spelling of this host's loopback (only loopback: a slip must not send traffic elsewhere).
LOOPBACK_FORMS = (
    *("127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1"),  # dotted, short, decimal, hex, octal
    *("[::1]", "[::ffff:127.0.0.1]"),  # IPv6 and IPv4-mapped IPv6
    *("localhost", "foo.localhost"),  # names Chromium answers itself, without DNS
)
PLATFORM_ORIGINS = ("https://www.douyin.com", "https://www.tiktok.com")
#: A hop that is refused by the resolver rules (mapped to an address the kernel will not connect to),
#: or by the sessions' request filter before it.
REFUSED = ("net::ERR_ADDRESS_UNREACHABLE", "net::ERR_BLOCKED_BY_CLIENT")
#: Bounds one navigation, redirect hop included; a refused hop fails in milliseconds.
SETTLE_MS = 5000


class Listener:
    """Plain TCP servers on one free port of 127.0.0.1 (and ::1 when the host has it) that record
    every connection accepted (as the address it reached), except their own markers."""

    def __init__(self) -> None:
        self.connections: list[tuple[str, int]] = []
        self.port = 0
        self.ipv6 = False
        self._servers: list[asyncio.Server] = []
        self._markers: dict[tuple[str, int], asyncio.Future[None]] = {}

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        marker = self._markers.pop(writer.get_extra_info("peername")[:2], None)
        if marker is not None:
            marker.set_result(None)
        else:
            self.connections.append(writer.get_extra_info("sockname")[:2])
        writer.close()

    async def settle(self) -> None:
        """Return once every connection already made to the listener has been recorded.

        Instead of a grace period: a marker connection of ours joins the end of each accept
        queue, which is served in order, so once it is in, anything connected before it is too.
        """
        loop = asyncio.get_running_loop()
        for server in self._servers:
            address = server.sockets[0].getsockname()[0]
            with socket.socket(server.sockets[0].family) as sock:
                sock.setblocking(False)
                sock.bind((address, 0))
                arrived = self._markers[sock.getsockname()[:2]] = loop.create_future()
                await loop.sock_connect(sock, (address, self.port))
                await asyncio.wait_for(arrived, timeout=SETTLE_MS / 1000)

    async def start(self) -> None:
        for _ in range(20):  # until a port is free on both addresses
            v4 = await asyncio.start_server(self._accept, "127.0.0.1", 0)
            self.port = v4.sockets[0].getsockname()[1]
            try:
                self._servers = [v4, await asyncio.start_server(self._accept, "::1", self.port)]
                self.ipv6 = True
                return
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:  # no IPv6 loopback here: 127.0.0.1 alone
                    self._servers = [v4]
                    return
                v4.close()
                await v4.wait_closed()
        raise RuntimeError("no port free on both 127.0.0.1 and ::1")

    async def close(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()

    def targets(self) -> list[str]:
        return [f"{scheme}://{form}:{self.port}/" for scheme in ("http", "https") for form in LOOPBACK_FORMS]


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[FixtureSite]:
    """The conftest site plus the test-only redirect probes."""
    async with FixtureSite(test_pages=True) as running:
        yield running


@pytest.fixture(scope="module")
async def listener() -> AsyncIterator[Listener]:
    running = Listener()
    await running.start()
    yield running
    await running.close()


@pytest.fixture(scope="module")
async def pool(site: FixtureSite) -> AsyncIterator[BrowserPool]:
    """The pool exactly as ``shortvid serve --offline`` makes it (one session is enough)."""
    async with BrowserPool(replace(load_browser_settings().pointed_at(site), pool_size=1)) as running:
        yield running


@asynccontextmanager
async def unfiltered_tab(pool: BrowserPool) -> AsyncIterator[Page]:
    """A tab in the pool's Chromium without the sessions' request filter: the resolver rules alone."""
    assert pool._browser is not None
    context = await pool._browser.new_context()
    try:
        yield await context.new_page()
    finally:
        await context.close()


@asynccontextmanager
async def session_tab(pool: BrowserPool) -> AsyncIterator[Page]:
    """A tab of a leased pool session, as the scraper's loader gets it."""
    async with pool.session() as session, session.page() as page:
        yield page


def _off_platform(request: Request) -> bool:
    return request.is_navigation_request() and not host_allowed(urlsplit(request.url).hostname)


async def first_hop_off_platform(page: Page, url: str) -> str:
    """Open ``url``; once the browser's first navigation off the platforms has failed, its error."""
    async with page.expect_event("requestfailed", predicate=_off_platform, timeout=SETTLE_MS) as failed:
        with contextlib.suppress(PlaywrightError):  # the hop's failure is what we wait for
            await page.goto(url, wait_until="commit", timeout=SETTLE_MS)
    return (await failed.value).failure or ""


async def connections_made(page: Page, listener: Listener, url: str) -> tuple[int, str]:
    """How many connections the listener got while ``page`` went to ``url``, and the hop's error."""
    before = len(listener.connections)
    failure = await first_hop_off_platform(page, url)
    await listener.settle()
    return len(listener.connections) - before, failure


TABS: dict[str, Callable[[BrowserPool], AbstractAsyncContextManager[Page]]] = {
    "unfiltered": unfiltered_tab,
    "session": session_tab,
}


@pytest.mark.browser
@pytest.mark.parametrize("tab", TABS)
@pytest.mark.parametrize("kind", ["direct", *KINDS])
async def test_nothing_reaches_loopback(pool: BrowserPool, listener: Listener, tab: str, kind: str) -> None:
    """Every loopback spelling, over http and https, directly or as a platform page's redirect hop.

    The probe page's host alternates between Douyin and TikTok (each form gets both across the two
    schemes), which halves the slowest navigations: each lands on an error page, and the next
    platform page needs a fresh renderer.
    """
    outcomes = {}
    async with TABS[tab](pool) as page:
        for n, target in enumerate(listener.targets()):
            origin = PLATFORM_ORIGINS[n % len(PLATFORM_ORIGINS)]
            url = target if kind == "direct" else redirect_url(origin, kind, target)
            outcomes[target] = await connections_made(page, listener, url)
    assert {t: n for t, (n, _) in outcomes.items() if n} == {}
    allowed = REFUSED if tab == "session" else REFUSED[:1]  # unfiltered: only the resolver can refuse
    assert {t: f for t, (_, f) in outcomes.items() if f not in allowed} == {}
    assert listener.connections == []


@pytest.mark.browser
async def test_the_listener_sees_a_browser_the_rules_let_through(
    site: FixtureSite, listener: Listener
) -> None:
    """The control: the production rules with the two loopback addresses let through ahead of them.

    Shows that the listener counts what a leaking browser does and that each redirect probe
    redirects; every other host still resolves nowhere, so the control sends nothing off the host.
    """
    production = load_browser_settings().pointed_at(site).host_resolver_rules()
    rules = "EXCLUDE 127.0.0.1, EXCLUDE ::1, " + production
    args = [f"--host-resolver-rules={rules}", f"--ignore-certificate-errors-spki-list={site.spki_sha256}"]
    loopback = [f"http://127.0.0.1:{listener.port}/", *([f"http://[::1]:{listener.port}/"] * listener.ipv6)]
    urls = [*loopback, *(redirect_url(o, kind, loopback[0]) for kind in KINDS for o in PLATFORM_ORIGINS)]
    async with bare_chromium(args) as browser:
        page = await (await browser.new_context()).new_page()
        made = {url: (await connections_made(page, listener, url))[0] for url in urls}
    listener.connections.clear()  # let through on purpose
    assert {url: n for url, n in made.items() if n == 0} == {}
    assert all(site.stats[f"test.redirect.{kind}"] >= 2 for kind in KINDS)


def test_the_redirect_probes_exist_only_on_a_test_site(site: FixtureSite) -> None:
    """They are open redirects: ``serve --offline`` and ``fixtures serve`` must never have them."""
    assert redirect_pages not in build_app(site.state).middlewares
    assert redirect_pages in build_app(site.state, test_pages=True).middlewares


# ---- the rules string itself ----------------------------------------------------------------------


def _first_rule(host: str, rules: list[list[str]]) -> list[str]:
    """The rule Chromium applies to ``host``: the first whose pattern matches it."""
    return next(rule for rule in rules if fnmatchcase(host.lower(), rule[1]))


@pytest.mark.parametrize("host_map", [None, "127.0.0.1:8443"])
def test_the_pool_confines_every_host_but_the_platforms(host_map: str | None) -> None:
    """The pool's flag maps (offline) or keeps (online) each platform domain and its subdomains,
    and sends everything else, look-alikes included, to the limited broadcast address."""
    settings = load_browser_settings(env={})
    if host_map:
        settings = settings.with_fixture(host_map, "spki")
    flags = [a for a in settings.launch_args() if a.startswith("--host-resolver-rules=")]
    assert len(flags) == 1  # a second one in playwright.config would override ours or be overridden
    rules = [rule.split(" ") for rule in flags[0].removeprefix("--host-resolver-rules=").split(", ")]
    verb, target = ("MAP", [host_map]) if host_map else ("EXCLUDE", [])
    platform_rules = [[verb, p, *target] for d in ALL_DOMAINS for p in (d, "*." + d)]
    catch_all = ["MAP", "*", REFUSE_HOSTS_TO]
    assert rules == [*platform_rules, catch_all]  # the first match wins: catch-all last
    for host in ("www.douyin.com", "v.douyin.com", "www.iesdouyin.com", "vm.tiktok.com", "tiktok.com"):
        assert _first_rule(host, rules)[0] == verb, host
    for host in ("evil.example", "evildouyin.com", "douyin.com.evil.example", "localhost", "127.0.0.1"):
        assert _first_rule(host, rules) == catch_all, host


def test_refused_hosts_fail_without_a_dns_error() -> None:
    """Not ``~NOTFOUND`` (a DNS error starts Chromium's DNS probe to 8.8.8.8): the limited broadcast
    address, which Linux refuses to connect() to before a packet exists."""
    assert REFUSE_HOSTS_TO == "255.255.255.255"
    online = load_browser_settings(env={})
    for settings in (online, online.with_fixture("127.0.0.1:8443", "spki")):
        (flag,) = [a for a in settings.launch_args() if a.startswith("--host-resolver-rules=")]
        assert flag.endswith(", MAP * 255.255.255.255")
        assert "~NOTFOUND" not in flag
    assert online.host_resolver_rules() == resolver_rules(None)  # the default of scraper.hosts
    # ~NOTFOUND stays possible (and brings the probes back)
    not_found = load_browser_settings(env={"SHORTVID_REFUSE_HOSTS_TO": "~NOTFOUND"})
    assert not_found.host_resolver_rules().endswith(", MAP * ~NOTFOUND")


#: This host (0.0.0.0, ::, 127/8), some host (unicast), the wire for UDP (multicast), a name to look up.
CONNECTABLE = ["0.0.0.0", "[::]", "127.0.0.1", "127.0.0.1:9", "::1", "10.1.2.3", "224.0.0.1", "a.example", ""]


@pytest.mark.parametrize("value", CONNECTABLE)
def test_refuse_hosts_to_takes_nothing_that_could_be_connected_to(value: str, tmp_path: Path) -> None:
    """Only the limited broadcast address (or ~NOTFOUND), from the config file and the environment."""
    with pytest.raises(ValueError, match="refuse_hosts_to"):
        load_browser_settings(env={"SHORTVID_REFUSE_HOSTS_TO": value or " "})
    config = tmp_path / "playwright.config"
    config.write_text(f'[browser]\nrefuse_hosts_to = "{value}"\n')
    with pytest.raises(ValueError, match="refuse_hosts_to"):
        load_browser_settings(config, env={})


# ---- no DNS probe -------------------------------------------------------------------------------


def net_log_dns_activity(path: Path) -> list[tuple[str, str]]:
    """DNS lookups in a Chromium net log: DNS transactions, and resolutions of a name (not an IP).

    Offline every host is mapped to an IP literal (platforms to the fixture site, the rest to the
    refusal address), so any of these is a resolver the rules do not cover: the DNS probe's
    (google.com against the system's nameservers and 8.8.8.8) or something new of its kind.
    """
    log: dict[str, Any] = json.loads(path.read_text())
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    found = []
    for event in log["events"]:
        kind = names.get(event["type"], "")
        host = str(event.get("params", {}).get("host", ""))
        if kind.startswith("DNS_TRANSACTION"):
            found.append((kind, host))
        elif kind == "HOST_RESOLVER_MANAGER_REQUEST" and host:
            name = urlsplit(host if "//" in host else "//" + host).hostname or ""
            if not name.replace(".", "").isdigit() and ":" not in name:
                found.append((kind, host))
    return found


@pytest.mark.browser
async def test_a_refused_navigation_starts_no_dns_probe(site: FixtureSite, tmp_path: Path) -> None:
    """Refused main-frame navigations (direct, by a platform page's 302, in a bare context and in a
    session) fail with a non-DNS error, and the browser's net log shows no DNS lookup at all."""
    settings = load_browser_settings().pointed_at(site)
    if not settings.host_resolver_rules().endswith(f"MAP * {REFUSE_HOSTS_TO}"):
        pytest.fail("refused hosts fail as DNS errors: this test would itself send DNS probes to 8.8.8.8")
    net_log = tmp_path / "netlog.json"
    logged = replace(settings, pool_size=1, args=(*settings.args, f"--log-net-log={net_log}"))
    refused = ["http://example.invalid/", "http://10.1.2.3/", "https://evil.example/x"]
    hop = redirect_url(PLATFORM_ORIGINS[0], "302", refused[0])
    async with BrowserPool(logged) as pool:
        async with unfiltered_tab(pool) as page:
            bare = {url: await first_hop_off_platform(page, url) for url in [*refused, hop]}
        async with session_tab(pool) as page:
            session = {url: await first_hop_off_platform(page, url) for url in [refused[0], hop]}
        async with unfiltered_tab(pool) as page:  # a probe starts as an error page commits: long since
            await page.goto("about:blank")
    assert set(bare.values()) == {"net::ERR_ADDRESS_UNREACHABLE"}, bare
    assert set(session.values()) <= set(REFUSED), session
    assert net_log_dns_activity(net_log) == []


def test_proxy_hosts_are_excepted_from_the_refusal() -> None:
    """Chromium resolves a context's proxy through the same rules: unexcepted, no proxy could be
    reached (ERR_PROXY_CONNECTION_FAILED). Each identity's proxy host is excepted, nothing else."""
    identities = (
        Identity(name="a", proxy="http://proxy.example:3128"),
        Identity(name="b", proxy="socks5://10.9.8.7:1080"),
        Identity(name="c", proxy="proxy.example:3128"),
        Identity(name="d"),
    )
    settings = replace(load_browser_settings(env={}), identities=identities)
    assert settings.proxy_hosts() == ["proxy.example", "10.9.8.7", "proxy.example"]
    rules = settings.host_resolver_rules().split(", ")
    assert rules[:2] == ["EXCLUDE proxy.example", "EXCLUDE 10.9.8.7"]
    assert rules[-1] == f"MAP * {REFUSE_HOSTS_TO}"
    assert rules[2:-1] == resolver_rules(None).split(", ")[:-1]  # the platform allowlist, unchanged
