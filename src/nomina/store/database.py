"""Opening the workspace database (SQLite in WAL mode, or PostgreSQL), schema managed by Alembic; its
transactions; its upkeep.

Engines
    SQLite (the file ``nomina.db`` in the workspace folder) is the embedded default for one machine.
    PostgreSQL (the workspace folder's ``nomina.database`` names it) serves a team or several servers. The
    same migrations create both; the rules below hold on both.

Transactions (:class:`Database`)
    Reads run in a snapshot (``BEGIN``, deferred): a reader sees one consistent state and never waits for a
    writer. Writes are serialised: one writer at a time, in this process by a lock that threads queue on,
    and across processes by ``BEGIN IMMEDIATE``, which takes SQLite's write lock before the transaction's
    first read. So an operation's checks and its writes see the same state: two requests adding the same id,
    or proposing two identifications for one case, cannot both pass their checks; the second sees the first
    and is refused with :class:`~nomina.errors.Conflict`. On PostgreSQL, reads run at REPEATABLE READ, READ
    ONLY (one snapshot), and every write transaction first takes one transaction-level advisory lock
    (:data:`WRITER_LOCK`) that all Nomina processes on the database share, then reads at READ COMMITTED: it
    sees every write committed before it got the lock, so the same check-then-write rule holds across
    processes and machines, and the audit chain's appends stay strictly serial. A constraint the checks did
    not foresee also becomes Conflict, never a raw database error, and a write lock held by another process
    for longer than :data:`BUSY_TIMEOUT_S` becomes :class:`~nomina.errors.Busy`, never "database is locked".

Deleted rows are overwritten with zeros in the database file (``secure_delete``), but in WAL mode a
change is first written to ``nomina.db-wal``, which keeps earlier images of the changed pages until a
checkpoint copies the newest ones into the database file. :func:`checkpoint` does that and truncates
the WAL to zero bytes, so that after an erasure no earlier page image of the erased rows is left in it;
:func:`vacuum` rebuilds the whole file from its live rows (see docs/erasure.md). PostgreSQL never overwrites
a deleted row: its bytes stay in the table's pages, and a plain ``VACUUM`` only marks their space free
(it keeps the bytes of a page's last rows until new rows happen to be written there). So on PostgreSQL
both :func:`checkpoint` and :func:`vacuum` rewrite the tables an erasure deletes from (``VACUUM FULL``:
each is copied from its live rows into a new file, and the old file is emptied); what the server's WAL,
replicas and backups keep is the deployment's to bound (docs/deploy.md).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Connection, Engine, Integer, create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import Busy, Conflict, WorkspaceError
from ..files import PRIVATE_FILE, restrict
from .layout import DB_NAME

T = TypeVar("T")

__all__ = [
    "BUSY_TIMEOUT_S",
    "WRITER_LOCK",
    "DB_NAME",
    "Checkpoint",
    "Database",
    "checkpoint",
    "connect",
    "head_revision",
    "in_lists",
    "make_private",
    "rewrite",
    "size",
    "upgrade",
    "vacuum",
]

#: Values bound in one ``IN (...)`` list: far below SQLite's limit on a statement's parameters (999 before
#: 3.32) and PostgreSQL's (65,535), for a query over any number of ids.
IN_LIST = 500

#: Longest wait for another writer (thread or process) before an operation gives up with Busy.
BUSY_TIMEOUT_S = 30

#: The PostgreSQL advisory lock key every Nomina write transaction takes first ("nomina" in ASCII).
WRITER_LOCK = 0x6E6F6D696E61

#: The tables an erasure deletes rows from (a record, its photos and faces, a case's searches and what they
#: led to), rewritten after an erasure on PostgreSQL.
_ERASED_TABLES = (
    "faces",
    "reference_photos",
    "case_photos",
    "photos",
    "references",
    "cases",
    "searches",
    "candidates",
    "conclusions",
    "identifications",
    "verifications",
)


def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA secure_delete=ON")  # deleted biometric data is overwritten, not left in free pages
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cur.close()


def connect(where: Path | str) -> Engine:
    """An engine for the SQLite database file ``where`` (a path, made its owner's alone by
    :func:`make_private`) or for the PostgreSQL database a ``postgresql://`` URL names."""
    if isinstance(where, str) and is_server_url(where):
        # psycopg 3 (SQLAlchemy would pick psycopg2 for a bare postgresql:// URL). Connections are
        # checked before use, so a server restarted under a long-running `nomina serve` is reconnected.
        server = create_engine(driver_url(where), pool_size=8, max_overflow=-1, pool_pre_ping=True)
        _integers_of_64_bits(server)
        return server
    db_path = Path(where)
    make_private(db_path)
    # One connection per concurrent user of the workspace; SQLite connections are cheap, and a bounded
    # pool would make a busy server's threads wait on the pool instead of on the writer lock.
    engine = create_engine(f"sqlite:///{db_path}", pool_size=8, max_overflow=-1)
    event.listen(engine, "connect", _on_connect)
    return engine


