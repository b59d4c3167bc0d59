"""Pages: the audit trail and its verification, users, and the workspace's settings.

- ``/audit`` (audit.read): the trail, newest first, filtered by case, reference or acting user, paged
  back by ``before`` (a ``seq``); ``/audit/verify`` checks the whole chain and shows the head hash to
  keep elsewhere.
- ``/admin`` and ``/admin/users/...`` (user.manage): users, their roles and lockouts; add a user,
  change roles, disable, reset a password (which also ends a lockout and the user's sessions).
- ``/admin/settings`` (workspace.manage): the workspace settings (changed one at a time, the values
  read as ``nomina config NAME VALUE`` reads them), the model and the calibrations, read-only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..errors import NominaError, NotFound, WorkspaceError
from ..roles import ACTIONS, ROLES
from ..settings import WORKSPACE_SETTINGS
from ..users import User
from .access import Viewer, page
from .render import MAX_PAGE_SIZE, PAGE_SIZE, field_errors, paged, render

__all__ = ["router"]

router = APIRouter()

#: The largest ``seq`` the database holds (SQLite's integer); a larger ``before`` is refused as invalid.
_MAX_SEQ = 2**63 - 1

#: What a page says after a change it was sent back to (``?done=``): fixed texts, never the query's own.
_DONE = {
    "added": "User added. They can log in with the first password you gave; ask them to change it.",
    "roles": "Roles changed. They apply from the user's next request, in sessions already open too.",
    "disabled": "User disabled. Their sessions and API tokens stopped working.",
    "password": "Password set. The user's lockout (if any) ended, and so did their sessions; their API tokens "
    "are revoked.",
    "setting": "Setting changed.",
}


def _notice(done: str) -> str | None:
    return _DONE.get(done)


# -- the audit trail ---------------------------------------------------------------------------------
def _blank(value: str) -> str | None:
    value = value.strip()
    return value or None


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    case_id: str = "",
    reference_id: str = "",
    user: str = "",
    before: int | None = Query(None, ge=1, le=_MAX_SEQ),
    size: int = Query(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
    viewer: Viewer = page("audit.read"),
) -> Response:
    """The trail, newest first, ``size`` events before ``before``; reading it is recorded."""
    form = {"case_id": case_id.strip(), "reference_id": reference_id.strip(), "user": user.strip()}
    kept = {**form, "size": str(size) if size != PAGE_SIZE else ""}  # what the paging links keep
    try:
        found = viewer.ws.audit_log(
            case_id=_blank(case_id), reference_id=_blank(reference_id), user=_blank(user), limit=size, before=before
        )
    except NominaError as exc:
        return _audit(request, viewer, exc.http_status, form=form, before=before, errors=field_errors(exc))
    entries = list(reversed(found))
    older = None
    if len(found) == size:
        older = _audit_link({**kept, "before": str(entries[-1].seq)})
    newest = _audit_link(kept) if before is not None else None
    return _audit(request, viewer, 200, form=form, before=before, entries=entries, older=older, newest=newest)


def _audit_link(query: dict[str, str]) -> str:
    kept = {k: v for k, v in query.items() if v}
    return "/audit" + (f"?{urlencode(kept)}" if kept else "")


def _audit(request: Request, viewer: Viewer, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("entries", [])
    context.setdefault("older", None)
    context.setdefault("newest", None)
    context.setdefault("verification", None)
    context.setdefault("head", None)
    context.setdefault("form", {"case_id": "", "reference_id": "", "user": ""})
    context.setdefault("before", None)
    return render(request, "audit.html", viewer, status, **context)


@router.post("/audit/verify", response_class=HTMLResponse)
def audit_verify(request: Request, viewer: Viewer = page("audit.read")) -> Response:
    """Check the whole chain and every record against it; show the result and the head to keep."""
    try:
        result = viewer.ws.audit_verify()
        head = viewer.ws.audit_head()
    except NominaError as exc:
        return _audit(request, viewer, exc.http_status, errors=field_errors(exc))
    return _audit(request, viewer, verification=result, head=head)


# -- users ---------------------------------------------------------------------------------------------
def _roles_help() -> dict[str, str]:
    """Each role and the actions it allows, for the role checkboxes."""
    return {role: ", ".join(a for a, (allowed, _) in ACTIONS.items() if role in allowed) for role in ROLES}


def _admin(request: Request, viewer: Viewer, status: int = 200, page_no: int = 1, **context: Any) -> HTMLResponse:
    listed = paged(viewer.ws.users(), page_no)
    context.setdefault("form", {"name": "", "roles": []})
    return render(request, "admin.html", viewer, status, users=listed, roles=ROLES, role_help=_roles_help(), **context)


@router.get("/admin", response_class=HTMLResponse)
def admin_page(
    request: Request, page_no: int = Query(1, alias="page", ge=1, le=10**6), viewer: Viewer = page("user.manage")
) -> Response:
    """Every user, active or not, with roles and any running lockout; the form to add one."""
    return _admin(request, viewer, page_no=page_no)


@router.post("/admin/users", response_class=HTMLResponse)
def add_user(
    request: Request,
    name: str = Form(""),
    roles: list[str] = Form([]),
    password: str = Form(""),
    repeat: str = Form(""),
    viewer: Viewer = page("user.manage"),
) -> Response:
    """Add a user with roles and a first password (entered twice)."""
    form = {"name": name, "roles": roles}
    if not name.strip():
        errors = {"name": "required"}
    elif not roles:
        errors = {"roles": "choose one or more roles"}
    elif not password:
        errors = {"password": "required: the user logs in with it, then changes it"}
    elif password != repeat:
        errors = {"repeat": "the two passwords differ"}
    else:
        try:
            added = viewer.ws.add_user(name, roles, password)
        except NominaError as exc:
            return _admin(request, viewer, exc.http_status, form=form, errors=_user_errors(exc))
        return RedirectResponse(f"/admin/users/{quote(added.name, safe='')}?done=added", status_code=303)
    return _admin(request, viewer, 422, form=form, errors=errors)


def _user_errors(exc: NominaError) -> dict[str, str]:
    """Errors of the user forms, under the form's own field names (the library names ``role``)."""
    errors = field_errors(exc)
    if "role" in errors:
        errors["roles"] = errors.pop("role")
    return errors


