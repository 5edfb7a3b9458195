"""The platforms' own domains: the only hosts the browser may ever reach.

This list is the SSRF boundary. The browser gets it as Chromium ``--host-resolver-rules``
(every other host, IP literals included, is sent to an address no connection can reach, which
also covers redirect hops that request routing never sees); a proxied session, whose hosts
resolve at the proxy, also gets it as a request filter on its context. In-page ``fetch()``
calls of the fast path check it on the URL asked and on the URL answered.
"""

from __future__ import annotations

from collections.abc import Iterable
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


#: Where every non-platform host is sent. Not ``~NOTFOUND``: a main-frame navigation that fails
#: with a DNS error (ERR_NAME_NOT_RESOLVED) makes Chromium run its DNS probe
#: (chrome/browser/net/net_error_tab_helper.cc OnMainFrameDnsError -> DnsProbeService,
#: dns_probe_service_factory.cc): google.com resolved against the system resolver and against
#: 8.8.8.8/8.8.4.4:53 through a resolver of its own, outside these rules. No switch or feature
#: turns it off in Chromium 156 (ProbesAllowed() reads only the AlternateErrorPagesEnabled
#: pref/policy, which ``launch()`` cannot set). The limited broadcast address fails every
#: connect() in the kernel instead (Linux: TCP -> ENETUNREACH, UDP without SO_BROADCAST ->
#: EACCES) before any packet exists, whatever listens on this host, and the resulting
#: ERR_ADDRESS_UNREACHABLE is not a DNS error, so no probe starts.
REFUSE_HOSTS_TO = "255.255.255.255"
NOT_FOUND = "~NOTFOUND"


def refusal_target(value: str) -> str:
    """Check a ``refuse_hosts_to`` value: the limited broadcast address, or ``~NOTFOUND`` (probes again).

    Anything else could be connected to: 0.0.0.0 and 127.x are this host, a unicast address is
    some host, a multicast address takes UDP (QUIC, WebTransport) out on the wire.
    """
    value = value.strip()
    if value not in (REFUSE_HOSTS_TO, NOT_FOUND):
        raise ValueError(f"refuse_hosts_to must be {REFUSE_HOSTS_TO!r} or {NOT_FOUND!r}, not {value!r}")
    return value


def resolver_rules(
    map_to: str | None = None, *, refuse_to: str = REFUSE_HOSTS_TO, proxies: Iterable[str] = ()
) -> str:
    """Chromium ``--host-resolver-rules`` value that confines the browser to platform hosts.

    Args:
        map_to: ``"127.0.0.1:8443"`` to send every platform host to the offline fixture
            site; None for the real sites (platform hosts resolve normally).
        refuse_to: where every other host goes (see ``REFUSE_HOSTS_TO``).
        proxies: the configured identities' proxy hosts. Chromium looks the proxy itself up
            through these rules too, so without an exception a proxied session could never
            connect; the platform allowlist is then the proxy's to enforce.
    """
    rules: list[str] = [f"EXCLUDE {host}" for host in dict.fromkeys(proxies)]
    for domain in ALL_DOMAINS:
        for pattern in (domain, "*." + domain):
            rules.append(f"MAP {pattern} {map_to}" if map_to else f"EXCLUDE {pattern}")
    rules.append(f"MAP * {refusal_target(refuse_to)}")
    return ", ".join(rules)
