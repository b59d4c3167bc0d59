"""Opening the workspace database: SQLite in WAL mode, schema managed by Alembic; and its upkeep.

Deleted rows are overwritten with zeros in the database file (``secure_delete``), but in WAL mode a
change is first written to ``nomina.db-wal``, which keeps earlier images of the changed pages until a
checkpoint copies the newest ones into the database file. :func:`checkpoint` does that and truncates
the WAL to zero bytes, so that after an erasure no earlier page image of the erased rows is left in it;
:func:`vacuum` rebuilds the whole file from its live rows (see docs/erasure.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

__all__ = ["DB_NAME", "checkpoint", "connect", "head_revision", "upgrade", "vacuum"]

DB_NAME = "nomina.db"


def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA secure_delete=ON")  # deleted biometric data is overwritten, not left in free pages
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def connect(db_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{db_path}")
    event.listen(engine, "connect", _on_connect)
    return engine


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema (creates it in an empty file)."""
    from alembic import command

    command.upgrade(_alembic_config(engine), "head")


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(Path(__file__).parent / "migrations"))
    return str(script.get_current_head())


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
    return None if rev is None else str(rev)


def checkpoint(engine: Engine) -> bool:
    """Copy every committed change from the WAL into the database file and truncate the WAL to zero bytes.

    Waits (up to the busy timeout) for other connections' reads to end. Returns False when one still
    holds an older snapshot: the WAL then keeps its frames until a later checkpoint completes.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0]
    return int(busy) == 0


def vacuum(engine: Engine) -> bool:
    """Rebuild the database file from its live rows (no free pages, no leftover bytes in pages), then
    :func:`checkpoint`; returns whether the checkpoint completed."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM")
    return checkpoint(engine)
