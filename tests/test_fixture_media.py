"""The fixture site's media CDNs hand out real files only to a client that behaves like the session
that parsed the item: TikTok wants the page's ``tt_chain_token`` cookie, a tiktok.com Referer and a
live signed URL; Douyin's play endpoint redirects to a douyinvod node that wants a douyin.com
Referer and an unexpired path, and sometimes answers a captcha page instead (``site.faults``).
The served bytes are what ``shortvid fixtures show`` lists (``media_sha256``, ``image_sha256`` …).
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

import aiohttp

from fixtures.dataset import Item
from fixtures.media import Media, jpeg_with_marker, mp3_with_marker, mp4_with_marker, video_of
from fixtures.pages.common import Faults
from fixtures.shapes_common import Clock, x_signature
from fixtures.shapes_douyin import aweme_web
from fixtures.signing import media_signature
from fixtures.site import FixtureSite
from fixtures.tls import certificate_names
from scraper.hosts import host_allowed
from scraper.http import platform_http_session
from tests.test_fixture_site import DESKTOP_UA, MOBILE_UA, router_data, scope_of

TT_REFERER = "https://www.tiktok.com/"
DY_REFERER = "https://www.douyin.com/"


def client(site: FixtureSite, ua: str = DESKTOP_UA) -> aiohttp.ClientSession:
    return platform_http_session(map_to=site.address, ca_file=site.ca_pem_path, headers={"User-Agent": ua})


def pick(site: FixtureSite, platform: str, kind: str) -> Item:
    return next(
        i
        for i in site.dataset.items(platform)
        if i.kind == kind and i.state == "public" and i.author.state == "public"
    )


def truth(site: FixtureSite, item: Item) -> dict[str, Any]:
    """The item's entry in the dataset document (``shortvid fixtures show``)."""
    doc = site.dataset.to_json()
    return next(i for a in doc["accounts"] for i in a["items"] if i["url"] == item.url)


async def fetch(
    http: aiohttp.ClientSession, url: str, referer: str | None = None, **headers: str
) -> tuple[int, Any, bytes]:
    if referer:
        headers["Referer"] = referer
    async with http.get(url, headers=headers, allow_redirects=False) as response:
        return response.status, response.headers, await response.read()


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def tiktok_struct(http: aiohttp.ClientSession, item: Item) -> dict[str, Any]:
    """The itemStruct of the item's page (the visit also leaves the page's cookies in ``http``)."""
    async with http.get(item.url) as response:
        html = await response.text()
    return scope_of(html)["webapp.video-detail"]["itemInfo"]["itemStruct"]


# --- TikTok ---------------------------------------------------------------------------------


async def test_tiktok_video_needs_the_page_cookie_a_referer_and_a_live_signature(site: FixtureSite) -> None:
    item = pick(site, "tiktok", "video")
    facts = truth(site, item)
    forbidden = site.stats["tiktok.media_forbidden"]
    async with client(site) as stranger:
        struct = await tiktok_struct(stranger, item)
    video = struct["video"]
    play = video["playAddr"]
    async with client(site) as http:
        status, headers, _ = await fetch(http, play, item.url)
        assert status == 403 and headers["Content-Type"].startswith("text/plain")  # no tt_chain_token
        http.cookie_jar.update_cookies({"tt_chain_token": "dV4Ot+x2FaWphIoq1+P2fQ=="})
        assert (await fetch(http, play, item.url))[0] == 403  # a token this site never issued
        http.cookie_jar.clear()
        await tiktok_struct(http, item)
        assert "tt_chain_token" in {c.key for c in http.cookie_jar}
        assert (await fetch(http, play))[0] == 403  # no Referer
        assert (await fetch(http, play, "https://www.douyin.com/"))[0] == 403

        path = re.search(r"https://[^/]+(/[^?]+)", play).group(1)
        past = int(time.time()) - 60
        key = site.secrets.server_key
        expired = re.sub(r"expire=\d+", f"expire={past}", play)
        expired = re.sub(r"signature=\w+", f"signature={media_signature(key, path, past)}", expired)
        assert (await fetch(http, expired, item.url))[0] == 403
        tampered = re.sub(r"signature=(\w)", lambda m: "signature=" + "0f"[m.group(1) == "0"], play)
        assert (await fetch(http, tampered, item.url))[0] == 403
        assert site.stats["tiktok.media_forbidden"] == forbidden + 6

        status, headers, body = await fetch(http, play, item.url)
        assert status == 200 and headers["Content-Type"] == "video/mp4"
        assert int(headers["Content-Length"]) == len(body) == facts["media_size"]
        assert body[4:8] == b"ftyp" and sha(body) == facts["media_sha256"] == item.media_sha256
        assert video["bitrateInfo"][0]["PlayAddr"]["DataSize"] == str(len(body))
        other_node = video["bitrateInfo"][0]["PlayAddr"]["UrlList"][1]
        assert other_node.startswith("https://v19-webapp-prime.tiktok.com/")
        assert (await fetch(http, other_node, item.url))[2] == body

        status, _, marked = await fetch(http, video["downloadAddr"], item.url)
        assert status == 200 and marked[4:8] == b"ftyp"
        assert marked != body and sha(marked) == facts["media_watermarked_sha256"]