def _integers_of_64_bits(engine: Engine) -> None:
    """Make the schema's integers 64-bit on this PostgreSQL engine (BIGINT, and BIGSERIAL for generated ids),
    as SQLite's are, so that a record number, rank, count or limit the library accepts is stored and looked
    up the same way on both engines: PostgreSQL's INTEGER stops at 2**31 - 1, and a larger number in a query
    is an error there, not "no such record".

    The tables get BIGINT columns (the type compiler renders the schema's Integer as BIGINT, for the
    migrations, which create the tables through this engine, and for Alembic's comparison of the tables with
    the schema), and an integer parameter is sent as psycopg types it by its value (smallint to bigint)
    rather than cast to INTEGER. Only this engine's dialect changes, so other SQLAlchemy users in the process
    are left as they are."""
    dialect = engine.dialect

    class TypeCompiler(type(dialect.type_compiler_instance)):  # type: ignore[misc]
        def visit_integer(self, type_: Any, **kw: Any) -> str:
            return "BIGINT"

    class Int64(dialect.colspecs[BigInteger]):  # type: ignore[misc,name-defined]
        render_bind_cast = False

    dialect.type_compiler_instance = dialect.type_compiler = TypeCompiler(dialect)
    dialect.colspecs = {**dialect.colspecs, Integer: Int64}


def is_server_url(value: str) -> bool:
    """Whether ``value`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    return scheme in ("postgresql", "postgres", "postgresql+psycopg")


def driver_url(url: str) -> str:
    """``url`` with the driver SQLAlchemy is to use for it (psycopg 3)."""
    rest = url.split("://", 1)[1]
    return f"postgresql+psycopg://{rest}"


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


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
    if getattr(exc.orig, "sqlstate", None) == "55P03":  # PostgreSQL: lock_timeout reached
        return True
    return "database is locked" in text or "database table is locked" in text or "busy" in text


_BUSY = "workspace busy: another change was being written for longer than {s} s; nothing was changed, try again"


class Database:
    """The workspace database's sessions: snapshot reads and serialised write transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.server = is_postgresql(engine)
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._writer = threading.Lock()
        self.closed = False

    def close(self) -> None:
        """Close the connections; any later session is refused (the engine would quietly open new ones)."""
        self.closed = True
        self.engine.dispose()

    @contextmanager
    def _session(self, write: bool) -> Iterator[Session]:
        """A session in a read snapshot or a serialised write transaction; rolled back and closed when the
        block ends (a write commits inside it). A lock held too long by another process becomes Busy."""
        if self.closed:
            raise WorkspaceError("workspace closed: open it again to go on")
        s = self._sessions()
        try:
            if not self.server:
                s.connection().exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
            elif write:
                conn = s.connection(execution_options={"isolation_level": "READ COMMITTED"})
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{BUSY_TIMEOUT_S}s'")
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITER_LOCK})")
            else:
                conn = s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
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
        with self._session(write=False) as s:
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
        with self.exclusive(), self._session(write=True) as s:
            try:
                yield s
                if commit:
                    s.commit()
            except IntegrityError as exc:
                raise Conflict(
                    f"not saved: it conflicts with a record saved at the same time ({_constraint(exc)})"
                ) from None


