"""``extract_file`` on every real capture in ``../shared/real-captures``, asserting the real values.

The expected values were read out of the captures by hand (jq/python) and are
hard-coded, so a parser that drifts from the real data fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from scraper import outcome, page_data
from scraper.errors import Blocked, LayoutChanged, NotFound, PrivateContent, ScraperError
from scraper.extract import extract_file, extract_json, extract_text, main
from scraper.loader import Capture
from scraper.tiktok import HYDRATION_READY, read_video_page

CAPTURES = Path(__file__).resolve().parents[1].parent / "shared" / "real-captures"

pytestmark = pytest.mark.skipif(not CAPTURES.is_dir(), reason=f"real captures not present at {CAPTURES}")

TIKTOK_PAGE = "tiktok-video-page.Embed-20240610.html"
TIKTOK_HEADERS = "tiktok-video-page.Embed-20240610.response-headers.json"
TIKTOK_OEMBED = "tiktok-oembed.Embed-20240610.json"
DOUYIN_SHARE = "douyin-iesdouyin-share-video-page.verse91-20250812.prettified.html"
DOUYIN_DETAIL = "douyin-web-api-user_post_detail.TikTokDownload-20230804.json"
DOUYIN_DELETED = "douyin-web-api-user_post_delete.TikTokDownload-20230804.json"
DOUYIN_POSTS = "douyin-web-api-user_post_info_video.TikTokDownload-20230804.json"
DOUYIN_PROFILE = "douyin-web-api-user_profile_info.TikTokDownload-20230804.json"
DOUYIN_BASE_INFO = "douyin-web-api-user_base_info.TikTokDownload-20230804.json"
TIKTOK_MOBILE_PHOTO = "tiktok-mobile-photo-page-api-data.Tiktok-Downloader-20260502.html"
TIKTOK_PAGE_2026 = "tiktok-video-page.jarvis-2-20260630.html"
TIKTOK_SIGI_ITEM = "tiktok-sigi-itemmodule-item.TikTok-Api-pr1107-20240124.json"
DOUYIN_SHARE_MINIFIED = "douyin-iesdouyin-share-video-page.bmad-method-knowledge-20251217.html"
TIKTOK_WAF = "tiktok-waf-challenge-page.snaptik-20260330.html"
TIKTOK_CAPTCHA = "tiktok-captcha-security-check-page.tkkstarlink-20260415.html"
DOUYIN_CAPTCHA = "douyin-captcha-middle-page.douyinstream-pro-20260115.html"
BLOCK_PAGES = {TIKTOK_WAF, TIKTOK_CAPTCHA, DOUYIN_CAPTCHA}

COVERED = {
    TIKTOK_MOBILE_PHOTO,
    TIKTOK_PAGE_2026,
    TIKTOK_SIGI_ITEM,
    DOUYIN_SHARE_MINIFIED,
    *BLOCK_PAGES,
    TIKTOK_PAGE,
    TIKTOK_HEADERS,
    TIKTOK_OEMBED,
    DOUYIN_SHARE,
    DOUYIN_DETAIL,
    DOUYIN_DELETED,
    DOUYIN_POSTS,
    DOUYIN_PROFILE,
    DOUYIN_BASE_INFO,
}


def extract(name: str) -> dict[str, Any]:
    return extract_file(CAPTURES / name)


def test_every_capture_has_a_test() -> None:
    """A capture added to the directory must get its own assertions here."""
    data_files = {p.name for p in CAPTURES.iterdir() if p.is_file() and p.name != "README.md"}
    assert data_files == COVERED


@pytest.mark.parametrize("name", sorted(COVERED - {DOUYIN_DELETED} - BLOCK_PAGES))
def test_every_capture_extracts_to_json(name: str) -> None:
    result = extract(name)
    assert json.loads(json.dumps(result)) == result


# --------------------------------------------------------------------------- TikTok


def test_tiktok_video_page() -> None:
    video = extract(TIKTOK_PAGE)
    assert video["platform"] == "tiktok"
    assert video["video_id"] == "6806030056956251397"
    assert video["title"] == "Nuestro #AplausoSanitario más sincero. Para todos. Y recuerda, #QuédateEnCasa"
    assert video["create_time"] == "2020-03-19T21:12:41.000Z"  # createTime "1584652361" (a string)
    assert video["duration"] == 29
    assert (video["width"], video["height"]) == (480, 848)
    assert video["media_type"] == "video"
    assert video["images"] is None
    assert video["is_pinned"] is False
    assert video["share_url"] == "https://www.tiktok.com/@a3noticias/video/6806030056956251397"
    assert video["author"] == {
        "nickname": "Antena 3 Noticias",
        "uid": "6746247246012892166",
        "sec_uid": "MS4wLjABAAAAqaTyU-DgNoRgQUMp8tfU27U3an9hLahx1GiqoE2dVBkcQN2S-2jCJHKMDFpDxFTx",
        "unique_id": "a3noticias",
        "avatar_url": video["author"]["avatar_url"],
    }
    assert "~c5_1080x1080.jpeg" in video["author"]["avatar_url"]  # avatarLarger first
    # collectCount is the string "157" on the page
    assert video["statistics"] == {
        "likes": 12000,
        "comments": 252,
        "shares": 205,
        "plays": 260800,
        "collects": 157,
    }
    assert video["music"] == {
        "title": "Resistiré",
        "author": "Duo Dinamico",
        "url": "https://sf16-ies-music-sg.tiktokcdn.com/obj/tos-alisg-ve-2774/47083aaa5c274ec2904abea9880dfb47",
        "duration": 30,
    }
    assert video["cover_url"].startswith(
        "https://p77-sign-va.tiktokcdn.com/obj/tos-maliva-p-0068/165175e006354d838501378cfb325b79_1584652367?"
    )


def test_tiktok_video_page_download_url_is_the_unwatermarked_h264() -> None:
    video = extract(TIKTOK_PAGE)
    url = video["download_url"]
    assert url.startswith(
        "https://v16-webapp-prime.tiktok.com/video/tos/maliva/tos-maliva-ve-0068c800-us/4487d1102a7743e3b19643a14a73e260/?"
    )
    assert "lr=unwatermarked" in url and "lr=tiktok_m" not in url
    assert url.endswith("&signature=084081fab6a4952177dc23937b7cad6a&tk=tt_chain_token")
    assert video["watermark"] is False
    assert video["download_url_expires_at"] == "2024-06-10T21:59:59.000Z"  # expire=1718056799


def test_tiktok_response_headers_give_the_cookies() -> None:
    result = extract(TIKTOK_HEADERS)
    assert result["status"] == 200
    assert set(result["cookies"]) == {"ttwid", "tt_csrf_token", "tt_chain_token", "msToken", "ak_bmsc"}
    assert result["cookies"]["tt_chain_token"] == "dV4Ot+x2FaWphIoq1+P2fQ=="
    assert result["cookies"]["tt_csrf_token"] == "XHV4LExw-mfjYI5aFnSQ3S4WCQjoDEFngTos"


def test_tiktok_oembed_is_partial() -> None:
    result = extract(TIKTOK_OEMBED)
    assert result["partial"] is True
    assert result["platform"] == "tiktok"
    assert result["video_id"] == "6806030056956251397"
    assert result["title"].startswith("Nuestro #AplausoSanitario")
    assert result["author"] == {"nickname": "Antena 3 Noticias", "unique_id": "a3noticias"}
    assert result["cover_url"].endswith("x-signature=weANzY8AXzX93c5j7jm34neMhWY%3D")
    assert "create_time" not in result and "download_url" not in result


def test_tiktok_mobile_photo_page_reads_the_api_data_script() -> None:
    """2026 mobile layout: the rehydration scope holds only reflow settings; the post is in api-data."""
    html = (CAPTURES / TIKTOK_MOBILE_PHOTO).read_text(encoding="utf-8")
    universal = page_data.tiktok_universal_data(html)
    assert universal is not None
    assert "webapp.reflow.video.detail" not in universal["__DEFAULT_SCOPE__"]
    post = extract(TIKTOK_MOBILE_PHOTO)
    assert post["platform"] == "tiktok"
    assert post["video_id"] == "7631060535387163925"
    assert post["media_type"] == "photo"
    assert post["title"].startswith("With the Blue Archive JP 2.0 main story update dropping today")
    assert post["create_time"] == "2026-04-21T04:12:31.000Z"  # createTime 1776744751
    assert post["share_url"] == "https://www.tiktok.com/@min_stark/photo/7631060535387163925"
    assert post["author"]["unique_id"] == "min_stark"
    assert post["author"]["nickname"] == "スターク•三一ン"
    assert post["author"]["uid"] == "7308604947934954504"
    # stats only (no statsV2 on this page)
    assert post["statistics"] == {
        "likes": 1827,
        "comments": 54,
        "shares": 57,
        "plays": 18100,
        "collects": 520,
    }
    assert post["duration"] == 0 and post["download_url"] is None
    images = post["images"]
    assert len(images) == 7
    assert all("tplv-photomode-image.jpeg" in image["url"] for image in images)
    assert (images[0]["width"], images[0]["height"]) == (1929, 1080)
    assert post["cover_url"] == images[0]["url"]
    assert post["music"]["title"] == "som original"


def test_tiktok_mobile_page_status_message_is_read() -> None:
    """The api-data detail says ``statusMessage`` (not ``statusMsg``): a 10204 must say so."""
    html = (CAPTURES / TIKTOK_MOBILE_PHOTO).read_text(encoding="utf-8")
    gone = json.dumps({"videoDetail": {"statusCode": 10204, "statusMessage": "item doesn't exist"}})
    html = re.sub(
        r'(<script[^>]*id="api-data"[^>]*>).*?(</script>)',
        lambda m: m.group(1) + gone + m.group(2),
        html,
        flags=re.S,
    )
    with pytest.raises(NotFound, match="item doesn't exist"):
        extract_text(html)


def test_tiktok_desktop_page_2026_prefers_exact_stats_v2() -> None:
    video = extract(TIKTOK_PAGE_2026)
    assert video["video_id"] == "7606836476323597588"
    assert video["author"]["unique_id"] == "w..corporation"
    assert video["create_time"] == "2026-02-14T21:30:45.000Z"
    assert (video["duration"], video["width"], video["height"]) == (60, 576, 1024)
    # statsV2 holds the exact counts as strings ("4768"); stats has collectCount as a string too
    assert video["statistics"] == {
        "likes": 32700,
        "comments": 449,
        "shares": 1425,
        "plays": 317100,
        "collects": 4768,
    }
    assert video["download_url"].startswith(
        "https://v16-webapp-prime.tiktok.com/video/tos/alisg/tos-alisg-pve-0037c001/"
    )
    assert video["watermark"] is False
    assert video["download_url_expires_at"] == "2026-07-02T19:18:55.000Z"
    assert video["music"]["title"] == "champagne"


def test_tiktok_sigi_item_module_entry_with_string_author() -> None:
    """An old SIGI ``ItemModule`` entry: ``author`` is the uniqueId string, the rest is flat beside it."""
    video = extract(TIKTOK_SIGI_ITEM)
    assert video["video_id"] == "7235267734261484801"
    assert video["create_time"] == "2023-05-20T14:14:08.000Z"
    assert video["author"]["unique_id"] == "jinguji_ai_"
    assert video["author"]["nickname"] == "神宮寺 藍"
    assert video["author"]["uid"] == "7232706906488439810"
    assert video["author"]["sec_uid"].startswith("MS4wLjABAAAAlL2G-2VybuN3XXQwDBmqY")
    assert video["statistics"] == {
        "likes": 113900,
        "comments": 962,
        "shares": 1075,
        "plays": 3500000,
        "collects": 9082,  # the string "9082"
    }
    assert "lr=unwatermarked" in video["download_url"]
    assert video["download_url_expires_at"] == "2023-10-06T14:37:12.000Z"
    assert (video["duration"], video["width"], video["height"]) == (10, 720, 1280)
    # the same entry inside a SIGI_STATE page reads the same
    item = json.loads((CAPTURES / TIKTOK_SIGI_ITEM).read_text(encoding="utf-8"))
    sigi = {"VideoPage": {"statusCode": 0}, "ItemModule": {item["id"]: item}}
    html = f'<script id="SIGI_STATE" type="application/json">{json.dumps(sigi)}</script>'
    assert extract_text(html) == video


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (TIKTOK_WAF, "WAF proof-of-work challenge"),
        (TIKTOK_CAPTCHA, "TikTok captcha page"),
        (DOUYIN_CAPTCHA, "Douyin captcha page"),
    ],
)
def test_block_pages_are_blocks_not_layout_changes(name: str, reason: str) -> None:
    """A captcha or challenge page is risk control (rotate and retry), never "layout changed"."""
    html = (CAPTURES / name).read_text(encoding="utf-8")
    assert reason in (outcome.block_reason(html) or "")
    with pytest.raises(Blocked, match=reason) as caught:
        extract(name)
    assert caught.value.retryable
    assert outcome.outcome_of(caught.value) is outcome.Outcome.RISK


def test_captcha_pages_fail_fast_but_the_waf_page_may_still_clear() -> None:
    """The loader's watchdog fails at once on a captcha; the PoW page is given time to solve itself."""
    for name in (TIKTOK_CAPTCHA, DOUYIN_CAPTCHA):
        assert outcome.definitive_block((CAPTURES / name).read_text(encoding="utf-8"))
    assert outcome.definitive_block((CAPTURES / TIKTOK_WAF).read_text(encoding="utf-8")) is None


