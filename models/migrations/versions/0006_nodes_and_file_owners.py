"""The node registry (``nodes``) and each file's owner: ``stored_files.node_id`` and ``lost_at``.

Files land on the disk of the worker that downloaded them. Recording that node lets every other
node stream a file from its owner, and lets upkeep delete bytes only on the node that holds them.
Rows from before this revision keep ``node_id`` NULL: a store every node can read (the single
machine they were written on). Batch mode for SQLite.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _utc(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("url", sa.String(length=512), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("incarnation", sa.String(length=16), nullable=False),
        _utc("started_at", nullable=False),
        _utc("heartbeat_at", nullable=False),
        _utc("stopped_at"),
    )
    with op.batch_alter_table("stored_files") as batch_op:
        batch_op.add_column(sa.Column("node_id", sa.String(length=64), nullable=True))
        batch_op.add_column(_utc("lost_at"))
        batch_op.create_index("ix_files_node_expires", ["node_id", "expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("stored_files") as batch_op:
        batch_op.drop_index("ix_files_node_expires")
        batch_op.drop_column("lost_at")
        batch_op.drop_column("node_id")
    op.drop_table("nodes")
