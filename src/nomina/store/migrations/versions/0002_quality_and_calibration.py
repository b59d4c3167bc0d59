"""face contrast and noise, quality-gate overrides, calibrations, search warnings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 07:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("faces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contrast", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("noise", sa.Float(), nullable=True))
    with op.batch_alter_table("reference_photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quality_override", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("quality_override_by", sa.String(), nullable=True))
    with op.batch_alter_table("searches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calibration_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("warnings", sa.JSON(), nullable=True))
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.JSON(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("calibrations")
    with op.batch_alter_table("searches", schema=None) as batch_op:
        batch_op.drop_column("warnings")
        batch_op.drop_column("calibration_id")
    with op.batch_alter_table("reference_photos", schema=None) as batch_op:
        batch_op.drop_column("quality_override_by")
        batch_op.drop_column("quality_override")
    with op.batch_alter_table("faces", schema=None) as batch_op:
        batch_op.drop_column("noise")
        batch_op.drop_column("contrast")
