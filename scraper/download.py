"""Stream media with the cookies and headers of the session that parsed it.

The platforms sign media URLs, expire them, and bind them to the visitor's
cookies (TikTok's ``tt_chain_token``) and to a Referer (Douyin's CDN). We send
exactly what the session's browser would, through the platform-only client,
check what comes back (status, type, length, magic bytes), and write to a
temporary file renamed only when whole, so a half or fake file is never kept.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Literal

import aiohttp
from yarl import URL

from models.video import Video
from scraper.errors import Blocked, NetworkError, ScraperError, Unavailable
from scraper.http import platform_http_session
from scraper.outcome import media_answer_error, media_status_error
from scraper.session import Session

log = logging.getLogger(__name__)

MediaRole = Literal["video", "image", "music"]
CHUNK = 256 * 1024
SNIFF_BYTES = 4096
MAX_BYTES = 2 * 1024**3


@dataclass(frozen=True, slots=True)
class Downloaded:
    """A file written whole, with what we know about it."""

    path: Path
    size: int
    sha256: str
    content_type: str
    source_url: str


def media_plan(video: Video) -> list[tuple[MediaRole, str, str]]:
    """(role, name, url) of every file a post consists of: the video, or each image and the music."""
    if video.media_type == "photo":
        plan: list[tuple[MediaRole, str, str]] = [
            ("image", f"image-{n:02d}", image.url) for n, image in enumerate(video.images or [], start=1)
        ]
        if video.music and video.music.url:
            plan.append(("music", "music", video.music.url))
        return plan
    if not video.download_url:
        raise Unavailable(f"the platform gave no media URL for {video.video_id}")
    return [("video", "video", video.download_url)]


def sniff(role: MediaRole, head: bytes) -> bool:
    """Magic bytes of what ``role`` must be (an HTML captcha page fails every one of these)."""
    if role == "video":
        return head[4:8] == b"ftyp"
    if role == "image":
        return head.startswith((b"\xff\xd8\xff", b"\x89PNG", b"GIF8")) or (
            head[:4] == b"RIFF" and head[8:12] == b"WEBP"
        )
    return head.startswith((b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")) or head[4:8] == b"ftyp"


async def cookie_jar_of(session: Session) -> aiohttp.CookieJar:
    """The browser context's cookies, with their domains, as an aiohttp jar."""
    jar = aiohttp.CookieJar()
    for cookie in await session.context.cookies():
        morsel: SimpleCookie = SimpleCookie()
        morsel[cookie["name"]] = cookie["value"]
        domain = cookie.get("domain", "")
        if domain.startswith("."):
            morsel[cookie["name"]]["domain"] = domain
        morsel[cookie["name"]]["path"] = cookie.get("path", "/")
        jar.update_cookies(morsel, response_url=URL(f"https://{domain.lstrip('.')}/"))
    return jar


async def download(
    session: Session,
    url: str,
    target: Path,
    *,
    role: MediaRole,
    referer: str,
    max_bytes: int = MAX_BYTES,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> Downloaded:
    """Download ``url`` to ``target`` as the browser session would; ``on_progress(bytes so far,
    bytes expected or None)`` after each chunk (the command line's progress bars).

    Raises:
        Blocked: 403, or a captcha/HTML page where media should be (retry on a fresh session).
        NotFound: the media is gone (404).
        NetworkError: the connection failed or the body was cut short.
    """
    settings = session.settings
    headers = {"User-Agent": settings.user_agent, "Referer": referer, "Accept": "*/*"}
    ca_file = Path(settings.ca_file) if settings.ca_file else None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    size = 0
    try:
        async with (
            platform_http_session(
                map_to=settings.host_map,
                ca_file=ca_file,
                cookie_jar=await cookie_jar_of(session),
                timeout=600,
            ) as http,
            http.get(url, headers=headers, max_redirects=5) as response,
        ):
            if response.status != 200:
                raise media_status_error(response.status, await response.content.read(512), url)
            content_type = (
                response.headers.get("Content-Type", "application/octet-stream").split(";")[0].strip()
            )
            expected = response.content_length
            if expected is not None and expected > max_bytes:
                raise Blocked(f"the media is larger than the {max_bytes} byte limit", url=url)
            with partial.open("wb") as sink:
                head = b""  # the first bytes: magic numbers, or enough of a page to say what it is
                async for chunk in response.content.iter_chunked(CHUNK):
                    if len(head) < SNIFF_BYTES:
                        head += chunk[: SNIFF_BYTES - len(head)]
                        if len(head) >= SNIFF_BYTES and not sniff(role, head):
                            raise media_answer_error(role, content_type, head, url)
                    size += len(chunk)
                    if size > max_bytes:
                        raise Blocked(f"the media exceeded the {max_bytes} byte limit", url=url)
                    digest.update(chunk)
                    sink.write(chunk)
                    if on_progress is not None:
                        on_progress(size, expected)
                if not sniff(role, head):
                    raise media_answer_error(role, content_type, head, url)
            if expected is not None and size != expected:
                raise NetworkError(f"the download was cut short: {size} of {expected} bytes", url=url)
            final_url = str(response.url)
    except ScraperError:
        partial.unlink(missing_ok=True)
        raise
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise NetworkError(f"downloading media failed: {exc}", url=url) from exc
    except BaseException:  # cancelled (shutdown, lost lease): leave nothing half-written behind
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    log.info("downloaded", extra={"role": role, "bytes": size, "path": str(target)})
    return Downloaded(target, size, digest.hexdigest(), _content_type(role, content_type), final_url)


def _content_type(role: MediaRole, declared: str) -> str:
    if declared.startswith(("video/", "image/", "audio/")):
        return declared
    return {"video": "video/mp4", "image": "image/jpeg", "music": "audio/mpeg"}[role]
