"""Download file names: readable, predictable, and safe whatever a post's title or author says."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.video import Author, Video
from scraper.archive import DownloadArchive
from scraper.naming import DEFAULT_TEMPLATE, MAX_COMPONENT_BYTES, BadTemplate, OutputTemplate


def _video(title: str = "A day out", nickname: str = "Kenji", video_id: str = "7714499163582489306") -> Video:
    return Video(
        video_id=video_id,
        title=title,
        author=Author(nickname=nickname, unique_id="kenji_eats"),
        create_time="2026-12-02T01:15:01.000Z",
        platform="tiktok",
    )


def test_the_default_template_reads_like_the_issue_says() -> None:
    path = OutputTemplate.parse(DEFAULT_TEMPLATE).path_for(_video(), ext="mp4")
    assert path == PurePosixPath("Kenji/2026-12-02 A day out [7714499163582489306].mp4")


def test_a_photo_post_numbers_its_images() -> None:
    template = OutputTemplate.parse(DEFAULT_TEMPLATE)
    assert template.path_for(_video(), ext="jpg", number=3).name == (
        "2026-12-02 A day out [7714499163582489306] 03.jpg"
    )


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("", "empty"),
        ("/abs/{id}.{ext}", "relative"),
        ("{title}.{ext}", "{id}"),
        ("{nope} {id}.{ext}", "unknown field {nope}"),
        ("{author}/../{id}.{ext}", ".."),
        ("{id", "not valid"),
        ("{} {id}", "unknown field"),
    ],
)
def test_bad_templates_say_what_is_wrong(template: str, says: str) -> None:
    with pytest.raises(BadTemplate, match=says.replace("{", r"\{").replace("}", r"\}").replace(".", r"\.")):
        OutputTemplate.parse(template)


@given(title=st.text(max_size=400), nickname=st.text(max_size=200))
def test_any_title_and_author_give_a_safe_path_inside_the_folder(title: str, nickname: str) -> None:
    path = OutputTemplate.parse(DEFAULT_TEMPLATE).path_for(_video(title, nickname), ext="mp4", number=2)
    assert len(path.parts) == 2  # the template's one folder: no separator came from the text
    for part in path.parts:
        assert part not in ("", ".", "..") and not part.startswith(".")
        assert "/" not in part and "\\" not in part and "\x00" not in part
        assert all(ord(c) >= 0x20 and c != "\x7f" for c in part)
        assert len(part.encode()) <= MAX_COMPONENT_BYTES
    assert path.name.endswith("[7714499163582489306] 02.mp4")  # the id and extension survive any cut


def test_the_archive_is_yt_dlp_shaped_and_survives_a_reopen(tmp_path: Path) -> None:
    archive = DownloadArchive(tmp_path / "archive.txt")
    archive.add("TikTok", "1")
    archive.add("douyin", "2")
    archive.add("douyin", "2")
    assert (tmp_path / "archive.txt").read_text() == "tiktok 1\ndouyin 2\n"
    reopened = DownloadArchive(tmp_path / "archive.txt")
    assert ("tiktok", "1") in reopened and ("douyin", "2") in reopened and ("douyin", "1") not in reopened
    assert len(reopened) == 2
