"""Who is acting: passwords, login sessions and API tokens.

Nomina acts for a user only once they have proved who they are, so that an identification verified "by
ben" was verified by someone who knew ben's password or held ben's token. The command line and the web
server use the same rules and tables:

Passwords
    Hashed with argon2id (argon2-cffi's defaults, the low-memory profile of RFC 9106: 3 passes over
    64 MiB). A password has at least :data:`PASSWORD_MIN` characters, at most :data:`PASSWORD_MAX`, and
    does not contain the user name. A user changes their own password by giving the current one; an
    admin sets anyone's (a reset), which also ends a lockout. Setting a password ends the user's other
    sessions. A wrong current password counts as a failed login (below).

Logins and lockout
    A login names a user and gives their password. After :data:`MAX_FAILURES` failed logins in a row the
    user is locked out for :data:`LOCKOUT` (logins are refused without looking at the password); a
    successful login resets the count. Every login, failure and lockout is an audit event. A refusal
    never says whether the user name or the password was wrong, and a login for a user name that does not
    exist costs as much time as one with a wrong password.

Sessions
    A successful login opens a session: a random secret given to the caller once and stored only as its
    SHA-256. A session ends at its absolute expiry, after ``idle_minutes`` without use, at logout, or when
    its user's password is set. The command line keeps the secret in a file only its owner can read
    (``nomina login``); the web server in a cookie.

API tokens
    Made by a user for their own programs (``nomina token create``): a random secret shown once, stored as
    its SHA-256, acting with that user's roles, revocable by the user or an admin, optionally expiring.

Every call made with a session or token checks it again inside the call's own transaction (a revoked
token or ended session stops at once, even in a long-running server), and a disabled user's sessions
and tokens stop with them. Sessions and tokens belong to their user's record in the audit trail's record
digests (:mod:`nomina.digests`), so a session or token row written behind Nomina's back shows in
``nomina audit verify``.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, users
from .errors import Conflict, InvalidField, LockedOut, LoginFailed, NotFound, NotLoggedIn
from .records import Record, now
from .store import schema as db

__all__ = [
    "IDLE_MINUTES",
    "LOCKOUT",
    "MAX_FAILURES",
    "PASSWORD_MAX",
    "PASSWORD_MIN",
    "SESSION_HOURS",
    "Credential",
    "Identity",
    "LoginResult",
    "NewToken",
    "PasswordResult",
    "SessionInfo",
    "TokenInfo",
    "authenticate",
    "check",
    "check_password",
    "create_token",
    "end_session",
    "digest",
    "hash_password",
    "identity",
    "list_tokens",
    "login",
    "revoke_token",
    "set_password",
    "touch",
]

PASSWORD_MIN = 12
PASSWORD_MAX = 1024
#: Failed logins in a row after which a user is locked out, and for how long.
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
#: A command-line session's absolute and idle expiry (the web server chooses its own).
SESSION_HOURS = 8
IDLE_MINUTES = 30
#: A session's last use is written at most this often (its idle expiry is that much coarser).
TOUCH_EVERY = timedelta(seconds=60)

SESSION_PREFIX = "nms_"
TOKEN_PREFIX = "nmt_"
_KINDS = ("cli", "web")

_hasher = PasswordHasher()  # argon2id with the RFC 9106 low-memory parameters: about 0.3 s on 2 cores


@functools.cache
def _decoy(hasher: PasswordHasher) -> str:
    """A hash to verify against when the user name is unknown or has no password, so that such a login takes
    as long as a wrong password and its time does not tell which user names exist (made on first use)."""
    return hasher.hash(secrets.token_urlsafe(16))


def _now() -> datetime:
    """The clock of sessions, tokens and lockouts (records' time: UTC, to the second)."""
    return now()


def digest(secret: str) -> str:
    """How a session's or token's secret is stored: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat() + "Z"


# -- passwords ---------------------------------------------------------------------------------------------
def check_password(name: str, password: str) -> None:
    """Refuse (InvalidField, field ``password``) a password too short, too long or holding the user name."""
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        raise InvalidField(f"password: too short; use at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise InvalidField(f"password: too long; use at most {PASSWORD_MAX} characters")
    if "\0" in password:
        raise InvalidField("password: holds a NUL character")
    if name.casefold() in password.casefold():
        raise InvalidField("password: must not contain the user name")


def hash_password(name: str, password: str) -> str:
    """The argon2id hash of ``password`` for user ``name``, once the password passes :func:`check_password`."""
    check_password(name, password)
    return _hasher.hash(password)


@dataclass(frozen=True)
class Checked:
    """A password checked against a user's stored hash before the login's write transaction, so that the slow
    hash (about 0.3 s) does not hold the workspace's write lock; :func:`login` uses it while the stored hash
    is still the one it was checked against, and checks again otherwise."""

    stored: str | None
    matched: bool


def precheck(s: Session, name: str, password: str) -> Checked:
    """``name``'s stored hash, read in ``s`` (a read transaction), for :func:`verified` to check once the
    transaction has ended; an unknown user is checked against the decoy hash, at the same cost."""
    given = name.strip() if isinstance(name, str) else ""
    row = s.get(db.User, given) if given else None
    return Checked(None if row is None or not row.active else row.password_hash, False)


def verified(found: Checked, password: str) -> Checked:
    """``found`` with its password checked (the slow part: call it outside any transaction)."""
    return Checked(found.stored, _matches(found.stored, password))


def _matches(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _decoy(_hasher), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class PasswordResult(Record):
    """What setting a password ended: the user's other sessions and, for an admin's reset, their API tokens."""

    user: str
    sessions_ended: int
    tokens_revoked: int


def set_password(
    s: Session, name: str, password: str, actor: str, current: str | None = None, keep_session: int | None = None
) -> PasswordResult | LoginFailed:
    """Set user ``name``'s password, acting as ``actor``; or the refusal, to raise once the caller's
    transaction has committed the failure it counted.

    A user setting their own password gives the ``current`` one (unless they have none yet). A wrong one
    counts as a failed login: recorded (``login.fail``), and the fifth in a row locks the user out, after
    which their own changes are refused without looking at the password; someone who found a session left
    open cannot guess the password there for ever. An admin sets anyone else's password, which also ends a
    lockout. The user's sessions end, except ``keep_session`` (the one the change was made from). An
    admin's reset also revokes the user's API tokens: a reset takes an account back, and a token made by
    whoever held it must not outlive it.
    """
    acting = users.require_user(s, actor)
    row = users.user_row(s, name)
    reset = row.name != acting.name
    if reset:
        users.require_user(s, actor, "admin")
    elif row.password_hash is not None:
        now = _now()
        if row.locked_until is not None and row.locked_until > now:
            _matches(None, current or "")  # as long as a wrong password
            return _refuse_locked(s, row, acting.name, "password change", "current_password")
        if current is None or not _matches(row.password_hash, current):
            locked = _count_failure(s, row, now, "wrong current password", acting.name)
            if locked is not None:
                return _locked(row.name, locked, "password change", "current_password")
            return LoginFailed(
                "current password: wrong password", field="current_password", record=f"user {row.name!r}"
            )
    row.password_hash = hash_password(row.name, password)
    row.failed_logins = None
    row.locked_until = None
    ended = _end_sessions(s, row.name, "password set", keep=keep_session)
    s.flush()
    audit.record(s, acting.name, audit.PasswordSet(user=row.name, reset=reset, sessions_ended=ended))
    revoked = _revoke_tokens(s, row.name, acting.name) if reset else 0
    return PasswordResult(row.name, ended, revoked)


# -- logins --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionInfo(Record):
    """A login session as the rest of Nomina sees one (never its secret)."""

    id: int
    user: str
    kind: str
    created_at: datetime
    expires_at: datetime
    idle_minutes: int


@dataclass(frozen=True)
class LoginResult(Record):
    """What a login gives: the session, its secret (shown to the caller once, stored nowhere) or the refusal.

    A refused login is still written (the failure count and the audit event), so it is returned, for the
    caller to raise once the transaction is committed.
    """

    session: SessionInfo | None
    secret: str | None
    refused: LoginFailed | None = None


def login(
    s: Session,
    name: str,
    password: str,
    kind: str = "cli",
    hours: float = SESSION_HOURS,
    idle_minutes: int = IDLE_MINUTES,
    os_user: str | None = None,
    host: str | None = None,
    checked: Checked | None = None,
) -> LoginResult:
    """Check ``name``'s password and open a session, or count the failure (see the module's rules).
    ``checked``: the password already checked (:func:`precheck`, :func:`verified`) outside this transaction."""

    def matches(stored: str | None) -> bool:
        if checked is not None and checked.stored == stored:
            return checked.matched
        return _matches(stored, password)

    if kind not in _KINDS:
        raise InvalidField(f"kind: {kind!r} is not one of {', '.join(_KINDS)}")
    if not 0 < hours <= 24 * 30 or not 0 < idle_minutes <= 24 * 60:
        raise InvalidField("session: hours must be in (0, 720] and idle minutes in (0, 1440]")
    now = _now()
    given = name.strip() if isinstance(name, str) else ""
    row = s.get(db.User, given) if given else None
    refusal = LoginFailed("login refused: wrong user name or password", field="", record=None)
    if row is None or not row.active:
        if checked is None:
            _matches(None, password)  # the same time as a wrong password
        # Nothing of an unknown name is kept: people type their password into the name field by mistake.
        why = "no such user" if row is None else "user disabled"
        audit.record(s, "(anonymous)", audit.LoginRefused(why=why, user=None if row is None else row.name))
        return LoginResult(None, None, refusal)
    if row.locked_until is not None and row.locked_until > now:
        if checked is None:
            _matches(None, password)  # as long as any other refusal: a quick one would show the name is a user's
        return LoginResult(None, None, _refuse_locked(s, row, "(anonymous)"))
    if not matches(row.password_hash):
        why = "no password set" if row.password_hash is None else "wrong password"
        locked = _count_failure(s, row, now, why, "(anonymous)")
        return LoginResult(None, None, refusal if locked is None else _locked(row.name, locked))
    row.failed_logins = None
    row.locked_until = None
    _end_sessions(s, row.name, "expired", only_over=now)  # tidy: ended rows stay, as the trail names them
    secret = SESSION_PREFIX + secrets.token_urlsafe(32)
    session = db.LoginSession(
        user=row.name,
        secret_sha256=digest(secret),
        kind=kind,
        created_at=now,
        expires_at=now + timedelta(hours=hours),
        idle_minutes=idle_minutes,
        os_user=os_user,
        host=host,
    )
    s.add(session)
    s.flush()
    audit.record(
        s,
        row.name,
        audit.LoginSucceeded(user=row.name, session=session.id, kind=kind, expires_at=_iso(session.expires_at) or ""),
    )
    return LoginResult(_session_info(session), secret)


def _count_failure(s: Session, row: db.User, now: datetime, why: str, actor: str) -> datetime | None:
    """Count a failed login of ``row``'s user and record it (with the lockout it brings): when the user is
    now locked out, until when."""
    # A lockout that has ended starts the count again: its five failures are not held against the next.
    failures = 1 if row.locked_until is not None else (row.failed_logins or 0) + 1
    row.failed_logins = failures
    row.locked_until = now + LOCKOUT if failures >= MAX_FAILURES else None
    s.flush()
    audit.record(s, actor, audit.LoginRefused(why=why, user=row.name, failures=failures))
    if row.locked_until is None:
        return None
    audit.record(s, actor, audit.LoginLockedOut(user=row.name, failures=failures, until=_iso(row.locked_until) or ""))
    return row.locked_until


def _refuse_locked(s: Session, row: db.User, actor: str, what: str = "login", field: str = "") -> LockedOut:
    """Record that ``row``'s user, locked out, was refused (without the password being checked); the refusal."""
    audit.record(s, actor, audit.LoginRefused(why="locked out", user=row.name, failures=row.failed_logins or 0))
    assert row.locked_until is not None
    return _locked(row.name, row.locked_until, what, field)


