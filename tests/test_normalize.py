"""Normalizing platform JSON and interpreting platform status, branch by branch, on small hand-made dicts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from models.video import Video
from scraper.channel import ChannelListing, ChannelQuery
from scraper.errors import Blocked, LayoutChanged, NotFound, PrivateContent, Unavailable
from scraper.shapes.common import PostPage, Profile
from scraper.shapes.douyin import (
    douyin_author,
    douyin_aweme,
    douyin_detail_aweme,
    douyin_post_page,
    douyin_profile,
    douyin_render_aweme,
    douyin_share_aweme,
    douyin_unwatermark,
    is_douyin_aweme,
)
from scraper.shapes.media import Rendition, best_rendition, url_expiry
from scraper.shapes.payload import find_posts, read_payload
from scraper.shapes.tiktok import (
    is_tiktok_item,
    tiktok_author,
    tiktok_document,
    tiktok_item,
    tiktok_item_list_page,
    tiktok_user_detail,
    tiktok_video_detail_item,
)

TT_PLAY = "https://v16-webapp-prime.tiktok.com/video/tos/x/y/z/?a=1988&lr=unwatermarked&expire=1718056799&tk=tt_chain_token"
TT_DOWNLOAD = "https://v16-webapp-prime.tiktok.com/video/tos/x/y/w/?a=1988&lr=tiktok_m&expire=1718056799"
DY_CDN = "https://v3-web.douyinvod.com/{}/64ba6dea/video/tos/cn/bucket/obj/?a=6383&br={}"
PLAYWM = "https://aweme.snssdk.com/aweme/v1/playwm/?video_id=v0200fg10000abc&ratio=720p&line=0"


def tt_item(**overrides: Any) -> dict[str, Any]:
    """The page form of an itemStruct, trimmed."""
    item: dict[str, Any] = {
        "id": "7000000000000000001",
        "desc": "caption",
        "createTime": "1584652361",
        "video": {
            "duration": 29,
            "width": 480,
            "height": 848,
            "cover": "https://p16/cover",
            "playAddr": TT_PLAY,
        },
        "author": {
            "id": "11",
            "uniqueId": "someone",
            "nickname": "Some One",
            "secUid": "MS4w",
            "avatarThumb": "https://a/t",
        },
        "stats": {
            "diggCount": 12000,
            "shareCount": 205,
            "commentCount": 252,
            "playCount": 260800,
            "collectCount": "157",
        },
        "music": {"title": "song", "authorName": "singer", "playUrl": "", "duration": 30},
    }
    item.update(overrides)
    return item


def tt_bitrate(url: str, codec: str, bitrate: int, urls: list[str] | None = None) -> dict[str, Any]:
    return {
        "Bitrate": bitrate,
        "CodecType": codec,
        "PlayAddr": {"UrlList": urls or [url], "UrlKey": f"v09_{codec}_720p_{bitrate}"},
    }


def dy_aweme(**overrides: Any) -> dict[str, Any]:
    """A web-API aweme, trimmed."""
    aweme: dict[str, Any] = {
        "aweme_id": "7071967230287744267",
        "aweme_type": 0,
        "media_type": 4,
        "desc": "描述",
        "create_time": 1646570683,
        "duration": 9611,
        "author": {
            "uid": "36",
            "sec_uid": "MS4wDY",
            "nickname": "作者",
            "unique_id": "dy_user",
            "short_id": "283",
        },
        "statistics": {
            "digg_count": 1,
            "comment_count": 2,
            "share_count": 3,
            "play_count": 0,
            "collect_count": 4,
        },
        "music": {
            "title": "bgm",
            "author": "歌手",
            "duration": 22,
            "play_url": {"url_list": ["https://m/1.mp3"]},
        },
        "video": {
            "width": 1080,
            "height": 1920,
            "duration": 9611,
            "cover": {"url_list": ["https://p/cover"]},
        },
    }
    aweme.update(overrides)
    return aweme


def dy_address(url: str, key: str = "") -> dict[str, Any]:
    return {"url_list": [url], "url_key": key}


# --------------------------------------------------------------------------- TikTok items


def test_tiktok_item_basic_fields_and_coercions() -> None:
    video = tiktok_item(tt_item())
    assert video.platform == "tiktok"
    assert video.video_id == "7000000000000000001"
    assert video.create_time == "2020-03-19T21:12:41.000Z"
    assert video.duration == 29
    assert video.statistics.collects == 157  # string on the page
    assert video.statistics.plays == 260800
    assert video.music is not None and video.music.url is None  # "" playUrl
    assert video.share_url == "https://www.tiktok.com/@someone/video/7000000000000000001"
    assert video.cover_url == "https://p16/cover"
    assert video.author.avatar_url == "https://a/t"


def test_tiktok_create_time_string_or_int_is_the_same() -> None:
    assert tiktok_item(tt_item(createTime=1584652361)).create_time == tiktok_item(tt_item()).create_time


def test_tiktok_stats_v2_exact_strings_win() -> None:
    video = tiktok_item(tt_item(statsV2={"diggCount": "12345", "playCount": "260812", "collectCount": "157"}))
    assert video.statistics.likes == 12345
    assert video.statistics.plays == 260812
    assert video.statistics.comments == 252  # not in statsV2: from stats


def test_tiktok_prefers_h264_over_higher_bitrate_h265() -> None:
    h265 = "https://v16/h265"
    h264_low, h264_high = "https://v16/h264low?expire=1718000000", "https://v16/h264high?expire=1718056799"
    video = {
        "playAddr": TT_PLAY,
        "bitrateInfo": [
            tt_bitrate(h265, "h265_hvc1", 3_000_000),
            tt_bitrate(h264_low, "h264", 500_000),
            tt_bitrate(h264_high, "h264", 1_200_000),
        ],
    }
    result = tiktok_item(tt_item(video=video))
    assert result.download_url == h264_high
    assert result.watermark is False
    assert result.download_url_expires_at == "2024-06-10T21:59:59.000Z"


def test_tiktok_skips_www_tiktok_com_play_urls() -> None:
    broken = "https://www.tiktok.com/aweme/v1/play/?faid=1988&item_id=1&video_id=v09"
    good = "https://v19-webapp-prime.tiktok.com/video/ok"
    video = {"bitrateInfo": [tt_bitrate(broken, "h264", 900_000, urls=[broken, good])]}
    assert tiktok_item(tt_item(video=video)).download_url == good


def test_tiktok_falls_back_to_play_addr_then_watermarked_download_addr() -> None:
    assert (
        tiktok_item(tt_item(video={"playAddr": TT_PLAY, "downloadAddr": TT_DOWNLOAD})).download_url == TT_PLAY
    )
    result = tiktok_item(tt_item(video={"playAddr": "", "downloadAddr": TT_DOWNLOAD}))
    assert result.download_url == TT_DOWNLOAD
    assert result.watermark is True


def test_tiktok_without_any_media_url() -> None:
    result = tiktok_item(tt_item(video={"duration": 10}))
    assert result.download_url is None and result.watermark is None and result.download_url_expires_at is None


def test_tiktok_photo_post() -> None:
    image = {
        "imageWidth": 1080,
        "imageHeight": 1436,
        "imageURL": {"urlList": ["https://p16/photo1.jpeg", "https://p19/1"]},
    }
    item = tt_item(
        desc="",
        video={"playAddr": "", "downloadAddr": "", "duration": 0, "width": 0, "height": 0},
        imagePost={
            "title": "slides",
            "cover": {"imageURL": {"urlList": ["https://p16/c"]}},
            "images": [image],
        },
    )
    video = tiktok_item(item)
    assert video.media_type == "photo"
    assert video.title == "slides"
    assert video.images is not None and [(i.url, i.width, i.height) for i in video.images] == [
        ("https://p16/photo1.jpeg", 1080, 1436)
    ]
    assert video.download_url is None and video.watermark is None
    assert video.duration == 0 and video.width is None
    assert video.cover_url == "https://p16/c"
    assert video.share_url == "https://www.tiktok.com/@someone/photo/7000000000000000001"


def test_tiktok_pinned_and_missing_unique_id() -> None:
    video = tiktok_item(tt_item(isPinnedItem=True, author={"nickname": "x"}))
    assert video.is_pinned is True
    assert video.share_url == "https://www.tiktok.com/@_/video/7000000000000000001"


def test_tiktok_id_is_the_only_required_field() -> None:
    with pytest.raises(LayoutChanged, match="no id"):
        tiktok_item(tt_item(id=""))


@pytest.mark.parametrize("time", [None, "0", "soon"])
def test_tiktok_absent_create_time_is_null_and_named(time: Any) -> None:
    video = tiktok_item(tt_item(createTime=time))
    assert video.create_time is None
    assert video.missing == ["create_time"]
    assert video.to_result()["create_time"] is None


def test_tiktok_complete_item_misses_nothing() -> None:
    assert tiktok_item(tt_item()).missing == []


def test_tiktok_each_absent_part_is_named_in_field_order() -> None:
    bare = {"id": "7000000000000000001", "video": {"playAddr": TT_PLAY}}
    video = tiktok_item(bare)
    assert video.missing == [
        "title",
        "author",
        "cover_url",
        "duration",
        "create_time",
        "statistics",
        "music",
        "width",
        "height",
    ]
    assert (video.title, video.author.nickname, video.statistics.likes) == ("", "", 0)
    assert video.download_url == TT_PLAY  # what was there is still read
    assert video.share_url == "https://www.tiktok.com/@_/video/7000000000000000001"


def test_tiktok_one_absent_counter_is_named_not_zeroed_silently() -> None:
    video = tiktok_item(tt_item(stats={"diggCount": 5, "commentCount": 0}))
    assert (video.statistics.likes, video.statistics.comments, video.statistics.shares) == (5, 0, 0)
    assert video.missing == ["statistics.shares"]


def test_tiktok_video_without_media_urls_names_download_url() -> None:
    assert tiktok_item(tt_item(video={"duration": 10, "width": 1, "height": 2})).missing == [
        "cover_url",
        "download_url",
    ]


def test_tiktok_empty_caption_is_sent_not_missing() -> None:
    assert tiktok_item(tt_item(desc="")).missing == []


def test_tiktok_author_avatar_order() -> None:
    user = {
        "id": 5,
        "nickname": "n",
        "avatarMedium": "https://m",
        "avatarLarger": "https://l",
        "uniqueId": "",
    }
    author = tiktok_author(user)
    assert (author.uid, author.avatar_url, author.unique_id) == ("5", "https://l", None)


# --------------------------------------------------------------------------- TikTok status


def scope(status: int | str, item: dict[str, Any] | None = None, msg: str = "") -> dict[str, Any]:
    info = {"itemStruct": item} if item is not None else {}
    return {
        "__DEFAULT_SCOPE__": {
            "webapp.video-detail": {"statusCode": status, "statusMsg": msg, "itemInfo": info}
        }
    }


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (10204, NotFound),
        ("10204", NotFound),
        (10221, NotFound),
        (10216, PrivateContent),
        (10222, PrivateContent),
        (10231, Unavailable),
        (10000, Blocked),
        (10101, Blocked),
        (12345, Unavailable),
    ],
)
def test_tiktok_status_codes(status: int | str, error: type[Exception]) -> None:
    with pytest.raises(error, match=f"statusCode {int(status)}"):
        tiktok_video_detail_item(
            scope(status, msg="item doesn't exist"), url="https://www.tiktok.com/@a/video/1"
        )


def test_tiktok_detail_accepts_document_scope_and_api_response() -> None:
    item = tt_item()
    assert tiktok_video_detail_item(scope(0, item)) == item
    assert tiktok_video_detail_item(scope(0, item)["__DEFAULT_SCOPE__"]) == item
    api = {"itemInfo": {"itemStruct": item}, "statusCode": 0, "status_code": 0, "extra": {}}
    assert tiktok_video_detail_item(api) == item


def test_tiktok_detail_layout_changes() -> None:
    with pytest.raises(LayoutChanged, match=r"no webapp\.video-detail"):
        tiktok_video_detail_item({"__DEFAULT_SCOPE__": {"webapp.app-context": {}}})
    with pytest.raises(LayoutChanged, match=r"no itemInfo\.itemStruct"):
        tiktok_video_detail_item(scope(0))


def test_tiktok_age_gate() -> None:
    with pytest.raises(Unavailable, match="age-restricted"):
        tiktok_video_detail_item(scope(0, {"id": "1", "isContentClassified": True}))


def test_tiktok_legacy_sigi_state() -> None:
    state = {
        "VideoPage": {"statusCode": 0},
        "ItemModule": {
            "9": {"id": "9", "createTime": "1584652361", "author": "other"},
            "1": {"id": "1", "createTime": 1584652361, "author": "someone", "video": {"playAddr": TT_PLAY}},
        },
        "UserModule": {"users": {"someone": {"id": "11", "uniqueId": "someone", "nickname": "Some One"}}},
    }
    item = tiktok_video_detail_item(state, url="https://www.tiktok.com/@someone/video/1")
    video = tiktok_item(item)
    assert video.video_id == "1"
    assert video.author.nickname == "Some One" and video.author.uid == "11"
    with pytest.raises(PrivateContent):
        tiktok_video_detail_item({**state, "VideoPage": {"statusCode": 10216}})


def test_tiktok_sigi_item_without_user_module_uses_flat_author_fields() -> None:
    item = tt_item(author="someone", authorId="11", authorSecId="MS4w", nickname="Some One")
    author = tiktok_item(item).author
    assert (author.unique_id, author.uid, author.sec_uid, author.nickname) == (
        "someone",
        "11",
        "MS4w",
        "Some One",
    )


# --------------------------------------------------------------------------- Douyin items


def test_douyin_aweme_basic_fields() -> None:
    video = douyin_aweme(dy_aweme())
    assert video.platform == "douyin"
    assert video.create_time == "2022-03-06T12:44:43.000Z"
    assert video.duration == 10  # 9611 ms, rounded
    assert video.statistics.plays is None  # hidden: always 0 on the web API
    assert (video.statistics.likes, video.statistics.comments, video.statistics.shares) == (1, 2, 3)
    assert video.statistics.collects == 4
    assert video.music is not None and (video.music.url, video.music.duration) == ("https://m/1.mp3", 22)
    assert video.share_url == "https://www.douyin.com/video/7071967230287744267"
    assert video.cover_url == "https://p/cover"
    assert video.author.unique_id == "dy_user"


@pytest.mark.parametrize(
    ("ms", "seconds"), [(9611, 10), (64043, 64), (1499, 1), (1500, 2), ("3000", 3), (None, 0)]
)
def test_douyin_duration_ms_to_seconds(ms: Any, seconds: int) -> None:
    aweme = dy_aweme(duration=ms)
    aweme["video"] = {**aweme["video"], "duration": ms}
    assert douyin_aweme(aweme).duration == seconds


def test_douyin_string_numbers_and_visible_plays() -> None:
    stats = {
        "digg_count": "10",
        "comment_count": "2",
        "share_count": 0,
        "play_count": "99",
        "collect_count": None,
    }
    video = douyin_aweme(dy_aweme(create_time="1646570683", statistics=stats))
    assert video.create_time == "2022-03-06T12:44:43.000Z"
    assert (video.statistics.likes, video.statistics.plays, video.statistics.collects) == (10, 99, None)


def test_douyin_prefers_h264_gear_over_hevc_and_reads_path_expiry() -> None:
    h265 = DY_CDN.format("a" * 32, 3000)
    h264 = DY_CDN.format("b" * 32, 2198)
    h264_low = DY_CDN.format("c" * 32, 800)
    video = {
        "bit_rate": [
            {"bit_rate": 3_000_000, "is_h265": 1, "play_addr": dy_address(h265)},
            {"bit_rate": 2_251_713, "is_h265": 0, "play_addr": dy_address(h264)},
            {"bit_rate": 872_751, "is_h265": 0, "play_addr": dy_address(h264_low)},
        ],
        "play_addr": dy_address(h264_low, "v02_h264_540p_872751"),
    }
    result = douyin_aweme(dy_aweme(video=video))
    assert result.download_url == h264
    assert result.watermark is False
    assert result.download_url_expires_at == "2023-07-21T11:37:14.000Z"


def test_douyin_play_addr_h264_beats_an_all_hevc_ladder() -> None:
    hevc = DY_CDN.format("a" * 32, 1)
    h264 = DY_CDN.format("b" * 32, 2)
    video = {
        "bit_rate": [{"bit_rate": 498_449, "is_h265": 1, "is_bytevc1": 1, "play_addr": dy_address(hevc)}],
        "play_addr_h264": dy_address(h264, "v03_h264_540p_822668"),
        "play_addr_265": dy_address(hevc, "v03_bytevc1_540p_448582"),
    }
    assert douyin_aweme(dy_aweme(video=video)).download_url == h264


def test_douyin_share_item_playwm_is_rewritten() -> None:
    assert (
        douyin_unwatermark(PLAYWM)
        == "https://aweme.snssdk.com/aweme/v1/play/?video_id=v0200fg10000abc&ratio=1080p&line=0"
    )
    video = douyin_aweme(
        dy_aweme(video={"play_addr": {"uri": "v0200fg10000abc", "url_list": [PLAYWM]}, "bit_rate": None})
    )
    assert video.download_url == douyin_unwatermark(PLAYWM)
    assert video.watermark is False
    assert video.download_url_expires_at is None


def test_douyin_download_addr_only_as_watermarked_last_resort() -> None:
    wm = "https://aweme.snssdk.com/aweme/v1/playwm/?video_id=v1&ratio=720p"
    only = douyin_aweme(dy_aweme(video={"download_addr": dy_address(wm)}))
    assert (only.download_url, only.watermark) == (wm, True)
    clean = DY_CDN.format("d" * 32, 1)
    both = douyin_aweme(dy_aweme(video={"download_addr": dy_address(wm), "play_addr": dy_address(clean)}))
    assert (both.download_url, both.watermark) == (clean, False)


@pytest.mark.parametrize("marker", [{"aweme_type": 68}, {"media_type": 2}, {}])
def test_douyin_photo_post(marker: dict[str, Any]) -> None:
    images = [
        {
            "width": 1080,
            "height": 1440,
            "url_list": ["https://p3/img~tplv-dy-aweme-images:q75.webp", "https://p3/img.jpeg"],
            "download_url_list": ["https://p3/img~tplv-dy-water-v2.webp"],
        },
        {
            "width": 720,
            "height": 960,
            "url_list": [],
            "download_url_list": ["https://p3/only-watermarked.webp"],
        },
    ]
    aweme = dy_aweme(
        duration=0, images=images, video={"play_addr": dy_address("https://music.mp3")}, **marker
    )
    video = douyin_aweme(aweme)
    assert video.media_type == "photo"
    assert video.images is not None
    assert [i.url for i in video.images] == [
        "https://p3/img~tplv-dy-aweme-images:q75.webp",
        "https://p3/only-watermarked.webp",
    ]
    assert (video.images[0].width, video.images[0].height) == (1080, 1440)
    assert video.download_url is None and video.watermark is None and video.duration == 0
    assert video.share_url == "https://www.douyin.com/note/7071967230287744267"
    assert video.cover_url == "https://p3/img~tplv-dy-aweme-images:q75.webp"  # no video cover: first image


def test_douyin_aweme_type_68_without_images_is_still_a_photo() -> None:
    video = douyin_aweme(dy_aweme(aweme_type=68, images=None))
    assert video.media_type == "photo" and video.images == []


def test_douyin_share_url_from_the_aweme_and_pinned() -> None:
    video = douyin_aweme(dy_aweme(share_url="https://www.iesdouyin.com/share/video/1/", is_top=1))
    assert video.share_url == "https://www.iesdouyin.com/share/video/1/"
    assert video.is_pinned is True


def test_douyin_id_is_the_only_required_field() -> None:
    with pytest.raises(LayoutChanged, match="no id"):
        douyin_aweme(dy_aweme(aweme_id=None))


@pytest.mark.parametrize("time", [0, "soon", None])
def test_douyin_absent_create_time_is_null_and_named(time: Any) -> None:
    aweme = dy_aweme(create_time=time)
    video = douyin_aweme(aweme)
    assert video.create_time is None
    assert "create_time" in video.missing
    del aweme["create_time"]
    assert douyin_aweme(aweme).create_time is None


def test_douyin_hidden_plays_and_share_item_gaps() -> None:
    """play_count 0 is Douyin hiding it (null, not missing); a share item's absent duration is named."""
    video = douyin_aweme(dy_aweme(duration=None, video={"cover": {"url_list": ["https://p/c"]}}))
    assert video.statistics.plays is None
    assert video.missing == ["download_url", "duration", "width", "height"]


