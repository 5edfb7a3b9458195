"""Indexes for listing jobs by time: ``jobs.created_at``, and ``(token_id, created_at)``.

The console's job list (newest first, all jobs for an admin, one token's for a user), its
"last 24 hours by state" counts and its jobs-per-minute chart filter on ``created_at``; without
an index each of those read the whole table, which grows by every request ever accepted.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_created", "jobs", ["created_at"])
    op.create_index("ix_jobs_token_created", "jobs", ["token_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_token_created", table_name="jobs")
    op.drop_index("ix_jobs_created", table_name="jobs")
