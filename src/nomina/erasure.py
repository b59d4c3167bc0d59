"""Erasure, retention and maintenance: removing a record so that no biometric trace of it stays.

Erasing a reference or a case (``Workspace.delete_reference``, ``delete_case``, ``apply_retention``)
happens in two steps:

1. In one transaction (:func:`erase_reference`, :func:`erase_case`): the record's row, its photos'
   links with their provenance, its faces (box, landmarks, quality measures, embedding), and the photo
   records no other record uses; for a case also its searches with their candidates and conclusions,
   and its identifications. The audit trail gets the tombstone (id, counts, reason) in the same
   transaction. SQLite's ``secure_delete`` overwrites the erased rows with zeros in the pages it changes.
   The same transaction journals the file steps (table ``pending_erasures``): each photo file to remove,
   by its SHA-256, and after a reference the index files.
2. After the commit (:func:`finish`, in a write transaction of its own): the journalled photo files are
   overwritten and removed; after a reference, the erased faces' vectors and codes are zeroed in this
   process's gallery index and overwritten in place in its snapshot on disk (:mod:`nomina.indexing`;
   every other process zeroes them when it next applies the gallery log, before its next search, and
   ``nomina serve`` within a second); the journal rows go with the files. Then the database is
   checkpointed (:func:`settle`), which copies the zeroed pages into ``nomina.db`` and truncates
   ``nomina.db-wal``, the file that still held earlier images of those pages (on PostgreSQL: VACUUM FULL of
   the tables erased from, which rewrites them from their live rows).

Step 2 cannot be part of the transaction (files are not transactional), but the journal makes it certain:
a process stopped between the commit and the files leaves the rows, and the next opening of the workspace
or maintenance (``Workspace.maintain``) finishes them at once. Maintenance also removes photo files no
record names (:func:`sweep`) while it holds the database's write lock, which every enrolment holds while it
writes photo files, rebuilds the index from the database, and rebuilds the database file from its live
rows and checkpoints (:func:`compact`). docs/erasure.md says what stays, and why.

Retention: a reference whose ``retain_until`` date is before today is erased the same way, with the
reason ``retention date YYYY-MM-DD passed`` (:func:`due_references`, :func:`retention_reason`). Cases
carry no retention date: an unidentified person's record is kept until they are identified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from . import audit, digests
from .errors import Conflict
from .records import Record
from .store import PhotoStore, server
from .store import schema as db
from .store.database import Checkpoint, checkpoint, in_lists, vacuum
from .store.photos import is_photo_name

__all__ = [
    "CaseErased",
    "MaintenanceResult",
    "ReferenceErased",
    "RetentionErased",
    "RetentionResult",
    "case_erased",
    "reference_erased",
    "retention_erased",
    "Erasure",
    "compact",
    "due_references",
    "erase_due",
    "erase_case",
    "erase_reference",
    "finish",
    "pending",
    "erased_id_refused",
    "erased_reference_ids",
    "refuse_erased_reference_id",
    "retention_reason",
    "settle",
    "sweep",
]

# The library names no command; the command line shows `nomina maintain` here.
_MAINTAIN = "run maintenance when no one else is using the workspace"


@dataclass(frozen=True)
class Erasure:
    """What one erasure removed from the database; its ``photo_files`` are journalled, and removed from disk
    by :func:`finish`."""

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
    return _journal(s, erased, files)


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
    return _journal(s, erased, files)


def refuse_erased_reference_id(s: Session, reference_id: str) -> None:
    """Refuse an erased reference's id to a new reference (Conflict).

    Searches of other cases, their conclusions and identifications keep an erased reference's id, and
    show the name of the reference now holding it: a new record under the same id would pass for the
    erased one there, with scores its photos never gave. A case's id may be given again: nothing but the
    audit trail keeps it, and the trail shows the erasure before the new record.
    """
    erased_at = erased_reference_ids(s, [reference_id]).get(reference_id)
    if erased_at is not None:
        raise erased_id_refused(reference_id, erased_at)


def erased_reference_ids(s: Session, reference_ids: list[str]) -> dict[str, str]:
    """Those of these ids that erased references had, each with the time of its last erasure (one query for
    a batch of ids)."""
    found: dict[str, str] = {}
    for ids in in_lists(reference_ids):
        rows = s.execute(
            select(db.AuditEvent.reference_id, db.AuditEvent.at)
            .where(
                db.AuditEvent.reference_id.in_(ids),
                db.AuditEvent.action == audit.ReferenceDeleted.action,
            )
            .order_by(db.AuditEvent.seq)
        )
        found.update((ref, at) for ref, at in rows if ref is not None)
    return found


def erased_id_refused(reference_id: str, erased_at: str) -> Conflict:
    return Conflict(
        f"reference {reference_id}: the id of a reference erased on {erased_at[:10]}; give the new record "
        "another id, so that earlier searches and the audit trail keep meaning one person",
        field="reference_id",
        record=f"reference {reference_id}",
    )


def _journal(s: Session, erased: Erasure, files: list[str]) -> Erasure:
    """Journal the erasure's file steps in its transaction (see :func:`finish`): the photo files no other
    record uses and, after a reference, the index files; returns the erasure with its photo files."""
    s.add_all(db.PendingErasure(step="photo", photo_sha256=sha) for sha in files)
    if erased.kind == "reference":
        s.add(db.PendingErasure(step="index"))
    s.add(db.PendingErasure(step="settle"))  # the checkpoint after the file steps (see settle)
    return replace(erased, photo_files=tuple(files))


def _drop_orphan_photos(s: Session, shas: set[str]) -> list[str]:
    """Delete the photo records no reference or case uses any more; returns their SHA-256."""
    orphaned = []
    for sha in sorted(shas):
        if not _linked(s, sha):
            photo = s.get(db.Photo, sha)
            if photo is not None:
                s.delete(photo)
            orphaned.append(sha)
    return orphaned


def _linked(s: Session, sha: str) -> bool:
    """Whether a reference or case photo names the photo ``sha``."""
    return bool(
        s.scalar(select(func.count()).select_from(db.ReferencePhoto).where(db.ReferencePhoto.photo_sha256 == sha))
        or s.scalar(select(func.count()).select_from(db.CasePhoto).where(db.CasePhoto.photo_sha256 == sha))
    )


def pending(s: Session) -> int:
    """How many file steps of committed erasures are not done yet (see :func:`finish`)."""
    return int(s.scalar(select(func.count()).select_from(db.PendingErasure)) or 0)


def finish(s: Session, store: PhotoStore, scrub_index: Callable[[], None]) -> tuple[int, list[str]]:
    """Do the file steps of every committed erasure not finished yet, in the caller's write transaction.

    The steps are those the erasing transactions journalled (:func:`erase_reference`, :func:`erase_case`),
    whichever process committed them and whenever: each photo file is overwritten and removed, unless its
    photo was enrolled again since (its bytes are then a record's again); after a reference,
    ``scrub_index`` removes the erased faces from the process's gallery index and overwrites them in its
    snapshot on disk (:meth:`nomina.indexing.GalleryKeeper.scrub`). A step's journal row is deleted once
    it is done, so that a step not done stays journalled and the next opening or maintenance does it.
    Returns how many photo files were removed, and one line for each step that could not be done.
    """
    removed, warnings = 0, []
    for row in s.scalars(select(db.PendingErasure).order_by(db.PendingErasure.id)).all():
        if row.step == "settle":
            continue  # done by settle once this transaction is committed, then forgotten by settled
        if row.step == "photo" and not is_photo_name(row.photo_sha256):
            # Nomina journals only SHA-256s: this row was written outside it, to make Nomina remove a file
            warnings.append(
                f"erasure journal row {row.id}: {str(row.photo_sha256)[:70]!r} is not a photo's SHA-256; ignored and "
                "removed (the database was changed outside Nomina)"
            )
            s.delete(row)
            continue
        try:
            if row.step == "index":
                scrub_index()
            elif (
                row.photo_sha256 is not None
                and s.get(db.Photo, row.photo_sha256) is None
                and not _linked(s, row.photo_sha256)  # a record still names it: a journal row not Nomina's
            ):
                if store.has(row.photo_sha256):
                    store.remove(row.photo_sha256)
                    removed += 1
        except OSError as exc:
            where = "index" if row.step == "index" else store.path(row.photo_sha256 or "")
            warnings.append(f"{where}: {row.step} file not removed ({exc.strerror}); {_MAINTAIN}")
            continue
        s.delete(row)
    return removed, warnings


def settle(engine: Engine) -> list[str]:
    """After an erasure's commit: :func:`~nomina.store.database.checkpoint` the database, so that its file
    holds the zeroed pages and its WAL no earlier image of them; a line naming the files that may still
    hold the erased rows when it could not complete."""
    return _unsettled(engine, checkpoint(engine), "the erased rows")


def settled(s: Session) -> None:
    """Forget the journalled checkpoints (step ``settle``) once one has completed: until then, a process
    stopped after an erasure's commit leaves the next opening or maintenance one to do."""
    s.execute(delete(db.PendingErasure).where(db.PendingErasure.step == "settle"))


def _unsettled(engine: Engine, done: Checkpoint, what: str) -> list[str]:
    """The line saying exactly which database files may still hold ``what`` after a checkpoint."""
    if done.truncated:
        return []
    if engine.dialect.name == "postgresql":
        url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "", 1)
        return [
            f"{server.shown(url)}: the files of its tables may still hold {what}: another connection was using "
            f"those tables or reading an earlier state of the database, so they could not be rewritten; {_MAINTAIN}"
        ]
    db_file = engine.url.database or "the database"
    if done.copied:
        return [
            f"{db_file}-wal may still hold earlier images of {what}: another connection was reading the "
            f"database, so it could not be emptied; {_MAINTAIN}"
        ]
    return [
        f"{db_file} and {db_file}-wal may still hold {what}: another connection was reading an earlier state "
        f"of the database, so the changes since could not be copied into {db_file}; {_MAINTAIN}"
    ]


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
    the erasures and the ids of the references held. Refused (RecordTampered), erasing nothing, when one due
    is not as the audit trail last left it: an erasure cannot be undone, and a retention date moved into the
    past behind Nomina's back must not cause one."""
    due, held = due_references(s, today)
    audit.require_records(s, [digests.record_key("reference", r.id) for r in due], "nothing erased")
    erased = [erase_reference(s, ref, retention_reason(ref.retain_until), actor, retention=True) for ref in due]
    return erased, [r.id for r in held]


