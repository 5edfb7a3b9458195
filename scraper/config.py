"""Browser settings from ``playwright.config`` (TOML), overridden by ``SHORTVID_*`` variables.

The pool and the tests read the same file, so a test runs the browser exactly
as production does.
"""

from __future__ import annotations

import os
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from scraper.hosts import REFUSE_HOSTS_TO, refusal_target, resolver_rules
from scraper.pacing import DEFAULT_LIMITS, Limit, Pacer, parse_limits


class ReplicaSite(Protocol):
    """What the pool needs to know of an offline replica site (``fixtures.site.FixtureSite``)."""

    @property
    def address(self) -> str: ...

    @property
    def spki_sha256(self) -> str: ...

    @property
    def ca_pem_path(self) -> Path: ...


REPO_CONFIG = Path(__file__).resolve().parents[1] / "playwright.config"
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a session is: its network exit, browser fingerprint and (optionally) a logged-in cookie jar."""

    name: str = "default"
    proxy: str | None = None
    proxy_username: str | None = None
    proxy_password: str | None = None
    user_agent: str | None = None
    locale: str | None = None
    timezone_id: str | None = None
    viewport_width: int | None = None
    viewport_height: int | None = None
    cookies_file: str | None = None


@dataclass(frozen=True, slots=True)
class BrowserSettings:
    """What the pool needs to launch Chromium and make sessions."""

    executable_path: str | None = None
    headless: bool = True
    args: tuple[str, ...] = ()
    locale: str = "zh-CN"
    timezone_id: str = "Asia/Shanghai"
    viewport_width: int = 1366
    viewport_height: int = 768
    user_agent: str = ""
    mobile_user_agent: str = ""
    pool_size: int = 2
    navigation_timeout: float = 20.0
    data_timeout: float = 15.0
    lease_timeout: float = 60.0
    session_max_uses: int = 200
    session_max_age: float = 1800.0
    session_max_score: float = 2.0
    cooldown_base: float = 5.0
    cooldown_max: float = 300.0
    max_pages_per_browser: int = 2000
    risk_retries: int = 3
    reuse_tabs: bool = True
    #: A reused tab is closed and reopened after this many page loads (a kept renderer grows).
    tab_max_uses: int = 50
    #: Seconds a session's tabs may sit idle on their last document before they are blanked (parked).
    tab_park_after: float = 2.0
    identities: tuple[Identity, ...] = (Identity(),)
    blocked_url_patterns: tuple[str, ...] = ()
    blocked_resource_types: frozenset[str] = field(
        default_factory=lambda: frozenset({"image", "media", "font"})
    )
    host_map: str | None = None
    trust_spki: str | None = None
    ca_file: str | None = None
    refuse_hosts_to: str = REFUSE_HOSTS_TO
    #: In-page fetch() routes on a resident page before the navigation routes (``[fast_path]``).
    fast_path: bool = True
    #: A resident page is reopened after this many seconds (before its challenge pass ages) or fetches.
    resident_max_age: float = 900.0
    resident_max_fetches: int = 500
    #: A token bucket per session and endpoint family (``[pacing]``, ``scraper.pacing``); None: see ``paces``.
    pacing: bool | None = None
    pacing_limits: tuple[tuple[str, Limit], ...] = DEFAULT_LIMITS

    @property
    def paces(self) -> bool:
        """Whether sessions pace their requests: as set, else on for the platforms and off against the
        offline replica (``host_map``), which limits no rate unless its faults say so."""
        return self.pacing if self.pacing is not None else self.host_map is None

    def make_pacer(self) -> Pacer:
        """A session's own buckets, one per family of ``pacing_limits``."""
        return Pacer(self.pacing_limits, enabled=self.paces)

    def host_resolver_rules(self) -> str:
        """The platform allowlist of ``scraper.hosts``, every other host sent to ``refuse_hosts_to``."""
        return resolver_rules(self.host_map, refuse_to=self.refuse_hosts_to, proxies=self.proxy_hosts())

    def proxy_hosts(self) -> list[str]:
        """The host of every identity's proxy (``http://user@proxy.example:3128`` -> ``proxy.example``)."""
        hosts = (
            urlsplit(i.proxy if "://" in i.proxy else f"http://{i.proxy}").hostname
            for i in self.identities
            if i.proxy
        )
        return [host for host in hosts if host]

    def launch_args(self) -> list[str]:
        """Chromium flags: the configured ones plus the host allowlist (and fixture mapping)."""
        extra = [f"--host-resolver-rules={self.host_resolver_rules()}"]
        if self.trust_spki:
            extra.append(f"--ignore-certificate-errors-spki-list={self.trust_spki}")
        return [*self.args, *extra]

    def with_fixture(self, host_map: str, trust_spki: str, ca_file: str | None = None) -> BrowserSettings:
        """Point every platform host at the offline fixture site (``ca_file`` for non-browser clients)."""
        return replace(self, host_map=host_map, trust_spki=trust_spki, ca_file=ca_file)

    def pointed_at(self, site: ReplicaSite) -> BrowserSettings:
        """Point browser and HTTP client at a running fixture site."""
        return self.with_fixture(site.address, site.spki_sha256, str(site.ca_pem_path))


def _bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _enabled(value: object, where: str) -> bool | None:
    """An on/off switch of the config file (absent: None, the default)."""
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"{where} must be true or false, not {value!r}")