def test_real_data_pages_are_not_taken_for_blocks() -> None:
    """Share pages load the TTGCaptcha SDK too: only the captcha page itself is a block."""
    for name in (TIKTOK_PAGE, TIKTOK_PAGE_2026, TIKTOK_MOBILE_PHOTO, DOUYIN_SHARE):
        assert outcome.definitive_block((CAPTURES / name).read_text(encoding="utf-8")) is None, name


# --------------------------------------------------------------------------- Douyin


def test_douyin_detail() -> None:
    video = extract(DOUYIN_DETAIL)
    assert video["platform"] == "douyin"
    assert video["video_id"] == "7071967230287744267"
    assert video["title"] == "其实早就和你表白过了 在看你的每个眼神里"
    assert video["create_time"] == "2022-03-06T12:44:43.000Z"
    assert video["duration"] == 10  # 9611 ms
    assert (video["width"], video["height"]) == (1080, 1920)
    assert video["author"] == {
        "nickname": "百里TUFU",
        "uid": "3689586767443357",
        "sec_uid": "MS4wLjABAAAAERbHksh_jtLRYjO8hOx9clHF9tJDBsZmhcL0VoPLItYXWg8H0jwYJd3mJOxiIGsU",
        "unique_id": "bailitufu8",
        "avatar_url": "https://p3.douyinpic.com/aweme/100x100/aweme-avatar/"
        "tos-cn-avt-0015_b4a51067e5d3c41d5d7758f14532ace6.webp?from=116350172",
    }
    # play_count is always 0 on the Douyin web API: reported as unknown
    assert video["statistics"] == {
        "likes": 165539,
        "comments": 7343,
        "shares": 23537,
        "plays": None,
        "collects": 3799,
    }
    assert video["music"] == {
        "title": "碑海北的浪漫bgm",
        "author": "碑海北",
        "url": "https://sf86-cdn-tos.douyinstatic.com/obj/ies-music/7049808808016759589.mp3",
        "duration": 22,
    }
    assert video["share_url"].startswith("https://www.iesdouyin.com/share/video/7071967230287744267/")
    assert video["cover_url"].startswith(
        "https://p26-sign.douyinpic.com/tos-cn-p-0015/67d4a42fb52b4b4fbbc1ba2b745e1304~c5_300x400.webp?"
    )
    assert video["is_pinned"] is False


