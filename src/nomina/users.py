"""Users and their roles: who may review candidates, verify identifications and manage users.

A person may hold several roles (:mod:`nomina.roles` lists them and the one table of what each may do):
examiner, verifier, admin, intake and auditor.

Users are disabled, never deleted: the audit trail names them, and a name in it must keep meaning the
same person. Every change here is recorded in the audit trail in the caller's transaction, so a user
change and its record are written together or not at all.

The first user of a workspace cannot be added by an admin, since there is none: anyone may add it, it
must hold the admin role, and it is recorded as created by the operating-system user running Nomina.
From then on only an active admin adds or disables users, and the last active admin cannot be
disabled, so the workspace never loses the ability to manage its users.

A user proves who they are with a password, a session or an API token (:mod:`nomina.auth`); a user
may be added without a password (then they cannot log in until one is set with ``nomina user passwd``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, roles
from .errors import Conflict, InvalidField, NotFound, NotLoggedIn, PermissionDenied
from .records import Record, _record_id, now, shown, skeleton
from .settings import os_user
from .store import schema as db

__all__ = [
    "ROLES",
    "User",
    "add_user",
    "disable_user",
    "has_users",
    "list_users",
    "parse_roles",
    "require_user",
    "PREFERENCES",
    "preferences",
    "set_preference",
    "set_roles",
    "user_row",
]

ROLES = roles.ROLES

#: a user's own display settings: name -> (default, what it does)
PREFERENCES: dict[str, tuple[bool, str]] = {
    "show_post_mortem": (False, "show post-mortem photos unblurred (they are blurred until you choose to see them)"),
}


@dataclass(frozen=True)
class User(Record):
    """A user as the rest of Nomina sees one (never with a password hash)."""

    name: str
    roles: tuple[str, ...]
    active: bool
    created_at: datetime
    created_by: str
    disabled_at: datetime | None = None
    disabled_by: str | None = None
    has_password: bool = False  # whether they can log in (nomina.auth)
    locked_until: datetime | None = None  # the end of a lockout after failed logins, if one is running

    def has_role(self, role: str) -> bool:
        return role in self.roles


def _user(row: db.User) -> User:
    return User(
        name=row.name,
        roles=tuple(row.roles),
        active=row.active,
        created_at=row.created_at,
        created_by=row.created_by,
        disabled_at=row.disabled_at,
        disabled_by=row.disabled_by,
        has_password=row.password_hash is not None,
        locked_until=row.locked_until if row.locked_until and row.locked_until > now() else None,
    )


def is_user_name(name: object) -> bool:
    """Whether ``name`` is a user name as Nomina makes them (trimmed, normalised: see ``add_user``); a row
    under any other name was written behind Nomina's back and names nobody."""
    try:
        return isinstance(name, str) and _record_id(name, "user") == name
    except InvalidField:
        return False


def user_row(s: Session, name: str) -> db.User:
    """The row of user ``name`` (NotFound when there is none)."""
    row = s.get(db.User, name.strip())
    if row is None:
        raise NotFound(f"user {name.strip()!r}: no such user", record=f"user {name.strip()!r}")
    return row


def _role(value: str, field_name: str = "role") -> str:
    role = value.strip().lower()
    if role not in ROLES:
        raise InvalidField(f"{field_name}: {value.strip()!r} is not one of {', '.join(ROLES)}")
    return role


def parse_roles(roles: Iterable[str] | str) -> tuple[str, ...]:
    """Roles from a list or comma-separated text, in the order of :data:`ROLES`; at least one."""
    listed = isinstance(roles, list | tuple | set | frozenset)
    items = [roles] if isinstance(roles, str) else list(roles) if listed else None
    if items is None or not all(isinstance(item, str) for item in items):
        raise InvalidField(f"role: {shown(roles)} is not a role or a list of roles")
    given = {_role(part) for item in items for part in item.split(",") if part.strip()}
    if not given:
        raise InvalidField(f"role: required (one or more of {', '.join(ROLES)})")
    return tuple(r for r in ROLES if r in given)


def has_users(s: Session) -> bool:
    """Whether the workspace has any user yet (before the first, it is in its bootstrap state)."""
    return s.scalar(select(db.User.name).limit(1)) is not None


def list_users(s: Session) -> list[User]:
    """Every user, active or not, by name."""
    return [_user(row) for row in s.scalars(select(db.User).order_by(db.User.name))]


def require_user(s: Session, name: str | None, role: str | None = None, *, action: str | None = None) -> User:
    """The active user ``name``, holding ``role`` if one is given, and allowed ``action`` (of
    :data:`nomina.roles.ACTIONS`) if one is given; the check before any guarded action.

    Raises PermissionDenied when no name is given, the user is disabled or lacks the role, and NotFound
    when no user has that name.
    """
    permitted: tuple[str, ...] | None = None
    needed: str | None = None
    if role is not None:
        checked = _role(role, "role")
        permitted, needed = (checked,), f"the {checked} role"
    elif action is not None:
        permitted, needed = roles.roles_for(action), roles.needs(action)
    if name is None or not name.strip():
        what = needed or "a user"
        raise NotLoggedIn(
            f"not logged in: every action is done by a user who has logged in (this needs {what})", field="user"
        )
    row = user_row(s, name)
    if not row.active:
        raise PermissionDenied(f"user {row.name!r} is disabled", record=f"user {row.name!r}")
    if permitted is not None and not any(r in permitted for r in row.roles):
        raise PermissionDenied(
            f"user {row.name!r} does not have {needed} (roles: {', '.join(row.roles)})",
            record=f"user {row.name!r}",
        )
    return _user(row)


