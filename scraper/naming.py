"""File names for ``shortvid download``: readable by a person, predictable by a script (yt-dlp's ``-o``).

A template is Python format syntax over a post's fields, ``/`` separating folders::

    {author}/{date} {title} [{id}].{ext}

Fields: ``id``, ``title``, ``author`` (nickname, else handle), ``author_id`` (handle or uid),
``date`` (``YYYY-MM-DD`` of the post, UTC), ``platform``, ``n`` (the file's number within a photo
post, ``01``…; empty for a single file), ``ext``. Every value is made safe for every common file
system on its own (no separators, no control characters, no reserved names, bounded length), so a
title can never climb out of the output folder or make a name a file system refuses.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath

from models.video import Video

DEFAULT_TEMPLATE = "{author}/{date} {title} [{id}]{n}.{ext}"
FIELDS = frozenset({"id", "title", "author", "author_id", "date", "platform", "n", "ext"})
#: Longest part of a name taken from one field (bytes matter on ext4: 255 per path component).
MAX_FIELD_CHARS = 80
#: Bytes in one path component on ext4 and most other file systems.
MAX_COMPONENT_BYTES = 255
_KEPT_TAIL = 40
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)


class BadTemplate(ValueError):
    """The output template cannot be used (the message says why)."""


@dataclass(frozen=True, slots=True)
class OutputTemplate:
    """A checked template; ``path_for`` fills it in for one file of a post."""

    text: str

    @classmethod
    def parse(cls, text: str) -> OutputTemplate:
        """Check the fields and the shape once, before anything is downloaded."""
        if not text.strip():
            raise BadTemplate("the output template is empty")
        if text.startswith("/") or "\\" in text:
            raise BadTemplate("the output template must be a relative path with / between folders")
        try:
            names = {name for _, name, spec, conv in string.Formatter().parse(text) if name is not None}
        except ValueError as exc:
            raise BadTemplate(f"the output template is not valid: {exc}") from exc
        unknown = sorted(names - FIELDS)
        if unknown or "" in names:
            raise BadTemplate(
                f"unknown field {{{unknown[0] if unknown else ''}}} in the output template;"
                f" use {', '.join('{' + f + '}' for f in sorted(FIELDS))}"
            )
        if "id" not in names:
            raise BadTemplate("the output template must contain {id}, or two posts could get one name")
        if any(part in ("", ".", "..") for part in text.split("/")):
            raise BadTemplate("the output template has an empty, . or .. folder")
        return cls(text)

    def path_for(self, video: Video, *, ext: str, number: int | None = None) -> PurePosixPath:
        """The relative path of one file (``number``: its place among a photo post's files)."""
        values = {
            "id": safe_part(video.video_id),
            "title": safe_part(video.title) or "untitled",
            "author": safe_part(video.author.nickname or video.author.unique_id or "") or "unknown",
            "author_id": safe_part(video.author.unique_id or video.author.uid or video.author.sec_uid or "")
            or "unknown",
            "date": (video.create_time or "")[:10] or "undated",
            "platform": video.platform,
            "n": f" {number:02d}" if number is not None else "",
            "ext": ext,
        }
        parts = [_finish(part.format_map(values)) for part in self.text.split("/")]
        return PurePosixPath(*parts)


def safe_part(text: str) -> str:
    """One field's value as a piece of a file name: normalised, no separators or control characters."""
    text = unicodedata.normalize("NFC", text)
    text = _UNSAFE.sub(" ", text)
    text = " ".join(text.split())  # newlines, tabs, runs of spaces
    if len(text) > MAX_FIELD_CHARS:
        text = text[: MAX_FIELD_CHARS - 1].rstrip() + "…"
    return text.strip(" .")


def _finish(part: str) -> str:
    """A whole path component: never empty, ., .., hidden by accident, or a Windows device name."""
    part = part.strip(" ")
    part = part.rstrip(".") or "_"
    if part.startswith("."):
        part = "_" + part[1:]
    if _WINDOWS_RESERVED.match(part):
        part = "_" + part
    if len(part.encode()) > MAX_COMPONENT_BYTES:
        # Cut from the middle: the end holds ``[id].ext``, which must survive.
        tail = part[-_KEPT_TAIL:]
        room = MAX_COMPONENT_BYTES - len(tail.encode()) - len("…".encode())
        head = part[:-_KEPT_TAIL].encode()[:room].decode(errors="ignore").rstrip()
        part = head + "…" + tail
    return part
