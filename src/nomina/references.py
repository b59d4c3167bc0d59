"""References: missing people's records, their photos with provenance, and their faces.

Functions take the caller's session (a write transaction for changes) and the acting user's name; the
caller has checked the user's role. Each change is recorded in the audit trail in the same transaction.
Erasure lives in :mod:`nomina.erasure`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy import update as update_rows
from sqlalchemy.orm import Session

from . import audit, erasure, workflow
from .enrolment import PhotoSink, Prepared, bump_gallery, now
from .errors import Conflict, NoFaceFound, NotFound
from .quality import stored
from .records import (
    SKELETONS_INFO,
    LookalikeIds,
    Provenance,
    Record,
    ReferenceFields,
    check_lifetime,
    id_skeleton,
    skeleton_data,
    skeletons_outdated,
)
from .store import schema as db
from .store.database import in_lists

__all__ = [
    "FaceRecord",
    "PhotoProvenance",
    "QualityOverride",
    "ReferenceAdded",
    "ReferencePhotoRecord",
    "ReferenceRecord",
    "ReferenceSummary",
    "add_photos",
    "check_new_id",
    "create",
    "enrolled_photos",
    "face_record",
    "get",
    "ImportBatch",
    "import_row",
    "lookalikes",
    "lookalikes_in",
    "record",
    "refresh_skeletons",
    "summaries",
    "update",
]


# -- results ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceRecord(Record):
    """A face found (or marked by hand) in a photo, with its quality measures and score."""

    face_id: int
    number_in_photo: int | None
    manual: bool
    box: list[float]
    quality: dict[str, Any]


def face_record(f: db.Face) -> FaceRecord:
    return FaceRecord(
        face_id=f.id, number_in_photo=f.number_in_photo, manual=f.manual, box=f.box, quality=stored(f).as_dict()
    )


@dataclass(frozen=True)
class PhotoProvenance(Record):
    source: str
    supplied_by: str
    legal_basis: str
    consent: str | None


@dataclass(frozen=True)
class QualityOverride(Record):
    """Why a photo whose face failed the quality gate was enrolled anyway, and by whom."""

    reason: str
    by: str | None


@dataclass(frozen=True)
class ReferencePhotoRecord(Record):
    sha256: str
    file_name: str
    provenance: PhotoProvenance
    photo_date: date | None
    added_at: datetime
    added_by: str | None
    quality_override: QualityOverride | None
    faces: list[FaceRecord]


@dataclass(frozen=True)
class ReferenceSummary(Record):
    """A reference as listed: its fields and its number of photos."""

    reference_id: str
    name: str
    sex: str | None
    birth_year: int | None
    last_seen_on: date | None
    last_seen_at: str | None
    notes: str | None
    created_at: datetime
    updated_at: datetime
    retain_until: date | None
    photos: int


@dataclass(frozen=True)
class ReferenceRecord(Record):
    """A reference with its photos, their provenance and faces."""

    reference_id: str
    name: str
    sex: str | None
    birth_year: int | None
    last_seen_on: date | None
    last_seen_at: str | None
    notes: str | None
    created_at: datetime
    updated_at: datetime
    retain_until: date | None
    photos: list[ReferencePhotoRecord]


@dataclass(frozen=True)
class ReferenceAdded(ReferenceRecord):
    """A reference as just enrolled, with warnings about it: its id looks like another reference's."""

    warnings: list[str] = field(default_factory=list)


def _fields(r: db.Reference) -> dict[str, Any]:
    return {
        "reference_id": r.id,
        "name": r.name,
        "sex": r.sex,
        "birth_year": r.birth_year,
        "last_seen_on": r.last_seen_on,
        "last_seen_at": r.last_seen_at,
        "notes": r.notes,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "retain_until": r.retain_until,
    }


