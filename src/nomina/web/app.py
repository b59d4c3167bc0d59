"""The web application: pages for people and the REST API for programs, on one workspace.

:func:`create_app` builds it (``nomina serve`` runs it under uvicorn). What every response gets:

- security headers: a Content-Security-Policy that allows scripts, styles and images from this server only
  and no inline script, ``frame-ancestors 'none'`` and X-Frame-Options, ``Referrer-Policy: no-referrer``,
  nosniff, and ``Cache-Control: no-store`` on everything but the static files (pages and photos hold
  personal and biometric data that must not stay in a browser's or proxy's cache);
- one error shape: the API answers ``{"error": {"code", "message", "field"}}`` with the status of
  :func:`nomina.errors.http_status`; a page shows the error in plain words (a form shows it next to its
  field); a page that needs a login sends the browser to the login page.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Form, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import auth, users
from ..errors import ImageTooLarge, LoginFailed, NominaError, NotLoggedIn, http_status
from ..files import remove_stale_temporaries
from ..workspace import Workspace
from . import access, uploads
from .access import LOGIN_COOKIE, SESSION_COOKIE, LoginThrottle, Viewer, page
from .render import local_path, render

__all__ = ["API_PREFIX", "PUBLIC_ROUTES", "create_app", "factory"]

log = logging.getLogger("nomina.web")

API_PREFIX = "/api/v1"
#: The routes anyone may reach without logging in (everything else has a rule: see nomina.roles).
PUBLIC_ROUTES = frozenset({("GET", "/login"), ("POST", "/login")})
#: What the login page says to every refused login.
REFUSED = (
    f"Login refused: wrong user name or password, or the user is locked out after {auth.MAX_FAILURES} failed "
    f"logins in a row (wait {auth.LOCKOUT.seconds // 60} minutes, or ask an admin to set a new password)."
)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX + "/") or request.url.path == API_PREFIX


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The API's one error shape."""
    return {"error": {"code": code, "message": message, "field": field}}


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def create_app(workspace: Path | str | Workspace, secure_cookies: bool | None = None) -> FastAPI:
    """The application serving ``workspace`` (a path, or a workspace already open).

    ``secure_cookies``: mark the session cookie Secure; by default it is when the request came over HTTPS
    (directly, or through a reverse proxy whose forwarded headers uvicorn trusts)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    remove_stale_temporaries()  # uploads and reports of requests whose process was killed
    app = FastAPI(
        title="Nomina",
        version=_version(),
        summary="Face search for the identification of missing and unidentified people; people decide.",
        openapi_url=None,  # served by a guarded route of nomina.web.api, from this server alone
        docs_url=None,
        redoc_url=None,
    )
    app.state.workspace = ws
    ws.follow_gallery()  # an erased face leaves this server's memory within a second, not at its next search
    app.state.secure_cookies = secure_cookies
    app.state.throttle = LoginThrottle()
    app.add_middleware(_BodyLimit)
    app.add_middleware(_HeadAsGet)

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        too_big = _too_big(request)
        if too_big is None and not await _caller_known(request):
            # a form or upload from nobody logged in is refused before any of it is read (FastAPI reads a form
            # route's fields before its access rule runs): up to the body limit written to disk for nothing
            too_big = await nomina_error(request, NotLoggedIn("not logged in", field="user"))
        response = too_big if too_big is not None else await call_next(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers["cache-control"] = "no-store"
        return response

    @app.exception_handler(NominaError)
    async def nomina_error(request: Request, exc: NominaError) -> Response:
        status = http_status(exc)
        if _is_api(request):
            headers = {"www-authenticate": "Bearer"} if isinstance(exc, NotLoggedIn) else None
            return JSONResponse(error_body(exc.code, exc.message, exc.field), status, headers=headers)
        if isinstance(exc, NotLoggedIn):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            if request.cookies.get(SESSION_COOKIE):
                response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        viewer = getattr(request.state, "viewer", None)
        return render(request, "error.html", viewer, status, error=exc, status=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "form", "header")]
        name = where[-1] if where else ""
        message = f"{name}: {first.get('msg', 'invalid')}".lower() if name else str(first.get("msg", "invalid"))
        if _is_api(request):
            return JSONResponse(error_body("invalid_field", message, name or None), 422)
        viewer = getattr(request.state, "viewer", None)
        error = _PlainError("invalid_field", message, name or None)
        return render(request, "error.html", viewer, 422, error=error, status=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc.__cause__, NominaError):  # a body stopped by _BodyLimit while FastAPI parsed it
            return await nomina_error(request, exc.__cause__)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        message = {404: "no such page", 405: "this address does not take that method"}.get(
            exc.status_code, str(exc.detail)
        )
        allow = {"allow": _allowed(request)} if exc.status_code == 405 else {}
        if _is_api(request):
            return JSONResponse(error_body(code, message), exc.status_code, headers=allow)
        viewer = getattr(request.state, "viewer", None)
        page = render(
            request, "error.html", viewer, exc.status_code, error=_PlainError(code, message), status=exc.status_code
        )
        page.headers.update(allow)
        return page

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        message = "internal error; the server's log has the details"
        if _is_api(request):
            return JSONResponse(error_body("error", message), 500)
        return render(request, "error.html", None, 500, error=_PlainError("error", message), status=500)

    _login_routes(app)
    _include_routers(app)
    app.mount("/static", StaticFiles(packages=[("nomina.web", "static")]), name="static")
    return app


#: The largest request body taken: a bulk import's manifest and zip, and anything else. Routes bound each
#: file again as they read it (a body sent without a length is counted there); a proxy should bound it too.
MAX_IMPORT_BYTES = 2 * 1024**3 + 64 * 1024**2
MAX_BODY_BYTES = 300 * 1024**2


async def _caller_known(request: Request) -> bool:
    """False for a request that sends a body (not a login) with no valid session (pages) or token (API)."""
    sends_body = request.headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in request.headers
    if not sends_body or request.method in ("GET", "HEAD", "OPTIONS") or request.url.path.rstrip("/") == "/login":
        return True
    secret = access.bearer(request) if _is_api(request) else request.cookies.get(SESSION_COOKIE)
    if not secret or _is_api(request) != secret.startswith(auth.TOKEN_PREFIX):
        return False
    ws: Workspace = request.app.state.workspace

    def known() -> bool:
        try:
            ws.with_credential(secret)  # the credential and its user, as the route's Guard will check them
        except NominaError:
            return False
        return True

    return await run_in_threadpool(known)


def _too_big(request: Request) -> Response | None:
    """A 413 answer for a request whose declared body is over the limit, before any of it is read."""
    declared = uploads.declared_length(request.headers)
    limit = _limit(request.url.path)
    if declared is None or declared <= limit:
        return None
    message = _too_big_message(limit)
    if _is_api(request):
        return JSONResponse(error_body("image_too_large", message, "body"), 413)
    return render(request, "error.html", None, 413, error=_PlainError("too_large", message), status=413)


#: The largest body of a login (a name, a password and a token): it is read before anyone is known.
MAX_LOGIN_BYTES = 64 * 1024


def _too_big_message(limit: int) -> str:
    return f"the request is larger than this server takes here ({limit:,} bytes)"


def _limit(path: str) -> int:
    """The largest request body taken at ``path``."""
    path = path.rstrip("/")
    return MAX_LOGIN_BYTES if path == "/login" else MAX_IMPORT_BYTES if path == "/imports" else MAX_BODY_BYTES


class _BodyLimit:
    """Counts every request's body as it arrives, a body sent without a declared length (chunked) too, and
    stops it at the limit of :func:`_too_big` (a login's at :data:`MAX_LOGIN_BYTES`): forms are parsed
    before the route runs, so without this a page that needs a login would read any amount first."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = _limit(str(scope.get("path", "")))
        await self.app(
            scope, uploads.counted(receive, limit, lambda: ImageTooLarge(f"body: {_too_big_message(limit)}")), send
        )


def _allowed(request: Request) -> str:
    """The methods the request's address takes, for a 405's Allow header (Starlette's own names those of one
    route of the address only): each method is tried against the routes, as the router would."""
    methods = [
        method
        for method in ("DELETE", "GET", "PATCH", "POST", "PUT")
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in request.app.router.routes
        )
    ]
    if "GET" in methods:
        methods.append("HEAD")  # answered wherever GET is (_HeadAsGet)
    return ", ".join(sorted(methods))


