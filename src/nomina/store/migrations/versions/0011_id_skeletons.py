"""id skeletons: references and cases keep their id's skeleton, indexed, for the lookalike-id warnings

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 09:40:00

A new reference or case id is compared with the ids in use by Unicode's skeleton (nomina.records.skeleton), to
warn of a lookalike made of other characters. Until now every id was read for each enrolment and for each batch
of an import: seconds on galleries of millions of references. Each row now keeps its id's skeleton
(nomina.records.id_skeleton) in ``id_skeleton``, indexed, so a check is one indexed query per new id.

This fills the column of the rows present, computing the skeletons in Python (the same function the running
Nomina uses, from the confusable-homoglyphs data), 1,000 rows per query and update, in id order; then builds the
index (after the rows are filled: faster than keeping it up to date row by row) and records in
``workspace_info`` (key ``id_skeletons``) which data made them, so that a later release of that data has them
made again (nomina.references.refresh_skeletons). The same on both engines, in the migration's transaction:
the column is added with ALTER TABLE (SQLite adds a nullable column without rebuilding the table) and the rows
are updated through the migration's connection; on PostgreSQL the tables are then analysed. About 15 s per
million references on SQLite and 40 s on PostgreSQL here. The column is derived from the id and left out of
the record digests (nomina.digests): filling it changes no record the audit trail accounts for.
"""

import sqlalchemy as sa
from alembic import op

from nomina.records import SKELETONS_INFO, id_skeleton, skeleton_data

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TABLES = ("references", "cases")
_BATCH = 1000


def _fill(conn: sa.Connection, name: str) -> None:
    table = sa.table(name, sa.column("id", sa.String()), sa.column("id_skeleton", sa.String()))
    fill = sa.update(table).where(table.c.id == sa.bindparam("row_id")).values(id_skeleton=sa.bindparam("row_skeleton"))
    last = None
    while True:
        query = sa.select(table.c.id).order_by(table.c.id).limit(_BATCH)
        ids = list(conn.scalars(query if last is None else query.where(table.c.id > last)))
        if not ids:
            return
        conn.execute(fill, [{"row_id": i, "row_skeleton": id_skeleton(i)} for i in ids])
        last = ids[-1]


def upgrade() -> None:
    conn = op.get_bind()
    for name in _TABLES:
        op.add_column(name, sa.Column("id_skeleton", sa.String(), nullable=True))
        _fill(conn, name)
        op.create_index(op.f(f"ix_{name}_id_skeleton"), name, ["id_skeleton"], unique=False)
        if conn.dialect.name == "postgresql":
            # Statistics of the new column, so the planner looks skeletons up (and probes for NULLs) with an
            # index scan at once: until VACUUM, the index also holds the rows' old versions, all NULL.
            op.execute(f'ANALYZE "{name}"')
    info = sa.table("workspace_info", sa.column("key", sa.String()), sa.column("value", sa.Text()))
    conn.execute(sa.delete(info).where(info.c.key == SKELETONS_INFO))
    conn.execute(sa.insert(info).values(key=SKELETONS_INFO, value=skeleton_data()))


def downgrade() -> None:
    # Not in batch mode: on SQLite a batch would rebuild the table, and dropping the old `references` or
    # `cases`, with foreign keys on, would delete their photos. SQLite (3.35+) drops an unindexed column in
    # place.
    for name in reversed(_TABLES):
        op.drop_index(op.f(f"ix_{name}_id_skeleton"), table_name=name)
        op.drop_column(name, "id_skeleton")
    info = sa.table("workspace_info", sa.column("key", sa.String()))
    op.get_bind().execute(sa.delete(info).where(info.c.key == SKELETONS_INFO))