def test_douyin_photo_post_never_misses_download_url_or_duration() -> None:
    video = douyin_aweme(dy_aweme(aweme_type=68, images=None, video=None))
    assert video.missing == ["cover_url", "images"]


@pytest.mark.parametrize(
    ("user", "unique_id"),
    [
        ({"unique_id": "abc", "short_id": "1"}, "abc"),
        ({"unique_id": "", "short_id": "629064951"}, "629064951"),
        ({"unique_id": None, "short_id": "0"}, None),
        ({}, None),
    ],
)
def test_douyin_author_unique_id_falls_back_to_short_id(user: dict[str, Any], unique_id: str | None) -> None:
    assert douyin_author({"nickname": "n", **user}).unique_id == unique_id


def test_douyin_author_avatar_order_and_missing_uid() -> None:
    user = {
        "nickname": "n",
        "sec_uid": "MS4w",
        "avatar_thumb": {"url_list": ["https://t"]},
        "avatar_medium": {"url_list": ["https://m"]},
    }
    author = douyin_author(user)
    assert (author.avatar_url, author.uid, author.sec_uid) == ("https://m", None, "MS4w")


# --------------------------------------------------------------------------- Douyin status


def test_douyin_detail_ok() -> None:
    aweme = dy_aweme()
    assert douyin_detail_aweme({"aweme_detail": aweme, "status_code": 0}) is aweme


