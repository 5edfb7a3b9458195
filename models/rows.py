"""Light, read-only rows of the ``jobs`` table for the hot path (claim, poll, coalescing).

Building a SQLModel ``Job`` from a row costs an ORM instance (instrumented attributes, identity
state); the worker and the poll route only read the columns, so they get a frozen dataclass read
straight from a SQLAlchemy Core row; job handlers take it too.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (defines the jobs table on SQLModel.metadata)

JOBS: Table = SQLModel.metadata.tables["jobs"]


@dataclass(frozen=True, slots=True)
class JobRow:
    """One ``jobs`` row as stored when it was read (the same names as ``Job``)."""

    id: str
    type: str
    platform: str
    url: str
    payload: dict[str, Any]
    state: str
    token_id: int | None
    cost: int
    attempts: int
    max_attempts: int
    worker_id: str | None
    result: dict[str, Any] | None
    error: str | None
    error_code: str | None
    result_expired: bool
    created_at: datetime
    updated_at: datetime
    run_at: datetime
    locked_until: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    result_expires_at: datetime | None
    dedupe_key: str | None
    leads: bool
    shared: bool

    @classmethod
    def of(cls, row: Row[Any]) -> JobRow:
        """From a Core row selected over ``JOB_COLUMNS``."""
        return cls(**row._mapping)

    def columns(self) -> dict[str, Any]:
        """Column name to value (an INSERT's values)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: Every column, in the row type's order (a new column must be added to both: a test checks it).
JOB_COLUMNS = tuple(JOBS.c[f.name] for f in fields(JobRow))