async def test_media_answers_ranges_and_head(site: FixtureSite) -> None:
    item = pick(site, "tiktok", "video")
    async with client(site) as http:
        play = (await tiktok_struct(http, item))["video"]["playAddr"]
        whole = (await fetch(http, play, item.url))[2]
        size = len(whole)
        for asked, first, last in (
            ("bytes=4-7", 4, 7),
            ("bytes=100-", 100, size - 1),
            ("bytes=-10", size - 10, size - 1),
        ):
            status, headers, part = await fetch(http, play, item.url, Range=asked)
            assert status == 206 and headers["Content-Range"] == f"bytes {first}-{last}/{size}"
            assert part == whole[first : last + 1] and int(headers["Content-Length"]) == len(part)
        status, headers, _ = await fetch(http, play, item.url, Range=f"bytes={size}-")
        assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
        async with http.head(play, headers={"Referer": item.url}) as response:
            assert response.status == 200 and response.headers["Content-Type"] == "video/mp4"
            assert (
                int(response.headers["Content-Length"]) == size
                and response.headers["Accept-Ranges"] == "bytes"
            )
            assert await response.read() == b""


async def test_tiktok_photo_images_and_music(site: FixtureSite) -> None:
    item = pick(site, "tiktok", "photo")
    facts = truth(site, item)
    assert facts["media_sha256"] is None and facts["media_size"] is None
    async with client(site) as http:
        struct = await tiktok_struct(http, item)
        images = struct["imagePost"]["images"]
        assert len(images) == item.images == len(facts["image_sha256"])
        for image, expected in zip(images, facts["image_sha256"], strict=True):
            for url in image["imageURL"]["urlList"]:  # two nodes, one file
                status, headers, body = await fetch(http, url)
                assert status == 200 and headers["Content-Type"] == "image/jpeg"
                assert body.startswith(b"\xff\xd8\xff") and sha(body) == expected
        assert len(set(facts["image_sha256"])) == item.images

        url = images[0]["imageURL"]["urlList"][0]
        path = re.search(r"https://[^/]+/([^?]+)", url).group(1)
        past = int(time.time()) - 60
        signature = x_signature(site.secrets.server_key, path, past)
        expired = f"{url.split('?')[0]}?x-expires={past}&x-signature={signature}"
        assert (await fetch(http, expired))[0] == 403
        assert (await fetch(http, url.replace("x-signature=", "x-signature=A")))[0] == 403

        status, headers, cover = await fetch(http, struct["video"]["cover"])
        assert status == 200 and cover.startswith(b"\xff\xd8\xff")
        status, headers, sound = await fetch(http, struct["music"]["playUrl"])
        assert status == 200 and headers["Content-Type"] == "audio/mpeg"
        assert sound.startswith(b"ID3") and sha(sound) == facts["music_sha256"]


# --- Douyin ---------------------------------------------------------------------------------


async def share_item(site: FixtureSite, item: Item) -> dict[str, Any]:
    """The reduced item of the mobile share page (the first visit only gets the ttwid cookie)."""
    kind = "note" if item.kind == "photo" else "video"
    url = f"https://www.iesdouyin.com/share/{kind}/{item.id}/"
    async with client(site, MOBILE_UA) as http:
        for _ in range(2):
            async with http.get(url) as response:
                html = await response.text()
    return router_data(html)["loaderData"][f"{kind}_(id)/page"]["videoInfoRes"]["item_list"][0]