def _constraint(exc: IntegrityError) -> str:
    """The constraint an IntegrityError names, without the statement or its values, in SQLite's words on both
    engines (``UNIQUE constraint failed: references.id``): PostgreSQL's name the constraint's index, and
    its details quote the values."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    kind = _CONSTRAINT_KINDS.get(str(getattr(orig, "sqlstate", "")))
    if kind == "FOREIGN KEY":
        return "FOREIGN KEY constraint failed"
    if diag is not None and kind is not None and diag.table_name:
        key = re.match(r"Key \((.+?)\)=", diag.message_detail or "")
        columns = [diag.column_name] if diag.column_name else key.group(1).split(", ") if key else []
        named = ", ".join(f"{diag.table_name}.{c}" for c in columns) or f"{diag.table_name} ({diag.constraint_name})"
        return f"{kind} constraint failed: {named}"[:200]
    return str(orig).splitlines()[0][:200]


#: PostgreSQL's integrity errors by SQLSTATE, as SQLite names them.
_CONSTRAINT_KINDS = {"23505": "UNIQUE", "23503": "FOREIGN KEY", "23502": "NOT NULL", "23514": "CHECK"}


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

    On PostgreSQL: :func:`rewrite` of the tables an erasure deletes from, the only way their files lose the
    erased rows' bytes; the server's own WAL is its checkpointer's (docs/deploy.md).
    """
    if is_postgresql(engine):
        return rewrite(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        busy, log, copied = (int(v) for v in conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one())
    # log and copied count WAL frames; -1 when the checkpoint could not run at all
    return Checkpoint(copied=busy == 0 or 0 <= log <= copied, truncated=busy == 0)


def vacuum(engine: Engine) -> Checkpoint:
    """Rebuild the database file from its live rows (no free pages, no leftover bytes in pages), then
    :func:`checkpoint`. On PostgreSQL, :func:`rewrite`, then a plain ``VACUUM`` of the whole database (its
    other tables' dead rows freed for reuse, its statistics brought up to date)."""
    if is_postgresql(engine):
        done = rewrite(engine)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")
        return done
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM")
    return checkpoint(engine)


def size(engine: Engine) -> int:
    """The bytes the database takes: on SQLite its file and WAL; on PostgreSQL, the server's count for the
    database (``pg_database_size``: its tables, indexes and their free space)."""
    if is_postgresql(engine):
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())
    path = Path(str(engine.url.database))
    return sum(f.stat().st_size for f in (path, path.with_name(path.name + "-wal")) if f.is_file())


def rewrite(engine: Engine) -> Checkpoint:
    """PostgreSQL: rewrite each table an erasure deletes from (``VACUUM FULL``) into a new file holding only
    its live rows; the old file is emptied at once and removed at the server's next checkpoint.

    A rewrite keeps a deleted row that some snapshot may still see: one taken by a transaction that began
    before the erasure committed, or one that began while an older transaction was still running (a
    snapshot keeps every row deleted by a transaction newer than the oldest one running when it was taken),
    in this database, by a standby's feedback (a replication slot) or by a prepared transaction. So the
    rewrite first waits, up to the busy timeout, until every such snapshot has ended; then each table is
    locked for the time its rewrite takes, which grows with its size (its readers wait), again waiting up to
    the busy timeout for other connections' transactions that use the table. When either wait runs out, the
    tables not rewritten keep the erased rows' bytes, and the result says so (neither ``copied`` nor
    ``truncated``: the journalled erasure stays to be settled by the next opening or maintenance)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        horizon = str(conn.exec_driver_sql("SELECT xid(pg_snapshot_xmax(pg_current_snapshot()))::text").scalar())
        # Once none is left, none can appear: a new snapshot starts at the oldest transaction still running.
        if not _snapshots_end(conn, horizon, BUSY_TIMEOUT_S):
            return Checkpoint(copied=False, truncated=False)
        conn.exec_driver_sql(f"SET lock_timeout = '{BUSY_TIMEOUT_S}s'")
        try:
            for name in _ERASED_TABLES:
                conn.exec_driver_sql(f'VACUUM FULL "{name}"')
        except OperationalError as exc:
            if not _locked(exc):
                raise
            return Checkpoint(copied=False, truncated=False)
        finally:
            conn.exec_driver_sql("RESET lock_timeout")
    return Checkpoint(copied=True, truncated=True)


#: Snapshots, standbys' feedback and prepared transactions of this database that may still see rows deleted
#: by a transaction older than the xid given (``age`` counts back from the next xid: older is larger).
_OLDER_SNAPSHOTS = """
SELECT (SELECT count(*) FROM pg_stat_activity
         WHERE pid <> pg_backend_pid() AND (datname = current_database() OR datname IS NULL)
           AND (age(backend_xmin) > age(%(h)s::xid) OR age(backend_xid) > age(%(h)s::xid)))
     + (SELECT count(*) FROM pg_replication_slots
         WHERE (database = current_database() OR database IS NULL) AND age(xmin) > age(%(h)s::xid))
     + (SELECT count(*) FROM pg_prepared_xacts
         WHERE database = current_database() AND age(transaction) > age(%(h)s::xid))
"""


def _snapshots_end(conn: Connection, horizon: str, wait_s: float) -> bool:
    """Whether every snapshot that may see rows deleted before xid ``horizon`` has ended, waiting up to
    ``wait_s`` seconds (Nomina's own reads take milliseconds; a long one is waited for, then reported)."""
    deadline = time.monotonic() + wait_s
    delay = 0.01
    while conn.exec_driver_sql(_OLDER_SNAPSHOTS, {"h": horizon}).scalar():
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(0.2, delay * 2)
    return True


def in_lists(values: Sequence[T]) -> Iterator[Sequence[T]]:
    """``values`` in slices of at most :data:`IN_LIST`, one ``IN (...)`` list each."""
    for i in range(0, len(values), IN_LIST):
        yield values[i : i + IN_LIST]