@pytest.mark.parametrize(
    ("reason", "error"),
    [("status_self_see", PrivateContent), ("core_dep", NotFound), ("music_deleted_video", NotFound)],
)
def test_douyin_detail_filtered(reason: str, error: type[Exception]) -> None:
    payload = {
        "aweme_detail": None,
        "filter_detail": {"filter_reason": reason, "notice": "抱歉，作品不见了", "detail_msg": "无法观看"},
        "status_code": 0,
    }
    with pytest.raises(error, match="抱歉，作品不见了"):
        douyin_detail_aweme(payload)


@pytest.mark.parametrize(
    "payload",
    [
        {"status_code": 4, "status_msg": "啊哦，服务器打瞌睡了，再试一次吧～"},
        {"code": "10001010A", "data": None, "msg": "当前环境存在风险，请稍后重试"},
        {"status_code": 8, "status_msg": "请完成验证"},
        {},
    ],
)
def test_douyin_risk_control_is_blocked(payload: dict[str, Any]) -> None:
    with pytest.raises(Blocked) as caught:
        douyin_detail_aweme(payload)
    assert caught.value.retryable


def test_douyin_detail_other_shapes() -> None:
    with pytest.raises(LayoutChanged, match="status_code 5"):
        douyin_detail_aweme({"status_code": 5, "status_msg": "odd"})
    with pytest.raises(NotFound):
        douyin_detail_aweme({"aweme_detail": None, "status_code": 0})
    with pytest.raises(LayoutChanged, match="no aweme_detail"):
        douyin_detail_aweme({"status_code": 0, "something": {}})
    with pytest.raises(NotFound, match="is_delete"):
        douyin_detail_aweme({"aweme_detail": dy_aweme(status={"is_delete": True}), "status_code": 0})


