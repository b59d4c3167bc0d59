"""gallery changes: a log of reference faces added and removed, for incremental indexes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 05:00:00

Each process keeps its own in-memory index of the gallery (nomina.index.Gallery) and brings it up to date by
reading this log from the position it reflects: a reference face added or removed by any process, or by
anyone editing the database directly, is one row here, written by a trigger on ``faces`` in the same
transaction, so no path that changes the gallery can leave an index behind. A row holds a face id and
whether it was added or removed: no biometric data (the vector is read from ``faces`` while it exists).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_LOG = "INSERT INTO gallery_changes (face_id, added) VALUES"

_SQLITE = (
    "CREATE TRIGGER gallery_face_added AFTER INSERT ON faces WHEN NEW.reference_photo_id IS NOT NULL "
    f"BEGIN {_LOG} (NEW.id, 1); END",
    "CREATE TRIGGER gallery_face_removed AFTER DELETE ON faces WHEN OLD.reference_photo_id IS NOT NULL "
    f"BEGIN {_LOG} (OLD.id, 0); END",
    "CREATE TRIGGER gallery_face_changed AFTER UPDATE OF reference_photo_id, case_photo_id, embedding ON faces "
    f"BEGIN {_LOG} (OLD.id, 0); {_LOG} (NEW.id, 1); END",
)

_POSTGRESQL = (
    """CREATE FUNCTION gallery_face_logged() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.reference_photo_id IS NOT NULL THEN
            INSERT INTO gallery_changes (face_id, added) VALUES (OLD.id, FALSE);
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.reference_photo_id IS NOT NULL THEN
            INSERT INTO gallery_changes (face_id, added) VALUES (NEW.id, TRUE);
        END IF;
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER gallery_face_added AFTER INSERT OR DELETE ON faces "
    "FOR EACH ROW EXECUTE FUNCTION gallery_face_logged()",
    "CREATE TRIGGER gallery_face_changed AFTER UPDATE OF reference_photo_id, case_photo_id, embedding ON faces "
    "FOR EACH ROW EXECUTE FUNCTION gallery_face_logged()",
)


def upgrade() -> None:
    op.create_table(
        "gallery_changes",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("face_id", sa.Integer(), nullable=False),
        sa.Column("added", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sqlite_autoincrement=True,
    )
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE if dialect == "sqlite" else _POSTGRESQL if dialect == "postgresql" else ():
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("gallery_face_added", "gallery_face_removed", "gallery_face_changed"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS gallery_face_added ON faces")
        op.execute("DROP TRIGGER IF EXISTS gallery_face_changed ON faces")
        op.execute("DROP FUNCTION IF EXISTS gallery_face_logged()")
    op.drop_table("gallery_changes")
