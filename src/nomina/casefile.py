"""What goes to the responsible authority: a case's identification report and the export of verified
identifications, gathered from the workspace's records.

:func:`build_report` collects one case (its aligned faces, the search, the candidates examined with their
conclusions, the identification and its verification, the model, the calibration, the case's audit trail)
into the renderer's dataclasses (nomina.report). :func:`identification_records` gives one plain record per
verified identification, and :func:`write_export` writes them as JSON or CSV.

The report shows the candidates someone concluded on, the reference an identification names, and the
first three ranks, so a reader sees what else was close.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit, workflow
from ._version import __version__
from .errors import Conflict, InvalidField, NotFound
from .faces import align
from .files import check_output, csv_text
from .imaging import decoded
from .quality import assess, stored
from .records import Record, record_number
from .report import IdentificationReport, ReportCandidate, ReportConclusion, ReportFace, write_whole
from .search import SearchResult
from .settings import Settings
from .store import schema as db

__all__ = [
    "EXPORT_FIELDS",
    "ExportWritten",
    "ReportWritten",
    "StoredFace",
    "build_report",
    "export_bytes",
    "face_crop",
    "identification_records",
    "stored_case_face",
    "stored_reference_face",
    "write_export",
]


@dataclass(frozen=True)
class ReportWritten(Record):
    """A report written for the responsible authority, recorded with the SHA-256 of its bytes."""

    case_id: str
    path: str
    format: str
    sha256: str


@dataclass(frozen=True)
class ExportWritten(Record):
    """An export of verified identifications, recorded with the SHA-256 of its bytes."""

    path: str
    format: str
    identifications: int
    sha256: str


#: Ranks always shown in a report, besides the candidates with conclusions and the one identified.
_SHOWN_RANKS = 3
#: Events of the case's audit trail a report reproduces (the newest).
_AUDIT_EXCERPT = 60

Crop = Callable[[str, list[list[float]]], np.ndarray]  # (photo SHA-256, landmarks) -> aligned crop


def face_crop(read: Callable[[str], bytes], settings: Settings) -> Crop:
    """A function giving the aligned 112 x 112 crop of a stored face, from its photo and landmarks."""

    def crop(sha256: str, landmarks: list[list[float]]) -> np.ndarray:
        with decoded(read(sha256), sha256[:12], settings.max_pixels, settings.workers) as image:
            return align(image.pixels, np.asarray(landmarks, dtype=np.float64))

    return crop


@dataclass(frozen=True)
class StoredFace:
    """What one stored face's crop is made from: its photo, its landmarks in the photo, and for a case face
    the case's kind (post-mortem crops are shown blurred)."""

    photo_sha256: str
    landmarks: list[list[float]]
    case_kind: str | None = None


def stored_case_face(s: Session, case_id: str, number: int) -> StoredFace:
    """Face ``number`` (1-based, in the order the case lists its faces) of a case, read with one narrow
    query rather than the whole case; NotFound for a case or face number that does not exist."""
    row = None
    if 1 <= number < 2**63:
        row = s.execute(
            select(db.CasePhoto.photo_sha256, db.Face.landmarks, db.Case.kind)
            .join(db.CasePhoto, db.Face.case_photo_id == db.CasePhoto.id)
            .join(db.Case, db.CasePhoto.case_id == db.Case.id)
            .where(db.Case.id == case_id)
            .order_by(db.CasePhoto.id, db.Face.id)
            .offset(number - 1)
            .limit(1)
        ).first()
    if row is None:
        if s.get(db.Case, case_id) is None:
            raise NotFound(f"case {case_id}: no such case", record=f"case {case_id}")
        count = s.scalar(
            select(func.count())
            .select_from(db.Face)
            .join(db.CasePhoto, db.Face.case_photo_id == db.CasePhoto.id)
            .where(db.CasePhoto.case_id == case_id)
        )
        raise NotFound(f"face: case {case_id} has {count} face(s); got {number}", record=f"case {case_id}")
    return StoredFace(row[0], row[1], row[2])


def stored_reference_face(s: Session, reference_id: str, face_id: int) -> StoredFace:
    """The reference face ``face_id``, which must be a face of the reference ``reference_id`` (NotFound
    otherwise, as for a face that does not exist), read with one narrow query."""
    row = s.execute(
        select(db.ReferencePhoto.photo_sha256, db.Face.landmarks)
        .join(db.ReferencePhoto, db.Face.reference_photo_id == db.ReferencePhoto.id)
        .where(db.Face.id == record_number(face_id, "face_id"), db.ReferencePhoto.reference_id == reference_id)
    ).first()
    if row is None:
        raise NotFound(f"face: reference {reference_id} has no face {face_id}", record=f"reference {reference_id}")
    return StoredFace(row[0], row[1])


