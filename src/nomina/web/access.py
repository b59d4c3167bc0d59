"""Who is asking, and may they: credentials, the route rules, CSRF and the login throttle.

Every route of the application declares its rule by taking a :func:`page` or :func:`api` dependency
naming one action of :data:`nomina.roles.ACTIONS`; the dependency (a :class:`Guard`) finds the caller's
credential, opens a view of the workspace acting with it, and refuses (403) a user whose roles do not
allow the action, before the route does anything. The library checks the same table again inside each
call's own transaction, so a role taken away between the two checks still takes effect.

- Pages take the session secret from the ``nomina_session`` cookie (HttpOnly, SameSite=Strict, Secure
  when served over TLS). A page route that changes anything (any method but GET and HEAD) also needs the
  CSRF token, in the form field ``csrf`` or the ``X-CSRF-Token`` header: an HMAC of the session secret,
  which another site can neither read nor compute. Login itself is protected by a double-submit cookie.
- The REST API takes only ``Authorization: Bearer <API token>``; it never reads the cookie, so a page
  of another site cannot make a logged-in browser call it (no CSRF on the API).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from .. import auth, roles
from ..errors import NotLoggedIn, PermissionDenied
from ..workspace import Workspace

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "Guard",
    "LoginThrottle",
    "Viewer",
    "api",
    "bearer",
    "csrf_token",
    "page",
]

SESSION_COOKIE = "nomina_session"
LOGIN_COOKIE = "nomina_login"  # the double-submit token of the login form
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
_SAFE = frozenset({"GET", "HEAD"})


def csrf_token(secret: str) -> str:
    """The CSRF token of the session whose secret is ``secret`` (stable for the session's life)."""
    return hmac.new(secret.encode(), b"nomina csrf", hashlib.sha256).hexdigest()


@dataclass
class Viewer:
    """The caller of one request: a view of the workspace acting as them, and who they are."""

    ws: Workspace
    identity: auth.Identity
    secret: str
    csrf: str = ""
    preferences: dict[str, bool] = field(default_factory=dict)

    @property
    def user(self) -> str:
        return self.identity.user

    def may(self, action: str) -> bool:
        """Whether this user's roles allow ``action`` (what the navigation and buttons show)."""
        return roles.allowed(self.identity.roles, action)


def base_workspace(request: Request) -> Workspace:
    """The application's workspace (opened once per process, anonymous)."""
    ws: Workspace = request.app.state.workspace
    return ws


def bearer(request: Request) -> str | None:
    """The secret of an ``Authorization: Bearer`` header, if the request has one."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class Guard:
    """A route's rule: the action it takes, for a page (cookie + CSRF) or the API (bearer token).

    Used as a FastAPI dependency; gives the route its :class:`Viewer`. The role-matrix test finds each
    route's Guard among its dependencies."""

    def __init__(self, action: str, for_api: bool) -> None:
        roles.roles_for(action)  # an action not in the table fails when the route is declared
        self.action = action
        self.for_api = for_api

    async def __call__(self, request: Request) -> Viewer:
        if self.for_api:
            secret = bearer(request)
            if secret is None or not secret.startswith(auth.TOKEN_PREFIX):
                raise NotLoggedIn(
                    "not logged in: send an API token as 'Authorization: Bearer <token>' (nomina token create)",
                    field="authorization",
                )
        else:
            secret = request.cookies.get(SESSION_COOKIE)
            if not secret or not secret.startswith(auth.SESSION_PREFIX):
                raise NotLoggedIn("not logged in", field="user")
        viewer = await run_in_threadpool(self._viewer, request, secret)
        if not viewer.may(self.action):
            raise PermissionDenied(
                f"user {viewer.user!r} may not do this: it needs {roles.needs(self.action)} "
                f"(roles: {', '.join(viewer.identity.roles)})",
                record=f"user {viewer.user!r}",
            )
        if not self.for_api and request.method not in _SAFE:
            await _check_csrf(request, viewer.csrf)
        request.state.viewer = viewer
        return viewer

    def _viewer(self, request: Request, secret: str) -> Viewer:
        view = base_workspace(request).with_credential(secret)
        identity = view.whoami()
        prefs = view.preferences() if not self.for_api else {}
        return Viewer(view, identity, secret, "" if self.for_api else csrf_token(secret), prefs)


async def _check_csrf(request: Request, expected: str) -> None:
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    if not given or not hmac.compare_digest(given, expected):
        await request.close()  # the uploads of a refused form are not kept open
        raise PermissionDenied(
            "the form is out of date or came from another site (CSRF check failed); reload the page and try again",
            field=CSRF_FIELD,
        )


def page(action: str) -> Any:
    """The dependency of a page route that takes ``action``: ``viewer: Viewer = page("case.read")``."""
    return Depends(Guard(action, for_api=False))


def api(action: str) -> Any:
    """The dependency of an API route that takes ``action``: ``viewer: Viewer = api("case.read")``."""
    return Depends(Guard(action, for_api=True))


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


class LoginThrottle:
    """At most ``limit`` failed logins per client address in ``window`` seconds (in this process).

    The per-user lockout of :mod:`nomina.auth` stops guessing one user's password; this stops one address
    from trying many users. Behind a reverse proxy the address is the proxy's unless the server is told to
    trust its forwarded headers (docs/deploy.md)."""

    def __init__(self, limit: int = 20, window: float = 600.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.setdefault(address, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def attempt(self, address: str) -> tuple[int, float]:
        """Before a login's password is checked: (seconds until ``address`` may try again, 0), or (0, the
        attempt's stamp) when it may now. The attempt counts as failed from this moment, so that many sent at
        once cannot all be checked before the first of them is counted; :meth:`release` takes back one that
        did not fail."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            if len(times) >= self.limit:
                return max(1, int(times[0] + self.window - now) + 1), 0.0
            times.append(now)
            if len(self._failures) > 10_000:  # forget quiet addresses rather than grow without bound
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]
        return 0, now

    def release(self, address: str, stamp: float) -> None:
        """Take back the attempt ``stamp`` (:meth:`attempt`): the login succeeded."""
        with self._lock:
            times = self._failures.get(address)
            if times is not None and stamp in times:
                times.remove(stamp)
