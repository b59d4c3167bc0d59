"""Photos into faces: reading, decoding and analysing supplied photos, and writing their photo and face rows.

Analysis is slow (decode, detect, align, embed) and runs before any transaction, on the configured
workers; the rows are written afterwards in the caller's write transaction. A photo file written for a
transaction that then fails is removed again by the caller (see ``Workspace``), so a refused operation
leaves the workspace as it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import Conflict, InvalidField, NominaError, QualityTooLow, WorkspaceError
from .faces import Face, FaceAnalyzer
from .imaging import DecodedImage, decoded, read_photo, sha256_hex
from .parallel import ordered_map
from .quality import gate
from .records import PhotoInput, now
from .settings import Settings
from .store import PhotoStore
from .store import schema as db
from .store.database import in_lists

__all__ = [
    "PhotoFacts",
    "PhotoSink",
    "Prepared",
    "bump_gallery",
    "default_retain_until",
    "face_row",
    "now",
    "prepare",
    "prepare_all",
    "store_photo",
]

T = TypeVar("T")


@dataclass(frozen=True)
class PhotoFacts:
    """What the photo row records about a decoded photo (its pixels are not kept once analysed)."""

    format: str
    sha256: str
    size_bytes: int
    width: int
    height: int

    @classmethod
    def of(cls, image: DecodedImage) -> PhotoFacts:
        return cls(image.format, image.sha256, image.size_bytes, image.width, image.height)


@dataclass
class Prepared:
    """A photo read, decoded and analysed, ready to be written. It holds the file's bytes and the face, not
    the decoded pixels, so that many can wait for the writer without filling memory."""

    name: str
    data: bytes
    photo: PhotoFacts
    face: Face | None
    photo_date: Any = None
    quality_override: str | None = None  # set when the face failed the quality gate and was overridden

    @property
    def sha256(self) -> str:
        return self.photo.sha256


def prepare(
    analyzer: FaceAnalyzer, settings: Settings, photo: PhotoInput, gate_mode: str | None, data: bytes | None = None
) -> Prepared:
    """Read, decode and analyse one photo. ``gate_mode`` is given for a reference photo, which must show a
    face that passes the quality gate (or whose failure ``photo`` overrides); None for a case photo, which
    may show no face."""
    name = str(photo.path)
    if data is None:
        data = read_photo(photo.path)
    reference = gate_mode is not None
    with decoded(data, name, settings.max_pixels, settings.workers) as image:
        face = analyzer.choose(image, photo, name, reference, any_orientation=analyzer.turns(reference_photo=reference))
        facts = PhotoFacts.of(image)
        del image  # the pixels go before the slot is given back
    override = None
    if face is not None and gate_mode is not None:
        failed = gate(face.quality, gate_mode)
        if failed and photo.quality_override is None:
            raise QualityTooLow(
                f"{name}: the face fails the {gate_mode} quality gate: {'; '.join(failed)}. A better photo is "
                "best; to enrol this one anyway give the reason for accepting its quality",
                field="quality_override",
            )
        override = photo.quality_override if failed else None
    return Prepared(name, data, facts, face, photo.photo_date, override)


def prepare_all(
    analyzer: Callable[[], FaceAnalyzer], settings: Settings, photos: list[PhotoInput], gate_mode: str | None
) -> list[Prepared]:
    """Analyse every photo (``gate_mode`` None for case photos); the first error in the given order is
    raised and nothing is written. The files are read first: one that cannot be, or a photo given twice,
    is refused before any photo is analysed (a large photo takes seconds)."""
    if not photos:
        raise InvalidField("photos: at least one photo is required")
    contents = [read_photo(p.path) for p in photos]
    seen: set[str] = set()
    for p, data in zip(photos, contents, strict=True):
        sha = sha256_hex(data)
        if sha in seen:
            raise Conflict(f"{p.path}: the same photo is given twice", field="photos")
        seen.add(sha)
    analyzer()  # load (and check) the model once, before threads start
    work = list(zip(photos, contents, strict=True))
    results = list(
        ordered_map(
            lambda item: prepare(analyzer(), settings, item[0], gate_mode, data=item[1]), work, settings.workers
        )
    )
    for r in results:
        if isinstance(r, NominaError):
            raise r
    return [r for r in results if isinstance(r, Prepared)]


def store_photo(s: Session, store: PhotoStore, p: Prepared, new_files: list[str], known_new: bool = False) -> None:
    """The photo's bytes in the store and its row, unless already there (``known_new``: the caller has just
    read that it is not); files written are listed in ``new_files`` so that a failed transaction can remove
    them. The row is written when the session next flushes."""
    if not known_new and s.get(db.Photo, p.sha256) is not None:
        return
    sha, written = store.put(p.data)
    if written:
        new_files.append(sha)
    s.add(
        db.Photo(
            sha256=sha,
            format=p.photo.format,
            width=p.photo.width,
            height=p.photo.height,
            size_bytes=p.photo.size_bytes,
            stored_at=now(),
        )
    )


def face_row(face: Face, model_name: str) -> db.Face:
    """A face's database row: box, landmarks, quality measures and embedding."""
    q = face.quality
    return db.Face(
        number_in_photo=None if face.manual else face.number,
        box=[round(float(v), 2) for v in face.box],
        landmarks=np.round(face.landmarks.astype(np.float64), 2).tolist(),
        manual=face.manual,
        detector_score=q.detector_score,
        inter_eye_px=q.inter_eye_px,
        sharpness=q.sharpness,
        brightness=q.brightness,
        roll=q.roll,
        yaw=q.yaw,
        pitch=q.pitch,
        contrast=q.contrast,
        noise=q.noise,
        sface_norm=q.sface_norm,
        arcface_norm=q.arcface_norm,
        model=model_name,
        embedding=np.asarray(face.embedding, dtype=np.float32).tobytes(),
        added_at=now(),
    )


@dataclass
class PhotoSink:
    """Where a write transaction puts photos and faces: the photo store, the model naming each face row,
    and the photo files written so far (removed again if the transaction fails)."""

    store: PhotoStore
    model_name: str
    new_files: list[str] = field(default_factory=list)
    # photos known to have no row yet (:meth:`expect`), spared a query each
    absent: set[str] = field(default_factory=set)

    def expect(self, s: Session, shas: set[str]) -> None:
        """Read at once which of these photos have no row yet, for a batch about to store them."""
        self.absent = set(shas)
        for some in in_lists(sorted(shas)):
            self.absent -= set(s.scalars(select(db.Photo.sha256).where(db.Photo.sha256.in_(some))))

    def photo(self, s: Session, p: Prepared) -> None:
        known_new = p.sha256 in self.absent
        self.absent.discard(p.sha256)  # a second row with the same bytes finds the first one's (in the session)
        store_photo(s, self.store, p, self.new_files, known_new)

    def face(self, face: Face) -> db.Face:
        return face_row(face, self.model_name)


def bump_gallery(s: Session) -> None:
    """Mark the gallery changed: every process's index is rebuilt before its next search."""
    row = s.get(db.WorkspaceInfo, "gallery_generation")
    if row is None:
        raise WorkspaceError("workspace record 'gallery_generation' is missing")
    row.value = uuid.uuid4().hex


def default_retain_until(retention_years: int, today: date | None = None) -> date | None:
    """Today plus the workspace's retention_years: the retention date of a reference given none (0: none)."""
    if retention_years == 0:
        return None
    today = today or date.today()
    try:
        return today.replace(year=today.year + retention_years)
    except ValueError:  # 29 February
        return today.replace(year=today.year + retention_years, day=28)