def router(route: str, result: Any) -> dict[str, Any]:
    page = {"webId": "1"} if result is None else {"webId": "1", "videoInfoRes": result}
    return {"loaderData": {"video_layout": None, route: page}, "errors": None}


@pytest.mark.parametrize("route", ["video_(id)/page", "note_(id)/page", "slides_(id)/page"])
def test_douyin_share_routes(route: str) -> None:
    item = {"aweme_id": "7", "create_time": 1}
    assert (
        douyin_share_aweme(router(route, {"item_list": [item], "filter_list": [], "status_code": 0})) is item
    )


def test_douyin_share_not_found_and_layout() -> None:
    missing = {"item_list": [], "filter_list": [{"filter_reason": "SYSTEM_ITEM_NOT_EXIST"}], "status_code": 0}
    with pytest.raises(NotFound, match="SYSTEM_ITEM_NOT_EXIST"):
        douyin_share_aweme(router("video_(id)/page", missing))
    with pytest.raises(NotFound):
        douyin_share_aweme(router("video_(id)/page", {"item_list": None, "status_code": 0}))
    with pytest.raises(LayoutChanged, match="videoInfoRes"):
        douyin_share_aweme(router("video_(id)/page", None))
    with pytest.raises(LayoutChanged, match="loaderData"):
        douyin_share_aweme({"loaderData": {"video_layout": None}})
    with pytest.raises(Blocked):
        douyin_share_aweme(router("video_(id)/page", {"status_code": 4, "status_msg": "服务器打瞌睡"}))


