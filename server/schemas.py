"""The API's request and response shapes as pydantic models.

The handlers validate request bodies with these models (``server.body``) and ``server.openapi``
describes the API from the same models, so the document cannot drift from what is checked.

Request models answer the messages the API has always answered: each field's rule raises
``BodyError`` with the text the client sees (HTTP 400), and the first failing field, in the
order the fields are declared, is the one reported. Fields are declared in the order the checks
have always run (``url``, then ``tz``, ``since``, ``count``), so a body with two mistakes gets the
same answer as before. Keys a model does not know are ignored, as vendor clients may send more.

Response models describe what the handlers send. Where our shapes may grow (job views, results,
the health census) they allow additional properties, as the vendor contract says extra keys may
be added; envelopes, errors and small fixed answers are closed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainValidator,
    PrivateAttr,
    RootModel,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from models.video import Author, Video
from scraper.errors import InvalidUrl
from scraper.hosts import Platform
from scraper.since import (
    DEFAULT_COUNT,
    MAX_COUNT,
    BadChannelParameter,
    parse_count,
    parse_since,
    parse_timezone,
)
from scraper.urls import Kind, ParsedUrl, classify, require
from server.credits import MAX_CREDITS, CreditsOutOfRange, check_credits

# --------------------------------------------------------------------------- request rules


class BodyError(ValueError):
    """A body field the client must fix (HTTP 400); the message says how."""


#: The ``PydanticCustomError`` type that carries a ``BodyError``'s message unchanged.
BODY_ERROR = "shortvid_body"


def url_text(value: object) -> str:
    """The ``url`` field as a non-empty string."""
    if value is None:
        raise BodyError('Missing "url" in the JSON body.')
    if not isinstance(value, str):
        raise BodyError(f'"url" must be a string, not {type(value).__name__}.')
    if not value.strip():
        raise BodyError('"url" is empty.')
    return value


@dataclass(frozen=True, slots=True)
class SubmitContext:
    """What a submit route's body is checked against: its platform, URL kinds and default zone."""

    platform: Platform
    kinds: frozenset[Kind]
    default_tz: str


@dataclass(frozen=True, slots=True)
class SinceDay:
    """A ``since`` as the client typed it and the UTC instant its day starts (fixed at acceptance)."""

    text: str
    start: datetime


def _context(info: ValidationInfo) -> SubmitContext | None:
    context = info.context
    return context if isinstance(context, SubmitContext) else None


def _rule(check: Callable[[Any, ValidationInfo], Any]) -> PlainValidator:
    """A field validator whose rule's error becomes the one pydantic error the client is shown."""

    def validate(value: Any, info: ValidationInfo) -> Any:
        try:
            return check(value, info)
        except (BodyError, BadChannelParameter) as exc:
            message = str(exc)
        except CreditsOutOfRange as exc:  # its message is a clause: the API has always ended it
            message = f"{exc}."
        except InvalidUrl as exc:
            message = exc.message
        raise PydanticCustomError(BODY_ERROR, "{message}", {"message": message})

    return PlainValidator(validate)


def _platform_url(value: object, info: ValidationInfo) -> ParsedUrl:
    """The URL classified and, on a submit route, checked against its platform and kinds."""
    parsed = classify(url_text(value))
    context = _context(info)
    if context is not None:
        parsed = require(parsed, platform=context.platform, kinds=set(context.kinds))
    return parsed


def _zone(value: object, info: ValidationInfo) -> ZoneInfo:
    context = _context(info)
    return parse_timezone(value, context.default_tz if context else "UTC")


def _since(value: object, info: ValidationInfo) -> SinceDay | None:
    zone = info.data.get("tz")
    if value is None or not isinstance(zone, ZoneInfo):  # a bad "tz" is reported first
        return None
    start = parse_since(value, zone)
    assert start is not None and isinstance(value, str)
    return SinceDay(value, start)


def _count(value: object, info: ValidationInfo) -> int:
    return parse_count(value)


def _as_sent(value: object, info: ValidationInfo) -> object:
    """Kept as the client sent it, for a check that needs more than the body (the network, a key)."""
    return value


def _is_true(value: object, info: ValidationInfo) -> bool:
    """Only JSON ``true`` turns a flag on; anything else is ignored, as it always was."""
    return value is True


