"""Job events and callbacks: ``webhook_secrets``, the ``callbacks`` outbox, and on PostgreSQL a
trigger that NOTIFYs every job state change.

``webhook_secrets`` holds each token's signing key for callback notifications (tokens made before
this revision have none until an admin makes one). ``callbacks`` is one row per job submitted with
a ``callback_url``: delivery state, attempts, the last error, when the next attempt is due.

The trigger sends ``pg_notify('shortvid_jobs', '<job id> <state>')`` from the same transaction as
the UPDATE that changed the state, so the notification is delivered on commit (never before the
row can be read) and by every writer, one-statement autocommit updates included, without a second
statement on the job path. SQLite has no NOTIFY: there the waiters of one process are woken in
process (``server.job_events``).

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: The NOTIFY channel (``server.job_events.CHANNEL``; a migration must not import the app).
CHANNEL = "shortvid_jobs"

_NOTIFY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION shortvid_notify_job_state() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', NEW.id || ' ' || NEW.state);
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""
_NOTIFY_TRIGGER = """
CREATE TRIGGER jobs_state_notify AFTER UPDATE OF state ON jobs FOR EACH ROW
WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION shortvid_notify_job_state()
"""


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "webhook_secrets",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"]),
        sa.PrimaryKeyConstraint("token_id"),
    )
    op.create_table(
        "callbacks",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("result_url", sa.String(length=2048), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        _when("next_attempt_at"),
        _when("delivered_at", nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_index("ix_callbacks_due", "callbacks", ["state", "next_attempt_at"])
    if op.get_context().dialect.name == "postgresql":
        op.execute(_NOTIFY_FUNCTION)
        op.execute(_NOTIFY_TRIGGER)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS jobs_state_notify ON jobs")
        op.execute("DROP FUNCTION IF EXISTS shortvid_notify_job_state()")
    op.drop_index("ix_callbacks_due", table_name="callbacks")
    op.drop_table("callbacks")
    op.drop_table("webhook_secrets")
