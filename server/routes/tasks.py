"""GET /api/task/{taskId} (ours): a channel download's progress, item by item."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from models.rows import JobRow
from models.tables import JobState
from server.error_map import ApiError
from server.keys import FILES, QUEUE, TASKS
from server.media import absolutize, file_view
from server.routes.jobs import public_base
from server.tasks import TaskCounts

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def task_status(job: JobRow, counts: TaskCounts) -> str:
    """started → running → completed | partial | failed."""
    if job.state == JobState.WAITING and counts.total == 0:
        return "started"
    if job.state in (JobState.WAITING, JobState.DELAYED, JobState.ACTIVE):
        return "running"
    if job.state == JobState.FAILED:
        return "failed"
    return "partial" if counts.failed else "completed"


async def get_task(request: web.Request) -> web.Response:
    task_id = request.match_info["task_id"].lower()
    job = await request.app[QUEUE].get(task_id) if _UUID.match(task_id) else None
    if job is None or not job.type.endswith("channel.download"):
        raise ApiError(404, "Task not found")
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
        "items": views,
    }
    return web.json_response({"success": True, "data": absolutize(data, public_base(request))})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/task/{task_id}", get_task)
