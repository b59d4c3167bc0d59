"""Erasure, retention and maintenance: removing a record so that no biometric trace of it stays.

Erasing a reference or a case (``Workspace.delete_reference``, ``delete_case``, ``apply_retention``)
happens in two steps:

1. In one transaction (:func:`erase_reference`, :func:`erase_case`): the record's row, its photos'
   links with their provenance, its faces (box, landmarks, quality measures, embedding), and the photo
   records no other record uses; for a case also its searches with their candidates and conclusions,
   and its identifications. The audit trail gets the tombstone (id, counts, reason) in the same
   transaction. SQLite's ``secure_delete`` overwrites the erased rows with zeros in the pages it changes.
2. After the commit (:func:`finish`): the files of photos no other record uses are overwritten and
   removed; after a reference, every derived index file is removed (they hold every reference vector;
   the next search rebuilds them); and the database is checkpointed, which copies the zeroed pages into
   ``nomina.db`` and truncates ``nomina.db-wal``, the file that still held earlier images of those pages.

Step 2 cannot be part of the transaction (files are not transactional). When it is interrupted or
blocked, the workspace's normal maintenance (``Workspace.maintain``, ``nomina maintain``) completes it:
it removes photo files no record names (:func:`sweep`), rebuilds the index from the database, rebuilds
the database file from its live rows and checkpoints (:func:`compact`). docs/erasure.md says what stays,
and why.

Retention: a reference whose ``retain_until`` date is before today is erased the same way, with the
reason ``retention date YYYY-MM-DD passed`` (:func:`due_references`, :func:`retention_reason`). Cases
carry no retention date: an unidentified person's record is kept until they are identified.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from . import audit, index
from .errors import Conflict
from .records import Record
from .store import PhotoStore
from .store import schema as db
from .store.database import checkpoint, vacuum

__all__ = [
    "CaseErased",
    "MaintenanceResult",
    "ReferenceErased",
    "RetentionErased",
    "RetentionResult",
    "case_erased",
    "reference_erased",
    "retention_erased",
    "STRAY_GRACE_SECONDS",
    "Erasure",
    "compact",
    "due_references",
    "erase_due",
    "erase_case",
    "erase_reference",
    "finish",
    "refuse_erased_reference_id",
    "retention_reason",
    "sweep",
]

#: A photo file no record names is removed by maintenance only once it is this old: a photo being
#: enrolled is written before its record is committed, and must not be taken for a leftover.
STRAY_GRACE_SECONDS = 3600

_MAINTAIN = "run `nomina maintain` when no one else is using the workspace"


@dataclass(frozen=True)
class Erasure:
    """What one erasure removed from the database; ``photo_files`` are removed from disk by :func:`finish`."""

    kind: str  # "reference" or "case"
    record_id: str
    photos: int  # the record's photos
    faces: int
    photo_files: tuple[str, ...]  # SHA-256 of the photos no other record uses
    searches: int = 0  # a case's searches
    retain_until: date | None = None  # the retention date of a reference erased by retention


@dataclass(frozen=True)
class ReferenceErased(Record):
    """A reference erased; ``warnings`` name file steps not completed (``maintain`` completes them)."""

    reference_id: str
    faces_removed: int
    photos_removed: int
    warnings: list[str]


@dataclass(frozen=True)
class CaseErased(Record):
    """A case erased with its photos, faces, searches, conclusions and identifications."""

    case_id: str
    faces_removed: int
    photos_removed: int
    searches_removed: int
    warnings: list[str]


@dataclass(frozen=True)
class RetentionErased(Record):
    """A reference erased (or, in a dry run, to be erased) because its retention date passed."""

    reference_id: str
    retain_until: date | None
    faces_removed: int
    photos_removed: int


@dataclass(frozen=True)
class RetentionResult(Record):
    due_before: date
    dry_run: bool
    references: list[RetentionErased]
    held: list[str]  # references due but named by an open identification, so kept
    warnings: list[str]


@dataclass(frozen=True)
class MaintenanceResult(Record):
    photo_files_removed: int
    index_faces: int
    database_bytes_before: int
    database_bytes_after: int
    warnings: list[str]


def reference_erased(e: Erasure, warnings: list[str]) -> ReferenceErased:
    return ReferenceErased(e.record_id, e.faces, len(e.photo_files), warnings)


def case_erased(e: Erasure, warnings: list[str]) -> CaseErased:
    return CaseErased(e.record_id, e.faces, len(e.photo_files), e.searches, warnings)


def retention_erased(e: Erasure) -> RetentionErased:
    return RetentionErased(e.record_id, e.retain_until, e.faces, len(e.photo_files))


def erase_reference(s: Session, ref: db.Reference, reason: str, actor: str, retention: bool = False) -> Erasure:
    """Delete a reference's rows and record its tombstone, in the caller's transaction; ``retention``
    when its retention date is why (the summary then shows the date)."""
    shas = {rp.photo_sha256 for rp in ref.photos}
    erased = Erasure(
        kind="reference",
        record_id=ref.id,
        photos=len(shas),
        faces=sum(len(rp.faces) for rp in ref.photos),
        photo_files=(),
        retain_until=ref.retain_until if retention else None,
    )
    s.delete(ref)
    s.flush()
    files = _drop_orphan_photos(s, shas)
    audit.record(
        s,
        actor,
        audit.ReferenceDeleted(reference_id=erased.record_id, photos=erased.photos, faces=erased.faces, reason=reason),
    )
    return _with_files(erased, files)


def erase_case(s: Session, case: db.Case, reason: str, actor: str) -> Erasure:
    """Delete a case's rows (searches, conclusions and identifications too) and record its tombstone."""
    shas = {cp.photo_sha256 for cp in case.photos}
    erased = Erasure(
        kind="case",
        record_id=case.id,
        photos=len(shas),
        faces=sum(len(cp.faces) for cp in case.photos),
        photo_files=(),
        searches=len(case.searches),
    )
    s.delete(case)
    s.flush()
    files = _drop_orphan_photos(s, shas)
    audit.record(
        s,
        actor,
        audit.CaseDeleted(
            case_id=erased.record_id,
            photos=erased.photos,
            faces=erased.faces,
            searches=erased.searches,
            reason=reason,
        ),
    )
    return _with_files(erased, files)


