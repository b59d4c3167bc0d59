"""The float vectors of every gallery face, in fixed-size blocks, with their face ids and references.

Why blocks: a gallery of 10 million faces holds 5.1 GB of float32 vectors. One contiguous array would have
to be copied whole to grow (twice the memory for a moment, and a stale copy of every vector left in freed
memory); blocks of :data:`BLOCK_ROWS` rows never move once full (only the last one grows, by doubling, and
the copy it leaves is zeroed), so appending a face copies little and erasing one zeroes its only copy.
Rows are appended in the order faces arrive and never reordered; a removed face's row is zeroed and marked
dead (a tombstone) until a rebuild compacts the rows.

Lookups by face id and by reference go through :class:`KeyIndex`, a sorted numpy map with a short unsorted
tail, instead of Python dictionaries (a dict of 10 million ints costs about a gigabyte).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["BLOCK_ROWS", "Growable", "KeyIndex", "Rows"]

#: Rows per block of float vectors (128 MiB at 128 dimensions): few enough blocks at 10 million faces for one
#: matrix product each, small enough that the last block's growth copies little.
BLOCK_SHIFT = 18
BLOCK_ROWS = 1 << BLOCK_SHIFT


class Growable:
    """A numpy array of rows that grows by doubling. ``sensitive`` arrays (codes, vectors) zero the old
    buffer after copying it, so that growing leaves no stale copy of biometric data in freed memory."""

    def __init__(self, dtype: type | np.dtype, width: int = 0, sensitive: bool = False, capacity: int = 16) -> None:
        self.width = width
        self.sensitive = sensitive
        shape = (capacity, width) if width else (capacity,)
        self.data = np.zeros(shape, dtype=dtype)
        self.n = 0

    def reserve(self, rows: int) -> None:
        """Room for ``rows`` rows in all."""
        if rows <= len(self.data):
            return
        capacity = max(rows, 2 * len(self.data), 16)
        shape = (capacity, self.width) if self.width else (capacity,)
        grown = np.zeros(shape, dtype=self.data.dtype)
        grown[: self.n] = self.data[: self.n]
        if self.sensitive:
            self.data.fill(0)
        self.data = grown

    def extend(self, values: np.ndarray) -> None:
        self.reserve(self.n + len(values))
        self.data[self.n : self.n + len(values)] = values
        self.n += len(values)

    def view(self) -> np.ndarray:
        """The rows in use (a view: writes go to the array)."""
        return self.data[: self.n]

    def wipe(self) -> None:
        self.data[: self.n].fill(0)  # rows past n were never written


class KeyIndex:
    """Rows by integer key (a face id, or a reference number): a sorted part and an unsorted tail.

    Keys arriving in ascending order (face ids from the database, new references) append to the sorted part
    at no cost; others go to the tail, which is merged (one stable sort) once it outgrows a small fraction.
    A key may map to several rows (a reference's faces; a face id re-added after its removal).
    """

    def __init__(self) -> None:
        self._keys = Growable(np.int64)
        self._rows = Growable(np.int64)
        self._tail_keys = Growable(np.int64)
        self._tail_rows = Growable(np.int64)

    def add(self, keys: np.ndarray, rows: np.ndarray) -> None:
        keys = np.asarray(keys, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64)
        if not len(keys):
            return
        ascending = bool(np.all(keys[1:] >= keys[:-1]))
        last = self._keys.data[self._keys.n - 1] if self._keys.n else np.iinfo(np.int64).min
        if ascending and self._tail_keys.n == 0 and keys[0] >= last:
            self._keys.extend(keys)
            self._rows.extend(rows)
            return
        self._tail_keys.extend(keys)
        self._tail_rows.extend(rows)
        if self._tail_keys.n > max(4096, self._keys.n // 64):
            self._merge()

    def _merge(self) -> None:
        keys = np.concatenate([self._keys.view(), self._tail_keys.view()])
        rows = np.concatenate([self._rows.view(), self._tail_rows.view()])
        order = np.lexsort((rows, keys))
        self._keys = Growable(np.int64, capacity=len(keys))
        self._rows = Growable(np.int64, capacity=len(keys))
        self._keys.extend(keys[order])
        self._rows.extend(rows[order])
        self._tail_keys = Growable(np.int64)
        self._tail_rows = Growable(np.int64)

    def find(self, keys: np.ndarray) -> np.ndarray:
        """Every row of any of ``keys`` (in no particular order)."""
        wanted = np.unique(np.asarray(keys, dtype=np.int64))
        sorted_keys = self._keys.view()
        lo = np.searchsorted(sorted_keys, wanted, side="left")
        hi = np.searchsorted(sorted_keys, wanted, side="right")
        counts = hi - lo
        total = int(counts.sum())
        starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        found = self._rows.view()[np.arange(total, dtype=np.int64) + starts]
        if self._tail_keys.n:
            found = np.concatenate([found, self._tail_rows.view()[np.isin(self._tail_keys.view(), wanted)]])
        return np.asarray(found, dtype=np.int64)


class Rows:
    """Every face row: float vector (in blocks), face id, owning reference, live flag."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.blocks: list[np.ndarray] = []
        self.n = 0
        self.face_ids = Growable(np.int64)
        self.owner = Growable(np.int32)  # index into ref_ids
        self.live = Growable(np.bool_)
        self.dead = Growable(np.int64)  # rows removed since these rows were built
        self.ref_ids: list[str] = []
        self.ref_index: dict[str, int] = {}
        self.ref_faces = Growable(np.int32)  # live faces of each reference
        self.live_refs = 0
        self.max_faces = 0  # most faces any reference has had (an upper bound: removals do not lower it)
        self.by_face = KeyIndex()
        self.by_owner = KeyIndex()

    @property
    def size(self) -> int:
        """Live faces."""
        return self.n - self.dead.n

    # -- changes ----------------------------------------------------------------------------------
    def add(self, refs: Sequence[str], face_ids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Append the faces whose id is not live already (the first of repeated ids); their new rows."""
        face_ids = np.asarray(face_ids, dtype=np.int64).reshape(-1)
        if len(refs) != len(face_ids) or vectors.shape != (len(face_ids), self.dim):
            raise ValueError(f"{len(refs)} references, {len(face_ids)} face ids and {vectors.shape} vectors")
        if not len(face_ids):
            return np.zeros(0, dtype=np.int64)
        _, first = np.unique(face_ids, return_index=True)
        keep = np.zeros(len(face_ids), dtype=bool)
        keep[first] = True
        keep &= ~np.isin(face_ids, self.live_face_ids(face_ids))
        picked = np.flatnonzero(keep)
        if not len(picked):
            return np.zeros(0, dtype=np.int64)
        new_rows = np.arange(self.n, self.n + len(picked), dtype=np.int64)
        owners = self._owners([str(refs[i]) for i in picked.tolist()])
        self._write(self.n, np.asarray(vectors, dtype=np.float32)[picked])
        self.n += len(picked)
        self.face_ids.extend(face_ids[picked])
        self.owner.extend(owners)
        self.live.extend(np.ones(len(picked), dtype=bool))
        counts = self.ref_faces.view()
        self.live_refs += int(np.sum(counts[np.unique(owners)] == 0))
        np.add.at(counts, owners, 1)
        self.max_faces = max(self.max_faces, int(counts[owners].max()))
        self.by_face.add(face_ids[picked], new_rows)
        self.by_owner.add(owners.astype(np.int64), new_rows)
        return new_rows

    def _owners(self, refs: list[str]) -> np.ndarray:
        """The reference number of each of ``refs``, numbering new references as they come."""
        index = self.ref_index
        owners = np.fromiter((index.get(r, -1) for r in refs), dtype=np.int32, count=len(refs))
        for j in np.flatnonzero(owners < 0).tolist():
            number = index.get(refs[j])
            if number is None:
                number = index[refs[j]] = len(self.ref_ids)
                self.ref_ids.append(refs[j])
            owners[j] = number
        self.ref_faces.extend(np.zeros(len(self.ref_ids) - self.ref_faces.n, dtype=np.int32))
        return owners

    def _write(self, start: int, vectors: np.ndarray) -> None:
        done = 0
        while done < len(vectors):
            row = start + done
            b, offset = divmod(row, BLOCK_ROWS)
            self._ensure_block(b, offset + min(len(vectors) - done, BLOCK_ROWS - offset))
            take = min(len(vectors) - done, BLOCK_ROWS - offset)
            self.blocks[b][offset : offset + take] = vectors[done : done + take]
            done += take

    def _ensure_block(self, b: int, rows: int) -> None:
        """Block ``b`` holding at least ``rows`` rows; the last block starts small and grows to BLOCK_ROWS."""
        while len(self.blocks) <= b:
            if self.blocks and len(self.blocks[-1]) < BLOCK_ROWS:
                self._grow_last(BLOCK_ROWS)
            self.blocks.append(np.zeros((0, self.dim), dtype=np.float32))
        if len(self.blocks[b]) < rows:
            self._grow_last(min(BLOCK_ROWS, max(rows, 2 * len(self.blocks[b]), 1024)))

    def seal(self) -> None:
        """Give the last block its full size now, so that it is not reallocated (and its old copy zeroed)
        while a reader outside the lock holds it."""
        if self.blocks and len(self.blocks[-1]) < BLOCK_ROWS:
            self._grow_last(BLOCK_ROWS)

    def _grow_last(self, rows: int) -> None:
        old = self.blocks[-1]
        grown = np.zeros((rows, self.dim), dtype=np.float32)
        grown[: len(old)] = old
        old.fill(0)  # no stale copy of a vector in freed memory
        self.blocks[-1] = grown

    def live_face_ids(self, face_ids: np.ndarray) -> np.ndarray:
        """Those of ``face_ids`` that are live here."""
        rows = self.rows_of(face_ids)
        return np.asarray(self.face_ids.data[rows], dtype=np.int64)

    def rows_of(self, face_ids: np.ndarray) -> np.ndarray:
        """The live rows of these face ids (unknown or removed ids left out), ascending."""
        rows = self.by_face.find(face_ids)
        return np.sort(rows[self.live.data[rows]])

    def remove(self, face_ids: np.ndarray) -> np.ndarray:
        """Remove these faces (unknown ids ignored): zero their vectors at once, mark them dead; their rows."""
        rows = self.rows_of(np.asarray(face_ids, dtype=np.int64).reshape(-1))
        if not len(rows):
            return rows
        for b in np.unique(rows // BLOCK_ROWS).tolist():
            in_block = rows[rows // BLOCK_ROWS == b] - b * BLOCK_ROWS
            self.blocks[b][in_block] = 0.0
        self.live.data[rows] = False
        self.dead.extend(rows)
        owners = self.owner.data[rows]
        counts = self.ref_faces.view()
        np.subtract.at(counts, owners, 1)
        self.live_refs -= int(np.sum(counts[np.unique(owners)] == 0))
        return rows

    # -- reading ----------------------------------------------------------------------------------
    def chunks(self, end: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, vectors) of each block up to row ``end`` (views: no copy)."""
        end = self.n if end is None else end
        for b, block in enumerate(self.blocks):
            start = b * BLOCK_ROWS
            if start >= end:
                break
            yield start, block[: min(len(block), end - start)]

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of these rows, in this order (a copy)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        if not len(rows):
            return out
        which = rows >> BLOCK_SHIFT
        if which[0] == which[-1] and (len(rows) == 1 or np.all(which == which[0])):
            b = int(which[0])
            np.take(self.blocks[b], rows - (b << BLOCK_SHIFT), axis=0, out=out)
            return out
        order = np.argsort(which, kind="stable")
        bounds = np.searchsorted(which[order], np.arange(len(self.blocks) + 1))
        for b in range(len(self.blocks)):
            lo, hi = int(bounds[b]), int(bounds[b + 1])
            if lo < hi:
                at = order[lo:hi]
                out[at] = self.blocks[b][rows[at] - (b << BLOCK_SHIFT)]
        return out

    def scores(self, probes: np.ndarray) -> np.ndarray:
        """Dot products of every row (dead rows included: zero vectors) with each probe: n x P."""
        out = np.empty((self.n, len(probes)), dtype=np.float32)
        single = probes[0] if len(probes) == 1 else None
        for start, block in self.chunks():
            if single is not None:
                np.matmul(block, single, out=out[start : start + len(block), 0])
            else:
                np.matmul(block, probes.T, out=out[start : start + len(block)])
        return out

    def wipe(self) -> None:
        """Zero every vector (before these rows are let go, so that freed memory holds none; rows past the
        last one were never written)."""
        for _, block in self.chunks():
            block.fill(0)
