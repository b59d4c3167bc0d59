"""Each process's gallery index, kept in step with the database.

Every process (a command, each ``nomina serve`` worker, on one machine or several) holds its own in-memory
:class:`~nomina.index.Gallery`. The database's ``gallery_changes`` log, written by a trigger on ``faces`` in
the transaction that adds or removes a reference face, says what changed since the position (``seq``) a
gallery reflects. Before each search a process reads the log's head and applies what it has not seen
(:meth:`GalleryKeeper.current`): a reference enrolled through one process is found through every other at
its next search, and an erased one is never returned once its erasure has committed. ``nomina serve`` also
applies the log every second (:meth:`GalleryKeeper.refresh`), so that an erased face's vector and code do
not stay in a server's memory until its next search.

On disk, ``index/gallery/`` holds a snapshot of a gallery (see :mod:`nomina.index`), so that a new process
need not rebuild the index from the database: it loads the snapshot and applies the log from the snapshot's
position. A snapshot is written under a lock on the folder, right after the writer has brought its gallery
up to date in a transaction begun under that lock. An erasure, once committed, takes the same lock and
overwrites the erased faces' rows in the snapshot (:meth:`GalleryKeeper.scrub`): a snapshot written before
it is scrubbed by it, and one written after it was brought up to date past the erasure, so no snapshot ever
keeps an erased face.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeGuard

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .errors import RecordTampered
from .index import Gallery, folder_lock, snapshot
from .index.approximate import Layer
from .store import Database
from .store import schema as db

__all__ = ["SNAPSHOT", "GalleryKeeper", "head", "log_disagreements"]

#: The snapshot's folder under the workspace's ``index/`` folder.
SNAPSHOT = "gallery"

#: A snapshot is written again once this share of the gallery has changed since the last one (and at
#: least _SAVE_AFTER_CHANGES faces): a new process then catches up on at most that much of the log.
_SAVE_SHARE = 0.05
_SAVE_AFTER_CHANGES = 1_000

#: Catching up on more log rows than this (and than the gallery holds faces) rebuilds from ``faces`` instead.
_REBUILD_FROM_LOG = 100_000

#: Face ids per query when reading vectors of added faces.
_CHUNK = 5_000


def head(s: Session) -> int:
    """The gallery log's last position (0 before any change)."""
    return int(s.scalar(select(func.max(db.GalleryChange.seq))) or 0)


def log_disagreements(s: Session) -> list[str]:
    """One line per face whose last entry in the gallery log disagrees with the database: every process
    applies the log to its index, so a row written behind Nomina's back that logs a reference face as
    removed hides it from every search, and one that logs a face added that is no reference face names
    one. Only the triggers on ``faces`` write the log, and face ids are never reused, so the last entry of
    each face says whether it is a reference face now."""
    last: dict[int, bool] = {}
    named_nothing = []
    for seq, face_id, added in s.execute(
        select(db.GalleryChange.seq, db.GalleryChange.face_id, db.GalleryChange.added).order_by(db.GalleryChange.seq)
    ):
        if _is_face_id(face_id):
            last[face_id] = bool(added)
        else:
            named_nothing.append(seq)
    live = set(s.scalars(select(db.Face.id).where(db.Face.reference_photo_id.is_not(None))))
    found = []
    if named_nothing:
        found.append(
            f"gallery log: {len(named_nothing)} row(s) naming no face (seq {', '.join(map(str, named_nothing[:5]))}"
            f"{' ...' if len(named_nothing) > 5 else ''}): rows written behind Nomina's back"
        )
    wrong = {
        "logged as removed, yet a reference face (hidden from searches)": [
            f for f, a in last.items() if not a and f in live
        ],
        "logged as added, yet no reference face": [f for f, a in last.items() if a and f not in live],
    }
    return found + [
        f"gallery log: {len(faces)} face(s) {what} (face {', '.join(map(str, sorted(faces)[:5]))}"
        f"{' ...' if len(faces) > 5 else ''}): rows written behind Nomina's back; maintenance rebuilds the index"
        for what, faces in wrong.items()
        if faces
    ]


