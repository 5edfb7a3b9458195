"""The OpenAPI 3.1 document of the running app, built from its router and the pydantic models.

Every route the router holds is described: what each operation is comes from ``OPERATIONS``
(summary, tag, who may call it, the request model, the answers by status), and the schemas
come from ``server.schemas``, the models the handlers validate bodies with, through pydantic's
``models_json_schema``. Nothing is hand-kept YAML: a route added without an entry here appears
as "undocumented" (and ``tests/test_openapi.py`` fails), and a model that changes changes the
document. The error statuses of an operation follow from what it does: a body (400, 408, 413),
a token (401, 403, 429), a charge (402), a lookup (404); every operation can answer 405 (another
method on its path) and 500 (never with a stack trace), all in the error envelope.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from aiohttp import web
from aiohttp.web_urldispatcher import StaticResource
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from server import schemas
from server.auth import BANNED, INVALID_TOKEN, MISSING_TOKEN, insufficient_credits
from server.job_routes import DOWNLOAD_MESSAGE, RESULT_MESSAGE
from server.routes.admin import ADMIN_ONLY
from server.settings import MetricsAuth

REF = "#/components/schemas/{model}"
Auth = Literal["none", "bearer", "admin"]

_JOB_ID = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
_TASK_ID = "c3d4e5f6-a7b8-9012-cdef-234567890123"


@dataclass(frozen=True, slots=True)
class Answer:
    """One documented answer: a JSON model (or another media type), examples, headers."""

    description: str
    model: type[BaseModel] | None = None
    #: Media types other than JSON, each with its JSON schema.
    media: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    examples: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Operation:
    """What one (method, path) of the router is, for the document."""

    operation_id: str
    summary: str
    tag: str
    auth: Auth
    ok: Mapping[int, Answer]
    body: type[schemas.RequestBody] | None = None
    body_examples: Mapping[str, Any] = field(default_factory=dict)
    #: Error statuses beyond those the auth and the body imply (402, 404, 409 ...).
    errors: frozenset[int] = frozenset()
    description: str = ""
    links: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Query parameters by name: their JSON schema and description.
    query: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# --------------------------------------------------------------------------- the answers


def _ok_example(data: Any) -> dict[str, Any]:
    return {"value": {"success": True, "data": data}}


_ACCEPTED = Answer(
    "Accepted and charged: poll the job.",
    schemas.OkJobAccepted,
    examples={"queued": _ok_example({"jobId": _JOB_ID, "message": RESULT_MESSAGE})},
)
_ACCEPTED_DOWNLOAD = Answer(
    "Accepted and charged: poll the job for the download URL.",
    schemas.OkJobAccepted,
    examples={"queued": _ok_example({"jobId": _JOB_ID, "message": DOWNLOAD_MESSAGE})},
)
_TASK_STARTED = Answer(
    "Accepted and charged: the batch download started; follow it at GET /api/task/{taskId}.",
    schemas.OkTaskStarted,
    examples={"started": _ok_example({"taskId": _TASK_ID, "status": "started", "total": 10})},
)
_POLL_JOB = {
    "GetJob": {
        "operationId": "getJob",
        "parameters": {"job_id": "$response.body#/data/jobId"},
        "description": "The job this request made.",
    }
}
_POLL_TASK = {
    "GetTask": {
        "operationId": "getTask",
        "parameters": {"task_id": "$response.body#/data/taskId"},
        "description": "The task this request started.",
    },
    "GetJob": {
        "operationId": "getJob",
        "parameters": {"job_id": "$response.body#/data/taskId"},
        "description": "The task's job.",
    },
}
_TOKEN_REF = {
    name: {
        "operationId": name[0].lower() + name[1:],
        "parameters": {"ref": "$response.body#/data/id"},
        "description": f"{name} the token made.",
    }
    for name in ("TopupToken", "BanToken", "UnbanToken")
}

_JOB_VIEWS = {
    "active": _ok_example(
        {
            "id": _JOB_ID,
            "state": "active",
            "data": {"type": "video.parse", "url": "https://v.douyin.com/xxxxx"},
        }
    ),
    "completed": _ok_example({"id": _JOB_ID, "state": "completed", "result": schemas.VIDEO_EXAMPLE}),
    "failed": _ok_example({"id": _JOB_ID, "state": "failed", "error": "Could not extract video ID from URL"}),
}
_TOKEN_ANSWER = Answer("The token as it is now.", schemas.OkTokenView)
_WAIT_QUERY: Mapping[str, Mapping[str, Any]] = {
    "wait": {
        "description": "Answer as soon as the job ends, or after this many seconds with its state then.",
        "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 30},
        "example": 10,
    },
    "detail": {
        "description": "1 or true: add our fields (timestamps, attempts, error_code, retryable).",
        "schema": {"type": "string", "enum": ["1", "true", "0", "false"]},
    },
}


def _events(view: str) -> Answer:
    """A Server-Sent Events answer: ``state`` events carry ``view`` as JSON, then one ``end``."""
    common = {"id": {"type": "string"}, "retry": {"type": "integer"}}
    state = {
        "type": "object",
        "description": "The view as GET shows it with detail: at once, then on every change.",
        "properties": {
            "event": {"const": "state"},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": REF.format(model=view)},
            },
            **common,
        },
        "required": ["event", "data"],
    }
    end = {
        "type": "object",
        "description": "It ended: the last event.",
        "properties": {"event": {"const": "end"}, "data": {"const": "{}"}, **common},
        "required": ["event", "data"],
    }
    return Answer(
        "Server-Sent Events until it ends (or after `SHORTVID_SSE_MAX_DURATION`; reconnect then).",
        media={"text/event-stream": {"schema": {"oneOf": [state, end]}}},
    )


_ENDED = Answer("It had ended and the client reconnected (Last-Event-ID): stop reconnecting.")
_BINARY = {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
#: A file's answers, from the node holding it or relayed (aiohttp's FileResponse: Range, conditionals).
_FILE_ANSWERS: Mapping[int, Answer] = {
    200: Answer("The file.", media={"*/*": _BINARY}, headers={"X-Content-SHA256": {"type": "string"}}),
    206: Answer("The requested range of the file.", media={"*/*": _BINARY}),
    304: Answer("Not modified since the client's copy."),
    412: Answer("A precondition (If-Match, If-Unmodified-Since) failed."),
    416: Answer("The requested range is outside the file."),
}
_FILE_HEAD_ANSWERS: Mapping[int, Answer] = {
    200: Answer("The file's headers, no body."),
    304: Answer("Not modified since the client's copy."),
}


def _submit(operation_id: str, summary: str, platform: str, family: str, kind: str) -> Operation:
    douyin = platform == "douyin"
    video = family == "video"
    example_url = (
        ("https://v.douyin.com/iRNBho6u/" if douyin else "https://vm.tiktok.com/ZMexample/")
        if video
        else (
            "https://www.douyin.com/user/MS4wLjABAAAAexample"
            if douyin
            else "https://www.tiktok.com/@scout2015"
        )
    )
    body: dict[str, Any] = {"url": example_url}
    if not video:
        body.update({"count": 10} if kind == "download" else {"count": 20, "since": "today"})
    if kind == "task":
        ok = {200: _TASK_STARTED}
        links = _POLL_TASK
    else:
        ok = {200: _ACCEPTED_DOWNLOAD if kind == "download" and video else _ACCEPTED}
        links = _POLL_JOB
    return Operation(
        operation_id,
        summary,
        "douyin" if douyin else "tiktok",
        "bearer",
        ok,
        body=schemas.SUBMIT_MODELS[family],
        body_examples={"vendor": {"value": body}},
        errors=frozenset({402}),
        links={str(status): links for status in ok},
    )


#: (method, path template) → what it is. HEAD is documented only where it is listed.
OPERATIONS: Mapping[tuple[str, str], Operation] = {
    ("POST", "/api/video/parse"): _submit(
        "videoParse", "Parse a Douyin video or photo post", "douyin", "video", "job"
    ),
    ("POST", "/api/tiktok/video/parse"): _submit(
        "tiktokVideoParse", "Parse a TikTok video or photo post", "tiktok", "video", "job"
    ),
    ("POST", "/api/video/download"): _submit(
        "videoDownload", "Download a Douyin post's watermark-free media", "douyin", "video", "download"
    ),
    ("POST", "/api/tiktok/video/download"): _submit(
        "tiktokVideoDownload", "Download a TikTok post's watermark-free media", "tiktok", "video", "download"
    ),
    ("POST", "/api/channel/videos"): _submit(
        "channelVideos", "List a Douyin channel's posts, newest first", "douyin", "channel", "job"
    ),
    ("POST", "/api/tiktok/channel/videos"): _submit(
        "tiktokChannelVideos", "List a TikTok channel's posts, newest first", "tiktok", "channel", "job"
    ),
    ("POST", "/api/channel/download"): _submit(
        "channelDownload", "Download every post of a Douyin channel (a task)", "douyin", "channel", "task"
    ),
    ("POST", "/api/tiktok/channel/download"): _submit(
        "tiktokChannelDownload",
        "Download every post of a TikTok channel (a task)",
        "tiktok",
        "channel",
        "task",
    ),
    ("GET", "/api/job/{job_id}"): Operation(
        "getJob",
        "A job's state, and its result or error once it ended",
        "jobs",
        "none",
        {200: Answer("The job in its current state.", schemas.OkJobView, examples=_JOB_VIEWS)},
        errors=frozenset({400, 404, 503}),
        query=_WAIT_QUERY,
        description="`waiting`, `active`, `delayed` (waiting to retry) carry `data`; `completed` carries"
        " `result`; `failed` carries `error`. 404 for an unknown job, and for one whose result expired.",
    ),
    ("GET", "/api/task/{task_id}"): Operation(
        "getTask",
        "A channel download task's progress, item by item",
        "jobs",
        "none",
        {200: Answer("The task.", schemas.OkTaskView)},
        errors=frozenset({400, 404, 503}),
        query={"wait": _WAIT_QUERY["wait"]},
    ),
    ("GET", "/api/job/{job_id}/events"): Operation(
        "jobEvents",
        "A job's state changes as Server-Sent Events, until it ends",
        "jobs",
        "none",
        {200: _events("JobView"), 204: _ENDED},
        errors=frozenset({404, 503}),
    ),
    ("GET", "/api/task/{task_id}/events"): Operation(
        "taskEvents",
        "A task's progress as Server-Sent Events, until it ends",
        "jobs",
        "none",
        {200: _events("TaskView"), 204: _ENDED},
        errors=frozenset({404, 503}),
    ),
    ("GET", "/api/files/{file_id}"): Operation(
        "getFile",
        "A downloaded file (supports Range)",
        "files",
        "none",
        _FILE_ANSWERS,
        errors=frozenset({404, 410, 503}),
        description="The id in a result's `download_url` is the key: no token needed. Files expire. Any"
        " node answers: a file on another node's disk is streamed from that node (503 while it is down,"
        " 410 once it has been gone past `SHORTVID_FILES_LOST_AFTER`).",
    ),
    ("HEAD", "/api/files/{file_id}"): Operation(
        "headFile",
        "A downloaded file's headers (size, type)",
        "files",
        "none",
        _FILE_HEAD_ANSWERS,
        errors=frozenset({404, 410, 503}),
    ),
    ("GET", "/internal/files/{file_id}"): Operation(
        "internalFile",
        "A file this node holds, for another shortvid node",
        "internal",
        "none",
        _FILE_ANSWERS,
        errors=frozenset({403, 404}),
        description="Only for requests signed with the nodes' shared `SHORTVID_NODE_SECRET` (header"
        " `X-Shortvid-Node-Auth`); anyone else gets 403. Clients use `/api/files/{file_id}`.",
    ),
    ("HEAD", "/internal/files/{file_id}"): Operation(
        "internalFileHead",
        "A held file's headers, for another shortvid node",
        "internal",
        "none",
        _FILE_HEAD_ANSWERS,
        errors=frozenset({403, 404}),
    ),
    ("GET", "/api/health"): Operation(
        "health",
        "Liveness, with a census of the queue and this node's browser pool",
        "health",
        "none",
        {
            200: Answer(
                "Healthy: the vendor's shape (not in the data envelope), then our census.",
                schemas.Health,
                examples={
                    "vendor": {
                        "value": {
                            "success": True,
                            "status": "ok",
                            "timestamp": "2026-03-30T09:00:00.000Z",
                            "queue": {"depth": 0, "by_state": {}},
                        }
                    }
                },
            )
        },
    ),
    ("GET", "/api/admin/tokens"): Operation(
        "listTokens",
        "Every token (never the tokens themselves)",
        "admin",
        "admin",
        {200: Answer("The tokens.", schemas.OkTokenList)},
    ),
    ("POST", "/api/admin/tokens"): Operation(
        "createToken",
        "Create a token (shown once)",
        "admin",
        "admin",
        {200: Answer("The new token.", schemas.OkCreatedToken)},
        body=schemas.CreateToken,
        body_examples={"funded": {"value": {"name": "client-a", "credits": 1000}}},
        errors=frozenset({409}),
        links={"200": _TOKEN_REF},
    ),
    ("POST", "/api/admin/tokens/{ref}/topup"): Operation(
        "topupToken",
        "Add credits to a token (negative: take them)",
        "admin",
        "admin",
        {200: _TOKEN_ANSWER},
        body=schemas.TopUp,
        body_examples={"add": {"value": {"amount": 500}}},
        errors=frozenset({404}),
        description="`ref` is the token's id, name or printed prefix. 400 when the balance would leave"
        " 0..2147483647.",
    ),
    ("POST", "/api/admin/tokens/{ref}/webhook-secret"): Operation(
        "rotateWebhookSecret",
        "Give a token a new callback signing secret (shown once; the old one stops signing)",
        "admin",
        "admin",
        {200: Answer("The token and its new secret.", schemas.OkWebhookSecret)},
        errors=frozenset({404}),
    ),
    ("POST", "/api/admin/tokens/{ref}/ban"): Operation(
        "banToken", "Ban a token", "admin", "admin", {200: _TOKEN_ANSWER}, errors=frozenset({404})
    ),
    ("POST", "/api/admin/tokens/{ref}/unban"): Operation(
        "unbanToken", "Lift a token's ban", "admin", "admin", {200: _TOKEN_ANSWER}, errors=frozenset({404})
    ),
    ("GET", "/api/admin/sessions"): Operation(
        "sessions",
        "This node's browser sessions",
        "admin",
        "admin",
        {200: Answer("The pool's census and every session.", schemas.OkPoolCensus)},
        errors=frozenset({404}),
        description="404 on a node that runs no browser pool (role api).",
    ),
    ("GET", "/api/admin/nodes"): Operation(
        "nodes",
        "Every node on this database: role, URL, heartbeat, state, files held",
        "admin",
        "admin",
        {200: Answer("The node registry.", schemas.OkNodeList)},
        description="`up` while the heartbeat is younger than `SHORTVID_NODE_TIMEOUT`, `stopped` after a"
        " clean shutdown, `gone` otherwise.",
    ),
    ("GET", "/metrics"): Operation(
        "metrics",
        "This node's Prometheus metrics",
        "ops",
        "admin",
        {
            200: Answer(
                "The exposition: Prometheus text, or OpenMetrics when the Accept header asks for it.",
                media={
                    "text/plain": {"schema": {"type": "string"}},
                    "application/openmetrics-text": {"schema": {"type": "string"}},
                },
            )
        },
        description="Who may read it is `SHORTVID_METRICS_AUTH`: `admin` (an admin token), `loopback`"
        " (clients on the loopback address without one), `open`.",
    ),
    ("GET", "/api/openapi.json"): Operation(
        "openapi",
        "This document",
        "docs",
        "none",
        {
            200: Answer(
                "The OpenAPI 3.1 document.", media={"application/json": {"schema": {"type": "object"}}}
            )
        },
    ),
    ("GET", "/docs"): Operation(
        "docs",
        "The API documentation (Swagger UI, served offline)",
        "docs",
        "none",
        {200: Answer("The documentation page.", media={"text/html": {"schema": {"type": "string"}}})},
    ),
    ("GET", "/docs/{asset}"): Operation(
        "docsAsset",
        "A file of the documentation page (Swagger UI's script and style, served offline)",
        "docs",
        "none",
        {
            200: Answer("The file.", media={"*/*": {"schema": {"type": "string"}}}),
            304: Answer("Not modified since the client's copy."),
            412: Answer("A precondition (If-Match, If-Unmodified-Since) failed."),
            416: Answer("The requested range is outside the file."),
        },
        errors=frozenset({404}),
    ),
}


# --------------------------------------------------------------------------- errors

_ERROR_EXAMPLES: Mapping[int, tuple[str, Mapping[str, str]]] = {
    400: (
        "Bad input: the message says what to fix.",
        {
            "missing_url": 'Missing "url" in the JSON body.',
            "wrong_platform": "This is a TikTok URL; use POST /api/tiktok/video/parse",
            "bad_wait": '"wait" must be a number of seconds above 0 and at most 30, e.g. ?wait=10.',
        },
    ),
    401: (
        "No token, a malformed one, or an unknown one.",
        {"missing": MISSING_TOKEN, "invalid": INVALID_TOKEN},
    ),
    402: ("Not enough credits (the numbers are the real ones).", {"vendor": insufficient_credits(10, 0)}),
    403: (
        "The token is banned (or the route needs an admin token).",
        {"banned": BANNED, "admin_only": ADMIN_ONLY},
    ),
    404: ("Not found.", {"job": "Job not found"}),
    405: (
        "Another method than this path's (the Allow header lists them).",
        {"method": "Method not allowed for this route."},
    ),
    408: (
        "The body did not arrive in time.",
        {"slow": "Request Timeout: the body did not arrive within 10 seconds."},
    ),
    409: (
        "A token with this name exists.",
        {"taken": "Conflict: a token named 'client-a' already exists; pick another name."},
    ),
    413: ("The body is over the limit.", {"big": "Request body too large: the limit is 65536 bytes."}),
    429: (
        "Over the token's request rate.",
        {"rate": "Too Many Requests: more than 120 requests a minute for this token. Slow down and retry."},
    ),
    410: (
        "The file's bytes are out of reach for good: the node that held them is gone past the grace period.",
        {
            "lost": "File gone: the node that held it (worker-b-1a2b3c4d5e6f) has been away since before"
            " 2026-04-02T10:00:00.000Z, past the grace period. Run the download job again."
        },
    ),
    500: ("An internal error (never with a stack trace).", {"internal": "Internal server error"}),
    503: (
        "Too many clients wait on jobs on this node, or a file's node is down (Retry-After says when to"
        " try again).",
        {
            "busy": "Service Unavailable: 1000 clients already wait on jobs on this node. Poll without ?wait,"
            " or retry in a few seconds.",
            "owner_down": "File temporarily unavailable: the node that holds it (worker-b-1a2b3c4d5e6f) is"
            " gone since 2026-04-02T10:00:00.000Z. It is still recorded (…); try again when that node is"
            " back, or run the download job again.",
        },
    ),
}
_ERROR_HEADERS: Mapping[int, Mapping[str, Mapping[str, Any]]] = {
    401: {"WWW-Authenticate": {"required": True, "schema": {"type": "string", "const": "Bearer"}}},
    405: {"Allow": {"required": True, "schema": {"type": "string"}}},
    429: {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
    503: {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
}


def error_statuses(operation: Operation) -> frozenset[int]:
    """The error statuses an operation can answer."""
    statuses = {405, 500, *operation.errors}
    if operation.body is not None:
        statuses |= {400, 408, 413}
    if operation.auth != "none":
        statuses |= {401, 403, 429}
    return frozenset(statuses)


#: Headers on every answer, and on those of requests whose token was known (``server.middleware``).
COMMON_HEADERS: Mapping[str, Mapping[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id: the client's X-Request-ID when sane, else a new one.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$"},
    },
    "X-RateLimit-Limit": {
        "description": "The token's requests a minute (when its token was known and a limit is set).",
        "schema": {"type": "integer", "minimum": 1},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in the token's sliding minute after this one.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Reset": {
        "description": "Unix time (seconds) at which the oldest request of the window leaves it.",
        "schema": {"type": "integer", "minimum": 0},
    },
}
_REQUEST_ID_PARAMETER = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "Your id for the request, echoed back (and logged) when it is 1 to 128 token characters.",
    "schema": {"type": "string"},
}


def _with_common_headers(response: dict[str, Any]) -> dict[str, Any]:
    headers = {name: {"$ref": f"#/components/headers/{name}"} for name in COMMON_HEADERS}
    response["headers"] = {**headers, **response.get("headers", {})}
    return response


def _error_response(status: int) -> dict[str, Any]:
    description, examples = _ERROR_EXAMPLES[status]
    response: dict[str, Any] = {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"$ref": REF.format(model="ErrorEnvelope")},
                "examples": {
                    name: {"value": {"success": False, "error": message}}
                    for name, message in examples.items()
                },
            }
        },
    }
    if status in _ERROR_HEADERS:
        response["headers"] = {name: dict(header) for name, header in _ERROR_HEADERS[status].items()}
    return _with_common_headers(response)


# --------------------------------------------------------------------------- the document


Refs = Mapping[tuple[type[BaseModel], JsonSchemaMode], Any]


def component_schemas() -> tuple[Refs, dict[str, Any]]:
    """Every model's schema reference, and the components they need, in one pydantic pass."""
    inputs = {op.body for op in OPERATIONS.values() if op.body is not None}
    outputs = {
        answer.model for op in OPERATIONS.values() for answer in op.ok.values() if answer.model is not None
    }
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "validation") for model in sorted(inputs, key=lambda m: m.__name__)),
        *((model, "serialization") for model in sorted(outputs, key=lambda m: m.__name__)),
        (schemas.ErrorEnvelope, "serialization"),
    ]
    refs, top = models_json_schema(models, ref_template=REF)
    return cast(Refs, refs), top.get("$defs", {})