NAME_RULE = '"name" must be a string of 1 to 100 printable characters.'


def _token_name(value: object, info: ValidationInfo) -> str:
    if not isinstance(value, str) or not 0 < len(value.strip()) <= 100 or not value.isprintable():
        raise BodyError(NAME_RULE)
    return value.strip()


def _grant(value: object, info: ValidationInfo) -> int:
    if info.data.get("unlimited") is True:
        return 0
    return check_credits(value, '"credits"')


def _amount(value: object, info: ValidationInfo) -> int:
    return check_credits(value, '"amount"', allow_negative=True)


def _schema(**schema: Any) -> WithJsonSchema:
    return WithJsonSchema(schema)


def _no_default(schema: dict[str, Any]) -> None:
    """For a field whose ``None`` default only means "apply the rule to the absent value"."""
    schema.pop("default", None)


_URL_EXAMPLES = ["https://v.douyin.com/iRNBho6u/", "https://www.douyin.com/video/7328000000000000000"]

PlatformUrl = Annotated[
    ParsedUrl,
    _rule(_platform_url),
    _schema(
        type="string",
        minLength=1,
        description="A Douyin or TikTok URL in any form the apps share (a short link, a page URL, or a whole"
        " pasted share text containing one). Only the URL classified is kept, in its canonical form. A URL of"
        " the other platform or of the other kind (video vs profile) is a 400 naming the route to use.",
        examples=_URL_EXAMPLES,
    ),
]
Zone = Annotated[
    ZoneInfo,
    _rule(_zone),
    _schema(
        type=["string", "null"],
        maxLength=64,
        description="The IANA time zone in which a `since` day starts (default Asia/Shanghai for Douyin,"
        " UTC for TikTok).",
        examples=["Asia/Shanghai", "UTC"],
    ),
]
Since = Annotated[
    SinceDay | None,
    _rule(_since),
    _schema(
        type=["string", "null"],
        pattern="^(today|yesterday|[0-9]{4}-[0-9]{2}-[0-9]{2})$",
        description='Only posts from the start of this day on: "today", "yesterday" or a date "YYYY-MM-DD"'
        " from 1970-01-01 to today (case and surrounding spaces are ignored). Resolved when the request is"
        " accepted. Absent: all posts.",
        examples=["today"],
    ),
]
Count = Annotated[
    int,
    _rule(_count),
    _schema(type=["integer", "null"], minimum=1, maximum=MAX_COUNT, default=DEFAULT_COUNT, examples=[20]),
]
Flag = Annotated[bool, _rule(_is_true), _schema(type="boolean", default=False)]
CallbackUrl = Annotated[
    object,
    _rule(_as_sent),
    _schema(
        type=["string", "null"],
        format="uri",
        description="Where to POST a signed notification when the job ends (https; no private, loopback or"
        " link-local address). Checked before anything is charged (server.webhooks).",
        examples=["https://example.com/hooks/shortvid"],
    ),
]
Cursor = Annotated[
    object,
    _rule(_as_sent),
    _schema(
        type=["string", "null"],
        maxLength=2048,
        description="A channel result's `cursor`: continue that listing where it stopped (same profile URL)."
        " Checked against the server's key and the request (server.cursors).",
    ),
]


# --------------------------------------------------------------------------- request bodies