def test_douyin_detail_download_url_is_the_h264_play_addr() -> None:
    """bit_rate[] holds only HEVC (bytevc1) gears here, so play_addr_h264 (822668 bps) wins."""
    video = extract(DOUYIN_DETAIL)
    assert video["download_url"].startswith(
        "https://v11-coldf.douyinvod.com/b455c35a2591845b90973bb72b6db4c9/64ba6dea/video/tos/cn/"
        "tos-cn-ve-15-alinc2/87d10056420d499686ecbd9305594bb9/?"
    )
    assert video["watermark"] is False
    assert video["download_url_expires_at"] == "2023-07-21T11:37:14.000Z"  # 0x64ba6dea in the path


def test_douyin_deleted_detail_raises() -> None:
    """filter_reason "status_self_see" (deleted or owner-only) → the private error, with Douyin's notice."""
    with pytest.raises(PrivateContent) as caught:
        extract(DOUYIN_DELETED)
    assert "status_self_see" in str(caught.value)
    assert "抱歉，作品不见了" in str(caught.value)
    assert "因作品权限或已被删除" in str(caught.value)
    assert not caught.value.retryable


def test_douyin_post_list() -> None:
    page = extract(DOUYIN_POSTS)
    assert page["count"] == 1
    assert page["has_more"] is True  # has_more: 1
    assert page["max_cursor"] == 1689909551000
    (video,) = page["videos"]
    assert video["video_id"] == "7253290037918354691"
    assert video["is_pinned"] is True  # is_top: 1
    assert video["create_time"] == "2023-07-08T04:00:18.000Z"
    assert video["duration"] == 64  # 64043 ms
    assert video["title"].startswith("飞行员跳伞进山寨")
    assert video["author"]["nickname"] == "燃剪Kevin"
    assert video["author"]["uid"] == "96719499963"
    assert video["author"]["sec_uid"] == "MS4wLjABAAAAdBrGekUlNXGPsc8rNnv_jDhN8koyuWDyrU3CrcvzmcQ"
    assert video["author"]["unique_id"] is None  # unique_id and short_id are null in list items
    assert video["statistics"] == {
        "likes": 21705,
        "comments": 48,
        "shares": 63,
        "plays": None,
        "collects": 330,
    }
    assert video["music"]["duration"] == 64
    # the 1080p h264 gear (normal_1080_0, 2251713 bps) of the ladder
    assert video["download_url"].startswith(
        "http://v26-web.douyinvod.com/f09adc21743f08884ebfd18bee2c7757/64ba6b84/"
    )
    assert "br=2198" in video["download_url"]
    assert video["watermark"] is False
    assert video["download_url_expires_at"] == "2023-07-21T11:27:00.000Z"


