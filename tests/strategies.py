"""Hypothesis strategies for hostile input: URLs, share texts, JSON bodies and header values.

Shared by the URL property tests and the route fuzzers, so both try the same classes of input:
schemes, userinfo, brackets, IP forms, IDN and homoglyphs, percent-encoding, very long text;
wrong types, huge and negative numbers, floats, garbage dates and zones, unicode, NUL, nesting.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

PLATFORM_HOSTS = (
    "www.douyin.com",
    "douyin.com",
    "v.douyin.com",
    "www.iesdouyin.com",
    "m.douyin.com",
    "www.tiktok.com",
    "tiktok.com",
    "m.tiktok.com",
    "vm.tiktok.com",
    "vt.tiktok.com",
)
#: Hosts an attacker would like the browser to reach, in the spellings that fool naive checks.
HOSTILE_HOSTS = (
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::1",
    "::1]",
    "localhost",
    "169.254.169.254",
    "10.0.0.1",
    "metadata.google.internal",
    "douyin.com.evil.test",
    "evil.test#.douyin.com",
    "evil.test\\.douyin.com",
    "www.douyin.com.",
    "www.douyin.com]",
    "xn--dyin-xqa.com",
    "dоuyin.com",  # Cyrillic о
    "ｗｗｗ.tiktok.com",  # fullwidth
    "www.tiktok.com%2e",
    "www%2etiktok.com",
    "WWW.TIKTOK.COM",
)
SCHEMES = (
    "https://",
    "http://",
    "//",
    "",
    "HTTPS://",
    "ftp://",
    "javascript:",
    "file://",
    "data:",
    "https:/",
)
PATHS = (
    "/video/7071967230287744267",
    "/note/7071967230287744267",
    "/share/video/7525380501322911011/",
    "/user/MS4wLjABAAAA85mPkf3FPVNmf_XTn4xpYrqB7kwPf7N7haPEJrRW8CQ",
    "/@a3noticias/video/6806030056956251397",
    "/@a3noticias/photo/6806030056956251397",
    "/@a3noticias",
    "/t/ZTabc123/",
    "/iRNBho6u/",
    "/jingxuan?modal_id=7071967230287744267",
    "/v/6806030056956251397.html",
    "/embed/v2/6806030056956251397",
    "/",
    "",
)
SUFFIXES = (
    "",
    "?x=http://127.0.0.1:9/",
    "?next=https://169.254.169.254/latest",
    "#http://[::1]/",
    " http://127.0.0.1/",
    "/../../etc/passwd",
    "%00",
    "%2F%2E%2E",
    "\x00",
    "\u202e",
    " 复制此链接，打开抖音搜索，直接观看视频！",
)

_userinfo = st.sampled_from(("", "", "", "user@", "user:pw@", "www.douyin.com@", "@"))
_port = st.sampled_from(("", "", "", ":443", ":80", ":8080", ":0", ":99999", ":-1", ":abc"))
_host = st.one_of(st.sampled_from(PLATFORM_HOSTS), st.sampled_from(HOSTILE_HOSTS))
_junk = st.text(max_size=40)


@st.composite
def url_like(draw: st.DrawFn) -> str:
    """A URL assembled from platform and hostile parts, often valid, often almost valid."""
    url = (
        draw(st.sampled_from(SCHEMES))
        + draw(_userinfo)
        + draw(_host)
        + draw(_port)
        + draw(st.sampled_from(PATHS))
        + draw(st.sampled_from(SUFFIXES))
    )
    if draw(st.integers(0, 9)) == 0:
        url += "a" * draw(st.integers(0, 9000))  # very long
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(url)))
        url = url[:cut] + draw(_junk) + url[cut:]
    return url


def share_text() -> st.SearchStrategy[str]:
    """A URL inside a caption, as users paste it, or arbitrary text."""
    return st.one_of(
        st.builds(lambda a, u, b: f"{a} {u} {b}", _junk, url_like(), _junk),
        st.builds(lambda a, u: a + u, _junk, url_like()),
        st.text(max_size=300),
    )


def any_url() -> st.SearchStrategy[str]:
    return st.one_of(url_like(), share_text())


_numbers = st.one_of(
    st.integers(),
    st.sampled_from((0, -1, 1, 500, 501, 2**31 - 1, 2**31, 2**63, -(2**63), 3 * 10**9, 10**20, 10**400)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from((3e9, 1e20, 1e308, -0.0, 0.5, 20.0)),
)
DAYS = (
    "today",
    "yesterday",
    "TODAY",
    " today ",
    "0001-01-01",
    "0001-01-02",
    "1969-12-31",
    "1970-01-01",
    "9999-12-31",
    "2024-02-30",
    "2024-13-01",
    "20240101",
    "２０２４-01-01",
    "2024-01-01T00:00:00Z",
    "tomorrow",
    "",
)
ZONES = (
    "Etc/GMT-14",
    "Etc/GMT+12",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Asia/Shanghai",
    "UTC",
    "utc",
    "Mars/Olympus",
    "../../etc/passwd",
    "/etc/localtime",
    "UTC\x00",
    "",
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _numbers,
    st.text(max_size=50),
    st.sampled_from(DAYS),
    st.sampled_from(ZONES),
    st.just("\x00"),
)


def json_values() -> st.SearchStrategy[Any]:
    """Any JSON-able value, nested a few levels."""
    return st.recursive(
        _scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )


def deep_nesting() -> st.SearchStrategy[str]:
    """A body nested deeper than any parser's recursion limit."""
    return st.integers(10, 100_000).map(lambda n: '{"url":' + "[" * n + "]" * n + "}")


