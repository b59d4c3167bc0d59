"""The audit trail: who did what, to which record, and when, in a hash chain that shows tampering.

Every action worth accounting for (a record created, viewed or deleted, a search run, a conclusion, an
identification proposed or verified, a report or export written, a user added) is one typed, frozen
event class below, registered under its action name in :data:`EVENT_TYPES`. :func:`record` is the only
way to append, and it refuses any event type not in the registry, so the vocabulary of the trail is
fixed in code and reviewed like code (datasette's ``events.py`` and ``track_event`` work the same way).

What goes in an event
    The ids of the objects concerned (``case_id``, ``reference_id``, ``search_id``) go in their own indexed
    columns, so the trail of one case, reference or search can be listed. Every other field goes in
    ``details`` as canonical JSON. Details are plain data only: text, integers, finite floats, booleans,
    None, and short lists or small mappings of these. They say *what was done*, never *what a face looks
    like*: counts, ids, SHA-256 of files Nomina wrote, reasons, roles, setting names and values.
    The trail cannot be erased (deleting a person's record must not erase the account of it), so it
    must hold nothing that deletion is meant to remove: no photo bytes, crops, embeddings, landmarks,
    and no field values of a record (an update names the fields changed, not their contents).
    The guard in :func:`check_detail` refuses bytes, numpy values, any detail holding more than
    :data:`MAX_NUMBERS` numbers (an embedding or landmarks) and text over :data:`MAX_TEXT` characters
    (an encoded image). It catches mistakes, not malice: code that means to smuggle data can encode it.

The hash chain
    Events are numbered ``seq`` = 1, 2, 3, ... with no gaps. Each event's ``hash`` is the SHA-256 of the
    previous event's hash (64 zeros for the first) followed by the event's canonical form: JSON with
    sorted keys, separators ``(",", ":")`` and ``ensure_ascii=False`` of ``seq``, ``at``, ``actor``,
    ``action``, ``case_id``, ``reference_id``, ``search_id`` and ``details`` (UTF-8 encoded). ``prev_hash``
    is unique, so the chain cannot fork. The newest ``seq`` and ``hash`` (the *head*) are also kept in
    ``workspace_info`` under ``audit_head``, written in the same transaction, so removing the newest
    events is caught as well as editing, removing or reordering older ones (:func:`verify`).

Context: who, where, and the records as the event left them
    :func:`record` adds to every event's details, under the reserved key :data:`CONTEXT`, the
    operating-system user and the host that ran Nomina (the Nomina user is the event's ``actor``), how
    the actor proved who they are (``via``: ``session N`` or ``token N`` of :mod:`nomina.auth`, or
    ``library`` for a program that named the user through the Python API), and,
    for an event that changes records (its class's ``changes``), the digest of each such record as the
    event found it and as it left it (:mod:`nomina.digests`): ``records`` maps a record key to
    ``[before, after]``, null for a record that does not exist. The context is part of the hashed details.
    A trail begun before record digests existed gets one ``audit.baseline`` event, written before the
    first event with a context, holding the digest of every record then in the database.

The records
    :func:`verify` also recomputes the digest of every record and follows each record's history through
    the trail: a record changed, added or removed without an event recording it is reported in one line
    naming it. :func:`check_records` does the same for a few records (what a report or an export is about).

What the chain does not do
    Someone able to rewrite the whole database file can rebuild a consistent chain, head included.
    The defence is the head hash that :func:`verify` reports and that reports and exports carry: people
    keep those elsewhere, and a trail whose events no longer lead to a hash they kept has been
    rewritten; a signed checkpoint (:mod:`nomina.checkpoints`) does this with a key kept outside the
    workspace. The chain makes tampering evident; it does not make it impossible.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import secrets
import socket
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar

from sqlalchemy import Connection, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import digests
from .errors import AuditBroken, Conflict, DetailRefused, InvalidField, PermissionDenied, RecordTampered, UnknownEvent
from .records import Record
from .records import shown as shown_value
from .settings import STORED_PREFIX, os_user
from .store import schema as db

__all__ = [
    "CONTEXT",
    "EVENT_TYPES",
    "Entry",
    "GENESIS",
    "HEAD_KEY",
    "MAX_NUMBERS",
    "MAX_TEXT",
    "OBJECT_IDS",
    "AuditBaseline",
    "AuditVerified",
    "AuditViewed",
    "CalibrationAdded",
    "CaseCreated",
    "CaseDeleted",
    "CaseUpdated",
    "CaseViewed",
    "CasesListed",
    "CheckpointWritten",
    "ConclusionRecorded",
    "Event",
    "ExportCreated",
    "EyesMarked",
    "Head",
    "IdentificationProposed",
    "IdentificationVerified",
    "IdentificationWithdrawn",
    "ReferenceCreated",
    "ReferenceDeleted",
    "ReferencePhotosAdded",
    "ReferenceUpdated",
    "ReferenceViewed",
    "ReferencesListed",
    "ReportCreated",
    "RetentionApplied",
    "SearchRun",
    "SearchViewed",
    "SearchesListed",
    "SettingChanged",
    "UserAdded",
    "UserDisabled",
    "UserRolesChanged",
    "PreferenceSet",
    "PasswordSet",
    "LoginSucceeded",
    "LoginRefused",
    "LoginLockedOut",
    "SessionEnded",
    "TokenCreated",
    "TokenRevoked",
    "Verification",
    "WorkspaceMaintained",
    "canonical",
    "check_detail",
    "check_records",
    "entries",
    "events",
    "head",
    "link_hash",
    "newest_calibration",
    "read_before",
    "record",
    "require_records",
    "verify",
]

#: The ``prev_hash`` of the first event.
GENESIS = "0" * 64
#: The ``workspace_info`` key holding the chain head, ``{"seq": N, "hash": "..."}``.
HEAD_KEY = "audit_head"
#: Event fields stored in their own indexed columns rather than in ``details``.
OBJECT_IDS = ("case_id", "reference_id", "search_id")
#: Most numbers one detail may hold: enough for a box or a pair of eye centres, too few for an embedding
#: (128 or 512 numbers) or five landmarks (10).
MAX_NUMBERS = 8
#: Longest text one detail may hold: a paragraph of reasons, not an encoded image.
MAX_TEXT = 2000
#: The reserved key of ``details`` under which :func:`record` adds the event's context (no event field has it).
CONTEXT = "context"
#: The key of ``Session.info`` under which the caller says how the actor proved who they are ("session 4",
#: "token 2", "library"); :func:`record` copies it into the context as ``via``.
VIA = "nomina.via"

Scalar = str | int | float | bool | None


# -- events -------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every audit event. Subclasses set ``action`` and declare their fields.

    Fields named in :data:`OBJECT_IDS` become columns; all others become details and are checked by
    :func:`check_detail` when the event is made, so a biometric value never gets as far as the database.
    ``changes`` names the kinds of record (:data:`nomina.digests.KINDS`) the event changes: the record
    whose id is the event's ``case_id``, ``reference_id``, ``search_id`` or ``user``. :func:`record` adds
    their digests before and after the change; an event that only reads changes none.
    """

    action: ClassVar[str]
    changes: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        _split(self)


