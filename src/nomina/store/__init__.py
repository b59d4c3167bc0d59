"""The workspace's storage: SQLite database (schema + migrations) and the photo store."""

from __future__ import annotations

from .database import DB_NAME, Database, connect, upgrade
from .photos import PhotoStore

__all__ = ["DB_NAME", "Database", "PhotoStore", "connect", "upgrade"]
