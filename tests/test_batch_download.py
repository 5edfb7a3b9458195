"""``shortvid download``'s engine, run twice into one folder against the fixture site: the names
follow the template, the bytes are the replica's, and the second run fetches nothing."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fixtures.site import FixtureSite
from scraper.archive import DEFAULT_NAME, DownloadArchive
from scraper.batch import Destination, download_url
from scraper.channel import ChannelQuery
from scraper.config import load_browser_settings
from scraper.naming import OutputTemplate
from scraper.pool import BrowserPool

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
async def pool(site: FixtureSite) -> AsyncIterator[BrowserPool]:
    async with BrowserPool(replace(load_browser_settings().pointed_at(site), pool_size=2)) as browser_pool:
        yield browser_pool


def _account(dataset: dict[str, Any], platform: str, role: str) -> dict[str, Any]:
    return next(a for a in dataset["accounts"] if a["platform"] == platform and a["role"] == role)


def _files(folder: Path) -> dict[str, str]:
    """Relative path → sha256 of every media file under ``folder`` (not the archive)."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != DEFAULT_NAME
    }


async def _run(pool: BrowserPool, url: str, folder: Path, count: int = 20) -> Any:
    where = Destination(folder, OutputTemplate.parse("{author_id}/{date} {title} [{id}]{n}.{ext}"))
    where = replace(where, archive=DownloadArchive(folder / DEFAULT_NAME))
    return await download_url(pool, url, where, query=ChannelQuery(count=count, since=None))


async def test_a_channel_downloaded_twice_leaves_one_copy_of_each_file(
    pool: BrowserPool, dataset: dict[str, Any], tmp_path: Path
) -> None:
    account = _account(dataset, "tiktok", "medium")
    first = await _run(pool, account["profile_url"], tmp_path, count=6)
    assert len(first.done) == 6 and not first.failed and not first.skipped
    after_first = _files(tmp_path)
    assert len(after_first) == 6
    items = {item["id"]: item for item in account["items"]}
    for name, digest in after_first.items():
        video_id = name.rsplit("[", 1)[1].split("]", 1)[0]
        assert name.startswith(f"{account['unique_id']}/{items[video_id]['create_time'][:10]} ")
        assert name.endswith(f"[{video_id}].mp4")
        assert digest == items[video_id]["media_sha256"]  # the watermark-free bytes of the replica
    second = await _run(pool, account["profile_url"], tmp_path, count=6)
    assert second.done == [] and second.files == [] and sorted(second.skipped) == sorted(first.done)
    assert _files(tmp_path) == after_first
    assert len((tmp_path / DEFAULT_NAME).read_text().splitlines()) == 6


async def test_files_already_there_are_kept_when_the_archive_is_gone(
    pool: BrowserPool, dataset: dict[str, Any], tmp_path: Path
) -> None:
    photos = _account(dataset, "douyin", "photos")
    post = next(item for item in photos["items"] if item["kind"] == "photo")
    first = await _run(pool, post["url"], tmp_path)
    names = _files(tmp_path)
    images = [name for name in names if name.endswith(".jpg")]
    assert len(images) == len(post["image_sha256"]) > 1
    assert [names[name] for name in sorted(images)] == post["image_sha256"]  # numbered 01, 02… in order
    assert len(first.files) == len(names)
    (tmp_path / DEFAULT_NAME).unlink()
    again = await _run(pool, post["url"], tmp_path)
    assert again.files == [] and again.skipped == [post["id"]]
    assert _files(tmp_path) == names
