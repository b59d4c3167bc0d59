"""The workspace: references, cases, photos, faces and searches in one folder, for any number of users.

``Workspace`` is the Python API and the facade over the concept modules (:mod:`nomina.references`,
:mod:`nomina.cases`, :mod:`nomina.enrolment`, :mod:`nomina.search`, :mod:`nomina.workflow`,
:mod:`nomina.users`, :mod:`nomina.audit`, :mod:`nomina.erasure`); the command line and the web layer are
thin skins over it.

One open workspace serves many users at once. What is costly to load (the database engine, the face
model, the gallery index, caches) belongs to the open workspace and is shared; :meth:`Workspace.as_user`
returns a light view acting as another user, sharing all of it. Every call acts as its view's user,
checked against the workspace's users and roles in the same transaction as the call's changes; there is
no shared "current user" to switch, so threads acting as different users never see each other's.

Every change is all or nothing: photos are analysed before anything is written, the database changes in
one write transaction whose checks see the state it changes (writes are serialised, see
:class:`nomina.store.Database`), and photo files written for a change that fails are removed again, so a
refused operation leaves the workspace exactly as it was.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from . import (
    audit,
    auth,
    casefile,
    cases,
    checkpoints,
    enrolment,
    erasure,
    indexing,
    references,
    roles,
    search,
    users,
    workflow,
)
from ._version import __version__
from .calibration import Calibration
from .casefile import ExportWritten, ReportWritten
from .cases import CaseRecord, CaseSummary
from .digests import record_key
from .enrolment import PhotoSink
from .errors import (
    Busy,
    Conflict,
    FaceNumberInvalid,
    InvalidField,
    LoginFailed,
    ModelMismatch,
    NoFaceFound,
    NominaError,
    NotAWorkspace,
    NotFound,
    NotLoggedIn,
    PermissionDenied,
    WorkspaceError,
)
from .errors import reason as failure_reason
from .faces import FaceAnalyzer
from .files import private_folder, remove_stale_temporaries, restrict
from .imaging import decoded, read_photo, sha256_hex
from .importing import ImportReport, RowFailure, read_manifest, row_inputs
from .index import Gallery
from .index import Pair as DuplicatePair
from .index import remove_files as remove_index_files
from .indexing import GalleryKeeper
from .models import MODELS, FaceModel, load_model
from .parallel import AnalyzerPool, ordered_map
from .quality import gate, stored
from .records import (
    CaseFields,
    PhotoInput,
    Provenance,
    Record,
    ReferenceFields,
    _clean_text,
    _record_id,
    check_eyes,
    now,
    parse_date,
    validate_update,
    whole_number,
)
from .records import shown as shown_id
from .references import ReferenceRecord, ReferenceSummary
from .report import write_report
from .search import CaseFacts, Ranked, RefFacts, SearchResult, SearchSummary, calibration_summary, rank
from .settings import STORED_PREFIX, TOP_MAX, WORKSPACE_SETTINGS, Settings, load_settings, os_user, workspace_setting
from .store import DB_NAME, DB_URL_NAME, Database, PhotoStore, connect, is_workspace, server, upgrade
from .store import schema as db
from .store.database import current_revision, head_revision, known_revision
from .store.database import size as database_size

__all__ = ["EXPORT_NOTICE", "CalibrationRecord", "StoredCalibration", "Workspace", "WorkspaceSummary"]

#: What every export of identifications says about itself.
EXPORT_NOTICE = (
    "Verified identifications from face comparison: each was proposed by an examiner and verified by a different "
    "person. They are leads to be confirmed by other means (DNA, dental records, fingerprints, personal effects) "
    "before a family is informed."
)

Progress = Callable[[int, int], None]
# Manifest rows written per transaction; a row refused for its contents (name differs, photo already
# enrolled) is refused before anything of it is written, so it costs only itself.
T = TypeVar("T")
_IMPORT_BATCH = 32
# Bytes of photo files an import keeps waiting for the writer beyond a few per worker (see ordered_map).
_IMPORT_AHEAD_BYTES = 256 * 1024 * 1024

#: Other references a new reference's faces are compared with for the duplicate warning.
_DUPLICATES_SHOWN = 5
# What a blind viewer sees in place of conclusions while an identification awaits verification.
_BLIND = "until the proposed identification is verified"
# The events of a case whose actor and details a blind viewer does not see: the examiners' conclusions, every
# identification of the case (earlier ones too: their verifiers' conclusions, their withdrawals' reasons) and
# the reports, which only the proposer can write while the identification awaits verification.
_BLIND_ACTIONS = frozenset(
    e.action
    for e in (
        audit.ConclusionRecorded,
        audit.IdentificationProposed,
        audit.IdentificationVerified,
        audit.IdentificationWithdrawn,
        audit.ReportCreated,
    )
)


@dataclass(frozen=True)
class WorkspaceSummary(Record):
    path: str
    model: dict[str, Any]
    created_at: str
    references: int
    reference_photos: int
    cases: int
    faces: int
    photos_stored: int
    searches: int


@dataclass(frozen=True)
class CalibrationRecord(Record):
    """A calibration as results name it: its id, method and a description of the data it was fitted on."""

    id: int
    method: str
    description: str


@dataclass(frozen=True)
class StoredCalibration(Record):
    id: int
    method: str
    description: str
    created_at: datetime
    created_by: str
    calibration: dict[str, Any]


class _Shared:
    """What every user's view of one open workspace shares: database, photo store, model, index, caches."""

    def __init__(self, path: Path, database: Database, settings: Settings, model: FaceModel | None) -> None:
        self.path = path
        self.db = database
        self.settings = settings
        self.photos = PhotoStore(path / "photos")
        self.model = model
        self.analyzers: AnalyzerPool | None = None
        self.keeper: GalleryKeeper | None = None
        self.identity: dict[str, Any] | None = None
        self.model_lock = threading.Lock()
        self.index_lock = threading.Lock()


