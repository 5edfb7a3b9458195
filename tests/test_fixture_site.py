"""The fixture site answers like the real platforms, over https, by the real hostnames.

HTTP tests go through ``scraper.http.platform_http_session`` with the site's host mapping and
CA; browser tests drive the real Chromium with ``site.browser_args()`` and prove that only the
page's own JavaScript can pass the Douyin challenge and sign the detail request.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from cryptography import x509

from fixtures.dataset import Item
from fixtures.shapes_tiktok_mobile import mobile_layout
from fixtures.signing import a_bogus, a_bogus_valid, ac_signature, ac_signature_valid, make_ac_nonce
from fixtures.site import FixtureSite
from scraper.hosts import ALL_DOMAINS
from scraper.http import platform_http_session
from tests.chromium import bare_chromium

DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
MOBILE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
HYDRATION = re.compile(
    r'<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__" type="application/json">(.*?)</script>'
)


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[FixtureSite]:
    async with FixtureSite() as running:
        yield running


def client(site: FixtureSite, ua: str = DESKTOP_UA) -> aiohttp.ClientSession:
    return platform_http_session(map_to=site.address, ca_file=site.ca_pem_path, headers={"User-Agent": ua})


async def get(site: FixtureSite, url: str, ua: str = DESKTOP_UA) -> tuple[int, dict[str, Any], str]:
    async with client(site, ua) as http, http.get(url, allow_redirects=False) as response:
        return response.status, {"headers": response.headers}, await response.text()


def scope_of(html: str) -> dict[str, Any]:
    match = HYDRATION.search(html)
    assert match, "no hydration script"
    return json.loads(match.group(1))["__DEFAULT_SCOPE__"]


def pick(site: FixtureSite, platform: str, **want: Any) -> Item:
    return next(
        i
        for i in site.dataset.items(platform)
        if all(getattr(i, k) == v for k, v in want.items()) and i.author.state == "public"
    )


# --- TLS ----------------------------------------------------------------------------------


def test_leaf_certificate_covers_every_platform_domain(site: FixtureSite) -> None:
    ca = x509.load_pem_x509_certificate(site.ca_pem_path.read_bytes())
    assert ca.subject
    assert site.spki_sha256.endswith("=") and len(site.spki_sha256) == 44
    args = site.browser_args()
    assert args[0].startswith("--host-resolver-rules=") and f"MAP *.douyin.com {site.address}" in args[0]
    assert args[1] == "--ignore-certificate-errors-spki-list=" + site.spki_sha256
    from fixtures.tls import certificate_names

    names = certificate_names()
    for domain in ALL_DOMAINS:
        assert domain in names and f"*.{domain}" in names


# --- TikTok -------------------------------------------------------------------------------


async def test_tiktok_video_page_carries_the_item_in_page_form(site: FixtureSite) -> None:
    item = pick(site, "tiktok", kind="video", state="public", pinned=False)
    async with client(site) as http, http.get(item.url) as response:
        html = await response.text()
        set_cookies = {h.split("=", 1)[0]: h for h in response.headers.getall("Set-Cookie")}
    assert response.status == 200
    assert "\\u002F" in html and "https:\\u002F\\u002Fv16-webapp-prime.tiktok.com" in html
    scope = scope_of(html)
    assert next(iter(scope)) == "webapp.app-context"
    assert scope["seo.abtest"]["canonical"] == item.url
    detail = scope["webapp.video-detail"]
    assert (detail["statusCode"], detail["statusMsg"]) == (0, "ok")
    struct = detail["itemInfo"]["itemStruct"]
    assert struct["id"] == item.id and struct["desc"] == item.title
    assert struct["createTime"] == str(item.create_ts)
    assert struct["stats"]["diggCount"] == item.likes and struct["stats"]["collectCount"] == str(
        item.collects
    )
    assert struct["statsV2"]["playCount"] == str(item.plays)
    assert (
        struct["author"]["uniqueId"] == item.author.handle
        and struct["author"]["secUid"] == item.author.sec_uid
    )
    assert struct["music"]["title"] == item.music.title
    video = struct["video"]
    assert video["duration"] == item.duration and (video["width"], video["height"]) == (
        item.width,
        item.height,
    )
    assert "lr=unwatermarked" in video["playAddr"] and "lr=tiktok_m" in video["downloadAddr"]
    assert video["playAddr"].endswith("tk=tt_chain_token")
    expire = int(re.search(r"expire=(\d+)", video["playAddr"]).group(1))
    assert abs(expire - (time.time() + 6 * 3600)) < 120
    assert video["bitrateInfo"][0]["PlayAddr"]["UrlList"][0] == video["playAddr"]
    assert {"tt_chain_token", "ttwid", "tt_csrf_token", "msToken"} <= set(set_cookies)
    assert (
        "domain=.tiktok.com" in set_cookies["tt_chain_token"] and "httponly" in set_cookies["tt_chain_token"]
    )


async def test_tiktok_photo_post_has_image_post(site: FixtureSite) -> None:
    item = pick(site, "tiktok", kind="photo", state="public")
    status, _, html = await get(site, item.url)
    struct = scope_of(html)["webapp.video-detail"]["itemInfo"]["itemStruct"]
    assert status == 200
    assert len(struct["imagePost"]["images"]) == item.images
    assert struct["video"]["playAddr"] == "" and struct["video"]["duration"] == 0
    assert "~tplv-photomode-image.jpeg" in struct["imagePost"]["images"][0]["imageURL"]["urlList"][0]


async def test_tiktok_status_codes(site: FixtureSite) -> None:
    deleted = pick(site, "tiktok", state="deleted")
    private = pick(site, "tiktok", state="private")
    of_private = site.dataset.account("tiktok", "private").items[0]
    cases = {
        f"https://www.tiktok.com/@_/video/{deleted.id}": 10204,
        "https://www.tiktok.com/@nobody/video/7000000000000000001": 10204,
        f"https://www.tiktok.com/@_/video/{private.id}": 10216,
        f"https://www.tiktok.com/@{of_private.author.handle}/video/{of_private.id}": 10222,
    }
    for url, code in cases.items():
        status, _, html = await get(site, url)
        detail = scope_of(html)["webapp.video-detail"]
        assert status == 200 and detail["statusCode"] == code, url
        assert detail["itemInfo"] == {}
    _, _, html = await get(site, f"https://www.tiktok.com/@whoever/video/{deleted.id}")
    assert scope_of(html)["webapp.video-detail"]["statusMsg"] == "item doesn't exist"
    item = pick(site, "tiktok", kind="video", state="public")
    _, _, html = await get(site, f"https://www.tiktok.com/@_/video/{item.id}")
    assert scope_of(html)["webapp.video-detail"]["itemInfo"]["itemStruct"]["id"] == item.id


ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36"
)
API_DATA = re.compile(r'<script id="api-data" type="application/json">(.*?)</script>')


def mobile_post(site: FixtureSite, kind: str, layout: str, state: str = "public") -> Item:
    return next(
        i
        for i in site.dataset.items("tiktok")
        if (i.kind, i.state, i.author.state) == (kind, state, "public")
        and mobile_layout(i.id, kind) == layout
    )


async def test_tiktok_mobile_ua_gets_the_2026_api_data_layout(site: FixtureSite) -> None:
    """Photo posts (and half the videos): reflow settings in the scope, the post in ``api-data``."""
    photo = mobile_post(site, "photo", "api-data")
    served = site.stats["tiktok.mobile_page.api-data"]
    status, _, html = await get(site, photo.url, MOBILE_UA)
    scope = scope_of(html)
    assert status == 200 and site.stats["tiktok.mobile_page.api-data"] == served + 1
    assert (
        scope["webapp.app-context"]["appId"] == 1180
        and scope["webapp.sharing.ssrVersion"] == "photo-original"
    )
    assert not {"webapp.video-detail", "webapp.reflow.video.detail", "webapp.a-b"} & set(scope)
    assert "webapp.reflow.video.strategy" in scope and scope["seo.abtest"]["canonical"] == photo.url
    api = json.loads(API_DATA.search(html).group(1))  # type: ignore[union-attr]
    assert list(api) == ["videoDetail", "commentList"] and api["commentList"]["total"] == photo.comments
    detail = api["videoDetail"]
    assert (detail["statusCode"], detail["statusMessage"]) == (0, "")
    struct = detail["itemInfo"]["itemStruct"]
    assert struct["id"] == photo.id and "statsV2" not in struct and "isPinnedItem" not in struct
    assert struct["stats"]["collectCount"] == photo.collects  # an int on the mobile page
    assert len(struct["imagePost"]["images"]) == photo.images and struct["video"]["playAddr"] == ""
    assert struct["author"]["followerCount"] == photo.author.followers
    video = mobile_post(site, "video", "api-data")
    _, _, html = await get(site, video.url, ANDROID_UA)
    struct = json.loads(API_DATA.search(html).group(1))["videoDetail"]["itemInfo"]["itemStruct"]  # type: ignore[union-attr]
    assert scope_of(html)["webapp.sharing.ssrVersion"] == "video-original" and "imagePost" not in struct
    assert struct["video"]["duration"] == video.duration and struct["video"]["bitrateInfo"]
    gone = mobile_post(site, "video", "api-data", state="deleted")
    _, _, html = await get(site, gone.url, MOBILE_UA)
    detail = json.loads(API_DATA.search(html).group(1))["videoDetail"]  # type: ignore[union-attr]
    assert detail == {"statusCode": 10204, "statusMessage": "item doesn't exist", "itemInfo": {}}


async def test_tiktok_mobile_ua_gets_the_reflow_layout(site: FixtureSite) -> None:
    video = mobile_post(site, "video", "reflow")
    _, _, html = await get(site, video.url, MOBILE_UA)
    scope = scope_of(html)
    assert "api-data" not in html and "webapp.sharing.ssrVersion" not in scope
    assert scope["webapp.reflow.global.shareUser"]["statusCode"] != 0  # no sharer in our URLs
    detail = scope["webapp.reflow.video.detail"]
    assert (detail["statusCode"], detail["statusMessage"]) == (0, "")
    assert detail["itemInfo"]["itemStruct"]["stats"]["playCount"] == video.plays
    private = mobile_post(site, "video", "reflow", state="private")
    _, _, html = await get(site, private.url, MOBILE_UA)
    detail = scope_of(html)["webapp.reflow.video.detail"]
    assert (detail["statusCode"], detail["itemInfo"]) == (10216, {})
    _, _, desktop = await get(site, video.url)  # the same post, a desktop user agent
    assert "webapp.video-detail" in scope_of(desktop) and "webapp.reflow.video.detail" not in desktop


async def test_tiktok_oembed(site: FixtureSite) -> None:
    item = pick(site, "tiktok", kind="video", state="public")
    status, _, body = await get(site, f"https://www.tiktok.com/oembed?url={item.url}")
    card = json.loads(body)
    assert status == 200 and card["embed_product_id"] == item.id and card["provider_name"] == "TikTok"
    assert (card["author_unique_id"], card["title"]) == (item.author.handle, item.title)
    assert f'cite="{item.url}"' in card["html"]
    status, _, body = await get(site, "https://www.tiktok.com/oembed?url=https://www.tiktok.com/@x/video/1")
    assert status == 400 and json.loads(body)["code"] == 400


async def test_tiktok_home_and_profile_pages(site: FixtureSite) -> None:
    status, _, html = await get(site, "https://www.tiktok.com/")
    assert status == 200 and "webapp.video-detail" not in scope_of(html)
    account = site.dataset.account("tiktok", "big")
    _, _, html = await get(site, account.profile_url)
    user = scope_of(html)["webapp.user-detail"]["userInfo"]["user"]
    assert (user["uniqueId"], user["secUid"], user["id"]) == (account.handle, account.sec_uid, account.uid)
    _, _, html = await get(site, site.dataset.account("tiktok", "missing").profile_url)
    assert scope_of(html)["webapp.user-detail"]["statusCode"] == 10221


async def test_tiktok_short_links_redirect_once_to_the_target(site: FixtureSite) -> None:
    links = [s for s in site.dataset.short_links if s.platform == "tiktok"]
    for link in links:
        status, meta, _ = await get(site, link.url)
        assert status in (301, 302)
        assert meta["headers"]["Location"] == link.location
        assert meta["headers"]["Location"].split("?")[0] == link.target
    for bad in ("https://vm.tiktok.com/ZMnope123/", "https://www.tiktok.com/t/ZTnope123/"):
        status, meta, _ = await get(site, bad)
        assert status in (301, 302) and meta["headers"]["Location"] == "https://www.tiktok.com/?_r=1"
    item = pick(site, "tiktok", kind="video", state="public")
    status, meta, _ = await get(site, f"https://m.tiktok.com/v/{item.id}.html")
    assert (
        status == 301
        and meta["headers"]["Location"] == f"https://www.tiktok.com/@{item.author.handle}/video/{item.id}"
    )


# --- Douyin -------------------------------------------------------------------------------


async def test_douyin_short_links(site: FixtureSite) -> None:
    for link in (s for s in site.dataset.short_links if s.platform == "douyin"):
        status, meta, body = await get(site, link.url, MOBILE_UA)
        assert status == 302 and meta["headers"]["Location"] == link.location
        assert body.startswith('<a href="https://www.iesdouyin.com/share/') and "&amp;" in body
        assert body.rstrip().endswith(">Found</a>.")
    status, meta, _ = await get(site, "https://v.douyin.com/zzzzzzzz/")
    assert status == 302 and meta["headers"]["Location"] == "https://www.douyin.com"


async def test_douyin_page_without_cookies_is_the_challenge(site: FixtureSite) -> None:
    item = pick(site, "douyin", kind="video", state="public")
    before = site.stats["douyin.challenge"]
    async with client(site) as http, http.get(item.url) as response:
        html = await response.text()
        nonce = response.cookies["__ac_nonce"].value
    assert response.status == 200
    assert len(nonce) == 21 and nonce.startswith("0")
    assert "location.reload()" in html and "__ac_signature" in html
    assert item.id not in html and item.title not in html
    assert site.stats["douyin.challenge"] == before + 1
    status, _, html = await get(site, f"https://www.douyin.com/jingxuan?modal_id={item.id}")
    assert status == 200 and "RENDER_DATA" not in html and "location.reload()" in html


async def test_douyin_detail_api_without_signature_is_empty(site: FixtureSite) -> None:
    item = pick(site, "douyin", kind="video", state="public")
    base = "https://www.douyin.com/aweme/v1/web/aweme/detail/?device_platform=webapp&aid=6383"
    rejected = site.stats["douyin.api_rejected"]
    for url in (
        f"{base}&channel=channel_pc_web&aweme_id={item.id}",
        f"{base}&msToken=abc&aweme_id={item.id}&a_bogus=Dkdpgh4ZKsQB80",
    ):
        async with client(site) as http:
            http.cookie_jar.update_cookies({"msToken": "abc", "ttwid": "1%7Cforged%7C1%7Cdeadbeef"})
            async with http.get(url) as response:
                assert response.status == 200
                assert await response.read() == b""
    assert site.stats["douyin.api_rejected"] == rejected + 2


def test_signatures_are_bound_to_key_query_and_user_agent() -> None:
    key, other = b"k" * 32, b"o" * 32
    query = "device_platform=webapp&aid=6383&msToken=x&aweme_id=1"
    signed = f"{query}&a_bogus={a_bogus(key, query, DESKTOP_UA)}"
    assert a_bogus_valid(key, signed, DESKTOP_UA)
    assert not a_bogus_valid(other, signed, DESKTOP_UA)
    assert not a_bogus_valid(key, signed, MOBILE_UA)
    assert not a_bogus_valid(key, signed.replace("aweme_id=1", "aweme_id=2"), DESKTOP_UA)
    nonce = make_ac_nonce()
    signature = ac_signature(key, nonce, DESKTOP_UA)
    assert len(signature) == 47 and ac_signature_valid(key, nonce, signature, DESKTOP_UA)
    assert not ac_signature_valid(other, nonce, signature, DESKTOP_UA)
    assert not ac_signature_valid(key, make_ac_nonce(time.time() - 7200), signature, DESKTOP_UA)


async def test_iesdouyin_desktop_ua_redirects_to_the_web_page(site: FixtureSite) -> None:
    video = pick(site, "douyin", kind="video", state="public")
    status, meta, _ = await get(site, f"https://www.iesdouyin.com/share/video/{video.id}/?region=CN")
    assert status == 302
    assert (
        meta["headers"]["Location"] == f"https://www.douyin.com/video/{video.id}?previous_page=app_code_link"
    )
    note = pick(site, "douyin", kind="photo", state="public")
    _, meta, _ = await get(site, f"https://www.iesdouyin.com/share/note/{note.id}/")
    assert meta["headers"]["Location"] == f"https://www.douyin.com/note/{note.id}?previous_page=app_code_link"


def router_data(html: str) -> dict[str, Any]:
    line = next(x for x in html.splitlines() if x.startswith('<script nonce="">window._ROUTER_DATA = '))
    return json.loads(
        line.removeprefix('<script nonce="">window._ROUTER_DATA = ').removesuffix("</script></body></html>")
    )


async def test_iesdouyin_mobile_ua_needs_ttwid_then_serves_router_data(site: FixtureSite) -> None:
    video = pick(site, "douyin", kind="video", state="public")
    note = pick(site, "douyin", kind="photo", state="public")
    deleted = pick(site, "douyin", state="deleted")
    async with client(site, MOBILE_UA) as http:
        async with http.get(f"https://www.iesdouyin.com/share/video/{video.id}/") as first:
            shell = await first.text()
        assert "ttwid" in {c.key for c in http.cookie_jar}
        assert "videoInfoRes" not in shell and "location.reload()" in shell
        async with http.get(
            f"https://www.iesdouyin.com/share/video/{video.id}/?region=CN&from=web_code_link"
        ) as r:
            html = await r.text()
        async with http.get(f"https://www.iesdouyin.com/share/note/{note.id}/") as r:
            note_html = await r.text()
        async with http.get(f"https://www.iesdouyin.com/share/video/{deleted.id}/") as r:
            deleted_html = await r.text()
    assert '"video_(id)\\u002Fpage"' in html and "window._SSR_DATA = " in html
    assert html.splitlines()[-1].startswith('<script nonce="">window._ROUTER_DATA = ')
    page = router_data(html)["loaderData"]["video_(id)/page"]
    res = page["videoInfoRes"]
    assert res["status_code"] == 0 and res["filter_list"] == []
    shared = res["item_list"][0]
    assert shared["aweme_id"] == video.id and shared["desc"] == video.title
    assert "uid" not in shared["author"] and shared["author"]["sec_uid"] == video.author.sec_uid
    assert "play_url" not in shared["music"]
    assert shared["video"]["play_addr"]["url_list"] == [
        f"https://aweme.snssdk.com/aweme/v1/playwm/?video_id={video.video_uri}&ratio=720p&line=0"
    ]
    assert shared["statistics"]["digg_count"] == video.likes
    note_page = router_data(note_html)["loaderData"]["note_(id)/page"]
    assert len(note_page["videoInfoRes"]["item_list"][0]["images"]) == note.images
    gone = router_data(deleted_html)["loaderData"]["video_(id)/page"]["videoInfoRes"]
    assert gone["item_list"] == [] and gone["filter_list"][0]["filter_reason"] == "SYSTEM_ITEM_NOT_EXIST"


async def test_unknown_paths_are_404_and_static_assets_are_served(site: FixtureSite) -> None:
    for url in (
        "https://www.tiktok.com/api/nothing",
        "https://www.douyin.com/nothing/here",
        "https://www.iesdouyin.com/nothing",
        "https://p16-sign-va.tiktokcdn.com/obj/x",
    ):
        status, _, _ = await get(site, url)
        assert status == 404, url
    _, _, html = await get(site, "https://www.tiktok.com/")
    script = re.search(r'src="(https://sf16-website-login\.neutral\.ttwstatic\.com/[^"]+\.js)"', html).group(
        1
    )
    status, meta, body = await get(site, script)
    assert status == 200 and "javascript" in meta["headers"]["Content-Type"] and "__UNIVERSAL_DATA" in body


# --- Real browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def chromium(site: FixtureSite) -> AsyncIterator[Any]:
    async with bare_chromium(site.browser_args()) as launched:
        yield launched


@pytest.mark.browser
async def test_browser_passes_douyin_challenge_and_signs_the_detail_xhr(
    site: FixtureSite, chromium: Any
) -> None:
    item = pick(site, "douyin", kind="video", state="public", pinned=False)
    note = pick(site, "douyin", kind="photo", state="public")
    context = await chromium.new_context(user_agent=DESKTOP_UA, locale="zh-CN")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    rejected = site.stats["douyin.api_rejected"]
    async with page.expect_response(lambda r: "/aweme/v1/web/aweme/detail/" in r.url) as info:
        await page.goto(item.url)
    response = await info.value
    body = json.loads(await response.text())
    assert body["status_code"] == 0 and body["aweme_detail"]["aweme_id"] == item.id
    assert body["aweme_detail"]["desc"] == item.title
    assert response.url.startswith(
        "https://www.douyin.com/aweme/v1/web/aweme/detail/?device_platform=webapp&aid=6383"
    )
    assert "&msToken=" in response.url and f"&aweme_id={item.id}&a_bogus=" in response.url
    await page.wait_for_selector("[data-e2e=video-desc]")
    assert await page.inner_text("[data-e2e=video-desc]") == item.title
    assert site.stats["douyin.api_rejected"] == rejected
    cookies = {c["name"] for c in await context.cookies()}
    assert {"__ac_nonce", "__ac_signature", "ttwid", "msToken"} <= cookies

    # The same signed URL from a context without the page's cookies gets the empty 200.
    stranger = await chromium.new_context(user_agent=DESKTOP_UA)
    replay = await (await stranger.new_page()).goto(response.url)
    assert replay is not None and replay.status == 200 and await replay.body() == b""
    assert site.stats["douyin.api_rejected"] == rejected + 1
    await stranger.close()

    async with page.expect_response(lambda r: "/aweme/v1/web/aweme/detail/" in r.url) as info:
        await page.goto(note.url)
    detail = json.loads(await (await info.value).text())["aweme_detail"]
    assert (detail["aweme_type"], detail["media_type"], len(detail["images"])) == (68, 2, note.images)

    deleted = pick(site, "douyin", state="deleted")
    async with page.expect_response(lambda r: "/aweme/v1/web/aweme/detail/" in r.url) as info:
        await page.goto(f"https://www.douyin.com/video/{deleted.id}")
    gone = json.loads(await (await info.value).text())
    assert gone["aweme_detail"] is None and gone["filter_detail"]["filter_reason"] == "core_dep"

    await page.goto(f"https://www.douyin.com/jingxuan?modal_id={item.id}")
    raw = await page.locator("#RENDER_DATA").text_content()
    assert json.loads(unquote(raw or ""))["app"]["videoDetail"]["awemeId"] == item.id
    assert errors == []
    await context.close()


@pytest.mark.browser
async def test_browser_loads_tiktok_page_with_its_cookies(site: FixtureSite, chromium: Any) -> None:
    item = pick(site, "tiktok", kind="video", state="public")
    context = await chromium.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = await page.goto(item.url)
    assert response is not None and response.status == 200
    await page.wait_for_selector("#app[data-hydrated]")
    assert await page.inner_text("[data-e2e=browse-video-desc]") == item.title
    cookies = {c["name"]: c for c in await context.cookies()}
    assert {"tt_chain_token", "ttwid", "tt_csrf_token", "msToken"} <= set(cookies)
    assert cookies["tt_chain_token"]["domain"] == ".tiktok.com"
    assert errors == []
    await context.close()


@pytest.mark.browser
async def test_browser_mobile_share_page_gets_router_data(site: FixtureSite, chromium: Any) -> None:
    item = pick(site, "douyin", kind="video", state="public")
    context = await chromium.new_context(
        user_agent=MOBILE_UA, is_mobile=True, viewport={"width": 390, "height": 844}
    )
    page = await context.new_page()
    link = next(s for s in site.dataset.short_links if s.platform == "douyin" and s.item_id)
    await page.goto(link.url)
    await page.wait_for_function("() => window._ROUTER_DATA !== undefined")
    data = await page.evaluate("() => window._ROUTER_DATA.loaderData")
    res = next(v for k, v in data.items() if k.endswith("/page"))["videoInfoRes"]
    assert res["item_list"][0]["aweme_id"] == link.item_id
    assert page.url.startswith("https://www.iesdouyin.com/share/")
    await page.goto(f"https://www.iesdouyin.com/share/video/{item.id}/")
    assert await page.evaluate("() => window._ROUTER_DATA.loaderData['video_(id)/page'].itemId") == item.id
    await context.close()


@pytest.mark.browser
@pytest.mark.parametrize(("kind", "layout"), [("photo", "api-data"), ("video", "reflow")])
async def test_browser_hydrates_the_mobile_page(
    site: FixtureSite, chromium: Any, kind: str, layout: str
) -> None:
    """The mobile bundle (``static/tiktok/sharing.js``) renders the post from either layout."""
    item = mobile_post(site, kind, layout)
    context = await chromium.new_context(
        user_agent=MOBILE_UA, is_mobile=True, has_touch=True, viewport={"width": 390, "height": 844}
    )
    try:
        page = await context.new_page()
        await page.goto(item.url)
        await page.wait_for_selector('#app[data-hydrated="1"]', timeout=10_000)
        assert await page.text_content('[data-e2e="video-author-uniqueid"]') == item.author.handle
        assert await page.text_content('[data-e2e="like-count"]') == str(item.likes)
        if kind == "photo":
            assert await page.text_content('[data-e2e="photo-count"]') == str(item.images)
    finally:
        await context.close()