def _locked(name: str, until: datetime, what: str = "login", field: str = "") -> LockedOut:
    return LockedOut(
        f"{what} refused: user {name!r} is locked out until {until:%Y-%m-%d %H:%M} UTC after {MAX_FAILURES} "
        "failed logins in a row; wait, or ask an admin to set a new password",
        field=field,
        record=f"user {name!r}",
    )


def _session_info(row: db.LoginSession) -> SessionInfo:
    return SessionInfo(row.id, row.user, row.kind, row.created_at, row.expires_at, row.idle_minutes)


def _end_sessions(s: Session, user: str, why: str, keep: int | None = None, only_over: datetime | None = None) -> int:
    """End ``user``'s open sessions (but ``keep``; only those past their expiry when ``only_over`` is a time)."""
    query = select(db.LoginSession).where(db.LoginSession.user == user, db.LoginSession.ended_at.is_(None))
    if only_over is not None:
        query = query.where(db.LoginSession.expires_at <= only_over)
    ended = 0
    for row in s.scalars(query):
        if row.id != keep:
            row.ended_at = _now()
            row.ended_why = why
            ended += 1
    return ended


# -- credentials ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Credential:
    """What a view of a workspace acts with: a session or a token, by id and by its secret's SHA-256."""

    kind: str  # "session" or "token"
    id: int
    user: str
    secret_sha256: str

    @property
    def via(self) -> str:
        """How the audit trail names it: ``session 4``, ``token 2``."""
        return f"{self.kind} {self.id}"


