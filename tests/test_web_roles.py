"""The role matrix: every route of the web application and the API, for every role, answers as the one
table of nomina.roles says. A route without a rule fails here, and so does a route whose rule the
application does not enforce."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import WEB_USERS, copy_workspace, web_login, web_token
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from nomina import roles
from nomina.web import create_app
from nomina.web.access import Guard
from nomina.web.app import API_PREFIX, PUBLIC_ROUTES

#: A value for each path parameter the routes use; the record need not exist (a 404 is an answer too).
PARAMS = {
    "case_id": "C1",
    "reference_id": "R1",
    "id": "R1",
    "search_id": "1",
    "rank": "1",
    "n": "1",
    "photo": "1",
    "face_no": "1",
    "face_id": "1",
    "name": "nobody",
    "user": "nobody",
    "job": "0" * 32,
    "job_id": "0" * 32,
    "token_id": "999999",
}
ROLE_OF = {role: user for user, role in WEB_USERS.items()}


def guards(route: APIRoute) -> list[Guard]:
    """The Guard dependencies of a route, at any depth."""
    found: list[Guard] = []

    def walk(dependant: Any) -> None:
        for dep in dependant.dependencies:
            if isinstance(dep.call, Guard):
                found.append(dep.call)
            walk(dep)

    walk(route.dependant)
    return found


def endpoints(app: Any) -> Iterator[tuple[str, str, APIRoute]]:
    """Every (method, full path, route) of the application, the routes of included routers too (FastAPI keeps
    those in ``app.routes`` as one entry per included router)."""

    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, str, APIRoute]]:
        for route in routes:
            if isinstance(route, APIRoute):
                for method in sorted(route.methods - {"HEAD"}):
                    yield method, prefix + route.path, route
            elif hasattr(route, "original_router"):
                yield from walk(route.original_router.routes, prefix + route.include_context.prefix)

    yield from walk(app.routes, "")


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PARAMS.get(m.group(1), "x"), path)


@pytest.fixture(scope="module")
def matrix_ws(_web_ws_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield copy_workspace(_web_ws_template, tmp_path_factory.mktemp("roles"))


@pytest.fixture(scope="module")
def app(matrix_ws: Path) -> Iterator[Any]:
    application = create_app(matrix_ws)
    yield application
    application.state.workspace.close()


def test_every_route_has_one_rule_from_the_table(app: Any) -> None:
    unguarded, doubled = [], []
    for method, path, route in endpoints(app):
        found = guards(route)
        if (method, path) in PUBLIC_ROUTES:
            assert not found, f"{method} {path} is public and guarded"
            continue
        if not found:
            unguarded.append(f"{method} {path}")
        elif len({g.action for g in found}) > 1:
            doubled.append(f"{method} {path}")
        for g in found:
            assert g.action in roles.ACTIONS
            assert g.for_api == path.startswith(API_PREFIX + "/"), (
                f"{method} {path}: API routes take tokens, pages cookies"
            )
    assert not unguarded, f"routes without a rule: {unguarded}"
    assert not doubled, f"routes with two different rules: {doubled}"
    paths = {path for _, path, _ in endpoints(app)}
    # the walk reaches the routers' routes: a page of each router and the API
    assert {
        "/queue",
        "/references",
        "/audit",
        "/api/v1/cases",
        "/searches/{search_id}/candidates/{rank}/compare",
    } <= paths


def walk(app: Any, ws_path: Path, allowed_roles: bool) -> tuple[list[str], int]:
    """Request every guarded route as every role the table refuses it (``allowed_roles`` false, and as nobody)
    or allows it (true); what answered otherwise than the table says, and how many answers were checked."""
    pages: dict[str, tuple[TestClient, str]] = {}
    tokens: dict[str, str] = {}
    for role, user in ROLE_OF.items():
        client = TestClient(app, follow_redirects=False)
        pages[role] = (client, web_login(client, user))
        tokens[role] = web_token(ws_path, user)
    anonymous = TestClient(app, follow_redirects=False)
    wrong: list[str] = []
    checked = 0
    # logging out last: it ends the session the other requests use
    for method, path, route in sorted(endpoints(app), key=lambda e: e[1] == "/logout"):
        if (method, path) in PUBLIC_ROUTES:
            continue
        (guard,) = set(guards(route))
        url = concrete(path)
        is_api = guard.for_api
        if not allowed_roles:  # nobody logged in: the API says 401, a page sends the browser to the login page
            answer = anonymous.request(method, url)
            if is_api and (answer.status_code != 401 or answer.json()["error"]["code"] != "not_logged_in"):
                wrong.append(f"{method} {path} anonymous: {answer.status_code}")
            if not is_api and not (answer.status_code == 303 and answer.headers["location"].startswith("/login")):
                wrong.append(f"{method} {path} anonymous: {answer.status_code}")
        for role in roles.ROLES:
            allowed = roles.allowed((role,), guard.action)
            if allowed is not allowed_roles:
                continue
            client, csrf = pages[role]
            if is_api:
                answer = anonymous.request(method, url, headers={"authorization": f"Bearer {tokens[role]}"})
            else:
                answer = client.request(method, url, data={"csrf": csrf} if method != "GET" else None)
            refused = answer.status_code == 403
            if allowed and refused:
                wrong.append(f"{method} {path} {role}: refused though {guard.action} allows it: {answer.text[:200]}")
            if not allowed and not refused:
                wrong.append(f"{method} {path} {role}: answered {answer.status_code}; {guard.action} does not allow it")
            if not allowed and is_api and answer.json()["error"]["code"] != "permission_denied":
                wrong.append(f"{method} {path} {role}: {answer.json()}")
            if answer.status_code >= 500:
                wrong.append(f"{method} {path} {role}: {answer.status_code}")
            checked += 1
    return wrong, checked


@pytest.mark.slow
def test_every_route_refuses_everyone_the_table_does_not_allow(app: Any, matrix_ws: Path) -> None:
    wrong, checked = walk(app, matrix_ws, allowed_roles=False)
    assert not wrong, "\n".join(wrong)
    assert checked >= 100


@pytest.mark.slow  # every allowed role does the real work of every route (PDF reports, searches): about a minute
def test_every_route_serves_everyone_the_table_allows(app: Any, matrix_ws: Path) -> None:
    wrong, checked = walk(app, matrix_ws, allowed_roles=True)
    assert not wrong, "\n".join(wrong)
    assert checked >= 100


def test_the_table_names_only_known_roles_and_every_role_can_do_something() -> None:
    for action, (allowed, what) in roles.ACTIONS.items():
        assert allowed and set(allowed) <= set(roles.ROLES) and what, action
    for role in roles.ROLES:
        assert any(roles.allowed((role,), a) for a in roles.ACTIONS if a != "account"), role
    # what the issue asks of the two new roles
    assert roles.allowed(("intake",), "reference.write") and not roles.allowed(("intake",), "case.read")
    assert not roles.allowed(("intake",), "search.run") and not roles.allowed(("intake",), "audit.read")
    writes = [a for a in roles.ACTIONS if a.endswith((".write", ".run", ".verify", ".manage", ".erase"))]
    assert not [a for a in writes if roles.allowed(("auditor",), a)]
    assert roles.allowed(("auditor",), "audit.read") and roles.allowed(("auditor",), "case.read")