def _find_user(viewer: Viewer, name: str) -> User:
    for user in viewer.ws.users():
        if user.name == name:
            return user
    raise NotFound(f"user {name!r}: no such user", record=f"user {name!r}")


def _user_page(request: Request, viewer: Viewer, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    user = _find_user(viewer, name)
    context.setdefault("form", {"roles": list(user.roles)})
    return render(
        request, "admin_user.html", viewer, status, user=user, roles=ROLES, role_help=_roles_help(), **context
    )


@router.get("/admin/users/{name}", response_class=HTMLResponse)
def user_page(request: Request, name: str, done: str = "", viewer: Viewer = page("user.manage")) -> Response:
    """One user: roles, state, lockout; forms to change roles, disable, reset the password."""
    return _user_page(request, viewer, name, notice=_notice(done))


@router.post("/admin/users/{name}/roles", response_class=HTMLResponse)
def set_roles(
    request: Request, name: str, roles: list[str] = Form([]), viewer: Viewer = page("user.manage")
) -> Response:
    """Give the user exactly the roles ticked (the last active admin keeps the admin role)."""
    if not roles:
        errors = {"roles": "choose one or more roles (to stop someone using Nomina, disable them)"}
        return _user_page(request, viewer, name, 422, form={"roles": roles}, errors=errors)
    try:
        viewer.ws.set_roles(name, roles)
    except NominaError as exc:
        return _user_page(request, viewer, name, exc.http_status, form={"roles": roles}, errors=_user_errors(exc))
    return RedirectResponse(f"/admin/users/{quote(name, safe='')}?done=roles", status_code=303)


@router.post("/admin/users/{name}/disable", response_class=HTMLResponse)
def disable_user(request: Request, name: str, viewer: Viewer = page("user.manage")) -> Response:
    """Disable the user (never the last active admin); their sessions and tokens stop at once."""
    try:
        viewer.ws.disable_user(name)
    except NominaError as exc:
        if isinstance(exc, NotFound):
            raise
        return _user_page(request, viewer, name, exc.http_status, errors={"disable": exc.message})
    return RedirectResponse(f"/admin/users/{quote(name, safe='')}?done=disabled", status_code=303)


@router.post("/admin/users/{name}/password", response_class=HTMLResponse)
def reset_password(
    request: Request,
    name: str,
    password: str = Form(""),
    repeat: str = Form(""),
    viewer: Viewer = page("user.manage"),
) -> Response:
    """Set another user's password (ends their lockout and their sessions, revokes their API tokens)."""
    errors: dict[str, str] = {}
    status = 422
    if name == viewer.user:
        errors = {"password": "this is you: change your own password on your account page, with your current one"}
    elif password != repeat:
        errors = {"repeat": "the two passwords differ"}
    else:
        try:
            viewer.ws.set_password(name, password)
        except NominaError as exc:
            if isinstance(exc, NotFound):
                raise
            errors, status = {exc.field or "password": exc.message}, exc.http_status
    if errors:
        return _user_page(request, viewer, name, status, errors=errors)
    return RedirectResponse(f"/admin/users/{quote(name, safe='')}?done=password", status_code=303)


# -- workspace settings ---------------------------------------------------------------------------------
def _settings(request: Request, viewer: Viewer, status: int = 200, **context: Any) -> HTMLResponse:
    ws = viewer.ws
    calibrations = ws.calibrations()
    try:
        values = ws.config()
    except WorkspaceError as exc:  # a setting written behind Nomina's back: its form says so, and sets it again
        values = {s.name: "" for s in WORKSPACE_SETTINGS}
        context["errors"] = {**field_errors(exc), **context.get("errors", {})}
    try:
        current = ws.calibration()
    except NominaError:  # changed behind Nomina's back: none is in use until one is added again
        current = None
    return render(
        request,
        "settings.html",
        viewer,
        status,
        settings=WORKSPACE_SETTINGS,
        values=values,
        info=ws.info(),
        model=ws.model_identity,
        calibrations=list(reversed(calibrations)),  # newest first
        in_use=current[0] if current else None,
        **context,
    )


@router.get("/admin/settings", response_class=HTMLResponse)
def settings_page(request: Request, done: str = "", viewer: Viewer = page("workspace.manage")) -> Response:
    """The workspace settings with a form for each; the model and calibrations, read-only."""
    return _settings(request, viewer, notice=_notice(done))


@router.post("/admin/settings", response_class=HTMLResponse)
def set_setting(
    request: Request, name: str = Form(""), value: str = Form(""), viewer: Viewer = page("workspace.manage")
) -> Response:
    """Change one workspace setting; the text is read as ``nomina config NAME VALUE`` reads it."""
    known = {s.name for s in WORKSPACE_SETTINGS}
    try:
        viewer.ws.set_config(name, value.strip())
    except NominaError as exc:
        where = name if name in known else ""
        errors = {where: exc.message}
        return _settings(request, viewer, exc.http_status, form={name: value}, errors=errors)
    return RedirectResponse("/admin/settings?done=setting", status_code=303)
