"""examiner workflow: conclusions, identifications and their verification, retention dates, search user

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("references", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retain_until", sa.Date(), nullable=True))
    with op.batch_alter_table("searches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user", sa.String(), nullable=True))
    op.create_table(
        "conclusions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("reference_id", sa.String(), nullable=False),
        sa.Column("examiner", sa.String(), nullable=False),
        sa.Column("conclusion", sa.String(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["search_id"], ["searches.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("conclusions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conclusions_search_id"), ["search_id"], unique=False)
    op.create_table(
        "identifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("reference_id", sa.String(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=True),
        sa.Column("proposed_by", sa.String(), nullable=False),
        sa.Column("proposed_at", sa.DateTime(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("closed_by", sa.String(), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("identifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identifications_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_identifications_reference_id"), ["reference_id"], unique=False)
    op.create_table(
        "verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identification_id", sa.Integer(), nullable=False),
        sa.Column("verifier", sa.String(), nullable=False),
        sa.Column("conclusion", sa.String(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["identification_id"], ["identifications.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("identification_id"),
    )


def downgrade() -> None:
    op.drop_table("verifications")
    with op.batch_alter_table("identifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identifications_reference_id"))
        batch_op.drop_index(batch_op.f("ix_identifications_case_id"))
    op.drop_table("identifications")
    with op.batch_alter_table("conclusions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conclusions_search_id"))
    op.drop_table("conclusions")
    with op.batch_alter_table("searches", schema=None) as batch_op:
        batch_op.drop_column("user")
    with op.batch_alter_table("references", schema=None) as batch_op:
        batch_op.drop_column("retain_until")