def refuse_erased_reference_id(s: Session, reference_id: str) -> None:
    """Refuse an erased reference's id to a new reference (Conflict).

    Searches of other cases, their conclusions and identifications keep an erased reference's id, and
    show the name of the reference now holding it: a new record under the same id would pass for the
    erased one there, with scores its photos never gave. A case's id may be given again: nothing but the
    audit trail keeps it, and the trail shows the erasure before the new record.
    """
    erased_at = s.scalar(
        select(db.AuditEvent.at)
        .where(db.AuditEvent.reference_id == reference_id, db.AuditEvent.action == audit.ReferenceDeleted.action)
        .order_by(db.AuditEvent.seq.desc())
        .limit(1)
    )
    if erased_at is not None:
        raise Conflict(
            f"reference {reference_id}: the id of a reference erased on {erased_at[:10]}; give the new record "
            "another id, so that earlier searches and the audit trail keep meaning one person",
            field="reference_id",
            record=f"reference {reference_id}",
        )


def _with_files(erased: Erasure, files: list[str]) -> Erasure:
    return replace(erased, photo_files=tuple(files))


def _drop_orphan_photos(s: Session, shas: set[str]) -> list[str]:
    """Delete the photo records no reference or case uses any more; returns their SHA-256."""
    orphaned = []
    for sha in sorted(shas):
        used = s.scalar(
            select(func.count()).select_from(db.ReferencePhoto).where(db.ReferencePhoto.photo_sha256 == sha)
        ) or s.scalar(select(func.count()).select_from(db.CasePhoto).where(db.CasePhoto.photo_sha256 == sha))
        if not used:
            photo = s.get(db.Photo, sha)
            if photo is not None:
                s.delete(photo)
            orphaned.append(sha)
    return orphaned