def add_user(s: Session, name: str, roles: Iterable[str] | str, actor: str | None, password: str | None = None) -> User:
    """Add user ``name`` with ``roles`` and ``password`` (if given), acting as ``actor`` (an active admin),
    and audit it.

    The first user is the exception: anyone may add it (``actor`` is not checked) and it must hold the
    admin role; ``created_by`` and the audit actor are then the operating-system user.
    """
    from .auth import hash_password  # auth imports this module

    name = _record_id(name, "user")
    if name.startswith("("):  # "(anonymous)" is the trail's actor of a refused login ('/' is no id's)
        raise InvalidField(f"user: {name!r} may not begin with '('", field="name")
    wanted = parse_roles(roles)
    hashed = None if password is None else hash_password(name, password)
    bootstrap = not has_users(s)
    if bootstrap:
        if "admin" not in wanted:
            raise InvalidField("role: the first user must have the admin role, to add the others")
        created_by = os_user()
    else:
        created_by = require_user(s, actor, "admin").name
        if s.get(db.User, name) is not None:
            raise Conflict(f"user {name!r} already exists", field="name", record=f"user {name!r}")
        _refuse_lookalike(s, name)
    row = db.User(
        name=name, roles=list(wanted), active=True, created_at=now(), created_by=created_by, password_hash=hashed
    )
    s.add(row)
    s.flush()
    audit.record(s, created_by, audit.UserAdded(user=name, roles=wanted, bootstrap=bootstrap))
    return _user(row)


def _refuse_lookalike(s: Session, name: str) -> None:
    """Refuse a new user name that reads like an existing one (Cyrillic 'і' for Latin 'i', 'Ben' for 'ben'):
    the trail, the reports and the exports name who proposed and who verified by these names, and a
    verification by 'vіc' must not pass for one by 'vic'."""
    mine = skeleton(name.casefold())
    for other in s.scalars(select(db.User.name)):
        if skeleton(other.casefold()) == mine:
            raise Conflict(
                f"name: {name!r} looks like the existing user {other!r}; choose a name that cannot be mistaken for it",
                field="name",
                record=f"user {other!r}",
            )


def disable_user(s: Session, name: str, actor: str | None) -> User:
    """Disable user ``name``, acting as ``actor`` (an active admin), and audit it.

    Refuses (Conflict) a user already disabled and the last active admin, who would leave nobody able
    to manage users.
    """
    admin = require_user(s, actor, "admin")
    row = user_row(s, name)
    if not row.active:
        raise Conflict(f"user {row.name!r} is already disabled", record=f"user {row.name!r}")
    if "admin" in row.roles and _last_admin(s, row):
        raise Conflict(
            f"user {row.name!r} is the last active admin; add another admin first", record=f"user {row.name!r}"
        )
    row.active = False
    row.disabled_at = now()
    row.disabled_by = admin.name
    s.flush()
    audit.record(s, admin.name, audit.UserDisabled(user=row.name))
    return _user(row)


def _last_admin(s: Session, row: db.User) -> bool:
    """Whether ``row`` is the only active admin."""
    admins = [u for u in s.scalars(select(db.User).where(db.User.active.is_(True))) if "admin" in u.roles]
    return [u.name for u in admins] == [row.name]


def set_roles(s: Session, name: str, new_roles: Iterable[str] | str, actor: str | None) -> User:
    """Give user ``name`` exactly ``new_roles``, acting as ``actor`` (an active admin), and audit it.

    Refuses (Conflict) taking the admin role from the last active admin."""
    admin = require_user(s, actor, action="user.manage")
    row = user_row(s, name)
    wanted = parse_roles(new_roles)
    old = tuple(row.roles)
    if wanted == old:
        return _user(row)
    if "admin" in old and "admin" not in wanted and row.active and _last_admin(s, row):
        raise Conflict(
            f"user {row.name!r} is the last active admin; add another admin first",
            field="roles",
            record=f"user {row.name!r}",
        )
    row.roles = list(wanted)
    s.flush()
    audit.record(s, admin.name, audit.UserRolesChanged(user=row.name, old=old, new=wanted))
    return _user(row)


def preferences(s: Session, name: str) -> dict[str, bool]:
    """User ``name``'s display settings: stored values, defaults for the others."""
    kept = {p.name: p.value for p in s.scalars(select(db.UserPreference).where(db.UserPreference.user == name))}
    return {key: bool(kept.get(key, default)) for key, (default, _) in PREFERENCES.items()}


def set_preference(s: Session, name: str, key: str, value: bool) -> dict[str, bool]:
    """Set one of user ``name``'s own display settings (any active user, for themself) and audit it."""
    if key not in PREFERENCES:
        raise InvalidField(f"preference: {key!r} is not one of {', '.join(PREFERENCES)}", field="preference")
    if not isinstance(value, bool):
        raise InvalidField(f"{key}: must be true or false", field=key)
    user = require_user(s, name, action="account")
    row = s.get(db.UserPreference, (user.name, key))
    if row is None:
        s.add(db.UserPreference(user=user.name, name=key, value=value))
    elif row.value == value:
        return preferences(s, user.name)
    else:
        row.value = value
    s.flush()
    audit.record(s, user.name, audit.PreferenceSet(user=user.name, name=key, value=value))
    return preferences(s, user.name)
