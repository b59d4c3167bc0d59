"""Case face -> ranked candidates, and the record of each search.

A search scores every reference face against the case face(s), keeps each reference's best face and
ranks references by that score. The result is a list of candidates for an examiner to review; it never
says that two faces are one person. :func:`record` stores a search with everything needed to show it
again exactly (model, settings, gallery size, calibration, user), :func:`load` shows a stored one as a
viewer may see it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from . import audit, workflow
from ._version import __version__
from .calibration import Calibration
from .errors import NotFound, RecordTampered, WorkspaceError
from .index import GalleryIndex
from .indexing import not_unit, unit_vectors
from .records import Record, now, record_number
from .settings import os_user
from .store import schema as db
from .store.database import in_lists

# How far a candidate's score may lie from the cosine of its stored vectors (float32 sums in another order).
_SCORE_TOLERANCE = 1e-4

__all__ = [
    "CaseFacts",
    "RefFacts",
    "facts",
    "NOTICE",
    "CandidateResult",
    "CaseFaceRef",
    "SearchResult",
    "Ranked",
    "SearchSummary",
    "age_warnings",
    "calibration",
    "calibration_summary",
    "case_faces",
    "current_calibration",
    "get",
    "load",
    "rank",
    "record",
    "summaries",
]

NOTICE = (
    "Candidates for review by a trained examiner. A high score is not an identification: "
    "only people decide, and every proposed identification needs independent verification."
)


@dataclass(frozen=True)
class CaseFaceRef(Record):
    """A case face a search used; ``number`` is its position among the case's faces (1-based)."""

    number: int
    face_id: int
    photo_sha256: str
    manual: bool


@dataclass(frozen=True)
class CandidateResult(Record):
    rank: int
    reference_id: str
    name: str | None  # None when the reference has since been deleted
    score: float  # cosine similarity of the best pair of faces, -1 to 1
    photo_sha256: str  # the reference photo that gave the score
    reference_face_id: int
    case_face: int  # number of the case face that gave the score
    evidence: dict[str, Any] | None = None  # with a calibration: lr, log10_lr, verbal
    warnings: list[str] = field(default_factory=list)  # e.g. years between the photos compared
    conclusions: list[workflow.ConclusionRecord] = field(default_factory=list)  # examiners', oldest first


@dataclass(frozen=True)
class SearchResult(Record):
    search_id: int
    case_id: str
    created_at: datetime
    user: str | None  # the Nomina user who ran it (None for searches recorded before users existed)
    os_user: str
    model: dict[str, Any]
    settings: dict[str, Any]
    gallery: dict[str, int]
    case_faces: list[CaseFaceRef]
    candidates: list[CandidateResult] = field(default_factory=list)
    calibration: dict[str, Any] | None = None  # id, method, description; None: scores are uncalibrated
    warnings: list[str] = field(default_factory=list)  # about the case faces searched (quality)
    conclusions_hidden: bool = False  # an identification awaits verification by the viewer: conclusions hidden
    notice: str = NOTICE


@dataclass(frozen=True)
class SearchSummary(Record):
    """A recorded search as listed."""

    search_id: int
    case_id: str
    created_at: datetime
    user: str | None
    os_user: str
    candidates: int
    top_reference: str | None


_Seen = TypeVar("_Seen", SearchResult, SearchSummary)


def rank(
    index: GalleryIndex, probes: np.ndarray, case_faces: list[CaseFaceRef], top: int, exhaustive: bool = False
) -> list[tuple[int, str, float, int, int]]:
    """(rank, reference id, score, reference face id, case face id) for the best ``top``."""
    hits = index.search(probes, top, exhaustive=exhaustive)
    return [(i + 1, h.reference_id, h.score, h.face_id, case_faces[h.probe].face_id) for i, h in enumerate(hits)]