# References ------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ReferenceCreated(Event):
    """A missing person's record created with its first photos."""

    action: ClassVar[str] = "reference.create"
    changes: ClassVar[tuple[str, ...]] = ("reference",)
    reference_id: str
    photos: int
    quality_overrides: int = 0  # photos enrolled although they failed the quality gate


@dataclass(frozen=True, kw_only=True)
class ReferenceUpdated(Event):
    """Fields of a reference changed. Names the fields only: their values are personal data."""

    action: ClassVar[str] = "reference.update"
    changes: ClassVar[tuple[str, ...]] = ("reference",)
    reference_id: str
    fields: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ReferencePhotosAdded(Event):
    action: ClassVar[str] = "reference.photos_add"
    changes: ClassVar[tuple[str, ...]] = ("reference",)
    reference_id: str
    photos: int
    quality_overrides: int = 0


@dataclass(frozen=True, kw_only=True)
class ReferenceViewed(Event):
    action: ClassVar[str] = "reference.view"
    reference_id: str


@dataclass(frozen=True, kw_only=True)
class ReferencesListed(Event):
    """The list of references (ids, names, dates) was shown."""

    action: ClassVar[str] = "reference.list"
    count: int


@dataclass(frozen=True, kw_only=True)
class ReferenceDeleted(Event):
    """The tombstone of a deleted reference: its id, what was removed (counts) and why."""

    action: ClassVar[str] = "reference.delete"
    changes: ClassVar[tuple[str, ...]] = ("reference",)
    reference_id: str
    photos: int
    faces: int
    reason: str


# Cases -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CaseCreated(Event):
    action: ClassVar[str] = "case.create"
    changes: ClassVar[tuple[str, ...]] = ("case",)
    case_id: str
    photos: int
    faces: int


@dataclass(frozen=True, kw_only=True)
class CaseUpdated(Event):
    """Fields of a case changed; names the fields, not their values."""

    action: ClassVar[str] = "case.update"
    changes: ClassVar[tuple[str, ...]] = ("case",)
    case_id: str
    fields: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class CaseViewed(Event):
    action: ClassVar[str] = "case.view"
    case_id: str


@dataclass(frozen=True, kw_only=True)
class CasesListed(Event):
    """The list of cases was shown."""

    action: ClassVar[str] = "case.list"
    count: int


@dataclass(frozen=True, kw_only=True)
class EyesMarked(Event):
    """A case face placed by hand. The eye positions themselves stay with the face, not in the trail."""

    action: ClassVar[str] = "case.mark_eyes"
    changes: ClassVar[tuple[str, ...]] = ("case",)
    case_id: str
    photo: int  # the photo's number in the case
    face_id: int


@dataclass(frozen=True, kw_only=True)
class CaseDeleted(Event):
    """The tombstone of a deleted case: its id, what was removed (counts) and why."""

    action: ClassVar[str] = "case.delete"
    changes: ClassVar[tuple[str, ...]] = ("case",)
    case_id: str
    photos: int
    faces: int
    searches: int
    reason: str


# Searches and conclusions ----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class SearchRun(Event):
    action: ClassVar[str] = "search.run"
    changes: ClassVar[tuple[str, ...]] = ("search",)
    case_id: str
    search_id: int
    candidates: int
    gallery_references: int


@dataclass(frozen=True, kw_only=True)
class SearchViewed(Event):
    action: ClassVar[str] = "search.view"
    case_id: str
    search_id: int


@dataclass(frozen=True, kw_only=True)
class SearchesListed(Event):
    """The list of searches (of one case, when ``case_id`` is set) was shown."""

    action: ClassVar[str] = "search.list"
    count: int
    case_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ConclusionRecorded(Event):
    """An examiner's conclusion on one candidate of a search."""

    action: ClassVar[str] = "conclusion.record"
    changes: ClassVar[tuple[str, ...]] = ("search",)
    case_id: str
    search_id: int
    rank: int
    reference_id: str
    conclusion: str
    examiner: str


# Identifications -------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class IdentificationProposed(Event):
    action: ClassVar[str] = "identification.propose"
    changes: ClassVar[tuple[str, ...]] = ("case",)
    case_id: str
    reference_id: str
    search_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class IdentificationVerified(Event):
    """A second person's decision on a proposed identification (``outcome``: confirmed or rejected)."""

    action: ClassVar[str] = "identification.verify"
    changes: ClassVar[tuple[str, ...]] = ("case",)
    case_id: str
    reference_id: str
    outcome: str
    proposed_by: str


@dataclass(frozen=True, kw_only=True)
class IdentificationWithdrawn(Event):
    action: ClassVar[str] = "identification.withdraw"
    changes: ClassVar[tuple[str, ...]] = ("case",)
    case_id: str
    reference_id: str
    reason: str


# Outputs ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ReportCreated(Event):
    """A report written; its SHA-256 lets anyone holding the file show it is the one recorded."""

    action: ClassVar[str] = "report.create"
    case_id: str
    sha256: str
    format: str
    reference_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ExportCreated(Event):
    action: ClassVar[str] = "export.create"
    format: str
    count: int
    sha256: str


# Administration --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class UserAdded(Event):
    """A user added; ``bootstrap`` marks the first user, whom no admin could have added."""

    action: ClassVar[str] = "user.add"
    changes: ClassVar[tuple[str, ...]] = ("user",)
    user: str
    roles: tuple[str, ...]
    bootstrap: bool = False


@dataclass(frozen=True, kw_only=True)
class UserDisabled(Event):
    action: ClassVar[str] = "user.disable"
    changes: ClassVar[tuple[str, ...]] = ("user",)
    user: str


@dataclass(frozen=True, kw_only=True)
class UserRolesChanged(Event):
    """A user's roles changed by an admin."""

    action: ClassVar[str] = "user.roles"
    changes: ClassVar[tuple[str, ...]] = ("user",)
    user: str
    old: tuple[str, ...]
    new: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PreferenceSet(Event):
    """One of a user's own display settings changed (such as seeing post-mortem photos unblurred)."""

    action: ClassVar[str] = "user.preference"
    user: str
    name: str
    value: bool


# Logins ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class PasswordSet(Event):
    """A user's password set: by themself (``reset`` false) or by an admin (``reset`` true)."""

    action: ClassVar[str] = "user.password"
    changes: ClassVar[tuple[str, ...]] = ("user",)
    user: str
    reset: bool
    sessions_ended: int