def _photo_record(rp: db.ReferencePhoto, blind: bool = False, viewer: str = "") -> ReferencePhotoRecord:
    """A reference photo as ``viewer`` may see it: who added it, or accepted its quality, hidden while the
    reference awaits a verification ``viewer`` is blind to (``blind``), unless it was the viewer."""
    return ReferencePhotoRecord(
        sha256=rp.photo_sha256,
        file_name=rp.file_name,
        provenance=PhotoProvenance(rp.source, rp.supplied_by, rp.legal_basis, rp.consent),
        photo_date=rp.photo_date,
        added_at=rp.added_at,
        added_by=workflow.who(rp.added_by, blind, viewer),
        quality_override=None
        if rp.quality_override is None
        else QualityOverride(rp.quality_override, workflow.who(rp.quality_override_by, blind, viewer)),
        faces=[face_record(f) for f in rp.faces],
    )


# -- reading ----------------------------------------------------------------------------------------
def get(s: Session, reference_id: str) -> db.Reference:
    row = s.get(db.Reference, reference_id)
    if row is None:
        raise NotFound(f"reference {reference_id}: no such reference", record=f"reference {reference_id}")
    return row


def record(s: Session, reference_id: str, viewer: str | None = None) -> ReferenceRecord:
    """A reference with its photos; as ``viewer`` may see it when given (:func:`_photo_record`): who enrolled
    a reference proposed for a case would often name the proposer to the case's blind verifier."""
    ref = get(s, reference_id)
    blind = viewer is not None and reference_id in workflow.blind_records(s, viewer)[1]
    return ReferenceRecord(**_fields(ref), photos=[_photo_record(rp, blind, viewer or "") for rp in ref.photos])


def summaries(s: Session) -> list[ReferenceSummary]:
    """Every reference, by id, with its number of photos."""
    counts = dict(
        s.execute(select(db.ReferencePhoto.reference_id, func.count()).group_by(db.ReferencePhoto.reference_id)).all()
    )
    return [
        ReferenceSummary(**_fields(r), photos=counts.get(r.id, 0))
        for r in s.scalars(select(db.Reference).order_by(db.Reference.id))
    ]


def enrolled_photos(s: Session, reference_ids: set[str]) -> set[tuple[str, str]]:
    """(reference id, photo SHA-256) pairs already enrolled for these references."""
    ids = sorted(reference_ids)
    pairs: set[tuple[str, str]] = set()
    for some in in_lists(ids):
        q = select(db.ReferencePhoto.reference_id, db.ReferencePhoto.photo_sha256).where(
            db.ReferencePhoto.reference_id.in_(some)
        )
        pairs.update((r, sha) for r, sha in s.execute(q))
    return pairs


def lookalikes(s: Session, new_ids: Iterable[str] = ()) -> LookalikeIds:
    """The reference ids in use by skeleton, to warn of a new id that looks like one of them; those that
    ``new_ids`` (a batch about to be added) may look like are read at once."""
    return lookalikes_in(s, db.Reference, "reference", "person", new_ids)


# -- id skeletons (lookalike ids) ---------------------------------------------------------------------
#: Rows whose skeletons are made again per query and update, when the confusables data changes.
_SKELETON_BATCH = 1000


def lookalikes_in(
    s: Session, model: type[db.Reference] | type[db.Case], kind: str, same: str, new_ids: Iterable[str] = ()
) -> LookalikeIds:
    """The ids of ``model``'s records (references or cases) that a new id may look like, found by their stored
    skeleton (the indexed ``id_skeleton`` column): one query per new id, whatever the number of records, or
    one for all of ``new_ids`` (a batch). The session autoflushes, so rows added earlier in the same
    transaction are found too; ids added to the result are remembered.

    In a write transaction, before the first check: the stored skeletons are brought up to date
    (:func:`refresh_skeletons`)."""
    refresh_skeletons(s, model)
    read = sorted({id_skeleton(i) for i in new_ids})
    in_use: list[str] = []
    for keys in in_lists(read):
        in_use += s.scalars(select(model.id).where(model.id_skeleton.in_(keys)))
    done = set(read)

    def lookup(key: str) -> list[str]:
        return [] if key in done else list(s.scalars(select(model.id).where(model.id_skeleton == key)))

    return LookalikeIds(kind, same, ids=in_use, lookup=lookup)