class RequestBody(BaseModel):
    """A JSON request body; unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    #: What a missing required field's 400 says, when not ``Missing "<field>" in the JSON body.``
    missing_messages: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def missing_message(cls, field: str) -> str:
        return cls.missing_messages.get(field, f'Missing "{field}" in the JSON body.')


_REFRESH = "true: scrape again, bypassing the short result cache and jobs in flight."


class SubmitBody(RequestBody):
    """A submit route's body: ``url`` first (it is checked first), then the route's options.

    ``callback_url`` (and a channel body's ``cursor``) are kept as sent: their checks need the
    network or the server's key, so the handler makes them (``server.webhooks``, ``server.cursors``),
    which also read ``raw``, the body as it arrived.
    """

    url: PlatformUrl
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: ModelWrapValidatorHandler[SubmitBody]) -> SubmitBody:
        body = handler(data)
        if isinstance(data, dict):
            body._raw = data
        return body

    @property
    def raw(self) -> dict[str, Any]:
        """The JSON object as received."""
        return self._raw

    def options(self) -> dict[str, Any]:
        """The route options stored in the job's payload and its coalescing key."""
        return {}


class VideoSubmit(SubmitBody):
    """POST /api/video/parse and /download, and their /api/tiktok twins."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"url": "https://v.douyin.com/iRNBho6u/"}]})

    refresh: Flag = Field(default=False, description=_REFRESH)
    callback_url: CallbackUrl = None

    def options(self) -> dict[str, Any]:
        return {"refresh": True} if self.refresh else {}


class ChannelSubmit(SubmitBody):
    """POST /api/channel/videos and /download, and their /api/tiktok twins."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"url": "https://www.douyin.com/user/MS4wLjABAAAAexample", "count": 20, "since": "today"}
            ]
        }
    )

    tz: Zone = Field(default=None, validate_default=True)  # None: the route's default zone
    since: Since = None
    count: Count = Field(default=DEFAULT_COUNT, description=f"How many posts, 1 to {MAX_COUNT}.")
    refresh: Flag = Field(default=False, description=_REFRESH)
    callback_url: CallbackUrl = None
    cursor: Cursor = None

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "count": self.count,
            "since": self.since.start.isoformat() if self.since else None,
            "since_input": self.since.text if self.since else None,
            "tz": self.tz.key,
        }
        if self.refresh:
            options["refresh"] = True
        return options


class CreateToken(RequestBody):
    """POST /api/admin/tokens."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "client-a", "credits": 1000}]})
    missing_messages: ClassVar[Mapping[str, str]] = {"name": NAME_RULE}

    name: Annotated[str, _rule(_token_name), _schema(type="string", minLength=1, maxLength=100)]
    unlimited: Flag = Field(default=False, description="true: no credit limit (credits is then ignored).")
    credits: Annotated[
        int,
        _rule(_grant),
        _schema(type="integer", minimum=0, maximum=MAX_CREDITS, description="Required unless unlimited."),
    ] = Field(default=None, validate_default=True, json_schema_extra=_no_default)  # checked unless unlimited
    admin: Flag = Field(default=False, description="true: the token may use the admin routes.")


class TopUp(RequestBody):
    """POST /api/admin/tokens/{ref}/topup: add (or, negative, take) credits."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"amount": 500}]})
    missing_messages: ClassVar[Mapping[str, str]] = {
        "amount": f'"amount" must be a whole number from {-MAX_CREDITS} to {MAX_CREDITS}, not None.'
    }

    amount: Annotated[int, _rule(_amount), _schema(type="integer", minimum=-MAX_CREDITS, maximum=MAX_CREDITS)]


#: The submit body of each route family (``JobRoute.family``).
SUBMIT_MODELS: Mapping[str, type[SubmitBody]] = {"video": VideoSubmit, "channel": ChannelSubmit}


# --------------------------------------------------------------------------- response envelopes

DataT = TypeVar("DataT")


class Ok(BaseModel, Generic[DataT]):
    """The vendor's success envelope ``{"success": true, "data": ...}``."""

    model_config = ConfigDict(extra="forbid")

    success: Literal[True]
    data: DataT


class ErrorEnvelope(BaseModel):
    """Every error: ``{"success": false, "error": "<message that says what to fix>"}``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"success": False, "error": "Job not found"}]},
    )

    success: Literal[False]
    error: str


# --------------------------------------------------------------------------- submit answers

_JOB_ID = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
_TASK_ID = "c3d4e5f6-a7b8-9012-cdef-234567890123"
Uuid = Annotated[str, Field(pattern="^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]


class JobAccepted(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"jobId": _JOB_ID, "message": "Job queued. Poll GET /api/job/:jobId for result."}]
        },
    )

    jobId: Uuid  # the vendor's key
    message: str


class TaskStarted(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"taskId": _TASK_ID, "status": "started", "total": 10}]},
    )

    taskId: Uuid  # the vendor's key
    status: Literal["started"]
    total: int


# --------------------------------------------------------------------------- results

JobType = Literal[
    "video.parse",
    "tiktok.video.parse",
    "video.download",
    "tiktok.video.download",
    "channel.videos",
    "tiktok.channel.videos",
    "channel.download",
    "tiktok.channel.download",
]


#: The vendor's example of a completed video result (``platform`` is ours and required).
VIDEO_EXAMPLE: dict[str, Any] = {
    "video_id": "7328xxxxx",
    "title": "Video title here",
    "author": {"nickname": "username", "uid": "...", "sec_uid": "..."},
    "cover_url": "https://p3-sign.douyinpic.com/...",
    "download_url": "https://www.douyin.com/aweme/...",
    "duration": 15,
    "create_time": "2026-04-02T10:00:00.000Z",
    "statistics": {"likes": 1000, "comments": 50, "shares": 10},
    "platform": "douyin",
}


class VideoResult(Video):
    """A parse job's result: the vendor's video fields first, then ours."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [VIDEO_EXAMPLE]})

    cached: bool | None = Field(default=None, description="true when the result was shared with another job.")


