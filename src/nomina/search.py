"""Case face -> ranked candidates, and the record of each search.

A search scores every reference face against the case face(s), keeps each reference's best face and
ranks references by that score. The result is a list of candidates for an examiner to review; it never
says that two faces are one person.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from .calibration import Calibration
from .index import GalleryIndex
from .store import schema as db

__all__ = [
    "NOTICE",
    "CandidateResult",
    "CaseFaceRef",
    "SearchResult",
    "age_warnings",
    "calibration_summary",
    "rank",
]

NOTICE = (
    "Candidates for review by a trained examiner. A high score is not an identification: "
    "only people decide, and every proposed identification needs independent verification."
)


@dataclass(frozen=True)
class CaseFaceRef:
    """A case face a search used; ``number`` is its position among the case's faces (1-based)."""

    number: int
    face_id: int
    photo_sha256: str
    manual: bool


@dataclass(frozen=True)
class CandidateResult:
    rank: int
    reference_id: str
    name: str | None  # None when the reference has since been deleted
    score: float  # cosine similarity of the best pair of faces, -1 to 1
    photo_sha256: str  # the reference photo that gave the score
    reference_face_id: int
    case_face: int  # number of the case face that gave the score
    evidence: dict[str, Any] | None = None  # with a calibration: lr, log10_lr, verbal
    warnings: list[str] = field(default_factory=list)  # e.g. years between the photos compared
    conclusions: list[dict[str, Any]] = field(default_factory=list)  # examiners', oldest first


@dataclass(frozen=True)
class SearchResult:
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

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape (docs/json.md)."""
        out = asdict(self)
        out["created_at"] = self.created_at.isoformat(timespec="seconds")
        return out


def rank(
    index: GalleryIndex, probes: np.ndarray, case_faces: list[CaseFaceRef], top: int
) -> list[tuple[int, str, float, int, int]]:
    """(rank, reference id, score, reference face id, case face id) for the best ``top``."""
    hits = index.search(probes, top)
    return [(i + 1, h.reference_id, h.score, h.face_id, case_faces[h.probe].face_id) for i, h in enumerate(hits)]


def result_from_row(
    row: db.Search,
    names: dict[str, str],
    faces: list[CaseFaceRef],
    calibration: tuple[int, Calibration] | None = None,
    candidate_warnings: dict[int, list[str]] | None = None,
    conclusions: dict[int, list[dict[str, Any]]] | None = None,
) -> SearchResult:
    """A stored search as a result; ``calibration`` is the one the search recorded (id, mapping),
    ``candidate_warnings`` holds warnings and ``conclusions`` the examiners' conclusions by rank (None:
    hidden from this viewer until an identification is verified)."""
    by_id = {f.face_id: f for f in faces}
    mapping = calibration[1] if calibration is not None else None
    extra = candidate_warnings or {}
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
