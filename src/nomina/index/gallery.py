"""The gallery index: every live reference face of one process, exact or approximate, kept in step.

A :class:`Gallery` holds the float vectors of every live face (:class:`.rows.Rows`) and, for large
galleries, an approximate layer (:class:`.approximate.Layer`: IVF lists of 4-bit PQ codes). The mode says
which one searches: "exact" always scores every face; "approximate" uses the layer once the gallery has
:data:`.approximate.MIN_FACES` faces; "auto" (the default) is exact below :data:`APPROXIMATE_FROM` live
faces and approximate from there. The layer only proposes candidates (``Params.fetch`` faces per probe);
every face of every proposed reference is then scored exactly from its float vector, so each score shown
is an exact cosine and each reference's best face is its true best face: the approximate path can only
miss a reference, never misstate one.

Changes arrive in batches (:meth:`Gallery.apply`): removals zero the face's float row and overwrite its
code in its inverted list at once (no copy of it is left in the structures, see :mod:`.approximate`);
adds append rows and codes. A rebuild runs in a background thread only when it is worth it:
- the mode asks for a layer that is not there (auto crossing :data:`APPROXIMATE_FROM`, or a mode change);
- the layer was trained for fewer than half the faces it now holds (lists twice too long: retrain);
- more than a fifth of the rows (or of the layer's entries) are tombstones: compact and retrain.
The rebuild thread runs faiss on one core (an OpenMP setting of that thread alone), leaving the others to
the searches. The old structures serve searches until the new ones are ready; the changes applied meanwhile are then
replayed on them (removals since the start, and the rows appended since), the new ones swapped in under
the write lock, and the old ones zeroed once no reader holds them (so that freed memory keeps no vector).
Each rebuild retrains the centroids and codebooks, whose averages then no longer include erased faces.

Duplicates (:meth:`Gallery.duplicates`): with a layer, every face is looked up by its code among the
``Params.duplicate_lists`` lists nearest its own list (faiss, batched across both cores, no coarse
quantisation since each face's list is known) and the close pairs are scored exactly; the leading reference
pairs are then compared face by face so that each is shown with its best pair. Measured at 1M synthetic
faces on the 2-core machine at load 2.5-4: 23-51 s depending on the codes read per face (8 or 16 lists of
about 250-500 faces); 8 and 16 lists of 250 faces found 806 of the same 1,000 best pairs. Without a layer
every pair is compared exactly (quadratic; for galleries below :data:`APPROXIMATE_FROM`).

Thread safety: a readers-writer lock; searches (readers) run together, changes and swaps (writers) alone.
Long reads (:meth:`Gallery.save`, :meth:`Gallery.duplicates`) pin the current structures and run outside
the lock, so that searches and changes go on meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from . import snapshot
from .approximate import MIN_FACES, Layer, Params
from .exact import Hit, top_references
from .rows import BLOCK_ROWS, Rows

__all__ = ["APPROXIMATE_FROM", "MODES", "Gallery", "Pair"]

#: Live faces from which the "auto" mode searches the approximate layer.
APPROXIMATE_FROM: int = 100_000
MODES = ("auto", "exact", "approximate")
_TOMBSTONES = 0.2  # rebuild when more than this fraction of rows (or layer entries) are dead
_OUTGROWN = 2.0  # retrain when live faces exceed this multiple of the faces the layer was trained for
_QUERY_ROWS = 4096  # duplicates, exact path: query rows per matrix product
_CANDIDATE_ROWS = 16384  # and candidate rows
_CODE_MARGIN = 0.1  # duplicates, layer path: pairs whose code score is this close to min_score are scored


@dataclass(frozen=True)
class Pair:
    """A likely duplicate: faces of two different references, with the exact score of the two faces."""

    reference_a: str
    face_a: int
    reference_b: str
    face_b: int
    score: float


class _Lock:
    """A readers-writer lock that lets a waiting writer in before new readers (no writer starves)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class _State:
    """The structures searched together: rows and (maybe) the layer over them; pinned by long readers."""

    def __init__(self, rows: Rows, layer: Layer | None) -> None:
        self.rows = rows
        self.layer = layer
        self.pins = 0


@dataclass
class _Job:
    """A background rebuild: of the layer alone over the same rows, or compaction of the rows too."""

    state: _State
    compact: bool
    with_layer: bool
    end: int  # rows [0, end) are rebuilt; later ones are replayed at the swap
    dead: int  # rows dead before the start (Rows.dead.n); later deaths are replayed
    thread: threading.Thread | None = None


