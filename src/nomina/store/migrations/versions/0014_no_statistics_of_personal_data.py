"""PostgreSQL keeps no statistics of the values of personal data, so that an erasure leaves none behind

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 20:00:00

PostgreSQL's ANALYZE (run by autovacuum once a table has some 50 rows) copies sample values of each column
into its statistics catalogue, ``pg_statistic``: whole embeddings (under 1 kB, so sampled), names, notes,
file names. An erasure deleted the rows and rewrote the tables, but the copies stayed there, readable through
``pg_stats`` by anyone connected. Statistics of these values never serve a query (nothing is looked up by
an embedding or a name), so every column of the tables an erasure empties, other than the keys joins use,
gets a statistics target of 0: ANALYZE no longer samples it. Changing a column's type to its own type drops
the statistics already kept (PostgreSQL does so on any type change; the table is not rewritten). The
gallery log's trigger names ``faces.embedding``, which PostgreSQL will not let a type change touch, so it is
made again around the change. SQLite keeps no sample values of columns; nothing changes there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: The tables whose rows an erasure deletes (nomina.erasure).
ERASED = (
    "photos",
    "references",
    "reference_photos",
    "cases",
    "case_photos",
    "faces",
    "searches",
    "candidates",
    "conclusions",
    "identifications",
    "verifications",
)

_TRIGGER = (
    "CREATE TRIGGER gallery_face_changed AFTER UPDATE OF reference_photo_id, case_photo_id, embedding ON faces "
    "FOR EACH ROW EXECUTE FUNCTION gallery_face_logged()"
)


def _valued_columns(bind: sa.Connection, table: str) -> list[tuple[str, str]]:
    """(name, SQL type) of each column of ``table`` that is neither in its primary key nor a foreign key."""
    inspector = sa.inspect(bind)
    keys = set(inspector.get_pk_constraint(table)["constrained_columns"])
    keys |= {c for fk in inspector.get_foreign_keys(table) for c in fk["constrained_columns"]}
    rows = bind.execute(
        sa.text(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = CAST(:table AS regclass) AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ),
        {"table": f'"{table}"'},
    )
    return [(name, kind) for name, kind in rows if name not in keys]


def _set(target: int, drop_kept: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if drop_kept:
        op.execute("DROP TRIGGER IF EXISTS gallery_face_changed ON faces")
    for table in ERASED:
        changes = []
        for name, kind in _valued_columns(bind, table):
            changes.append(f'ALTER COLUMN "{name}" SET STATISTICS {target}')
            if drop_kept:
                changes.append(f'ALTER COLUMN "{name}" TYPE {kind}')
        if changes:
            op.execute(f'ALTER TABLE "{table}" ' + ", ".join(changes))
    if drop_kept:
        op.execute(_TRIGGER)


def upgrade() -> None:
    _set(0, drop_kept=True)


def downgrade() -> None:
    _set(-1, drop_kept=False)  # PostgreSQL's default target again; statistics come back with the next ANALYZE
