"""The fixed names in a workspace folder, importable without the database layer (SQLAlchemy)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DB_NAME", "DB_URL_NAME", "is_workspace"]

#: The workspace's SQLite database file.
DB_NAME = "nomina.db"

#: In a workspace whose database is on a PostgreSQL server: the file naming it (one line, its URL). Private,
#: as it may hold a password (better kept in libpq's ~/.pgpass or PGPASSWORD: docs/deploy.md).
DB_URL_NAME = "nomina.database"


def is_workspace(folder: Path) -> bool:
    """Whether ``folder`` holds a workspace's database or the file naming it (not whether it opens)."""
    return (folder / DB_NAME).exists() or (folder / DB_URL_NAME).exists()