def test_douyin_profile() -> None:
    result = extract(DOUYIN_PROFILE)
    assert result["author"] == {
        "nickname": "老司机摄影器材",
        "uid": "101881718376",
        "sec_uid": "MS4wLjABAAAA85mPkf3FPVNmf_XTn4xpYrqB7kwPf7N7haPEJrRW8CQ",
        "unique_id": "danfanlaosiji",
        "avatar_url": "https://p3-pc.douyinpic.com/aweme/1080x1080/aweme-avatar/"
        "tos-cn-i-0813_d1dc48cd00f54143999a07a9ef5b83d6.jpeg?from=2956013662",
    }
    assert result["stats"] == {"followers": 298468, "following": 45, "likes": 2305265, "videos": 509}


def test_douyin_user_base_info() -> None:
    result = extract(DOUYIN_BASE_INFO)
    assert result["author"]["nickname"] == "蔓越莓烦恼"
    assert result["author"]["uid"] == "89964046416"
    assert result["author"]["sec_uid"] == "MS4wLjABAAAADgOltsr_SYTX6VurKA1H3n61xlFvYD1y_FrrY1UhI-o"
    assert result["author"]["unique_id"] == "777_23"
    assert result["author"]["avatar_url"].startswith("https://p3.douyinpic.com/aweme/100x100/aweme-avatar/")
    assert result["stats"] == {"followers": None, "following": None, "likes": None, "videos": None}


