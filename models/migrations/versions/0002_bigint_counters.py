"""Widen credits, costs and byte sizes to 64 bits.

``api_tokens.credits`` was a 32-bit INTEGER on PostgreSQL, so a refund to a token at 2147483647
overflowed; file and download sizes pass 2 GiB too. On SQLite every integer is already 64-bit, but
the declared type is changed as well (batch mode recreates the table) so both engines match the models.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: (table, column) pairs that can exceed 2**31.
WIDENED = (
    ("api_tokens", "credits"),
    ("jobs", "cost"),
    ("stored_files", "size"),
    ("download_items", "bytes"),
)


def _retype(old: type[sa.Integer], new: type[sa.Integer]) -> None:
    for table, column in WIDENED:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column(column, existing_type=old(), type_=new(), existing_nullable=False)


def upgrade() -> None:
    _retype(sa.Integer, sa.BigInteger)


def downgrade() -> None:
    _retype(sa.BigInteger, sa.Integer)