async def test_douyin_play_redirects_to_a_cdn_that_wants_referer_and_a_live_path(site: FixtureSite) -> None:
    item = pick(site, "douyin", "video")
    facts = truth(site, item)
    playwm = (await share_item(site, item))["video"]["play_addr"]["url_list"][0]
    assert playwm.startswith("https://aweme.snssdk.com/aweme/v1/playwm/?video_id=")
    play = playwm.replace("/playwm/", "/play/").replace("ratio=720p", "ratio=1080p")
    async with client(site) as http:
        status, headers, _ = await fetch(http, play)
        assert status == 302
        cdn = headers["Location"]
        found = re.fullmatch(
            r"https://v26-web\.douyinvod\.com/([0-9a-f]{32})/([0-9a-f]{8})(/video/tos/cn/[^?]+)\?.+", cdn
        )
        assert found and 0 < int(found.group(2), 16) - time.time() <= 3600

        status, headers, body = await fetch(http, cdn)
        assert status == 403 and headers["X-CCDN-FORBID-CODE"] == "020200"
        past = int(time.time()) - 60
        signature = media_signature(site.secrets.server_key, "v26-web.douyinvod.com", found.group(3), past)
        expired = cdn.replace(found.group(1), signature).replace(f"/{found.group(2)}/", f"/{past:08x}/")
        status, headers, _ = await fetch(http, expired, DY_REFERER)
        assert status == 403 and "X-CCDN-FORBID-CODE" not in headers
        assert (await fetch(http, cdn.replace(found.group(1), "0" * 32), DY_REFERER))[0] == 403

        status, headers, body = await fetch(http, cdn, DY_REFERER)
        assert status == 200 and headers["Content-Type"] == "video/mp4"
        assert int(headers["Content-Length"]) == facts["media_size"] == len(body)
        assert body[4:8] == b"ftyp" and sha(body) == facts["media_sha256"]

        status, headers, _ = await fetch(http, playwm)
        status, _, marked = await fetch(http, headers["Location"], DY_REFERER + f"video/{item.id}")
        assert status == 200 and marked[4:8] == b"ftyp"
        assert marked != body and sha(marked) == facts["media_watermarked_sha256"]

        async with http.get(
            play, headers={"Referer": DY_REFERER}
        ) as response:  # followed, as a downloader does
            assert response.status == 200 and sha(await response.read()) == facts["media_sha256"]
        unknown = re.sub(r"video_id=\w+", "video_id=v0200fg10000nothing", play)
        assert (await fetch(http, unknown))[0] == 404


async def test_douyin_web_api_media_urls_serve_the_same_file(site: FixtureSite) -> None:
    item = pick(site, "douyin", "video")
    video = aweme_web(item, site.secrets.server_key, Clock.current())["video"]
    assert video["play_addr"]["data_size"] == video_of(item).size
    async with client(site) as http:
        for rate in video["bit_rate"]:
            direct, _second, fallback = rate["play_addr"]["url_list"]
            status, _, body = await fetch(http, direct, DY_REFERER)
            assert status == 200 and sha(body) == item.media_sha256
            status, headers, _ = await fetch(http, fallback)
            assert status == 302 and ".douyinvod.com/" in headers["Location"]


async def test_douyin_cdn_captcha_fault(site: FixtureSite) -> None:
    item = pick(site, "douyin", "video")
    async with client(site) as http:
        play = f"https://www.douyin.com/aweme/v1/play/?video_id={item.video_uri}&ratio=1080p&line=0"
        cdn = (await fetch(http, play))[1]["Location"]
        captchas = site.stats["douyin.media_captcha"]
        site.faults.media_captcha_next = 1
        try:
            async with http.head(cdn, headers={"Referer": DY_REFERER}) as response:  # HEAD never gets it
                assert response.headers["Content-Type"] == "video/mp4"
            status, headers, page = await fetch(http, cdn, DY_REFERER)
            assert status == 200 and headers["Content-Type"].startswith("text/html")
            text = page.decode()
            assert "<title>验证码中间页</title>" in text and "TTGCaptcha" in text and page[4:8] != b"ftyp"
            assert site.faults.media_captcha_next == 0
            status, headers, body = await fetch(http, cdn, DY_REFERER)
            assert status == 200 and sha(body) == item.media_sha256
        finally:
            site.faults.media_captcha_next = 0
        assert site.stats["douyin.media_captcha"] == captchas + 1


def test_captcha_rate_is_seeded() -> None:
    def draws(faults: Faults) -> list[bool]:
        return [faults.media_captcha() for _ in range(200)]

    first = draws(Faults(media_captcha_rate=0.3, seed=7))
    assert first == draws(Faults(media_captcha_rate=0.3, seed=7))
    assert 20 < sum(first) < 100
    assert first != draws(Faults(media_captcha_rate=0.3, seed=8))
    assert not any(draws(Faults()))


