"""The fixture site's failure modes look like the real blocks (platforms.md E) and obey their switches.

Each block kind is served on the responses it belongs to (page kinds on page loads, api kinds on
the detail/post/item_list XHRs) with the real markers, status codes and headers; ``block(kind,
next=N)`` is used up exactly; seeded rates repeat; the session rule blocks one cookie jar for good
while a fresh one is served; slow and cut-off responses; and the real Chromium passes the TikTok
WAF proof of work on its own.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from yarl import URL

from fixtures.dataset import Item
from fixtures.faults import ENV_VAR, KINDS, Faults
from fixtures.signing import a_bogus, ac_signature, make_ac_nonce, make_ttwid, waf_answer, x_bogus
from fixtures.site import FixtureSite
from scraper.http import platform_http_session
from tests import test_fixture_site

DESKTOP_UA = test_fixture_site.DESKTOP_UA
MOBILE_UA = test_fixture_site.MOBILE_UA
#: The real Chromium, launched as playwright.config says (tests/chromium.py).
chromium = test_fixture_site.chromium
MS_TOKEN = "fixtureMsToken_" + "b" * 111 + "=="
DETAIL = "https://www.douyin.com/aweme/v1/web/aweme/detail/"
POST = "https://www.douyin.com/aweme/v1/web/aweme/post/"
PROFILE = "https://www.douyin.com/aweme/v1/web/user/profile/other/"
ITEM_LIST = "https://www.tiktok.com/api/post/item_list/"
HYDRATION = '<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__"'
Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[FixtureSite]:
    async with FixtureSite() as running:
        yield running


@pytest.fixture(autouse=True)
def no_faults(site: FixtureSite) -> Iterator[None]:
    site.faults.clear()
    yield
    site.faults.clear()


def pick(site: FixtureSite, platform: str, kind: str = "video") -> Item:
    return next(
        i
        for i in site.dataset.items(platform)
        if i.kind == kind and i.state == "public" and i.author.state == "public"
    )


async def fetch(
    site: FixtureSite, url: str, cookie: str = "", *, ua: str = DESKTOP_UA, method: str = "GET"
) -> Answer:
    """One request from a fresh client carrying exactly ``cookie``."""
    headers = {"User-Agent": ua, **({"Cookie": cookie} if cookie else {})}
    async with (
        platform_http_session(map_to=site.address, ca_file=site.ca_pem_path, headers=headers) as http,
        http.request(method, URL(url, encoded=True), allow_redirects=False) as response,
    ):
        return response.status, dict(response.headers), await response.read()


def acrawler_pass(site: FixtureSite) -> str:
    """The cookie pair the acrawler challenge's JS computes for this UA."""
    nonce = make_ac_nonce()
    return f"__ac_nonce={nonce}; __ac_signature={ac_signature(site.secrets.ac_key, nonce, DESKTOP_UA)}"


def visitor(site: FixtureSite) -> str:
    """A fresh session's cookies once its page passed the challenge: a server-issued ``ttwid``,
    the ``msToken`` the queries echo and the acrawler pair (Douyin's API wants all three)."""
    return f"ttwid={make_ttwid(site.secrets.server_key)}; msToken={MS_TOKEN}; {acrawler_pass(site)}"


def douyin_page_cookies(site: FixtureSite, session: str = "") -> str:
    """Cookies that pass the acrawler challenge (what its JS computes), plus a session's."""
    passed = acrawler_pass(site)
    return f"{passed}; {session}" if session else passed


def signed(site: FixtureSite, base: str, params: dict[str, str]) -> str:
    """The XHR URL the page's SDK would send (X-Bogus on TikTok, a_bogus on Douyin)."""
    query = urlencode({**params, "msToken": MS_TOKEN})
    if base == ITEM_LIST:
        return f"{base}?{query}&X-Bogus={quote(x_bogus(site.secrets.xb_key, query, DESKTOP_UA), safe='')}"
    return f"{base}?{query}&a_bogus={quote(a_bogus(site.secrets.ab_key, query, DESKTOP_UA), safe='')}"