def authenticate(s: Session, secret: str) -> Credential:
    """The credential ``secret`` is, once it is known to be valid and its user active (NotLoggedIn if not)."""
    if not isinstance(secret, str) or not secret.startswith((SESSION_PREFIX, TOKEN_PREFIX)) or len(secret) > 200:
        raise NotLoggedIn("credentials: not a Nomina session or API token", field="")
    hashed = digest(secret)
    if secret.startswith(SESSION_PREFIX):
        session = s.scalar(select(db.LoginSession).where(db.LoginSession.secret_sha256 == hashed))
        if session is None:
            raise NotLoggedIn("session: unknown to this workspace (log in again)", field="")
        credential = Credential("session", session.id, session.user, hashed)
    else:
        token = s.scalar(select(db.ApiToken).where(db.ApiToken.secret_sha256 == hashed))
        if token is None:
            raise NotLoggedIn("API token: unknown to this workspace", field="")
        credential = Credential("token", token.id, token.user, hashed)
    check(s, credential)
    users.require_user(s, credential.user)
    return credential


def check(s: Session, credential: Credential) -> None:
    """Refuse (NotLoggedIn) a credential that has ended, expired or been revoked; every call made with one
    checks it here, in its own transaction, before it checks the user (active, roles) as every call does."""
    now = _now()
    if credential.kind == "session":
        row = s.get(db.LoginSession, credential.id)
        if row is None or row.secret_sha256 != credential.secret_sha256:
            raise NotLoggedIn(f"session {credential.id}: no longer exists (log in again)", field="")
        if row.ended_at is not None:
            raise NotLoggedIn(f"session {row.id}: ended ({row.ended_why}); log in again", field="")
        if row.expires_at <= now:
            raise NotLoggedIn(
                f"session {row.id}: expired at {row.expires_at:%Y-%m-%d %H:%M} UTC; log in again", field=""
            )
        used = s.get(db.CredentialUse, row.secret_sha256)
        last = max(row.created_at, used.last_used_at) if used is not None else row.created_at
        if last + timedelta(minutes=row.idle_minutes) <= now:
            raise NotLoggedIn(
                f"session {row.id}: ended after {row.idle_minutes} minutes without use; log in again", field=""
            )
        user = row.user
    else:
        token = s.get(db.ApiToken, credential.id)
        if token is None or token.secret_sha256 != credential.secret_sha256:
            raise NotLoggedIn(f"API token {credential.id}: no longer exists", field="")
        if token.revoked_at is not None:
            raise NotLoggedIn(f"API token {token.id}: revoked", field="")
        if token.expires_at is not None and token.expires_at <= now:
            raise NotLoggedIn(f"API token {token.id}: expired at {token.expires_at:%Y-%m-%d %H:%M} UTC", field="")
        user = token.user
    if user != credential.user:
        raise NotLoggedIn(f"{credential.via}: belongs to another user", field="")
    # The user by the exact name the row holds: user names typed by people are trimmed and normalised, so a
    # row written behind Nomina's back for "ben " must not act as ben, even with a user row "ben " beside it
    # (written behind Nomina's back too: Nomina makes no such name).
    if not users.is_user_name(user) or s.get(db.User, user) is None:
        raise NotLoggedIn(f"{credential.via}: belongs to no user of this workspace", field="")