def _referenced(node: Any, components: Mapping[str, Any], found: set[str]) -> set[str]:
    """The component schemas ``node`` refers to, directly or through others."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in found:
                found.add(name)
                _referenced(components.get(name), components, found)
        for value in node.values():
            _referenced(value, components, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, components, found)
    return found


_PARAMETER = re.compile(r"\{([^{}:]+)(?::[^{}]*)?\}")
_PARAMETER_TEXT = {
    "job_id": ("The `jobId` a submit route answered (a UUID).", _JOB_ID),
    "task_id": ("The `taskId` a channel download answered (a UUID).", _TASK_ID),
    "file_id": ("The id in a result's `download_url` (a UUID).", "0b6f1a8e-3f8a-4c55-9c43-6c1f6a0e2d11"),
    "ref": ("A token's id, name or printed prefix.", "client-a"),
    "asset": ("A file the page loads.", "swagger-ui.css"),
}


def _security(auth: Auth, metrics_auth: MetricsAuth | None, path: str) -> list[dict[str, list[str]]]:
    if auth == "none":
        return []
    scheme = "adminBearer" if auth == "admin" else "bearer"
    if path == "/metrics" and metrics_auth == "open":
        return []
    if path == "/metrics" and metrics_auth == "loopback":
        return [{scheme: []}, {}]
    return [{scheme: []}]


def _operation(
    method: str,
    path: str,
    operation: Operation,
    refs: Refs,
    metrics_auth: MetricsAuth | None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, answer in sorted(operation.ok.items()):
        response: dict[str, Any] = {"description": answer.description}
        content: dict[str, Any] = {}
        if answer.model is not None:
            content["application/json"] = {"schema": refs[(answer.model, "serialization")]}
            if answer.examples:
                content["application/json"]["examples"] = dict(answer.examples)
        for media_type, media_spec in answer.media.items():
            content[media_type] = dict(media_spec)
        if content and method != "HEAD":
            response["content"] = content
        if answer.headers:
            response["headers"] = {name: {"schema": dict(schema)} for name, schema in answer.headers.items()}
        if str(status) in operation.links:
            response["links"] = {name: dict(link) for name, link in operation.links[str(status)].items()}
        responses[str(status)] = _with_common_headers(response)
    for status in sorted(error_statuses(operation)):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    described: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [operation.tag],
        "security": _security(operation.auth, metrics_auth, path),
        "responses": responses,
    }
    if operation.description:
        described["description"] = operation.description
    parameters = [_path_parameter(name) for name in _PARAMETER.findall(path)]
    parameters.append({"$ref": "#/components/parameters/XRequestID"})
    parameters += [
        {"name": name, "in": "query", "required": False, **dict(spec)}
        for name, spec in operation.query.items()
    ]
    if parameters:
        described["parameters"] = parameters
    if operation.body is not None:
        body: dict[str, Any] = {"schema": refs[(operation.body, "validation")]}
        if operation.body_examples:
            body["examples"] = dict(operation.body_examples)
        described["requestBody"] = {"required": True, "content": {"application/json": body}}
    return described


def _path_parameter(name: str) -> dict[str, Any]:
    description, example = _PARAMETER_TEXT.get(name, (name, None))
    parameter: dict[str, Any] = {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }
    if example is not None:
        parameter["example"] = example
    return parameter


def _undocumented(method: str, path: str) -> Operation:
    name = re.sub(r"\W+", "_", f"{method.lower()}{path}").strip("_")
    return Operation(name, "Undocumented route", "undocumented", "none", {200: Answer("Undocumented.")})


#: The web console's pages (and ``/``, which redirects there): HTML for people, signed in by a
#: cookie and posting CSRF-checked forms, not an API for clients, so not in this document.
CONSOLE_PREFIX = "/console"


def is_console(path: str) -> bool:
    return path == "/" or path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


def routes_of(app: web.Application) -> list[tuple[str, str]]:
    """The app's (method, path template) pairs the document describes.

    Static asset directories are left out, and so are the web console's pages and the HEAD twins
    aiohttp adds to every GET unless ``OPERATIONS`` lists them.
    """
    found: list[tuple[str, str]] = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None or isinstance(resource, StaticResource) or route.method == "*":
            continue
        if is_console(resource.canonical):
            continue
        key = (route.method, resource.canonical)
        if route.method == "HEAD" and key not in OPERATIONS:
            continue
        if key not in found:
            found.append(key)
    return found


def undocumented_routes(app: web.Application) -> list[tuple[str, str]]:
    return [key for key in routes_of(app) if key not in OPERATIONS]


_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def _version() -> str:
    try:
        return importlib.metadata.version("shortvid")
    except importlib.metadata.PackageNotFoundError:
        return "0"


DESCRIPTION = """\
A self-hosted twin of a commercial Douyin/TikTok job API: submit a URL, get a job id, poll the job.