def detail_url(site: FixtureSite, item: Item) -> str:
    return signed(site, DETAIL, {"device_platform": "webapp", "aid": "6383", "aweme_id": item.id})


def post_url(site: FixtureSite) -> str:
    account = site.dataset.account("douyin", "medium")
    params = {"device_platform": "webapp", "aid": "6383", "sec_user_id": account.sec_uid, "count": "18"}
    return signed(site, POST, {**params, "max_cursor": "0"})


def item_list_url(site: FixtureSite) -> str:
    account = site.dataset.account("tiktok", "medium")
    params = {"aid": "1988", "count": "35", "cursor": "0", "secUid": account.sec_uid}
    return signed(site, ITEM_LIST, params)


def challenge_of(html: str) -> dict[str, Any]:
    """The WAF page's challenge: the JSON in ``#cs``'s class (base64 without padding)."""
    cs = re.search(r'<p id="cs" class="([^"]+)"', html)
    assert cs, "no #cs"
    return json.loads(base64.b64decode(cs.group(1) + "=" * (-len(cs.group(1)) % 4)))


def waf_cookie(challenge: dict[str, Any], answer: int) -> str:
    """What the WAF page's script stores: the challenge plus ``d`` = base64 of the answer."""
    solved = {**challenge, "d": base64.b64encode(str(answer).encode()).decode()}
    return "_wafchallengeid=" + base64.b64encode(json.dumps(solved).encode()).decode()


# --- TikTok -------------------------------------------------------------------------------------


async def test_tiktok_waf_page_stops_a_plain_client_until_it_answers(site: FixtureSite) -> None:
    item = pick(site, "tiktok")
    site.faults.block("tiktok.waf", next=3)
    status, headers, body = await fetch(site, item.url)
    html = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert 1000 <= len(body) <= 2000 and "Please wait..." in html and HYDRATION not in html
    assert '<p id="wci" class="_wafchallengeid">' in html and '<p id="rci" class="waforiginalreid">' in html
    assert '<script id="slardar-config" type="application/json">{ "slardarClient": "SlardarWAF"' in html
    challenge = challenge_of(html)
    assert set(challenge) == {"v", "s"} and set(challenge["v"]) == {"a", "b", "c"}
    answer = waf_answer(challenge)
    assert answer < 5000
    # A client that reloads without answering stays on it; the answer is what the script sends.
    status, _, again = await fetch(site, item.url)
    assert b"_wafchallengeid" in again and site.faults.pending("tiktok.waf") == 1
    passed, cookie = site.stats["tiktok.waf_passed"], waf_cookie(challenge, answer)
    status, _, page = await fetch(site, item.url, cookie)
    assert status == 200 and HYDRATION.encode() in page and item.title.encode("utf-8") in page
    assert site.stats["tiktok.waf_passed"] == passed + 1 and site.faults.pending("tiktok.waf") == 1
    # An answer clears one page load; wrong answers and a tampered challenge clear none.
    unsealed = {"v": {**challenge["v"], "b": challenge["v"]["b"] + 1}, "s": challenge["s"]}
    site.faults.block("tiktok.waf", next=4)
    for replay in (
        cookie,
        waf_cookie(challenge, answer + 1),
        waf_cookie(unsealed, answer),
        "_wafchallengeid=x",
    ):
        _, _, again = await fetch(site, item.url, replay)
        assert b"Please wait..." in again
    assert site.stats["fault.tiktok.waf"] == 6 and site.stats["tiktok.waf_passed"] == passed + 1
    script = re.search(r'<script src="(https://[^"]+/waf-aiso/[^"]+\.js)"', html)
    assert script
    status, headers, js = await fetch(site, script.group(1))
    assert status == 200 and "javascript" in headers["Content-Type"] and b"crypto.subtle.digest" in js


