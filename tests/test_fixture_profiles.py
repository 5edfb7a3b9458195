"""Profile pages of the fixture site behave like the real ones (platforms.md B, C.3).

* The post XHRs (TikTok ``/api/post/item_list/``, Douyin ``/aweme/v1/web/aweme/post/`` and
  ``user/profile/other/``) answer a plain HTTP client that lacks the page's signature, or
  carries a copied or forged one, or lacks the cookies, with HTTP 200 and an empty body.
* Their paging: pinned first on the first page only, then newest first; cursors; counts.
  These tests sign with the site's key (the Python twin of the page JS) to reach the data.
* In the real Chromium the profile pages' own JavaScript signs the XHRs and pages on scroll.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from yarl import URL

from fixtures.dataset import Account, Item, build_dataset
from fixtures.listing import visible
from fixtures.signing import a_bogus, ac_signature, make_ac_nonce, make_ttwid, x_bogus
from fixtures.site import FixtureSite
from scraper.http import platform_http_session
from tests import test_fixture_site

DESKTOP_UA = test_fixture_site.DESKTOP_UA
#: The real Chromium, launched as playwright.config says (tests/chromium.py).
chromium = test_fixture_site.chromium
CAPTURES = Path(__file__).resolve().parents[1].parent / "shared" / "real-captures"
PROFILE_CAPTURE = "douyin-web-api-user_profile_info.TikTokDownload-20230804.json"
SHANGHAI = timezone(timedelta(hours=8))
MS_TOKEN = "fixtureMsToken_" + "x" * 111 + "=="
ITEM_LIST = "https://www.tiktok.com/api/post/item_list/"
POST = "https://www.douyin.com/aweme/v1/web/aweme/post/"
PROFILE = "https://www.douyin.com/aweme/v1/web/user/profile/other/"


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[FixtureSite]:
    async with FixtureSite() as running:
        yield running


def ids(items: list[Item]) -> list[str]:
    return [i.id for i in items]


# --- Requests as a plain HTTP client makes them ---------------------------------------------


def tiktok_query(account: Account, cursor: str = "0", count: int = 35) -> str:
    params = {
        "aid": "1988",
        "app_language": "en",
        "app_name": "tiktok_web",
        "count": str(count),
        "coverFormat": "2",
        "cursor": cursor,
        "device_platform": "web_pc",
        "secUid": account.sec_uid,
        "msToken": MS_TOKEN,
    }
    return urlencode(params)


def douyin_query(path: str, account: Account, cursor: str = "0", count: int = 18) -> str:
    params = {"device_platform": "webapp", "aid": "6383", "channel": "channel_pc_web"}
    params["sec_user_id"] = account.sec_uid
    if path == POST:
        params.update(max_cursor=cursor, locate_query="false", count=str(count))
    params["msToken"] = MS_TOKEN
    return urlencode(params)


def signed(site: FixtureSite, base: str, query: str) -> str:
    """``base?query&<signature>``: what the page's SDK would send (X-Bogus or a_bogus)."""
    if base == ITEM_LIST:
        return f"{base}?{query}&X-Bogus={quote(x_bogus(site.secrets.xb_key, query, DESKTOP_UA), safe='')}"
    return f"{base}?{query}&a_bogus={quote(a_bogus(site.secrets.ab_key, query, DESKTOP_UA), safe='')}"


def cookies(
    site: FixtureSite, ms_token: str | None = MS_TOKEN, ttwid: str | None = "", *, passed: bool = True
) -> str:
    """The visitor cookies a page view leaves: a server-issued ``ttwid`` (``""``: a fresh one;
    None: none), ``msToken`` and, when the page ``passed`` Douyin's acrawler challenge, its pair."""
    jar = {"ttwid": ttwid or make_ttwid(site.secrets.server_key)} if ttwid is not None else {}
    if ms_token is not None:
        jar["msToken"] = ms_token
    if passed:
        nonce = make_ac_nonce()
        jar |= {"__ac_nonce": nonce, "__ac_signature": ac_signature(site.secrets.ac_key, nonce, DESKTOP_UA)}
    return "; ".join(f"{k}={v}" for k, v in jar.items())