def _report_face(label: str, photo: db.CasePhoto | db.ReferencePhoto, face: db.Face, crop: Crop) -> ReportFace:
    """A stored face as the report shows it: its aligned crop, captioned with its photo and quality."""
    parts = [photo.file_name]
    if photo.photo_date is not None:
        parts.append(f"taken {photo.photo_date.isoformat()}")
    parts.append("marked by hand" if face.manual else f"quality {assess(stored(face)).score:.0f}/100")
    return ReportFace(label, crop(photo.photo_sha256, face.landmarks), ", ".join(parts))


def build_report(
    s: Session,
    case: db.Case,
    result: SearchResult,
    viewer: str,
    crop: Crop,
    model: dict[str, Any],
) -> IdentificationReport:
    """One case's report, from the search ``result``, as ``viewer`` may see it and written by them."""
    if workflow.blind(case, viewer):
        raise Conflict(
            f"case {case.id}: an identification awaits verification; its report is available to others once "
            "it is verified",
            record=f"case {case.id}",
        )
    found = workflow.current(case)
    faces = {f.id: (cp, f) for cp in case.photos for f in cp.faces}
    case_faces = []
    for ref in result.case_faces:
        cp, f = faces[ref.face_id]
        case_faces.append(_report_face(f"case face {ref.number}", cp, f, crop))
    shown = [
        c
        for c in result.candidates
        if c.rank <= _SHOWN_RANKS or c.conclusions or (found is not None and c.reference_id == found.reference_id)
    ]
    candidates = [_candidate(s, c, found, crop, result) for c in shown]
    calibration = None
    if result.calibration is not None:
        row = s.get(db.Calibration, result.calibration["id"])
        mapping = dict(row.mapping) if row is not None else {}
        calibration = {
            "id": result.calibration["id"],
            "method": result.calibration["method"],
            "description": result.calibration["description"],
            "genuine": mapping.get("genuine"),
            "impostor": mapping.get("impostor"),
            "cllr": mapping.get("cllr"),
        }
    events = audit.events(s, case_id=case.id, limit=_AUDIT_EXCERPT)
    return IdentificationReport(
        case={
            "id": case.id,
            "status": workflow.status(case),
            "kind": case.kind,
            "found_on": case.found_on,
            "found_at": case.found_at,
            "notes": case.notes,
        },
        case_faces=case_faces,
        identification=None if found is None else _identification(s, found),
        candidates=candidates,
        search={
            "search_id": result.search_id,
            "time": result.created_at,
            "user": result.user or result.os_user,
            "gallery_size": result.gallery["references"],
            "reference faces": result.gallery["faces"],
            "model": result.model["name"],
            "quality gate": result.settings.get("quality_gate"),
            "warnings": "; ".join(result.warnings) or None,
        },
        model=model,
        calibration=calibration,
        audit=[
            {
                "seq": e["seq"],
                "at": e["at"][:19].replace("T", " ") + " UTC",
                "actor": e["actor"],
                "action": e["action"],
                "summary": ", ".join(f"{k}={v}" for k, v in e["details"].items()),
            }
            for e in events
        ],
        audit_head=audit.head(s).hash,
        generated_at=datetime.now(UTC),
        generated_by=viewer,
        nomina_version=__version__,
    )