async def test_tiktok_block_shell_and_verify_page(site: FixtureSite) -> None:
    item = pick(site, "tiktok")
    profile = site.dataset.account("tiktok", "medium").profile_url
    site.faults.block("tiktok.block_shell")
    status, headers, body = await fetch(site, item.url)
    assert status == 200 and headers["X-TT-System-Error"] == "3"
    assert 450 <= len(body) <= 750 and HYDRATION.encode() not in body
    site.faults.block("tiktok.verify", next=2)
    for url in (item.url, profile):
        status, headers, body = await fetch(site, url)
        html = body.decode()
        assert status == 200 and "X-TT-System-Error" not in headers and HYDRATION not in html
        assert 'id="tiktok-verify-page"' in html and "verify_center" in html and "captcha" in html
    status, _, body = await fetch(site, profile)
    assert HYDRATION.encode() in body
    assert site.stats["fault.tiktok.block_shell"] == 1 and site.stats["fault.tiktok.verify"] == 2


async def test_tiktok_security_check_captcha_page(site: FixtureSite) -> None:
    """The "Security Check" middle page: its slider config in ``<script id="captcha-config">``."""
    site.faults.block("tiktok.captcha")
    status, _, body = await fetch(site, pick(site, "tiktok").url)
    html = body.decode()
    assert status == 200 and HYDRATION not in html and "<title>Security Check</title>" in html
    config = json.loads(re.search(r'id="captcha-config">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert config["verify_data"]["subtype"] == "slide" and isinstance(
        config["verify_data"]["server_sdk_env"], str
    )
    assert site.stats["fault.tiktok.captcha"] == 1


async def test_tiktok_item_list_empty_body_and_429(site: FixtureSite) -> None:
    url, cookie = item_list_url(site), visitor(site)
    site.faults.block("tiktok.api_empty")
    status, headers, body = await fetch(site, url, cookie)
    assert (status, body, headers["tt_orcas_res"]) == (200, b"", "1")
    site.faults.block("tiktok.http429")
    status, headers, body = await fetch(site, url, cookie)
    assert status == 429 and headers["Retry-After"] and body == b"Too Many Requests"
    status, headers, body = await fetch(site, url, cookie)
    assert status == 200 and json.loads(body)["statusCode"] == 0 and "tt_orcas_res" not in headers


async def test_page_kinds_leave_xhrs_alone_and_api_kinds_leave_pages_alone(site: FixtureSite) -> None:
    site.faults.block("tiktok.verify")
    site.faults.block("tiktok.api_empty")
    status, _, body = await fetch(site, item_list_url(site), visitor(site))
    assert status == 200 and body == b"" and site.faults.pending("tiktok.verify") == 1
    assert site.faults.pending("tiktok.api_empty") == 0
    _, _, home = await fetch(site, "https://www.tiktok.com/")  # not a video or profile page
    assert HYDRATION.encode() in home and site.faults.pending("tiktok.verify") == 1


# --- Douyin -------------------------------------------------------------------------------------


async def test_douyin_captcha_page_on_video_user_and_share_pages(site: FixtureSite) -> None:
    item = pick(site, "douyin")
    user = f"https://www.douyin.com/user/{item.author.sec_uid}"
    share = f"https://www.iesdouyin.com/share/video/{item.id}/"
    site.faults.block("douyin.captcha", next=3)
    # The acrawler challenge, the home page and the share page's cookie shell are not eligible.
    _, _, challenge = await fetch(site, item.url)
    _, _, home = await fetch(site, "https://www.douyin.com/", douyin_page_cookies(site))
    _, _, shell = await fetch(site, share, ua=MOBILE_UA)
    assert b"__ac_signature" in challenge and b"douyin-header" in home and b"location.reload()" in shell
    assert site.faults.pending("douyin.captcha") == 3
    session = visitor(site)
    for url, ua, cookie in (
        (item.url, DESKTOP_UA, douyin_page_cookies(site, session)),
        (user, DESKTOP_UA, douyin_page_cookies(site, session)),
        (share, MOBILE_UA, session),
    ):
        status, headers, body = await fetch(site, url, cookie, ua=ua)
        html = body.decode()
        assert status == 200 and headers["Content-Type"].startswith("text/html"), url
        assert (
            "<title>验证码中间页</title>" in html and "TTGCaptcha" in html and "请完成下列验证后继续" in html
        )
        assert '"subtype":"slide"' in html and '"server_type":"whale"' in html
    _, _, page = await fetch(site, share, session, ua=MOBILE_UA)
    assert b"window._ROUTER_DATA" in page and site.stats["fault.douyin.captcha"] == 3


@pytest.mark.parametrize("base", [DETAIL, POST])
async def test_douyin_xhr_blocks(site: FixtureSite, base: str) -> None:
    url = detail_url(site, pick(site, "douyin")) if base == DETAIL else post_url(site)
    cookie = visitor(site)
    site.faults.block("douyin.api_empty")
    status, headers, body = await fetch(site, url, cookie)
    assert (status, body) == (200, b"") and "tt_orcas_res" not in headers
    site.faults.block("douyin.argus")
    status, headers, body = await fetch(site, url, cookie)
    assert status == 403 and headers["Content-Type"].startswith("text/plain")
    assert body == b"Blocked by ArgusSecurityPlugin Validate Error"
    site.faults.block("douyin.argus")
    status, _, body = await fetch(site, url.rpartition("&a_bogus=")[0], cookie)
    assert (status, body) == (403, b"Blocked by ArgusSecurityPlugin Signature Not Found")
    site.faults.block("douyin.status4")
    status, headers, body = await fetch(site, url, cookie)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"status_code": 4, "status_msg": "啊哦，服务器打瞌睡了，再试一次吧～"}
    site.faults.block("douyin.http429")
    status, _, _ = await fetch(site, url, cookie)
    assert status == 429
    status, _, body = await fetch(site, url, cookie)
    assert status == 200 and json.loads(body)["status_code"] == 0
    for kind in ("api_empty", "argus", "status4", "http429"):
        assert site.stats[f"fault.douyin.{kind}"] >= 1