@dataclass(frozen=True, kw_only=True)
class LoginSucceeded(Event):
    action: ClassVar[str] = "login.ok"
    changes: ClassVar[tuple[str, ...]] = ("user",)
    user: str
    session: int
    kind: str
    expires_at: str


@dataclass(frozen=True, kw_only=True)
class LoginRefused(Event):
    """A login refused. ``user`` is the user named when one has that name (their failed-login count is
    part of their record); nothing is kept of a name that is no user's (it may be a mistyped password)."""

    action: ClassVar[str] = "login.fail"
    changes: ClassVar[tuple[str, ...]] = ("user",)
    why: str
    user: str | None = None
    failures: int = 0


@dataclass(frozen=True, kw_only=True)
class LoginLockedOut(Event):
    """A user locked out after too many failed logins in a row (recorded with the failure that did it)."""

    action: ClassVar[str] = "login.lockout"
    changes: ClassVar[tuple[str, ...]] = ("user",)
    user: str
    failures: int
    until: str


@dataclass(frozen=True, kw_only=True)
class SessionEnded(Event):
    action: ClassVar[str] = "session.end"
    changes: ClassVar[tuple[str, ...]] = ("user",)
    user: str
    session: int
    why: str


@dataclass(frozen=True, kw_only=True)
class TokenCreated(Event):
    action: ClassVar[str] = "token.create"
    changes: ClassVar[tuple[str, ...]] = ("user",)
    user: str
    token: int
    label: str
    expires_at: str | None


@dataclass(frozen=True, kw_only=True)
class TokenRevoked(Event):
    action: ClassVar[str] = "token.revoke"
    changes: ClassVar[tuple[str, ...]] = ("user",)
    user: str
    token: int


@dataclass(frozen=True, kw_only=True)
class CalibrationAdded(Event):
    action: ClassVar[str] = "calibration.add"
    changes: ClassVar[tuple[str, ...]] = ("calibration",)
    calibration_id: int
    model: str


@dataclass(frozen=True, kw_only=True)
class SettingChanged(Event):
    """A workspace setting changed, or (``initial``) the value a new workspace was made with: the trail holds
    every value a setting has had, which :func:`verify` compares with the stored one."""

    action: ClassVar[str] = "setting.change"
    setting: str
    old: Scalar
    new: Scalar
    initial: bool = False


@dataclass(frozen=True, kw_only=True)
class RetentionApplied(Event):
    """Records past their retention date removed (each removal also has its own tombstone event)."""

    action: ClassVar[str] = "retention.apply"
    due_before: str  # ISO date
    references: int
    cases: int


@dataclass(frozen=True, kw_only=True)
class WorkspaceMaintained(Event):
    """The workspace's normal maintenance (``nomina maintain``): leftover photo files of erased or
    unfinished records removed, the index rebuilt from the database, the database file rebuilt."""

    action: ClassVar[str] = "workspace.maintain"
    photo_files_removed: int
    index_faces: int


@dataclass(frozen=True, kw_only=True)
class AuditVerified(Event):
    action: ClassVar[str] = "audit.verify"
    ok: bool
    events: int
    head: str
    broken_seq: int | None = None


@dataclass(frozen=True, kw_only=True)
class AuditBaseline(Event):
    """Written by :func:`record` itself, once, on a trail begun before record digests existed: the digest of
    every record then in the database, in its context. It vouches for nothing that happened before it."""

    action: ClassVar[str] = "audit.baseline"
    records: int


@dataclass(frozen=True, kw_only=True)
class CheckpointWritten(Event):
    """A signed checkpoint of the trail written (nomina.checkpoints): the head it names, the SHA-256 of the
    file and the fingerprint of the public key that verifies its signature."""

    action: ClassVar[str] = "audit.checkpoint"
    seq: int
    sha256: str
    public_key: str


@dataclass(frozen=True, kw_only=True)
class AuditViewed(Event):
    """The trail was read; the filters used are the object ids, so they are indexed like any other."""

    action: ClassVar[str] = "audit.view"
    count: int
    case_id: str | None = None
    reference_id: str | None = None
    search_id: int | None = None


#: Every event type :func:`record` accepts, by action name.
EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType(
    {
        cls.action: cls
        for cls in (
            ReferenceCreated,
            ReferenceUpdated,
            ReferencePhotosAdded,
            ReferenceViewed,
            ReferencesListed,
            ReferenceDeleted,
            CaseCreated,
            CaseUpdated,
            CaseViewed,
            CasesListed,
            EyesMarked,
            CaseDeleted,
            SearchRun,
            SearchViewed,
            SearchesListed,
            ConclusionRecorded,
            IdentificationProposed,
            IdentificationVerified,
            IdentificationWithdrawn,
            ReportCreated,
            ExportCreated,
            UserAdded,
            UserDisabled,
            UserRolesChanged,
            PreferenceSet,
            PasswordSet,
            LoginSucceeded,
            LoginRefused,
            LoginLockedOut,
            SessionEnded,
            TokenCreated,
            TokenRevoked,
            CalibrationAdded,
            SettingChanged,
            RetentionApplied,
            WorkspaceMaintained,
            AuditVerified,
            AuditViewed,
            AuditBaseline,
            CheckpointWritten,
        )
    }
)


# -- the guard ------------------------------------------------------------------------------------------
def check_detail(name: str, value: object) -> Any:
    """``value`` as plain JSON data (tuples become lists), or DetailRefused naming the detail.

    Refused: bytes of any kind and numpy values (photo data, crops, embeddings), more than
    :data:`MAX_NUMBERS` numbers in one detail (embeddings, landmarks), text over :data:`MAX_TEXT`
    characters, non-finite floats (not JSON), and any other type (it would not read back as it was hashed).
    """
    numbers = 0

    def plain(v: object, depth: int) -> Any:
        nonlocal numbers
        if depth > 3:
            raise DetailRefused(f"audit detail {name!r}: nested too deep (plain values and short lists only)")
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, bytes | bytearray | memoryview):
            raise DetailRefused(f"audit detail {name!r}: bytes may not go in the audit trail (biometric data)")
        if type(v).__module__ == "numpy":
            raise DetailRefused(
                f"audit detail {name!r}: numpy values may not go in the audit trail (biometric data); "
                "give a count or an id"
            )
        if isinstance(v, int | float):
            if isinstance(v, float) and not math.isfinite(v):
                raise DetailRefused(f"audit detail {name!r}: {v} is not a finite number")
            numbers += 1
            if numbers > MAX_NUMBERS:
                raise DetailRefused(
                    f"audit detail {name!r}: more than {MAX_NUMBERS} numbers may not go in the audit trail "
                    "(they could be an embedding or landmarks); give a count or an id"
                )
            return int(v) if isinstance(v, int) else float(v)
        if isinstance(v, str):
            if len(v) > MAX_TEXT:
                raise DetailRefused(f"audit detail {name!r}: text longer than {MAX_TEXT} characters")
            return str(v)
        if isinstance(v, list | tuple):
            return [plain(item, depth + 1) for item in v]
        if isinstance(v, dict) and all(isinstance(k, str) for k in v):
            return {str(k): plain(item, depth + 1) for k, item in v.items()}
        raise DetailRefused(
            f"audit detail {name!r}: a {type(v).__name__} may not go in the audit trail "
            "(text, numbers, booleans and short lists only)"
        )

    return plain(value, 0)


