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


class StoredFile(SQLModel, table=True):
    """A media file shortvid downloaded and serves at ``/api/files/{id}``.

    ``pinned`` files are never evicted by the size cap (a running channel task pins its files).
    """

    __tablename__ = "stored_files"
    __table_args__ = (Index("ix_files_item", "platform", "item_id"),)

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