WEB_DETAIL = {
    "awemeId": "7300000000000000000",
    "desc": "web",
    "createTime": 1700000000,
    "awemeType": 0,
    "isTop": 1,
    "authorInfo": {"uid": "9", "secUid": "MS4wWeb", "nickname": "网页", "uniqueId": "web_user"},
    "stats": {"diggCount": 5, "commentCount": 6, "shareCount": 7, "playCount": 0, "collectCount": 8},
    "music": {
        "title": "t",
        "author": "a",
        "duration": 15,
        "playUrl": {"uri": "u", "urlList": ["https://m.mp3"]},
    },
    "video": {
        "width": 720,
        "height": 1280,
        "duration": 15480,
        "cover": "//p3-sign.douyinpic.com/cover.jpeg",
        "playAddr": [{"src": "//v3-web.douyinvod.com/" + "e" * 32 + "/65000000/video/low"}],
        "bitRateList": [
            {"bitRate": 900000, "isH265": 0, "playAddr": [{"src": "//v26-web.douyinvod.com/best"}]},
            {"bitRate": 2000000, "isH265": 1, "playAddr": [{"src": "//v26-web.douyinvod.com/hevc"}]},
        ],
    },
}


def test_douyin_render_data_web_shape_is_converted() -> None:
    aweme = douyin_render_aweme({"app": {"videoDetail": WEB_DETAIL}})
    video = douyin_aweme(aweme)
    assert video.video_id == "7300000000000000000"
    assert video.create_time == "2023-11-14T22:13:20.000Z"
    assert video.duration == 15
    assert (
        video.author.sec_uid == "MS4wWeb" and video.author.unique_id == "web_user" and video.author.uid == "9"
    )
    assert (video.statistics.likes, video.statistics.collects, video.statistics.plays) == (5, 8, None)
    assert video.music is not None and video.music.url == "https://m.mp3"
    assert video.download_url == "https://v26-web.douyinvod.com/best"  # h264, protocol-relative fixed
    assert video.cover_url == "https://p3-sign.douyinpic.com/cover.jpeg"
    assert video.is_pinned is True
    assert douyin_aweme(WEB_DETAIL) == video  # douyin_aweme converts camelCase itself too


def test_douyin_render_data_null_and_legacy() -> None:
    with pytest.raises(NotFound, match="videoDetail is null"):
        douyin_render_aweme({"app": {"videoDetail": None}})
    legacy = {"1": {"ua": "x"}, "43": {"aweme": {"detail": WEB_DETAIL}}}
    assert douyin_render_aweme(legacy)["aweme_id"] == "7300000000000000000"
    with pytest.raises(NotFound):
        douyin_render_aweme({"43": {"aweme": None}})
    with pytest.raises(LayoutChanged):
        douyin_render_aweme({"app": {"user": {}}})


# --------------------------------------------------------------------------- media URL helpers


def test_url_expiry() -> None:
    assert url_expiry(TT_PLAY) == "2024-06-10T21:59:59.000Z"
    assert url_expiry(DY_CDN.format("f" * 32, 1)) == "2023-07-21T11:37:14.000Z"
    assert url_expiry("https://aweme.snssdk.com/aweme/v1/play/?video_id=v1&ratio=1080p") is None
    assert url_expiry("https://v3-web.douyinvod.com/short/64ba6dea/video/x") is None
    assert url_expiry(None) is None


