"""faces keep the length of ArcFace's output before normalisation, the quality score's response for ArcFace models

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 15:00:00

A column of its own beside ``sface_norm`` (schema 0012): the two networks' outputs have different scales, and
the quality score's response factor has bounds for each (nomina.quality). A nullable column, added with ALTER
TABLE on both engines (no table rebuild); faces stored before stay NULL and their score leaves the factor out,
and a NULL column is left out of the record digests (nomina.digests), so no record's digest changes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("faces", sa.Column("arcface_norm", sa.Float(), nullable=True))


def downgrade() -> None:
    # Not in batch mode: on SQLite a batch rebuilds the table, which loses the gallery log's triggers on
    # `faces` (0010). SQLite (3.35+) drops an unindexed column in place.
    op.drop_column("faces", "arcface_norm")