def finish(store: PhotoStore, index_root: Path, engine: Engine, erased: Sequence[Erasure]) -> list[str]:
    """After the erasing transaction committed: remove the files that still hold the erased data.

    Overwrites and removes the photo files no other record uses; after a reference, removes every index
    file under ``index_root``; checkpoints the database and truncates its WAL. Returns one line for each
    step that could not be completed: the erasure itself stands, and maintenance completes it.
    """
    warnings = []
    for sha in sorted({sha for e in erased for sha in e.photo_files}):
        try:
            store.remove(sha)
        except OSError as exc:
            warnings.append(f"{store.path(sha)}: photo file not removed ({exc.strerror}); {_MAINTAIN}")
    if any(e.kind == "reference" for e in erased):
        try:
            index.remove_files(index_root)
        except OSError as exc:
            warnings.append(f"{index_root}: index files not removed ({exc.strerror}); {_MAINTAIN}")
    if not checkpoint(engine):
        warnings.append(
            f"nomina.db-wal: still holds earlier images of the erased rows (the database was in use); {_MAINTAIN}"
        )
    return warnings


# -- retention --------------------------------------------------------------------------------------------
#: Identification statuses that hold a reference past its retention date: the record is evidence of an
#: identification that is open, verified or under review.
HOLDING = ("proposed", "disputed", "identified")


def held_references(s: Session) -> set[str]:
    """References an open (proposed, disputed or verified) identification names."""
    return set(s.scalars(select(db.Identification.reference_id).where(db.Identification.status.in_(HOLDING))))


def due_references(s: Session, today: date) -> tuple[list[db.Reference], list[db.Reference]]:
    """References whose retention date is before ``today``, oldest date first: those to erase, and those
    held because an open identification names them."""
    due = list(
        s.scalars(
            select(db.Reference)
            .where(db.Reference.retain_until < today)
            .order_by(db.Reference.retain_until, db.Reference.id)
        )
    )
    held = held_references(s)
    return [r for r in due if r.id not in held], [r for r in due if r.id in held]


def erase_due(s: Session, today: date, actor: str) -> tuple[list[Erasure], list[str]]:
    """Erase every reference due for erasure (see :func:`due_references`), each with its tombstone; return
    the erasures and the ids of the references held."""
    due, held = due_references(s, today)
    erased = [erase_reference(s, ref, retention_reason(ref.retain_until), actor, retention=True) for ref in due]
    return erased, [r.id for r in held]


def retention_reason(retain_until: date | None) -> str:
    """The reason recorded in the tombstone of a reference erased by retention."""
    return f"retention date {retain_until} passed"


# -- maintenance ------------------------------------------------------------------------------------------
def sweep(store: PhotoStore, known: set[str], now: float | None = None) -> tuple[int, list[str]]:
    """Overwrite and remove photo-store files that no photo record names and are older than the grace
    period (see :data:`STRAY_GRACE_SECONDS`); returns how many went, and a line for each that could not."""
    now = time.time() if now is None else now
    removed, warnings = 0, []
    for path in store.strays(known, older_than=now - STRAY_GRACE_SECONDS):
        try:
            store.remove_file(path)
            removed += 1
        except OSError as exc:
            warnings.append(f"{path}: leftover photo file not removed ({exc.strerror})")
    return removed, warnings


def compact(engine: Engine) -> list[str]:
    """VACUUM and checkpoint the database; a line when the checkpoint could not complete."""
    if vacuum(engine):
        return []
    return [f"nomina.db-wal: not truncated (the database was in use); {_MAINTAIN}"]