def touch(s: Session, credential: Credential) -> None:
    """Note a session's use (for its idle expiry), at most once per :data:`TOUCH_EVERY`."""
    if credential.kind != "session":
        return
    now = _now()
    used = s.get(db.CredentialUse, credential.secret_sha256)
    if used is None:
        s.add(db.CredentialUse(secret_sha256=credential.secret_sha256, last_used_at=now))
    elif used.last_used_at + TOUCH_EVERY <= now:
        used.last_used_at = now


def end_session(s: Session, credential: Credential, why: str = "logout") -> bool:
    """End the session ``credential`` (a logout); whether it was still open."""
    if credential.kind != "session":
        raise InvalidField("credentials: an API token is revoked, not logged out", field="")
    row = s.get(db.LoginSession, credential.id)
    if row is None or row.secret_sha256 != credential.secret_sha256 or row.ended_at is not None:
        return False
    row.ended_at = _now()
    row.ended_why = why
    s.flush()
    audit.record(s, row.user, audit.SessionEnded(user=row.user, session=row.id, why=why))
    return True


@dataclass(frozen=True)
class Identity(Record):
    """Who a view acts as: the user, their roles, and the session or token they proved it with."""

    user: str
    roles: tuple[str, ...]
    via: str
    session: SessionInfo | None = None
    token: TokenInfo | None = None