def _split(event: Event) -> tuple[dict[str, Any], dict[str, Any]]:
    """The event's object ids (for the columns) and its checked details."""
    ids: dict[str, Any] = dict.fromkeys(OBJECT_IDS)
    details: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name in OBJECT_IDS:
            optional = "None" in str(f.type)
            if not (value is None and optional) and not _valid_id(f.name, value):
                raise DetailRefused(f"audit {f.name}: {value!r} is not a valid id")
            ids[f.name] = value
        elif f.name == CONTEXT:
            raise DetailRefused(f"audit detail {CONTEXT!r}: a reserved name (the context record() adds)")
        else:
            details[f.name] = check_detail(f.name, value)
    return ids, details


def _valid_id(name: str, value: object) -> bool:
    if name == "search_id":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str) and bool(value.strip())


# -- the chain -----------------------------------------------------------------------------------------
def canonical(
    seq: int,
    at: str,
    actor: str,
    action: str,
    ids: Mapping[str, Any],
    details: Mapping[str, Any],
) -> str:
    """The text an event's hash covers (see the module docstring)."""
    body = {"seq": seq, "at": at, "actor": actor, "action": action, **{k: ids.get(k) for k in OBJECT_IDS}}
    body["details"] = details
    return _json(body)


def link_hash(prev_hash: str, canonical_form: str) -> str:
    """SHA-256 (hex) of the previous hash followed by the event's canonical form, UTF-8."""
    return hashlib.sha256((prev_hash + canonical_form).encode("utf-8")).hexdigest()


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _now() -> str:
    """UTC, ISO 8601 with microseconds and no zone suffix (the workspace's convention for times)."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Head:
    """The newest link of the chain: ``seq`` 0 and :data:`GENESIS` for an empty trail."""

    seq: int
    hash: str


def _stored_head(s: Session) -> tuple[db.WorkspaceInfo | None, Head | None]:
    row = s.get(db.WorkspaceInfo, HEAD_KEY)
    if row is None:
        return None, None
    try:
        value = json.loads(row.value)
        return row, Head(int(value["seq"]), str(value["hash"]))
    except (ValueError, TypeError, KeyError):
        return row, None


def head(s: Session) -> Head:
    """The chain head as recorded in ``workspace_info`` (what reports and exports should carry)."""
    _, stored = _stored_head(s)
    return stored or Head(0, GENESIS)


def record(s: Session, actor: str, event: Event) -> Head:
    """Append ``event``, done by ``actor``, to the trail in the caller's transaction; return the new head.

    The caller checks the actor's permission first (nomina.users.require_user); the trail records who
    acted, it does not decide who may. The caller's pending changes are flushed first; the event's context
    (:data:`CONTEXT`: OS user, host, and the digests of the records it changes, before and after) is then
    added to its details. Refuses an event type not in :data:`EVENT_TYPES` (UnknownEvent), a blank actor
    (PermissionDenied), and appending to a chain whose head no longer matches its newest event
    (AuditBroken): a new link would hide that the newest events were removed or rewritten. Two writers
    extending the same head cannot both succeed (``seq`` and ``prev_hash`` are unique); the second gets
    Conflict and its whole transaction is rolled back by the caller.
    """
    return record_all(s, actor, [event])


def record_all(s: Session, actor: str, events: Sequence[Event]) -> Head:
    """Append ``events``, in order, as :func:`record` appends one, for a transaction that made all their
    changes first (an import batch): the records they change are read in one query per kind, not once per
    event. Each event must change records no other of them changes, since each one's *after* is read once
    the changes are all made (ValueError otherwise: a programming error, nothing is appended). Any refusal
    (see :func:`record`) refuses them all, and the caller rolls its whole transaction back."""
    checked = []
    for event in events:
        registered = EVENT_TYPES.get(getattr(event, "action", ""))
        if registered is None or type(event) is not registered:
            raise UnknownEvent(f"audit trail: {type(event).__name__} is not a registered event type")
        if registered is AuditBaseline:
            raise UnknownEvent("audit trail: audit.baseline is written by the trail itself, never recorded by a caller")
        checked.append((event, *_split(event)))
    if not isinstance(actor, str) or not actor.strip():
        raise PermissionDenied("audit trail: no acting user named", field="user")
    actor = actor.strip()
    changes = [_changed(event) for event in events]
    if len({k for keys in changes for k in keys}) != sum(map(len, changes)):
        raise ValueError("audit trail: events recorded together must change different records")
    if not checked:
        return head(s)
    s.flush()  # the caller's own pending changes, so that their errors stay theirs

    info, current = _stored_head(s)
    newest = None
    if current is None:
        if info is not None or s.scalar(select(db.AuditEvent.seq).limit(1)) is not None:
            raise AuditBroken("audit trail: the chain head in workspace_info is missing or unreadable; not appending")
        current = Head(0, GENESIS)
    elif current.seq > 0:
        newest = s.get(db.AuditEvent, current.seq)
        if newest is None or newest.hash != current.hash:
            raise AuditBroken(f"audit trail: the newest event (seq {current.seq}) is missing or altered; not appending")
    first = current.seq + 1
    if newest is not None and _context_of(newest.details) is None:
        # A trail begun before record digests: vouch for the records as they were committed, once.
        secret = _digest_key(s)
        with _committed(s) as other:
            found = digests.digests(other, secret)
        context = {**_where(), "key": digests.fingerprint(secret), "records": dict(sorted(found.items()))}
        base = {"records": len(found), CONTEXT: context}
        current, info = _append(s, actor, AuditBaseline.action, dict.fromkeys(OBJECT_IDS), base, current, info)
    for (event, ids, details), context in zip(checked, _contexts(s, changes), strict=True):
        details[CONTEXT] = context
        current, info = _append(s, actor, event.action, ids, details, current, info)
    try:
        s.flush()
    except IntegrityError:
        raise Conflict(
            f"audit trail: event seq {first} already exists (another change was recorded at the same time, "
            "or the chain head was moved back); try again, and verify the trail if this persists"
        ) from None
    return current


def _append(
    s: Session,
    actor: str,
    action: str,
    ids: Mapping[str, Any],
    details: Mapping[str, Any],
    current: Head,
    info: db.WorkspaceInfo | None,
) -> tuple[Head, db.WorkspaceInfo]:
    """Add the event after ``current`` and move the head row (``info``, made when None) to it; the caller
    flushes."""
    seq, at = current.seq + 1, _now()
    digest = link_hash(current.hash, canonical(seq, at, actor, action, ids, details))
    s.add(
        db.AuditEvent(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            details=_json(details),
            prev_hash=current.hash,
            hash=digest,
            **ids,
        )
    )
    new_head = Head(seq, digest)
    if info is None:
        info = db.WorkspaceInfo(key=HEAD_KEY, value="")
        s.add(info)
    info.value = _json(dataclasses.asdict(new_head))
    return new_head, info


def host() -> str:
    """The name of the machine running Nomina ("unknown" when it has none)."""
    try:
        return socket.gethostname() or "unknown"
    except OSError:
        return "unknown"


def _where() -> dict[str, str]:
    """Who ran Nomina, and where: the operating-system user and the host."""
    return {"os_user": os_user(), "host": host()}


def _changed(event: Event) -> list[str]:
    """The keys of the records ``event`` changes."""
    keys = []
    for kind in type(event).changes:
        ident = getattr(event, "user" if kind == "user" else f"{kind}_id")
        if ident is not None:
            keys.append(digests.record_key(kind, ident))
    return keys


def _contexts(s: Session, changes: list[list[str]]) -> list[dict[str, Any]]:
    """The context :func:`record_all` adds to each event: OS user, host, and the records it changes (keys in
    ``changes``, different for each event), before and after.

    *After* is the record as this transaction leaves it so far. *Before* is the record as the transaction
    found it: as an earlier event of the same transaction left it, or else as it was committed, read on a
    connection of its own (writes are serialised, so nothing else changed it meanwhile). A record changed
    behind Nomina's back before this change then shows in the trail as a *before* that differs from the
    previous event's *after*, instead of being taken in by the change.
    """
    where, via = _where(), s.info.get(VIA)
    keys = [k for ks in changes for k in ks]
    after: dict[str, str] = {}
    fingerprint = ""
    if keys:
        secret = _digest_key(s)
        fingerprint = digests.fingerprint(secret)
        after = digests.digests(s, secret, keys)
        read_before(s, keys)  # the ones no earlier event of the transaction left, unless a batch read them
    seen, committed = _seen(s), _committed_digests(s)
    found = []
    for ks in changes:
        # 128 random bits under the hash: an event shown hidden to a blind verifier (a view by the proposer)
        # cannot be named by hashing each user's name and credential until the result matches the chain
        context: dict[str, Any] = {**where, "salt": secrets.token_hex(16)}
        if via is not None:
            context["via"] = via
        if ks:
            context["key"] = fingerprint
            context["records"] = {k: [seen[k] if k in seen else committed[k], after.get(k)] for k in ks}
            seen.update({k: after.get(k) for k in ks})
        found.append(context)
    return found


def read_before(s: Session, keys: Iterable[str]) -> None:
    """Read, in one query per kind, the committed digests of records the transaction is about to change, as
    *before* for the events that will change them (see :func:`_context`, which reads those no earlier event
    left); a batch that records many events calls it once for all of them, instead of a committed read for
    each. Call it inside the write transaction: writes are serialised, so what is committed cannot change
    before those events are recorded."""
    seen, committed = _seen(s), _committed_digests(s)
    wanted = [k for k in dict.fromkeys(keys) if k not in seen and k not in committed]
    if not wanted:
        return
    secret = _digest_key(s)
    with _committed(s) as other:
        found = digests.digests(other, secret, wanted)
    committed.update({k: found.get(k) for k in wanted})


def _committed_digests(s: Session) -> dict[str, str | None]:
    """Committed digests read ahead by :func:`read_before` in this transaction, by record key (None: absent)."""
    committed: dict[str, str | None] = _kept(s).setdefault("committed", {})
    return committed


def _digest_key(s: Session) -> bytes:
    """The record digest key (made when missing), read once per transaction."""
    kept = _kept(s)
    if kept.get("key") is None:
        kept["key"] = digests.key(s, create=True)
        if kept["key"] is None:
            raise AuditBroken(
                f"audit trail: the record digest key in workspace_info ({digests.KEY_INFO}) is unreadable; "
                "not appending"
            )
    secret: bytes = kept["key"]
    return secret


def _seen(s: Session) -> dict[str, str | None]:
    """The digests this transaction's events have left, by record key."""
    seen: dict[str, str | None] = _kept(s).setdefault("seen", {})
    return seen


