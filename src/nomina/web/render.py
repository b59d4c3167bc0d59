"""Server-rendered pages: the templates, paging, and errors shown next to the field they are about."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from .._version import __version__
from ..errors import NominaError
from .access import Viewer

__all__ = ["PAGE_SIZE", "Paged", "field_errors", "local_path", "paged", "render", "segment", "templates"]

T = TypeVar("T")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

_env = Environment(
    loader=PackageLoader("nomina.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates = Jinja2Templates(env=_env)


@dataclass(frozen=True)
class Paged:
    """One page of a list: its items, where it is, and the links to the others."""

    items: list[Any]
    page: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        """1-based position of the first item shown (0 when there is none)."""
        return 0 if not self.items else (self.page - 1) * self.size + 1

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0

    def link(self, request: Request, page: int) -> str:
        """The current URL with ``page`` changed (other query parameters, such as filters, kept)."""
        query = {k: v for k, v in request.query_params.items() if k != "page"}
        query["page"] = str(page)
        return f"{request.url.path}?{urlencode(query)}"


def paged(items: Sequence[T], page: int = 1, size: int = PAGE_SIZE) -> Paged:
    """Page ``page`` (1-based; clamped to the pages there are) of ``items``, ``size`` to a page."""
    size = max(1, min(int(size), MAX_PAGE_SIZE))
    total = len(items)
    last_page = max(1, -(-total // size))
    page = max(1, min(int(page), last_page))
    start = (page - 1) * size
    return Paged(list(items[start : start + size]), page, size, total)


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this server, else ``default``: where a form or a login sends the browser
    next, never another site (``//host``, ``https://host``, ``/\\host``, ``javascript:``)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def segment(value: object) -> str:
    """A record id as one URL path segment (every reserved character escaped, the slash too)."""
    return quote(str(value), safe="")


# in templates, ``{{ id|segment }}`` in a link's path (Jinja's ``urlencode`` leaves '/' as it is)
_env.filters["segment"] = segment


def field_errors(error: NominaError) -> dict[str, str]:
    """An error as the page shows it: ``{field: message}``, under ``""`` when it names no field."""
    return {error.field or "": error.message}


def render(
    request: Request, template: str, viewer: Viewer | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render ``template`` for ``viewer`` (None on the login page) with ``context``; every page gets the
    viewer, its CSRF token, ``errors`` (field -> message, empty unless given) and ``form`` (the values
    sent, to fill the form again after an error)."""
    context.setdefault("errors", {})
    context.setdefault("form", {})
    context.setdefault("notice", None)
    return templates.TemplateResponse(
        request,
        template,
        {"viewer": viewer, "csrf": viewer.csrf if viewer else "", "version": __version__, **context},
        status_code=status_code,
    )
