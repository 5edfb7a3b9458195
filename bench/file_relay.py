"""A file served by the node that holds it, then by another node that relays it, same run.

Two nodes (in this process, one SQLite database, each its own data directory) and one big file on
the first one's disk. Each client read downloads it whole in 1 MiB reads and throws the bytes away.
Reports MB/s for each way and the ratio relay/local, and the growth of this process's peak RSS
during the relayed reads (the relay streams 64 KiB chunks: it must stay far below the file's size).

.venv/bin/python -m bench.file_relay --megabytes 256 --reads 3
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer, unused_port

from models.db import sqlite_url
from scraper.download import Downloaded
from server.app import create_app
from server.keys import FILES
from server.settings import Settings

SECRET = "bench secret"


async def _node(root: Path, name: str) -> TestClient:
    port = unused_port()
    settings = Settings(
        data_dir=root / name,
        database_url=sqlite_url(root),
        role="api",
        rate_limit=0,
        port=port,
        node_url=f"http://127.0.0.1:{port}",
        node_secret=SECRET,
    )
    client = TestClient(TestServer(create_app(settings, on_first_token=lambda token, info: None), port=port))
    await client.start_server()
    return client


async def _big_file(holder: TestClient, megabytes: int) -> str:
    store = holder.app[FILES]
    path = store.target(platform="douyin", author="bench", item_id="1", name="video.1.mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(megabytes):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            out.write(block)
    done = Downloaded(path, megabytes * 1024 * 1024, digest.hexdigest(), "video/mp4", "https://bench/1")
    row = await store.register(done, platform="douyin", item_id="1", role="video", job_id=None)
    return row.id


async def _read(url: str) -> int:
    total = 0
    async with ClientSession() as session, session.get(url) as response:
        assert response.status == 200, response.status
        async for chunk in response.content.iter_chunked(1024 * 1024):
            total += len(chunk)
    return total


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


async def run(megabytes: int, reads: int) -> dict[str, Any]:
    with TemporaryDirectory() as tmp:
        root = Path(tmp)
        holder, other = await _node(root, "holder"), await _node(root, "other")
        try:
            file_id = await _big_file(holder, megabytes)
            figures: dict[str, Any] = {"megabytes": megabytes, "reads": reads}
            for way, client in (("local", holder), ("relay", other)):
                url = str(client.make_url(f"/api/files/{file_id}"))
                before = _peak_rss_mb()
                start = time.perf_counter()
                for _ in range(reads):
                    assert await _read(url) == megabytes * 1024 * 1024
                seconds = time.perf_counter() - start
                figures[f"{way}_mb_per_s"] = round(megabytes * reads / seconds, 1)
                figures[f"{way}_peak_rss_growth_mb"] = round(_peak_rss_mb() - before, 1)
            figures["relay_to_local"] = round(figures["relay_mb_per_s"] / figures["local_mb_per_s"], 3)
            return figures
        finally:
            await other.close()
            await holder.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=256)
    parser.add_argument("--reads", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.megabytes, args.reads)), indent=2))


if __name__ == "__main__":
    main()
