"""Nomina's web application and REST API (``nomina serve``): see :mod:`nomina.web.app`."""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