async def fetch(site: FixtureSite, url: str, cookie: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"User-Agent": DESKTOP_UA, **({"Cookie": cookie} if cookie else {})}
    async with (
        platform_http_session(map_to=site.address, ca_file=site.ca_pem_path, headers=headers) as http,
        http.get(URL(url, encoded=True), allow_redirects=False) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def fetch_json(site: FixtureSite, base: str, query: str) -> dict[str, Any]:
    status, _, body = await fetch(site, signed(site, base, query), cookies(site))
    assert status == 200 and body, base
    return json.loads(body)


# --- Signature enforcement ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "route"),
    [(ITEM_LIST, "tiktok.item_list"), (POST, "douyin.post"), (PROFILE, "douyin.profile")],
)
async def test_xhr_without_the_page_signature_gets_an_empty_200(
    site: FixtureSite, base: str, route: str
) -> None:
    platform = "tiktok" if base == ITEM_LIST else "douyin"
    account, other_account = (site.dataset.account(platform, role) for role in ("medium", "big"))
    if base == ITEM_LIST:
        query, other = tiktok_query(account), tiktok_query(other_account)
        param = "X-Bogus"
    else:
        query, other = douyin_query(base, account), douyin_query(base, other_account)
        param = "a_bogus"
    good = signed(site, base, query)
    signature = good.rpartition(f"&{param}=")[2]
    forged = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    jar = cookies(site)
    refused = {
        "unsigned": (f"{base}?{query}", jar),
        "forged signature of the right shape": (f"{base}?{query}&{param}={forged}", jar),
        "signature copied onto another account's query": (f"{base}?{other}&{param}={signature}", jar),
        "signature not last": (f"{base}?{query}&{param}={signature}&x=1", jar),
        "no msToken cookie": (good, cookies(site, ms_token=None)),
        "msToken cookie differs from the query": (good, cookies(site, ms_token=MS_TOKEN[::-1])),
        "no ttwid cookie": (good, cookies(site, ttwid=None)),
        "forged ttwid cookie": (good, cookies(site, ttwid="1%7Cforged%7C1%7Cdeadbeef")),
    }
    if platform == "douyin":  # a fetch from a page that never passed the acrawler challenge
        refused["no acrawler pass"] = (good, cookies(site, passed=False))
    served, rejected = site.stats[route], site.stats[f"{route}_rejected"]
    for why, (url, cookie) in refused.items():
        status, headers, body = await fetch(site, url, cookie)
        assert (status, body) == (200, b""), why
        if base == ITEM_LIST:
            assert headers.get("tt_orcas_res") == "1", why
    assert site.stats[f"{route}_rejected"] == rejected + len(refused)
    assert site.stats[f"{platform}.api_rejected"] >= len(refused)

    # The very same request, signed the way the page signs it, is answered.
    status, headers, body = await fetch(site, good, jar)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["status_code"] == 0
    assert site.stats[route] == served + len(refused) + 1
    assert site.stats[f"{route}_rejected"] == rejected + len(refused)


# --- Paging semantics ---------------------------------------------------------------------


async def all_pages(site: FixtureSite, base: str, account: Account, count: int) -> list[dict[str, Any]]:
    """Every page of ``account`` as a client that follows the cursors gets them."""
    tiktok = base == ITEM_LIST
    pages: list[dict[str, Any]] = []
    cursor = "0"
    while True:
        query = tiktok_query(account, cursor, count) if tiktok else douyin_query(POST, account, cursor, count)
        body = await fetch_json(site, base, query)
        pages.append(body)
        if not (body["hasMore"] if tiktok else body["has_more"]):
            return pages
        cursor = body["cursor"] if tiktok else str(body["max_cursor"])
        assert len(pages) < 100