SHARE_EXPECTED = {
    "video_id": "7525380501322911011",
    "title": "泸沽湖小落水银河星空  #跟着中国国家地理镜收山河 #一起去收集中国限量版地貌  #泸沽湖小落水村",
    "create_time": "2025-07-10T09:19:57.000Z",
    # the share item has no duration (absent in this capture) and no uid
    "duration": 0,
    "width": 3840,
    "height": 2160,
    "download_url": "https://aweme.snssdk.com/aweme/v1/play/?video_id=v0200fg10000d1no9qvog65ikp9k6fr0&ratio=1080p&line=0",
    "watermark": False,
    "download_url_expires_at": None,
    "share_url": "https://www.douyin.com/video/7525380501322911011",
    "statistics": {"likes": 745, "comments": 52, "shares": 76, "plays": None, "collects": 75},
    "music": {
        "title": "@骑驴到西藏创作的原声一骑驴到西藏",
        "author": "骑驴到西藏",
        "url": None,
        "duration": 10,
    },
    "media_type": "video",
}


def test_douyin_share_page_minified_real() -> None:
    """The byte-level minified share page: playwm rewritten to play; no uid; play_count 0 is unknown."""
    video = extract(DOUYIN_SHARE_MINIFIED)
    assert video["platform"] == "douyin"
    assert video["video_id"] == "7582914250524413219"
    assert video["title"] == "从狼窝回来的将军 #唐生明 #人物故事 #硬核深度计划  #内容启发搜索"
    assert video["create_time"] == "2025-12-12T10:20:17.000Z"
    assert video["duration"] == 434
    assert (video["width"], video["height"]) == (1920, 1080)
    assert video["author"]["uid"] is None
    assert video["author"]["unique_id"] == "jiaowojinzhu"
    assert video["author"]["nickname"] == "叫我金主编"
    assert video["statistics"] == {
        "likes": 17899,
        "comments": 347,
        "shares": 236,
        "plays": None,
        "collects": 1300,
    }
    url = video["download_url"]
    assert url.startswith("https://aweme.snssdk.com/aweme/v1/play/?")
    assert "playwm" not in url and "video_id=v0200fg10000d4tunpfog65qkarslveg" in url
    assert video["watermark"] is False
    assert video["share_url"] == "https://www.douyin.com/video/7582914250524413219"


def _check_share_video(video: dict[str, Any]) -> None:
    assert {key: video[key] for key in SHARE_EXPECTED} == SHARE_EXPECTED
    assert video["author"] == {
        "nickname": "骑驴到西藏",
        "uid": None,
        "sec_uid": "MS4wLjABAAAAf6GH6xV2XnnCggpUKUa6ia1yE1VlXUCrsgty1rO4CXA",
        "unique_id": "qilv919",
        "avatar_url": "https://p26.douyinpic.com/aweme/100x100/aweme-avatar/"
        "mosaic-legacy_2ec110006c5f1ac6f0ea4.jpeg?from=327834062",
    }
    assert video["cover_url"].startswith(
        "https://p26-sign.douyinpic.com/tos-cn-i-dy/a7a0136840ec4580ae7bbbd6a9ab065d~"
    )


def test_douyin_share_page_prettified() -> None:
    """playwm (720p, watermarked) is rewritten to play at 1080p."""
    _check_share_video(extract(DOUYIN_SHARE))


def test_douyin_share_page_minified_like_the_server_sends_it() -> None:
    """Re-minify the prettified capture's _ROUTER_DATA onto one line, as the real server sends it."""
    html = (CAPTURES / DOUYIN_SHARE).read_text(encoding="utf-8")
    match = re.search(r"window\._ROUTER_DATA = (\{.*\})\s*</script>", html, re.DOTALL)
    assert match is not None
    minified = json.dumps(json.loads(match.group(1)), ensure_ascii=False, separators=(",", ":"))
    minified = minified.replace("/", "\\u002F")
    page = f'<html><body><script nonce="">window._ROUTER_DATA = {minified}</script></body></html>'
    _check_share_video(extract_text(page, name="minified.html"))


# --------------------------------------------------------------------------- detection and CLI


def _real_tiktok_item() -> dict[str, Any]:
    html = (CAPTURES / TIKTOK_PAGE).read_text(encoding="utf-8")
    data = page_data.tiktok_universal_data(html)
    assert data is not None
    item: dict[str, Any] = data["__DEFAULT_SCOPE__"]["webapp.video-detail"]["itemInfo"]["itemStruct"]
    return item


