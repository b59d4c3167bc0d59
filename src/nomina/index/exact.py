"""Exact search: every face scored against the probe(s), the oracle every approximate result is checked against.

:func:`top_references` picks the best ``k`` references from per-face scores without a Python loop over
references: fewer than ``k`` references can own faces scoring above the k-th reference's best face, and no
reference has more than ``max_faces`` faces, so that face is among the best ``k x max_faces`` faces; one
partial sort (``argpartition``) finds them, whatever order the rows are in.

:class:`ExactIndex` is the earlier whole-gallery index (rows grouped by reference, files keyed by the
gallery generation), kept while the workspace still uses it; :class:`nomina.index.Gallery` replaces it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..files import PRIVATE_FILE, PRIVATE_FOLDER

__all__ = ["ExactIndex", "GalleryIndex", "Hit", "top_references"]


@dataclass(frozen=True)
class Hit:
    """A reference's best match: its score, which of its faces gave it, and which probe."""

    reference_id: str
    score: float
    face_id: int
    probe: int


class GalleryIndex(Protocol):
    """What a search needs of an index (:class:`ExactIndex` and :class:`nomina.index.Gallery` both)."""

    @property
    def kind(self) -> str:
        """ "exact" or "approximate": what the search uses."""
        ...

    @property
    def size(self) -> int:
        """Faces in the index."""
        ...

    @property
    def references(self) -> int:
        """References in the index."""
        ...

    def search(self, probes: np.ndarray, top: int, exhaustive: bool = False) -> list[Hit]:
        """The ``top`` references by best score over all probes and all their faces; ``exhaustive``: every
        face compared, whatever the index (an approximate index may miss a weak match)."""
        ...