def _kept(s: Session) -> dict[str, Any]:
    """What :func:`record` keeps for the rest of the session's current transaction (forgotten with it)."""
    transaction = s.get_transaction()
    kept = s.info.get("nomina.audit")
    if kept is None or kept[0] is not transaction:
        kept = (transaction, {})
        s.info["nomina.audit"] = kept
    found: dict[str, Any] = kept[1]
    return found


@contextmanager
def _committed(s: Session) -> Iterator[Session]:
    """A session on a connection of its own: it reads what was committed, not this transaction's changes."""
    bind = s.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    with Session(engine) as other:
        yield other


def _context_of(details: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(details)
    except (TypeError, ValueError):
        return None
    context = parsed.get(CONTEXT) if isinstance(parsed, dict) else None
    return context if isinstance(context, dict) else None


# -- checking ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verification(Record):
    """What :func:`verify` found.

    ``events`` counts the events found sound (all of them when ``ok``); ``head`` is the hash of the
    newest sound event (:data:`GENESIS` for none): on an intact trail, the value to keep elsewhere and
    compare later. On a break, ``broken_seq`` is the first event that cannot be trusted and ``reason``
    says in one line what the break means. ``records`` lists, one line each, the records that disagree
    with an intact chain (changed, added or removed behind Nomina's back); ``records_checked`` counts the
    records compared (0 on a trail begun before record digests that nothing has been recorded in since).
    """

    ok: bool
    events: int
    head: str
    broken_seq: int | None = None
    reason: str | None = None
    records: list[str] = field(default_factory=list)
    records_checked: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.events} events, head {self.head}"
        if self.broken_seq is not None:
            return f"audit trail broken at seq {self.broken_seq}: {self.reason}"
        lines = [
            f"audit trail intact: {self.events} events, head {self.head}; "
            f"but {len(self.records)} record finding(s) disagree with it:",
            *self.records,
        ]
        return "\n".join(lines)