class Workspace:
    """A Nomina workspace folder (``nomina.db``, ``photos/``, derived ``index/`` files), acting as one user.

    Open one with :meth:`create` or :meth:`open`; :meth:`as_user` gives views acting as other users that
    share everything loaded. Pass ``model`` to share a loaded model between workspaces (it must be the
    model the workspace was built with). Safe to use from many threads at once.
    """

    def __init__(self, shared: _Shared, user: str | None, credential: auth.Credential | None = None) -> None:
        self._shared = shared
        self._user = user or None
        self._credential = credential
        #: What :meth:`open` could not finish of an interrupted erasure, one line each (maintain finishes it).
        self.opening_warnings: list[str] = []

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: Path | str,
        settings: Settings | None = None,
        model: FaceModel | None = None,
        config: dict[str, Any] | None = None,
        admin: str | None = None,
        admin_password: str | None = None,
        database: str | None = None,
    ) -> Workspace:
        """Make a new workspace in ``path`` (created if needed) for the settings' model.

        ``database`` (default: the ``database`` setting) is empty for SQLite, a file in the folder, or a
        ``postgresql://`` URL (see :mod:`nomina.store.server`): the folder then keeps the photo store, the
        index files and the file naming the database.

        ``config`` gives workspace settings (``nomina config``) other than their defaults. ``admin``
        names the first user, with the admin and examiner roles and ``admin_password`` (needed to log in);
        the workspace then acts as that user. Without it the workspace has no users until ``add_user``
        adds the first, an admin.
        """
        settings = settings or load_settings()
        chosen = {s.name: s.default for s in WORKSPACE_SETTINGS}
        chosen.update({k: workspace_setting(k, v) for k, v in (config or {}).items()})
        path = Path(path)
        url = settings.database if database is None else database
        if is_workspace(path):
            raise Conflict(f"{path}: already a Nomina workspace", record=str(path))
        if path.exists() and not path.is_dir():
            raise WorkspaceError(f"{path}: exists and is not a folder")
        model = model or load_model(settings.model, settings.model_dir)
        created_dir = not path.exists()
        try:
            private_folder(path)  # the folder and all in it are the owner's alone, whatever the umask
        except (OSError, ValueError) as exc:  # a file on the way, no permission, a NUL in the name
            raise WorkspaceError(f"{shown_id(str(path))}: the folder cannot be made ({_why(exc)})") from None
        prepared: server.Prepared | None = None
        try:
            if url:
                prepared = server.prepare(url, path)
                engine = connect(prepared.url)
                _write_private(path / DB_URL_NAME, prepared.url + "\n")
            else:
                engine = connect(path / DB_NAME)
            upgrade(engine)
            opened = Database(engine)
            with opened.write() as s:
                for key, value in {
                    "model": json.dumps(model.identity, sort_keys=True),
                    "created_at": now().isoformat(),
                    "created_by": os_user(),
                    "nomina_version": __version__,
                    "gallery_generation": uuid.uuid4().hex,
                    **{STORED_PREFIX + k: json.dumps(v) for k, v in chosen.items()},
                }.items():
                    s.add(db.WorkspaceInfo(key=key, value=value))
                if admin is not None:
                    users.add_user(s, admin, ("admin", "examiner"), None, admin_password)
                # the values the workspace starts with, by whoever made it, so that audit verify can tell them
                # from a value written behind Nomina's back
                for name, value in chosen.items():
                    audit.record(s, os_user(), audit.SettingChanged(setting=name, old=None, new=value, initial=True))
            private_folder(path / "photos")
        except BaseException:
            if url:
                engine_of = locals().get("engine")
                if engine_of is not None:
                    engine_of.dispose()
                if prepared is not None and prepared.created:
                    server.drop_database(prepared.url)
            for leftover in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", DB_URL_NAME):
                (path / leftover).unlink(missing_ok=True)
            if created_dir:
                shutil.rmtree(path, ignore_errors=True)
            raise
        return cls(_Shared(path, opened, settings, model), admin)

    @classmethod
    def attach(cls, path: Path | str, database: str, settings: Settings | None = None) -> Workspace:
        """Make ``path`` (created if needed) a folder of the workspace that already lives in the PostgreSQL
        database ``database`` (another server of a team), and open it. Its ``photos`` must be the same
        shared folder as the other servers' (a mount or a link; docs/deploy.md); its index is its own."""
        path = Path(path)
        if is_workspace(path):
            raise Conflict(f"{path}: already a Nomina workspace", record=str(path))
        if not server.is_server_url(database):
            raise InvalidField(f"database: {server.shown(database)} is not a postgresql:// URL", field="database")
        created_dir = not path.exists()
        private_folder(path)
        _write_private(path / DB_URL_NAME, database + "\n")
        try:
            return cls.open(path, settings)
        except BaseException:
            (path / DB_URL_NAME).unlink(missing_ok=True)
            if created_dir:
                shutil.rmtree(path, ignore_errors=True)
            raise

    @classmethod
    def open(
        cls,
        path: Path | str,
        settings: Settings | None = None,
        model: FaceModel | None = None,
        user: str | None = None,
    ) -> Workspace:
        """Open an existing workspace, acting as ``user`` (a program that names its user; people log in:
        :meth:`login`, :meth:`with_credential`)."""
        settings = settings or load_settings()
        path = Path(path)
        if not path.is_dir():
            raise NotAWorkspace(f"{path}: no such workspace folder", record=str(path))
        url = _database_url(path)
        if url is None and not (path / DB_NAME).is_file():
            raise NotAWorkspace(f"{path}: not a Nomina workspace (no {DB_NAME})", record=str(path))
        for folder in (path / "photos", path / "index"):
            if folder.exists() and not folder.is_dir():  # checked first: a command must not commit, then fail
                raise WorkspaceError(
                    f"{folder}: not a folder; the workspace's {folder.name} folder was replaced by a file",
                    record=str(path),
                )
        parts = (path, path / DB_NAME, path / (DB_NAME + "-wal"), path / (DB_NAME + "-shm"), path / "photos")
        read_only = next((p for p in parts if p.exists() and not os.access(p, os.W_OK)), None)
        if read_only is not None:  # every command writes: each, a reading too, is recorded in the audit trail
            raise WorkspaceError(
                f"{read_only}: read-only; Nomina must be able to write to its workspace", record=str(path)
            )
        restrict(path)  # a folder made by an older version or under a lax umask becomes the owner's alone
        restrict(path / DB_URL_NAME)  # it may hold a password
        engine = connect(path / DB_NAME if url is None else url)  # and so do the database files
        named = str(path / DB_NAME) if url is None else server.shown(url)
        try:
            rev = current_revision(engine)
        except OperationalError as exc:
            engine.dispose()
            if url is not None:  # the server refused or could not be reached: say so, not "not a database"
                raise server.unreachable(url, exc) from None
            raise NotAWorkspace(f"{named}: not a Nomina database") from None
        except Exception:  # noqa: BLE001 - any failure here means the file is not our database
            engine.dispose()
            raise NotAWorkspace(f"{named}: not a Nomina database") from None
        if rev is None:
            engine.dispose()
            raise NotAWorkspace(f"{named}: not a Nomina database (no schema version)")
        if not known_revision(rev):
            engine.dispose()
            raise NotAWorkspace(
                f"{named}: made by a newer version of Nomina (schema {rev}); upgrade Nomina to open it",
                record=str(path),
            )
        if rev != head_revision():
            try:
                upgrade(engine)
            except DBAPIError as exc:  # tables that do not match the version recorded (alembic_version edited)
                engine.dispose()
                raise WorkspaceError(
                    f"{named}: cannot bring the database from schema {rev} to {head_revision()} "
                    f"({failure_reason(exc.orig or exc, 120)}): its tables do not match the schema version it records, "
                    "changed outside Nomina; restore the workspace from a backup",
                    record=str(path),
                ) from None
        workspace = cls(_Shared(path, Database(engine), settings, model), user)
        with workspace._shared.db.read() as s:
            interrupted = erasure.pending(s)
        if interrupted:  # an erasure's process stopped between its commit and its files: finish it now
            try:
                workspace.opening_warnings = workspace._finish_erasure()
            except Busy:
                pass  # another process is writing; the next opening or maintenance finishes it
        return workspace

    def as_user(self, name: str) -> Workspace:
        """A view of this open workspace acting as user ``name``: it shares the database, model, index and
        caches, and costs nothing to make. The user must exist and be active; each call checks their
        role again, in its own transaction.

        For programs that know their user by other means (a service acting for its own account, tests):
        no password is asked, and the audit trail marks what such a view does as done ``via`` the library.
        People prove who they are with :meth:`login` or a token (:meth:`with_credential`).
        """
        with self._shared.db.read() as s:
            user = users.require_user(s, name)
        return Workspace(self._shared, user.name)

    @property
    def user(self) -> str | None:
        """The Nomina user every call of this view acts as."""
        return self._user

    @property
    def via(self) -> str:
        """How this view's user proved who they are, as the audit trail says: ``session N``, ``token N``,
        or ``library`` (named by the program, see :meth:`as_user`)."""
        return "library" if self._credential is None else self._credential.via

    # -- logins, sessions, tokens (nomina.auth) ------------------------------------------------------
    def login(
        self,
        name: str,
        password: str,
        kind: str = "cli",
        hours: float = auth.SESSION_HOURS,
        idle_minutes: int = auth.IDLE_MINUTES,
    ) -> tuple[auth.LoginResult, Workspace]:
        """Check ``name``'s password and open a session: the result (with the session's secret, to keep for
        :meth:`with_credential`) and a view acting with the session. A refusal is recorded (failure count,
        lockout, audit event) and then raised: LoginFailed, or LockedOut."""
        from .settings import os_user

        with self._shared.db.read() as s:
            found = auth.precheck(s, name, password)
        checked = auth.verified(found, password)  # the slow hash, holding no lock: other users go on meanwhile
        with self._shared.db.write() as s:
            s.info[audit.VIA] = "password"
            result = auth.login(s, name, password, kind, hours, idle_minutes, os_user(), audit.host(), checked)
        if result.refused is not None:
            raise result.refused
        assert result.session is not None and result.secret is not None
        credential = auth.Credential("session", result.session.id, result.session.user, auth.digest(result.secret))
        return result, Workspace(self._shared, result.session.user, credential)

    def with_credential(self, secret: str) -> Workspace:
        """A view acting as the user whose session or API token ``secret`` is; NotLoggedIn when it is
        unknown, ended, expired or revoked. Each call of the view that changes anything (reading records
        does: it is audited) also notes the session's use, for its idle expiry, in the call's own
        transaction: a refused call leaves nothing behind."""
        with self._shared.db.read() as s:
            credential = auth.authenticate(s, secret)
        return Workspace(self._shared, credential.user, credential)

    def logout(self) -> bool:
        """End this view's session (recorded); whether it was still open. Later calls of the view fail."""
        if self._credential is None or self._credential.kind != "session":
            raise InvalidField("credentials: only a session logs out (tokens are revoked)", field="")
        with self._shared.db.write() as s:
            s.info[audit.VIA] = self.via
            return auth.end_session(s, self._credential)

    def whoami(self) -> auth.Identity:
        """The acting user, their roles, and the session or token they act with."""
        with self._reading() as s:
            actor = self._actor(s)
            return auth.identity(s, users.require_user(s, actor), self._credential)

    def set_password(self, name: str, password: str, current: str | None = None) -> auth.PasswordResult:
        """Set user ``name``'s password: one's own (give ``current``) or, for an admin, anyone's. Ends the
        user's sessions (but the one this view acts with); an admin's reset also revokes their API tokens.
        A wrong ``current`` password is recorded and counted as a failed login (the lockout applies), then
        raised: LoginFailed, or LockedOut."""
        keep = self._credential.id if self._credential is not None and self._credential.kind == "session" else None
        with self._acting() as (s, actor):
            result = auth.set_password(s, name, password, actor, current, keep)
        if isinstance(result, LoginFailed):
            raise result
        return result

    def create_token(self, label: str, expires_days: int | None = None) -> auth.NewToken:
        """A new API token for the acting user (its secret is in the result, and nowhere else)."""
        with self._acting() as (s, actor):
            return auth.create_token(s, actor, label, expires_days)

    def tokens(self, everyone: bool = False) -> list[auth.TokenInfo]:
        """The acting user's API tokens, or every user's (an admin only)."""
        with self._reading() as s:
            return auth.list_tokens(s, self._actor(s), everyone)

    def revoke_token(self, token_id: int) -> auth.TokenInfo:
        """Revoke one of the acting user's tokens (an admin: anyone's)."""
        with self._acting() as (s, actor):
            return auth.revoke_token(s, actor, token_id)

    @property
    def path(self) -> Path:
        return self._shared.path

    @property
    def settings(self) -> Settings:
        return self._shared.settings

    @property
    def photos(self) -> PhotoStore:
        return self._shared.photos

    def close(self) -> None:
        """Close the open workspace, for every view of it."""
        keeper = self._shared.keeper
        if keeper is not None:
            keeper.close()
        self._shared.db.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- model --------------------------------------------------------------------------------------
    @property
    def model_identity(self) -> dict[str, Any]:
        """The model the workspace was built with: name and SHA-256 of each file (never changes)."""
        shared = self._shared
        if shared.identity is None:
            with shared.db.read() as s:
                shared.identity = _model_identity(s)
        return dict(shared.identity)

    @property
    def model(self) -> FaceModel:
        """The face model, loaded on first use and checked against the workspace's record."""
        recorded = self.model_identity
        shared = self._shared
        with shared.model_lock:
            if shared.model is None:
                shared.model = load_model(str(recorded["name"]), self.settings.model_dir)
            model = shared.model
        if model.identity != recorded:
            raise ModelMismatch(
                f"{self.path}: workspace built with model {_describe_identity(recorded)}, "
                f"but the model in use is {_describe_identity(model.identity)}; "
                "embeddings of different models cannot be compared"
            )
        return model

    def analyzer(self) -> FaceAnalyzer:
        """A face analyser for the calling thread (OpenCV networks must not be shared by threads)."""
        model = self.model
        shared = self._shared
        with shared.model_lock:
            if shared.analyzers is None or shared.analyzers.model is not model:
                shared.analyzers = AnalyzerPool(model, self.settings)
            pool = shared.analyzers
        return pool.get()

    # -- acting users and transactions ---------------------------------------------------------------
    def _actor(self, s: Session, action: str | None = None, writing: bool = False) -> str:
        """The acting user's name once they are known to be active and allowed ``action`` (of
        :data:`nomina.roles.ACTIONS`), and their session or token to be still valid (its use noted when
        ``writing``)."""
        self._credentials(s, writing)
        if not users.has_users(s):
            raise PermissionDenied(f"{self.path}: no users yet; add the first user, an admin", field="user")
        if self._user is None:
            needs = f" (this needs {roles.needs(action)})" if action else ""
            raise NotLoggedIn(f"not logged in: every action is done by a user who has logged in{needs}", field="user")
        return users.require_user(s, self._user, action=action).name

    def _credentials(self, s: Session, writing: bool = False) -> None:
        """Check this view's session or token (if it has one) in ``s`` and, in a write transaction
        (``writing``), note its use; name it for the audit trail."""
        if self._credential is not None:
            auth.check(s, self._credential)
            if writing:
                auth.touch(s, self._credential)
        s.info[audit.VIA] = self.via

    def _check(self, action: str | None = None) -> str:
        """Check the acting user before slow work (photo analysis); the change checks again."""
        with self._reading() as s:
            return self._actor(s, action)

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        """A read of one snapshot of the database (nothing written, not even to the audit trail)."""
        with self._shared.db.read() as s:
            yield s

    @contextmanager
    def _acting(self, action: str | None = None) -> Iterator[tuple[Session, str]]:
        """A write transaction by the acting user, who must be allowed ``action`` (checked inside it)."""
        with self._shared.db.write() as s:
            yield s, self._actor(s, action, writing=True)

    def _viewed(self, action: str, read: Callable[[Session, str], T], event: Callable[[T], audit.Event]) -> T:
        """What ``read`` finds in one snapshot (holding no write lock, so readers do not wait on each other),
        returned only once its viewing (``event``) is recorded in a short write transaction that checks the
        user again: a user refused in between gets nothing."""
        with self._reading() as s:
            found = read(s, self._actor(s, action))
        with self._acting(action) as (s, actor):
            seen = event(found)
            _still_there(s, seen)
            audit.record(s, actor, seen)
        return found

    @contextmanager
    def _enrolling(self, action: str) -> Iterator[tuple[Session, str, PhotoSink]]:
        """:meth:`_acting` that also writes photo files; those it wrote are removed again if it fails."""
        sink = PhotoSink(self.photos, self.model.name)
        try:
            with self._acting(action) as (s, actor):
                yield s, actor, sink
        except BaseException:
            if sink.new_files:
                self._remove_unrecorded(sink.new_files)
            raise

    def _remove_unrecorded(self, shas: list[str]) -> None:
        """Remove photo files a failed transaction wrote, holding the write lock and sparing any that a
        record names by now (another enrolment of the same bytes may have committed in between). Best
        effort: what stays is an orphan that maintenance removes."""
        try:
            with self._shared.db.write() as s:
                for sha in shas:
                    if s.get(db.Photo, sha) is None:
                        self.photos.remove(sha)
        except NominaError:
            pass

    # -- users --------------------------------------------------------------------------------------------
    def add_user(self, name: str, roles: Iterable[str] | str, password: str | None = None) -> users.User:
        """Add a user, with a password to log in with (the acting user must be an admin, except for the very
        first user, an admin). Without ``password`` the user cannot log in until one is set."""
        with self._shared.db.write() as s:
            self._credentials(s, writing=True)
            return users.add_user(s, name, roles, self._user, password)

    def disable_user(self, name: str) -> users.User:
        """Disable a user (by an admin); users are never deleted, so the audit trail keeps meaning. Their
        sessions and tokens stop working at once."""
        with self._shared.db.write() as s:
            self._credentials(s, writing=True)
            return users.disable_user(s, name, self._user)

    def set_roles(self, name: str, new_roles: Iterable[str] | str) -> users.User:
        """Give a user exactly ``new_roles`` (by an admin); the last active admin keeps the admin role."""
        with self._shared.db.write() as s:
            self._credentials(s, writing=True)
            return users.set_roles(s, name, new_roles, self._user)

    def preferences(self) -> dict[str, bool]:
        """The acting user's own display settings (:data:`nomina.users.PREFERENCES`)."""
        with self._reading() as s:
            return users.preferences(s, self._actor(s, "account"))

    def set_preference(self, name: str, value: bool) -> dict[str, bool]:
        """Change one of the acting user's own display settings; the change is recorded."""
        with self._acting("account") as (s, actor):
            return users.set_preference(s, actor, name, value)

    def users(self) -> list[users.User]:
        """Every user, active or not."""
        with self._reading() as s:
            self._actor(s, "user.read")
            return users.list_users(s)

    # -- audit trail --------------------------------------------------------------------------------------
    def audit_verify(self) -> audit.Verification:
        """Check the whole hash chain and every record against it (in one snapshot, without holding up
        writers), and the gallery index's snapshot against the database; an intact check is itself recorded."""
        with self._reading() as s:
            self._actor(s, "audit.read")
            result = audit.verify(s)
            log = indexing.log_disagreements(s)
            files = self._files_disagreements(s)
        if files:  # an erasure committed after the snapshot may have removed files meanwhile: look again
            with self._reading() as s:
                files = self._files_disagreements(s)
        if log or files:
            result = dataclasses.replace(result, ok=False, records=[*result.records, *log, *files])
        if result.ok:
            with self._acting("audit.read") as (s, actor):
                audit.record(s, actor, audit.AuditVerified(ok=True, events=result.events, head=result.head))
        return result

    def _files_disagreements(self, s: Session) -> list[str]:
        """How the files outside the database disagree with what ``s`` sees: the gallery index's snapshot
        (:meth:`GalleryKeeper.disagreements`), and photo files missing from the store (the evidence a
        record names, removed behind Nomina's back: a file's bytes are not read)."""
        missing = [
            sha for sha in s.scalars(select(db.Photo.sha256).order_by(db.Photo.sha256)) if not self.photos.has(sha)
        ]
        found = self._keeper().disagreements(s)
        if missing:
            shown = ", ".join(sha[:12] for sha in missing[:5]) + (" ..." if len(missing) > 5 else "")
            found.append(
                f"photo store: {len(missing)} photo file(s) missing (photo {shown}): removed behind Nomina's back; "
                "restore them from a backup"
            )
        return found

    def audit_log(
        self,
        case_id: str | None = None,
        reference_id: str | None = None,
        limit: int | None = None,
        user: str | None = None,
        before: int | None = None,
    ) -> list[audit.Entry]:
        """The audit trail (oldest first), of one case, reference or acting user when given, before event
        ``before`` when given (the newest ``limit``); the reading is recorded."""
        # ids as ids are checked: the filters are recorded in the trail, which keeps whatever it is given
        case_id = None if case_id is None else _record_id(case_id, "case_id")
        reference_id = None if reference_id is None else _record_id(reference_id, "reference_id")
        user = None if user is None else _record_id(user, "user")
        with self._acting("audit.read") as (s, actor):
            blind, proposed = workflow.blind_records(s, actor)
            # A list of one user's events leaves the hidden ones out, so its limit counts what is left: a page
            # cut short (or a `before` answering nothing) would name the actor of the event left out.
            leaving_out = user is not None and bool(blind)

            def hidden(e: audit.Entry) -> bool:
                # on a blind case, whoever acted next to the hidden events (a search, views of the case and
                # its search just before and after a proposal) would name the proposer
                if e.case_id is None and e.reference_id in proposed:  # who looked at the reference proposed
                    return e.actor != actor
                return e.case_id in blind and (e.action in _BLIND_ACTIONS or e.actor != actor)

            def page(limit: int | None, before: int | None) -> list[audit.Entry]:
                return audit.entries(
                    s, case_id=case_id, reference_id=reference_id, limit=limit, actor=user, before=before
                )

            if not leaving_out:
                shown = [_hidden(e) if hidden(e) else e for e in page(limit, before)]
            elif limit is None:
                shown = [e for e in page(None, before) if not hidden(e)]
            else:
                # An event shown hidden in a list of one user's events would name its actor all the same: read
                # further back, a batch at a time, until ``limit`` events are left once the hidden are out.
                shown, cursor, batch = [], before, max(2 * limit, 200)
                while len(shown) < limit:
                    found = page(batch, cursor)
                    shown = [e for e in found if not hidden(e)] + shown
                    if len(found) < batch:
                        break
                    cursor = found[0].seq
                shown = shown[-limit:] if limit > 0 else []
            audit.record(s, actor, audit.AuditViewed(count=len(shown), case_id=case_id, reference_id=reference_id))
        return shown

    def audit_head(self) -> str:
        """The hash of the audit trail's newest event: keep it elsewhere to show the trail later unchanged."""
        with self._reading() as s:
            return audit.head(s).hash

    def audit_checkpoint(self, private_key: Path | str, out: Path | str) -> checkpoints.CheckpointFile:
        """Sign the trail's head and every record's digest with an Ed25519 private key (a PEM file the
        authority keeps outside the workspace) into ``out`` (see :mod:`nomina.checkpoints`); refused on a
        trail that does not verify. The writing is recorded."""
        key = checkpoints.private_key(private_key)
        path = Path(out)
        with self._reading() as s:
            data, body = checkpoints.make(s, key, self._actor(s, "audit.read"))
        sha = casefile.write_export(data, path)
        fingerprint, seq = str(body["public_key"]), int(body["head"]["seq"])
        try:
            with self._acting("audit.read") as (s, actor):
                audit.record(s, actor, audit.CheckpointWritten(seq=seq, sha256=sha, public_key=fingerprint))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return checkpoints.CheckpointFile(str(path), seq, body["head"]["hash"], len(body["records"]), sha, fingerprint)

    def audit_verify_checkpoint(self, checkpoint: Path | str, public_key: Path | str) -> checkpoints.CheckpointCheck:
        """Whether the trail still leads to a signed checkpoint file: refused (InvalidField) when its signature
        does not verify with ``public_key``; otherwise what :func:`nomina.checkpoints.check` finds."""
        found = checkpoints.read(checkpoint, checkpoints.public_key(public_key))
        with self._reading() as s:
            self._actor(s, "audit.read")
            return checkpoints.check(s, found)

    # -- workspace settings ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The workspace settings (``nomina config``): stored values, defaults for any not stored."""
        with self._reading() as s:
            return _config(s)

    def set_config(self, name: str, value: Any) -> dict[str, Any]:
        """Change one workspace setting (by an admin); returns every setting."""
        checked = workspace_setting(name, value)
        with self._acting("workspace.manage") as (s, actor):
            old = _config(s, being_set=name)[name]
            row = s.get(db.WorkspaceInfo, STORED_PREFIX + name)
            if row is None:
                s.add(db.WorkspaceInfo(key=STORED_PREFIX + name, value=json.dumps(checked)))
            else:
                row.value = json.dumps(checked)
            audit.record(s, actor, audit.SettingChanged(setting=name, old=old, new=checked))
            return _config(s)

    # -- photo analysis -------------------------------------------------------------------------------
    def _prepare_all(self, photos: list[PhotoInput], reference: bool) -> list[enrolment.Prepared]:
        mode = self.config()["quality_gate"] if reference else None
        return enrolment.prepare_all(self.analyzer, self.settings, photos, mode)

    def _default_retain_until(self) -> date | None:
        return enrolment.default_retain_until(int(self.config()["retention_years"]))

    # -- references -----------------------------------------------------------------------------------
    def add_reference(
        self, fields: ReferenceFields, photos: list[PhotoInput], provenance: Provenance
    ) -> ReferenceRecord:
        """Enrol a missing person with one or more photos, all supplied under ``provenance``."""
        with self._reading() as s:  # refuse early, before the slow analysis; the write checks again
            self._actor(s, "reference.write")
            references.check_new_id(s, fields.id)
        prepared = self._prepare_all(photos, reference=True)
        retain = self._default_retain_until()
        with self._enrolling("reference.write") as (s, actor, sink):
            added = references.create(s, actor, sink, fields, prepared, provenance, retain)
        added.warnings.extend(self._duplicate_warnings([fields.id]).get(fields.id, []))
        return added

    def add_reference_photos(
        self, reference_id: str, photos: list[PhotoInput], provenance: Provenance
    ) -> ReferenceRecord:
        """More photos for an existing reference."""
        with self._reading() as s:
            self._actor(s, "reference.write")
            references.get(s, reference_id)
        prepared = self._prepare_all(photos, reference=True)
        with self._enrolling("reference.write") as (s, actor, sink):
            record = references.add_photos(s, actor, sink, reference_id, prepared, provenance)
        found = self._duplicate_warnings([reference_id]).get(reference_id, [])
        return references.ReferenceAdded(**vars(record), warnings=found) if found else record

    def import_references(self, manifest: Path | str, progress: Progress | None = None) -> ImportReport:
        """Enrol references from a CSV manifest, one row per photo.

        Photo paths are relative to the manifest's folder. Rows already enrolled (same reference and
        same photo bytes) are skipped, so a manifest can be run again after fixing failed rows. Each
        good row is kept; every failed row is reported with its line number.
        """
        manifest = Path(manifest)
        self._check("reference.write")
        rows = read_manifest(manifest)
        report = ImportReport(rows=len(rows))
        base = manifest.parent
        with self._reading() as s:
            enrolled = references.enrolled_photos(s, {row.get("reference_id", "") for _, row in rows})
        mode = self.config()["quality_gate"]
        retain = self._default_retain_until()

        def stage(item: tuple[int, dict[str, str]]) -> tuple[ReferenceFields, Provenance, enrolment.Prepared | None]:
            fields, prov, photo = row_inputs(item[1], base)
            data = read_photo(photo.path)
            if (fields.id, sha256_hex(data)) in enrolled:
                return fields, prov, None
            return fields, prov, enrolment.prepare(self.analyzer(), self.settings, photo, mode, data=data)

        self.analyzer()  # load (and check) the model once, before threads start
        batch: list[tuple[int, dict[str, str], ReferenceFields, Provenance, enrolment.Prepared]] = []

        # The workers analyse the next batch while this thread writes one; a photo waiting for the writer holds
        # its file's bytes (not its pixels), and very large files shorten the wait list to fit the budget.
        def held(result: tuple[ReferenceFields, Provenance, enrolment.Prepared | None] | NominaError) -> int:
            return len(result[2].data) if isinstance(result, tuple) and result[2] is not None else 0

        staged = ordered_map(
            stage, rows, self.settings.workers, ahead=_IMPORT_BATCH, size=held, budget=_IMPORT_AHEAD_BYTES
        )
        try:
            for done, ((line, row), result) in enumerate(zip(rows, staged, strict=True), 1):
                if isinstance(result, NominaError):
                    report.failures.append(RowFailure.of(line, row, result))
                elif result[2] is None:
                    report.already_present += 1
                else:
                    batch.append((line, row, *result))  # type: ignore[arg-type]
                if len(batch) >= _IMPORT_BATCH or (done == len(rows) and batch):
                    self._import_batch(batch, report, retain)
                    batch = []
                if progress is not None:
                    progress(done, len(rows))
        except NominaError as exc:
            if not report.added:
                raise
            # Stopped by something no row caused (the user disabled meanwhile, the disk full): the batches
            # written before stay, and whoever runs the import must know they do.
            raise type(exc)(
                f"{exc.message}; the import stopped there: {report.added} of {len(rows)} row(s) were imported "
                "before it (running the manifest again adds the rest)",
                field=exc.field or "",
                record=exc.record,
            ) from exc
        report.failures.sort(key=lambda f: f.line)
        return report

    def _import_batch(
        self,
        batch: list[tuple[int, dict[str, str], ReferenceFields, Provenance, enrolment.Prepared]],
        report: ImportReport,
        retain: date | None,
    ) -> None:
        """Write analysed manifest rows in one transaction; refused rows are reported, the others kept."""
        part = ImportReport()  # counted into ``report`` once committed: a failed batch imported none of its rows
        first_line: dict[str, int] = {}
        ids = sorted({fields.id for _, _, fields, _, _ in batch})
        with self._enrolling("reference.write") as (s, actor, sink):
            # what the rows need to know of the database, read for them all at once (none is read row by row)
            in_use = references.lookalikes(s, ids)
            present = references.enrolled_photos(s, set(ids))
            known = references.ImportBatch.read(s, ids)
            sink.expect(s, {p.sha256 for _, _, _, _, p in batch})
            audit.read_before(s, [record_key("reference", ref) for ref in ids])
            # The rows' events are recorded together (one read of the records they change), before a second row
            # of a reference changes it again; an audit refusal is the batch's, never a row's.
            pending: dict[str, audit.ReferenceCreated | audit.ReferencePhotosAdded] = {}
            for line, row, fields, prov, p in batch:
                if (fields.id, p.sha256) in present:  # enrolled meanwhile (another process on the same manifest)
                    part.already_present += 1
                    continue
                present.add((fields.id, p.sha256))
                if fields.id in pending:
                    audit.record_all(s, actor, list(pending.values()))
                    pending.clear()
                try:  # import_row refuses a row before it writes anything for it
                    event = references.import_row(s, actor, sink, known, fields, prov, p, retain)
                except NominaError as exc:
                    part.failures.append(RowFailure.of(line, row, exc))
                    continue
                pending[fields.id] = event
                created = isinstance(event, audit.ReferenceCreated)
                part.added += 1
                part.references_created += int(created)
                first_line.setdefault(fields.id, line)
                if created:
                    part.warnings += [f"line {line}: {w}" for w in in_use.add(fields.id)]
            audit.record_all(s, actor, list(pending.values()))
            if part.added:
                enrolment.bump_gallery(s)
        report.added += part.added
        report.already_present += part.already_present
        report.references_created += part.references_created
        report.failures += part.failures
        report.warnings += part.warnings
        for ref, found in self._duplicate_warnings(list(first_line)).items():
            report.warnings += [f"line {first_line[ref]}: {w}" for w in found]

    def _duplicate_warnings(self, reference_ids: list[str]) -> dict[str, list[str]]:
        """For each reference just enrolled, a warning naming each other reference one of its faces matches
        from the workspace's ``duplicate_score``: the same person may have been reported twice (by two
        relatives, two agencies) under two ids. Never a refusal."""
        if not reference_ids:
            return {}
        with self._reading() as s:
            threshold = float(_config(s)["duplicate_score"])
            rows = s.execute(
                select(db.ReferencePhoto.reference_id, db.Face.embedding)
                .join(db.Face, db.Face.reference_photo_id == db.ReferencePhoto.id)
                .where(db.ReferencePhoto.reference_id.in_(reference_ids))
            ).all()
        vectors: dict[str, list[np.ndarray]] = {}
        for ref, embedding in rows:
            vectors.setdefault(ref, []).append(np.frombuffer(bytes(embedding), dtype=np.float32))
        gallery = self.gallery_index()
        warnings: dict[str, list[str]] = {}
        for ref, own in vectors.items():
            for hit in gallery.search(np.stack(own), _DUPLICATES_SHOWN + 1):
                if hit.reference_id != ref and hit.score >= threshold:
                    warnings.setdefault(ref, []).append(
                        f"reference {shown_id(ref)} matches reference {shown_id(hit.reference_id)} strongly (score "
                        f"{hit.score:.3f}): check it is not the same person reported twice "
                        "(`nomina reference duplicates` lists such pairs)"
                    )
        return warnings

    def duplicates(self, min_score: float | None = None, limit: int = 100) -> list[DuplicatePair]:
        """Likely duplicate references across the whole gallery: pairs of references whose faces match from
        ``min_score`` (default: the workspace's ``duplicate_score``), best first, at most ``limit``; found
        with the gallery index (each face's nearest neighbours), so it stays fast on large galleries. The
        listing is recorded. Nomina never merges references: people decide."""
        if limit < 1:
            raise InvalidField(f"limit: {limit} must be at least 1", field="limit")
        if min_score is not None and not 0 <= min_score <= 1:
            raise InvalidField(f"min_score: {min_score} must be between 0 and 1", field="min_score")
        with self._reading() as s:
            self._actor(s, "reference.read")
            threshold = float(_config(s)["duplicate_score"]) if min_score is None else min_score
        pairs = self.gallery_index().duplicates(threshold, limit)
        with self._acting("reference.read") as (s, actor):
            audit.record(s, actor, audit.ReferencesListed(count=len(pairs)))
        return pairs

    def references(self) -> list[ReferenceSummary]:
        """Every reference, by id; the listing is recorded."""
        return self._viewed(
            "reference.read",
            lambda s, _: references.summaries(s),
            lambda found: audit.ReferencesListed(count=len(found)),
        )

    def reference(self, reference_id: str) -> ReferenceRecord:
        """A reference with its photos, provenance and faces; the viewing is recorded."""
        return self._viewed(
            "reference.read",
            lambda s, viewer: references.record(s, reference_id, viewer),
            lambda _: audit.ReferenceViewed(reference_id=reference_id),
        )

    def update_reference(self, reference_id: str, /, **changes: Any) -> ReferenceRecord:
        clean = validate_update(changes)
        with self._acting("reference.write") as (s, actor):
            return references.update(s, actor, reference_id, clean)

    def delete_reference(self, reference_id: str, reason: str) -> erasure.ReferenceErased:
        """Erase a reference (by an admin, with a reason) so that no biometric trace of it stays: its photos'
        links, faces and vectors, the photo files no other record uses, every index file (rebuilt by the
        next search), and the database's earlier page images (see :mod:`nomina.erasure`). The audit trail
        keeps a tombstone: the id, counts and the reason. ``warnings`` names any file step that could not
        be completed (``maintain`` completes it)."""
        reason = _reason(reason)
        with self._acting("record.erase") as (s, actor):
            gone = erasure.erase_reference(s, references.get(s, reference_id), reason, actor)
            enrolment.bump_gallery(s)
        return erasure.reference_erased(gone, self._finish_erasure())

    def _finish_erasure(self) -> list[str]:
        """Do the file steps of every erasure committed and not finished (:func:`nomina.erasure.finish`: the
        journalled photo files, and the erased faces' bytes in this process's gallery index and its snapshot
        on disk), remove the photo files no record names (a killed import's, which may be of the person just
        erased: :func:`nomina.erasure.sweep`), then checkpoint the database; a line for each step not done."""
        shared = self._shared
        keeper = self._keeper()
        try:
            with shared.db.write() as s:
                _, warnings = erasure.finish(s, self.photos, lambda: keeper.scrub(s))
                warnings += erasure.sweep(s, self.photos)[1]
            with shared.db.exclusive():
                unsettled = erasure.settle(shared.db.engine)
            return warnings + self._forget_settled(unsettled)
        except Busy:
            # the erasure itself has committed: "nothing was changed" would be untrue; the journal keeps the
            # steps left for the next opening or maintenance
            return [
                "the erasure is recorded, but the workspace stayed busy with another change, so its file steps "
                "(photo files, index, database pages) wait in the journal: the next command that opens the "
                "workspace, or `nomina maintain`, completes them"
            ]

    def _forget_settled(self, unsettled: list[str]) -> list[str]:
        """Once a checkpoint (or compaction) left nothing unsettled, forget the journalled ones and empty
        the WAL of that change again; ``unsettled`` as it was otherwise."""
        if unsettled:
            return unsettled
        shared = self._shared
        with shared.db.write() as s:
            erasure.settled(s)
        if not shared.db.server:  # SQLite's WAL holds that deletion's pages; PostgreSQL has nothing to redo
            with shared.db.exclusive():
                erasure.settle(shared.db.engine)
        return []

    # -- cases ----------------------------------------------------------------------------------------
    def add_case(self, fields: CaseFields, photos: list[PhotoInput]) -> CaseRecord:
        """Register an unidentified person. Photos with no detected face are kept and flagged."""
        with self._reading() as s:
            self._actor(s, "case.write")
            cases.check_new_id(s, fields.id)
        prepared = self._prepare_all(photos, reference=False)
        with self._enrolling("case.write") as (s, actor, sink):
            return cases.create(s, actor, sink, fields, prepared)

    def mark_eyes(self, case_id: str, photo: int, eyes: np.ndarray) -> CaseRecord:
        """Add a face to case photo number ``photo`` (1-based) from eye centres marked by hand."""
        photo = whole_number(photo, "photo", most=10_000)
        eyes = check_eyes(eyes)
        with self._reading() as s:
            self._actor(s, "case.write")
            link = cases.photo_link(s, case_id, photo)
            sha, file_name = link.photo_sha256, link.file_name
        with decoded(self.photos.read(sha), file_name, self.settings.max_pixels, self.settings.workers) as image:
            face = self.analyzer().from_eyes(image, eyes, name=f"{file_name}: eyes")
        with self._enrolling("case.write") as (s, actor, sink):
            return cases.add_face(s, actor, sink, case_id, photo, face)

    def cases(self) -> list[CaseSummary]:
        """Every case, by id; the listing is recorded."""
        return self._viewed(
            "case.read", lambda s, _: cases.summaries(s), lambda found: audit.CasesListed(count=len(found))
        )

    def case(self, case_id: str) -> CaseRecord:
        """A case with its photos, faces and searches; the viewing is recorded."""
        return self._viewed(
            "case.read", lambda s, actor: cases.record(s, case_id, actor), lambda _: audit.CaseViewed(case_id=case_id)
        )

    def face_source(self, kind: str, record_id: str, face: int) -> casefile.StoredFace:
        """What the aligned crop of one stored face is made from (its photo and landmarks): face number
        ``face`` (1-based) of case ``record_id`` when ``kind`` is "case", or the face with id ``face`` of
        reference ``record_id`` when it is "reference". One narrow read, not recorded: the page showing the
        crop records the viewing of its case or search."""
        if kind not in ("case", "reference"):
            raise InvalidField(f"kind: {kind!r} is not one of case, reference", field="kind")
        with self._reading() as s:
            self._actor(s, "case.read" if kind == "case" else "reference.read")
            if kind == "case":
                return casefile.stored_case_face(s, record_id, face)
            return casefile.stored_reference_face(s, record_id, face)

    def delete_case(self, case_id: str, reason: str) -> erasure.CaseErased:
        """Erase a case (by an admin, with a reason) with its photos, faces, searches, conclusions and
        identifications, leaving no biometric trace (see :meth:`delete_reference`); the audit trail keeps
        a tombstone."""
        reason = _reason(reason)
        with self._acting("record.erase") as (s, actor):
            gone = erasure.erase_case(s, cases.get(s, case_id), reason, actor)
        return erasure.case_erased(gone, self._finish_erasure())

    # -- search ---------------------------------------------------------------------------------------
    def gallery_index(self) -> Gallery:
        """This process's index of every reference face, as of the newest committed state of the database
        (see :mod:`nomina.indexing`); exact or approximate as the workspace's ``index`` setting says."""
        return self._keeper().current(self._shared.db, _index_mode)

    def refresh_gallery(self) -> None:
        """Apply the gallery's committed changes to this process's index if it is loaded (``nomina serve``
        does every second, so that an erased face leaves every server's memory without waiting for a
        search)."""
        self._keeper().refresh(self._shared.db)

    def save_gallery(self) -> None:
        """Write this process's gallery index to its snapshot in ``index/gallery/`` now, so that the next
        process starts from it (a snapshot is otherwise written after a build and once 5% of the gallery
        has changed since the last one)."""
        self._keeper().save(self._shared.db, _index_mode)

    def follow_gallery(self, interval: float = 1.0) -> None:
        """Apply the gallery's committed changes to this process's index every ``interval`` seconds, in a
        background thread, for as long as the workspace is open (for servers; see :meth:`refresh_gallery`)."""
        self._keeper().follow(self._shared.db, interval)

    def _keeper(self) -> GalleryKeeper:
        shared = self._shared
        with shared.index_lock:
            if shared.keeper is None:
                dim = MODELS[str(self.model_identity["name"])].embedding_dim
                shared.keeper = GalleryKeeper(self.path / "index", dim)
            return shared.keeper

    def search(
        self, case_id: str, face: int | None = None, top: int | None = None, exhaustive: bool = False
    ) -> SearchResult:
        """Rank every reference against the case's face(s) and record the search.

        Without ``face``, all the case's faces are used and each reference keeps its best score over
        them; ``face`` (1-based, as ``case show`` numbers them) restricts the search to one. ``exhaustive``
        compares every reference face even when the gallery uses its approximate index (which may miss a
        weak match of a hard photo); the search records it. The ranking runs outside the write lock; if the
        gallery changed before the search is recorded, it ranks again inside it.
        """
        top = self.settings.top if top is None else whole_number(top, "top", most=TOP_MAX)
        face = None if face is None else whole_number(face, "face", most=10_000)
        with self._reading() as s:  # everything the search needs to know, read once, before the index
            self._actor(s, "search.run")
            mode = _config(s)["quality_gate"]
            current = search.current_calibration(s)
            case = cases.get(s, case_id)
            faces = search.case_faces(case)
            failed = {f.id: gate(stored(f), mode) for cp in case.photos for f in cp.faces}
        if not faces:
            raise NoFaceFound(
                f"case {case_id}: no face to search; mark the eyes by hand", field="face", record=f"case {case_id}"
            )
        if face is not None:
            if not 1 <= face <= len(faces):
                raise FaceNumberInvalid(
                    f"face: case {case_id} has {len(faces)} face(s); got {face}", record=f"case {case_id}"
                )
            faces = [faces[face - 1]]
        refs = [ref for ref, _ in faces]
        probes = np.stack([vec for _, vec in faces])
        warnings = [
            f"case face {ref.number} fails the {mode} quality gate, so its candidates are less reliable: "
            + "; ".join(failed[ref.face_id])
            for ref in refs
            if failed[ref.face_id]
        ]
        settings = {"top": top, "face": face, "quality_gate": mode}
        calibration_id = None if current is None else current[0]

        def ranked(gallery: Gallery) -> Ranked:
            if gallery.size == 0:
                raise NotFound("gallery: no reference faces to search; add references first", record="gallery")
            ranking = rank(gallery, probes, refs, top, exhaustive)
            chosen = {**settings, "index": "exact" if exhaustive else gallery.kind}
            if exhaustive:
                chosen["exhaustive"] = True
            return Ranked(case_id, refs, ranking, chosen, gallery, calibration_id, warnings)

        gallery = self.gallery_index()
        seen = gallery.seq
        found = ranked(gallery)  # outside the write lock: writers are not held up by the ranking
        with self._acting("search.run") as (s, actor):
            cases.get(s, case_id)  # the case may have been erased meanwhile
            if indexing.head(s) != seen:
                # a reference was added or erased while ranking: rank again, holding the lock this time,
                # so that the candidates recorded are those of the gallery as it is when recorded
                found = ranked(self.gallery_index())
            search_id = search.record(s, actor, found, self.model_identity)
            return search.load(s, search_id, actor, self.settings.age_gap_years)

    def get_search(self, search_id: int) -> SearchResult:
        """A recorded search again; the viewing is recorded."""
        return self._viewed(
            "case.read",
            lambda s, actor: search.load(s, search_id, actor, self.settings.age_gap_years),
            lambda result: audit.SearchViewed(case_id=result.case_id, search_id=search_id),
        )

    def search_facts(self, case_id: str, reference_ids: Iterable[str]) -> tuple[CaseFacts, dict[str, RefFacts]]:
        """What a candidate list is read against: the case's kind, found date and status, and the recorded
        sex, birth year and last-seen date of each of ``reference_ids``, in one read (not recorded: the
        search's viewing is)."""
        with self._reading() as s:
            self._actor(s, "case.read")
            return search.facts(s, case_id, reference_ids)

    def searches(self, case_id: str | None = None) -> list[SearchSummary]:
        return self._viewed(
            "case.read",
            lambda s, actor: search.summaries(s, actor, case_id),
            lambda found: audit.SearchesListed(count=len(found), case_id=case_id),
        )

    # -- examiner workflow -----------------------------------------------------------------------------
    def conclude(
        self,
        search_id: int,
        rank: int,
        conclusion: str,
        reasons: str,
        checklist: dict[str, dict[str, str]] | None = None,
    ) -> workflow.ConclusionRecord:
        """Record an examiner's conclusion (excluded, possible match, insufficient information) on the
        candidate at ``rank`` of a search, with the feature checklist of the comparison if one was filled
        (:data:`nomina.workflow.FEATURES`, each similar / different / not visible and a note)."""
        with self._acting("conclusion.write") as (s, actor):
            row = workflow.conclude(s, actor, search.get(s, search_id), rank, conclusion, reasons, checklist)
            return workflow.conclusion_record(row)

    def propose_identification(self, case_id: str, reference_id: str, reasons: str) -> workflow.IdentificationRecord:
        """An examiner proposes that the case is the reference; a verifier must then verify it."""
        with self._acting("conclusion.write") as (s, actor):
            found = workflow.propose(s, actor, cases.get(s, case_id), reference_id, reasons)
            return workflow.describe(found, actor)

    def verify_identification(
        self, case_id: str, conclusion: str, reasons: str, reference_id: str
    ) -> workflow.IdentificationRecord:
        """A verifier, not the proposer, records their own conclusion on the proposed identification.

        ``reference_id`` is the reference the verifier compared with the case: if the proposal was withdrawn
        and another reference proposed meanwhile, the verification is refused (Conflict) instead of being
        recorded against a comparison the verifier never made."""
        with self._acting("identification.verify") as (s, actor):
            found = workflow.verify(s, actor, cases.get(s, case_id), conclusion, reasons, reference_id)
            return workflow.describe(found, actor)

    def withdraw_identification(self, case_id: str, reason: str) -> workflow.IdentificationRecord:
        """Withdraw the case's open identification (an examiner, with a reason); the case is open again."""
        with self._acting("conclusion.write") as (s, actor):
            return workflow.describe(workflow.withdraw(s, actor, cases.get(s, case_id), reason), actor)

    def identification(self, case_id: str) -> workflow.CaseIdentifications:
        """The case's status, its open identification and every earlier one (as this user may see them)."""
        return self._viewed(
            "case.read",
            lambda s, actor: workflow.case_identifications(cases.get(s, case_id), actor),
            lambda _: audit.CaseViewed(case_id=case_id),
        )

    def identifications(self, status: str | None = None) -> list[workflow.IdentificationRecord]:
        """Every identification (of one status when given), oldest first."""
        known = (*workflow.STATUSES, "withdrawn")
        if status is not None and status not in known:
            raise InvalidField(f"status: {status!r} is not one of {', '.join(known)}")
        return self._viewed(
            "case.read",
            lambda s, actor: [
                workflow.describe(i, actor) for i in workflow.identifications(s, status) if workflow.visible(i, actor)
            ],
            lambda found: audit.CasesListed(count=len(found)),
        )

    # -- reports and exports ----------------------------------------------------------------------------
    def report(self, case_id: str, out: Path | str) -> ReportWritten:
        """Write the case's identification report (by an examiner), HTML or PDF by the suffix of ``out``; the
        writing is recorded with the file's SHA-256. Refused while an identification awaits verification,
        except to its proposer, and for a case never searched."""
        path = Path(out)
        with self._reading() as s:
            actor = self._actor(s, "report.read")
            case = cases.get(s, case_id)
            if not case.searches:
                raise Conflict(
                    f"case {case_id}: not searched yet; a report shows a search's candidates", record=f"case {case_id}"
                )
            found = workflow.current(case)
            search_id = found.search_id if found is not None and found.search_id is not None else case.searches[-1].id
            reference = None if found is None else found.reference_id
            # a reference erased before the report: the report says so, and its event names no erased record
            held = reference if reference is not None and s.get(db.Reference, reference) is not None else None
            crop = casefile.face_crop(self.photos.read, self.settings)
            result = search.load(s, search_id, actor, self.settings.age_gap_years)
            included = {record_key("case", case_id), record_key("search", search_id)}
            included |= {
                record_key("reference", r) for r in [reference, *(c.reference_id for c in result.candidates)] if r
            }
            audit.require_records(s, included, "report not written")
            built = casefile.build_report(s, case, result, actor, crop, self._model_block())
        sha = write_report(built, path)
        fmt = path.suffix.lower().lstrip(".")
        try:
            with self._acting("report.read") as (s, actor):
                written = audit.ReportCreated(case_id=case_id, sha256=sha, format=fmt, reference_id=held)
                _still_there(s, written)
                audit.record(s, actor, written)
        except BaseException:
            path.unlink(missing_ok=True)  # a report whose writing is not recorded is not left behind
            raise
        return ReportWritten(case_id=case_id, path=str(path), format=fmt, sha256=sha)

    def export_identifications(self, out: Path | str, fmt: str = "json") -> ExportWritten:
        """Write every verified identification (by an examiner), for transmission to the responsible authority,
        as JSON or CSV; the export is recorded with its SHA-256, and carries the audit trail's head hash."""
        path = Path(out)
        with self._acting("export.read") as (s, actor):
            records = casefile.identification_records(s)
            audit.require_records(
                s,
                [record_key(kind, str(r[f"{kind}_id"])) for r in records for kind in ("case", "reference")],
                "nothing exported",
            )
            meta = {
                "exported_at": now().isoformat(),
                "exported_by": actor,
                "audit_head": audit.head(s).hash,
                "notice": EXPORT_NOTICE,
            }
            sha = casefile.write_export(casefile.export_bytes(records, fmt, meta), path)
            try:
                audit.record(s, actor, audit.ExportCreated(format=fmt, count=len(records), sha256=sha))
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        return ExportWritten(path=str(path), format=fmt, identifications=len(records), sha256=sha)

    def _model_block(self) -> dict[str, Any]:
        identity = self.model_identity
        manifest = MODELS.get(str(identity["name"]))
        return {
            "name": identity["name"],
            "description": None if manifest is None else manifest.description,
            "licence": None if manifest is None else manifest.licence,
            "files": dict(identity["files"]),
        }

    # -- calibration ----------------------------------------------------------------------------------
    def add_calibration(self, calibration: Calibration) -> CalibrationRecord:
        """Store a calibration fitted on this workspace's model; searches use the newest one from now on."""
        fitted_with = calibration.data.get("model")
        if fitted_with != self.model_identity:
            raise ModelMismatch(
                f"calibration: fitted on scores of model {_describe_identity(dict(fitted_with or {}))}, "
                f"but workspace {self.path} uses {_describe_identity(self.model_identity)}"
            )
        with self._acting("workspace.manage") as (s, actor):
            row = db.Calibration(
                model=self.model_identity, mapping=calibration.to_dict(), created_at=now(), created_by=actor
            )
            s.add(row)
            s.flush()
            calibration_id = row.id
            audit.record(
                s, actor, audit.CalibrationAdded(calibration_id=calibration_id, model=str(self.model_identity["name"]))
            )
        return CalibrationRecord(**calibration_summary(calibration_id, calibration))

    def calibration(self) -> tuple[int, Calibration] | None:
        """The calibration in use (the newest added through Nomina), with its id; None when scores are uncalibrated."""
        with self._reading() as s:
            return search.current_calibration(s)

    def calibrations(self) -> list[StoredCalibration]:
        """Every stored calibration, oldest first, as stored (``audit verify`` checks them); the last added
        through Nomina is the one in use."""
        with self._reading() as s:
            rows = s.scalars(select(db.Calibration).order_by(db.Calibration.id)).all()
            return [
                StoredCalibration(
                    **calibration_summary(r.id, search.calibration(s, r.id, checked=False)),
                    created_at=r.created_at,
                    created_by=r.created_by,
                    calibration=r.mapping,
                )
                for r in rows
            ]

    # -- retention and maintenance ---------------------------------------------------------------------
    def apply_retention(self, today: date | None = None, dry_run: bool = False) -> erasure.RetentionResult:
        """Erase every reference whose retention date is before ``today`` (by an admin).

        Each is erased as :meth:`delete_reference` does, with the reason ``retention date YYYY-MM-DD
        passed``, all in one transaction with one ``retention.apply`` summary event; cases carry no
        retention date. A reference named by an open identification (proposed, disputed or verified) is
        held, not erased, and listed under ``held``. ``dry_run`` does the same in a transaction that is
        rolled back: it reports exactly what would be erased and changes nothing, not even the audit trail.
        Refused (RecordTampered), erasing nothing, when a reference due is not as the audit trail last left it
        (its retention date may have been changed behind Nomina's back).
        """
        today = parse_date(today, "today") or date.today()
        with self._shared.db.write(commit=not dry_run) as s:
            actor = self._actor(s, "workspace.manage")
            erased, held = erasure.erase_due(s, today, actor)
            if not dry_run:
                if erased:
                    enrolment.bump_gallery(s)
                audit.record(
                    s, actor, audit.RetentionApplied(due_before=today.isoformat(), references=len(erased), cases=0)
                )
        warnings = [] if dry_run or not erased else self._finish_erasure()
        return erasure.RetentionResult(
            due_before=today,
            dry_run=dry_run,
            references=[erasure.retention_erased(e) for e in erased],
            held=held,
            warnings=warnings,
        )

    def maintain(self) -> erasure.MaintenanceResult:
        """The workspace's normal maintenance (by an admin). Holding the database's write lock, so that no
        enrolment in any process is writing a photo file meanwhile: finishes the file steps of any erasure
        an interrupted process left, removes the photo files no record names and unfinished writes, whatever
        their age, and removes the index files. Then rebuilds the index from the database, rebuilds the
        database file from its live rows (VACUUM) and truncates its WAL."""
        shared = self._shared
        before = database_size(shared.db.engine)
        keeper = self._keeper()
        with self._acting("workspace.manage") as (s, _):
            remove_stale_temporaries()  # a killed server's uploads and reports, outside the workspace
            removed, warnings = erasure.finish(s, self.photos, lambda: keeper.scrub(s))
            swept, more = erasure.sweep(s, self.photos)
            removed, warnings = removed + swept, warnings + more
            keeper.forget()
            remove_index_files(self.path / "index")
        faces = self.gallery_index().size
        with self._acting("workspace.manage") as (s, actor):
            audit.record(s, actor, audit.WorkspaceMaintained(photo_files_removed=removed, index_faces=faces))
        with shared.db.exclusive():
            compacted = erasure.compact(shared.db.engine)
        warnings += self._forget_settled(compacted)
        return erasure.MaintenanceResult(
            photo_files_removed=removed,
            index_faces=faces,
            database_bytes_before=before,
            database_bytes_after=database_size(shared.db.engine),
            warnings=warnings,
        )

    # -- overview -------------------------------------------------------------------------------------
    def info(self) -> WorkspaceSummary:
        model = self.model_identity
        with self._reading() as s:

            def count(model: type[db.Base]) -> int:
                return int(s.scalar(select(func.count()).select_from(model)) or 0)

            return WorkspaceSummary(
                path=str(self.path),
                model=model,
                created_at=_info(s, "created_at"),
                references=count(db.Reference),
                reference_photos=count(db.ReferencePhoto),
                cases=count(db.Case),
                faces=count(db.Face),
                photos_stored=count(db.Photo),
                searches=count(db.Search),
            )