def retention_reason(retain_until: date | None) -> str:
    """The reason recorded in the tombstone of a reference erased by retention."""
    return f"retention date {retain_until} passed"


# -- maintenance ------------------------------------------------------------------------------------------
def sweep(s: Session, store: PhotoStore) -> tuple[int, list[str]]:
    """Overwrite and remove the photo-store files no photo record (nor a reference or case photo) in ``s``
    names, and unfinished writes;
    returns how many went, and a line for each that could not.

    Call it holding the database's write lock: every enrolment writes its photo files inside a write
    transaction, so while the lock is held no process is writing one, and a file no record names is a
    leftover (an enrolment or erasure interrupted between the files and the database), whatever its age.
    """
    named = set(s.scalars(select(db.Photo.sha256)))
    named |= set(s.scalars(select(db.ReferencePhoto.photo_sha256)))  # a link without its photo row is no
    named |= set(s.scalars(select(db.CasePhoto.photo_sha256)))  # leftover: the row went behind Nomina's back
    removed, warnings = 0, []
    for path in store.strays(named):
        try:
            store.remove_file(path)
            removed += 1
        except OSError as exc:
            warnings.append(f"{path}: leftover photo file not removed ({exc.strerror})")
    return removed, warnings


def compact(engine: Engine) -> list[str]:
    """VACUUM and checkpoint the database; a line naming the files that may still hold erased rows when the
    checkpoint could not complete."""
    return _unsettled(engine, vacuum(engine), "erased rows")