@st.composite
def submit_body(draw: st.DrawFn) -> Any:
    """A submit route's body: the right fields with hostile values, wrong fields, or not an object."""
    fields: dict[str, Any] = {}
    if draw(st.integers(0, 5)):
        fields["url"] = draw(st.one_of(any_url(), any_url(), json_values()))
    for name, values in (
        ("count", st.one_of(_numbers, json_values())),
        ("since", st.one_of(st.sampled_from(DAYS), json_values())),
        ("tz", st.one_of(st.sampled_from(ZONES), json_values())),
    ):
        if draw(st.booleans()):
            fields[name] = draw(values)
    if draw(st.integers(0, 9)) == 0:
        fields.update(draw(st.dictionaries(st.text(max_size=8), json_values(), max_size=3)))
    if draw(st.integers(0, 14)) == 0:
        return draw(json_values())
    return fields


@st.composite
def admin_body(draw: st.DrawFn) -> Any:
    """An admin route's body (token create / top-up) with hostile values."""
    fields: dict[str, Any] = {}
    for name, values in (
        ("name", st.one_of(st.text(max_size=120), json_values(), st.just("admin"), st.just("a\x00b"))),
        ("credits", st.one_of(_numbers, json_values())),
        ("amount", st.one_of(_numbers, json_values())),
        ("unlimited", json_values()),
        ("admin", json_values()),
    ):
        if draw(st.booleans()):
            fields[name] = draw(values)
    return fields if draw(st.integers(0, 9)) else draw(json_values())


AUTH_FORMS = (
    "",
    "Bearer",
    "Bearer ",
    "bearer x",
    "Basic dXNlcjpwdw==",
    "Bearer a b",
    "Bearer " + "x" * 5000,
    "Bearer sv_\t",
    "Bearer\tsv_x",
    "Token sv_x",
    "Bearer é",
)


def authorization_values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(AUTH_FORMS),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(
            "Bearer ".__add__
        ),
    )


def raw_header_bytes() -> st.SearchStrategy[bytes]:
    """Header values as raw bytes, undecodable ones included (``Bearer \\xff\\xfe``)."""
    return st.one_of(
        st.binary(max_size=60).map(lambda b: b"Bearer " + b.replace(b"\r", b"").replace(b"\n", b"")),
        st.sampled_from(
            (b"Bearer \xff\xfe", b"Bearer \xc3\x28", b"\xff\xfe", b"Bearer sv_\x80\x81", b"Bearer \x00")
        ),
    )