@pytest.mark.parametrize(("role", "count"), [("medium", 7), ("medium", 35)])
async def test_tiktok_item_list_pages(site: FixtureSite, role: str, count: int) -> None:
    account = site.dataset.account("tiktok", role)
    expected = visible(account)
    pages = await all_pages(site, ITEM_LIST, account, count)
    items = [i for p in pages for i in p["itemList"]]
    assert [i["id"] for i in items] == ids(expected)
    first = pages[0]
    assert list(first) == [
        "cursor",
        "extra",
        "hasMore",
        "itemList",
        "log_pb",
        "statusCode",
        "status_code",
        "status_msg",
    ]
    assert (first["statusCode"], first["status_code"], first["status_msg"]) == (0, 0, "")
    assert set(first["extra"]) == {"fatal_item_ids", "logid", "now"}
    pinned = [i for i in expected if i.pinned]
    assert [i["id"] for i in first["itemList"][: len(pinned)]] == ids(pinned)
    assert all(i["isPinnedItem"] for i in first["itemList"][: len(pinned)])
    assert not any(
        i["isPinnedItem"] for p in pages for i in p["itemList"][len(pinned) if p is first else 0 :]
    )
    for body in pages[:-1]:  # TikTok counts pinned items in `count`
        assert len(body["itemList"]) == count and body["hasMore"] is True
        assert body["cursor"] == str(body["itemList"][-1]["createTime"] * 1000)
    assert pages[-1]["hasMore"] is False and 0 < len(pages[-1]["itemList"]) <= count
    item = items[len(pinned)]
    assert isinstance(item["createTime"], int) and isinstance(item["stats"]["collectCount"], int)
    assert item["authorStats"]["videoCount"] == len(expected) and item["author"]["secUid"] == account.sec_uid
    photos = [i for i in items if "imagePost" in i]
    assert len(photos) == sum(i.kind == "photo" for i in expected) > 0


@pytest.mark.parametrize(("role", "count"), [("medium", 5), ("medium", 18), ("big", 35)])
async def test_douyin_post_pages(site: FixtureSite, role: str, count: int) -> None:
    account = site.dataset.account("douyin", role)
    expected = visible(account)
    pinned = [i for i in expected if i.pinned]
    pages = await all_pages(site, POST, account, count)
    awemes = [a for p in pages for a in p["aweme_list"]]
    assert [a["aweme_id"] for a in awemes] == ids(expected)
    first = pages[0]
    assert list(first) == [
        "status_code",
        "min_cursor",
        "max_cursor",
        "has_more",
        "aweme_list",
        "time_list",
        "log_pb",
        "request_item_cursor",
        "post_serial",
        "replace_series_cover",
    ]
    assert len(first["aweme_list"]) == count + len(pinned)  # pinned items are extra to `count`
    assert [a["is_top"] for a in first["aweme_list"][: len(pinned)]] == [1] * len(pinned)
    assert all(a["is_top"] == 0 for a in awemes[len(pinned) :])
    previous = 0
    for body in pages:
        listed = [a for a in body["aweme_list"] if not a["is_top"]]
        assert body["min_cursor"] == listed[0]["create_time"] * 1000
        assert body["max_cursor"] == listed[-1]["create_time"] * 1000
        assert previous == 0 or listed[0]["create_time"] * 1000 < previous  # strictly older
        previous = body["max_cursor"]
    assert [p["has_more"] for p in pages] == [1] * (len(pages) - 1) + [0]
    assert all(len(p["aweme_list"]) == count for p in pages[1:-1])
    notes = [a for a in awemes if a["aweme_type"] == 68]
    assert len(notes) == sum(i.kind == "photo" for i in expected) > 0
    assert all(a["media_type"] == 2 and a["images"] for a in notes)


async def test_counts_are_capped_and_bad_cursors_list_nothing(site: FixtureSite) -> None:
    big = site.dataset.account("tiktok", "big")
    body = await fetch_json(site, ITEM_LIST, tiktok_query(big, count=500))
    assert len(body["itemList"]) == 35
    body = await fetch_json(site, ITEM_LIST, tiktok_query(big, cursor="soon"))
    assert (body["itemList"], body["hasMore"]) == ([], False)
    dy = site.dataset.account("douyin", "big")
    body = await fetch_json(site, POST, douyin_query(POST, dy, count=500))
    assert len(body["aweme_list"]) == 35 + 3
    oldest = visible(dy)[-1]
    body = await fetch_json(site, POST, douyin_query(POST, dy, cursor=str(oldest.create_ts * 1000)))
    assert (body["aweme_list"], body["has_more"]) == ([], 0)


