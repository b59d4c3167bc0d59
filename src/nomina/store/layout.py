"""The fixed names in a workspace folder, importable without the database layer (SQLAlchemy)."""

from __future__ import annotations

__all__ = ["DB_NAME"]

#: The workspace's SQLite database file.
DB_NAME = "nomina.db"