def result_from_row(
    row: db.Search,
    names: dict[str, str],
    faces: list[CaseFaceRef],
    calibration: tuple[int, Calibration] | None = None,
    candidate_warnings: dict[int, list[str]] | None = None,
    conclusions: dict[int, list[workflow.ConclusionRecord]] | None = None,
) -> SearchResult:
    """A stored search as a result; ``calibration`` is the one the search recorded (id, mapping),
    ``candidate_warnings`` holds warnings and ``conclusions`` the examiners' conclusions by rank (None:
    hidden from this viewer until an identification is verified)."""
    by_id = {f.face_id: f for f in faces}
    mapping = calibration[1] if calibration is not None else None
    extra = candidate_warnings or {}
    for c in row.candidates:  # what a search stores: ranks from 1, cosine similarities
        if c.rank < 1 or not (math.isfinite(c.score) and -1.0001 <= c.score <= 1.0001):
            raise RecordTampered(
                f"search {row.id}: candidate at rank {c.rank} has score {c.score!r}, which no search records: "
                "changed behind Nomina's back; audit verification names the record",
                record=f"search {row.id}",
            )
    return SearchResult(
        search_id=row.id,
        case_id=row.case_id,
        created_at=row.created_at,
        user=row.user,
        os_user=row.os_user,
        model=dict(row.model),
        settings=dict(row.settings),
        gallery={"references": row.gallery_references, "faces": row.gallery_faces},
        case_faces=[by_id[i] for i in row.case_face_ids if i in by_id],
        candidates=[
            CandidateResult(
                rank=c.rank,
                reference_id=c.reference_id,
                name=names.get(c.reference_id),
                score=round(float(c.score), 6),
                photo_sha256=c.photo_sha256,
                reference_face_id=c.reference_face_id,
                case_face=by_id[c.case_face_id].number if c.case_face_id in by_id else 0,
                evidence=None if mapping is None else mapping.evidence(c.score).as_dict(),
                warnings=extra.get(c.rank, []),
                conclusions=(conclusions or {}).get(c.rank, []),
            )
            for c in row.candidates
        ],
        conclusions_hidden=conclusions is None,
        calibration=None if calibration is None else calibration_summary(*calibration),
        warnings=list(row.warnings or []),
    )


def calibration_summary(calibration_id: int, c: Calibration) -> dict[str, Any]:
    """What a result says of the calibration behind its likelihood ratios."""
    return {"id": calibration_id, "method": c.method, "description": c.describe()}


#: Below this age at the time of the photo, a face is a child's (recognition is weaker on children).
CHILD_AGE = 18


def age_warnings(
    reference_photo_date: date | None, birth_year: int | None, case_date: date | None, gap_years: float
) -> list[str]:
    """Why a comparison may be weaker than its score suggests, from the dates known.

    ``case_date`` is the case photo's date, or failing that the date the person was found. Face
    recognition is less reliable across many years and on children's faces, whose shape still changes.
    """
    out = []
    if reference_photo_date is not None and case_date is not None:
        years = (case_date - reference_photo_date).days / 365.25
        if years >= gap_years:
            out.append(
                f"age gap: the reference photo was taken {years:.0f} years before the case photo; "
                "recognition is weaker across years"
            )
    if reference_photo_date is not None and birth_year is not None:
        age = reference_photo_date.year - birth_year
        if age < CHILD_AGE:
            out.append(
                f"child: the reference photo shows the person at about {max(age, 0)} years old; "
                "recognition is weaker on children's faces"
            )
    return out


def case_faces(case: db.Case) -> list[tuple[CaseFaceRef, np.ndarray]]:
    """The case's faces numbered 1.. in the order their photos and faces were added, with their vectors."""
    out: list[tuple[CaseFaceRef, np.ndarray]] = []
    for cp in case.photos:
        for f in cp.faces:
            ref = CaseFaceRef(number=len(out) + 1, face_id=f.id, photo_sha256=cp.photo_sha256, manual=f.manual)
            vector = np.frombuffer(f.embedding, dtype=np.float32)
            if not unit_vectors(vector[None, :])[0]:
                raise not_unit(f.id, f"case {case.id}")
            out.append((ref, vector))
    return out