@pytest.mark.parametrize("role", ["empty", "single", "private", "missing"])
async def test_small_private_and_missing_channels(site: FixtureSite, role: str) -> None:
    tt = site.dataset.account("tiktok", role)
    body = await fetch_json(site, ITEM_LIST, tiktok_query(tt))
    expected = {"empty": [], "single": ids(tt.items), "private": [], "missing": []}[role]
    assert [i["id"] for i in body["itemList"]] == expected and body["hasMore"] is False
    if role != "single":
        assert (body["cursor"], body["statusCode"]) == ("0", 0)
    dy = site.dataset.account("douyin", role)
    body = await fetch_json(site, POST, douyin_query(POST, dy))
    expected = ids(dy.items) if role == "single" else []
    assert [a["aweme_id"] for a in body["aweme_list"]] == expected and body["has_more"] == 0
    if role != "single":
        assert (body["status_code"], body["max_cursor"], body["min_cursor"]) == (0, 0, 0)
    profile = await fetch_json(site, PROFILE, douyin_query(PROFILE, dy))
    if role == "missing":
        assert (profile["status_code"], profile["status_msg"], profile["user"]) == (2096, "用户不存在", None)
        return
    user = profile["user"]
    assert (profile["status_code"], profile["status_msg"]) == (0, None)
    assert (user["sec_uid"], user["uid"], user["nickname"]) == (dy.sec_uid, dy.uid, dy.nickname)
    assert user["secret"] == (1 if role == "private" else 0)
    assert user["aweme_count"] == sum(i.state == "public" for i in dy.items)
    assert user["ip_location"].startswith("IP属地：")
    assert user["avatar_larger"]["url_list"] and user["follower_count"] == dy.followers


@pytest.mark.skipif(not CAPTURES.is_dir(), reason=f"real captures not present at {CAPTURES}")
async def test_douyin_profile_has_the_capture_keys(site: FixtureSite) -> None:
    capture = json.loads((CAPTURES / PROFILE_CAPTURE).read_text(encoding="utf-8"))
    account = site.dataset.account("douyin", "big")
    body = await fetch_json(site, PROFILE, douyin_query(PROFILE, account))
    assert list(body) == list(capture) == ["extra", "log_pb", "status_code", "status_msg", "user"]
    assert list(body["user"]) == list(capture["user"])
    assert list(body["extra"]) == list(capture["extra"])
    assert body["user"]["unique_id"] == account.handle and body["user"]["verification_type"] == 1


async def test_profile_pages_private_and_missing(site: FixtureSite) -> None:
    private = site.dataset.account("tiktok", "private")
    status, _, html = await fetch(site, private.profile_url, "")
    page = html.decode()
    scope = json.loads(
        page.split('"__UNIVERSAL_DATA_FOR_REHYDRATION__" type="application/json">')[1].split("<")[0]
    )
    detail = scope["__DEFAULT_SCOPE__"]["webapp.user-detail"]
    assert status == 200 and detail["statusCode"] == 0
    user = detail["userInfo"]["user"]
    assert user["privateAccount"] is True and user["secret"] is True and detail["userInfo"]["itemList"] == []
    dy = site.dataset.account("douyin", "medium")
    status, headers, _ = await fetch(site, f"https://www.iesdouyin.com/share/user/{dy.sec_uid}?sec_uid=x", "")
    assert status == 302 and headers["Location"].startswith(dy.profile_url + "?")


# --- The dataset behind the channels ------------------------------------------------------


