"""The light job row type stays the table's twin (a new column must reach the hot path's reads)."""

from __future__ import annotations

from dataclasses import fields

from models.rows import JOBS, JobRow
from models.tables import Job


def test_the_row_type_has_every_column_of_the_jobs_table() -> None:
    assert {f.name for f in fields(JobRow)} == set(JOBS.c.keys())
    assert {f.name for f in fields(JobRow)} == set(Job.model_fields)