# -- stored searches --------------------------------------------------------------------------------
def get(s: Session, search_id: int) -> db.Search:
    """The recorded search ``search_id``; a number the database cannot hold is refused, not looked up."""
    row = s.get(db.Search, record_number(search_id, "search_id"))
    if row is None:
        raise NotFound(f"search {search_id}: no such search", record=f"search {search_id}")
    if row.case is None:  # the database keeps no search without its case: a case id was edited
        raise RecordTampered(
            f"search {search_id}: its case {row.case_id!r} is not in the database: edited behind Nomina's back",
            record=f"search {search_id}",
        )
    return row


def current_calibration(s: Session) -> tuple[int, Calibration] | None:
    """The calibration in use with its id; None when scores are uncalibrated.

    The one in use is the one the newest ``calibration.add`` event added (:func:`nomina.audit.newest_calibration`);
    refused (RecordTampered, see :func:`calibration`) when its row is not as the trail recorded it, or gone.
    """
    newest = audit.newest_calibration(s)
    if newest is None:  # calibrations older than the trail's calibration.add events, if any
        newest = s.scalar(select(func.max(db.Calibration.id)))
        if newest is None:
            return None
    return int(newest), calibration(s, int(newest))


def calibration(s: Session, calibration_id: int, checked: bool = True) -> Calibration:
    """A stored calibration; refused (RecordTampered) when ``checked`` and its row is not as the trail recorded
    it, or gone: its likelihood ratios go into searches, their views and reports."""
    if checked:
        audit.require_records(s, [f"calibration {calibration_id}"], "calibration not used")
    row = s.get(db.Calibration, calibration_id)
    if row is None:
        raise NotFound(f"calibration {calibration_id}: no such calibration", record=f"calibration {calibration_id}")
    try:
        return Calibration.from_dict(dict(row.mapping))
    except ValueError as exc:
        raise WorkspaceError(f"calibration {calibration_id}: stored mapping is damaged: {exc}") from None


@dataclass(frozen=True)
class Ranked:
    """A search's outcome before it is recorded: the case faces searched, the ranking and its context."""

    case_id: str
    case_faces: list[CaseFaceRef]
    ranked: list[tuple[int, str, float, int, int]]  # as :func:`rank` returns them
    settings: dict[str, Any]
    index: GalleryIndex
    calibration_id: int | None
    warnings: list[str]


def _checked(s: Session, found: Ranked) -> dict[int, str]:
    """The photo of each candidate's face, once every candidate is checked against the database: its face is a
    face of its reference, and its score is the cosine of the stored vectors. The index is kept in files of
    its own, outside the records the audit trail accounts for; a candidate that the database does not bear
    out (a snapshot edited, a vector overwritten) is refused before anything is recorded."""
    reference_faces = {
        int(face_id): (reference_id, sha, vector)
        for face_id, reference_id, sha, vector in s.execute(
            select(db.Face.id, db.ReferencePhoto.reference_id, db.ReferencePhoto.photo_sha256, db.Face.embedding)
            .join(db.ReferencePhoto, db.Face.reference_photo_id == db.ReferencePhoto.id)
            .where(db.Face.id.in_([r[3] for r in found.ranked]))
        )
    }
    case_vectors = {
        int(face_id): vector
        for face_id, vector in s.execute(
            select(db.Face.id, db.Face.embedding).where(db.Face.id.in_([r.face_id for r in found.case_faces]))
        )
    }
    for _, reference_id, score, face_id, case_face_id in found.ranked:
        stored = reference_faces.get(face_id)
        probe = case_vectors.get(case_face_id)
        if stored is None or probe is None or stored[0] != reference_id:
            why = f"face {face_id} is not a face of reference {reference_id} in the database"
        else:
            exact = float(np.dot(np.frombuffer(probe, np.float32), np.frombuffer(stored[2], np.float32)))
            if abs(exact - score) <= _SCORE_TOLERANCE:
                continue
            why = f"reference {reference_id}'s score {score:.4f} is {exact:.4f} by the stored vectors"
        raise RecordTampered(
            f"gallery index: {why}: the index files were changed or damaged; an admin's maintenance rebuilds "
            "the index from the database (nothing was recorded)",
            record=f"reference {reference_id}",
        )
    return {face_id: sha for face_id, (_, sha, _) in reference_faces.items()}


