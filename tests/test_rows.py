"""The light job row type stays the table's twin (a new column must reach the hot path's reads)."""

from __future__ import annotations

from dataclasses import fields

from models.rows import JOBS, JobRow
from models.tables import Job


def test_the_row_type_has_every_column_of_the_jobs_table() -> None:
    assert {f.name for f in fields(JobRow)} == set(JOBS.c.keys())
    assert {f.name for f in fields(JobRow)} == set(Job.model_fields)


def test_as_model_gives_a_job_with_the_same_values() -> None:
    job = Job(type="video.parse", platform="douyin", url="https://www.douyin.com/video/1", payload={"a": 1})
    row = JobRow(**{c.name: getattr(job, c.name) for c in JOBS.c})
    model = row.as_model()
    assert isinstance(model, Job)
    assert {c.name: getattr(model, c.name) for c in JOBS.c} == row.columns()