Every JSON answer is `{"success": true, "data": ...}` or `{"success": false, "error": "<message>"}`
(health is the one exception). Routes marked with a lock need `Authorization: Bearer <token>`; credits
are charged when a job is accepted and refunded when it fails. Any path not listed here answers 404 in
the error envelope; another method on a listed path answers 405.
"""


def build_document(app: web.Application, *, metrics_auth: MetricsAuth | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes."""
    refs, components = component_schemas()
    paths: dict[str, dict[str, Any]] = {}
    for method, path in sorted(routes_of(app), key=lambda key: _METHOD_ORDER.index(key[0])):
        operation = OPERATIONS.get((method, path)) or _undocumented(method, path)
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, operation, refs, metrics_auth)
    statuses = sorted({s for op in OPERATIONS.values() for s in error_statuses(op)})
    responses = {f"E{status}": _error_response(status) for status in statuses}
    # pydantic also emits the schemas of types only validated into (ParsedUrl): keep the used ones.
    used = _referenced([paths, responses], components, set())
    return {
        "openapi": "3.1.0",
        "info": {"title": "shortvid", "version": _version(), "description": DESCRIPTION},
        "tags": [
            {"name": "douyin", "description": "The vendor's Douyin routes."},
            {"name": "tiktok", "description": "The vendor's TikTok routes."},
            {"name": "jobs", "description": "Polling jobs and tasks."},
            {"name": "files", "description": "Downloaded media (ours)."},
            {"name": "health", "description": "The vendor's health check."},
            {"name": "admin", "description": "Token, session and node administration (ours)."},
            {"name": "internal", "description": "Node to node: a file streamed from the node that holds it."},
            {"name": "ops", "description": "Metrics (ours)."},
            {"name": "docs", "description": "This documentation."},
        ],
        "paths": paths,
        "components": {
            "schemas": {name: schema for name, schema in components.items() if name in used},
            "responses": responses,
            "headers": {name: dict(header) for name, header in COMMON_HEADERS.items()},
            "parameters": {"XRequestID": _REQUEST_ID_PARAMETER},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token made by `shortvid token create` or POST /api/admin/tokens.",
                },
                "adminBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": 'A token made with `--admin` (or `"admin": true`).',
                },
            },
        },
    }