def test_best_rendition_order() -> None:
    clean_hevc = Rendition("https://a", "h265", 3_000_000)
    clean_unknown = Rendition("https://b", "", 100)
    clean_h264 = Rendition("https://c", "h264", 500)
    marked_h264 = Rendition("https://d", "h264", 9_000_000, watermark=True)
    assert best_rendition([marked_h264, clean_hevc, clean_unknown, clean_h264]) == clean_h264
    assert best_rendition([marked_h264, clean_hevc, clean_unknown]) == clean_unknown
    assert best_rendition([marked_h264, clean_hevc]) == clean_hevc
    assert best_rendition([marked_h264]) == marked_h264
    assert best_rendition([]) is None
    ladder, default = Rendition("https://l", "h264", 5, priority=1), Rendition("https://p", "h264", 5)
    assert best_rendition([default, ladder]) == ladder


# --------------------------------------------------------------------------- pages and profiles


def test_douyin_post_page() -> None:
    page = douyin_post_page(
        {"status_code": 0, "has_more": 0, "max_cursor": 1689909551000, "aweme_list": [dy_aweme()]}
    )
    assert (len(page.videos), page.has_more, page.cursor) == (1, False, 1689909551000)
    empty = douyin_post_page({"status_code": 0, "has_more": 0, "aweme_list": None})
    assert (empty.videos, empty.has_more, empty.cursor) == ([], False, 0)
    with pytest.raises(Blocked):
        douyin_post_page({})


def test_tiktok_item_list_page() -> None:
    payload = {"cursor": "31865", "hasMore": True, "itemList": [tt_item(isPinnedItem=True)], "statusCode": 0}
    page = tiktok_item_list_page(payload)
    assert (page.cursor, page.has_more, page.videos[0].is_pinned) == (31865, True, True)
    with pytest.raises(Blocked):
        tiktok_item_list_page({})
    with pytest.raises(PrivateContent):
        tiktok_item_list_page({"statusCode": 10222, "itemList": []})


def test_douyin_profile_shapes() -> None:
    user = {"uid": "1", "sec_uid": "MS4w", "nickname": "n", "follower_count": 3, "aweme_count": "4"}
    profile = douyin_profile({"status_code": 0, "user": user})
    assert profile.stats == {"followers": 3, "following": None, "likes": None, "videos": 4}
    assert douyin_profile({"status_code": 0, "data": [user]}).author.uid == "1"
    with pytest.raises(LayoutChanged):
        douyin_profile({"status_code": 0, "data": []})


def test_tiktok_user_detail() -> None:
    detail = {
        "statusCode": 0,
        "userInfo": {
            "user": {"id": "1", "uniqueId": "nasa", "nickname": "NASA", "secUid": "MS4w"},
            "stats": {
                "followerCount": 163000000,
                "heart": 9400000,
                "heartCount": -1614092016,
                "videoCount": 5,
            },
            "statsV2": {"followerCount": "162986107", "heart": "9412345"},
        },
    }
    profile = tiktok_user_detail({"__DEFAULT_SCOPE__": {"webapp.user-detail": detail}})
    assert profile.author.unique_id == "nasa"
    assert profile.stats == {"followers": 162986107, "following": None, "likes": 9412345, "videos": 5}
    banned = {"webapp.user-detail": {"statusCode": 10221, "statusMsg": "user banned"}}
    with pytest.raises(NotFound, match="user banned"):
        tiktok_user_detail(banned)


# --------------------------------------------------------------------------- PlayAddrStruct


def play_addr_struct(url: str) -> dict[str, Any]:
    """The 2025+ ``video.PlayAddrStruct`` (keys as in the jarvis-2 2026 capture)."""
    return {
        "Uri": "v1c044g50000d68egi7og65jhm3gqol0",
        "UrlList": ["https://www.tiktok.com/aweme/v1/play/?faid=1988&video_id=v1c", url],
        "UrlKey": "v1c044g50000d68egi7og65jhm3gqol0_h264_540p_415593",
        "DataSize": "3153313",
        "Width": 576,
        "Height": 1024,
        "FileHash": "635c",
        "FileCs": "c:0-51425-b8ad",
    }


def test_tiktok_play_addr_struct_is_a_rendition_where_play_addr_is_missing() -> None:
    struct_url = "https://v16-webapp-prime.tiktok.com/video/tos/alisg/x/?a=1988&expire=1783019935"
    video = tiktok_item(tt_item(video={"duration": 60, "PlayAddrStruct": play_addr_struct(struct_url)}))
    assert video.download_url == struct_url  # the www.tiktok.com play URL is skipped
    assert (video.width, video.height) == (576, 1024)  # from the struct: video.width is absent
    assert video.download_url_expires_at == "2026-07-02T19:18:55.000Z"
    assert video.watermark is False
    assert "width" not in video.missing and "download_url" not in video.missing


def test_tiktok_play_addr_wins_over_the_struct_that_describes_it() -> None:
    video = {"playAddr": TT_PLAY, "PlayAddrStruct": play_addr_struct("https://v16/struct")}
    assert tiktok_item(tt_item(video=video)).download_url == TT_PLAY


def test_tiktok_play_addr_struct_beats_the_watermarked_download_addr() -> None:
    video = {"downloadAddr": TT_DOWNLOAD, "PlayAddrStruct": play_addr_struct("https://v16/struct")}
    result = tiktok_item(tt_item(video=video))
    assert (result.download_url, result.watermark) == ("https://v16/struct", False)


# --------------------------------------------------------------------------- SIGI_STATE pages


