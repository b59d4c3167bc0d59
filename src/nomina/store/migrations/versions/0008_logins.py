"""logins: sessions, API tokens, failed-login counts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 00:30:00

The command line (and the web server after it) acts only for a user who proved who they are: with a
password, which opens a session, or with an API token. Both are kept as the SHA-256 of their secret, never
the secret. ``credential_use`` holds when each session was last used (for its idle expiry); it is kept apart
from the session rows because those belong to the user's record digest, and a use is not a change anyone
must account for. ``users`` gains the count of failed logins in a row and the time a lockout ends, both
NULL when there is none, so that the digests of the users written before this migration do not change.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("failed_logins", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("locked_until", sa.DateTime(), nullable=True))
    op.create_table(
        "login_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(), sa.ForeignKey("users.name"), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False, unique=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("idle_minutes", sa.Integer(), nullable=False),
        sa.Column("os_user", sa.String(), nullable=True),
        sa.Column("host", sa.String(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("ended_why", sa.String(), nullable=True),
        sa.CheckConstraint("kind IN ('cli', 'web')", name="login_session_kind"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_login_sessions_user", "login_sessions", ["user"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(), sa.ForeignKey("users.name"), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False, unique=True),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user"])
    op.create_table(
        "credential_use",
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("secret_sha256"),
    )


def downgrade() -> None:
    op.drop_table("credential_use")
    op.drop_index("ix_api_tokens_user", "api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_login_sessions_user", "login_sessions")
    op.drop_table("login_sessions")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("failed_logins")