# -- helpers ------------------------------------------------------------------------------------------
def _still_there(s: Session, event: audit.Event) -> None:
    """Refuse (NotFound) to record the viewing or report of a case or reference erased since it was read:
    what was read in the earlier snapshot is not handed out, and no event follows the record's tombstone."""
    case_id = getattr(event, "case_id", None)
    reference_id = getattr(event, "reference_id", None)
    if case_id is not None:
        cases.get(s, case_id)
    if reference_id is not None:
        references.get(s, reference_id)


def _index_mode(s: Session) -> str:
    return str(_config(s)["index"])


def _database_url(path: Path) -> str | None:
    """The PostgreSQL URL a workspace folder's :data:`DB_URL_NAME` file names; None for a SQLite workspace."""
    named = path / DB_URL_NAME
    if not named.is_file():
        return None
    lines = named.read_text("utf-8").split("\n")
    url = lines[0].strip()
    if not server.is_server_url(url):
        raise NotAWorkspace(f"{named}: does not name a postgresql:// database", record=str(path))
    return url


def _write_private(target: Path, content: str) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(content)


def _info(s: Session, key: str) -> str:
    row = s.get(db.WorkspaceInfo, key)
    if row is None:
        raise WorkspaceError(f"workspace record {key!r} is missing")
    return row.value


