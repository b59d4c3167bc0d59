"""at most one open identification per case

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:00:00

The workflow refuses a second open identification of a case in the same write transaction as its check;
this partial unique index makes the database refuse it too, whatever wrote it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_WHERE = sa.text("status != 'withdrawn'")


def upgrade() -> None:
    op.create_index(
        "ux_identifications_one_open_per_case",
        "identifications",
        ["case_id"],
        unique=True,
        sqlite_where=_WHERE,
        postgresql_where=_WHERE,
    )


def downgrade() -> None:
    op.drop_index("ux_identifications_one_open_per_case", table_name="identifications")
