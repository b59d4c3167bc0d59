"""pending erasures: the file steps of an erasure, journalled in its transaction

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00

An erasure removes rows in one transaction, then the files that held the same data (photo files, index
files). A process stopped between the two left the files behind. The erasing transaction now records each
file step in this table; the steps are done and their rows deleted afterwards, and opening the workspace or
maintaining it finishes any left by an interrupted process.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_erasures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("photo_sha256", sa.String(length=64), nullable=True),
        sa.CheckConstraint("(step = 'photo') = (photo_sha256 IS NOT NULL)", name="pending_erasure_names_its_file"),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("pending_erasures")