def _new_id(s: Session) -> int:
    """An id no search ever had: SQLite gives a new row the largest id plus one, so after a case's erasure
    took the newest search, the next search would take its id, and the trail's events about that search
    would be about two searches. Writers are serialised, so no other transaction takes the same id."""
    searches = s.scalar(select(func.max(db.Search.id))) or 0
    trail = s.scalar(select(func.max(db.AuditEvent.search_id))) or 0
    return max(int(searches), int(trail)) + 1


def record(s: Session, actor: str, found: Ranked, model: dict[str, Any]) -> int:
    """Store a search and its candidates, audit it, and return its id (in the caller's transaction)."""
    photo_of = _checked(s, found)
    row = db.Search(
        id=_new_id(s),
        case_id=found.case_id,
        case_face_ids=[r.face_id for r in found.case_faces],
        model=model,
        settings=found.settings,
        gallery_references=found.index.references,
        gallery_faces=found.index.size,
        created_at=now(),
        os_user=os_user(),
        nomina_version=__version__,
        calibration_id=found.calibration_id,
        warnings=found.warnings,
        user=actor,
    )
    s.add(row)
    s.flush()
    candidates = [
        {
            "search_id": row.id,
            "rank": rk,
            "reference_id": ref_id,
            "score": score,
            "reference_face_id": ref_face,
            "photo_sha256": photo_of[ref_face],
            "case_face_id": case_face,
        }
        for rk, ref_id, score, ref_face, case_face in found.ranked
    ]
    if candidates:  # an empty list would be one row of nulls to SQLAlchemy's bulk insert
        s.execute(insert(db.Candidate), candidates)  # the ORM's per-object bookkeeping cost more than the search
    audit.record(
        s,
        actor,
        audit.SearchRun(
            case_id=found.case_id,
            search_id=row.id,
            candidates=len(found.ranked),
            gallery_references=found.index.references,
        ),
    )
    return int(row.id)


def load(s: Session, search_id: int, viewer: str, age_gap_years: float) -> SearchResult:
    """A stored search as ``viewer`` may see it (conclusions hidden from a blind viewer)."""
    row = get(s, search_id)
    ids = [c.reference_id for c in row.candidates]
    names = dict(s.execute(select(db.Reference.id, db.Reference.name).where(db.Reference.id.in_(ids))).all())
    used = None if row.calibration_id is None else (row.calibration_id, calibration(s, row.calibration_id))
    blind = workflow.blind(row.case, viewer)
    conclusions: dict[int, list[workflow.ConclusionRecord]] | None = None
    if not blind:
        conclusions = {}
        for c in row.conclusions:
            conclusions.setdefault(c.rank, []).append(workflow.conclusion_record(c))
    faces = [ref for ref, _ in case_faces(row.case)]
    found = result_from_row(row, names, faces, used, _age_warnings(s, row, age_gap_years), conclusions)
    return _as_seen(found, blind, viewer)


def _as_seen(found: _Seen, blind: bool, viewer: str) -> _Seen:
    """A search (result or summary) with who ran it hidden from a blind viewer, unless it was them."""
    if workflow.who(found.user, blind, viewer) == found.user:
        return found
    return replace(found, user=workflow.HIDDEN, os_user=workflow.HIDDEN)


