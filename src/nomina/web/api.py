"""The REST API, /api/v1: (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
docs_router = APIRouter()