def verify(s: Session) -> Verification:
    """Walk the whole chain in ``seq`` order and report the first broken link; then check every record.

    Reads only, so it can run on a copy of the database. Checks, for each event: that its ``seq`` follows
    the previous one (a gap means events were deleted or renumbered), that its ``prev_hash`` is the
    previous event's hash (deleted, reordered, or the previous event rewritten with a new hash), and that
    its hash matches its contents (edited). Then that the head in ``workspace_info`` names the newest
    event (the newest events deleted, or events added around :func:`record`). On an intact chain, it
    then follows each record's digests through the trail and compares them with the records in the
    database (:class:`_Records`).
    """
    columns = (
        db.AuditEvent.seq,
        db.AuditEvent.at,
        db.AuditEvent.actor,
        db.AuditEvent.action,
        db.AuditEvent.case_id,
        db.AuditEvent.reference_id,
        db.AuditEvent.search_id,
        db.AuditEvent.details,
        db.AuditEvent.prev_hash,
        db.AuditEvent.hash,
    )
    stmt = select(*columns).order_by(db.AuditEvent.seq).execution_options(yield_per=2000)
    count, last_seq, last_hash = 0, 0, GENESIS
    found = _Records()

    def broken(seq: int, reason: str) -> Verification:
        return Verification(False, count, last_hash, seq, reason)

    # Closed on every way out of the loop: on PostgreSQL the rows come through a server-side cursor.
    with s.execute(stmt) as rows:
        for seq, at, actor, action, case_id, reference_id, search_id, details, prev_hash, digest in rows:
            if seq > last_seq + 1:
                gap = f"seq {last_seq + 1}" if seq == last_seq + 2 else f"seq {last_seq + 1} to {seq - 1}"
                return broken(last_seq + 1, f"{gap} missing: events deleted or renumbered")
            if seq != last_seq + 1:
                return broken(seq, f"seq {seq} is not a position in the chain: event added outside Nomina")
            if prev_hash != last_hash:
                before = f"seq {last_seq}'s hash" if last_seq else "the genesis value"
                return broken(seq, f"prev_hash does not match {before}: events deleted, reordered or rewritten")
            try:
                parsed = json.loads(details)
            except (TypeError, ValueError):
                return broken(seq, "details are not valid JSON: event edited")
            ids = {"case_id": case_id, "reference_id": reference_id, "search_id": search_id}
            try:
                expected = link_hash(prev_hash, canonical(seq, at, actor, action, ids, parsed))
            except (TypeError, ValueError):
                return broken(seq, "contents cannot be read as an event: event edited")
            if expected != digest:
                return broken(seq, "contents do not match the event's hash: event edited")
            found.add(seq, action, case_id, parsed)
            count, last_seq, last_hash = count + 1, seq, digest

    info, stored = _stored_head(s)
    if stored is None:
        if info is None and count == 0:
            return Verification(True, 0, GENESIS)
        return broken(1, "the chain head in workspace_info is missing or unreadable: removed or edited")
    if stored.seq > last_seq:
        return broken(
            last_seq + 1, f"the head names seq {stored.seq} but the trail ends at seq {last_seq}: newest events deleted"
        )
    if stored.seq < last_seq:
        return broken(
            stored.seq + 1,
            f"the head names seq {stored.seq} but the trail goes on to seq {last_seq}: "
            "head moved back, or events added outside Nomina",
        )
    if stored.hash != last_hash:
        return broken(last_seq, "the head's hash does not match the newest event: newest event rewritten")
    problems, checked = found.check(s)
    problems += found.check_settings(_stored_settings(s))
    problems += _dangling(s)
    return Verification(not problems, count, last_hash, records=problems, records_checked=checked)


#: A stored setting that is not JSON: it equals no value the trail can hold.
_UNREADABLE = object()


def _stored_settings(s: Session) -> dict[str, Any]:
    """The workspace settings as stored (name -> value), an unreadable value as :data:`_UNREADABLE`."""
    stored: dict[str, Any] = {}
    for key, value in s.execute(
        select(db.WorkspaceInfo.key, db.WorkspaceInfo.value).where(db.WorkspaceInfo.key.startswith(STORED_PREFIX))
    ):
        try:
            stored[key.removeprefix(STORED_PREFIX)] = json.loads(value)
        except (TypeError, ValueError, RecursionError):
            stored[key.removeprefix(STORED_PREFIX)] = _UNREADABLE
    return stored


def _dangling(s: Session) -> list[str]:
    """One line per table whose rows refer to a row that does not exist (a face of no photo, a session of no
    user, an identification of no case): written with the database's own tools, which on SQLite do not
    check references unless asked. Such rows belong to no record, so no digest would show them."""
    found = []
    for table in db.Base.metadata.sorted_tables:
        for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
            child, parent = fk.parent, fk.column
            orphans = (
                select(func.count())
                .select_from(table.outerjoin(parent.table, child == parent))
                .where(child.is_not(None), parent.is_(None))
            )
            n = s.scalar(orphans) or 0
            if n:
                found.append(
                    f"{table.name}: {n} row(s) whose {child.name} names no row of {parent.table.name}: "
                    "written behind Nomina's back"
                )
    return found


_UNSEEN = object()