def sigi_profile(count: int = 3, **extra: Any) -> dict[str, Any]:
    items = {
        str(n): {
            "id": str(n),
            "createTime": 1584652361 + n,
            "author": "someone",
            "video": {"playAddr": TT_PLAY},
        }
        for n in range(1, count + 1)
    }
    user = {"id": "11", "uniqueId": "someone", "nickname": "Some One", "secUid": "MS4w"}
    return {
        "UserPage": {"uniqueId": "someone", "statusCode": 0},
        "ItemModule": items,
        "ItemList": {"user-post": {"list": list(reversed(items)), "hasMore": True, "cursor": "0"}},
        "UserModule": {
            "users": {"someone": user},
            "stats": {"someone": {"followerCount": 9, "videoCount": 3}},
        },
        **extra,
    }


def test_tiktok_sigi_profile_page_is_a_listing_never_its_first_item() -> None:
    page = tiktok_document(sigi_profile())
    assert isinstance(page, PostPage)
    assert [video.video_id for video in page.videos] == ["3", "2", "1"]  # ItemList order
    assert page.has_more is True
    assert page.author is not None and (page.author.unique_id, page.author.uid) == ("someone", "11")
    assert all(video.author.nickname == "Some One" for video in page.videos)  # UserModule user in place
    with pytest.raises(LayoutChanged, match=r"listing \(3 posts\)"):
        tiktok_video_detail_item(sigi_profile())


def test_tiktok_sigi_several_items_without_page_markers_are_a_listing() -> None:
    state = sigi_profile()
    del state["UserPage"], state["ItemList"]
    page = tiktok_document(state)
    assert isinstance(page, PostPage) and len(page.videos) == 3


def test_tiktok_sigi_video_page_stays_a_video() -> None:
    url = "https://www.tiktok.com/@someone/video/2"
    named = tiktok_document(sigi_profile(), url=url)
    assert isinstance(named, Video) and named.video_id == "2"  # the URL's item, even on a busy page
    state = sigi_profile(1)
    del state["UserPage"], state["ItemList"]
    lone = tiktok_document(state)
    assert isinstance(lone, Video) and lone.video_id == "1"
    video_page = tiktok_document({**sigi_profile(2), "VideoPage": {"statusCode": 0}})
    assert isinstance(video_page, Video)


def test_tiktok_sigi_profile_status_and_counters() -> None:
    with pytest.raises(NotFound, match="10221"):
        tiktok_document(sigi_profile(0, UserPage={"uniqueId": "someone", "statusCode": 10221}))
    profile = tiktok_user_detail(sigi_profile())
    assert profile.author.unique_id == "someone"
    assert profile.stats == {"followers": 9, "following": None, "likes": None, "videos": 3}


def test_tiktok_user_detail_with_posts_in_item_list_is_a_listing() -> None:
    detail = {"statusCode": 0, "userInfo": {"user": {"id": "1", "uniqueId": "nasa"}, "itemList": [tt_item()]}}
    page = tiktok_document({"__DEFAULT_SCOPE__": {"webapp.user-detail": detail}})
    assert isinstance(page, PostPage) and page.author is not None and page.author.unique_id == "nasa"
    empty = {"statusCode": 0, "userInfo": {"user": {"id": "1", "uniqueId": "nasa"}, "itemList": []}}
    assert isinstance(tiktok_document({"__DEFAULT_SCOPE__": {"webapp.user-detail": empty}}), Profile)


def test_tiktok_reflow_scope_share_user_is_not_the_author() -> None:
    scope = {
        "webapp.reflow.video.detail": {
            "statusCode": 0,
            "statusMessage": "",
            "itemInfo": {"itemStruct": tt_item()},
        },
        "webapp.reflow.global.shareUser": {
            "statusCode": 0,
            "shareUser": {"uniqueId": "sharer", "nickname": "S"},
        },
    }
    video = tiktok_document({"__DEFAULT_SCOPE__": scope})
    assert isinstance(video, Video) and video.author.unique_id == "someone"
    scope["webapp.reflow.video.detail"] = {"statusCode": 10216, "statusMessage": "private", "itemInfo": {}}
    with pytest.raises(PrivateContent, match="private"):
        tiktok_document({"__DEFAULT_SCOPE__": scope})


# --------------------------------------------------------------------------- recognition by keys


def test_post_recognizers_judge_by_the_objects_own_keys() -> None:
    assert is_tiktok_item(tt_item())
    assert is_tiktok_item({"id": "1", "author": "someone", "video": {}})  # SIGI string author
    assert not is_tiktok_item({"id": "1", "uniqueId": "u", "createTime": 1, "secUid": "s"})  # a user
    assert not is_tiktok_item(dy_aweme())
    assert is_douyin_aweme(dy_aweme())
    assert is_douyin_aweme(WEB_DETAIL)  # camelCase web shape
    comment = {"cid": "7", "aweme_id": "7071967230287744267", "create_time": 1, "text": "hi", "user": {}}
    assert not is_douyin_aweme(comment)
    assert not is_douyin_aweme({"aweme_id": "1", "digg_count": 3})  # a statistics block
    assert not is_douyin_aweme(tt_item())


def test_tiktok_search_item_list_is_a_listing_not_a_douyin_status() -> None:
    search = {
        "status_code": 0,
        "item_list": [tt_item(), tt_item(id="7000000000000000002")],
        "has_more": 1,
        "cursor": 12,
    }
    page = read_payload(search)
    assert isinstance(page, PostPage)
    assert [v.platform for v in page.videos] == ["tiktok", "tiktok"]
    assert (page.has_more, page.cursor, page.cursor_key) == (True, 12, "cursor")


