"""The vendor's job routes: submit (auth, charge, enqueue) and poll; ours: wait, stream, call back.

``GET /api/job/{id}`` answers the vendor's shape, byte for byte; ``?detail=1`` adds our fields
(timestamps, attempts, a stable ``error_code`` and ``retryable``), ``?wait=N`` answers as soon as
the job ends (or after N seconds with its state then), and ``/api/job/{id}/events`` streams its
states as Server-Sent Events until it ends. A ``callback_url`` in a submit body is checked before
anything is charged and stored with the job (``server.webhooks``); the job then shows ``callback``.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp_sse import sse_response

from models.rows import JobRow
from models.tables import JobErrorCode, JobState
from models.video import iso_utc_ms
from server.auth import BANNED, authenticate, insufficient_credits
from server.body import submit_body
from server.coalesce import dedupe_key
from server.cursors import continue_listing
from server.error_map import ApiError, bad_request
from server.ids import is_our_id
from server.job_events import JOB_EVENTS, TooManyWaiters, follow, wait_for_end
from server.job_routes import JOB_ROUTES, JobRoute
from server.keys import QUEUE, SETTINGS, TOKENS, WAKEUP
from server.media import absolutize
from server.metrics import METRICS
from server.queue import CallbackRequest, InsufficientCredits, TokenBanned, TokenGone
from server.tokens import TokenInfo
from server.webhooks import CALLBACKS, AddressPolicy, BadCallback, check_callback_url

#: The longest ``?wait=`` (seconds): past it, a client should stream the events instead.
MAX_WAIT = 30.0
_SECONDS = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?|\.[0-9]{1,6}")
BAD_WAIT = f'"wait" must be a number of seconds above 0 and at most {MAX_WAIT:g}, e.g. ?wait=10.'
BAD_DETAIL = '"detail" must be 1 or true (our fields added to the job), 0 or false (the vendor\'s shape).'


def submit_handler(route: JobRoute) -> Any:
    """A handler for ``route``: validate before charging, then charge and enqueue in one transaction."""

    async def handler(request: web.Request) -> web.Response:
        token = await authenticate(request)
        body = await submit_body(request, route)  # the URL classified for the route, options checked
        parsed, options = body.url, body.options()
        settings = request.app[SETTINGS]
        if route.family == "channel":
            options = continue_listing(options, body.raw, parsed, settings)
        callback = await callback_request(request, body.raw, token, task=route.task)
        cost = settings.costs.get(route.job_type, 0)
        key = dedupe_key(settings, route.job_type, parsed.canonical_url, options)
        marks = {"callback": True} if callback else {}  # the view reads the delivery only when there is one
        try:
            job = await request.app[QUEUE].enqueue(
                token_id=token.id,
                job_type=route.job_type,
                platform=route.platform,
                # The URL classified, in its canonical form: never re-read from the text, which
                # may hold other URLs (``…?x=http://127.0.0.1/``) that were never validated.
                url=parsed.canonical_url,
                payload={"canonical_url": parsed.canonical_url, "kind": parsed.kind, **options, **marks},
                cost=cost,
                max_attempts=settings.max_attempts,
                dedupe_key=key,
                callback=callback,
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


async def callback_request(
    request: web.Request, body: dict[str, Any], token: TokenInfo, *, task: bool
) -> CallbackRequest | None:
    """The body's ``callback_url``, checked (form, every address of its host) before any charge."""
    raw = body.get("callback_url")
    if raw is None:
        return None
    settings = request.app[SETTINGS]
    try:
        url = await check_callback_url(
            raw,
            allow_http=settings.webhook_allow_http,
            policy=AddressPolicy(allow_loopback=settings.webhook_allow_loopback),
        )
    except BadCallback as exc:
        raise bad_request(str(exc)) from exc
    if await request.app[TOKENS].webhook_secret(token.id) is None:
        raise bad_request(
            "This token has no webhook signing secret yet (it was made before callbacks existed):"
            f" an admin can make one with POST /api/admin/tokens/{token.id}/webhook-secret."
        )
    route = "/api/task/" if task else "/api/job/"
    return CallbackRequest(url=url, result_prefix=public_base(request) + route)


def job_view(job: JobRow, *, detail: bool = False) -> dict[str, Any]:
    """The vendor's job shape for each state; ``detail`` adds ours after the vendor's keys."""
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
    if detail:
        view.update(job_times(job))
        if job.state in (JobState.FAILED, JobState.DELAYED) and job.error_code:
            view.update(error_fields(job.error_code))
    return view


def job_times(job: JobRow) -> dict[str, Any]:
    """When the job was accepted, first started and finished, and attempts made (ours)."""
    return {
        "created_at": iso_utc_ms(job.created_at),
        "started_at": iso_utc_ms(job.started_at) if job.started_at else None,
        "finished_at": iso_utc_ms(job.finished_at) if job.finished_at else None,
        "attempts": job.attempts,
    }


def error_fields(stored_code: str) -> dict[str, Any]:
    """The stable ``error_code`` (``JobErrorCode``) and whether submitting again may succeed."""
    code = JobErrorCode.public(stored_code)
    return {"error_code": code, "retryable": code in JobErrorCode.RETRYABLE}


