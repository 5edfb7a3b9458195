"""The file store: layout, TTL, the size cap (oldest unpinned first), path safety."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import session_factory
from models.types import utcnow
from scraper.download import Downloaded, sniff
from server.files import FileStore, safe_part


def _store(engine: AsyncEngine, root: Path, max_bytes: int = 10**9) -> FileStore:
    return FileStore(root, session_factory(engine), ttl=timedelta(hours=1), max_bytes=max_bytes)


async def _put(store: FileStore, item: str, size: int, *, pinned: bool = False) -> str:
    path = store.target(platform="douyin", author="some author/..", item_id=item, name=f"video.{item}.mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    path.write_bytes(data)
    done = Downloaded(
        path, size, hashlib.sha256(data).hexdigest(), "video/mp4", "https://v26-web.douyinvod.com/x"
    )
    row = await store.register(
        done, platform="douyin", item_id=item, role="video", job_id=None, pinned=pinned
    )
    return row.id


async def test_layout_is_browsable_and_safe(engine: AsyncEngine, tmp_path: Path) -> None:
    store = _store(engine, tmp_path)
    file_id = await _put(store, "7301", 10)
    row = await store.get(file_id)
    assert row is not None and row.relpath == "douyin/some_author/7301/video.7301.mp4"
    assert store.path_of(row) == tmp_path / row.relpath
    row.relpath = "../../etc/passwd"
    assert store.path_of(row) is None
    assert safe_part("../..", "x") == "x" and safe_part(None, "unknown") == "unknown"


async def test_cap_evicts_oldest_unpinned_first(engine: AsyncEngine, tmp_path: Path) -> None:
    store = _store(engine, tmp_path, max_bytes=250)
    oldest_pinned = await _put(store, "1", 100, pinned=True)
    old = await _put(store, "2", 100)
    newer = await _put(store, "3", 100)
    assert await store.total_bytes() == 300
    assert await store.enforce_cap() == 1
    assert await store.get(old) is None and not list(tmp_path.rglob("video.2.mp4"))
    assert await store.get(oldest_pinned) is not None and await store.get(newer) is not None
    assert not (tmp_path / "douyin" / "some_author" / "2").exists()  # empty folders go too


async def test_expired_files_are_deleted(engine: AsyncEngine, tmp_path: Path) -> None:
    store = _store(engine, tmp_path)
    file_id = await _put(store, "9", 20)
    assert await store.expire(now=utcnow() + timedelta(minutes=30)) == 0
    assert await store.expire(now=utcnow() + timedelta(hours=2)) == 1
    assert await store.get(file_id) is None and not list(tmp_path.rglob("*.mp4"))


def test_stale_partials_are_swept(tmp_path: Path, engine: AsyncEngine) -> None:
    store = _store(engine, tmp_path)
    stale = tmp_path / "tiktok" / "a" / "1" / "video.x.mp4.part"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    fresh = stale.with_name("video.y.mp4.part")
    fresh.write_bytes(b"in flight")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert store.sweep_partials() == 1 and fresh.exists() and not stale.exists()


def test_sniff_tells_media_from_pages() -> None:
    assert sniff("video", b"\x00\x00\x00\x20ftypisom\x00\x00")
    assert not sniff("video", b"<!DOCTYPE html><html><head><title>")
    assert sniff("image", b"\xff\xd8\xff\xe0\x00\x10JFIF") and not sniff("image", b"<html>")
    assert sniff("music", b"ID3\x03\x00") and not sniff("music", b'{"status_code": 4}')
