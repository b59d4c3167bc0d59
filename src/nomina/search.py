"""Case face -> ranked candidates, and the record of each search.

A search scores every reference face against the case face(s), keeps each reference's best face and
ranks references by that score. The result is a list of candidates for an examiner to review; it never
says that two faces are one person.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from .index import GalleryIndex
from .store import schema as db

__all__ = ["NOTICE", "CandidateResult", "CaseFaceRef", "SearchResult", "rank"]

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


@dataclass(frozen=True)
class SearchResult:
    search_id: int
    case_id: str
    created_at: datetime
    os_user: str
    model: dict[str, Any]
    settings: dict[str, Any]
    gallery: dict[str, int]
    case_faces: list[CaseFaceRef]
    candidates: list[CandidateResult] = field(default_factory=list)
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


def result_from_row(row: db.Search, names: dict[str, str], faces: list[CaseFaceRef]) -> SearchResult:
    by_id = {f.face_id: f for f in faces}
    return SearchResult(
        search_id=row.id,
        case_id=row.case_id,
        created_at=row.created_at,
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
            )
            for c in row.candidates
        ],
    )
