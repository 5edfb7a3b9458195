"""What the templates show, computed in Python: labels, formats, safe links, image sources.

Everything a result holds is platform (that is, attacker-controlled) text. Templates escape it
(autoescape is on and nothing here is marked safe); links are kept only when they are ``http(s)``
(an escaped ``javascript:`` URL is still a script), and images only when they are our files or
URLs the media proxy will fetch for this viewer.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from models.tables import JobState
from models.types import utcnow
from server.console.media_proxy import media_url
from server.media import FILE_ROUTE

JOB_KINDS: dict[str, str] = {
    "video.parse": "Parse",
    "video.download": "Download",
    "channel.videos": "Channel videos",
    "channel.download": "Channel download",
}
#: The console's form actions and the job type (without the platform prefix) each one submits.
ACTIONS: dict[str, str] = {
    "parse": "video.parse",
    "download": "video.download",
    "channel": "channel.videos",
    "channel_download": "channel.download",
}
PLATFORM_NAMES = {"douyin": "Douyin", "tiktok": "TikTok"}
FINISHED_TASK = ("completed", "partial", "failed")


def base_type(job_type: str) -> str:
    """``tiktok.video.parse`` -> ``video.parse``."""
    return job_type.removeprefix("tiktok.")


def kind_label(job_type: str) -> str:
    return JOB_KINDS.get(base_type(job_type), job_type)


def is_task(job_type: str) -> bool:
    return base_type(job_type) == "channel.download"


def href(url: object) -> str | None:
    """``url`` if a browser may follow it as a plain link (http or https), else None."""
    if not isinstance(url, str) or len(url) > 4096:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def local_file(url: object) -> str | None:
    """One of our ``/api/files/<id>`` paths (a result's, stored relative), else None."""
    if isinstance(url, str) and url.startswith(FILE_ROUTE) and "/" not in url[len(FILE_ROUTE) :]:
        return url
    return None


def image_source(key: str) -> Callable[[object], str | None]:
    """``src`` for an image of a result: our file as it is, a platform image through the proxy."""

    def source(url: object) -> str | None:
        return local_file(url) or media_url(key, url)

    return source


def duration(seconds: object) -> str:
    """``75`` -> ``1:15``; nothing for 0 or no value."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
        return ""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def number(value: object) -> str:
    """Counts as people read them: ``999``, ``1.2k``, ``3.4M``; a dash for no value."""
    if not isinstance(value, int) or isinstance(value, bool):
        return "–"
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if abs(value) >= size:
            text = f"{value / size:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    return str(value)


def size(value: object) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        return "–"
    amount = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GB"


def moment(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def when(value: object) -> str:
    """``2026-12-02 01:01 UTC`` (from a datetime or an ISO string)."""
    found = moment(value)
    return found.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if found else "–"


def ago(value: object, *, now: datetime | None = None) -> str:
    """``just now``, ``4 min ago``, ``3 h ago``, ``2 d ago``."""
    found = moment(value)
    if found is None:
        return "–"
    seconds = ((now or utcnow()) - found).total_seconds()
    if seconds < 45:
        return "just now"
    for span, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= span:
            return f"{int(seconds // span)} {unit} ago"
    return "just now"


def took(start: object, end: object) -> str:
    """How long from ``start`` to ``end`` (``1.4 s``, ``2 min 5 s``), nothing when either is missing."""
    first, last = moment(start), moment(end)
    if first is None or last is None:
        return ""
    seconds = max(0.0, (last - first).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s"


def pretty_json(value: Any) -> str:
    """The raw answer, indented, non-ASCII kept (escaped by the template like any text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def state_class(state: object) -> str:
    """The badge colour of a job, task or item state (a fixed set: never the text itself)."""
    known = {
        JobState.WAITING: "waiting",
        JobState.DELAYED: "delayed",
        JobState.ACTIVE: "active",
        JobState.COMPLETED: "completed",
        JobState.FAILED: "failed",
        "started": "waiting",
        "running": "active",
        "partial": "delayed",
        "pending": "waiting",
        "done": "completed",
        "healthy": "completed",
        "cooling": "delayed",
        "retired": "failed",
    }
    return known.get(str(state), "other")


@dataclass(frozen=True, slots=True)
class Stat:
    label: str
    value: str


def stats(result: dict[str, Any]) -> list[Stat]:
    """A post's counters that the platform sent (plays and saves only when present)."""
    counters = result.get("statistics") or {}
    missing = set(result.get("missing") or [])
    shown = [("likes", "Likes"), ("comments", "Comments"), ("shares", "Shares")]
    shown += [
        (k, label) for k, label in (("plays", "Plays"), ("collects", "Saves")) if counters.get(k) is not None
    ]
    return [
        Stat(label, "–" if f"statistics.{key}" in missing else number(counters.get(key)))
        for key, label in shown
    ]


def files_of(result: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """A download result's files of one role (``video``, ``image``, ``music``)."""
    files = result.get("files") or []
    return [
        f
        for f in files
        if isinstance(f, dict) and f.get("role") == role and local_file(f.get("download_url"))
    ]


def photo_grid(result: dict[str, Any], source: Callable[[object], str | None]) -> list[str | None]:
    """A photo post's images in order: our files after a download, else the platform's (proxied)."""
    if result.get("media_type") != "photo":
        return []
    local = [f["download_url"] for f in files_of(result, "image")]
    if local:
        return local
    images = result.get("images") or []
    return [source(image.get("url")) if isinstance(image, dict) else None for image in images]


def file_links(files: object) -> list[tuple[str, str]]:
    """A task item's files as (label, our path): ``video``, ``image 1`` … ``image 4``, ``music``."""
    if not isinstance(files, list):
        return []
    counts = Counter(f.get("role") for f in files if isinstance(f, dict))
    seen: Counter[object] = Counter()
    links: list[tuple[str, str]] = []
    for file in files:
        path = local_file(file.get("download_url")) if isinstance(file, dict) else None
        if path is None:
            continue
        role = file.get("role")
        seen[role] += 1
        label = f"{role} {seen[role]}" if counts[role] > 1 else str(role)
        links.append((label, path))
    return links


def progress(done: object, failed: object, total: object) -> int:
    """Percent of a task's items that are finished, done or failed."""
    if not isinstance(total, int) or total <= 0:
        return 0
    finished = (done if isinstance(done, int) else 0) + (failed if isinstance(failed, int) else 0)
    return min(100, round(100 * finished / total))


FILTERS: dict[str, Callable[..., Any]] = {
    "duration": duration,
    "number": number,
    "size": size,
    "when": when,
    "ago": ago,
    "href": href,
    "pretty_json": pretty_json,
    "state_class": state_class,
    "kind_label": kind_label,
    "local": local_file,
    "file_links": file_links,
}
