"""the web application: feature checklists on conclusions, per-user display settings

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 03:10:00

An examiner's conclusion may carry the checklist of facial features filled on the comparison page (a JSON
object, NULL when none, so that the digests of searches concluded before this migration do not change).
``user_preferences`` holds a user's own display settings, such as whether post-mortem photos are shown
unblurred; they are not records anyone must account for, so they are outside the record digests.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conclusions") as batch:
        batch.add_column(sa.Column("checklist", sa.JSON(), nullable=True))
    op.create_table(
        "user_preferences",
        sa.Column("user", sa.String(), sa.ForeignKey("users.name"), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("user", "name"),
    )


def downgrade() -> None:
    op.drop_table("user_preferences")
    with op.batch_alter_table("conclusions") as batch:
        batch.drop_column("checklist")
