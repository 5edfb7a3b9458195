"""The console's routes: sign-in, home (submit a URL), jobs, a job, a task, admin, media, static.

Handlers are thin: reads go through ``queries`` and the stores, every change goes through the
API's own handlers (``api_calls``), every page through ``pages.render``. A user token sees its own
jobs and tasks; an admin token sees everyone's and the admin page. ``/console/.../live`` routes
answer the part of a page that changes, rendered by the same template, for ``console.js``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from models.rows import JobRow
from models.types import utcnow
from scraper.config import BrowserSettings
from scraper.errors import ScraperError
from scraper.urls import classify
from server.console import auth
from server.console.api_calls import ApiCaller
from server.console.auth import Viewer, require_viewer
from server.console.chart import BLOCKS, BlockHistory, block_sampler, chart
from server.console.media_proxy import PROXY, MediaRefused, proxy_context, signed
from server.console.pages import STATIC_DIR, STATIC_ROUTE, page, render, security_headers, setup_templates
from server.console.queries import PAGE_SIZE, STATES, ConsoleQueries, JobFilter, per_minute
from server.console.views import (
    ACTIONS,
    FINISHED_TASK,
    base_type,
    files_of,
    image_source,
    is_task,
    photo_grid,
    progress,
    stats,
)
from server.error_map import ApiError
from server.ids import is_our_id
from server.job_routes import JOB_ROUTES, route_for
from server.keys import ENGINE, POOL, QUEUE, SETTINGS, TOKENS
from server.media import absolutize
from server.routes.jobs import job_view, public_base
from server.routes.tasks import task_view
from server.tokens import TokenInfo

JOB_TYPES = tuple(route.job_type for route in JOB_ROUTES)
_INTEGER = re.compile(r"-?[0-9]{1,12}")
RECENT = 8


def _queries(request: web.Request) -> ConsoleQueries:
    return ConsoleQueries(request.app[ENGINE])


def _scope(viewer: Viewer) -> int | None:
    """Whose jobs the viewer sees: their own, or everyone's for an admin."""
    return None if viewer.is_admin else viewer.info.id


# ---- sign-in ----------------------------------------------------------------------------------


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console")


@page
async def signin_form(request: web.Request) -> web.StreamResponse:
    if await auth.current_viewer(request) is not None:
        raise web.HTTPSeeOther(auth.safe_next(request.query.get("next")))
    return _signin_page(request, error=None, status=200, then=request.query.get("next"))


def _signin_page(request: web.Request, *, error: str | None, status: int, then: str | None) -> web.Response:
    nonce = auth.signin_nonce(request)
    context = {"error": error, "next": auth.safe_next(then), "signin_csrf": nonce}
    response = render(request, "signin.html", context, viewer=None, status=status)
    auth.set_signin_cookie(response, request, nonce)
    return response


