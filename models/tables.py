"""SQLModel tables. States are plain strings so every engine stores them the same way."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, false, text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class JobState:
    """Job states: the vendor's four plus ``delayed`` (waiting to retry)."""

    WAITING = "waiting"
    DELAYED = "delayed"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"

    CLAIMABLE = (WAITING, DELAYED)
    FINISHED = (COMPLETED, FAILED)


class JobErrorCode:
    """The stable set of ``jobs.error_code`` values a client sees, and which of them may pass.

    ``RETRYABLE``: the same request may succeed if it is submitted again later (a block, a timeout,
    a crash); the others will fail the same way until the post or the code changes. A stored code
    outside the set (none is written today) is shown as ``internal``.
    """

    INVALID_URL = "invalid_url"
    WRONG_PLATFORM = "wrong_platform"
    WRONG_KIND = "wrong_kind"
    NOT_FOUND = "not_found"
    PRIVATE = "private"
    UNAVAILABLE = "unavailable"
    LAYOUT_CHANGED = "layout_changed"
    BLOCKED = "blocked"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    BROWSER_CRASHED = "browser_crashed"
    NETWORK_ERROR = "network_error"
    LOST = "lost"
    LEASE_EXPIRED = "lease_expired"
    WORKER_RESTARTED = "worker_restarted"
    INTERNAL = "internal"

    FINAL = frozenset(
        {INVALID_URL, WRONG_PLATFORM, WRONG_KIND, NOT_FOUND, PRIVATE, UNAVAILABLE, LAYOUT_CHANGED}
    )
    RETRYABLE = frozenset(
        {BLOCKED, RATE_LIMITED, TIMEOUT, BROWSER_CRASHED, NETWORK_ERROR, LOST}
        | {LEASE_EXPIRED, WORKER_RESTARTED, INTERNAL}
    )
    ALL = FINAL | RETRYABLE

    @classmethod
    def public(cls, stored: str | None) -> str | None:
        """The code as the API shows it: one of ``ALL`` (None when the job has no error)."""
        if stored is None:
            return None
        return stored if stored in cls.ALL else cls.INTERNAL


class CallbackState:
    """States of a job's callback delivery (``callbacks.state``)."""

    PENDING = "pending"  # the job runs, or an attempt is due or under way
    DELIVERED = "delivered"
    FAILED = "failed"  # out of attempts, or the URL became unacceptable


