"""The platforms' own domains: the only hosts the browser may ever reach.

This list is the SSRF boundary. The browser gets it twice: as Chromium
``--host-resolver-rules`` (every other host, IP literals included, fails to
resolve, which also covers redirect hops that request routing never sees) and
as a request filter on every context.
"""

from __future__ import annotations

from typing import Literal

Platform = Literal["douyin", "tiktok"]

#: Registrable domains per platform: pages, APIs, short links, CDNs, static assets.
PLATFORM_DOMAINS: dict[Platform, tuple[str, ...]] = {
    "douyin": (
        "douyin.com",
        "iesdouyin.com",
        "douyinvod.com",
        "douyinpic.com",
        "douyinstatic.com",
        "douyincdn.com",
        "amemv.com",
        "snssdk.com",
        "zjcdn.com",
        "bytescm.com",
        "bytedance.com",
        "byteimg.com",
        "ixigua.com",
    ),
    "tiktok": (
        "tiktok.com",
        "tiktokcdn.com",
        "tiktokcdn-us.com",
        "tiktokcdn-eu.com",
        "tiktokv.com",
        "tiktokw.us",
        "ttwstatic.com",
        "ibytedtos.com",
        "ibyteimg.com",
        "byteoversea.com",
    ),
}

ALL_DOMAINS: tuple[str, ...] = tuple(d for domains in PLATFORM_DOMAINS.values() for d in domains)


def registrable_match(host: str, domains: tuple[str, ...] = ALL_DOMAINS) -> str | None:
    """Return the domain of ``domains`` that ``host`` equals or is a subdomain of."""
    host = host.lower().rstrip(".")
    for domain in domains:
        if host == domain or host.endswith("." + domain):
            return domain
    return None


def host_allowed(host: str | None) -> bool:
    """True when ``host`` belongs to one of the platforms (never for IP literals or empty hosts)."""
    return bool(host) and registrable_match(host or "") is not None


def platform_of_host(host: str | None) -> Platform | None:
    """Which platform owns ``host``, or None."""
    if not host:
        return None
    for platform, domains in PLATFORM_DOMAINS.items():
        if registrable_match(host, domains):
            return platform
    return None


def resolver_rules(map_to: str | None = None) -> str:
    """Chromium ``--host-resolver-rules`` value that confines the browser to platform hosts.

    Args:
        map_to: ``"127.0.0.1:8443"`` to send every platform host to the offline fixture
            site; None for the real sites (platform hosts resolve normally).
    """
    rules: list[str] = []
    for domain in ALL_DOMAINS:
        for pattern in (domain, "*." + domain):
            rules.append(f"MAP {pattern} {map_to}" if map_to else f"EXCLUDE {pattern}")
    rules.append("MAP * ~NOTFOUND")
    return ", ".join(rules)
