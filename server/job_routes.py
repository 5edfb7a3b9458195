"""The eight submit routes as data: path, job type, platform, URL kinds, answer message.

One table that the API (``server.routes.jobs``), the console, cursors, the settings' prices and the
tests all read, so a route's facts are written once.
"""

from __future__ import annotations

from dataclasses import dataclass

from scraper.hosts import Platform
from scraper.urls import Kind

RESULT_MESSAGE = "Job queued. Poll GET /api/job/:jobId for result."
DOWNLOAD_MESSAGE = "Job queued. Poll GET /api/job/:jobId for download URL."


@dataclass(frozen=True, slots=True)
class JobRoute:
    """A submit route: which job it makes, for which platform, from which URL kinds."""

    path: str
    job_type: str
    platform: Platform
    family: str
    kinds: frozenset[Kind]
    message: str
    task: bool = False


VIDEO_KINDS: frozenset[Kind] = frozenset({"video", "photo", "short"})
CHANNEL_KINDS: frozenset[Kind] = frozenset({"user", "short"})

JOB_ROUTES: tuple[JobRoute, ...] = (
    JobRoute("/api/video/parse", "video.parse", "douyin", "video", VIDEO_KINDS, RESULT_MESSAGE),
    JobRoute("/api/tiktok/video/parse", "tiktok.video.parse", "tiktok", "video", VIDEO_KINDS, RESULT_MESSAGE),
    JobRoute("/api/video/download", "video.download", "douyin", "video", VIDEO_KINDS, DOWNLOAD_MESSAGE),
    JobRoute(
        "/api/tiktok/video/download",
        "tiktok.video.download",
        "tiktok",
        "video",
        VIDEO_KINDS,
        DOWNLOAD_MESSAGE,
    ),
    JobRoute("/api/channel/videos", "channel.videos", "douyin", "channel", CHANNEL_KINDS, RESULT_MESSAGE),
    JobRoute(
        "/api/tiktok/channel/videos",
        "tiktok.channel.videos",
        "tiktok",
        "channel",
        CHANNEL_KINDS,
        RESULT_MESSAGE,
    ),
    JobRoute("/api/channel/download", "channel.download", "douyin", "channel", CHANNEL_KINDS, "", task=True),
    JobRoute(
        "/api/tiktok/channel/download",
        "tiktok.channel.download",
        "tiktok",
        "channel",
        CHANNEL_KINDS,
        "",
        task=True,
    ),
)


def route_for(platform: Platform, action: str) -> JobRoute:
    """The route of ``action`` (``video.parse``, ``channel.videos``…) on ``platform``."""
    job_type = action if platform == "douyin" else f"tiktok.{action}"
    return next(route for route in JOB_ROUTES if route.job_type == job_type)