def _age_warnings(s: Session, row: db.Search, gap_years: float) -> dict[int, list[str]]:
    """Warnings by candidate rank about the years between the photos compared, and children's photos."""
    refs = {
        face_id: (photo_date, birth_year)
        for face_id, photo_date, birth_year in s.execute(
            select(db.Face.id, db.ReferencePhoto.photo_date, db.Reference.birth_year)
            .join(db.ReferencePhoto, db.Face.reference_photo_id == db.ReferencePhoto.id)
            .join(db.Reference, db.ReferencePhoto.reference_id == db.Reference.id)
            .where(db.Face.id.in_([c.reference_face_id for c in row.candidates]))
        )
    }
    cases = {
        face_id: photo_date or found_on
        for face_id, photo_date, found_on in s.execute(
            select(db.Face.id, db.CasePhoto.photo_date, db.Case.found_on)
            .join(db.CasePhoto, db.Face.case_photo_id == db.CasePhoto.id)
            .join(db.Case, db.CasePhoto.case_id == db.Case.id)
            .where(db.Face.id.in_(row.case_face_ids))
        )
    }
    out: dict[int, list[str]] = {}
    for c in row.candidates:
        photo_date, birth_year = refs.get(c.reference_face_id, (None, None))
        found = age_warnings(photo_date, birth_year, cases.get(c.case_face_id), gap_years)
        if found:
            out[c.rank] = found
    return out


def summaries(s: Session, viewer: str, case_id: str | None = None) -> list[SearchSummary]:
    """Every search (of one case when given), oldest first, with its number of candidates and its first;
    three queries whatever the number of searches (never one per search). Who ran a search of a case
    ``viewer`` is blind to is hidden, unless it was ``viewer``."""
    q = select(db.Search).order_by(db.Search.id)
    counted = select(db.Candidate.search_id, func.count()).group_by(db.Candidate.search_id)
    first = select(db.Candidate.search_id, db.Candidate.reference_id).where(db.Candidate.rank == 1)
    if case_id is not None:
        q = q.where(db.Search.case_id == case_id)
        mine = select(db.Search.id).where(db.Search.case_id == case_id)
        counted = counted.where(db.Candidate.search_id.in_(mine))
        first = first.where(db.Candidate.search_id.in_(mine))
    counts = {row[0]: int(row[1]) for row in s.execute(counted)}
    tops = {row[0]: row[1] for row in s.execute(first)}
    blind = workflow.blind_cases(s, viewer)
    return [
        _as_seen(
            SearchSummary(
                search_id=r.id,
                case_id=r.case_id,
                created_at=r.created_at,
                user=r.user,
                os_user=r.os_user,
                candidates=counts.get(r.id, 0),
                top_reference=tops.get(r.id),
            ),
            r.case_id in blind,
            viewer,
        )
        for r in s.scalars(q)
    ]


@dataclass(frozen=True)
class RefFacts:
    """What the candidate list shows and filters on of a reference."""

    sex: str | None
    birth_year: int | None
    last_seen_on: date | None
    last_seen_at: str | None


@dataclass(frozen=True)
class CaseFacts:
    """What a search's candidate list is read against of its case."""

    kind: str
    found_on: date | None
    status: str


def facts(s: Session, case_id: str, reference_ids: Iterable[str]) -> tuple[CaseFacts, dict[str, RefFacts]]:
    """The case's kind, found date and status, and the candidates' recorded facts (one query for every 500
    candidates, not one per candidate); NotFound for a case that does not exist."""
    case = s.get(db.Case, case_id)
    if case is None:
        raise NotFound(f"case {case_id}: no such case", record=f"case {case_id}")
    found = CaseFacts(case.kind, case.found_on, workflow.status(case))
    ids = sorted(set(reference_ids))
    refs: dict[str, RefFacts] = {}
    for some in in_lists(ids):
        rows = s.execute(
            select(
                db.Reference.id,
                db.Reference.sex,
                db.Reference.birth_year,
                db.Reference.last_seen_on,
                db.Reference.last_seen_at,
            ).where(db.Reference.id.in_(some))
        )
        refs.update({r[0]: RefFacts(r[1], r[2], r[3], r[4]) for r in rows})
    return found, refs
