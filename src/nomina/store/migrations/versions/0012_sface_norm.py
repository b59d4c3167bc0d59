"""faces keep the length of SFace's output before normalisation, a measure of the quality score

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 12:00:00

The quality score's response factor (nomina.quality) reads it. A nullable column, added with ALTER TABLE on
both engines (no table rebuild); faces stored before stay NULL and their score leaves the factor out, and a
NULL column is left out of the record digests (nomina.digests), so no record's digest changes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("faces", sa.Column("sface_norm", sa.Float(), nullable=True))


def downgrade() -> None:
    # Not in batch mode: on SQLite a batch rebuilds the table, which loses the gallery log's triggers on
    # `faces` (0010). SQLite (3.35+) drops an unindexed column in place.
    op.drop_column("faces", "sface_norm")