def test_other_tiktok_forms_of_the_real_item_are_detected() -> None:
    """The same real itemStruct as /api/item/detail/, item_list, SIGI_STATE page and bare scope JSON."""
    item = _real_tiktok_item()
    api = {"itemInfo": {"itemStruct": item}, "statusCode": 0, "status_code": 0}
    assert extract_text(json.dumps(api))["video_id"] == "6806030056956251397"
    listing = {
        "cursor": "31865",
        "hasMore": False,
        "itemList": [{**item, "isPinnedItem": True}],
        "statusCode": 0,
    }
    page = extract_text(json.dumps(listing))
    assert (page["count"], page["cursor"], page["has_more"]) == (1, 31865, False)
    assert page["videos"][0]["is_pinned"] is True
    sigi = {"VideoPage": {"statusCode": 0}, "ItemModule": {item["id"]: item}}
    sigi_html = f'<script id="SIGI_STATE" type="application/json">{json.dumps(sigi)}</script>'
    assert extract_text(sigi_html)["statistics"]["collects"] == 157
    scope = {
        "__DEFAULT_SCOPE__": {"webapp.video-detail": {"statusCode": 0, "itemInfo": {"itemStruct": item}}}
    }
    assert extract_text(json.dumps(scope))["duration"] == 29


def test_tiktok_profile_page_is_detected() -> None:
    detail = {
        "statusCode": 0,
        "userInfo": {"user": {"id": "1", "uniqueId": "nasa", "nickname": "NASA"}, "stats": {"videoCount": 5}},
    }
    html = (
        '<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__" type="application/json">'
        f"{json.dumps({'__DEFAULT_SCOPE__': {'webapp.user-detail': detail}})}</script>"
    )
    result = extract_text(html)
    assert result["author"]["unique_id"] == "nasa"
    assert result["stats"]["videos"] == 5


def test_douyin_render_data_page_is_detected() -> None:
    """The real detail aweme, served the RENDER_DATA way (URL-encoded, app.videoDetail)."""
    aweme = json.loads((CAPTURES / DOUYIN_DETAIL).read_text(encoding="utf-8"))["aweme_detail"]
    encoded = quote(json.dumps({"app": {"videoDetail": aweme}}, ensure_ascii=False))
    html = f'<script id="RENDER_DATA" type="application/json">{encoded}</script>'
    assert extract_text(html) == extract(DOUYIN_DETAIL)
    deleted = quote(json.dumps({"app": {"videoDetail": None}}))
    with pytest.raises(NotFound):
        extract_text(f'<script id="RENDER_DATA" type="application/json">{deleted}</script>')


def test_unrecognized_json_and_html() -> None:
    with pytest.raises(LayoutChanged, match=r"unrecognized file: x\.json"):
        extract_text('{"hello": "world"}', name="x.json")
    with pytest.raises(LayoutChanged, match=r"unrecognized file: x\.html"):
        extract_text("<html><body>Please wait...</body></html>", name="x.html")
    with pytest.raises(LayoutChanged, match="unrecognized file"):
        extract_text("", name="empty")


def test_bare_error_envelopes_raise() -> None:
    with pytest.raises(ScraperError) as caught:
        extract_text('{"status_code": 4, "status_msg": "啊哦，服务器打瞌睡了，再试一次吧～"}')
    assert caught.value.retryable
    with pytest.raises(NotFound):
        extract_text('{"statusCode": 10204, "statusMsg": "item doesn\'t exist"}')


