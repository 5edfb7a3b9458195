"""How the fast path reads an in-page fetch() answer: data, a block, or a miss (fall back to navigation).

Real pages from ../shared/real-captures/ stand for what the real sites send back to a fetch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scraper import errors
from scraper.fast import FastRequest, read_reply
from scraper.resident import PAGE_VALUES, Reply, page_value
from scraper.tiktok import read_video_page

CAPTURES = Path(__file__).resolve().parents[1].parent / "shared" / "real-captures"
HTML = FastRequest("/@x/video/1", answer="html")
JSON = FastRequest("/aweme/v1/web/aweme/detail/")


def reply(body: bytes, status: int = 200, **headers: str) -> Reply:
    return Reply(status, "https://www.tiktok.com/@x/video/1", headers, body)


def capture_file(name: str) -> bytes:
    return (CAPTURES / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("tiktok-captcha-security-check-page.tkkstarlink-20260415.html", errors.Blocked),
        ("douyin-captcha-middle-page.douyinstream-pro-20260115.html", errors.Blocked),
        ("tiktok-waf-challenge-page.snaptik-20260330.html", errors.FastPathMissed),
    ],
)
def test_a_real_block_or_challenge_page_in_a_reply(name: str, error: type[errors.ScraperError]) -> None:
    with pytest.raises(error) as raised:
        read_reply(reply(capture_file(name)), HTML)
    assert type(raised.value) is error  # a challenge is not scored as a block, a captcha is


def test_a_real_video_page_in_a_reply_is_read_like_a_navigation() -> None:
    capture = read_reply(reply(capture_file("tiktok-video-page.jarvis-2-20260630.html")), HTML)
    assert read_video_page(capture)["id"]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (reply(b""), errors.Blocked),  # the empty 200 of an untrusted call
        (reply(b"", **{"tt_orcas_res": "1"}), errors.Blocked),
        (reply(b"{}", 429), errors.RateLimited),
        (reply(b"Blocked by ArgusSecurityPlugin", 403), errors.Blocked),
        (reply(b"<html>not json</html>"), errors.LayoutChanged),
    ],
)
def test_api_answers_go_through_the_outcome_classifier(answer: Reply, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_reply(answer, JSON)


def test_a_block_shell_header_is_a_block_even_with_a_page() -> None:
    with pytest.raises(errors.Blocked):
        read_reply(reply(b"<html></html>", **{"X-TT-System-Error": "3"}), HTML)


def test_json_answers_arrive_parsed() -> None:
    assert read_reply(reply(b'{"status_code": 0}'), JSON).xhr == {"status_code": 0}


def test_page_values_are_checked_when_the_routes_are_defined() -> None:
    assert page_value("screen_width") == ("screen_width", "env", "screen_width")
    with pytest.raises(ValueError, match="unknown page value"):
        page_value("screen_wdith")
    assert "os" in PAGE_VALUES
