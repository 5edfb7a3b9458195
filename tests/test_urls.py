"""URL classification: every accepted form, every rejection, and the route checks."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from scraper.errors import InvalidUrl, WrongKind, WrongPlatform
from scraper.urls import (
    DOWNLOAD_ROUTES,
    FAMILY_KINDS,
    MAX_URL_LENGTH,
    ParsedUrl,
    classify,
    find_url,
    require,
    require_route,
)

VID = "7071967230287744267"
TTV = "7675963488111480072"
SEC = "MS4wLjABAAAAv7iSuuXDJGDvJkmH_vz1qkDZYo1apxgzaxdBSeIuPiM"
DY_VIDEO = f"https://www.douyin.com/video/{VID}"
DY_NOTE = f"https://www.douyin.com/note/{VID}"
DY_USER = f"https://www.douyin.com/user/{SEC}"
TT_VIDEO = f"https://www.tiktok.com/@_/video/{TTV}"
TT_PHOTO = f"https://www.tiktok.com/@_/photo/{TTV}"
#: A TikTok sec_uid as links built from API data carry it (yt-dlp's TikTokIE test URL).
TT_SEC = "MS4wLjABAAAATh8Vewkn0LYM7Fo03iec3qKdeCUOcBIouRk1mkiag6h3o_pQu_dUXvZ2EZlGST7_"
LIVE = "live streams are not supported; paste a video, photo post or profile link"

#: (input, platform, kind, id, user, canonical_url)
ACCEPTED = [
    # Douyin items
    (DY_VIDEO, "douyin", "video", VID, None, DY_VIDEO),
    (f"{DY_VIDEO}/?previous_page=app_code_link", "douyin", "video", VID, None, DY_VIDEO),
    (f"https://douyin.com/video/{VID}", "douyin", "video", VID, None, DY_VIDEO),
    (f"https://www.douyin.com/note/{VID}", "douyin", "photo", VID, None, DY_NOTE),
    (f"https://www.douyin.com/jingxuan?modal_id={VID}", "douyin", "video", VID, None, DY_VIDEO),
    (f"https://www.douyin.com/discover?modal_id={VID}", "douyin", "video", VID, None, DY_VIDEO),
    (f"https://www.douyin.com/user/{SEC}?modal_id={VID}", "douyin", "video", VID, None, DY_VIDEO),
    (f"https://www.douyin.com/?recommend=1&modal_id={VID}", "douyin", "video", VID, None, DY_VIDEO),
    (f"https://www.douyin.com/user/self?showTab=like&modal_id={VID}", "douyin", "video", VID, None, DY_VIDEO),
    # ... a modal_id on any other www.douyin.com page is the item it shows
    (f"https://www.douyin.com/channel/300203?modal_id={VID}", "douyin", "video", VID, None, DY_VIDEO),
    (f"https://www.douyin.com/follow?modal_id={VID}", "douyin", "video", VID, None, DY_VIDEO),
    (
        f"https://www.douyin.com/search/%E7%8C%AB?aid=f1a2&modal_id={VID}&type=general",
        "douyin",
        "video",
        VID,
        None,
        DY_VIDEO,
    ),
    (f"https://www.douyin.com/root/search/cats?modal_id={VID}", "douyin", "video", VID, None, DY_VIDEO),
    (f"https://www.douyin.com/jingxuan/search/cats?modal_id={VID}", "douyin", "video", VID, None, DY_VIDEO),
    (f"https://douyin.com/hot/2071234?modal_id={VID}", "douyin", "video", VID, None, DY_VIDEO),
    (f"https://www.douyin.com/user/{SEC}/?modal_id={VID}&vid=1", "douyin", "video", VID, None, DY_VIDEO),
    (f"https://www.douyin.com/share/user/{SEC}?modal_id={VID}", "douyin", "video", VID, None, DY_VIDEO),
    # ... but /video/<id> and /note/<id> name their own item whatever the query says
    (f"{DY_VIDEO}?modal_id=7000000000000000001", "douyin", "video", VID, None, DY_VIDEO),
    (f"{DY_NOTE}?modal_id=7000000000000000001", "douyin", "photo", VID, None, DY_NOTE),
    (f"https://m.douyin.com/share/video/{VID}/", "douyin", "video", VID, None, DY_VIDEO),
    (f"https://www.douyin.com/share/video/{VID}", "douyin", "video", VID, None, DY_VIDEO),
    (
        f"https://www.iesdouyin.com/share/video/{VID}/?region=CN&mid=7071&u_code=0&did=1&iid=2"
        "&with_sec_did=1&titleType=title&share_sign=abc&from_aid=6383&from_ssr=1&from=web_code_link",
        "douyin",
        "video",
        VID,
        None,
        DY_VIDEO,
    ),
    (f"https://www.iesdouyin.com/share/note/{VID}/?region=CN", "douyin", "photo", VID, None, DY_NOTE),
    (f"https://www.iesdouyin.com/share/slides/{VID}/", "douyin", "photo", VID, None, DY_NOTE),
    # Douyin profiles
    (DY_USER, "douyin", "user", None, SEC, DY_USER),
    (f"{DY_USER}/", "douyin", "user", None, SEC, DY_USER),
    (
        "https://www.douyin.com/user/selfie_account",
        "douyin",
        "user",
        None,
        "selfie_account",
        "https://www.douyin.com/user/selfie_account",
    ),
    (f"{DY_USER}?from_tab_name=main&is_search=0", "douyin", "user", None, SEC, DY_USER),
    (f"https://www.iesdouyin.com/share/user/{SEC}?sec_uid={SEC}", "douyin", "user", None, SEC, DY_USER),
    # Douyin short links
    ("https://v.douyin.com/iRNBho6u/", "douyin", "short", None, None, "https://v.douyin.com/iRNBho6u/"),
    ("https://v.douyin.com/iRNBho6u", "douyin", "short", None, None, "https://v.douyin.com/iRNBho6u/"),
    ("https://v.douyin.com/iRNBho6u/3.05", "douyin", "short", None, None, "https://v.douyin.com/iRNBho6u/"),
    ("http://v.douyin.com/a_b-C9/", "douyin", "short", None, None, "https://v.douyin.com/a_b-C9/"),
    # TikTok items
    (
        f"https://www.tiktok.com/@bundayul52/video/{TTV}",
        "tiktok",
        "video",
        TTV,
        "bundayul52",
        f"https://www.tiktok.com/@bundayul52/video/{TTV}",
    ),
    (
        f"https://www.tiktok.com/@bundayul52/video/{TTV}?_r=1&_t=ZS-997EVrv5MHA",
        "tiktok",
        "video",
        TTV,
        "bundayul52",
        f"https://www.tiktok.com/@bundayul52/video/{TTV}",
    ),
    (
        f"https://www.tiktok.com/@nasa.gov_x/video/{TTV}?is_from_webapp=1&sender_device=pc",
        "tiktok",
        "video",
        TTV,
        "nasa.gov_x",
        f"https://www.tiktok.com/@nasa.gov_x/video/{TTV}",
    ),
    (
        f"https://www.tiktok.com/@a.b/photo/{TTV}",
        "tiktok",
        "photo",
        TTV,
        "a.b",
        f"https://www.tiktok.com/@a.b/photo/{TTV}",
    ),
    # sec_uid or empty where the handle goes: the video, under the "_" placeholder
    (f"https://www.tiktok.com/@{TT_SEC}/video/{TTV}", "tiktok", "video", TTV, None, TT_VIDEO),
    (f"https://www.tiktok.com/@{TT_SEC}/video/{TTV}?lang=en", "tiktok", "video", TTV, None, TT_VIDEO),
    (f"https://www.tiktok.com/@{TT_SEC}/photo/{TTV}", "tiktok", "photo", TTV, None, TT_PHOTO),
    (f"https://www.tiktok.com/@/video/{TTV}/", "tiktok", "video", TTV, None, TT_VIDEO),
    (f"https://www.tiktok.com/@/photo/{TTV}", "tiktok", "photo", TTV, None, TT_PHOTO),
    (TT_VIDEO, "tiktok", "video", TTV, None, TT_VIDEO),
    # share links, on tiktok.com and on the tiktokv.com share domain (mapped to www.tiktok.com)
    (f"https://www.tiktok.com/share/video/{TTV}/", "tiktok", "video", TTV, None, TT_VIDEO),
    (f"https://www.tiktok.com/share/photo/{TTV}", "tiktok", "photo", TTV, None, TT_PHOTO),
    (f"https://m.tiktok.com/share/video/{TTV}?u_code=x", "tiktok", "video", TTV, None, TT_VIDEO),
    (f"https://www.tiktokv.com/share/video/{TTV}/", "tiktok", "video", TTV, None, TT_VIDEO),
    (f"https://tiktokv.com/share/video/{TTV}", "tiktok", "video", TTV, None, TT_VIDEO),
    (f"https://www.tiktokv.com/share/photo/{TTV}/", "tiktok", "photo", TTV, None, TT_PHOTO),
    (
        f"https://www.tiktokv.com/@x/video/{TTV}",
        "tiktok",
        "video",
        TTV,
        "x",
        f"https://www.tiktok.com/@x/video/{TTV}",
    ),
    (f"https://m.tiktok.com/v/{TTV}.html", "tiktok", "video", TTV, None, TT_VIDEO),
    (f"https://m.tiktok.com/v/{TTV}", "tiktok", "video", TTV, None, TT_VIDEO),
    (f"https://www.tiktok.com/embed/v2/{TTV}", "tiktok", "video", TTV, None, TT_VIDEO),
    (f"https://www.tiktok.com/embed/{TTV}", "tiktok", "video", TTV, None, TT_VIDEO),
    (f"tiktok.com/@x/video/{TTV}", "tiktok", "video", TTV, "x", f"https://www.tiktok.com/@x/video/{TTV}"),
    (
        f"http://www.tiktok.com/@x/video/{TTV}",
        "tiktok",
        "video",
        TTV,
        "x",
        f"https://www.tiktok.com/@x/video/{TTV}",
    ),
    (
        f"HTTPS://WWW.TIKTOK.COM/@x/video/{TTV}",
        "tiktok",
        "video",
        TTV,
        "x",
        f"https://www.tiktok.com/@x/video/{TTV}",
    ),
    (
        f"https://www.tiktok.com./@x/video/{TTV}#comments",
        "tiktok",
        "video",
        TTV,
        "x",
        f"https://www.tiktok.com/@x/video/{TTV}",
    ),
    (
        f"https://www.tiktok.com:443/%40x/video/{TTV}",
        "tiktok",
        "video",
        TTV,
        "x",
        f"https://www.tiktok.com/@x/video/{TTV}",
    ),
    # TikTok profiles
    ("https://www.tiktok.com/@nasa", "tiktok", "user", None, "nasa", "https://www.tiktok.com/@nasa"),
    ("https://www.tiktok.com/@nasa/", "tiktok", "user", None, "nasa", "https://www.tiktok.com/@nasa"),
    (
        "https://www.tiktok.com/@n.a_sa?lang=en",
        "tiktok",
        "user",
        None,
        "n.a_sa",
        "https://www.tiktok.com/@n.a_sa",
    ),
    ("tiktok.com/@nasa", "tiktok", "user", None, "nasa", "https://www.tiktok.com/@nasa"),
    ("http://www.tiktok.com:80/@nasa", "tiktok", "user", None, "nasa", "https://www.tiktok.com/@nasa"),
    ("www.tiktok.com/@nasa", "tiktok", "user", None, "nasa", "https://www.tiktok.com/@nasa"),
    # TikTok short links
    ("https://vm.tiktok.com/ZMabc123/", "tiktok", "short", None, None, "https://vm.tiktok.com/ZMabc123/"),
    ("https://vt.tiktok.com/ZSabc123", "tiktok", "short", None, None, "https://vt.tiktok.com/ZSabc123/"),
    (
        "https://www.tiktok.com/t/ZTabc123/?_r=1",
        "tiktok",
        "short",
        None,
        None,
        "https://www.tiktok.com/t/ZTabc123/",
    ),
    ("vm.tiktok.com/ZMabc123", "tiktok", "short", None, None, "https://vm.tiktok.com/ZMabc123/"),
]


@pytest.mark.parametrize(("text", "platform", "kind", "item_id", "user", "canonical"), ACCEPTED)
def test_classify_accepts(
    text: str, platform: str, kind: str, item_id: str | None, user: str | None, canonical: str
) -> None:
    assert classify(text) == ParsedUrl(platform, kind, item_id, user, canonical)  # type: ignore[arg-type]


SHARE_TEXTS = [
    (
        "7.43 复制打开抖音，看看【xx的作品】... https://v.douyin.com/iRNBho6u/ 07/20 ZzG:/ i@c.Ec",
        "https://v.douyin.com/iRNBho6u/",
    ),
    (
        "2.00 vSl:/ 复制打开抖音，看看【某某的作品】# 旅行 https://v.douyin.com/iRNBho6u/3.05 复制此链接",
        "https://v.douyin.com/iRNBho6u/",
    ),
    ("复制打开抖音https://v.douyin.com/iRNBho6u/复制此链接，打开Dou音搜索", "https://v.douyin.com/iRNBho6u/"),
    ("看看【作品】https://v.douyin.com/iRNBho6u/。", "https://v.douyin.com/iRNBho6u/"),
    (
        f"Check this out! https://www.tiktok.com/@x/video/{TTV}?_r=1&_t=abc.",
        f"https://www.tiktok.com/@x/video/{TTV}",
    ),
    ("(https://vm.tiktok.com/ZMabc123/)", "https://vm.tiktok.com/ZMabc123/"),
    (f"https://www.tiktok.com/@x/video/{TTV}复制链接", f"https://www.tiktok.com/@x/video/{TTV}"),
    ("  https://vm.tiktok.com/ZMabc123/  \n", "https://vm.tiktok.com/ZMabc123/"),
]


@pytest.mark.parametrize(("text", "canonical"), SHARE_TEXTS)
def test_classify_share_text(text: str, canonical: str) -> None:
    assert classify(text).canonical_url == canonical


def test_find_url() -> None:
    text = "7.43 复制打开抖音，看看【xx的作品】... https://v.douyin.com/iRNBho6u/ 07/20 ZzG:/ i@c.Ec"
    assert find_url(text) == "https://v.douyin.com/iRNBho6u/"
    assert find_url("see https://a.example/x, and https://b.example/y") == "https://a.example/x"
    assert find_url("【HTTPS://vm.tiktok.com/ZMabc/】") == "HTTPS://vm.tiktok.com/ZMabc/"
    for text in ("", "no link here", "ftp://x.example/", "https:// nothing", "https://"):
        with pytest.raises(InvalidUrl, match="no URL found in the text"):
            find_url(text)


#: (input, a fragment of the message that says what to fix)
REJECTED = [
    ("", "empty"),
    ("   \n\t ", "empty"),
    (None, "string"),
    (b"https://www.tiktok.com/@x", "string"),
    ("https://www.tiktok.com/@x/video/" + "1" * 20 + "?q=" + "a" * MAX_URL_LENGTH, "longer than"),
    ("x" * (5 * MAX_URL_LENGTH), "too long"),
    ("javascript:alert(1)", "only http(s)"),
    ("file:///etc/passwd", "only http(s)"),
    ("ftp://www.douyin.com/video/7071967230287744267", "only http(s)"),
    ("data:text/html,<script>alert(1)</script>", "only http(s)"),
    ("https:www.tiktok.com/@x", "malformed"),
    ("https://user:pw@www.douyin.com/video/7071967230287744267", "user name or password"),
    ("https://tiktok.com@evil.net/@x", "user name or password"),
    ("https://www.tiktok.com:8080/@x", "port 8080"),
    ("https://www.tiktok.com:99999/@x", "invalid port"),
    ("https://127.0.0.1/video/7071967230287744267", "IP addresses"),
    ("https://[::1]/@x", "IP addresses"),
    ("https://localhost/@x", "not a Douyin or TikTok host"),
    ("https://www.tіktok.com/@x", "non-ASCII"),
    ("https://ｔｉｋｔｏｋ.com/@x", "non-ASCII"),
    ("https://www%2etiktok%2ecom/@x", "malformed"),
    ("https://www.tiktok.com\\@evil.net/@x", "backslashes"),
    ("https://douyin.com.evil.net/video/7071967230287744267", "not a Douyin or TikTok host"),
    ("https://evil-tiktok.com/@x", "not a Douyin or TikTok host"),
    ("https://example.com/", "not a Douyin or TikTok host"),
    ("https://www.douyin.com/user/self", "user/self"),
    ("https://www.douyin.com/user/self?showTab=like", "user/self"),
    ("https://www.ixigua.com/7071967230287744267", "Xigua"),
    (f"https://www.iesdouyin.com/xg/video/{VID}/", "Xigua"),
    ("https://www.douyin.com/search/cats", "not a video, photo or profile URL"),
    ("https://www.douyin.com/jingxuan", "not a video, photo or profile URL"),
    ("https://webcast.amemv.com/webcast/room/reflow/info/", "live streams"),
    ("https://v26-web.douyinvod.com/abc/video.mp4", "media or API host"),
    ("https://www.tiktok.com/music/original-sound-7071967230287744267", "not a video, photo or profile URL"),
    ("https://www.tiktok.com/tag/cats", "not a video, photo or profile URL"),
    (f"https://www.tiktok.com/@{TT_SEC}", "names a sec_uid"),
    (f"https://www.tiktok.com/@{TT_SEC}/", "names a sec_uid"),
    ("https://www.tiktokv.com/", "not a video, photo or profile URL"),
    ("https://www.tiktokv.com/@x", "not a video, photo or profile URL"),
    ("https://api16-normal-c-useast1a.tiktokv.com/aweme/v1/feed/", "media or API host"),
    (f"https://www.tiktok.com/share/video/{TTV}x", "5-25 digits"),
    (f"https://www.tiktok.com/@MS4wLjAB!/video/{TTV}", "TikTok handle"),
    ("https://www.douyin.com/channel/300203?modal_id=12", "5-25 digits"),
    ("https://www.tiktok.com/", "not a video, photo or profile URL"),
    ("https://www.douyin.com/video/1234", "5-25 digits"),
    ("https://www.douyin.com/video/" + "1" * 26, "5-25 digits"),
    ("https://www.douyin.com/video/12345abc", "5-25 digits"),
    ("https://www.douyin.com/video/١٢٣٤٥٦٧", "not a video"),  # cut at the first non-ASCII char
    ("https://www.douyin.com/video/%D9%A1%D9%A2%D9%A3%D9%A4%D9%A5", "5-25 digits"),
    (f"https://www.douyin.com/jingxuan?modal_id=x{VID}", "5-25 digits"),
    ("https://m.tiktok.com/v/abc.html", "5-25 digits"),
    (f"https://www.tiktok.com/@bad-handle/video/{TTV}", "TikTok handle"),
    ("https://www.douyin.com/user/abc", "sec_uid"),
    ("https://v.douyin.com/", "not a video, photo or profile URL"),
    ("https://vm.tiktok.com/a!b/", "short-link code"),
    ("just some words", "no URL found"),
    ("@nasa", "paste the full link"),
]


#: Live rooms, refused with one message whatever the host (none of these is "a media or API host").
LIVE_URLS = [
    "https://live.douyin.com/123456",
    "https://live.douyin.com/745964462470?room_id=7318296342189919011&enter_from_merge=web_share_link",
    "https://live.douyin.com/yall1102",  # a Douyin id instead of the room number
    "https://live.douyin.com/",
    "https://www.douyin.com/follow/live/53682367755?anchor_id=1566126704427592",
    "https://www.douyin.com/root/live/376034101029",
    "https://webcast.amemv.com/douyin/webcast/reflow/7318296342189919011?u_code=l1j9bkbd&from=share",
    "https://www.tiktok.com/@nasa/live",
    "https://www.tiktok.com/@nasa/live/?enter_from_merge=share",
    "tiktok.com/@n.a_sa/live",
    "https://m.tiktok.com/share/live/7209423610325322522/?language=en",
    "https://www.tiktok.com/live",
    "https://webcast.tiktok.com/webcast/room/info/?aid=1988&room_id=7209423610325322522",
    "看直播 https://live.douyin.com/123456 复制此链接",
]


@pytest.mark.parametrize("text", LIVE_URLS)
def test_live_links_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(InvalidUrl) as info:
        classify(text)
    assert str(info.value) == LIVE


def test_a_modal_id_wins_over_a_live_page() -> None:
    assert classify(f"https://www.douyin.com/follow/live/123?modal_id={VID}").canonical_url == DY_VIDEO


@pytest.mark.parametrize(("text", "fragment"), REJECTED)
def test_classify_rejects(text: object, fragment: str) -> None:
    with pytest.raises(InvalidUrl) as info:
        classify(text)  # type: ignore[arg-type]
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message and len(message) < 300


#: Strings built to sneak a foreign host, scheme or port past the check.
HOSTILE = [
    "https://www.tiktok.com.evil.net/@x",
    "https://tiktok.com.evil.net/@x/video/7675963488111480072",
    "https://evil.net/www.tiktok.com/@x",
    "https://evil.net?u=https://www.tiktok.com/@x",
    "https://evil.net#https://www.tiktok.com/@x",
    "https://www.tiktok.com@evil.net/@x",
    "https://www.tiktok.com%40evil.net/@x",
    "https://www.tiktok.com\\@evil.net/@x",
    "https://evil.net\\.tiktok.com/@x",
    "https://evil.net%2ewww.tiktok.com/@x",
    "https://www%2etiktok%2ecom/@x",
    "https://www.tiktok.com%2f@evil.net/@x",
    "https://ｔｉｋｔｏｋ.com/@x",
    "https://www.tіktok.com/@x",  # Cyrillic і
    "https://www.tiktok。com/@x",
    "https://xn--tktok-3ve.com/@x",
    "https://www.tiktok.com\t.evil.net/@x",
    "https://www.tiktok.com\x00.evil.net/@x",
    "https://www.tiktok.com:80@evil.net/@x",
    "https://www.tiktok.com:0/@x",
    "https://0x7f000001/@x",
    "https://2130706433/@x",
    "https://[::ffff:127.0.0.1]/@x",
    "http://169.254.169.254/latest/meta-data/",
    "https://localhost/@x",
    "javascript://www.tiktok.com/%0aalert(1)",
    "javascript:alert('https://www.tiktok.com/@x')",
    "data:text/html;base64,aHR0cHM6Ly93d3cudGlrdG9rLmNvbS9AeA==",
    "//evil.net/@x",
    "gopher://www.douyin.com/video/7071967230287744267",
    "https://v.douyin.com.evil.net/iRNBho6u/",
    "https://static.tiktokcdn.com/@x/video/7675963488111480072",
    "https://www.douyin.com/../../evil.net/video/1",
    "https://user@v.douyin.com/iRNBho6u/",
    f"https://www.tiktokv.com.evil.net/share/video/{TTV}",
    f"https://evil.net/share/video/{TTV}?modal_id={VID}",
    f"https://evil-tiktokv.com/share/video/{TTV}",
    f"https://www.tiktokv.com@evil.net/share/video/{TTV}",
    f"https://www%2etiktokv%2ecom/share/video/{TTV}",
    f"https://www.douyin.com.evil.net/search/x?modal_id={VID}",
    f"https://www.douyin.com/../../evil.net/?modal_id=x{VID}",
]

CANONICAL_HOSTS = {"www.douyin.com", "v.douyin.com", "www.tiktok.com", "vm.tiktok.com", "vt.tiktok.com"}


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_inputs_never_classify(text: str) -> None:
    try:
        parsed = classify(text)
    except InvalidUrl:
        return
    pytest.fail(f"accepted {text!r} as {parsed.canonical_url}")


@pytest.mark.parametrize("row", ACCEPTED + [(t, None, None, None, None, c) for t, c in SHARE_TEXTS])
def test_canonical_urls_stay_on_platform_hosts(row: tuple[str, ...]) -> None:
    parts = urlsplit(classify(row[0]).canonical_url)
    assert parts.scheme == "https"
    assert parts.hostname in CANONICAL_HOSTS
    assert not parts.query and not parts.fragment and not parts.username and parts.port is None


def test_to_json() -> None:
    parsed = classify(f"https://www.tiktok.com/@x/video/{TTV}?_r=1")
    assert parsed.to_json() == {
        "platform": "tiktok",
        "kind": "video",
        "id": TTV,
        "user": "x",
        "canonical_url": f"https://www.tiktok.com/@x/video/{TTV}",
    }


def test_parsed_url_is_frozen() -> None:
    parsed = classify(DY_VIDEO)
    with pytest.raises(AttributeError):
        parsed.id = "1"  # type: ignore[misc]


# --- require ---------------------------------------------------------------------------------------

TT_VIDEO_URL = f"https://www.tiktok.com/@x/video/{TTV}"

#: (url, route platform, route family, error class or None, expected message)
REQUIRE_CASES = [
    (DY_VIDEO, "douyin", "video", None, ""),
    (DY_NOTE, "douyin", "video", None, ""),
    ("https://v.douyin.com/iRNBho6u/", "douyin", "video", None, ""),
    ("https://v.douyin.com/iRNBho6u/", "douyin", "channel", None, ""),
    (DY_USER, "douyin", "channel", None, ""),
    (TT_VIDEO_URL, "tiktok", "video", None, ""),
    ("https://vm.tiktok.com/ZMabc123/", "tiktok", "channel", None, ""),
    (
        TT_VIDEO_URL,
        "douyin",
        "video",
        WrongPlatform,
        "This is a TikTok URL; use POST /api/tiktok/video/parse",
    ),
    (
        "https://www.tiktok.com/@x",
        "douyin",
        "video",
        WrongPlatform,
        "This is a TikTok URL; use POST /api/tiktok/channel/videos",
    ),
    (
        "https://vm.tiktok.com/ZMabc123/",
        "douyin",
        "channel",
        WrongPlatform,
        "This is a TikTok URL; use POST /api/tiktok/channel/videos",
    ),
    (DY_VIDEO, "tiktok", "video", WrongPlatform, "This is a Douyin URL; use POST /api/video/parse"),
    (DY_USER, "douyin", "video", WrongKind, "This is a profile URL; use POST /api/channel/videos"),
    (DY_VIDEO, "douyin", "channel", WrongKind, "This is a video URL; use POST /api/video/parse"),
    (DY_NOTE, "douyin", "channel", WrongKind, "This is a photo post URL; use POST /api/video/parse"),
    (
        "https://www.tiktok.com/@x",
        "tiktok",
        "video",
        WrongKind,
        "This is a profile URL; use POST /api/tiktok/channel/videos",
    ),
]


@pytest.mark.parametrize(("url", "platform", "family", "error", "message"), REQUIRE_CASES)
def test_require(url: str, platform: str, family: str, error: type[Exception] | None, message: str) -> None:
    parsed = classify(url)
    kinds = FAMILY_KINDS[family]  # type: ignore[index]
    if error is None:
        assert require(parsed, platform=platform, kinds=kinds) is parsed  # type: ignore[arg-type]
        return
    with pytest.raises(error) as info:
        require(parsed, platform=platform, kinds=kinds)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert isinstance(info.value, InvalidUrl)


def test_require_short_accepted_wherever_video_or_user_is() -> None:
    short = classify("https://vt.tiktok.com/ZSabc123/")
    assert require(short, platform="tiktok", kinds={"video"}) is short
    assert require(short, platform="tiktok", kinds={"user"}) is short
    with pytest.raises(WrongKind):
        require(short, platform="tiktok", kinds={"photo"})


def test_require_download_routes_hint() -> None:
    with pytest.raises(WrongKind, match=r"use POST /api/tiktok/channel/download$"):
        require(
            classify("https://www.tiktok.com/@x"),
            platform="tiktok",
            kinds=FAMILY_KINDS["video"],
            route_hint=DOWNLOAD_ROUTES,
        )
    with pytest.raises(WrongPlatform, match=r"use POST /api/video/download$"):
        require(
            classify(DY_VIDEO), platform="tiktok", kinds=FAMILY_KINDS["video"], route_hint=DOWNLOAD_ROUTES
        )


def test_require_route() -> None:
    assert require_route(classify(DY_USER), "/api/channel/download").user == SEC
    with pytest.raises(WrongPlatform, match=r"use POST /api/tiktok/video/download$"):
        require_route(classify(TT_VIDEO_URL), "/api/video/download")
    with pytest.raises(WrongKind, match=r"use POST /api/tiktok/video/parse$"):
        require_route(classify(TT_VIDEO_URL), "/api/tiktok/channel/videos")
    with pytest.raises(KeyError):
        require_route(classify(DY_VIDEO), "/api/nope")