async def test_profile_xhr_takes_no_per_response_block(site: FixtureSite) -> None:
    account = site.dataset.account("douyin", "medium")
    url = signed(site, PROFILE, {"device_platform": "webapp", "aid": "6383", "sec_user_id": account.sec_uid})
    site.faults.block("douyin.api_empty")
    status, _, body = await fetch(site, url, visitor(site))
    assert status == 200 and json.loads(body)["user"]["sec_uid"] == account.sec_uid
    assert site.faults.pending("douyin.api_empty") == 1


# --- Switches -----------------------------------------------------------------------------------


async def test_next_n_is_used_up_exactly_in_kind_order(site: FixtureSite) -> None:
    url, cookie = detail_url(site, pick(site, "douyin")), visitor(site)
    site.faults.block("douyin.status4", next=3)
    site.faults.block("douyin.api_empty", next=2)
    answers = [await fetch(site, url, cookie) for _ in range(6)]
    kinds = ["empty" if not b else json.loads(b)["status_code"] for _, _, b in answers]
    assert kinds == ["empty", "empty", 4, 4, 4, 0]
    assert site.faults.pending("douyin.status4") == site.faults.pending("douyin.api_empty") == 0
    assert site.stats["fault.douyin.status4"] >= 3
    with pytest.raises(ValueError, match="unknown fault kind"):
        site.faults.block("douyin.nope")


async def pattern(site: FixtureSite, url: str, count: int) -> list[int | str]:
    """What ``count`` calls of one session get: 0 for the data, else the block's status or kind."""
    headers = {"User-Agent": DESKTOP_UA, "Cookie": visitor(site)}
    seen: list[int | str] = []
    async with platform_http_session(map_to=site.address, ca_file=site.ca_pem_path, headers=headers) as http:
        for _ in range(count):
            async with http.get(URL(url, encoded=True)) as response:
                status, body = response.status, await response.read()
            seen.append(status if status != 200 else json.loads(body)["status_code"] if body else "empty")
    return seen


