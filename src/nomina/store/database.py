"""Opening the workspace database: SQLite in WAL mode, schema managed by Alembic; its transactions; its upkeep.

Transactions (:class:`Database`)
    Reads run in a snapshot (``BEGIN``, deferred): a reader sees one consistent state and never waits for a
    writer. Writes are serialised: one writer at a time, in this process by a lock that threads queue on,
    and across processes by ``BEGIN IMMEDIATE``, which takes SQLite's write lock before the transaction's
    first read. So an operation's checks and its writes see the same state: two requests adding the same id,
    or proposing two identifications for one case, cannot both pass their checks; the second sees the first
    and is refused with :class:`~nomina.errors.Conflict`. A constraint the checks did not foresee also
    becomes Conflict, never a raw database error, and a write lock held by another process for longer than
    :data:`BUSY_TIMEOUT_S` becomes :class:`~nomina.errors.Busy`, never "database is locked".

Deleted rows are overwritten with zeros in the database file (``secure_delete``), but in WAL mode a
change is first written to ``nomina.db-wal``, which keeps earlier images of the changed pages until a
checkpoint copies the newest ones into the database file. :func:`checkpoint` does that and truncates
the WAL to zero bytes, so that after an erasure no earlier page image of the erased rows is left in it;
:func:`vacuum` rebuilds the whole file from its live rows (see docs/erasure.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import Busy, Conflict
from ..files import PRIVATE_FILE, restrict
from .layout import DB_NAME

__all__ = [
    "BUSY_TIMEOUT_S",
    "DB_NAME",
    "Checkpoint",
    "Database",
    "checkpoint",
    "connect",
    "head_revision",
    "make_private",
    "upgrade",
    "vacuum",
]

#: Longest wait for another writer (thread or process) before an operation gives up with Busy.
BUSY_TIMEOUT_S = 30


def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA secure_delete=ON")  # deleted biometric data is overwritten, not left in free pages
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cur.close()


def connect(db_path: Path) -> Engine:
    """An engine for the database file ``db_path``, which is made its owner's alone (:func:`make_private`)."""
    make_private(db_path)
    # One connection per concurrent user of the workspace; SQLite connections are cheap, and a bounded
    # pool would make a busy server's threads wait on the pool instead of on the writer lock.
    engine = create_engine(f"sqlite:///{db_path}", pool_size=8, max_overflow=-1)
    event.listen(engine, "connect", _on_connect)
    return engine


def make_private(db_path: Path) -> None:
    """Make the database readable and writable by its owner only, whatever the umask.

    A missing file is created empty with mode 0600 before SQLite opens it (SQLite would create it with the
    umask's permissions); SQLite gives the ``-wal`` and ``-shm`` files it creates the permissions of the
    database file. An existing file and its ``-wal`` and ``-shm`` lose their group and other permissions
    when they belong to the user running Nomina (:func:`nomina.files.restrict`).
    """
    try:
        os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        for name in (db_path.name, db_path.name + "-wal", db_path.name + "-shm"):
            restrict(db_path.with_name(name))
    except OSError:
        pass  # no such folder, or not writable: SQLite reports it on first use


def _locked(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "database table is locked" in text or "busy" in text


_BUSY = "workspace busy: another change was being written for longer than {s} s; nothing was changed, try again"


class Database:
    """The workspace database's sessions: snapshot reads and serialised write transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._writer = threading.Lock()

    @contextmanager
    def _session(self, begin: str) -> Iterator[Session]:
        """A session whose transaction starts with ``begin``; rolled back and closed when the block ends
        (a write commits inside it). A lock held too long by another process becomes Busy."""
        s = self._sessions()
        try:
            s.connection().exec_driver_sql(begin)
            yield s
        except OperationalError as exc:
            if _locked(exc):
                raise Busy(_BUSY.format(s=BUSY_TIMEOUT_S)) from None
            raise
        finally:
            s.rollback()
            s.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session reading one snapshot of the database; it writes nothing."""
        with self._session("BEGIN") as s:
            yield s

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold this process's writer lock without a transaction (file steps that must not interleave
        with writes, such as a WAL checkpoint after an erasure)."""
        if not self._writer.acquire(timeout=BUSY_TIMEOUT_S):
            raise Busy(_BUSY.format(s=BUSY_TIMEOUT_S))
        try:
            yield
        finally:
            self._writer.release()

    @contextmanager
    def write(self, commit: bool = True) -> Iterator[Session]:
        """A write transaction, committed when the block ends (rolled back instead when not ``commit``: a
        dry run) and rolled back if it raises.

        The writer lock is taken before the transaction's first read, so the block's checks see the state
        its writes change. IntegrityError (a duplicate, a lost race) becomes Conflict; a lock held too
        long by another process becomes Busy.
        """
        with self.exclusive(), self._session("BEGIN IMMEDIATE") as s:
            try:
                yield s
                if commit:
                    s.commit()
            except IntegrityError as exc:
                raise Conflict(
                    f"not saved: it conflicts with a record saved at the same time ({_constraint(exc)})"
                ) from None


def _constraint(exc: IntegrityError) -> str:
    """The constraint an IntegrityError names, without the statement or its values."""
    return str(exc.orig).splitlines()[0][:200]


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


def known_revision(rev: str) -> bool:
    """Whether ``rev`` is a schema version this Nomina knows (a newer Nomina's is not)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    script = ScriptDirectory(str(Path(__file__).parent / "migrations"))
    try:
        return script.get_revision(rev) is not None
    except CommandError:
        return False


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
    return None if rev is None else str(rev)


@dataclass(frozen=True)
class Checkpoint:
    """How far a checkpoint got: ``copied``, every committed change is in the database file (whose pages
    then hold no erased row); ``truncated``, the WAL is empty too (it held earlier page images)."""

    copied: bool
    truncated: bool


def checkpoint(engine: Engine) -> Checkpoint:
    """Copy every committed change from the WAL into the database file and truncate the WAL to zero bytes.

    Waits (up to the busy timeout) for other connections' reads to end. A connection still reading an
    older state of the database keeps the changes made since from being copied (the database file keeps
    the older pages); one reading the newest state lets them be copied but keeps the WAL from being
    truncated. The WAL then keeps its frames until a later checkpoint completes.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        busy, log, copied = (int(v) for v in conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one())
    # log and copied count WAL frames; -1 when the checkpoint could not run at all
    return Checkpoint(copied=busy == 0 or 0 <= log <= copied, truncated=busy == 0)


def vacuum(engine: Engine) -> Checkpoint:
    """Rebuild the database file from its live rows (no free pages, no leftover bytes in pages), then
    :func:`checkpoint`."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM")
    return checkpoint(engine)