class _Cancelled(Exception):
    pass


class Gallery:
    """One process's in-memory index of every live reference face. Thread-safe (an internal lock; searches
    may run while another thread applies changes)."""

    def __init__(self, rows: Rows, layer: Layer | None, seq: int, mode: str = "auto") -> None:
        if mode not in MODES:
            raise ValueError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
        self._lock = _Lock()
        self._state = _State(rows, layer)
        self._mode = mode
        self._pinned = threading.Condition()
        self._job: _Job | None = None
        self._retiring: list[threading.Thread] = []
        self._closed = False
        self.seq = seq
        self.last_error: BaseException | None = None  # of the last background rebuild, if it failed

    # -- making one -------------------------------------------------------------------------------
    @classmethod
    def empty(cls, dim: int, mode: str = "auto") -> Gallery:
        return cls(Rows(dim), None, 0, mode)

    @classmethod
    def build(
        cls, refs: Sequence[str], face_ids: np.ndarray, vectors: np.ndarray, seq: int, mode: str = "auto"
    ) -> Gallery:
        """From rows in any order (stored by face id); builds the approximate layer now when the mode asks."""
        face_ids = np.asarray(face_ids, dtype=np.int64).reshape(-1)
        rows = Rows(int(vectors.shape[1]))
        order = np.argsort(face_ids, kind="stable")
        for start in range(0, len(order), BLOCK_ROWS):
            part = order[start : start + BLOCK_ROWS]
            chunk = np.asarray(vectors[part], dtype=np.float32)
            rows.add([refs[i] for i in part.tolist()], face_ids[part], chunk)
            chunk.fill(0)
        gallery = cls(rows, None, seq, mode)
        if gallery._uses_layer(rows.size):
            gallery._state = _State(rows, _build_layer(rows, rows.n, None))
        return gallery

    # -- what it is -------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
        with self._lock.write():
            self._mode = mode
            self._after_change()

    @property
    def kind(self) -> str:
        """ "exact" or "approximate": what :meth:`search` uses now."""
        with self._lock.read():
            return self._kind(self._state)

    @property
    def size(self) -> int:
        """Live faces."""
        return self._state.rows.size

    @property
    def references(self) -> int:
        """References with at least one live face."""
        return self._state.rows.live_refs

    @property
    def dim(self) -> int:
        return self._state.rows.dim

    @property
    def layer(self) -> Layer | None:
        """The approximate layer now in use or kept (for checks and the benchmark)."""
        return self._state.layer

    @property
    def rows(self) -> Rows:
        """The float rows now in use (for checks and the benchmark)."""
        return self._state.rows

    def _uses_layer(self, faces: int) -> bool:
        if self._mode == "approximate":
            return faces >= MIN_FACES
        return self._mode == "auto" and faces >= max(APPROXIMATE_FROM, MIN_FACES)

    def _keeps_layer(self, faces: int) -> bool:
        """A layer is kept (maintained, unused) down to half the threshold, so that a gallery hovering
        about it does not rebuild again and again."""
        if self._mode == "approximate":
            return faces >= MIN_FACES // 2
        return self._mode == "auto" and faces >= max(APPROXIMATE_FROM, MIN_FACES) // 2

    def _kind(self, state: _State) -> str:
        return "approximate" if state.layer is not None and self._uses_layer(state.rows.size) else "exact"

    # -- changes ----------------------------------------------------------------------------------
    def apply(
        self,
        added_refs: Sequence[str],
        added_ids: np.ndarray,
        added_vectors: np.ndarray,
        removed_ids: np.ndarray,
        seq: int,
    ) -> None:
        """One batch of changes in order: removals (unknown ids ignored), then adds (ids already live
        ignored, so that applying a log twice is harmless). Removed faces' bytes are zeroed at once."""
        added_ids = np.asarray(added_ids, dtype=np.int64).reshape(-1)
        added_vectors = np.asarray(added_vectors, dtype=np.float32).reshape(len(added_ids), self.dim)
        removed_ids = np.asarray(removed_ids, dtype=np.int64).reshape(-1)
        if len(added_refs) != len(added_ids):
            raise ValueError(f"{len(added_refs)} references for {len(added_ids)} faces")
        with self._lock.write():
            state = self._state
            gone = state.rows.remove(removed_ids)
            if state.layer is not None:
                state.layer.remove(gone)
            new = state.rows.add(added_refs, added_ids, added_vectors)
            if state.layer is not None and len(new):
                fresh = state.rows.gather(new)
                state.layer.add(new, fresh)
                fresh.fill(0)
            self.seq = seq
            self._after_change()

    def _after_change(self) -> None:
        """Under the write lock: drop a layer no longer wanted, start a rebuild that is worth it."""
        state = self._state
        faces = state.rows.size
        if state.layer is not None and not self._keeps_layer(faces):
            self._state = _State(state.rows, None)
            self._retire(state, rows_too=False)
            state = self._state
        if self._closed or (self._job is not None and self._job.thread is not None):
            return
        rows, layer = state.rows, state.layer
        compact = rows.dead.n >= 1024 and rows.dead.n > _TOMBSTONES * rows.n
        retrain = layer is not None and (
            faces > _OUTGROWN * layer.trained_size
            or (layer.dead_entries >= 1024 and layer.dead_entries > _TOMBSTONES * (layer.entries + layer.dead_entries))
        )
        missing = layer is None and self._uses_layer(faces)
        if compact or retrain or missing:
            with_layer = layer is not None or missing
            self._start(_Job(state, compact, with_layer, rows.n, rows.dead.n))

    def _start(self, job: _Job) -> None:
        job.state.rows.seal()  # the last block will not be reallocated while the job reads it
        job.thread = threading.Thread(target=self._rebuild, args=(job,), name="nomina-gallery-rebuild", daemon=True)
        self._job = job
        job.thread.start()

    def _rebuild(self, job: _Job) -> None:
        """The background rebuild: build without the lock, replay and swap with it, then retire the old."""
        old = job.state
        faiss.omp_set_num_threads(1)  # this thread's own setting: the serving threads keep every core
        try:
            rows = _compact(old.rows, job.end, self._check) if job.compact else old.rows
            layer = _build_layer(rows, rows.n if job.compact else job.end, self._check) if job.with_layer else None
            with self._lock.write():
                self._check()
                if job.compact:
                    since = old.rows.dead.view()[job.dead :]
                    gone = rows.remove(old.rows.face_ids.data[since])
                    if layer is not None:
                        layer.remove(gone)
                    tail = np.arange(job.end, old.rows.n, dtype=np.int64)
                    tail = tail[old.rows.live.data[tail]]
                    moved = old.rows.gather(tail)
                    owners = old.rows.owner.data[tail].tolist()
                    added = rows.add([old.rows.ref_ids[o] for o in owners], old.rows.face_ids.data[tail], moved)
                    moved.fill(0)
                    if layer is not None and len(added):
                        fresh = rows.gather(added)
                        layer.add(added, fresh)
                        fresh.fill(0)
                elif layer is not None:
                    layer.remove(rows.dead.view())
                    tail = np.arange(job.end, rows.n, dtype=np.int64)
                    tail = tail[rows.live.data[tail]]
                    fresh = rows.gather(tail)
                    layer.add(tail, fresh)
                    fresh.fill(0)
                if layer is not None and not self._keeps_layer(rows.size):
                    layer.wipe()
                    layer = None
                current = self._state
                self._state = _State(rows, layer)
                self._job = None
                if current is not old:  # a layer was dropped meanwhile: it was retired then
                    self._retire(current, rows_too=job.compact)
                else:
                    self._retire(old, rows_too=job.compact)
                self._after_change()
        except _Cancelled:
            pass
        except BaseException as error:  # the old structures go on serving; the caller may look
            self.last_error = error
        finally:
            with self._lock.write():
                if self._job is job:
                    self._job = None

    def _check(self) -> None:
        if self._closed:
            raise _Cancelled

    def _retire(self, state: _State, rows_too: bool) -> None:
        """Zero the structures of a replaced state once no reader holds it, in a thread of its own (outside
        the lock: no search can reach a replaced state, only pinned readers, which are waited for)."""

        def wipe() -> None:
            with self._pinned:
                while state.pins:
                    self._pinned.wait()
            if state.layer is not None:
                state.layer.wipe()
            if rows_too:
                state.rows.wipe()

        self._retiring = [t for t in self._retiring if t.is_alive()]
        thread = threading.Thread(target=wipe, name="nomina-gallery-retire", daemon=True)
        self._retiring.append(thread)
        thread.start()

    @contextmanager
    def _pin(self) -> Iterator[_State]:
        """The current state, kept from being wiped while held (taken under the write lock, briefly, so that
        the last block can be sealed)."""
        with self._lock.write():
            state = self._state
            state.rows.seal()
            with self._pinned:
                state.pins += 1
        try:
            yield state
        finally:
            with self._pinned:
                state.pins -= 1
                self._pinned.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no background rebuild runs (one may start another); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self._job
            if job is None or job.thread is None:
                for thread in list(self._retiring):
                    thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
                return not any(t.is_alive() for t in self._retiring)
            job.thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if job.thread.is_alive():
                return False

    def close(self) -> None:
        """Stop background work (a rebuild under way is abandoned) and wait for it."""
        self._closed = True
        job = self._job
        if job is not None and job.thread is not None:
            job.thread.join()
        for thread in self._retiring:
            thread.join()

    # -- search -----------------------------------------------------------------------------------
    def search(self, probes: np.ndarray, top: int, exhaustive: bool = False) -> list[Hit]:
        """The ``top`` references by their best face over all probes (P x dim), best first; exact scores;
        ties broken by face id; never a removed face. ``exhaustive``: every face compared, even when the
        approximate layer is in use (the layer can miss a weak match: a mated face scoring 0.3-0.5 in a
        list it does not read): 21 ms at 1M faces against 1.8 ms (bench/search_latency.py), and about ten
        times that at 10M (estimated)."""
        probes = np.atleast_2d(np.asarray(probes, dtype=np.float32))
        if probes.shape[1] != self.dim:
            raise ValueError(f"probes of {probes.shape[1]} dimensions, not {self.dim}")
        with self._lock.read():
            state = self._state
            rows = state.rows
            if rows.size == 0 or top <= 0:
                return []
            k = min(top, rows.live_refs)
            if not exhaustive and self._kind(state) == "approximate" and state.layer is not None:
                rows_at, best, which = _search_layer(state.layer, rows, probes, k)
            else:
                best, which = _best_probe(rows.scores(probes))
                if rows.dead.n:
                    best[rows.dead.view()] = -np.inf
                rows_at = None
            owner = rows.owner.data[: rows.n] if rows_at is None else rows.owner.data[rows_at]
            face_ids = rows.face_ids.data[: rows.n] if rows_at is None else rows.face_ids.data[rows_at]
            chosen = top_references(best, owner, face_ids, k, rows.max_faces)
            return [
                Hit(
                    reference_id=rows.ref_ids[int(owner[j])],
                    score=float(best[j]),
                    face_id=int(face_ids[j]),
                    probe=0 if which is None else int(which[j]),
                )
                for j in chosen.tolist()
            ]

    # -- duplicates -------------------------------------------------------------------------------
    def duplicates(self, min_score: float, limit: int, k: int = 10) -> list[Pair]:
        """Likely duplicate references: for every face its ``k`` nearest other faces scoring at least
        ``min_score``, pairs of faces of DIFFERENT references, one per reference pair (its best faces), best
        first, at most ``limit``. With a layer, each face's nearest faces are looked for by their codes
        in the ``Params.duplicate_lists`` lists nearest its own (approximate: a pair may be missed; the
        scores are exact); without, every pair of faces is compared exactly in blocks (quadratic: seconds
        at 20,000 faces, minutes at 100,000)."""
        if limit <= 0 or k <= 0:
            return []
        with self._pin() as state:
            rows, layer = state.rows, state.layer
            with self._lock.read():
                live = rows.live.data[: rows.n].copy()
                if layer is not None:
                    layer.centroids()
            if layer is not None:
                a, b, s = _pairs_by_layer(self, rows, layer, live, k, min_score)
            else:
                a, b, s = _pairs_exact(rows, live, len(live), min_score)
            with self._lock.read():
                keep = rows.live.data[a] & rows.live.data[b]
                a, b, s = a[keep], b[keep], s[keep]
                return _best_pairs(rows, a, b, s, k, limit, refine=layer is not None)

    # -- snapshots --------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write a snapshot atomically into ``folder`` (see :mod:`.snapshot`); the caller holds
        :func:`.snapshot.folder_lock`."""
        codes = None
        with self._pin() as state:
            rows, layer = state.rows, state.layer
            with self._lock.read():
                end = rows.n
                live = np.flatnonzero(rows.live.data[:end])
                owners = rows.owner.data[live]
                used, numbers = np.unique(owners, return_inverse=True)
                arrays = {
                    "face_ids": rows.face_ids.data[live].copy(),
                    "references": numbers.astype(np.int32),
                }
                meta: dict[str, object] = {
                    "format": snapshot.FORMAT,
                    "dim": rows.dim,
                    "seq": int(self.seq),
                    "kind": self._kind(state),
                    "mode": self._mode,
                    "rows": len(live),
                    "references": [rows.ref_ids[int(o)] for o in used],
                    "approximate": None,
                }
                if layer is not None:
                    arrays["lists"] = layer.lists.data[live].copy()
                    codes = layer.codes.data[live]
                    arrays["codes"] = codes
                    p = layer.params
                    meta["approximate"] = {
                        "nlist": p.nlist,
                        "nprobe": p.nprobe,
                        "fetch": p.fetch,
                        "duplicate_lists": p.duplicate_lists,
                        "trained_size": layer.trained_size,
                        "code_size": layer.code_size,
                    }
                live_mask = rows.live.data[:end].copy()

            def vector_parts() -> Iterator[np.ndarray]:
                for start, block in rows.chunks(end):
                    yield block[live_mask[start : start + len(block)]]

            try:
                snapshot.write(folder, meta, vector_parts(), arrays, None if layer is None else layer.trained)
            finally:
                if codes is not None:
                    codes.fill(0)

    @classmethod
    def load(cls, folder: Path, dim: int, mode: str = "auto") -> Gallery | None:
        """The gallery saved in ``folder``; None when missing, corrupt or of another dimension. A layer is
        restored from its stored codes without retraining (or built in the background if the mode asks
        for one the snapshot lacks)."""
        found = snapshot.read(folder, dim)
        if found is None:
            return None
        try:
            rows = Rows(dim)
            refs = found.meta["references"]
            live = np.flatnonzero(np.asarray(found.face_ids) >= 0)
            for start in range(0, len(live), BLOCK_ROWS):
                part = live[start : start + BLOCK_ROWS]
                vectors = np.array(found.vectors[part], dtype=np.float32)
                with np.errstate(over="ignore", invalid="ignore"):
                    norms = np.linalg.norm(vectors, axis=1)
                if not np.all(np.abs(norms - 1) < 1e-3):  # NaN and inf fail too
                    return None
                rows.add([refs[i] for i in found.references[part].tolist()], found.face_ids[part], vectors)
                vectors.fill(0)
            layer = None
            info = found.meta.get("approximate")
            trained, lists, codes = found.trained, found.lists, found.codes
            if info is not None and trained is not None and lists is not None and codes is not None and mode != "exact":
                layer = Layer.from_saved(trained, info)
                kept = np.array(codes[live], dtype=np.uint8)
                layer.add_codes(np.arange(len(live), dtype=np.int64), np.asarray(lists[live]), kept)
                kept.fill(0)
            gallery = cls(rows, layer, int(found.meta["seq"]), mode)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError):
            return None
        with gallery._lock.write():
            gallery._after_change()
        return gallery

    @staticmethod
    def scrub(folder: Path, face_ids: np.ndarray) -> int:
        """Overwrite in place every byte derived from these faces in the snapshot files; rows scrubbed."""
        return snapshot.scrub(folder, face_ids)


# -- building ---------------------------------------------------------------------------------------
def _compact(old: Rows, end: int, check: Callable[[], None] | None) -> Rows:
    """A copy of the live rows among old rows [0, end), in order, references renumbered."""
    rows = Rows(old.dim)
    for start, block in old.chunks(end):
        if check is not None:
            check()
        live = old.live.data[start : start + len(block)].copy()
        picked = np.flatnonzero(live) + start
        if not len(picked):
            continue
        vectors = block[live]
        owners = old.owner.data[picked].tolist()
        rows.add([old.ref_ids[o] for o in owners], old.face_ids.data[picked], vectors)
        vectors.fill(0)
    return rows


def _build_layer(rows: Rows, end: int, check: Callable[[], None] | None) -> Layer:
    """A layer trained on a sample of the live rows [0, end) and holding all of them."""
    live = np.flatnonzero(rows.live.data[:end])
    params = Params.for_size(len(live))
    rng = np.random.default_rng(len(live))
    picked = np.sort(rng.choice(live, size=min(len(live), params.nlist * 32), replace=False))
    sample = rows.gather(picked)
    layer = Layer.train(sample, len(live), params)
    sample.fill(0)
    for start, block in rows.chunks(end):
        if check is not None:
            check()
        mask = rows.live.data[start : start + len(block)].copy()
        vectors = block[mask]
        layer.add(np.flatnonzero(mask) + start, vectors, commit=False)
        vectors.fill(0)
    layer.commit()
    return layer


# -- search helpers ---------------------------------------------------------------------------------
def _search_layer(
    layer: Layer, rows: Rows, probes: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Candidate rows and their exact best scores (and probes): the faces the layer proposes, re-scored
    from their float vectors, plus every other face of the 2 x k leading references, so that each of those
    references is scored by its true best face."""
    found = layer.search(probes, max(layer.params.fetch, 8 * k))
    cand = found[found >= 0]  # one probe: distinct rows already
    cand = np.sort(cand) if len(probes) == 1 else np.unique(cand)
    cand = cand[rows.live.data[cand]]
    vectors = rows.gather(cand)
    best, which = _best_probe(vectors @ probes.T)
    vectors.fill(0)
    lead = top_references(best, rows.owner.data[cand], rows.face_ids.data[cand], 2 * k, rows.max_faces)
    members = rows.by_owner.find(rows.owner.data[cand[lead]])
    members = members[rows.live.data[members]]
    at = np.minimum(np.searchsorted(cand, members), len(cand) - 1)  # cand is sorted
    extra = np.unique(members[cand[at] != members])
    if not len(extra):
        return cand, best, which
    vectors = rows.gather(extra)
    more, more_which = _best_probe(vectors @ probes.T)
    vectors.fill(0)
    merged = None if which is None or more_which is None else np.concatenate([which, more_which])
    return np.concatenate([cand, extra]), np.concatenate([best, more]), merged


