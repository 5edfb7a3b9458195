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

from scraper.hosts import resolver_rules


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

#: Where ``--host-resolver-rules`` sends every non-platform host (``[browser] refuse_hosts_to``).
#: Not ``~NOTFOUND``: a main-frame navigation that fails with a DNS error (ERR_NAME_NOT_RESOLVED)
#: makes Chromium run its DNS probe (chrome/browser/net/net_error_tab_helper.cc OnMainFrameDnsError ->
#: DnsProbeService, dns_probe_service_factory.cc): google.com resolved against the system resolver
#: and against 8.8.8.8/8.8.4.4:53 through a resolver of its own, outside the rules. No switch or
#: feature turns it off (ProbesAllowed() reads only the AlternateErrorPagesEnabled pref/policy,
#: which launch() cannot set). The limited broadcast address fails every connect() in the kernel
#: instead (Linux: TCP -> ENETUNREACH, UDP without SO_BROADCAST -> EACCES), before any packet
#: exists and whatever listens on this host, and ERR_ADDRESS_UNREACHABLE is not a DNS error.
REFUSE_HOSTS_TO = "255.255.255.255"
_NOT_FOUND = "~NOTFOUND"
_CATCH_ALL = f"MAP * {_NOT_FOUND}"


def refusal_target(value: str) -> str:
    """Check ``refuse_hosts_to``: the limited broadcast address, or ``~NOTFOUND`` (DNS probes again).

    Anything else could be connected to: 0.0.0.0 and 127.x are this host, a unicast address is
    some host, a multicast address takes UDP (QUIC, WebTransport) out on the wire.
    """
    value = value.strip()
    if value not in (REFUSE_HOSTS_TO, _NOT_FOUND):
        raise ValueError(f"refuse_hosts_to must be {REFUSE_HOSTS_TO!r} or {_NOT_FOUND!r}, not {value!r}")
    return value


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
    identities: tuple[Identity, ...] = (Identity(),)
    blocked_url_patterns: tuple[str, ...] = ()
    blocked_resource_types: frozenset[str] = field(
        default_factory=lambda: frozenset({"image", "media", "font"})
    )
    host_map: str | None = None
    trust_spki: str | None = None
    ca_file: str | None = None
    refuse_hosts_to: str = REFUSE_HOSTS_TO

    def host_resolver_rules(self) -> str:
        """The allowlist of ``scraper.hosts`` with its catch-all sent to ``refuse_hosts_to``."""
        rules = resolver_rules(self.host_map)
        if self.refuse_hosts_to == _NOT_FOUND:
            return rules
        head, found, tail = rules.rpartition(_CATCH_ALL)
        if not found or tail:
            raise RuntimeError(f"resolver rules no longer end with {_CATCH_ALL!r}: {rules[-80:]!r}")
        return f"{head}MAP * {refusal_target(self.refuse_hosts_to)}"

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
        "blocked_url_patterns": tuple(pool.get("blocked_url_patterns", ())),
        "identities": _identities(raw.get("identity", []), path.parent),
        "blocked_resource_types": frozenset(pool.get("blocked_resource_types", ("image", "media", "font"))),
        "refuse_hosts_to": refusal_target(str(browser.get("refuse_hosts_to", REFUSE_HOSTS_TO))),
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
        "blocked_resource_types": lambda v: frozenset(t for t in v.replace(",", " ").split() if t),
        "host_map": str,
        "trust_spki": str,
        "ca_file": str,
        "refuse_hosts_to": refusal_target,
    }
    for key, convert in converters.items():
        raw_value = env.get("SHORTVID_" + key.upper())
        if raw_value is not None and raw_value != "":
            values[key] = convert(raw_value)
    if values["pool_size"] < 1:
        raise ValueError("pool size must be at least 1")
    values["executable_path"] = find_executable(values["executable_path"])
    return BrowserSettings(**values)
