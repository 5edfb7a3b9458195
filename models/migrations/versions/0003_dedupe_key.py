"""Coalescing and the short result cache: ``jobs.dedupe_key``, ``leads`` and ``shared``.

Identical parse and channel-listing requests carry the same ``dedupe_key``, so a worker on any
node finds a completed job to reuse or an active one to follow through the database. ``leads``
marks the one job per key that runs the scrape: a unique partial index over the leading rows
makes taking the lead atomic on both engines (a second claimant's UPDATE violates it), across
processes and machines. ``shared`` marks a result copied from another job, so reuse is measured
from the scrape itself and never chains past the TTL. Batch mode for SQLite.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("leads", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index("ix_jobs_dedupe", ["dedupe_key", "state"])
    op.create_index(
        "ux_jobs_leader",
        "jobs",
        ["dedupe_key"],
        unique=True,
        sqlite_where=sa.text("leads"),
        postgresql_where=sa.text("leads"),
    )


def downgrade() -> None:
    op.drop_index("ux_jobs_leader", table_name="jobs")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index("ix_jobs_dedupe")
        batch_op.drop_column("shared")
        batch_op.drop_column("leads")
        batch_op.drop_column("dedupe_key")