class FileView(BaseModel):
    """A file in shortvid's store; ``download_url`` works for any plain HTTP client."""

    model_config = ConfigDict(extra="allow")

    role: Literal["video", "image", "music"]
    download_url: str
    size: int
    sha256: str
    content_type: str
    expires_at: str | None


class DownloadResult(VideoResult):
    """A download job's result: the video result whose ``download_url`` is served by shortvid."""

    source_url: str | None = Field(description="The platform's signed media URL the file was fetched from.")
    source_url_expires_at: str | None
    files: list[FileView]


class ChannelListing(BaseModel):
    """A channel listing job's result: the vendor's videos, plus ``author``, ``count`` and ``has_more``."""

    model_config = ConfigDict(extra="allow")

    author: Author
    videos: list[VideoResult]
    count: int
    has_more: bool
    cached: bool | None = None
    # The paging work adds ``cursor: str | None`` (present only when has_more is true).


class ChannelDownloadSummary(BaseModel):
    """A channel download job's result, as ``GET /api/job`` shows it (``GET /api/task`` says more)."""

    model_config = ConfigDict(extra="allow")

    total: int
    done: int
    failed: int


JobResult = VideoResult | DownloadResult | ChannelListing | ChannelDownloadSummary


# --------------------------------------------------------------------------- job views


class JobData(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: JobType
    url: str = Field(description="The canonical URL the job was accepted for.")


class CallbackView(BaseModel):
    """A job's callback delivery (ours, when the submit body had ``callback_url``)."""

    model_config = ConfigDict(extra="allow")

    url: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    last_error: str | None = None


class _Detail(BaseModel):
    """Our fields after the vendor's (``?detail=1``, event streams); timestamps ISO 8601 UTC, ms, Z."""

    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int | None = None
    error_code: str | None = Field(
        default=None, description="failed: a stable code (not_found, blocked ...)."
    )
    retryable: bool | None = Field(default=None, description="failed: whether submitting again may succeed.")
    callback: CallbackView | None = None


class _JobView(_Detail):
    """Fields every job state shows; more may be added (the vendor contract allows extra keys)."""

    model_config = ConfigDict(extra="allow")

    id: Uuid


class JobPending(_JobView):
    """Queued (``waiting``), running (``active``) or waiting to retry (``delayed``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _JOB_ID,
                    "state": "active",
                    "data": {"type": "video.parse", "url": "https://v.douyin.com/xxxxx"},
                }
            ]
        }
    )

    state: Literal["waiting", "active", "delayed"]
    data: JobData
    last_error: str | None = Field(default=None, description="delayed: why the last attempt failed.")


class JobCompleted(_JobView):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _JOB_ID,
                    "state": "completed",
                    "result": VIDEO_EXAMPLE,
                }
            ]
        }
    )

    state: Literal["completed"]
    result: JobResult


class JobFailed(_JobView):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"id": _JOB_ID, "state": "failed", "error": "Could not extract video ID from URL"}]
        }
    )

    state: Literal["failed"]
    error: str


class JobView(RootModel[Annotated[JobPending | JobCompleted | JobFailed, Field(discriminator="state")]]):
    """A job in each of its states (``state`` tells which)."""


# --------------------------------------------------------------------------- tasks


class TaskItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    video_id: str
    url: str
    media_type: str
    state: Literal["pending", "done", "failed"]
    bytes: int
    download_url: str | None
    files: list[FileView]
    error: str | None


class TaskView(_Detail):
    """A channel download task, item by item."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "taskId": _TASK_ID,
                    "status": "running",
                    "total": 10,
                    "done": 3,
                    "failed": 0,
                    "url": "https://www.douyin.com/user/MS4wLjABAAAAexample",
                    "error": None,
                    "items": [],
                }
            ]
        },
    )

    taskId: Uuid  # the vendor's key
    status: Literal["started", "running", "completed", "partial", "failed"]
    total: int
    done: int
    failed: int
    url: str
    error: str | None
    items: list[TaskItem]