def _is_face_id(value: object) -> TypeGuard[int]:
    """Whether a gallery log row's face id is one (SQLite keeps whatever a row written behind Nomina's back
    holds, text too; such a row names no face and changes no index)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _face_ids(logged: Iterable[object]) -> np.ndarray:
    """The face ids among gallery log values, once each and in order (:func:`_is_face_id`)."""
    return np.array(sorted({f for f in logged if _is_face_id(f)}), dtype=np.int64)


def _face_rows(s: Session, dim: int, ids: list[int] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(reference ids, face ids, vectors) of every reference face, or of the faces ``ids`` that still exist."""
    q = (
        select(db.ReferencePhoto.reference_id, db.Face.id, db.Face.embedding)
        .join(db.Face, db.Face.reference_photo_id == db.ReferencePhoto.id)
        .order_by(db.Face.id)
    )
    if ids is None:
        rows = list(s.execute(q))
    else:
        rows = []
        for i in range(0, len(ids), _CHUNK):
            rows.extend(s.execute(q.where(db.Face.id.in_(ids[i : i + _CHUNK]))))
    for ref, face_id, embedding in rows:
        if len(embedding) != 4 * dim:
            raise RecordTampered(
                f"face {face_id} of reference {ref}: its embedding has {len(embedding)} bytes, not {4 * dim}: changed "
                "behind Nomina's back; audit verification names the record",
                record=f"reference {ref}",
            )
    vectors = np.frombuffer(b"".join(bytes(r[2]) for r in rows), dtype=np.float32).reshape(len(rows), dim)
    for i in np.flatnonzero(~unit_vectors(vectors))[:1]:
        raise not_unit(rows[int(i)][1], f"reference {rows[int(i)][0]}")
    face_ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    return [r[0] for r in rows], face_ids, vectors


def unit_vectors(vectors: np.ndarray) -> np.ndarray:
    """Which rows are embeddings as models make them: finite numbers, length 1 (to 0.1%). One stored NaN would
    make every score NaN and empty every search without a word; a zeroed vector would drop its face from every
    list. One pass, no copy: a NaN or an infinity makes the squared length NaN or infinite, never near 1."""
    with np.errstate(all="ignore"):
        squared = np.einsum("ij,ij->i", vectors, vectors)
    ok: np.ndarray = (squared >= (1 - 1e-3) ** 2) & (squared <= (1 + 1e-3) ** 2)
    return ok


def not_unit(face_id: int, record: str) -> RecordTampered:
    """The refusal of a stored face whose vector :func:`unit_vectors` refuses; ``record`` is its reference or
    case (``reference MP-1``)."""
    return RecordTampered(
        f"face {face_id} of {record}: its embedding is not a vector of finite numbers of length 1: changed behind "
        "Nomina's back; audit verification names the record",
        record=record,
    )


def _usable(seq: int, size: int, now: int) -> bool:
    """Whether a snapshot at log position ``seq`` holding ``size`` faces is loaded and brought up to date from
    the log at position ``now`` (not when newer than the database, a restored backup, or too far behind)."""
    return seq <= now and now - seq <= max(_REBUILD_FROM_LOG, size)


