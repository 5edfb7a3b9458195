"""The download archive: which posts a folder already holds, so a second run downloads nothing.

One line per post, ``<platform> <id>``: the format of yt-dlp's ``--download-archive`` (its
``YoutubeDL._make_archive_id`` writes the extractor key lowercased, a space, the id, and its
extractors for these sites are keyed ``Douyin`` and ``TikTok``), so one archive file serves both
tools. A post is recorded only once all of its files are in place; lines are appended and flushed
one at a time, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The archive's name inside the output folder when no other is given.
DEFAULT_NAME = ".shortvid-archive.txt"


class DownloadArchive:
    """The set of ``(platform, id)`` already downloaded, backed by a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._known: set[tuple[str, str]] = set()
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = line.split()
                if len(parts) == 2:
                    self._known.add((parts[0].lower(), parts[1]))

    def __contains__(self, post: tuple[str, str]) -> bool:
        platform, video_id = post
        return (platform.lower(), video_id) in self._known

    def __len__(self) -> int:
        return len(self._known)

    def add(self, platform: str, video_id: str) -> None:
        """Record one post whose files are all written (idempotent)."""
        key = (platform.lower(), video_id)
        if key in self._known:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as archive:
            archive.write(f"{key[0]} {key[1]}\n")
            archive.flush()
            os.fsync(archive.fileno())
        self._known.add(key)
