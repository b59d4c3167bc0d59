"""users and roles, hash-chained audit trail

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 07:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The audit trail is append-only. These triggers stop any UPDATE or DELETE made through SQL, by Nomina's
# own code or by a careless tool; someone with the file can drop them, which the hash chain then shows.
_APPEND_ONLY = {
    "audit_events_no_update": "UPDATE",
    "audit_events_no_delete": "DELETE",
}
#: On PostgreSQL, where TRUNCATE empties a table without firing its row triggers.
_NO_TRUNCATE = "audit_events_no_truncate"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.Column("disabled_by", sa.String(), nullable=True),
        sa.Column("password_hash", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=True),
        sa.Column("reference_id", sa.String(), nullable=True),
        sa.Column("search_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("prev_hash"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_reference_id"), ["reference_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_search_id"), ["search_id"], unique=False)

    if op.get_bind().dialect.name == "sqlite":
        for name, statement in _APPEND_ONLY.items():
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {statement} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
            )
    elif op.get_bind().dialect.name == "postgresql":
        # The same refusal as SQLite's RAISE(ABORT): an integrity error (SQLSTATE 23000), which Nomina's
        # writes turn into Conflict on both engines. TRUNCATE, which row triggers do not see, is refused too.
        op.execute(
            "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_events is append-only' "
            "USING ERRCODE = 'integrity_constraint_violation'; END $$"
        )
        for name, statement in _APPEND_ONLY.items():
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {statement} ON audit_events "
                "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
            )
        op.execute(
            f"CREATE TRIGGER {_NO_TRUNCATE} BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif op.get_bind().dialect.name == "postgresql":
        for name in (*_APPEND_ONLY, _NO_TRUNCATE):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_search_id"))
        batch_op.drop_index(batch_op.f("ix_audit_events_reference_id"))
        batch_op.drop_index(batch_op.f("ix_audit_events_case_id"))

    op.drop_table("audit_events")
    op.drop_table("users")