def expired(request: web.Request) -> ApiError:
    hours = request.app[SETTINGS].result_ttl.total_seconds() / 3600
    return ApiError(
        404,
        f"Job result expired: results are kept for {hours:g} hours after the job finishes. Submit it again.",
    )


def wait_seconds(request: web.Request) -> float | None:
    """``?wait=N`` as seconds (0 < N <= MAX_WAIT), None when absent; a 400 saying the range else."""
    raw = request.query.get("wait")
    if raw is None:
        return None
    if not _SECONDS.fullmatch(raw) or not 0 < float(raw) <= MAX_WAIT:
        raise bad_request(BAD_WAIT)
    return float(raw)


def wants_detail(request: web.Request) -> bool:
    raw = request.query.get("detail")
    if raw is None or raw.lower() in ("0", "false"):
        return False
    if raw.lower() in ("1", "true"):
        return True
    raise bad_request(BAD_DETAIL)


def busy(exc: TooManyWaiters) -> ApiError:
    return ApiError(
        503,
        f"Service Unavailable: {exc.limit} clients already wait on jobs on this node."
        " Poll without ?wait, or retry in a few seconds.",
        headers={"Retry-After": "2"},
    )


def finished(job: JobRow) -> bool:
    return job.state in JobState.FINISHED


Reader = Callable[[], Awaitable[JobRow | None]]


def reader(request: web.Request, job_id: str) -> Reader:
    """A read of the job as stored now (None for an id that is no job id)."""
    queue = request.app[QUEUE]

    async def read() -> JobRow | None:
        return await queue.get(job_id) if is_our_id(job_id) else None

    return read


async def current_or_ended(request: web.Request, job_id: str, read: Reader) -> JobRow | None:
    """The job now, or (``?wait=N``) once it ends, at most N seconds from now."""
    seconds = wait_seconds(request)
    if seconds is None or not is_our_id(job_id):
        return await read()
    settings = request.app[SETTINGS]
    try:
        return await wait_for_end(
            request.app[JOB_EVENTS],
            job_id,
            read,
            finished,
            within=seconds,
            recheck=settings.wait_recheck.total_seconds(),
        )
    except TooManyWaiters as exc:
        raise busy(exc) from exc


async def callback_view(request: web.Request, job: JobRow) -> dict[str, Any]:
    """``{"callback": {...}}`` for a job submitted with one, else nothing."""
    if not job.payload.get("callback"):
        return {}
    delivery = await request.app[CALLBACKS].view(job.id)
    return {"callback": delivery} if delivery is not None else {}


async def get_job(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"].lower()
    detail = wants_detail(request)
    job = await current_or_ended(request, job_id, reader(request, job_id))
    if job is None:
        raise ApiError(404, "Job not found")
    if job.result_expired:
        raise expired(request)
    view = {**job_view(job, detail=detail), **await callback_view(request, job)}
    return web.json_response({"success": True, "data": absolutize(view, public_base(request))})


Render = Callable[[JobRow], Awaitable[dict[str, Any]]]


async def stream_states(
    request: web.Request, job_id: str, read: Reader, render: Render, *, missing: str, expires: bool = True
) -> web.StreamResponse:
    """Server-Sent Events: ``state`` with the rendered job at once and on every change, until it
    ends (then ``end``) or the stream's time runs out. A client reconnecting (``Last-Event-ID``)
    to a job that has ended gets 204, which tells an EventSource to stop reconnecting. ``expires``:
    a job whose result expired is a 404, as on the poll (a task's items outlive its result)."""
    settings = request.app[SETTINGS]
    rows = follow(
        request.app[JOB_EVENTS],
        job_id,
        read,
        finished,
        duration=settings.sse_max_duration.total_seconds(),
        recheck=settings.wait_recheck.total_seconds(),
    )
    async with contextlib.aclosing(rows):
        try:
            row = await anext(rows)
        except TooManyWaiters as exc:
            raise busy(exc) from exc
        except StopAsyncIteration:
            raise ApiError(404, missing) from None
        if expires and row.result_expired:
            raise expired(request)
        if finished(row) and request.headers.get("Last-Event-ID") is not None:
            return web.Response(status=204)
        async with sse_response(request) as stream:
            sent: dict[str, Any] | None = None
            try:
                while True:
                    view = absolutize(await render(row), public_base(request))
                    if view != sent:
                        await stream.send(json.dumps(view), event="state", id=str(row.attempts))
                        sent = view
                    if finished(row):
                        await stream.send("{}", event="end")
                        break
                    following = await anext(rows, None)
                    if following is None or request.transport is None or request.transport.is_closing():
                        break  # out of time (the client reconnects), or the client left
                    row = following
            except ConnectionResetError:
                pass  # the client left while we wrote
        return stream


async def job_events(request: web.Request) -> web.StreamResponse:
    job_id = request.match_info["job_id"].lower()

    async def render(job: JobRow) -> dict[str, Any]:
        return {**job_view(job, detail=True), **await callback_view(request, job)}

    return await stream_states(request, job_id, reader(request, job_id), render, missing="Job not found")


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
    app.router.add_get("/api/job/{job_id}/events", job_events)