@pytest.mark.parametrize("hour", [0.01, 3, 7.99, 8, 15.99, 16.01, 20, 23.99])
def test_recent_items_are_today_and_yesterday_in_utc_and_shanghai(hour: float) -> None:
    now = datetime(2026, 11, 21, tzinfo=UTC) + timedelta(hours=hour)
    dataset = build_dataset(now=now)
    for account in dataset.accounts:
        times = [i.create_ts for i in account.items]
        assert len(set(times)) == len(times), "create times must be unique within an account"
        assert all(now - timedelta(days=90) <= i.create_time <= now for i in account.items)
        if account.role not in ("medium", "big"):
            continue
        for zone in (UTC, SHANGHAI):
            today = now.astimezone(zone).date()
            days = [i.create_time.astimezone(zone).date() for i in visible(account)]
            assert days.count(today) >= 3, (account.platform, account.role, zone)
            assert days.count(today - timedelta(days=1)) >= 3, (account.platform, account.role, zone)
        spread = {(now - i.create_time).days for i in account.items}
        assert max(spread) >= 74 and len(spread) >= 20  # spread over the last 90 days


def test_channels_have_pinned_and_photo_posts_and_profile_short_links(site: FixtureSite) -> None:
    doc = site.dataset.to_json()
    for platform in ("douyin", "tiktok"):
        for role in ("medium", "big"):
            account = next(a for a in doc["accounts"] if a["platform"] == platform and a["role"] == role)
            assert {"user", "sec_uid", "handle", "profile_url"} <= set(account)
            items = account["items"]
            assert all({"id", "pinned", "create_time", "create_ts", "kind", "state"} <= set(i) for i in items)
            assert sum(i["pinned"] for i in items) == 3
            assert any(i["kind"] == "photo" and i["state"] == "public" for i in items)
        profile_links = [
            s for s in doc["short_links"] if s["platform"] == platform and s["kind"] == "profile"
        ]
        hosts = {s["url"].split("/")[2] for s in profile_links}
        assert {"v.douyin.com"} <= hosts if platform == "douyin" else {"vm.tiktok.com"} <= hosts
        assert {s["user"] for s in profile_links} >= {
            a["user"] for a in doc["accounts"] if a["platform"] == platform and a["role"] in ("medium", "big")
        }


# --- Real browser -------------------------------------------------------------------------


async def scroll_through(chromium: Any, url: str, xhr_path: str, list_selector: str) -> list[tuple[str, Any]]:
    """Open ``url``, scroll to the bottom until the post list says there is no more; the XHRs seen."""
    context = await chromium.new_context(user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    errors: list[str] = []
    responses: list[Any] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: responses.append(r) if xhr_path in r.url else None)
    await page.goto(url)
    done = f"{list_selector}[data-state=idle], {list_selector}[data-state=done]"
    await page.wait_for_selector(done)
    for _ in range(60):
        state = await page.eval_on_selector(list_selector, "e => [e.dataset.hasMore, +e.dataset.pages]")
        if state[0] == "0":
            break
        await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        await page.wait_for_function(
            "([sel, n]) => { const e = document.querySelector(sel);"
            " return e.dataset.state !== 'loading' && +e.dataset.pages > n; }",
            arg=[list_selector, state[1]],
        )
    tiles = await page.eval_on_selector_all(
        f"{list_selector} [data-e2e=user-post-item]", "es => es.map(e => e.dataset.id || e.dataset.awemeId)"
    )
    out = [(r.url, json.loads(await r.text())) for r in responses]
    out.append(("tiles", tiles))
    assert errors == []
    await context.close()
    return out


