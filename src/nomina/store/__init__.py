"""The workspace's storage: its database (SQLite or PostgreSQL; schema + migrations) and the photo store."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .layout import DB_NAME, DB_URL_NAME, is_workspace

if TYPE_CHECKING:
    from .database import Database, connect, upgrade
    from .photos import PhotoStore

__all__ = ["DB_NAME", "DB_URL_NAME", "Database", "PhotoStore", "connect", "is_workspace", "upgrade"]

# Loaded on first use, so that DB_NAME comes without SQLAlchemy (PEP 562).
_LAZY = {"Database": "database", "connect": "database", "upgrade": "database", "PhotoStore": "photos"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
