"""Cases: unidentified people's records, their photos and faces (detected, or marked by hand).

Functions take the caller's session (a write transaction for changes) and the acting user's name; the
caller has checked the user's role. Each change is recorded in the audit trail in the same transaction.
Erasure lives in :mod:`nomina.erasure`, searches in :mod:`nomina.search`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, workflow
from .enrolment import PhotoSink, Prepared, now
from .errors import Conflict, InvalidField, NotFound
from .faces import Face
from .records import CaseFields, LookalikeIds, Record
from .references import face_record, lookalikes_in
from .search import case_faces
from .store import schema as db

__all__ = [
    "CaseAdded",
    "CaseFaceRecord",
    "CasePhotoRecord",
    "CaseRecord",
    "CaseSummary",
    "SearchRef",
    "add_face",
    "create",
    "get",
    "lookalikes",
    "photo_link",
    "record",
    "summaries",
]


# -- results ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseSummary(Record):
    """A case as listed: its fields, status and counts."""

    case_id: str
    status: str
    kind: str
    found_on: date | None
    found_at: str | None
    notes: str | None
    created_at: datetime
    photos: int
    photos_without_face: int
    faces: int


@dataclass(frozen=True)
class CaseFaceRecord(Record):
    """A case face: ``case_face`` is its number among the case's faces, as searches name it."""

    case_face: int
    face_id: int
    number_in_photo: int | None
    manual: bool
    box: list[float]
    quality: dict[str, Any]


@dataclass(frozen=True)
class CasePhotoRecord(Record):
    number: int
    sha256: str
    file_name: str
    photo_date: date | None
    no_face_detected: bool
    added_at: datetime
    added_by: str | None
    faces: list[CaseFaceRecord]


@dataclass(frozen=True)
class SearchRef(Record):
    search_id: int
    created_at: datetime


@dataclass(frozen=True)
class CaseRecord(Record):
    """A case with its photos, faces, searches and open identification (as the viewer may see it)."""

    case_id: str
    status: str
    kind: str
    found_on: date | None
    found_at: str | None
    notes: str | None
    created_at: datetime
    photos: list[CasePhotoRecord]
    photos_without_face: int
    faces: int
    identification: workflow.IdentificationRecord | None
    searches: list[SearchRef]


@dataclass(frozen=True)
class CaseAdded(CaseRecord):
    """A case as just registered, with warnings about it: its id looks like another case's."""

    warnings: list[str] = field(default_factory=list)


def _fields(c: db.Case) -> dict[str, Any]:
    return {
        "case_id": c.id,
        "status": workflow.status(c),
        "kind": c.kind,
        "found_on": c.found_on,
        "found_at": c.found_at,
        "notes": c.notes,
        "created_at": c.created_at,
    }


def _without_face(c: db.Case) -> int:
    return sum(1 for p in c.photos if p.no_face and not p.faces)


def _faces(c: db.Case) -> int:
    return sum(len(p.faces) for p in c.photos)


# -- reading ----------------------------------------------------------------------------------------
def get(s: Session, case_id: str) -> db.Case:
    row = s.get(db.Case, case_id)
    if row is None:
        raise NotFound(f"case {case_id}: no such case", record=f"case {case_id}")
    return row


def summaries(s: Session) -> list[CaseSummary]:
    return [
        CaseSummary(**_fields(c), photos=len(c.photos), photos_without_face=_without_face(c), faces=_faces(c))
        for c in s.scalars(select(db.Case).order_by(db.Case.id))
    ]


def record(s: Session, case_id: str, viewer: str) -> CaseRecord:
    case = get(s, case_id)
    found = workflow.current(case)
    blind = workflow.blind(case, viewer)  # who added the photos would name the proposer as often as not
    numbers = {ref.face_id: ref.number for ref, _ in case_faces(case)}
    photos = [
        CasePhotoRecord(
            number=i + 1,
            sha256=cp.photo_sha256,
            file_name=cp.file_name,
            photo_date=cp.photo_date,
            no_face_detected=cp.no_face,
            added_at=cp.added_at,
            added_by=workflow.who(cp.added_by, blind, viewer),
            faces=[CaseFaceRecord(case_face=numbers[f.id], **asdict(face_record(f))) for f in cp.faces],
        )
        for i, cp in enumerate(case.photos)
    ]
    return CaseRecord(
        **_fields(case),
        photos=photos,
        photos_without_face=_without_face(case),
        faces=_faces(case),
        identification=None if found is None else workflow.describe(found, viewer),
        searches=[SearchRef(sr.id, sr.created_at) for sr in case.searches],
    )


def photo_link(s: Session, case_id: str, photo: int) -> db.CasePhoto:
    """Case photo number ``photo`` (1-based, as ``case show`` numbers them)."""
    case = get(s, case_id)
    if not 1 <= photo <= len(case.photos):
        raise InvalidField(
            f"photo: case {case_id} has {len(case.photos)} photo(s); got {photo}", record=f"case {case_id}"
        )
    return case.photos[photo - 1]


def lookalikes(s: Session, new_ids: Iterable[str] = ()) -> LookalikeIds:
    """The case ids in use by skeleton (one indexed query per new id, or one for all of ``new_ids``), to warn
    of a new id that looks like one of them."""
    return lookalikes_in(s, db.Case, "case", "case", new_ids)


# -- changing ---------------------------------------------------------------------------------------
def check_new_id(s: Session, case_id: str) -> None:
    if s.get(db.Case, case_id) is not None:
        raise Conflict(f"case {case_id}: already exists", field="case_id", record=f"case {case_id}")


def create(s: Session, actor: str, sink: PhotoSink, fields: CaseFields, prepared: list[Prepared]) -> CaseAdded:
    """Register a case with its analysed photos; photos with no face are kept and flagged. The result warns
    when the case's id looks like another case's."""
    check_new_id(s, fields.id)
    warnings = lookalikes(s).add(fields.id)
    s.add(
        db.Case(
            id=fields.id,
            kind=fields.kind,
            found_on=fields.found_on,
            found_at=fields.found_at,
            notes=fields.notes,
            created_at=now(),
        )
    )
    s.flush()
    for p in prepared:
        sink.photo(s, p)
        link = db.CasePhoto(
            case_id=fields.id,
            photo_sha256=p.sha256,
            file_name=Path(p.name).name,
            photo_date=p.photo_date,
            no_face=p.face is None,
            added_at=now(),
            added_by=actor,
        )
        if p.face is not None:
            link.faces.append(sink.face(p.face))
        s.add(link)
    faces = sum(p.face is not None for p in prepared)
    audit.record(s, actor, audit.CaseCreated(case_id=fields.id, photos=len(prepared), faces=faces))
    return CaseAdded(**vars(record(s, fields.id, actor)), warnings=warnings)


def add_face(s: Session, actor: str, sink: PhotoSink, case_id: str, photo: int, face: Face) -> CaseRecord:
    """Add a face marked by hand to case photo number ``photo``."""
    link = photo_link(s, case_id, photo)
    row = sink.face(face)
    link.faces.append(row)
    s.flush()
    audit.record(s, actor, audit.EyesMarked(case_id=case_id, photo=photo, face_id=row.id))
    return record(s, case_id, actor)