def refresh_skeletons(s: Session, model: type[db.Reference] | type[db.Case]) -> None:
    """Make the stored skeletons those this process would make, in the caller's write transaction.

    When ``workspace_info`` says they were made with other confusables data (a new confusable-homoglyphs
    release, :func:`nomina.records.skeletons_outdated`), or does not say, every reference's and case's is made
    again, in batches, writing only those that change, and the data is recorded: the first enrolment after
    such an upgrade pays it (about 3 s per million records). Otherwise only the rows of ``model`` without
    one (inserted behind SQLAlchemy's back) get theirs: one indexed query finds none in the usual case.
    Skeletons are derived from the ids and outside the record digests: no audit event records this."""
    info = s.get(db.WorkspaceInfo, SKELETONS_INFO)
    if info is not None and not skeletons_outdated(info.value):
        missing = list(s.scalars(select(model.id).where(model.id_skeleton.is_(None))))
        for i in range(0, len(missing), _SKELETON_BATCH):
            rows = [{"id": ident, "id_skeleton": id_skeleton(ident)} for ident in missing[i : i + _SKELETON_BATCH]]
            s.execute(update_rows(model), rows)
        return
    for table in (db.Reference, db.Case):
        _remake_skeletons(s, table)
    if info is None:
        s.add(db.WorkspaceInfo(key=SKELETONS_INFO, value=skeleton_data()))
    else:
        info.value = skeleton_data()
    s.flush()


def _remake_skeletons(s: Session, model: type[db.Reference] | type[db.Case]) -> None:
    """Every row's skeleton made again, in batches in id order; only those that differ are written."""
    last: str | None = None
    while True:
        query = select(model.id, model.id_skeleton).order_by(model.id).limit(_SKELETON_BATCH)
        batch = s.execute(query if last is None else query.where(model.id > last)).all()
        if not batch:
            return
        changed = [{"id": i, "id_skeleton": k} for i, old in batch if (k := id_skeleton(i)) != old]
        if changed:
            s.execute(update_rows(model), changed)
        last = batch[-1][0]


# -- changing ---------------------------------------------------------------------------------------
def check_new_id(s: Session, reference_id: str) -> None:
    """Refuse an id already in use, or once used by an erased reference."""
    if s.get(db.Reference, reference_id) is not None:
        raise Conflict(
            f"reference {reference_id}: already exists (add photos to it instead)",
            field="reference_id",
            record=f"reference {reference_id}",
        )
    erasure.refuse_erased_reference_id(s, reference_id)


def _new_row(fields: ReferenceFields, default_retain: date | None) -> db.Reference:
    at = now()
    return db.Reference(
        id=fields.id,
        name=fields.name,
        sex=fields.sex,
        birth_year=fields.birth_year,
        last_seen_on=fields.last_seen_on,
        last_seen_at=fields.last_seen_at,
        notes=fields.notes,
        created_at=at,
        updated_at=at,
        retain_until=fields.retain_until or default_retain,
    )


def _counts(prepared: list[Prepared]) -> dict[str, int]:
    return {"photos": len(prepared), "quality_overrides": sum(p.quality_override is not None for p in prepared)}


def _add_photo(s: Session, sink: PhotoSink, reference_id: str, p: Prepared, prov: Provenance, actor: str) -> None:
    if p.face is None:  # prepare() requires a face in every reference photo; this is its guarantee
        raise NoFaceFound(f"{p.name}: no face to enrol", field="photos")
    sink.photo(s, p)
    link = db.ReferencePhoto(
        reference_id=reference_id,
        photo_sha256=p.sha256,
        file_name=Path(p.name).name,
        source=prov.source,
        supplied_by=prov.supplied_by,
        legal_basis=prov.legal_basis,
        consent=prov.consent,
        photo_date=p.photo_date,
        added_at=now(),
        added_by=actor,
        quality_override=p.quality_override,
        quality_override_by=None if p.quality_override is None else actor,
    )
    link.faces.append(sink.face(p.face))
    s.add(link)


def create(
    s: Session,
    actor: str,
    sink: PhotoSink,
    fields: ReferenceFields,
    prepared: list[Prepared],
    provenance: Provenance,
    default_retain: date | None,
) -> ReferenceAdded:
    """Enrol a new reference with its analysed photos, warning when its id looks like another's."""
    check_new_id(s, fields.id)
    warnings = lookalikes(s).add(fields.id)
    s.add(_new_row(fields, default_retain))
    s.flush()
    for p in prepared:
        _add_photo(s, sink, fields.id, p, provenance, actor)
    bump_gallery(s)
    audit.record(s, actor, audit.ReferenceCreated(reference_id=fields.id, **_counts(prepared)))
    return ReferenceAdded(**vars(record(s, fields.id)), warnings=warnings)


