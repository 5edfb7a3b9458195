"""Properties of URL classification over hostile input (hypothesis), and the defects that led here.

``classify`` is total: any text either classifies to a platform page or raises ``InvalidUrl``
with a message, never another exception (which the API would answer with a 500). What it
accepts loads only a platform host, and classifying its own canonical URL gives it back.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import example, given

from scraper.errors import InvalidUrl
from scraper.hosts import platform_of_host
from scraper.urls import ParsedUrl, classify
from tests.strategies import any_url

VIDEO_ID = "7071967230287744267"


def _classify_or_none(text: str) -> ParsedUrl | None:
    try:
        return classify(text)
    except InvalidUrl as exc:
        assert str(exc), "an InvalidUrl must say what to fix"
        return None


@given(any_url())
@example("https://[::1]")
@example("https://www.douyin.com]/video/1 x")
@example("https://[::1")
@example("http://[fe80::1%25eth0]/")
@example(f"//www.douyin.com/video/{VIDEO_ID}")
@example(f"www.douyin.com/video/{VIDEO_ID}?x=http://127.0.0.1:9/")
@example(f"https://www.tiktokv.com/share/video/{VIDEO_ID}/")
@example(f"https://www.tiktok.com/@/video/{VIDEO_ID}")
@example(f"https://www.tiktok.com/@MS4wLjABAAAA{'x' * 64}/video/{VIDEO_ID}")
@example(f"https://www.douyin.com/search/%0A%E7%8C%AB?modal_id={VIDEO_ID}")
@example("https://live.douyin.com/123456")
def test_classify_is_total_and_only_yields_platform_pages(text: str) -> None:
    parsed = _classify_or_none(text)
    if parsed is None:
        return
    parts = urlsplit(parsed.canonical_url)
    assert parts.scheme == "https"
    assert parts.port is None and parts.username is None and not parts.query and not parts.fragment
    assert platform_of_host(parts.hostname or "") == parsed.platform
    assert classify(parsed.canonical_url) == parsed  # idempotent: the worker re-reads the stored URL


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (f"www.douyin.com/video/{VIDEO_ID}", f"https://www.douyin.com/video/{VIDEO_ID}"),
        (f"//www.douyin.com/video/{VIDEO_ID}", f"https://www.douyin.com/video/{VIDEO_ID}"),
        ("tiktok.com/@name", "https://www.tiktok.com/@name"),
        ("//vm.tiktok.com/ZTabc123/", "https://vm.tiktok.com/ZTabc123/"),
        (
            f"www.douyin.com/video/{VIDEO_ID}?x=http://127.0.0.1:9/",
            f"https://www.douyin.com/video/{VIDEO_ID}",
        ),
    ],
)
def test_bare_and_scheme_relative_urls_classify(text: str, canonical: str) -> None:
    assert classify(text).canonical_url == canonical


@pytest.mark.parametrize(
    "text",
    ["https://[::1]", "https://www.douyin.com]/video/1 x", "https://[::1", "https://www.douyin.com[/video/1"],
)
def test_brackets_in_hosts_are_invalid_urls(text: str) -> None:
    with pytest.raises(InvalidUrl, match="IP addresses are not accepted"):
        classify(text)