async def test_douyin_note_images_watermarks_and_music(site: FixtureSite) -> None:
    item = pick(site, "douyin", "photo")
    facts = truth(site, item)
    aweme = aweme_web(item, site.secrets.server_key, Clock.current())
    async with client(site) as http:
        for image, expected in zip(aweme["images"], facts["image_sha256"], strict=True):
            assert any(".webp?" in u for u in image["url_list"])
            for url in image["url_list"]:  # webp-named and jpeg-named nodes: the same JPEG
                status, headers, body = await fetch(http, url)
                assert status == 200 and headers["Content-Type"] == "image/jpeg" and sha(body) == expected
            status, _, marked = await fetch(http, image["download_url_list"][0])
            assert status == 200 and marked.startswith(b"\xff\xd8\xff") and sha(marked) != expected
        url = aweme["images"][0]["url_list"][0]
        stale = re.sub(r"x-expires=\d+", f"x-expires={int(time.time()) - 60}", url)
        assert (await fetch(http, stale))[0] == 403
        status, headers, sound = await fetch(http, aweme["music"]["play_url"]["url_list"][0])
        assert status == 200 and headers["Content-Type"] == "audio/mpeg"
        assert (
            sha(sound)
            == facts["music_sha256"]
            == sha((await fetch(http, aweme["video"]["play_addr"]["url_list"][1]))[2])
        )
        status, _, avatar = await fetch(http, aweme["author"]["avatar_thumb"]["url_list"][0])
        assert status == 200 and avatar.startswith(b"\xff\xd8\xff")


# --- Files and the dataset ------------------------------------------------------------------


def test_served_files_are_valid_and_distinct(site: FixtureSite) -> None:
    videos = [i for i in site.dataset.items() if i.kind == "video"]
    assert len({i.media_sha256 for i in videos}) == len(videos)
    clean, marked = video_of(videos[0]), video_of(videos[0], "watermarked")
    assert clean.body[4:8] == marked.body[4:8] == b"ftyp" and clean.base != marked.base
    assert (
        clean.body.endswith(clean.marker.encode())
        and clean.body[-len(clean.marker) - 4 : -len(clean.marker)] == b"free"
    )
    assert 1_000 < clean.size < 20_000
    photo = Media("image", "douyin", "1", index=2)
    assert photo.body.startswith(b"\xff\xd8\xff\xe0") and photo.marker.encode() in photo.body
    assert jpeg_with_marker(b"\xff\xd8\xff\xdb..", "m") == b"\xff\xd8\xff\xfe\x00\x03m\xff\xdb.."
    assert mp4_with_marker(b"", "ab") == b"\x00\x00\x00\x0afreeab"
    assert mp3_with_marker(b"", "m")[:10] == b"ID3\x03\x00\x00\x00\x00\x00\x15"


def test_dataset_document_lists_the_media_truth(site: FixtureSite) -> None:
    doc = site.dataset.to_json()
    items = [i for a in doc["accounts"] for i in a["items"]]
    for entry in items:
        assert {
            "media_sha256",
            "media_size",
            "media_watermarked_sha256",
            "image_sha256",
            "music_sha256",
        } <= set(entry)
        if entry["kind"] == "photo":
            assert entry["media_sha256"] is None and len(entry["image_sha256"]) == entry["images"] >= 2
        else:
            assert (
                len(entry["media_sha256"]) == 64 and entry["media_size"] > 0 and entry["image_sha256"] == []
            )
            assert entry["media_watermarked_sha256"] != entry["media_sha256"]
    assert site.dataset.to_json() == doc


def test_every_media_host_is_served_and_covered_by_the_certificate(site: FixtureSite) -> None:
    names = certificate_names()
    hosts = {
        "v16-webapp-prime.tiktok.com",
        "v19-webapp-prime.tiktok.com",
        "p16-sign-va.tiktokcdn.com",
        "p16-common-sign.tiktokcdn-eu.com",
        "sf16-ies-music-sg.tiktokcdn.com",
        "v26-web.douyinvod.com",
        "v3-dy-o.douyinvod.com",
        "p3-sign.douyinpic.com",
        "sf5-hl-cdn-tos.douyinstatic.com",
        "aweme.snssdk.com",
        "api-play-hl.amemv.com",
    }
    for host in hosts:
        parent = host.split(".", 1)[1]
        assert host_allowed(host) and (host in names or f"*.{parent}" in names), host