def _candidate(
    s: Session, c: Any, found: db.Identification | None, crop: Crop, result: SearchResult
) -> ReportCandidate:
    face = s.get(db.Face, c.reference_face_id)
    rp = None if face is None else face.reference_photo
    ref = s.get(db.Reference, c.reference_id)
    details: dict[str, Any] = {}
    if ref is not None:
        details = {"sex": ref.sex, "birth_year": ref.birth_year, "last_seen_on": ref.last_seen_on}
        details["last_seen_at"] = ref.last_seen_at
    if rp is not None:
        details.update(
            {"photo": rp.file_name, "photo date": rp.photo_date, "source": rp.source, "supplied_by": rp.supplied_by}
        )
        details["legal_basis"] = rp.legal_basis
    conclusions = [
        ReportConclusion(k.examiner, "examiner", k.conclusion, k.reasons, k.at, checklist=k.checklist)
        for k in c.conclusions
    ]
    if found is not None and found.reference_id == c.reference_id:
        conclusions.append(
            ReportConclusion(found.proposed_by, "examiner", "identification proposed", found.reasons, found.proposed_at)
        )
        v = found.verification
        if v is not None:
            conclusions.append(ReportConclusion(v.verifier, "verifier", v.conclusion, v.reasons, v.at))
    evidence = None
    if c.evidence is not None and result.calibration is not None:
        evidence = {**c.evidence, "calibration": result.calibration["description"]}
    reference_face = None
    if face is not None and rp is not None:
        reference_face = _report_face(f"reference {c.reference_id}", rp, face, crop)
    return ReportCandidate(
        rank=c.rank,
        reference_id=c.reference_id,
        name=c.name,
        score=c.score,
        evidence=evidence,
        face=reference_face,
        details=details,
        warnings=list(c.warnings),
        conclusions=conclusions,
        case_face=next((k for k, f in enumerate(result.case_faces, 1) if f.number == c.case_face), 1),
    )


def _identification(s: Session, i: db.Identification) -> dict[str, Any]:
    ref = s.get(db.Reference, i.reference_id)
    v = i.verification
    return {
        "reference_id": i.reference_id,
        "name": None if ref is None else ref.name,  # None: deleted since (the report says so)
        "status": i.status,
        "proposed_by": i.proposed_by,
        "proposed_at": i.proposed_at,
        "verified_by": None if v is None else v.verifier,
        "verified_at": None if v is None else v.at,
        "verifier's conclusion": None if v is None else v.conclusion,
    }


# -- export -------------------------------------------------------------------------------------------------

#: The fields of one exported identification, in order (docs/workflow.md explains each).
EXPORT_FIELDS = (
    "case_id",
    "case_kind",
    "found_on",
    "found_at",
    "reference_id",
    "name",
    "sex",
    "birth_year",
    "last_seen_on",
    "last_seen_at",
    "proposed_by",
    "proposed_at",
    "verified_by",
    "verified_at",
    "verification",
    "report_sha256",
    "report_format",
)


def identification_records(s: Session) -> list[dict[str, Any]]:
    """One record per verified (identified) identification, by case id."""
    records = []
    for i in workflow.identifications(s, "identified"):
        case, ref, v = i.case, s.get(db.Reference, i.reference_id), i.verification
        reports = [e for e in audit.events(s, case_id=i.case_id) if e["action"] == "report.create"]
        last = reports[-1]["details"] if reports else {}
        records.append(
            {
                "case_id": i.case_id,
                "case_kind": case.kind,
                "found_on": _iso(case.found_on),
                "found_at": case.found_at,
                "reference_id": i.reference_id,
                "name": None if ref is None else ref.name,
                "sex": None if ref is None else ref.sex,
                "birth_year": None if ref is None else ref.birth_year,
                "last_seen_on": None if ref is None else _iso(ref.last_seen_on),
                "last_seen_at": None if ref is None else ref.last_seen_at,
                "proposed_by": i.proposed_by,
                "proposed_at": _iso(i.proposed_at),
                "verified_by": None if v is None else v.verifier,
                "verified_at": None if v is None else _iso(v.at),
                "verification": None if v is None else v.conclusion,
                "report_sha256": last.get("sha256"),
                "report_format": last.get("format"),
            }
        )
    return sorted(records, key=lambda r: str(r["case_id"]))


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def export_bytes(records: list[dict[str, Any]], fmt: str, meta: dict[str, Any]) -> bytes:
    """The export file's bytes: JSON (``meta`` and the records) or CSV (one row per record; ``meta`` in
    every row's last columns, so a row read alone still names the trail it came from)."""
    if fmt == "json":
        return (json.dumps({**meta, "identifications": records}, indent=2, ensure_ascii=False) + "\n").encode()
    if fmt == "csv":
        rows = [[*EXPORT_FIELDS, *meta], *([*(r[k] for k in EXPORT_FIELDS), *meta.values()] for r in records)]
        return csv_text(rows).encode("utf-8")
    raise InvalidField(f"format: {fmt!r} is not one of json, csv")


def write_export(data: bytes, path: Path) -> str:
    """Write the export whole or not at all; return its SHA-256."""
    if not path.parent.is_dir():
        raise InvalidField(f"out: {path.parent} is not a folder")
    check_output(path, "out")
    write_whole(path, data)
    return hashlib.sha256(data).hexdigest()
