"""GET /api/task/{taskId} (ours): a channel download's progress, item by item.

Like a job, a task can be waited on (``?wait=N``), streamed (``/api/task/{id}/events``) and call
back when it ends; its view always carries our fields (the whole route is ours).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from models.rows import JobRow
from models.tables import JobState
from server.error_map import ApiError
from server.keys import FILES, TASKS
from server.media import absolutize, file_view
from server.routes.jobs import (
    Reader,
    callback_view,
    current_or_ended,
    error_fields,
    job_times,
    public_base,
    reader,
    stream_states,
)
from server.tasks import TaskCounts, TaskStore

TASK_NOT_FOUND = "Task not found"


def task_status(job: JobRow, counts: TaskCounts) -> str:
    """started → running → completed | partial | failed."""
    if job.state == JobState.WAITING and counts.total == 0:
        return "started"
    if job.state in (JobState.WAITING, JobState.DELAYED, JobState.ACTIVE):
        return "running"
    if job.state == JobState.FAILED:
        return "failed"
    return "partial" if counts.failed else "completed"


def is_task(job: JobRow) -> bool:
    return job.type.endswith("channel.download")


def task_reader(request: web.Request, task_id: str) -> Reader:
    """The task's job row, None when the id is no task's."""
    read_job = reader(request, task_id)

    async def read() -> JobRow | None:
        job = await read_job()
        return job if job is not None and is_task(job) else None

    return read


async def notification_status(tasks: TaskStore, job: JobRow) -> dict[str, Any]:
    """A task's callback also says how it ended: ``completed``, ``partial`` or ``failed``."""
    if not is_task(job):
        return {}
    return {"status": task_status(job, await tasks.counts(job.id))}


async def task_view(request: web.Request, job: JobRow) -> dict[str, Any]:
    """The task as ``GET /api/task/{id}`` shows it (download URLs still relative)."""
    items = await request.app[TASKS].items(job.id)
    counts = await request.app[TASKS].counts(job.id)
    files = {row.id: row for row in await request.app[FILES].many([f for i in items for f in i.file_ids])}
    views: list[dict[str, Any]] = []
    for item in items:
        item_files = [file_view(files[f]) for f in item.file_ids if f in files]
        views.append(
            {
                "video_id": item.video_id,
                "url": item.url,
                "media_type": item.media_type,
                "state": item.state,
                "bytes": item.bytes,
                "download_url": item_files[0]["download_url"] if item_files else None,
                "files": item_files,
                "error": item.error,
            }
        )
    data = {
        "taskId": job.id,
        "status": task_status(job, counts),
        "total": counts.total or int(job.payload.get("count", 0)),
        "done": counts.done,
        "failed": counts.failed,
        "url": job.url,
        "error": job.error if job.state == JobState.FAILED else None,
        **job_times(job),
        **(error_fields(job.error_code) if job.state == JobState.FAILED and job.error_code else {}),
        **await callback_view(request, job),
        "items": views,
    }
    return data


async def get_task(request: web.Request) -> web.Response:
    task_id = request.match_info["task_id"].lower()
    job = await current_or_ended(request, task_id, task_reader(request, task_id))
    if job is None:
        raise ApiError(404, TASK_NOT_FOUND)
    data = await task_view(request, job)
    return web.json_response({"success": True, "data": absolutize(data, public_base(request))})


async def task_events(request: web.Request) -> web.StreamResponse:
    task_id = request.match_info["task_id"].lower()

    async def render(job: JobRow) -> dict[str, Any]:
        return await task_view(request, job)

    return await stream_states(
        request, task_id, task_reader(request, task_id), render, missing=TASK_NOT_FOUND, expires=False
    )  # a task's items outlive its result, as GET /api/task/{id} shows them


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/task/{task_id}", get_task)
    app.router.add_get("/api/task/{task_id}/events", task_events)