@pytest.mark.browser
@pytest.mark.parametrize("role", ["medium", "big"])
async def test_browser_tiktok_profile_pages_its_posts_on_scroll(
    site: FixtureSite, chromium: Any, role: str
) -> None:
    account = site.dataset.account("tiktok", role)
    rejected = site.stats["tiktok.api_rejected"]
    seen = await scroll_through(
        chromium, account.profile_url, "/api/post/item_list/", "[data-e2e=user-post-item-list]"
    )
    *xhrs, (_, tiles) = seen
    expected = ids(visible(account))
    assert [i["id"] for _, body in xhrs for i in body["itemList"]] == expected == tiles
    assert [body["hasMore"] for _, body in xhrs] == [True] * (len(xhrs) - 1) + [False]
    assert len(xhrs) == -(-len(expected) // 35)
    first_url, first = xhrs[0]
    assert first_url.startswith(f"{ITEM_LIST}?aid=1988&app_language=en&app_name=tiktok_web&")
    assert "&count=35&coverFormat=2&cursor=0&" in first_url and f"&secUid={account.sec_uid}&" in first_url
    assert "&msToken=" in first_url and "&X-Bogus=DFSz" in first_url.rpartition("&msToken=")[2]
    assert [i["isPinnedItem"] for i in first["itemList"][:3]] == [True, True, True]
    for (url, _), (_, previous) in zip(xhrs[1:], xhrs, strict=False):
        assert f"&cursor={previous['cursor']}&" in url
    assert site.stats["tiktok.api_rejected"] == rejected
    # The page's own signed URL, copied into a plain HTTP client without the page's cookies.
    assert (await fetch(site, first_url, ""))[::2] == (200, b"")
    assert site.stats["tiktok.api_rejected"] == rejected + 1


@pytest.mark.browser
async def test_browser_douyin_profile_pages_its_posts_on_scroll(site: FixtureSite, chromium: Any) -> None:
    account = site.dataset.account("douyin", "medium")
    rejected = site.stats["douyin.api_rejected"]
    seen = await scroll_through(chromium, account.profile_url, "/aweme/v1/web/", "[data-e2e=scroll-list]")
    *xhrs, (_, tiles) = seen
    posts = [(url, body) for url, body in xhrs if url.startswith(POST)]
    profiles = [body for url, body in xhrs if url.startswith(PROFILE)]
    expected = visible(account)
    assert [a["aweme_id"] for _, body in posts for a in body["aweme_list"]] == ids(expected) == tiles
    assert [body["has_more"] for _, body in posts] == [1] * (len(posts) - 1) + [0]
    pinned = sum(i.pinned for i in expected)
    first_url, first = posts[0]
    assert len(first["aweme_list"]) == 18 + pinned and len(posts) == 2
    assert [a["is_top"] for a in first["aweme_list"][:pinned]] == [1] * pinned
    assert first_url.startswith(f"{POST}?device_platform=webapp&aid=6383&channel=channel_pc_web&")
    for param in (
        "locate_query=false",
        "need_time_list=1",
        "time_list_query=0",
        "show_live_replay_strategy=1",
    ):
        assert f"&{param}&" in first_url
    assert "&publish_video_strategy_type=2&" in first_url and "&whale_cut_token=&" in first_url
    assert f"&sec_user_id={account.sec_uid}&max_cursor=0&" in first_url and "&count=18&" in first_url
    assert "&msToken=" in first_url and "&a_bogus=" in first_url.rpartition("&msToken=")[2]
    assert f"&max_cursor={first['max_cursor']}&" in posts[1][0]
    assert len(profiles) == 1 and profiles[0]["user"]["sec_uid"] == account.sec_uid
    assert site.stats["douyin.api_rejected"] == rejected
    # The page's own signed URL, copied into a plain HTTP client without the page's cookies.
    assert (await fetch(site, first_url, f"msToken={MS_TOKEN}"))[::2] == (200, b"")
    assert site.stats["douyin.api_rejected"] == rejected + 1


@pytest.mark.browser
async def test_browser_private_and_missing_profiles(site: FixtureSite, chromium: Any) -> None:
    context = await chromium.new_context(user_agent=DESKTOP_UA)
    page = await context.new_page()
    for platform, role, marker in (
        ("douyin", "private", "[data-e2e=user-private]"),
        ("douyin", "missing", "[data-e2e=user-notice]"),
        ("tiktok", "private", "[data-e2e=user-private]"),
    ):
        account = site.dataset.account(platform, role)
        path = "/api/post/item_list/" if platform == "tiktok" else "/aweme/v1/web/aweme/post/"
        async with page.expect_response(lambda r, p=path: p in r.url) as info:
            await page.goto(account.profile_url)
        body = json.loads(await (await info.value).text())
        assert body.get("itemList", body.get("aweme_list")) == []
        await page.wait_for_selector(marker)
    await page.goto(site.dataset.account("tiktok", "missing").profile_url)
    await page.wait_for_selector("#app[data-hydrated]")
    assert await page.locator("[data-e2e=user-post-item-list]").count() == 0
    await context.close()