def _best_probe(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Each face's best score over the probes (n x P scores), and which probe gave it (None: one probe)."""
    if scores.shape[1] == 1:
        return scores[:, 0], None
    which = scores.argmax(axis=1)
    return scores[np.arange(len(scores)), which], which


# -- duplicates helpers -----------------------------------------------------------------------------
def _pairs_exact(rows: Rows, live: np.ndarray, end: int, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of live rows a < b among [0, end) scoring at least ``min_score``."""
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    blocks = list(rows.chunks(end))
    for bi, (qs, qblock) in enumerate(blocks):
        for q0 in range(0, len(qblock), _QUERY_ROWS):
            queries = qblock[q0 : q0 + _QUERY_ROWS]
            first = qs + q0
            for cs, cblock in blocks[bi:]:
                for c0 in range(max(0, first - cs), len(cblock), _CANDIDATE_ROWS):
                    scores = queries @ cblock[c0 : c0 + _CANDIDATE_ROWS].T
                    i, j = np.nonzero(scores >= min_score)
                    a, b = first + i, cs + c0 + j
                    keep = (a < b) & live[a] & live[b]
                    found.append((a[keep], b[keep], scores[i[keep], j[keep]]))
    return _concat(found)


def _pairs_by_layer(
    gallery: Gallery, rows: Rows, layer: Layer, live: np.ndarray, k: int, min_score: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of live rows a < b scoring at least ``min_score`` among each face's ``k`` nearest by code:
    every face is searched in the ``Params.duplicate_lists`` lists nearest its own list's centroid (no
    coarse quantisation: the face's list is known), by faiss in batches across both cores, and the pairs
    whose code score comes within :data:`_CODE_MARGIN` of ``min_score`` are scored exactly."""
    end = len(live)
    lists = layer.lists.data[:end].copy()
    centroids = layer.centroids()
    flat = faiss.IndexFlatIP(centroids.shape[1])
    flat.add(centroids)
    near = min(layer.params.duplicate_lists, len(centroids))
    near_scores, near_lists = flat.search(centroids, near)
    found_a: list[np.ndarray] = []
    found_b: list[np.ndarray] = []
    for start, block in rows.chunks(end):
        for s0 in range(0, len(block), _QUERY_ROWS * 4):
            r = np.arange(start + s0, start + min(len(block), s0 + _QUERY_ROWS * 4), dtype=np.int64)
            keep = live[r] & (lists[r] >= 0)
            r = r[keep]
            if not len(r):
                continue
            queries = block[r - start]
            with gallery._lock.read():  # no list is rewritten while faiss reads it
                scores, found = layer.search_lists(queries, k + 1, near_lists[lists[r]], near_scores[lists[r]])
            queries.fill(0)
            hit = (found >= 0) & (found != r[:, None]) & (scores >= min_score - _CODE_MARGIN)
            found_a.append(np.repeat(r, hit.sum(axis=1)))
            found_b.append(found[hit])
    if not found_a:
        return _concat([])
    a, b = np.concatenate(found_a), np.concatenate(found_b)
    a, b = np.minimum(a, b), np.maximum(a, b)
    _, first = np.unique(a * np.int64(end + 1) + b, return_index=True)
    a, b = a[first], b[first]
    exact = np.empty(len(a), dtype=np.float32)
    for p0 in range(0, len(a), 65536):
        va, vb = rows.gather(a[p0 : p0 + 65536]), rows.gather(b[p0 : p0 + 65536])
        exact[p0 : p0 + 65536] = np.einsum("ij,ij->i", va, vb)
        va.fill(0)
        vb.fill(0)
    keep = exact >= min_score
    return a[keep], b[keep], exact[keep]


def _concat(found: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return (
        np.concatenate([f[0] for f in found]).astype(np.int64),
        np.concatenate([f[1] for f in found]).astype(np.int64),
        np.concatenate([f[2] for f in found]).astype(np.float32),
    )


def _best_pairs(
    rows: Rows, a: np.ndarray, b: np.ndarray, s: np.ndarray, k: int, limit: int, refine: bool
) -> list[Pair]:
    """From face pairs (a < b, score s): keep those where either face is among the other's k best
    partners, then pairs of different references, one per reference pair (its best), best first. With
    ``refine`` (pairs proposed by the lists, where a reference pair's best faces may not have been
    compared), every face of the leading reference pairs is compared exactly to find their best pair."""
    if not len(a):
        return []
    face_ids = rows.face_ids.data
    src, dst, score = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([s, s])
    order = np.lexsort((face_ids[dst], -score, src))
    src_sorted = src[order]
    group_start = np.searchsorted(src_sorted, src_sorted, side="left")
    rank = np.arange(len(order)) - group_start
    kept = np.unique(order[rank < k] % len(a))
    a, b, s = a[kept], b[kept], s[kept]
    ra, rb = rows.owner.data[a].astype(np.int64), rows.owner.data[b].astype(np.int64)
    other = ra != rb
    a, b, s, ra, rb = a[other], b[other], s[other], ra[other], rb[other]
    if not len(a):
        return []
    fa, fb = face_ids[a], face_ids[b]
    order = np.lexsort((np.maximum(fa, fb), np.minimum(fa, fb), -s))
    key = np.minimum(ra, rb) * np.int64(len(rows.ref_ids) + 1) + np.maximum(ra, rb)
    _, first = np.unique(key[order], return_index=True)
    chosen = order[np.sort(first)][: 2 * limit + 100 if refine else limit]
    found = [(float(s[i]), int(a[i]), int(b[i])) for i in chosen.tolist()]
    if refine:
        found = [_best_of(rows, int(ra[i]), int(rb[i]), pair) for i, pair in zip(chosen.tolist(), found, strict=True)]
        found.sort(key=lambda f: (-f[0], min(face_ids[f[1]], face_ids[f[2]]), max(face_ids[f[1]], face_ids[f[2]])))
    pairs = []
    for score_ab, row_a, row_b in found[:limit]:
        one = (rows.ref_ids[int(rows.owner.data[row_a])], int(face_ids[row_a]))
        two = (rows.ref_ids[int(rows.owner.data[row_b])], int(face_ids[row_b]))
        (ref_a, face_a), (ref_b, face_b) = sorted([one, two])
        pairs.append(Pair(ref_a, face_a, ref_b, face_b, score_ab))
    return pairs


def _best_of(rows: Rows, ref_a: int, ref_b: int, found: tuple[float, int, int]) -> tuple[float, int, int]:
    """The best pair of live faces of two references (score, row, row), compared exactly."""
    one = rows.by_owner.find(np.array([ref_a]))
    two = rows.by_owner.find(np.array([ref_b]))
    one, two = np.sort(one[rows.live.data[one]]), np.sort(two[rows.live.data[two]])
    va, vb = rows.gather(one), rows.gather(two)
    scores = va @ vb.T
    va.fill(0)
    vb.fill(0)
    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
    best = (float(scores[i, j]), int(one[i]), int(two[j]))
    return best if best[0] > found[0] else found
