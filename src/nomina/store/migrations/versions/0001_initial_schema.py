"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 17:24:05.882468
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("found_on", sa.Date(), nullable=True),
        sa.Column("found_at", sa.String(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "photos",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("stored_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "references",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("sex", sa.String(), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("last_seen_on", sa.Date(), nullable=True),
        sa.Column("last_seen_at", sa.String(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "workspace_info",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "case_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("photo_sha256", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(), nullable=False),
        sa.Column("photo_date", sa.Date(), nullable=True),
        sa.Column("no_face", sa.Boolean(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("added_by", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["photo_sha256"],
            ["photos.sha256"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "photo_sha256"),
    )
    with op.batch_alter_table("case_photos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_photos_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_photos_photo_sha256"), ["photo_sha256"], unique=False)

    op.create_table(
        "reference_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference_id", sa.String(), nullable=False),
        sa.Column("photo_sha256", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("supplied_by", sa.String(), nullable=False),
        sa.Column("legal_basis", sa.String(), nullable=False),
        sa.Column("consent", sa.String(), nullable=True),
        sa.Column("photo_date", sa.Date(), nullable=True),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("added_by", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["photo_sha256"],
            ["photos.sha256"],
        ),
        sa.ForeignKeyConstraint(["reference_id"], ["references.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference_id", "photo_sha256"),
    )
    with op.batch_alter_table("reference_photos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reference_photos_photo_sha256"), ["photo_sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_reference_photos_reference_id"), ["reference_id"], unique=False)

    op.create_table(
        "searches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("case_face_ids", sa.JSON(), nullable=False),
        sa.Column("model", sa.JSON(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("gallery_references", sa.Integer(), nullable=False),
        sa.Column("gallery_faces", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("os_user", sa.String(), nullable=False),
        sa.Column("nomina_version", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("searches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_searches_case_id"), ["case_id"], unique=False)

    op.create_table(
        "candidates",
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("reference_id", sa.String(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reference_face_id", sa.Integer(), nullable=False),
        sa.Column("photo_sha256", sa.String(length=64), nullable=False),
        sa.Column("case_face_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["search_id"], ["searches.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("search_id", "rank"),
    )
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_candidates_reference_id"), ["reference_id"], unique=False)

    op.create_table(
        "faces",
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
        sa.CheckConstraint("(reference_photo_id IS NULL) != (case_photo_id IS NULL)", name="face_has_one_owner"),
        sa.ForeignKeyConstraint(["case_photo_id"], ["case_photos.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reference_photo_id"], ["reference_photos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("faces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_faces_case_photo_id"), ["case_photo_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_faces_reference_photo_id"), ["reference_photo_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("faces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_faces_reference_photo_id"))
        batch_op.drop_index(batch_op.f("ix_faces_case_photo_id"))

    op.drop_table("faces")
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_candidates_reference_id"))

    op.drop_table("candidates")
    with op.batch_alter_table("searches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_searches_case_id"))

    op.drop_table("searches")
    with op.batch_alter_table("reference_photos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reference_photos_reference_id"))
        batch_op.drop_index(batch_op.f("ix_reference_photos_photo_sha256"))

    op.drop_table("reference_photos")
    with op.batch_alter_table("case_photos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_photos_photo_sha256"))
        batch_op.drop_index(batch_op.f("ix_case_photos_case_id"))

    op.drop_table("case_photos")
    op.drop_table("workspace_info")
    op.drop_table("references")
    op.drop_table("photos")
    op.drop_table("cases")
