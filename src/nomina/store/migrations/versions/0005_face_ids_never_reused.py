"""face ids are never reused

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:00:00

SQLite gives a new row the largest id plus one, so after the face with the largest id is erased, the next
face added would get its id. Searches keep the id of the reference face behind each candidate after that
reference is erased; a reused id would make such a candidate point at someone else's face. AUTOINCREMENT
makes SQLite never hand out an id again. The table is rebuilt: nothing refers to it by foreign key, so
dropping the old one cascades nowhere, and its indexes and constraints are declared again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _faces(autoincrement: bool) -> sa.Table:
    return sa.Table(
        "faces",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference_photo_id", sa.Integer(), nullable=True),
        sa.Column("case_photo_id", sa.Integer(), nullable=True),
        sa.Column("number_in_photo", sa.Integer(), nullable=True),
        sa.Column("box", sa.JSON(), nullable=False),
        sa.Column("landmarks", sa.JSON(), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("detector_score", sa.Float(), nullable=True),
        sa.Column("inter_eye_px", sa.Float(), nullable=False),
        sa.Column("sharpness", sa.Float(), nullable=False),
        sa.Column("brightness", sa.Float(), nullable=False),
        sa.Column("roll", sa.Float(), nullable=False),
        sa.Column("yaw", sa.Float(), nullable=True),
        sa.Column("pitch", sa.Float(), nullable=True),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("contrast", sa.Float(), nullable=True),
        sa.Column("noise", sa.Float(), nullable=True),
        sa.CheckConstraint("(reference_photo_id IS NULL) != (case_photo_id IS NULL)", name="face_has_one_owner"),
        sa.ForeignKeyConstraint(["case_photo_id"], ["case_photos.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reference_photo_id"], ["reference_photos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.Index("ix_faces_case_photo_id", "case_photo_id"),
        sa.Index("ix_faces_reference_photo_id", "reference_photo_id"),
        sqlite_autoincrement=autoincrement,
    )


def _rebuild(autoincrement: bool) -> None:
    with op.batch_alter_table(
        "faces",
        recreate="always",
        copy_from=_faces(autoincrement),
        table_kwargs={"sqlite_autoincrement": autoincrement},
    ):
        pass
    if autoincrement:
        # Start above every face id still named anywhere, those of faces erased before this upgrade included.
        highest = (
            "SELECT MAX(m) FROM (SELECT MAX(id) AS m FROM faces UNION ALL "
            "SELECT MAX(reference_face_id) FROM candidates UNION ALL SELECT MAX(case_face_id) FROM candidates)"
        )
        op.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'faces', 0 WHERE NOT EXISTS "
            "(SELECT 1 FROM sqlite_sequence WHERE name = 'faces')"
        )
        op.execute(f"UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE(({highest}), 0)) WHERE name = 'faces'")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return  # a PostgreSQL sequence never gives an id twice: nothing to change
    _rebuild(autoincrement=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    _rebuild(autoincrement=False)