async def test_seeded_rates_repeat_and_are_transient(site: FixtureSite) -> None:
    url = detail_url(site, pick(site, "douyin"))
    rates = {"douyin.api_empty": 0.3, "douyin.http429": 0.2, "tiktok.verify": 0.9}
    site.faults.seed, site.faults.rates = 7, rates
    first = await pattern(site, url, 40)
    site.faults.clear()
    site.faults.seed, site.faults.rates = 7, rates
    assert await pattern(site, url, 40) == first
    site.faults.clear()
    site.faults.seed, site.faults.rates = 8, rates
    assert await pattern(site, url, 40) != first
    assert {"empty", 429, 0} <= set(first) and 4 not in first
    # Per response, not sticky: the same session gets data again right after a block.
    assert any(a != 0 and b == 0 for a, b in itertools.pairwise(first))
    assert site.stats["fault.session_blocked"] == 0
    with pytest.raises(ValueError):
        site.faults.rates["douyin.captcha"] = 1.5
    with pytest.raises(ValueError):
        site.faults.rates = {"douyin.typo": 0.1}


async def test_session_limit_blocks_one_cookie_jar_for_good(site: FixtureSite) -> None:
    item = pick(site, "douyin")
    url = detail_url(site, item)
    site.faults.session_limit = 3
    greedy, fresh = visitor(site), visitor(site)
    blocked_before = site.stats["fault.session_blocked"]
    got = [await fetch(site, url, greedy) for _ in range(5)]
    assert [bool(body) for _, _, body in got] == [True, True, True, False, False]
    assert site.stats["fault.session_blocked"] == blocked_before + 1
    # Blocked everywhere on the platform: the pages get the captcha page.
    _, _, page = await fetch(site, item.url, douyin_page_cookies(site, greedy))
    assert "验证码中间页".encode() in page
    ttwid = greedy.split(";")[0].removeprefix("ttwid=")
    assert site.faults.session_blocked(ttwid)
    # Still blocked once the window has passed; a fresh jar is served; no cookies: never counted.
    site.faults.session_window = 0.05
    await asyncio.sleep(0.1)
    assert (await fetch(site, url, greedy))[2] == b""
    assert json.loads((await fetch(site, url, fresh))[2])["status_code"] == 0
    for _ in range(5):
        assert b"__ac_signature" in (await fetch(site, item.url))[2]
    site.faults.clear()
    assert json.loads((await fetch(site, url, greedy))[2])["status_code"] == 0


async def test_session_rule_on_tiktok_pages_and_window(site: FixtureSite) -> None:
    item = pick(site, "tiktok")
    site.faults.session_limit = 3
    served, blocked = site.stats["fault.session"], site.stats["fault.session_blocked"]
    async with test_fixture_site.client(site) as http:
        bodies = []
        for _ in range(5):  # the first view has no ttwid yet: a fresh visitor, not counted
            async with http.get(item.url) as response:
                bodies.append(await response.text())
        async with http.get(URL(item_list_url(site), encoded=True)) as response:
            xhr = (response.status, response.headers.get("tt_orcas_res"), await response.read())
    assert [HYDRATION in b for b in bodies] == [True, True, True, True, False]
    assert "tiktok-verify-page" in bodies[-1] and xhr == (200, "1", b"")
    assert site.stats["fault.session"] == served + 2 and site.stats["fault.session_blocked"] == blocked + 1
    assert HYDRATION.encode() in (await fetch(site, item.url))[2]
    # Requests spread wider than the window never add up.
    site.faults.session_limit, site.faults.session_window = 2, 0.2
    cookie = visitor(site)
    for _ in range(3):
        assert HYDRATION.encode() in (await fetch(site, item.url, cookie))[2]
        await asyncio.sleep(0.25)
    other = visitor(site)
    site.faults.block_session(other.split(";")[0].removeprefix("ttwid="))
    assert b"tiktok-verify-page" in (await fetch(site, item.url, other))[2]


