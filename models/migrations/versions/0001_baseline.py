"""Baseline: the schema ``SQLModel.metadata.create_all`` made before migrations existed.

Frozen on purpose (plain SQLAlchemy types, not the models'), so later model edits never change it.
A database made by that older code is stamped at this revision instead of running it.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=16), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("unlimited", sa.Boolean(), nullable=False),
        sa.Column("banned", sa.Boolean(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        _when("created_at"),
        _when("last_used_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_api_tokens_token_hash", "api_tokens", ["token_hash"], unique=True)

    op.create_table(
        "stored_files",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("platform", sa.String(length=10), nullable=False),
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("relpath", sa.String(length=512), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("source_url", sa.String(length=4096), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        _when("created_at"),
        _when("expires_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_files_item", "stored_files", ["platform", "item_id"])
    op.create_index("ix_stored_files_expires_at", "stored_files", ["expires_at"])
    op.create_index("ix_stored_files_job_id", "stored_files", ["job_id"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=10), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("cost", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(length=80), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("result_expired", sa.Boolean(), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        _when("run_at"),
        _when("locked_until", nullable=True),
        _when("started_at", nullable=True),
        _when("finished_at", nullable=True),
        _when("result_expires_at", nullable=True),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_jobs_claim", "jobs", ["state", "run_at"])
    op.create_index("ix_jobs_result_expires_at", "jobs", ["result_expires_at"])
    op.create_index("ix_jobs_token_id", "jobs", ["token_id"])

    op.create_table(
        "download_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("media_type", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("file_ids", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("updated_at"),
        sa.ForeignKeyConstraint(["task_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_download_items_task", "download_items", ["task_id", "position"], unique=True)


def downgrade() -> None:
    for table in ("download_items", "jobs", "stored_files", "api_tokens"):
        op.drop_table(table)  # their indexes go with them