def identity(s: Session, user: users.User, credential: Credential | None) -> Identity:
    """The :class:`Identity` of ``user`` acting with ``credential`` (None: named by a program)."""
    if credential is None:
        return Identity(user.name, user.roles, "library")
    if credential.kind == "session":
        session = s.get(db.LoginSession, credential.id)
        return Identity(
            user.name, user.roles, credential.via, session=None if session is None else _session_info(session)
        )
    token = s.get(db.ApiToken, credential.id)
    return Identity(user.name, user.roles, credential.via, token=None if token is None else _token_info(token))


# -- API tokens -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenInfo(Record):
    """An API token as the rest of Nomina sees one (never its secret)."""

    id: int
    user: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


@dataclass(frozen=True)
class NewToken(Record):
    """A token just made: its secret is here, once, and nowhere else."""

    token: TokenInfo
    secret: str


def _token_info(row: db.ApiToken) -> TokenInfo:
    return TokenInfo(row.id, row.user, row.label, row.created_at, row.expires_at, row.revoked_at, row.revoked_by)


def create_token(s: Session, actor: str, label: str, expires_days: int | None = None) -> NewToken:
    """A new API token for ``actor`` themself, labelled (what program holds it), optionally expiring."""
    user = users.require_user(s, actor)
    label = " ".join(str(label or "").split())
    if not label:
        why = "required"
    elif len(label) > 100:
        why = f"{len(label)} characters"
    else:
        why = "" if label.isprintable() else "not printable"
    if why:
        raise InvalidField(f"label: {why}: a short printable name of what will use the token (at most 100 characters)")
    if expires_days is not None and not 0 < expires_days <= 3660:
        raise InvalidField(f"expires_days: {expires_days!r} must be between 1 and 3660")
    now = _now()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = db.ApiToken(
        user=user.name,
        secret_sha256=digest(secret),
        label=label,
        created_at=now,
        expires_at=None if expires_days is None else now + timedelta(days=expires_days),
    )
    s.add(row)
    s.flush()
    audit.record(
        s, user.name, audit.TokenCreated(user=user.name, token=row.id, label=label, expires_at=_iso(row.expires_at))
    )
    return NewToken(_token_info(row), secret)


def list_tokens(s: Session, actor: str, everyone: bool = False) -> list[TokenInfo]:
    """``actor``'s tokens, or every user's when ``everyone`` (an admin only), oldest first."""
    user = users.require_user(s, actor, "admin" if everyone else None)
    query = select(db.ApiToken).order_by(db.ApiToken.id)
    if not everyone:
        query = query.where(db.ApiToken.user == user.name)
    return [_token_info(row) for row in s.scalars(query)]


def _revoke(s: Session, row: db.ApiToken, actor: str) -> None:
    row.revoked_at = _now()
    row.revoked_by = actor
    s.flush()
    audit.record(s, actor, audit.TokenRevoked(user=row.user, token=row.id))


def _revoke_tokens(s: Session, user: str, actor: str) -> int:
    """Revoke every token of ``user`` still in force (expired ones included: nothing is left to reuse)."""
    query = select(db.ApiToken).where(db.ApiToken.user == user, db.ApiToken.revoked_at.is_(None))
    rows = list(s.scalars(query.order_by(db.ApiToken.id)))
    for row in rows:
        _revoke(s, row, actor)
    return len(rows)


def revoke_token(s: Session, actor: str, token_id: int) -> TokenInfo:
    """Revoke token ``token_id``: the actor's own, or anyone's for an admin."""
    user = users.require_user(s, actor)
    row = s.get(db.ApiToken, token_id) if isinstance(token_id, int) and 0 < token_id < 2**63 else None
    if row is None or (row.user != user.name and not user.has_role("admin")):
        raise NotFound(f"token {token_id}: no such token of yours", record=f"token {token_id}")
    if row.revoked_at is not None:
        raise Conflict(f"token {row.id}: already revoked", record=f"token {row.id}")
    _revoke(s, row, user.name)
    return _token_info(row)