def _model_identity(s: Session) -> dict[str, Any]:
    """The model the workspace was built with, as recorded: ``{"name", "files": {file name: SHA-256}}``. A
    record of another shape was written behind Nomina's back: refused (WorkspaceError) rather than used to
    load a model or name one in a report; so is a model this version of Nomina does not know."""
    text = _info(s, "model")
    try:
        found = json.loads(text)
    except ValueError:
        found = None
    name, files = (found.get("name"), found.get("files")) if isinstance(found, dict) else (None, None)
    if (
        not isinstance(name, str)
        or not isinstance(files, dict)
        or not files
        or not all(isinstance(k, str) and isinstance(v, str) and re.fullmatch("[0-9a-f]+", v) for k, v in files.items())
    ):
        raise WorkspaceError(
            f"workspace record 'model': {text[:80]!r} is not a model Nomina records (its name and the SHA-256 of "
            "each of its files): changed behind Nomina's back; restore the workspace from a backup"
        )
    if name not in MODELS:
        raise WorkspaceError(
            f"workspace record 'model': built with model {name[:40]!r}, which this version of Nomina does not know "
            f"(known: {', '.join(sorted(MODELS))})"
        )
    return dict(found)


def _config(s: Session, being_set: str | None = None) -> dict[str, Any]:
    """The workspace settings: stored values, defaults for any not stored.

    A stored value that is not JSON or not valid for its setting was written behind Nomina's back: refused
    (WorkspaceError, naming it and how to set it again) rather than guessed at, but for ``being_set``, the
    setting an admin is setting again, whose value is then what was found (the text itself when not JSON).
    """
    stored = {
        row.key.removeprefix(STORED_PREFIX): row.value
        for row in s.scalars(select(db.WorkspaceInfo).where(db.WorkspaceInfo.key.startswith(STORED_PREFIX)))
    }
    values: dict[str, Any] = {}
    for st in WORKSPACE_SETTINGS:
        raw = stored.get(st.name)
        if raw is None:
            values[st.name] = st.default
            continue
        if not isinstance(raw, str):  # bytes written into the text column (SQLite keeps what it is given)
            raw = bytes(raw).decode("utf-8", "replace") if isinstance(raw, bytes | memoryview) else str(raw)
        try:
            found: Any = json.loads(raw)
        except (ValueError, RecursionError):
            found = raw[:80]
        try:
            values[st.name] = workspace_setting(st.name, found)
        except InvalidField:
            if st.name != being_set:
                raise WorkspaceError(
                    f"workspace setting {st.name}: the stored value {shown_id(raw[:80])} is not valid: changed behind "
                    "Nomina's back; an admin sets it again, and the audit trail's verification shows what it was",
                    field=st.name,
                ) from None
            plain = isinstance(found, int | bool) or (isinstance(found, float) and math.isfinite(found))
            values[st.name] = found if plain else found[:80] if isinstance(found, str) else raw[:80]
    return values