class GalleryKeeper:
    """One process's gallery index of one workspace: loaded or built on first use, then kept in step with
    the database's log. Thread-safe."""

    def __init__(self, index_root: Path, dim: int) -> None:
        self.root = index_root
        self.folder = index_root / SNAPSHOT
        self.dim = dim
        self.gallery: Gallery | None = None
        self._lock = threading.RLock()
        self._saved_seq = 0
        self._saved_size = 0
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None

    # -- keeping up --------------------------------------------------------------------------------------
    def current(self, database: Database, mode: Callable[[Session], str]) -> Gallery:
        """The gallery as of the database's newest committed state (read in one snapshot)."""
        with self._lock:
            with database.read() as s:
                gallery = self._up_to_date(s, mode(s))
            if self._save_due(gallery):
                self._save(database, mode)
            return gallery

    def refresh(self, database: Database) -> None:
        """Apply the log's new rows to a gallery already loaded (nothing is loaded otherwise)."""
        with self._lock:
            if self.gallery is None:
                return
            with database.read() as s:
                self._catch_up(s, self.gallery)

    def _up_to_date(self, s: Session, mode: str) -> Gallery:
        gallery = self.gallery
        if gallery is None:
            gallery = self._start(s, mode)
        else:
            self._catch_up(s, gallery)
        if gallery.mode != mode:
            gallery.mode = mode
        self.gallery = gallery
        return gallery

    def _start(self, s: Session, mode: str) -> Gallery:
        """The saved snapshot brought up to date, or a gallery built from the database."""
        with folder_lock(self.folder):
            saved = Gallery.load(self.folder, self.dim, mode)
        now = head(s)
        if saved is not None and _usable(saved.seq, saved.size, now):
            self._saved_seq, self._saved_size = saved.seq, saved.size
            self._catch_up(s, saved)
            return saved
        if saved is not None:
            saved.close()  # newer than the database (a restored backup) or too far behind: rebuilt
        refs, ids, vectors = _face_rows(s, self.dim)
        built = Gallery.build(refs, ids, vectors, now, mode)
        self._saved_seq, self._saved_size = -1, 0  # never saved: due at once
        return built

    def _catch_up(self, s: Session, gallery: Gallery) -> None:
        """Apply the log rows after ``gallery.seq`` that ``s`` sees."""
        now = head(s)
        if now <= gallery.seq:
            return
        rows = s.execute(
            select(db.GalleryChange.face_id, db.GalleryChange.added)
            .where(db.GalleryChange.seq > gallery.seq, db.GalleryChange.seq <= now)
            .order_by(db.GalleryChange.seq)
        ).all()
        removed = _face_ids(f for f, added in rows if not added)
        added_ids = _face_ids(f for f, added in rows if added).tolist()
        refs, ids, vectors = _face_rows(s, self.dim, added_ids)  # those still in the gallery now
        gallery.apply(refs, ids, vectors, removed, now)

    # -- the snapshot on disk ----------------------------------------------------------------------------
    def _save_due(self, gallery: Gallery) -> bool:
        changed = abs(gallery.seq - self._saved_seq)
        return self._saved_seq < 0 or changed >= max(_SAVE_AFTER_CHANGES, _SAVE_SHARE * max(self._saved_size, 1))

    def _save(self, database: Database, mode: Callable[[Session], str]) -> None:
        """Write the snapshot: under the folder's lock, brought up to date in a transaction begun under it,
        so that it holds no face whose erasure committed before (see the module's docstring)."""
        gallery = self.gallery
        assert gallery is not None
        with folder_lock(self.folder):
            with database.read() as s:
                self._catch_up(s, gallery)
            gallery.save(self.folder)
            self._saved_seq, self._saved_size = gallery.seq, gallery.size

    def save(self, database: Database, mode: Callable[[Session], str]) -> None:
        """Write the snapshot now (maintenance, tests)."""
        with self._lock:
            self.current(database, mode)
            self._save(database, mode)

    def scrub(self, s: Session) -> None:
        """After an erasure's commit, in a transaction that sees it: apply the log to the loaded gallery (its
        erased faces' bytes are zeroed in memory), then overwrite every removed face's rows in the snapshot
        and remove unfinished snapshot writes. Removals are scrubbed whatever their age (scrubbing is
        idempotent), so a snapshot restored from an older copy is cleaned too."""
        with self._lock:
            if self.gallery is not None:
                self._catch_up(s, self.gallery)
            removed = _face_ids(s.scalars(select(db.GalleryChange.face_id).where(db.GalleryChange.added.is_(False))))
            with folder_lock(self.folder):
                if self.folder.is_dir():
                    Gallery.scrub(self.folder, removed)
                for leftover in self.root.iterdir() if self.root.is_dir() else ():
                    if leftover.name != SNAPSHOT and not leftover.name.endswith(".lock"):
                        _remove(leftover)  # an interrupted save, or an older Nomina's index files

    def disagreements(self, s: Session) -> list[str]:
        """One line per way the snapshot on disk disagrees with the database ``s`` sees (none when there is no
        snapshot): a face under another reference, a vector that is not the stored one, a face missing that
        no later change removed, a face kept that no later change added. The snapshot's files are outside
        the records the trail accounts for; searches check only the candidates they show (a face hidden
        from the index is never shown), so ``nomina audit verify`` compares the whole snapshot."""
        with folder_lock(self.folder):
            found = snapshot.read(self.folder, self.dim) if self.folder.is_dir() else None
            if found is None:
                return []
            live = np.flatnonzero(np.asarray(found.face_ids) >= 0)
            kept_ids = np.asarray(found.face_ids[live], dtype=np.int64)
            kept_refs = np.asarray(found.meta["references"], dtype=object)[np.asarray(found.references[live])]
            seq = int(found.meta["seq"])
            if not _usable(seq, len(live), head(s)):
                return []  # a process would rebuild the index from the database rather than load it
            kept_vectors = np.asarray(found.vectors[live])
            hidden = _misplaced(found, live, kept_vectors)
        changed = _face_ids(s.scalars(select(db.GalleryChange.face_id).where(db.GalleryChange.seq > seq)))
        try:
            refs, ids, vectors = _face_rows(s, self.dim)
        except RecordTampered as exc:
            return [exc.message]
        _, mine, theirs = np.intersect1d(kept_ids, ids, assume_unique=True, return_indices=True)
        other_ref = kept_refs[mine] != np.asarray(refs, dtype=object)[theirs]
        other_vector = np.any(kept_vectors[mine] != vectors[theirs], axis=1) & ~other_ref
        wrong = {
            "under another reference": kept_ids[mine[other_ref]],
            "with another vector": kept_ids[mine[other_vector]],
            "missing": np.setdiff1d(np.setdiff1d(ids, kept_ids), changed),
            "that are no reference face": np.setdiff1d(np.setdiff1d(kept_ids, ids), changed),
            "in a list or with a code their vector does not give (hidden from searches)": kept_ids[hidden],
        }
        return [
            f"gallery index: {len(faces)} face(s) {what} in its snapshot (face {', '.join(map(str, faces[:5]))}"
            f"{' ...' if len(faces) > 5 else ''}): its files were changed or damaged; maintenance rebuilds it"
            for what, faces in ((what, array.tolist()) for what, array in wrong.items())
            if faces
        ]

    def follow(self, database: Database, interval: float) -> None:
        """Call :meth:`refresh` every ``interval`` seconds in a daemon thread until :meth:`close`."""
        with self._lock:
            if self._follower is not None:
                return
            self._stop.clear()
            self._follower = threading.Thread(
                target=self._follow, args=(database, interval), name="nomina-gallery", daemon=True
            )
            self._follower.start()

    def _follow(self, database: Database, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.refresh(database)
            except Exception:  # noqa: BLE001 - a busy or unreachable database: the next round (or search) retries
                continue

    def close(self) -> None:
        """Stop following and let go of the gallery."""
        self._stop.set()
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.join(timeout=5)
        self.forget()

    def forget(self) -> None:
        """Drop the loaded gallery (maintenance rebuilds it from the database)."""
        with self._lock:
            if self.gallery is not None:
                self.gallery.close()
            self.gallery = None
            self._saved_seq = -1


def _misplaced(found: snapshot.Snapshot, live: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Which live rows of a snapshot's approximate layer sit in a list or hold a code their own vector does
    not give (:meth:`Layer.misplaced`); every row when the layer's trained index cannot be read."""
    info = found.meta.get("approximate")
    if info is None or found.lists is None or found.codes is None or found.trained is None:
        return np.zeros(len(live), dtype=bool)
    try:
        layer = Layer.from_saved(found.trained, info)
    except (ValueError, KeyError, TypeError, RuntimeError):
        return np.ones(len(live), dtype=bool)
    return layer.misplaced(vectors, np.asarray(found.lists[live]), np.asarray(found.codes[live]))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