class ExactIndex:
    """Exact cosine search in numpy. Vectors must be L2-normalised float32 rows."""

    kind = "exact"

    def __init__(self, vectors: np.ndarray, face_ids: np.ndarray, ref_ids: list[str], starts: np.ndarray) -> None:
        self.vectors = vectors
        self.face_ids = face_ids
        self.ref_ids = ref_ids
        self.starts = starts  # index of each reference's first face; faces are grouped by reference
        counts = np.diff(np.append(starts, len(face_ids))).astype(np.int64)
        self._ends = starts + counts
        self._owner = np.repeat(np.arange(len(starts), dtype=np.int32), counts)  # reference of each face
        self._max_faces = int(counts.max()) if len(counts) else 0

    @classmethod
    def build(cls, rows: list[tuple[str, int, np.ndarray]], dim: int) -> ExactIndex:
        """From (reference id, face id, vector) rows in any order."""
        rows = sorted(rows, key=lambda r: (r[0], r[1]))
        vectors = np.array([r[2] for r in rows], dtype=np.float32).reshape(len(rows), dim)
        face_ids = np.array([r[1] for r in rows], dtype=np.int64)
        return cls.from_sorted([r[0] for r in rows], face_ids, vectors)

    @classmethod
    def from_sorted(cls, row_refs: list[str], face_ids: np.ndarray, vectors: np.ndarray) -> ExactIndex:
        """From rows already grouped by reference: ``row_refs[i]`` owns ``vectors[i]``."""
        refs = np.asarray(row_refs, dtype=object)
        if len(refs):
            starts = np.flatnonzero(np.r_[True, refs[1:] != refs[:-1]])
        else:
            starts = np.zeros(0, dtype=np.int64)
        return cls(vectors, face_ids, [str(r) for r in refs[starts]], starts.astype(np.int64))

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def references(self) -> int:
        return len(self.ref_ids)

    def search(self, probes: np.ndarray, top: int, exhaustive: bool = False) -> list[Hit]:
        """Always exhaustive (every face compared)."""
        if self.size == 0 or top <= 0:
            return []
        probes = np.atleast_2d(np.asarray(probes, dtype=np.float32))
        scores = self.vectors @ probes.T  # faces x probes
        if probes.shape[0] == 1:
            best = scores[:, 0]
            best_probe = None
        else:
            best_probe = scores.argmax(axis=1)
            best = scores[np.arange(len(scores)), best_probe]
        k = min(top, len(self.ref_ids))
        if k * self._max_faces < self.size // 4:
            refs, faces = self._best_by_faces(best, k)
        else:
            refs, faces = self._best_by_references(best, k)
        return [
            Hit(
                reference_id=self.ref_ids[r],
                score=float(best[j]),
                face_id=int(self.face_ids[j]),
                probe=0 if best_probe is None else int(best_probe[j]),
            )
            for r, j in zip(refs.tolist(), faces.tolist(), strict=True)
        ]

    def _best_by_faces(self, best: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` references from the top ``k x max faces per reference`` faces.

        Exact: fewer than k references can own faces scoring above the k-th reference's best face, so
        that face is among the k x max-faces best. Costs a partial sort instead of a pass per reference.
        """
        m = k * self._max_faces
        cand = np.argpartition(-best, m - 1)[:m]
        cand = cand[np.lexsort((cand, -best[cand]))]  # score desc, then gallery order
        owners = self._owner[cand]
        _, first = np.unique(owners, return_index=True)  # each reference's best face
        chosen = np.sort(first)[:k]
        return owners[chosen], cand[chosen]

    def _best_by_references(self, best: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` references from each reference's best face (one pass over the references)."""
        per_ref = np.maximum.reduceat(best, self.starts)
        order = np.argpartition(-per_ref, k - 1)[:k]
        order = order[np.lexsort((order, -per_ref[order]))]  # score desc, then gallery order
        faces = np.array(
            [int(self.starts[r]) + int(best[self.starts[r] : self._ends[r]].argmax()) for r in order], dtype=np.int64
        )
        return order, faces

    # -- files ------------------------------------------------------------------------------------
    def save(self, folder: Path, generation: str) -> None:
        """Write the index atomically into ``folder`` (replacing what was there)."""
        folder.parent.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".index-"))  # 0700: its owner's alone
        try:
            np.save(tmp / "vectors.npy", self.vectors)
            np.save(tmp / "face_ids.npy", self.face_ids)
            np.save(tmp / "starts.npy", self.starts)
            (tmp / "meta.json").write_text(
                json.dumps({"kind": self.kind, "generation": generation, "references": self.ref_ids})
            )
            for written in tmp.iterdir():
                os.chmod(written, PRIVATE_FILE)  # like every file Nomina writes, whatever the umask
            old = folder.with_name(folder.name + ".old")
            if folder.exists():
                os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, folder: Path, generation: str) -> ExactIndex | None:
        """The saved index if it was built from this gallery generation, else None."""
        try:
            meta = json.loads((folder / "meta.json").read_text())
            if meta.get("generation") != generation or meta.get("kind") != cls.kind:
                return None
            return cls(
                np.load(folder / "vectors.npy", mmap_mode="r"),
                np.load(folder / "face_ids.npy"),
                list(meta["references"]),
                np.load(folder / "starts.npy"),
            )
        except (OSError, ValueError, KeyError):
            return None


def top_references(best: np.ndarray, owner: np.ndarray, face_ids: np.ndarray, k: int, max_faces: int) -> np.ndarray:
    """Positions (into ``best``) of the best face of each of the top ``k`` references, best first.

    ``best`` holds each face's score (``-inf`` for a face that must not be returned), ``owner`` its
    reference number, ``face_ids`` its id; ``max_faces`` bounds the faces any reference has. Ties are broken
    by face id (the gallery order), so the result does not depend on how the rows are laid out.
    """
    n = len(best)
    if n == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    m = k * max(1, max_faces)
    if m < n:
        part = np.argpartition(best, n - m)[n - m :]
        floor = best[part].min()
        cand = np.flatnonzero(best >= floor)  # every face tied with the m-th best too
    else:
        cand = np.arange(n, dtype=np.int64)
    cand = cand[np.isfinite(best[cand])]
    cand = cand[np.lexsort((face_ids[cand], -best[cand]))]  # score desc, then face id
    _, first = np.unique(owner[cand], return_index=True)  # each reference's best face
    return np.asarray(cand[np.sort(first)[:k]], dtype=np.int64)