# --------------------------------------------------------------------------- health and admin


class QueueCensus(BaseModel):
    model_config = ConfigDict(extra="allow")

    depth: int = Field(description="Jobs waiting or delayed.")
    by_state: dict[str, int]


class SessionCounts(BaseModel):
    model_config = ConfigDict(extra="allow")

    total: int
    busy: int
    idle: int


class PoolSummary(BaseModel):
    """This node's browser pool (absent on an API-only node)."""

    model_config = ConfigDict(extra="allow")

    browser_alive: bool
    browser_uptime_seconds: float
    browser_pages: int
    sessions: SessionCounts
    retired: dict[str, int]
    blocks: dict[str, int]
    leases: int
    relaunches: int


class Health(BaseModel):
    """The vendor's health answer (not in the data envelope), plus our queue and pool census."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "success": True,
                    "status": "ok",
                    "timestamp": "2026-03-30T09:00:00.000Z",
                    "queue": {"depth": 0, "by_state": {}},
                }
            ]
        },
    )

    success: Literal[True]
    status: Literal["ok"]
    timestamp: str = Field(description="ISO 8601 UTC with milliseconds and Z.")
    queue: QueueCensus
    pool: PoolSummary | None = None


class SessionCensus(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    identity: str
    state: str
    uses: int
    score: float
    busy: bool


class PoolCensus(PoolSummary):
    """GET /api/admin/sessions: the summary and every session."""

    detail: list[SessionCensus]


class TokenView(BaseModel):
    """A token without its secret parts."""

    model_config = ConfigDict(extra="forbid")

    id: int
    name: str
    token_prefix: str = Field(description="The first characters of the token, to tell tokens apart.")
    credits: int | None = Field(description="null for unlimited tokens.")
    unlimited: bool
    banned: bool
    admin: bool
    created_at: str
    last_used_at: str | None


class WebhookSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    name: str
    webhook_secret: str = Field(description="The token's new callback signing secret, shown once.")


class CreatedToken(TokenView):
    """A new token: the only answer that ever shows it."""

    token: str = Field(description="The token itself: shown once, stored only as a hash.")
    webhook_secret: str | None = Field(
        default=None, description="The token's callback signing secret, shown once with it."
    )


# --------------------------------------------------------------------------- named envelopes
# Subclasses, so the document's components have plain names (``OkJobView``, not ``Ok_JobView_``).


class OkJobAccepted(Ok[JobAccepted]):
    pass


class OkTaskStarted(Ok[TaskStarted]):
    pass


class OkJobView(Ok[JobView]):
    pass


class OkTaskView(Ok[TaskView]):
    pass


class OkTokenView(Ok[TokenView]):
    pass


class OkTokenList(Ok[list[TokenView]]):
    pass


class OkCreatedToken(Ok[CreatedToken]):
    pass


class OkPoolCensus(Ok[PoolCensus]):
    pass


class OkWebhookSecret(Ok[WebhookSecret]):
    pass


class NodeView(BaseModel):
    """A node of the registry (``server.node_registry.NodeInfo``)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    role: Literal["all", "api", "worker"]
    state: Literal["up", "stopped", "gone"]
    url: str = Field(
        description="Where the other nodes reach it (SHORTVID_NODE_URL, else its listen address)."
    )
    version: str
    host: str
    pid: int
    started_at: str
    heartbeat_at: str
    stopped_at: str | None
    files: int = Field(description="Files whose bytes are on its disk.")
    file_bytes: int


class OkNodeList(Ok[list[NodeView]]):
    pass