def _utc_column(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class ApiToken(SQLModel, table=True):
    """An API client. Only the sha256 of the token is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    token_prefix: str = Field(max_length=16)
    credits: int = Field(default=0, sa_type=BigInteger)
    unlimited: bool = Field(default=False)
    banned: bool = Field(default=False)
    is_admin: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    last_used_at: datetime | None = _utc_column()


class Job(SQLModel, table=True):
    """One accepted request. It ends ``completed`` or ``failed``, whatever crashes in between."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "state", "run_at"),
        Index("ix_jobs_dedupe", "dedupe_key", "state"),
        # The console's lists and charts: recent jobs, all of them (admin) or one token's.
        Index("ix_jobs_created", "created_at"),
        Index("ix_jobs_token_created", "token_id", "created_at"),
        # At most one job per key runs the scrape: taking the lead is atomic on both engines.
        Index(
            "ux_jobs_leader",
            "dedupe_key",
            unique=True,
            sqlite_where=text("leads"),
            postgresql_where=text("leads"),
        ),
    )

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    type: str = Field(max_length=40)
    platform: str = Field(max_length=10)
    url: str = Field(max_length=2048)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default=JobState.WAITING, max_length=12)
    token_id: int | None = Field(default=None, foreign_key="api_tokens.id", index=True)
    cost: int = Field(default=0, sa_type=BigInteger)
    attempts: int = Field(default=0)
    max_attempts: int = Field(default=3)
    worker_id: str | None = Field(default=None, max_length=80)
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = Field(default=None)
    error_code: str | None = Field(default=None, max_length=40)
    result_expired: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    run_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    locked_until: datetime | None = _utc_column()
    started_at: datetime | None = _utc_column()
    finished_at: datetime | None = _utc_column()
    result_expires_at: datetime | None = _utc_column(index=True)
    #: sha256 of (type, canonical URL, options) for jobs whose scrape may be shared; None: never shared.
    dedupe_key: str | None = Field(default=None, max_length=64)
    #: This active job runs the scrape that the others with its key wait for (cleared when it ends).
    leads: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    #: The result was copied from another job's scrape (reuse is timed from the scrape, not the copy).
    shared: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class WebhookSecret(SQLModel, table=True):
    """A token's callback signing key (HMAC-SHA256 over each notification's body).

    Kept in its own table, in plain: the server must sign with it, so it cannot be hashed like
    the token. It is no credential (it authenticates our notifications to the client, never the
    client to us), so the database holding it gives an attacker nothing the database did not.
    """

    __tablename__ = "webhook_secrets"

    token_id: int = Field(foreign_key="api_tokens.id", primary_key=True)
    secret: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Callback(SQLModel, table=True):
    """The delivery of one job's end notification to its ``callback_url`` (an outbox row).

    Made with the job in one transaction; due once the job has ended and ``next_attempt_at`` has
    come. A claim moves ``next_attempt_at`` past the attempt's time limit, so a node that dies
    mid-attempt leaves the row due again (delivery is at least once) and no other node takes it
    meanwhile.
    """

    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_due", "state", "next_attempt_at"),)

    job_id: str = Field(foreign_key="jobs.id", primary_key=True, max_length=36)
    url: str = Field(max_length=2048)
    #: Where the notification tells the client to read the job (``…/api/job/<id>`` or ``/api/task/``).
    result_url: str = Field(max_length=2048)
    state: str = Field(default=CallbackState.PENDING, max_length=12)
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, max_length=500)
    last_status: int | None = Field(default=None)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    delivered_at: datetime | None = _utc_column()
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class StoredFile(SQLModel, table=True):
    """A media file shortvid downloaded and serves at ``/api/files/{id}``.

    ``pinned`` files are never evicted by the size cap (a running channel task pins its files).
    ``node_id`` is the node whose disk holds the bytes (None: a store every node mounts, or a row
    from before nodes were recorded); only that node deletes them. ``lost_at``: its owner was gone
    past the grace period, so the bytes are out of reach (the file answers 410).
    """

    __tablename__ = "stored_files"
    __table_args__ = (
        Index("ix_files_item", "platform", "item_id"),
        Index("ix_files_node_expires", "node_id", "expires_at"),
    )

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    platform: str = Field(max_length=10)
    item_id: str = Field(max_length=32)
    role: str = Field(max_length=16)  # video | image | music
    relpath: str = Field(max_length=512)
    size: int = Field(default=0, sa_type=BigInteger)
    sha256: str = Field(max_length=64)
    content_type: str = Field(max_length=64)
    source_url: str = Field(max_length=4096)
    job_id: str | None = Field(default=None, max_length=36, index=True)
    pinned: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime | None = _utc_column(index=True)
    node_id: str | None = Field(default=None, max_length=64)
    lost_at: datetime | None = _utc_column()


class NodeRecord(SQLModel, table=True):
    """A shortvid process that shares this database: who it is, where its peers reach it, whether
    it still beats. ``stopped_at``: it shut down cleanly (set again to None when it comes back)."""

    __tablename__ = "nodes"

    id: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=8)
    url: str = Field(max_length=512)
    version: str = Field(max_length=32)
    host: str = Field(max_length=255)
    pid: int = Field(default=0)
    incarnation: str = Field(max_length=16)
    started_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    heartbeat_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    stopped_at: datetime | None = _utc_column()


class ItemState:
    """States of one item of a channel download task."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class DownloadItem(SQLModel, table=True):
    """One post of a channel download task (the task is the ``channel.download`` job)."""

    __tablename__ = "download_items"
    __table_args__ = (Index("ix_download_items_task", "task_id", "position", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(max_length=36, foreign_key="jobs.id")
    position: int
    video_id: str = Field(max_length=32)
    url: str = Field(max_length=2048)
    media_type: str = Field(default="video", max_length=8)
    state: str = Field(default=ItemState.PENDING, max_length=12)
    bytes: int = Field(default=0, sa_type=BigInteger)
    file_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    error: str | None = Field(default=None)
    attempts: int = Field(default=0)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
