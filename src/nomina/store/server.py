"""PostgreSQL databases for workspaces: making one, checking one is free, dropping one, naming one safely.

A workspace on PostgreSQL keeps its folder (photo store, index files, and the file naming its database,
:data:`~nomina.store.layout.DB_URL_NAME`); everything else is in the database. ``nomina init --database URL``
uses the database the URL names (created when absent, and refused unless empty) or, when the URL names only
a server, creates a new database for the workspace there. Nomina creates databases with UTF-8 encoding and
the C collation, so that text sorts by code point on every server, as on SQLite; a database it is given must
sort the same way (C, POSIX or glibc's C.UTF-8), or listings of ids and names would come in another order.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from ..errors import Conflict, WorkspaceError
from .database import driver_url, is_server_url

__all__ = [
    "Prepared",
    "create_database",
    "drop_database",
    "is_server_url",
    "prepare",
    "shown",
    "unreachable",
    "with_database",
]


def shown(url: str) -> str:
    """``url`` as it may be printed or logged: without its password."""
    try:
        if not url.startswith(("postgresql://", "postgres://")):  # shown as given, another scheme included
            return make_url(url).render_as_string(hide_password=True)
        return make_url(driver_url(url)).render_as_string(hide_password=True).replace("+psycopg", "", 1)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown by its scheme only
        return url.split("://", 1)[0] + "://..."


def unreachable(url: str, exc: BaseException) -> WorkspaceError:
    """The one-line error for a server that refused or could not be reached."""
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()
    return WorkspaceError(f"{shown(url)}: cannot use the database: {reason[0] if reason else type(exc).__name__}")


class Prepared:
    """A database made ready for a new workspace: its URL, and whether Nomina created it (to drop it again
    if creating the workspace fails)."""

    def __init__(self, url: str, created: bool) -> None:
        self.url = url
        self.created = created


def _parse(url: str) -> URL:
    if not is_server_url(url):
        raise WorkspaceError(f"database: {shown(url)} is not a postgresql:// URL")
    try:
        return make_url(driver_url(url))
    except Exception:  # noqa: BLE001 - SQLAlchemy raises ArgumentError or ValueError
        raise WorkspaceError(f"database: {shown(url)} is not a valid URL") from None


def _new_name(folder: Path) -> str:
    stem = re.sub(r"[^a-z0-9]+", "_", folder.resolve().name.lower()).strip("_")[:30] or "workspace"
    return f"nomina_{stem}_{secrets.token_hex(4)}"


def prepare(url: str, folder: Path) -> Prepared:
    """The database for a new workspace in ``folder``: the one ``url`` names, created when absent and refused
    (Conflict) when it holds any table; or, when ``url`` names no database, a new one on that server."""
    parsed = _parse(url)
    if not parsed.database:
        name = _new_name(folder)
        create_database(url, name)
        return Prepared(with_database(url, name), True)
    created = False
    if not _exists(url, parsed.database):
        create_database(url, parsed.database)
        created = True
    engine = create_engine(parsed)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()")
            ).scalar_one()
            order = conn.execute(
                text("SELECT x FROM unnest(CAST(:probe AS text[])) AS x ORDER BY x"), {"probe": list(_PROBE)}
            ).scalars()
            by_code_point = list(order) == sorted(_PROBE)
    except SQLAlchemyError as exc:
        raise unreachable(url, exc) from None
    finally:
        engine.dispose()
    if tables:
        raise Conflict(
            f"{shown(url)}: the database is not empty ({tables} tables); give an empty or new database",
            record=shown(url),
        )
    if not by_code_point:  # never one Nomina created (create_database)
        raise WorkspaceError(
            f"{shown(url)}: the database sorts text by a language's rules, not by code point as Nomina does on "
            "every engine; create it with LC_COLLATE 'C' (from template0), or give the server's URL without a "
            "database name and Nomina creates one"
        )
    return Prepared(url, created)


#: Texts whose order tells a collation that sorts by code point (C, POSIX, C.UTF-8; SQLite's) from the
#: others: case, accents, punctuation, spaces and digits, as in ids and names.
_PROBE = ("B", "a", "Z", "_", "é", "e", "f", "MP-10", "MP-9", "MP 1", "mp-1", "ä", "ü", "10", "9")


def with_database(url: str, name: str) -> str:
    """``url`` naming database ``name`` on the same server, as the same role."""
    return _parse(url).set(database=name).render_as_string(hide_password=False).replace("+psycopg", "", 1)


def _maintenance(url: str) -> URL:
    return _parse(url).set(database="postgres")


def _exists(url: str, name: str) -> bool:
    engine = create_engine(_maintenance(url))
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
    except SQLAlchemyError as exc:
        raise unreachable(url, exc) from None
    finally:
        engine.dispose()
    return found is not None


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_database(url: str, name: str, template: str | None = None) -> None:
    """Create database ``name`` on ``url``'s server (UTF-8, C collation), or as a copy of ``template``."""
    engine = create_engine(_maintenance(url), isolation_level="AUTOCOMMIT")
    if template is None:
        how = "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    else:
        how = f"TEMPLATE {_quoted(template)}"
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {_quoted(name)} {how}")
    except SQLAlchemyError as exc:
        raise unreachable(url, exc) from None
    finally:
        engine.dispose()


def drop_database(url: str) -> None:
    """Drop the database ``url`` names, ending its other connections first."""
    name = _parse(url).database
    if not name:
        return
    engine = create_engine(_maintenance(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")
    finally:
        engine.dispose()