#: Downloads whose writing is recorded in the audit trail (reports, exports), on the pages and the API.
_RECORDED_DOWNLOADS = re.compile(r"(?:/api/v1)?/(?:export(?:\.json|\.csv)?|cases/[^/]+/report(?:\.html|\.pdf)?)/?")


class _HeadAsGet:
    """HEAD answered wherever GET is, as HTTP asks of a server: the GET route runs (its access rules too) and its
    answer goes out without the body, with the headers GET would send."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            await self.app(scope, receive, send)
            return
        if _RECORDED_DOWNLOADS.fullmatch(str(scope.get("path", ""))):
            # writing a report or an export is recorded with its SHA-256: a HEAD would record one nobody received
            headers = [(b"allow", b"GET"), (b"content-length", b"0")]  # the security headers: the app's middleware
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class _PlainError:
    """An error that is not a NominaError (a missing page, a malformed request), shown like one."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        self.code, self.message, self.field = code, message, field


def _version() -> str:
    from .._version import __version__

    return __version__


def secure(request: Request) -> bool:
    configured: bool | None = request.app.state.secure_cookies
    return configured if configured is not None else request.url.scheme == "https"


def _login_routes(app: FastAPI) -> None:
    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/") -> Response:  # noqa: A002 - the query parameter's name
        token = access.new_login_token()
        response = render(request, "login.html", None, form={"next": local_path(next)}, login_token=token)
        response.set_cookie(
            LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=secure(request), path="/login"
        )
        return response

    @app.post("/login", response_class=HTMLResponse)
    async def login(
        request: Request,
        name: str = Form(""),
        password: str = Form(""),
        login_token: str = Form(""),
        next: str = Form("/"),  # noqa: A002
    ) -> Response:
        target = local_path(next)
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        form = {"name": name, "next": target}

        def again(status: int, errors: dict[str, str]) -> Response:
            token = access.new_login_token()
            response = render(request, "login.html", None, status, form=form, errors=errors, login_token=token)
            response.set_cookie(
                LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=secure(request), path="/login"
            )
            return response

        if not cookie or not login_token or not _same(cookie, login_token):
            return again(403, {"": "the login form is out of date or came from another site; please log in again"})
        if not name.strip() or not password:
            return again(422, {"name" if not name.strip() else "password": "required"})
        throttle: LoginThrottle = request.app.state.throttle
        address = _client(request)
        wait, stamp = throttle.attempt(address)
        if wait:
            minutes = -(-wait // 60)
            errors = {"": f"too many failed logins from this address; try again in {minutes} minute(s)"}
            response = again(429, errors)
            response.headers["retry-after"] = str(wait)
            return response
        ws: Workspace = request.app.state.workspace
        try:
            result, _ = await run_in_threadpool(ws.login, name.strip(), password, "web")
        except LoginFailed:
            # One answer for a wrong name, a wrong password and a locked-out user: a lockout's own message
            # would tell anyone which names are users (the trail and the admin page say who is locked out).
            return again(401, {"": REFUSED})
        except NominaError as exc:
            return again(http_status(exc), {"": exc.message})
        throttle.release(address, stamp)  # only a login that succeeded is not counted
        assert result.secret is not None and result.session is not None
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            result.secret,
            max_age=int(auth.SESSION_HOURS * 3600),
            httponly=True,
            samesite="strict",
            secure=secure(request),
            path="/",
        )
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    @app.post("/logout")
    def logout(request: Request, viewer: Viewer = page("account")) -> Response:
        viewer.ws.logout()
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/", response_class=HTMLResponse)
    def home(viewer: Viewer = page("account")) -> Response:
        return RedirectResponse("/queue" if viewer.may("case.read") else "/references", status_code=303)

    def account_page(request: Request, viewer: Viewer, status: int = 200, **context: Any) -> Response:
        tokens = [t for t in viewer.ws.tokens() if t.revoked_at is None]
        context.setdefault("new_token", None)
        return render(
            request, "account.html", viewer, status, preference_help=users.PREFERENCES, tokens=tokens, **context
        )

    @app.get("/account", response_class=HTMLResponse)
    def account(request: Request, viewer: Viewer = page("account")) -> Response:
        return account_page(request, viewer)

    @app.post("/account/tokens", response_class=HTMLResponse)
    def create_token(
        request: Request, label: str = Form(""), expires_days: str = Form(""), viewer: Viewer = page("account")
    ) -> Response:
        form = {"label": label, "expires_days": expires_days}
        try:
            days = None if not expires_days.strip() else _whole_number(expires_days, "expires_days")
            made = viewer.ws.create_token(label, days)
        except NominaError as exc:
            return account_page(
                request, viewer, http_status(exc), errors={exc.field or "label": exc.message}, form=form
            )
        return account_page(request, viewer, new_token=made)

    @app.post("/account/tokens/{token_id}/revoke", response_class=HTMLResponse)
    def revoke_token(request: Request, token_id: int, viewer: Viewer = page("account")) -> Response:
        try:
            viewer.ws.revoke_token(token_id)
        except NominaError as exc:
            return account_page(request, viewer, http_status(exc), errors={"": exc.message})
        return RedirectResponse("/account", status_code=303)

    @app.post("/account/preferences", response_class=HTMLResponse)
    async def set_preferences(request: Request, viewer: Viewer = page("account")) -> Response:
        form = await request.form()
        for name in users.PREFERENCES:
            wanted = form.get(name) == "on"
            if viewer.preferences.get(name) != wanted:
                viewer.preferences = await run_in_threadpool(viewer.ws.set_preference, name, wanted)
        back = local_path(str(form.get("next") or "/account"))
        return RedirectResponse(back, status_code=303)

    @app.post("/account/password", response_class=HTMLResponse)
    def change_password(
        request: Request,
        current_password: str = Form(""),
        password: str = Form(""),
        repeat: str = Form(""),
        viewer: Viewer = page("account"),
    ) -> Response:
        errors: dict[str, str] = {}
        if password != repeat:
            errors["repeat"] = "the two new passwords differ"
        else:
            try:
                viewer.ws.set_password(viewer.user, password, current=current_password)
            except NominaError as exc:
                errors[exc.field or "password"] = exc.message
        if errors:
            return account_page(request, viewer, 422, errors=errors)
        return account_page(request, viewer, notice="Password changed. Your other sessions were ended.")


def _whole_number(text: str, field: str) -> int:
    from ..errors import InvalidField

    value = text.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 6:
        raise InvalidField(f"{field}: {text!r} is not a whole number of days", field=field)
    return int(value)


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def _include_routers(app: FastAPI) -> None:
    """The pages and the API, each module a router (imported here so that each stays on its own)."""
    from . import api, pages_admin, pages_cases, pages_compare, pages_references

    for module in (pages_references, pages_cases, pages_compare, pages_admin):
        app.include_router(module.router)
    app.include_router(api.docs_router)  # the API's documentation page, a page for people
    app.include_router(api.router, prefix=API_PREFIX)


def factory() -> FastAPI:
    """The application for uvicorn's ``--factory`` (one per worker process): the workspace in NOMINA_HOME."""
    home = os.environ.get("NOMINA_HOME")
    if not home:
        raise SystemExit("nomina serve: NOMINA_HOME is not set")
    secure_env = os.environ.get("NOMINA_SECURE_COOKIES")
    return create_app(home, secure_cookies=None if secure_env is None else secure_env == "1")