def test_general_search_wrappers_and_mixed_entries() -> None:
    general = {
        "status_code": 0,
        "data": [
            {"type": 1, "item": tt_item()},
            {"type": 4, "user_list": [{"user_info": {"uid": "1", "nickname": "n", "sec_uid": "MS4w"}}]},
            {"type": 1, "item": tt_item(id="7000000000000000002")},
        ],
        "has_more": 0,
        "cursor": 10,
    }
    page = read_payload(general)
    assert isinstance(page, PostPage) and len(page.videos) == 2 and page.has_more is False
    douyin = {"status_code": 0, "data": [{"type": 1, "aweme_info": dy_aweme()}], "has_more": 1, "cursor": 10}
    found = read_payload(douyin)
    assert isinstance(found, PostPage) and found.videos[0].platform == "douyin"


def test_find_posts_is_shallowest_first_bounded_and_stops_at_posts() -> None:
    nested = {"code": 200, "msg": "ok", "data": {"status_code": 0, "aweme_list": [dy_aweme()], "has_more": 1}}
    found = find_posts(nested)
    assert found is not None and len(found.posts) == 1 and found.holder["has_more"] == 1
    assert find_posts({"a": {"b": {"c": [tt_item()]}}}, max_depth=1) is None
    assert find_posts({"a": {"b": {"c": [tt_item()]}}}, max_depth=2) is not None
    # a post's own lists (an originalItem inside) are not a listing
    assert find_posts({"x": tt_item(originalItem=[tt_item(id="9")])}) is None
    item_module = {"7000000000000000001": tt_item()}
    found = find_posts({"ItemModuleLike": item_module})
    assert found is not None and len(found.posts) == 1
    assert find_posts({"keyed": {"other-key": tt_item()}}) is None  # a mapping of posts is keyed by their ids


def test_lone_items_bare_envelopes_and_unplaceable_payloads() -> None:
    assert isinstance(read_payload(tt_item()), Video)
    assert isinstance(read_payload(dy_aweme()), Video)
    with pytest.raises(NotFound):
        read_payload({"statusCode": 10204, "statusMsg": "item doesn't exist"})
    with pytest.raises(Blocked):
        read_payload({"status_code": 4, "status_msg": "服务器打瞌睡"})
    with pytest.raises(LayoutChanged, match=r"keys: \['comments', 'total'\]"):
        read_payload({"comments": [{"cid": "1", "aweme_id": "2", "create_time": 1, "text": "t"}], "total": 1})
    reflow_settings = {"__DEFAULT_SCOPE__": {"webapp.reflow.video.strategy": {}, "webapp.app-context": {}}}
    with pytest.raises(
        LayoutChanged, match=r"__DEFAULT_SCOPE__ keys: \['webapp.app-context', 'webapp.reflow"
    ):
        read_payload(reflow_settings)


# Trimmed from a real 2021 TikTok app-API search response (a=1233, tiktokcdn hosts), as published
# in VideoData/TiKTok-data "TikTok搜索Api/TikTokAPI接口，关键词搜索视频.md" @ db73fc5a: a third-party
# envelope {code, msg, data: {status_code, aweme_list}} around Douyin-shaped awemes from TikTok.
TT_APP_PLAY = (
    "https://v19-us.tiktokcdn.com/d745b264219778180f0613520238b159/61142b36/video/tos/useast2a/"
    "tos-useast2a-pve-0068/90891a382b5d4583a9657575238e81b4/?a=1233&br=3212&bt=1606&lr=all&mime_type=video_mp4"
)
TT_APP_AWEME = {
    "aweme_id": "6932229950720216325",
    "desc": "Bye furry friend🐻 #skincare #beauty",
    "create_time": 1614035575,
    "author": {
        "uid": "6752887346621023238",
        "short_id": "0",
        "nickname": "Truly Beauty",
        "unique_id": "trulybeauty",
    },
    "statistics": {"digg_count": 10, "comment_count": 2, "share_count": 1, "play_count": 5000},
    "video": {
        "play_addr": {
            "uri": "v09044fb0000c0q3kp2hjeqih4hvvdcg",
            "url_list": [TT_APP_PLAY],
            "url_key": "v09044fb0000c0q3kp2hjeqih4hvvdcg_h264_540p_1644771",
            "data_size": 5551515,
        },
        "height": 1024,
        "width": 576,
        "duration": 27002,
        "cover": {"url_list": ["https://p16-sign-va.tiktokcdn.com/obj/tos-maliva-p-0068/5e92"]},
    },
}


def test_tiktok_app_api_awemes_in_a_third_party_envelope_are_tiktok_posts() -> None:
    page = read_payload(
        {"code": 200, "msg": "成功", "data": {"status_code": 0, "aweme_list": [TT_APP_AWEME]}}
    )
    assert isinstance(page, PostPage)
    (video,) = page.videos
    assert video.platform == "tiktok"  # by its own hosts, although the shape is the aweme's
    assert video.share_url == "https://www.tiktok.com/@trulybeauty/video/6932229950720216325"
    assert video.statistics.plays == 5000  # TikTok sends real play counts; only Douyin hides them
    assert (video.duration, video.download_url) == (27, TT_APP_PLAY)
    assert douyin_aweme(dy_aweme()).platform == "douyin"


# --------------------------------------------------------------------------- channel listing


def test_channel_listing_keeps_undated_posts_out_of_since_and_sorts_them_last() -> None:
    dated, undated = tiktok_item(tt_item()), tiktok_item(tt_item(id="7000000000000000002", createTime=None))
    everything = ChannelListing(ChannelQuery(count=10))
    everything.add(PostPage([undated, dated], has_more=False))
    assert [v["video_id"] for v in everything.result(Profile(dated.author, {}))["videos"]] == [
        dated.video_id,
        undated.video_id,
    ]
    since = ChannelListing(ChannelQuery(count=10, since=datetime(2020, 1, 1, tzinfo=UTC)))
    since.add(PostPage([undated, dated], has_more=True))
    assert [v.video_id for v in since.regular] == [dated.video_id]
    assert since.reached_since is False  # an undated post says nothing about where the day ends