async def test_slow_and_dropped_responses(site: FixtureSite) -> None:
    item = pick(site, "tiktok")
    site.faults.slow_ms = 300
    started = time.monotonic()
    status, _, _ = await fetch(site, item.url)
    assert status == 200 and time.monotonic() - started >= 0.3 and site.stats["fault.slow"] >= 1
    site.faults.slow_ms = 0
    site.faults.drop_next = 2
    with pytest.raises(aiohttp.ClientPayloadError):
        await fetch(site, item.url)
    image = "https://p3-pc.douyinpic.com/aweme/100x100/aweme-avatar/fixture.jpeg"
    status, headers, _ = await fetch(site, image, method="HEAD")  # a HEAD has no body to cut
    assert status == 200 and site.faults.drop_next == 1
    with pytest.raises(aiohttp.ClientPayloadError):
        await fetch(site, image)
    assert site.faults.drop_next == 0 and site.stats["fault.drop"] >= 2
    status, headers, body = await fetch(site, image)
    assert status == 200 and len(body) == int(headers["Content-Length"])
    assert HYDRATION.encode() in (await fetch(site, item.url))[2]


# --- Configuration ------------------------------------------------------------------------------


def test_faults_from_constructor_and_environment(site: FixtureSite, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"rates": {"douyin.captcha": 0.1}, "seed": 7, "block": {"tiktok.waf": 2}, "session_limit": 30}
    made = FixtureSite(dataset=site.dataset, faults=config).faults
    assert made.rates == {"douyin.captcha": 0.1} and made.seed == 7 and made.session_limit == 30
    assert made.pending("tiktok.waf") == 2 and made.session_window == 60.0
    monkeypatch.setenv(ENV_VAR, json.dumps({"rates": {"tiktok.http429": 0.05}, "seed": 3, "slow_ms": 50}))
    from_env = FixtureSite(dataset=site.dataset).faults
    assert from_env.rates == {"tiktok.http429": 0.05} and (from_env.seed, from_env.slow_ms) == (3, 50)
    assert FixtureSite(dataset=site.dataset, faults=Faults()).faults.rates == {}
    for bad in ("{not json", '{"rates": {"douyin.nope": 0.1}}', '{"sloq_ms": 5}', "[1]"):
        monkeypatch.setenv(ENV_VAR, bad)
        with pytest.raises(ValueError):
            FixtureSite(dataset=site.dataset)
    assert set(KINDS) == {
        "tiktok.waf",
        "tiktok.block_shell",
        "tiktok.api_empty",
        "tiktok.verify",
        "tiktok.captcha",
        "tiktok.http429",
        "douyin.captcha",
        "douyin.api_empty",
        "douyin.argus",
        "douyin.status4",
        "douyin.http429",
    }


# --- Real browser -------------------------------------------------------------------------------


@pytest.mark.browser
async def test_browser_passes_the_tiktok_waf_on_its_own(site: FixtureSite, chromium: Any) -> None:
    item = pick(site, "tiktok")
    account = site.dataset.account("tiktok", "medium")
    context = await chromium.new_context(user_agent=DESKTOP_UA)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    served, passed = site.stats["fault.tiktok.waf"], site.stats["tiktok.waf_passed"]
    site.faults.block("tiktok.waf")
    await page.goto(item.url, wait_until="commit")
    await page.wait_for_selector("#app[data-hydrated]")
    assert await page.inner_text("[data-e2e=browse-video-desc]") == item.title
    assert site.stats["fault.tiktok.waf"] == served + 1 and site.stats["tiktok.waf_passed"] == passed + 1
    # Every page load challenged: each costs one reload, and the profile's XHRs still page in.
    site.faults.rates = {"tiktok.waf": 1.0}
    await page.goto(account.profile_url, wait_until="commit")
    await page.wait_for_selector("[data-e2e=user-post-item]")
    assert await page.inner_text("[data-e2e=user-title]") == account.handle
    assert site.stats["fault.tiktok.waf"] == served + 2 and site.stats["tiktok.waf_passed"] == passed + 2
    assert "_wafchallengeid" in {c["name"] for c in await context.cookies()}
    assert errors == []
    await context.close()