def _same(a: Any, b: Any) -> bool:
    """Whether two JSON values are the same value of the same type (``1`` is not ``true``)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class _Records:
    """Each record's history through the trail, and its judgement against the records in the database.

    ``add`` is given the events in ``seq`` order (their hashes already checked). A record's history is the
    list of ``(seq, action, value)`` of the events naming it in their context: ``value`` is ``[before,
    after]`` for a change and the digest alone in the baseline.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[tuple[int, str, Any]]] = defaultdict(list)
        # search key -> (seq, case id) of each event naming it (a case's erasure takes its searches; a search id
        # freed that way was given again by SQLite before Nomina stopped reusing them)
        self.case_of: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self.notes: list[str] = []
        self.started: int | None = None  # seq of the first event with a context
        self.bare: list[int] = []  # events without a context after the first with one
        self.keys: dict[str, int] = {}  # digest key fingerprint -> first seq that used it
        self.events = 0
        # calibrations added before calibrations had digests: their rows cannot be compared, only accounted for
        self.undigested: set[str] = set()
        # workspace settings: the values the trail gave each, newest last, with the seq; whether the trail
        # holds the values the workspace was made with (workspaces made before that hold them only in part)
        self.settings: dict[str, list[tuple[int, Any, Any]]] = defaultdict(list)
        self.settings_from_start = False

    def add(self, seq: int, action: str, case_id: str | None, details: Any) -> None:
        self.events += 1
        self._note_setting(seq, action, details)
        context = details.get(CONTEXT) if isinstance(details, dict) else None
        records = context.get("records") if isinstance(context, dict) else None
        self._note_calibration(action, details, records if isinstance(records, dict) else {})
        if not isinstance(context, dict):
            if self.started is not None:
                self.bare.append(seq)
            return
        if self.started is None:
            self.started = seq
            if seq > 1 and action != AuditBaseline.action:
                self.notes.append(
                    f"seq {seq} ({action}) is the first event with record digests but not a baseline: "
                    "the records before it are unaccounted for"
                )
        elif action == AuditBaseline.action:
            self.notes.append(
                f"seq {seq}: a second baseline: the records were vouched for again, outside the normal course"
            )
        if not isinstance(records, dict):
            return
        fp = context.get("key")
        if isinstance(fp, str):
            self.keys.setdefault(fp, seq)
        for k, value in records.items():
            self.history[k].append((seq, action, value))
            if k.startswith("search ") and case_id is not None:
                self.case_of[k].append((seq, case_id))

    def _note_calibration(self, action: str, details: Any, records: dict[str, Any]) -> None:
        number = _calibration_added(action, details)
        if number is not None and digests.record_key("calibration", number) not in records:
            self.undigested.add(digests.record_key("calibration", number))

    def _note_setting(self, seq: int, action: str, details: Any) -> None:
        if action != SettingChanged.action or not isinstance(details, dict):
            return
        name = details.get("setting")
        if isinstance(name, str):
            self.settings[name].append((seq, details.get("old"), details.get("new")))
            if details.get("initial") is True:
                self.settings_from_start = True

    def check_settings(self, stored: Mapping[str, Any]) -> list[str]:
        """One line per workspace setting whose stored value (``stored``: name -> value, as the database holds
        it) is not the one the trail gave it last, or was changed behind Nomina's back between two changes."""
        problems = []
        for name in sorted(stored.keys() | self.settings.keys()):
            history = self.settings.get(name, [])
            shown = shown_value(name[:80])
            for (seq, _, new), (later, old, _) in itertools.pairwise(history):
                if not _same(old, new):
                    problems.append(
                        f"setting {shown}: changed behind Nomina's back between seq {seq} and seq {later} "
                        f"(left {shown_value(new)}, found {shown_value(old)})"
                    )
                    break
            if not history:
                if self.settings_from_start:
                    problems.append(f"setting {shown}: no event records it: added behind Nomina's back")
                continue
            seq, _, last = history[-1]
            if name not in stored:
                problems.append(
                    f"setting {shown}: gone, but seq {seq} set it to {shown_value(last)}: removed behind Nomina's back"
                )
            elif stored[name] is _UNREADABLE:
                problems.append(f"setting {shown}: its stored value is not JSON: edited behind Nomina's back")
            elif not _same(stored[name], last):
                problems.append(
                    f"setting {shown}: {shown_value(stored[name])}, but seq {seq} set it to {shown_value(last)}: "
                    "changed behind Nomina's back"
                )
        return problems

    def check(self, s: Session, keys: Collection[str] | None = None) -> tuple[list[str], int]:
        """One line per finding, and how many records were compared (of ``keys``, or all)."""
        if self.started is None:
            return [], 0  # a trail begun before record digests, nothing recorded since: nothing to compare with
        problems = list(self.notes)
        if self.bare:
            shown = ", ".join(str(n) for n in self.bare[:3]) + (" ..." if len(self.bare) > 3 else "")
            problems.append(
                f"{len(self.bare)} event(s) without a context (OS user, host, record digests) after seq "
                f"{self.started}: seq {shown}: written by a Nomina without them, or outside Nomina"
            )
        secret = digests.key(s)
        if secret is None:
            if self.history:
                problems.append(
                    f"the record digest key in workspace_info ({digests.KEY_INFO}) is missing or unreadable: "
                    "removed or edited; the records cannot be checked"
                )
            return problems, 0
        mine = digests.fingerprint(secret)
        others = {fp: seq for fp, seq in self.keys.items() if fp != mine}
        if others:
            seq = min(others.values())
            problems.append(
                f"the record digest key in workspace_info is not the one seq {seq} used: replaced or edited; "
                "the records cannot be checked"
            )
            return problems, 0
        now = digests.digests(s, secret, keys)
        wanted = sorted(set(now) | set(self.history)) if keys is None else sorted(set(keys))
        for k in wanted:
            finding = self._judge(k, now.get(k))
            if finding is not None:
                problems.append(finding)
        return problems, len(wanted)

    def _judge(self, k: str, now: str | None) -> str | None:
        last: Any = _UNSEEN
        last_seq, last_action = 0, ""
        for seq, action, value in self.history.get(k, []):
            if isinstance(value, list) and len(value) == 2:
                before, after = value
                if last is _UNSEEN and before is not None:
                    return (
                        f"{k}: existed before seq {seq} ({action}) with no event recording it: "
                        "added behind Nomina's back"
                    )
                if (
                    last is not _UNSEEN
                    and before != last
                    and not (before is None and self._erased_with_case(k, last_seq, until=seq))
                ):
                    return (
                        f"{k}: changed behind Nomina's back between seq {last_seq} ({last_action}) "
                        f"and seq {seq} ({action})"
                    )
                last = after
            elif isinstance(value, str) and action == AuditBaseline.action:
                last = value
            else:
                return f"{k}: seq {seq} ({action}) holds an unreadable digest: event written outside Nomina"
            last_seq, last_action = seq, action
        if last is _UNSEEN:
            if now is None or k in self.undigested:
                return None
            return f"{k}: no event records it: added behind Nomina's back"
        if now == last:
            return None
        if now is None:
            if self._erased_with_case(k, last_seq):
                return None
            return (
                f"{k}: gone, but seq {last_seq} ({last_action}) recorded it and no erasure followed: "
                "removed behind Nomina's back"
            )
        if last is None:
            return f"{k}: present, but seq {last_seq} ({last_action}) recorded it as gone: added behind Nomina's back"
        return f"{k}: changed behind Nomina's back since seq {last_seq} ({last_action})"

    def _erased_with_case(self, k: str, since: int, until: int | None = None) -> bool:
        """Whether search ``k`` went with its case, erased (with a tombstone) after ``since`` (and before
        ``until``, when a later search was given the same id)."""
        owners = [case_id for seq, case_id in self.case_of.get(k, []) if seq <= since]
        if not owners:
            return False
        case = self.history.get(digests.record_key("case", owners[-1]), [])
        return any(
            since < seq and (until is None or seq < until) and isinstance(value, list) and value[-1:] == [None]
            for seq, _, value in case
        )


def _calibration_added(action: str, details: Any) -> int | None:
    """The id of the calibration a ``calibration.add`` event's details name; None for any other event, or
    details that name none."""
    number = details.get("calibration_id") if action == CalibrationAdded.action and isinstance(details, dict) else None
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def newest_calibration(s: Session) -> int | None:
    """The calibration the newest ``calibration.add`` event added: the one in use, whatever rows were added or
    removed behind Nomina's back (the event's own hash is checked by :func:`check_records` with the
    calibration). None when no such event names one."""
    details = s.scalar(
        select(db.AuditEvent.details)
        .where(db.AuditEvent.action == CalibrationAdded.action)
        .order_by(db.AuditEvent.seq.desc())
        .limit(1)
    )
    try:
        parsed = json.loads(details) if details is not None else None
    except (TypeError, ValueError, RecursionError):
        return None
    return _calibration_added(CalibrationAdded.action, parsed)