def test_cli_prints_json_and_fails_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CAPTURES / DOUYIN_DETAIL)]) == 0
    assert json.loads(capsys.readouterr().out)["video_id"] == "7071967230287744267"
    assert main([str(CAPTURES / DOUYIN_DELETED)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: private: ") and err.count("\n") == 1


# --------------------------------------------------------------------------- real items in other layouts
# Each payload below wraps real items of the captures in a layout we have no byte capture of
# (their shapes: ../shared/platforms.md and the sources cited in scraper/shapes/).


def _real_photo_item() -> dict[str, Any]:
    html = (CAPTURES / TIKTOK_MOBILE_PHOTO).read_text(encoding="utf-8")
    data = page_data.tiktok_api_data(html)
    assert data is not None
    item: dict[str, Any] = data["videoDetail"]["itemInfo"]["itemStruct"]
    return item


def _real_2026_item() -> dict[str, Any]:
    data = page_data.tiktok_universal_data((CAPTURES / TIKTOK_PAGE_2026).read_text(encoding="utf-8"))
    assert data is not None
    item: dict[str, Any] = data["__DEFAULT_SCOPE__"]["webapp.video-detail"]["itemInfo"]["itemStruct"]
    return item


def _sibling(item: dict[str, Any], n: int) -> dict[str, Any]:
    """The real item as the n-th post of a profile: another id, a day older."""
    return {**item, "id": str(int(item["id"]) + n), "createTime": str(int(item["createTime"]) - 86400 * n)}


def _script(script_id: str, data: Any) -> str:
    return f'<script id="{script_id}" type="application/json">{json.dumps(data)}</script>'


def test_sigi_profile_page_with_three_real_items_is_a_listing() -> None:
    """An old SIGI_STATE profile page: ``ItemModule`` with several items + ``UserModule.users/stats``."""
    item = _real_tiktok_item()
    author = item["author"]
    items = [_sibling(item, n) for n in range(3)]
    module = {post["id"]: {**post, "author": author["uniqueId"]} for post in items}
    sigi = {
        "UserPage": {"uniqueId": author["uniqueId"], "statusCode": 0, "statusMsg": ""},
        "ItemModule": module,
        "ItemList": {"user-post": {"list": list(module), "hasMore": True, "cursor": "1584479561000"}},
        "UserModule": {
            "users": {author["uniqueId"]: author},
            "stats": {author["uniqueId"]: {"followerCount": 1200000, "videoCount": 3}},
        },
    }
    listing = extract_text(_script("SIGI_STATE", sigi))
    assert set(listing) == {"author", "videos", "count", "has_more", "cursor"}
    assert listing["count"] == 3 and listing["has_more"] is True
    assert listing["author"]["unique_id"] == "a3noticias"
    assert listing["author"]["uid"] == "6746247246012892166"
    assert [v["video_id"] for v in listing["videos"]] == [post["id"] for post in items]
    assert [v["create_time"] for v in listing["videos"]] == [
        "2020-03-19T21:12:41.000Z",
        "2020-03-18T21:12:41.000Z",
        "2020-03-17T21:12:41.000Z",
    ]
    assert all(
        v["author"]["nickname"] == "Antena 3 Noticias" and v["missing"] == [] for v in listing["videos"]
    )
    # the same page named by one item's URL is that video (the browser path reads it so)
    capture = Capture(
        f"https://www.tiktok.com/@a3noticias/video/{items[1]['id']}", "t", _script("SIGI_STATE", sigi)
    )
    assert read_video_page(capture)["id"] == items[1]["id"]


def test_sigi_video_page_with_one_real_item_stays_a_video() -> None:
    item = _real_tiktok_item()
    for sigi in (
        {"VideoPage": {"statusCode": 0}, "ItemModule": {item["id"]: item, "1": _sibling(item, 1)}},
        {"ItemModule": {item["id"]: item}},
    ):
        assert extract_text(_script("SIGI_STATE", sigi)) == extract(TIKTOK_PAGE)


def _reflow_page(item: dict[str, Any] | None, status: int = 0, message: str = "") -> str:
    """The mobile reflow page: the detail under ``webapp.reflow.video.detail`` beside the sharer."""
    detail = {
        "statusCode": status,
        "statusMessage": message,
        "itemInfo": {"itemStruct": item} if item else {},
    }
    scope = {
        "webapp.app-context": {"appId": 1180, "appType": "m"},
        "webapp.reflow.video.detail": detail,
        "webapp.reflow.global.shareUser": {
            "statusCode": 0,
            "shareUser": {"uniqueId": "sharer", "nickname": "S"},
        },
    }
    return _script("__UNIVERSAL_DATA_FOR_REHYDRATION__", {"__DEFAULT_SCOPE__": scope})


def test_mobile_reflow_page_video_and_photo() -> None:
    video = extract_text(_reflow_page(_real_tiktok_item()))
    assert video == extract(TIKTOK_PAGE)  # the sharer is not taken for the author
    photo = extract_text(_reflow_page(_real_photo_item()))
    assert photo == extract(TIKTOK_MOBILE_PHOTO)
    assert photo["media_type"] == "photo" and len(photo["images"]) == 7
    with pytest.raises(NotFound, match="item doesn't exist"):
        extract_text(_reflow_page(None, 10204, "item doesn't exist"))


def test_browser_reader_and_ready_check_cover_both_mobile_layouts() -> None:
    """``read_video_page`` reads the reflow page and the api-data page; both have the script
    ``HYDRATION_READY`` waits for."""
    for script_id in page_data.TIKTOK_SCRIPT_IDS:
        assert f"'{script_id}'" in HYDRATION_READY
    api_data_page = (CAPTURES / TIKTOK_MOBILE_PHOTO).read_text(encoding="utf-8")
    reflow_page = _reflow_page(_real_tiktok_item())
    url = "https://www.tiktok.com/@u/video/1"
    for html, item_id in ((api_data_page, "7631060535387163925"), (reflow_page, "6806030056956251397")):
        assert page_data.tiktok_universal_data(html) is not None  # what the ready check finds first
        assert read_video_page(Capture(url, "TikTok", html))["id"] == item_id


def test_play_addr_struct_of_the_real_2026_page() -> None:
    """Without ``playAddr``, ``bitrateInfo`` and the frame size, ``PlayAddrStruct`` gives all three."""
    item = _real_2026_item()
    struct = item["video"]["PlayAddrStruct"]
    video = {
        k: v for k, v in item["video"].items() if k not in ("playAddr", "bitrateInfo", "width", "height")
    }
    result = extract_json({**item, "video": video})
    assert result["download_url"] == struct["UrlList"][0]
    assert result["download_url"].startswith("https://v16-webapp-prime.tiktok.com/video/tos/alisg/")
    assert (result["width"], result["height"]) == (576, 1024)
    assert result["download_url_expires_at"] == "2026-07-02T19:18:55.000Z"  # expire=1783019935
    assert result["watermark"] is False and result["missing"] == []
    assert result["statistics"] == extract(TIKTOK_PAGE_2026)["statistics"]  # statsV2 exact counts


def test_tiktok_search_item_full_response_is_a_listing() -> None:
    """``/api/search/item/full/`` → ``item_list: [itemStruct…]`` (snake_case envelope, camelCase items)."""
    search = {
        "status_code": 0,
        "item_list": [_real_tiktok_item(), _real_photo_item()],
        "has_more": 1,
        "cursor": 12,
        "extra": {"now": 1718033970000},
        "log_pb": {"impr_id": "x"},
    }
    listing = extract_text(json.dumps(search))
    assert (listing["count"], listing["has_more"], listing["cursor"], listing["author"]) == (
        2,
        True,
        12,
        None,
    )
    assert [v["platform"] for v in listing["videos"]] == ["tiktok", "tiktok"]
    assert [v["media_type"] for v in listing["videos"]] == ["video", "photo"]
    assert listing["videos"][0] == extract(TIKTOK_PAGE)


def test_tiktok_general_search_response_is_a_listing() -> None:
    """``/api/search/general/full/`` → ``data: [{type: 1, item}, {type: 4, user_list}, …]``.

    Real body start seen in a research note of the code index: ``{"status_code":0,"data":[{"type":1,
    "item":{"id":"7650052642089225493",…`` (282 KB, 2026).
    """
    user_card = {"type": 4, "user_list": [{"user_info": {"uid": "1", "nickname": "MAX", "sec_uid": "MS4w"}}]}
    general = {
        "status_code": 0,
        "data": [{"type": 1, "item": _real_tiktok_item()}, user_card, {"type": 1, "item": _real_2026_item()}],
        "has_more": 1,
        "cursor": 10,
    }
    listing = extract_json(general)
    assert [v["video_id"] for v in listing["videos"]] == ["6806030056956251397", "7606836476323597588"]


def test_douyin_general_search_response_is_a_listing() -> None:
    """Douyin general search → ``data: [{type: 1, aweme_info}]`` (ikenxuan/amagi, measured wire shape)."""
    aweme = json.loads((CAPTURES / DOUYIN_DETAIL).read_text(encoding="utf-8"))["aweme_detail"]
    search = {"status_code": 0, "cursor": 10, "has_more": 1, "data": [{"type": 1, "aweme_info": aweme}]}
    listing = extract_json(search)
    assert listing["count"] == 1 and listing["videos"][0] == extract(DOUYIN_DETAIL)


def test_douyin_search_glued_wire_body_is_one_listing() -> None:
    """The search XHR's real wire form: chunk sizes and several JSON blocks glued (ikenxuan/amagi)."""
    aweme = json.loads((CAPTURES / DOUYIN_DETAIL).read_text(encoding="utf-8"))["aweme_detail"]
    first = json.dumps(
        {"status_code": 0, "cursor": 10, "has_more": 1, "data": [{"type": 1, "aweme_info": aweme}]}
    )
    second = json.dumps(
        {"status_code": 0, "cursor": 20, "has_more": 0, "data": [{"type": 1, "aweme_info": aweme}]}
    )
    noise = json.dumps({"msg": "noise"})
    body = "\r\n".join(
        [f"{len(first):x}", first, f"{len(noise):x}", noise, f"{len(second):x}", second, "0", ""]
    )
    listing = extract_text(body, name="search.txt")
    assert (listing["count"], listing["has_more"], listing["cursor"]) == (2, False, 20)
    assert listing["videos"][0] == extract(DOUYIN_DETAIL)


def test_douyin_list_item_without_create_time_still_reads() -> None:
    """An older Douyin list whose items lack ``create_time``: the item reads, the time is null and named."""
    posts = json.loads((CAPTURES / DOUYIN_POSTS).read_text(encoding="utf-8"))
    del posts["aweme_list"][0]["create_time"]
    page = extract_json(posts)
    (video,) = page["videos"]
    assert video["create_time"] is None
    assert video["missing"] == ["create_time"]
    expected = extract(DOUYIN_POSTS)["videos"][0]
    assert {k: v for k, v in video.items() if k not in ("create_time", "missing")} == {
        k: v for k, v in expected.items() if k not in ("create_time", "missing")
    }


def test_a_payload_we_cannot_place_names_what_it_found() -> None:
    """The mobile page without its api-data script holds only reflow settings: say so, with the keys."""
    html = (CAPTURES / TIKTOK_MOBILE_PHOTO).read_text(encoding="utf-8")
    html = re.sub(r'<script[^>]*id="api-data"[^>]*>.*?</script>', "", html, flags=re.S)
    with pytest.raises(LayoutChanged, match=r"__DEFAULT_SCOPE__ keys: \[.*'webapp\.reflow\.video\.strategy'"):
        extract_text(html, name="mobile.html")


def test_cli_extracts_a_listing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "search.json"
    saved.write_text(json.dumps({"status_code": 0, "item_list": [_real_tiktok_item()], "has_more": 0}))
    assert main([str(saved)]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["count"] == 1 and listing["videos"][0]["video_id"] == "6806030056956251397"