def find_executable(configured: str | None) -> str | None:
    """The configured browser, else Playwright's own (None lets Playwright find it), else Debian's."""
    if configured:
        return configured
    cache = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH", Path.home() / ".cache" / "ms-playwright"))
    if any(cache.glob("chromium-*/chrome-linux*/chrome")):
        return None
    return str(DEBIAN_CHROMIUM) if DEBIAN_CHROMIUM.exists() else None


def _identities(tables: list[dict[str, Any]], base: Path) -> tuple[Identity, ...]:
    """``[[identity]]`` tables of the config; relative cookie files are relative to the config file."""
    known = set(Identity.__dataclass_fields__)
    result = []
    for n, table in enumerate(tables, start=1):
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"[[identity]] #{n}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        values = dict(table)
        values.setdefault("name", f"identity-{n}")
        if values.get("cookies_file") and not Path(values["cookies_file"]).is_absolute():
            values["cookies_file"] = str(base / values["cookies_file"])
        result.append(Identity(**values))
    return tuple(result) or (Identity(),)


def load_browser_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> BrowserSettings:
    """Read the TOML file (default: the repository's ``playwright.config``), then the environment."""
    env = os.environ if env is None else env
    path = Path(env.get("SHORTVID_PLAYWRIGHT_CONFIG", str(path or REPO_CONFIG)))
    raw: dict[str, Any] = tomllib.loads(path.read_text()) if path.exists() else {}
    browser, context, pool = raw.get("browser", {}), raw.get("context", {}), raw.get("pool", {})
    fast = raw.get("fast_path", {})
    pacing = dict(raw.get("pacing", {}))
    values: dict[str, Any] = {
        "executable_path": browser.get("executable_path") or None,
        "headless": bool(browser.get("headless", True)),
        "args": tuple(browser.get("args", ())),
        "locale": context.get("locale", "zh-CN"),
        "timezone_id": context.get("timezone_id", "Asia/Shanghai"),
        "viewport_width": int(context.get("viewport_width", 1366)),
        "viewport_height": int(context.get("viewport_height", 768)),
        "user_agent": context.get("user_agent", ""),
        "mobile_user_agent": context.get("mobile_user_agent", ""),
        "pool_size": int(pool.get("size", 2)),
        "navigation_timeout": float(pool.get("navigation_timeout", 20)),
        "data_timeout": float(pool.get("data_timeout", 15)),
        "lease_timeout": float(pool.get("lease_timeout", 60)),
        "session_max_uses": int(pool.get("session_max_uses", 200)),
        "session_max_age": float(pool.get("session_max_age", 1800)),
        "session_max_score": float(pool.get("session_max_score", 2)),
        "cooldown_base": float(pool.get("cooldown_base", 5)),
        "cooldown_max": float(pool.get("cooldown_max", 300)),
        "max_pages_per_browser": int(pool.get("max_pages_per_browser", 2000)),
        "risk_retries": int(pool.get("risk_retries", 3)),
        "reuse_tabs": bool(pool.get("reuse_tabs", True)),
        "tab_max_uses": int(pool.get("tab_max_uses", 50)),
        "tab_park_after": float(pool.get("tab_park_after", 2)),
        "blocked_url_patterns": tuple(pool.get("blocked_url_patterns", ())),
        "identities": _identities(raw.get("identity", []), path.parent),
        "blocked_resource_types": frozenset(pool.get("blocked_resource_types", ("image", "media", "font"))),
        "refuse_hosts_to": refusal_target(str(browser.get("refuse_hosts_to", REFUSE_HOSTS_TO))),
        "fast_path": bool(fast.get("enabled", True)),
        "resident_max_age": float(fast.get("resident_max_age", 900)),
        "resident_max_fetches": int(fast.get("resident_max_fetches", 500)),
        "pacing": _enabled(pacing.pop("enabled", None), "[pacing] enabled"),
        "pacing_limits": parse_limits(pacing),
    }
    converters: dict[str, Any] = {
        "executable_path": str,
        "headless": _bool,
        "args": lambda v: tuple(shlex.split(v)),
        "locale": str,
        "timezone_id": str,
        "viewport_width": int,
        "viewport_height": int,
        "user_agent": str,
        "mobile_user_agent": str,
        "pool_size": int,
        "navigation_timeout": float,
        "data_timeout": float,
        "lease_timeout": float,
        "session_max_uses": int,
        "session_max_age": float,
        "session_max_score": float,
        "cooldown_base": float,
        "cooldown_max": float,
        "max_pages_per_browser": int,
        "risk_retries": int,
        "reuse_tabs": _bool,
        "tab_max_uses": int,
        "tab_park_after": float,
        "blocked_resource_types": lambda v: frozenset(t for t in v.replace(",", " ").split() if t),
        "host_map": str,
        "trust_spki": str,
        "ca_file": str,
        "refuse_hosts_to": refusal_target,
        "fast_path": _bool,
        "resident_max_age": float,
        "resident_max_fetches": int,
        "pacing": _bool,
    }
    for key, convert in converters.items():
        raw_value = env.get("SHORTVID_" + key.upper())
        if raw_value is not None and raw_value != "":
            values[key] = convert(raw_value)
    if values["pool_size"] < 1:
        raise ValueError("pool size must be at least 1")
    values["executable_path"] = find_executable(values["executable_path"])
    return BrowserSettings(**values)
