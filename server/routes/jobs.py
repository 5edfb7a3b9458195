"""The vendor's job routes: submit (auth, charge, enqueue) and poll."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from models.rows import JobRow
from models.tables import JobState
from scraper.errors import ScraperError
from scraper.hosts import Platform
from scraper.since import BadChannelParameter, parse_count, parse_since, parse_timezone
from scraper.urls import Kind, classify, require
from server.auth import BANNED, authenticate, insufficient_credits
from server.body import json_object, required_url
from server.coalesce import dedupe_key
from server.error_map import ApiError, bad_request, http_error_for
from server.keys import QUEUE, SETTINGS, WAKEUP
from server.media import absolutize
from server.metrics import METRICS
from server.queue import InsufficientCredits, TokenBanned, TokenGone
from server.settings import Settings

RESULT_MESSAGE = "Job queued. Poll GET /api/job/:jobId for result."
DOWNLOAD_MESSAGE = "Job queued. Poll GET /api/job/:jobId for download URL."
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


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


def job_options(route: JobRoute, body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Route-specific body fields, validated before anything is charged (channel: count, since, tz)."""
    if route.family != "channel":
        return {}
    try:
        zone = parse_timezone(body.get("tz"), settings.channel_timezones[route.platform])
        since = parse_since(body.get("since"), zone)
        count = parse_count(body.get("count"))
    except BadChannelParameter as exc:
        raise bad_request(str(exc)) from exc
    return {
        "count": count,
        "since": since.isoformat() if since else None,
        "since_input": body.get("since"),
        "tz": zone.key,
    }


def submit_handler(route: JobRoute) -> Any:
    """A handler for ``route``: validate before charging, then charge and enqueue in one transaction."""

    async def handler(request: web.Request) -> web.Response:
        token = await authenticate(request)
        body = await json_object(request)
        url = required_url(body)
        try:
            parsed = require(classify(url), platform=route.platform, kinds=set(route.kinds))
        except ScraperError as exc:
            raise http_error_for(exc) from exc
        settings = request.app[SETTINGS]
        options = job_options(route, body, settings)
        cost = settings.costs.get(route.job_type, 0)
        if body.get("refresh") is True:  # bypass the cache and in-flight jobs (it may lead others)
            options["refresh"] = True
        try:
            job = await request.app[QUEUE].enqueue(
                token_id=token.id,
                job_type=route.job_type,
                platform=route.platform,
                # The URL classified, in its canonical form: never re-read from the text, which
                # may hold other URLs (``…?x=http://127.0.0.1/``) that were never validated.
                url=parsed.canonical_url,
                payload={"canonical_url": parsed.canonical_url, "kind": parsed.kind, **options},
                cost=cost,
                max_attempts=settings.max_attempts,
                dedupe_key=dedupe_key(settings, route.job_type, parsed.canonical_url, options),
            )
        except InsufficientCredits as exc:
            raise ApiError(402, insufficient_credits(exc.need, exc.have)) from exc
        except TokenBanned as exc:
            raise ApiError(403, BANNED) from exc
        except TokenGone as exc:
            raise ApiError(401, "Unauthorized: this token no longer exists.") from exc
        request.app[WAKEUP].set()
        request.app[METRICS].credits_charged(route.job_type, job.cost)
        if route.task:
            data: dict[str, Any] = {"taskId": job.id, "status": "started", "total": options["count"]}
        else:
            data = {"jobId": job.id, "message": route.message}
        return web.json_response({"success": True, "data": data})

    return handler


def job_view(job: JobRow) -> dict[str, Any]:
    """The vendor's job shape for each state."""
    view: dict[str, Any] = {"id": job.id, "state": job.state}
    if job.state == JobState.COMPLETED:
        view["result"] = job.result
    elif job.state == JobState.FAILED:
        view["error"] = job.error
    else:
        view["data"] = {"type": job.type, "url": job.url}
        if job.state == JobState.DELAYED and job.error:
            view["last_error"] = job.error
            view["attempts"] = job.attempts
    return view


async def get_job(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"].lower()
    job = await request.app[QUEUE].get(job_id) if _UUID.match(job_id) else None
    if job is None:
        raise ApiError(404, "Job not found")
    if job.result_expired:
        hours = request.app[SETTINGS].result_ttl.total_seconds() / 3600
        raise ApiError(
            404,
            f"Job result expired: results are kept for {hours:g} hours after the job finishes."
            " Submit it again.",
        )
    return web.json_response({"success": True, "data": absolutize(job_view(job), public_base(request))})


_HOST_HEADER = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def public_base(request: web.Request) -> str:
    """Where clients reach us: the configured public URL, else the address they used.

    A Host header that is no host name (garbage, undecodable bytes, a path) is not echoed into
    the ``download_url``s we hand out: the listening address stands in for it.
    """
    settings = request.app[SETTINGS]
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = request.host if _HOST_HEADER.fullmatch(request.host) else f"{settings.host}:{settings.port}"
    return f"{request.scheme}://{host}"


def add_routes(app: web.Application) -> None:
    for route in JOB_ROUTES:
        app.router.add_post(route.path, submit_handler(route))
    app.router.add_get("/api/job/{job_id}", get_job)