def add_photos(
    s: Session, actor: str, sink: PhotoSink, reference_id: str, prepared: list[Prepared], provenance: Provenance
) -> ReferenceRecord:
    """More analysed photos for an existing reference; a photo it already has is refused."""
    ref = get(s, reference_id)
    known = {rp.photo_sha256 for rp in ref.photos}
    for p in prepared:
        if p.sha256 in known:
            raise Conflict(
                f"{p.name}: already a photo of reference {reference_id}",
                field="photos",
                record=f"reference {reference_id}",
            )
    for p in prepared:
        _add_photo(s, sink, reference_id, p, provenance, actor)
    s.flush()
    s.expire(ref, ["photos"])  # loaded above for the check; the record shows the photos just added too
    bump_gallery(s)
    ref.updated_at = now()
    audit.record(s, actor, audit.ReferencePhotosAdded(reference_id=reference_id, **_counts(prepared)))
    return record(s, reference_id)


@dataclass
class ImportBatch:
    """What a batch of manifest rows needs to know of the references it names, read in two queries before
    any row is written (in the batch's write transaction, so nothing changes it but the batch itself): the
    records in use, and the ids of erased references."""

    existing: dict[str, db.Reference]
    erased: dict[str, str]

    @classmethod
    def read(cls, s: Session, reference_ids: list[str]) -> ImportBatch:
        existing: dict[str, db.Reference] = {}
        for ids in in_lists(reference_ids):
            existing.update((r.id, r) for r in s.scalars(select(db.Reference).where(db.Reference.id.in_(ids))))
        return cls(existing, erasure.erased_reference_ids(s, reference_ids))


def import_row(
    s: Session,
    actor: str,
    sink: PhotoSink,
    batch: ImportBatch,
    fields: ReferenceFields,
    prov: Provenance,
    p: Prepared,
    default_retain: date | None,
) -> audit.ReferenceCreated | audit.ReferencePhotosAdded:
    """Add one manifest row of ``batch`` (creating the reference on its first row); the event that records it,
    which the caller records (with :func:`nomina.audit.record_all`, for a batch of rows) before its transaction
    ends. Every refusal comes before anything of the row is written, so the rest of the batch can go on. The
    rows are written when the session next flushes: a batch's in a few statements."""
    if p.face is None:  # as _add_photo refuses, but before the reference row is written
        raise NoFaceFound(f"{p.name}: no face to enrol", field="photos")
    ref = batch.existing.get(fields.id)
    if ref is None:
        if fields.id in batch.erased:
            raise erasure.erased_id_refused(fields.id, batch.erased[fields.id])
        batch.existing[fields.id] = row = _new_row(fields, default_retain)
        s.add(row)
    elif ref.name != fields.name:
        raise Conflict(
            f"name: {fields.name!r} differs from reference {fields.id}'s recorded name {ref.name!r}",
            field="name",
            record=f"reference {fields.id}",
        )
    elif any(rp.photo_sha256 == p.sha256 for rp in ref.photos):
        raise Conflict(
            f"{p.name}: already a photo of reference {fields.id}", field="photos", record=f"reference {fields.id}"
        )
    _add_photo(s, sink, fields.id, p, prov, actor)
    event = audit.ReferenceCreated if ref is None else audit.ReferencePhotosAdded
    return event(reference_id=fields.id, **_counts([p]))


def update(s: Session, actor: str, reference_id: str, clean: dict[str, Any]) -> ReferenceRecord:
    """Change a reference's fields (already validated by :func:`nomina.records.validate_update`)."""
    ref = get(s, reference_id)
    check_lifetime(clean.get("birth_year", ref.birth_year), clean.get("last_seen_on", ref.last_seen_on))
    for key, value in clean.items():
        setattr(ref, key, value)
    ref.updated_at = now()
    audit.record(s, actor, audit.ReferenceUpdated(reference_id=reference_id, fields=tuple(clean)))
    return record(s, reference_id)