@page
async def signin(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    auth.check_form(request, form, request.cookies.get(auth.SIGNIN_COOKIE))
    token = str(form.get("token", "")).strip()
    then = str(form.get("next") or "")
    try:
        await auth.check_token(request, token)
    except auth.SignInRefused as exc:
        return _signin_page(request, error=exc.message, status=exc.status, then=then)
    response = web.HTTPSeeOther(auth.safe_next(then))
    auth.set_session(response, request, token)
    raise response


@page
async def signout(request: web.Request) -> web.StreamResponse:
    viewer = await auth.current_viewer(request)
    form = await request.post()
    if viewer is not None:  # a session that is gone already (banned, deleted) just leaves
        auth.check_form(request, form, viewer.csrf)
    response = web.HTTPSeeOther(auth.SIGNIN_URL)
    auth.end_session(response)
    raise response


# ---- home and submit --------------------------------------------------------------------------


@page
async def home(request: web.Request) -> web.StreamResponse:
    viewer = await require_viewer(request)
    return await _home_page(request, viewer)


async def _home_page(
    request: web.Request,
    viewer: Viewer,
    *,
    error: str | None = None,
    entered: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    queries = _queries(request)
    day = await queries.states_since(_scope(viewer), utcnow() - timedelta(hours=24))
    recent = await queries.jobs(JobFilter(token_id=_scope(viewer)), limit=RECENT)
    names = await _token_names(request) if viewer.is_admin else {}
    costs = request.app[SETTINGS].costs
    fresh = await request.app[TOKENS].lookup(viewer.token) or viewer.info  # credits as of now
    return render(
        request,
        "home.html",
        {
            "day": day,
            "day_total": sum(day.values()),
            "recent": recent[:RECENT],
            "fresh": fresh,
            "names": names,
            "error": error,
            "entered": entered or {},
            "costs": {action: costs.get(job_type, 0) for action, job_type in ACTIONS.items()},
        },
        viewer=viewer,
        status=status,
    )


def form_handler(
    handler: Callable[[web.Request, Viewer, MultiDictProxy[Any], ApiCaller], Awaitable[web.StreamResponse]],
    *,
    admin: bool = False,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A console POST: signed in, its API caller made before the form is read, CSRF checked."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        viewer = await require_viewer(request, admin=admin)
        caller = ApiCaller(request)
        form = await request.post()
        auth.check_form(request, form, viewer.csrf)
        return await handler(request, viewer, form, caller)

    return page(wrapped)


def submit_route(action: str, text: str) -> str:
    """The API route for ``action`` on the platform of ``text``; Douyin's when ``text`` is no
    platform URL, so that route's handler answers the API's own 400 for it."""
    try:
        platform = classify(text).platform
    except ScraperError:
        platform = "douyin"
    return route_for(platform, ACTIONS[action]).path


def submit_body(form: MultiDictProxy[Any], action: str) -> dict[str, Any]:
    """The JSON body the API route gets: the text as ``url``; a channel's options when given."""
    body: dict[str, Any] = {"url": str(form.get("url", ""))}
    if ACTIONS[action].startswith("channel."):
        count = str(form.get("count", "")).strip()
        if count:
            body["count"] = int(count) if _INTEGER.fullmatch(count) else count
        for name in ("since", "tz", "cursor"):
            value = str(form.get(name, "")).strip()
            if value:
                body[name] = value
    if form.get("refresh") == "on":
        body["refresh"] = True
    return body


async def submit(
    request: web.Request, viewer: Viewer, form: MultiDictProxy[Any], caller: ApiCaller
) -> web.StreamResponse:
    action = str(form.get("action", ""))
    if action not in ACTIONS:
        raise ApiError(
            400, "Pick what to do with the link: parse, download, channel videos or channel download."
        )
    body = submit_body(form, action)
    entered = {k: str(v) for k, v in form.items() if k in ("url", "count", "since", "tz")}
    try:
        data = await caller.call("POST", submit_route(action, body["url"]), viewer.token, body)
    except ApiError as exc:
        return await _home_page(request, viewer, error=exc.message, entered=entered, status=exc.status_code)
    if "taskId" in data:
        raise web.HTTPSeeOther(f"/console/tasks/{data['taskId']}")
    raise web.HTTPSeeOther(f"/console/jobs/{data['jobId']}")


# ---- jobs -------------------------------------------------------------------------------------


def _wanted(request: web.Request, viewer: Viewer) -> JobFilter:
    """The list's filter from the query; values outside the known sets are ignored."""
    state = request.query.get("state") or None
    job_type = request.query.get("type") or None
    before: datetime | None = None
    raw_before = request.query.get("before")
    if raw_before:
        try:
            before = datetime.fromisoformat(raw_before)
        except ValueError:
            before = None
        if before is not None and before.tzinfo is None:
            before = None
    return JobFilter(
        token_id=_scope(viewer),
        state=state if state in STATES else None,
        job_type=job_type if job_type in JOB_TYPES else None,
        before=before,
    )


@page
async def jobs(request: web.Request) -> web.StreamResponse:
    viewer = await require_viewer(request)
    wanted = _wanted(request, viewer)
    lines = await _queries(request).jobs(wanted)
    more = len(lines) > PAGE_SIZE
    lines = lines[:PAGE_SIZE]
    return render(
        request,
        "jobs.html",
        {
            "lines": lines,
            "wanted": wanted,
            "states": STATES,
            "types": JOB_TYPES,
            "older": lines[-1].created_at.isoformat() if more and lines else None,
            "names": await _token_names(request) if viewer.is_admin else {},
        },
        viewer=viewer,
    )


async def _own_job(request: web.Request, viewer: Viewer, job_id: str) -> JobRow:
    """The job if the viewer may see it (theirs, or any for an admin), else 404."""
    job_id = job_id.lower()
    row = await request.app[QUEUE].get(job_id) if is_our_id(job_id) else None
    if row is None or not (viewer.is_admin or row.token_id == viewer.info.id):
        raise ApiError(404, "Job not found: no job of yours has this id.")
    return row


def _job_context(request: web.Request, viewer: Viewer, job: JobRow) -> dict[str, Any]:
    view = absolutize(job_view(job, detail=True), public_base(request))
    result = job.result if isinstance(job.result, dict) else None
    return {
        "grid": photo_grid(result, image_source(viewer.token)) if result else [],
        "job": job,
        "kind": base_type(job.type),
        "api_view": {"success": True, "data": view},
        "result": result,
        "stats": stats(result) if result else [],
        "videos": files_of(result, "video") if result else [],
        "images": files_of(result, "image") if result else [],
        "music": files_of(result, "music") if result else [],
        "finished": job.state in ("completed", "failed"),
        "expired": job.result_expired,
    }


@page
async def job_page(request: web.Request) -> web.StreamResponse:
    viewer = await require_viewer(request)
    job = await _own_job(request, viewer, request.match_info["job_id"])
    if is_task(job.type):
        raise web.HTTPFound(f"/console/tasks/{job.id}")
    return render(request, "job.html", _job_context(request, viewer, job), viewer=viewer)


@page
async def job_live(request: web.Request) -> web.StreamResponse:
    viewer = await require_viewer(request)
    job = await _own_job(request, viewer, request.match_info["job_id"])
    return render(request, "_job_body.html", _job_context(request, viewer, job), viewer=viewer)


# ---- tasks ------------------------------------------------------------------------------------


async def _task_context(request: web.Request, viewer: Viewer) -> dict[str, Any]:
    job = await _own_job(request, viewer, request.match_info["task_id"])
    if not is_task(job.type):
        raise ApiError(404, "Task not found: this id is a job, not a channel download.")
    view = await task_view(request, job)  # download URLs relative: the page links our own paths
    return {
        "job": job,
        "task": view,
        "api_view": {"success": True, "data": absolutize(view, public_base(request))},
        "percent": progress(view.get("done"), view.get("failed"), view.get("total")),
        "finished": view.get("status") in FINISHED_TASK,
    }


@page
async def task_page(request: web.Request) -> web.StreamResponse:
    viewer = await require_viewer(request)
    return render(request, "task.html", await _task_context(request, viewer), viewer=viewer)


@page
async def task_live(request: web.Request) -> web.StreamResponse:
    viewer = await require_viewer(request)
    return render(request, "_task_body.html", await _task_context(request, viewer), viewer=viewer)


# ---- admin ------------------------------------------------------------------------------------


async def _token_names(request: web.Request) -> dict[int, str]:
    return {token.id: token.name for token in await request.app[TOKENS].list()}


async def _live_context(request: web.Request) -> dict[str, Any]:
    census = request.app[POOL].census() if POOL in request.app else None
    since = utcnow() - timedelta(hours=1)
    accepted, failed = await _queries(request).activity(since)
    counts = await request.app[QUEUE].counts()
    return {
        "census": census,
        "queue": counts,
        "chart": chart(per_minute(accepted), per_minute(failed), request.app[BLOCKS].per_minute()),
    }


@page
async def admin_page(request: web.Request) -> web.StreamResponse:
    viewer = await require_viewer(request, admin=True)
    tokens = await request.app[TOKENS].list()
    context = {"tokens": tokens, "notice": _notice(request.query.get("done"), tokens)}
    return render(request, "admin.html", context | await _live_context(request), viewer=viewer)


@page
async def admin_live(request: web.Request) -> web.StreamResponse:
    viewer = await require_viewer(request, admin=True)
    return render(request, "_admin_live.html", await _live_context(request), viewer=viewer)


def _notice(done: str | None, tokens: list[TokenInfo]) -> str | None:
    """``banned:3`` (where a token action redirects to) as ``Token “bob” banned.``"""
    action, _, token_id = (done or "").partition(":")
    name = next((t.name for t in tokens if str(t.id) == token_id), None)
    if action not in _TOKEN_ACTIONS.values() or name is None:
        return None
    return f"Token “{name}” {action}."


def _credits(raw: object) -> int | str:
    """A form's number as the JSON integer the API expects (anything else as typed: the API says)."""
    text = str(raw or "").strip()
    return int(text) if _INTEGER.fullmatch(text) else text


async def create_token(
    request: web.Request, viewer: Viewer, form: MultiDictProxy[Any], caller: ApiCaller
) -> web.StreamResponse:
    unlimited = form.get("unlimited") == "on"
    body: dict[str, Any] = {
        "name": str(form.get("name", "")),
        "unlimited": unlimited,
        "admin": form.get("admin") == "on",
    }
    if not unlimited:
        body["credits"] = _credits(form.get("credits"))
    try:
        created = await caller.call("POST", "/api/admin/tokens", viewer.token, body)
    except ApiError as exc:
        context = {"tokens": await request.app[TOKENS].list(), "error": exc.message, "entered": body}
        live = await _live_context(request)
        return render(request, "admin.html", context | live, viewer=viewer, status=exc.status_code)
    return render(request, "token_created.html", {"created": created}, viewer=viewer)


_TOKEN_ACTIONS = {"topup": "topped up", "ban": "banned", "unban": "unbanned"}


async def token_action(
    request: web.Request, viewer: Viewer, form: MultiDictProxy[Any], caller: ApiCaller
) -> web.StreamResponse:
    action = request.match_info["action"]
    token_id = request.match_info["token_id"]
    if action not in _TOKEN_ACTIONS or not token_id.isdigit():
        raise ApiError(404, "No such token action.")
    target = next((t for t in await request.app[TOKENS].list() if str(t.id) == token_id), None)
    if target is None:
        raise ApiError(404, "Token not found")
    body = {"amount": _credits(form.get("amount"))} if action == "topup" else {}
    # The API finds a token by name first, so the (unique) name names it exactly.
    path = f"/api/admin/tokens/{_path_segment(target.name, target.id)}/{action}"
    try:
        await caller.call("POST", path, viewer.token, body)
    except ApiError as exc:
        context = {"tokens": await request.app[TOKENS].list(), "error": exc.message}
        live = await _live_context(request)
        return render(request, "admin.html", context | live, viewer=viewer, status=exc.status_code)
    raise web.HTTPSeeOther(f"/console/admin?done={_TOKEN_ACTIONS[action]}:{target.id}")


def _path_segment(name: str, token_id: int) -> str:
    """A token's name as a path segment (its id when the name holds a ``/``)."""
    return str(token_id) if "/" in name else quote(name, safe="")


# ---- media ------------------------------------------------------------------------------------


async def media(request: web.Request) -> web.StreamResponse:
    viewer = await auth.current_viewer(request)
    url, sig = request.query.get("u", ""), request.query.get("s", "")
    if viewer is None or not signed(viewer.token, url, sig):
        raise web.HTTPForbidden(text="Forbidden: this image link is not for this session.")
    try:
        image = await request.app[PROXY].get(url)
    except MediaRefused as exc:
        raise web.HTTPBadGateway(text=f"The image is not available: {exc}.") from exc
    return web.Response(
        body=image.body,
        content_type=image.content_type,
        headers={
            "Cache-Control": "private, max-age=300",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


# ---- wiring -----------------------------------------------------------------------------------


def _block_total(app: web.Application) -> int | None:
    pool = app.get(POOL)
    return sum(pool.blocks.values()) if pool is not None else None


def add_routes(app: web.Application, browser: web.AppKey[BrowserSettings]) -> None:
    """Register the console on ``app`` (``browser``: the key of the browser settings, read when the
    media proxy first fetches, after offline mode has pointed them at the replica)."""
    setup_templates(app)
    app[BLOCKS] = BlockHistory()
    app.on_response_prepare.append(security_headers)
    app.cleanup_ctx.append(proxy_context(lambda a: a[browser]))
    app.cleanup_ctx.append(block_sampler(_block_total))
    router = app.router
    router.add_get("/", root)
    router.add_get("/console", home)
    router.add_get("/console/signin", signin_form)
    router.add_post("/console/signin", signin)
    router.add_post("/console/signout", signout)
    router.add_post("/console/submit", form_handler(submit))
    router.add_get("/console/jobs", jobs)
    router.add_get("/console/jobs/{job_id}", job_page)
    router.add_get("/console/jobs/{job_id}/live", job_live)
    router.add_get("/console/tasks/{task_id}", task_page)
    router.add_get("/console/tasks/{task_id}/live", task_live)
    router.add_get("/console/admin", admin_page)
    router.add_get("/console/admin/live", admin_live)
    router.add_post("/console/admin/tokens", form_handler(create_token, admin=True))
    router.add_post("/console/admin/tokens/{token_id}/{action}", form_handler(token_action, admin=True))
    router.add_get("/console/media", media)
    router.add_static(STATIC_ROUTE, STATIC_DIR, name="console-static")