def _hidden(e: audit.Entry) -> audit.Entry:
    """An audit entry as a blind viewer sees it: no actor, no details."""
    hidden = {
        "actor": workflow.HIDDEN,
        "details": {"hidden": _BLIND},
        "os_user": None,
        "host": None,
        "via": None,
    }
    return audit.Entry(**{**vars(e), **hidden})


def _describe_identity(identity: dict[str, Any]) -> str:
    files = ", ".join(f"{name} {sha[:12]}" for name, sha in dict(identity.get("files", {})).items())
    return f"{identity.get('name')} ({files})"


def _reason(text: str | None) -> str:
    reason = _clean_text(text or "", "reason", lines=True)
    if not reason:
        raise InvalidField("reason: required: say why the record is erased (it is kept in the audit trail)")
    return reason


# -- the types of the arguments programs give -----------------------------------------------------------
def _plain_text(value: object) -> bool:
    return isinstance(value, str)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _real(value: object) -> bool:
    """A finite number, numpy's too (not a bool)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        return False
    return math.isfinite(value)


def _path(value: object) -> bool:
    return isinstance(value, str | os.PathLike)


def _instance_of(kind: type) -> Callable[[object], bool]:
    return lambda value: isinstance(value, kind)


#: What each annotation of a public method's argument accepts, and how a refusal reads.
_ARGUMENT_TYPES: dict[str, tuple[Callable[[object], bool], str]] = {
    "str": (_plain_text, "is not text"),
    "int": (_whole, "is not a whole number"),
    "float": (_real, "is not a finite number"),
    "bool": (lambda v: isinstance(v, bool | np.bool_), "is not true or false"),
    "Path | str": (_path, "is not a path"),
    "list[PhotoInput]": (
        lambda v: isinstance(v, list | tuple) and all(isinstance(p, PhotoInput) for p in v),
        "is not a list of PhotoInput",
    ),
    "Settings": (lambda v: isinstance(v, Settings), "is not Settings (see load_settings)"),
    "FaceModel": (lambda v: isinstance(v, FaceModel), "is not a FaceModel (see load_model)"),
    "dict[str, Any]": (lambda v: isinstance(v, dict), "is not a dict"),
    **{
        kind.__name__: (_instance_of(kind), f"is not a {kind.__name__}")
        for kind in (ReferenceFields, CaseFields, Provenance, Calibration)
    },
}


def _typed(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` refusing, with InvalidField naming the argument, an argument of another type than its
    annotation says (:data:`_ARGUMENT_TYPES`: text, whole number, finite number, true or false, path, a
    record class, a list of photos; None where the annotation allows it; other annotations are not
    checked). A numpy integer is taken as the int it holds. Without this, ``delete_case(["C1"], ...)`` erased
    C1 (the database took a one-item list as a key) and a numpy face number was stored as bytes."""
    signature = inspect.signature(function)
    checked: dict[str, tuple[Callable[[object], bool], str, bool]] = {}
    for name, parameter in signature.parameters.items():
        annotation = str(parameter.annotation)
        optional = annotation.endswith(" | None")
        kind = _ARGUMENT_TYPES.get(annotation.removesuffix(" | None"))
        if kind is not None:
            checked[name] = (*kind, optional)
    if not checked:
        return function

    @functools.wraps(function)
    def typed(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        for name, value in bound.arguments.items():
            rule = checked.get(name)
            if rule is None or (value is None and rule[2]):
                continue
            if isinstance(value, np.integer):  # numpy's integers are the int they hold, for any rule
                bound.arguments[name] = value = int(value)
            if not rule[0](value):
                raise InvalidField(f"{name}: {shown_id(value)} {rule[1]}", field=name)
        return function(*bound.args, **bound.kwargs)

    return typed


for _name, _member in list(vars(Workspace).items()):
    if _name.startswith("_"):
        continue
    if inspect.isfunction(_member):
        setattr(Workspace, _name, _typed(_member))
    elif isinstance(_member, classmethod):
        setattr(Workspace, _name, classmethod(_typed(_member.__func__)))


def _why(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