def check_records(s: Session, keys: Iterable[str]) -> list[str]:
    """One line per record of ``keys`` that disagrees with the trail (as :func:`verify` judges it), quickly.

    Reads only the events naming these records (by their indexed ids) and the baseline, and checks each of
    those events' own hash; it does not walk the whole chain (:func:`verify` does). Empty on a trail begun
    before record digests that nothing has been recorded in since.
    """
    wanted = sorted(set(keys))
    if not wanted:
        return []
    conditions = [db.AuditEvent.action == AuditBaseline.action]
    by_column = {"case": db.AuditEvent.case_id, "reference": db.AuditEvent.reference_id}
    for k in wanted:
        kind, ident = digests.parse_key(k)
        if kind in by_column:
            conditions.append(by_column[kind] == ident)
        elif kind == "search" and ident.isascii() and ident.isdigit():
            conditions.append(db.AuditEvent.search_id == int(ident))
        elif kind == "user":
            conditions.append(db.AuditEvent.action.in_([UserAdded.action, UserDisabled.action]))
        elif kind == "calibration":
            conditions.append(db.AuditEvent.action == CalibrationAdded.action)
    first = s.get(db.AuditEvent, 1)
    found = _Records()
    if first is not None and _context_of(first.details) is not None:
        found.started = 1
    problems: list[str] = []
    for row in s.scalars(select(db.AuditEvent).where(or_(*conditions)).order_by(db.AuditEvent.seq)):
        try:
            parsed = json.loads(row.details)
            ids = {"case_id": row.case_id, "reference_id": row.reference_id, "search_id": row.search_id}
            sound = link_hash(row.prev_hash, canonical(row.seq, row.at, row.actor, row.action, ids, parsed)) == row.hash
        except (TypeError, ValueError):
            sound = False
        if not sound:
            problems.append(f"seq {row.seq}: contents do not match the event's hash: event edited")
            continue
        context = parsed.get(CONTEXT) if isinstance(parsed, dict) else None
        if isinstance(context, dict) and found.started is None:
            found.started = row.seq  # the baseline
        records = context.get("records") if isinstance(context, dict) else None
        found._note_calibration(row.action, parsed, records if isinstance(records, dict) else {})
        if isinstance(records, dict):
            fp = context.get("key") if isinstance(context, dict) else None
            if isinstance(fp, str):
                found.keys.setdefault(fp, row.seq)
            for k, value in records.items():
                if k in wanted:
                    found.history[k].append((row.seq, row.action, value))
    more, _ = found.check(s, wanted)
    return problems + more


def require_records(s: Session, keys: Iterable[str], what: str) -> None:
    """Refuse (RecordTampered) when any record of ``keys`` disagrees with the trail; ``what`` says what was
    refused (``"report not written"``)."""
    problems = check_records(s, keys)
    if problems:
        more = f" (and {len(problems) - 1} more finding(s))" if len(problems) > 1 else ""
        record_named = problems[0].split(":", 1)[0]
        raise RecordTampered(
            f"{problems[0]}{more}; {what}: run nomina audit verify",
            record=record_named if record_named.split(" ", 1)[0] in digests.KINDS else None,
        )


# -- reading -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry(Record):
    """One event of the trail as shown: ``details`` holds the event's fields other than its object ids."""

    seq: int
    at: str  # UTC, ISO 8601 with microseconds, exactly as hashed
    actor: str
    action: str
    case_id: str | None
    reference_id: str | None
    search_id: int | None
    details: dict[str, Any]
    hash: str
    os_user: str | None = None  # who ran Nomina, and where (None on events recorded before they were)
    host: str | None = None
    via: str | None = None  # how the actor proved who they are: session N, token N, password, library


def entries(
    s: Session,
    case_id: str | None = None,
    reference_id: str | None = None,
    limit: int | None = None,
    actor: str | None = None,
    before: int | None = None,
) -> list[Entry]:
    """:func:`events` as typed entries."""
    found = events(s, case_id=case_id, reference_id=reference_id, limit=limit, actor=actor, before=before)
    return [Entry(**e) for e in found]


def events(
    s: Session,
    case_id: str | None = None,
    reference_id: str | None = None,
    search_id: int | None = None,
    limit: int | None = None,
    actor: str | None = None,
    before: int | None = None,
) -> list[dict[str, Any]]:
    """The trail, oldest first, as plain dicts for display or JSON; filters combine (all must match).

    ``actor`` keeps one user's events, ``before`` those with a lower ``seq`` (a page further back), and
    ``limit`` keeps the newest ``limit`` events. Each dict: ``seq`` (int), ``at`` (UTC, ISO 8601 with
    microseconds), ``actor``, ``action``, ``case_id``, ``reference_id``, ``search_id`` (None where the
    event has none), ``details`` (dict of the event's other fields), ``hash``, and from the event's
    context ``os_user`` and ``host`` (None on events recorded before them). The record digests stay in the
    stored details, for :func:`verify`. The dicts are not checked against the chain: run :func:`verify`
    for that.
    """
    stmt = select(db.AuditEvent)
    for column, value in (
        (db.AuditEvent.case_id, case_id),
        (db.AuditEvent.reference_id, reference_id),
        (db.AuditEvent.search_id, search_id),
        (db.AuditEvent.actor, actor),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if before is not None:
        stmt = stmt.where(db.AuditEvent.seq < before)
    stmt = stmt.order_by(db.AuditEvent.seq.desc())
    if limit is not None:
        if isinstance(limit, bool) or not 0 <= limit < 2**63:
            raise InvalidField(f"limit: {shown_value(limit)} is not a number of events (0 to {2**63 - 1})")
        stmt = stmt.limit(limit)
    rows = list(s.scalars(stmt))
    rows.reverse()
    shown = []
    for r in rows:
        try:
            details = json.loads(r.details)
        except (TypeError, ValueError, RecursionError):  # edited behind Nomina's back: verify names the event
            details = {"unreadable": shown_value(r.details)}
        context = details.pop(CONTEXT, None) if isinstance(details, dict) else None
        context = context if isinstance(context, dict) else {}
        shown.append(
            {
                "seq": r.seq,
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "case_id": r.case_id,
                "reference_id": r.reference_id,
                "search_id": r.search_id,
                "details": details,
                "hash": r.hash,
                "os_user": context.get("os_user"),
                "host": context.get("host"),
                "via": context.get("via"),
            }
        )
    return shown
