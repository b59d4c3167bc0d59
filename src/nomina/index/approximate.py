"""The approximate layer: an inverted file (IVF) of 4-bit product-quantised (PQ) codes, for large galleries.

Why IVF-PQ: a search must not read 5 GB of float vectors per probe at 10 million faces. The inverted file
splits the gallery into ``nlist`` lists around k-means centroids, so a search reads only the ``nprobe``
lists nearest the probe; product quantisation stores each face in those lists as a 32-byte code (64
sub-vectors of 2 dimensions, 16 centroids each: 4 bits), 16 times smaller than its float vector, and faiss
scores 4-bit codes with SIMD table look-ups ("fast scan"), several times faster than 8-bit codes. The codes
only PROPOSE candidates: the gallery re-ranks them with the exact float vectors, so every score shown is
exact; what the layer can do wrong is miss a face, and the tests and the benchmark measure how often.

Erasure: faiss's ``remove_ids`` shifts a list's entries down and leaves the last ones' bytes in the list's
spare capacity. Instead, a removed face's code is overwritten in place (the packed 4-bit code at its
position in its list, found through the row-aligned ``lists``/``offsets`` arrays, is packed as zeros and its
id set to -1) and its row of the row-aligned ``codes`` array zeroed. A list that receives new faces is
rewritten whole: its packed bytes are zeroed first, then it is refilled from ``codes`` without the dead
entries, so a buffer that faiss reallocates while growing never keeps a stale code in freed memory.

What the trained index holds: the coarse centroids (each the average of the faces in its list at training)
and the PQ codebooks (averages of sub-vectors of many faces). They hold no single face, but every face
present at training contributed to them; they are retrained at each rebuild (see :mod:`.gallery`).

Parameters (:class:`Params`), chosen on synthetic galleries only, never on the sample photos nor on the
queries ``bench/search_latency.py`` reports: ``bench/index_params.py`` sweeps them on a gallery and queries
of its own (the benchmark's fitted generator with another seed; mated queries are new faces of gallery
identities degraded by noise, so that their scores with their own reference spread from about 0.4 to 0.95).
On that tuning set, top 50 references, 2 cores, idle (2026-12-01):

| faces | lists read | p50 / p95 ms | faces above FPIR 0.01 returned | mated returned | recall@50 |
|---:|---|---:|---:|---:|---:|
| 1M | 1/5 of 1,984 | 1.98 / 2.46 | 826/828 | 1325/1373 | 0.814 |
| 1M | 1/8 | 1.70 / 2.03 | 822/828 | 1277/1373 | 0.736 |
| 10M | 1/5 of 6,336 | 9.22 / 10.66 | 726/727 | 1248/1285 | 0.810 |
| 10M | 1/6 | 8.01 / 9.05 | 726/727 | 1239/1285 | 0.794 |
| 10M | 1/8 | 6.58 / 8.64 | 724/727 | 1219/1285 | 0.764 |
| 10M | 1/10 | 5.85 / 6.78 | 723/727 | 1196/1285 | 0.736 |

(those latencies with faiss's default search implementation, before ``_SEARCH_IMPLEM``; see below).

- ``nlist`` about 2 x sqrt(faces): 1,984 lists at 1M faces, 6,336 at 10M. With ``nprobe`` a fixed share of
  the lists, the codes read per search do not depend on ``nlist``; fewer lists make k-means and assigning
  faces to lists (an exact product with every centroid, the bulk of a build) cheaper. 4 x sqrt(faces)
  gave the same recall at a slower build (53 s vs 37 s at 1M) and search.
- ``nprobe`` = nlist / 5. Face embeddings are a hard case for an inverted file: a mated face scoring 0.5
  is far away in 128 dimensions, and k-means cells do not follow identities. Nearly every mated face
  missed (47 of 48 at 1M, 1/5) sat in a list that was not read; none was lost by the codes or ``fetch``.
  Fewer lists are faster but lose weak mated faces first, and those are the hard cases an examiner most
  needs the list for, so recall was preferred. Storing each face in its two nearest lists (spilling, and
  SOAR's choice of the second list) was estimated once on the same set, from the lists alone (a
  computation not kept): 20-30% fewer mated faces missed for the same codes read, not worth twice the
  codes' memory and a more complex erasure.
- ``fetch`` 500 faces proposed per probe (8 x top when more): 1,000 raised recall@50 (0.814 -> 0.843 at
  1M) but not the faces above the threshold nor the mated ones, at 0.2 ms more per search.
- Search implementation ``_SEARCH_IMPLEM`` (faiss ``implem`` 15): spreads one probe's lists over the
  cores. At 10M faces, 300 probes, 2 threads: 4.8-5.2 ms against 7.5 ms for the default (which uses one
  core per probe); the same on one core. It is sensitive to other load on the cores (one repeat measured
  6.1 ms, another implementation 15 ms while another job ran).
- 64 sub-quantisers x 4 bits (32 bytes per face); no residual encoding (faiss's fast scan with inner
  product encodes the vectors themselves).
- ``duplicate_lists`` 8: each face is looked for in the 8 lists nearest its own (51 s at 1M with 16).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from .rows import Growable

__all__ = ["CODE_BYTES", "MIN_FACES", "Layer", "Params"]

SUB_QUANTIZERS = 64  # 2 dimensions each at 128: 4-bit codes, 32 bytes per face
CODE_BYTES = SUB_QUANTIZERS // 2
#: Fewest live faces the layer is built for: k-means and the codebooks need enough samples, and exact search
#: of a few thousand faces takes well under a millisecond anyway.
MIN_FACES = 4096
_TRAIN_PER_LIST = 32  # k-means sample: this many faces per list (faiss samples the same by default x 8)
_LISTS_PER_SQRT = 2.0  # nlist = this x sqrt(faces)
#: faiss's fast-scan search that spreads ONE probe's lists over the cores (with a reservoir of results);
#: the default implementation uses one core per probe, and a search here is one probe at a time.
_SEARCH_IMPLEM = 15
# Scores within this of each other are a tie (float32 products summed in another order differ by ~1e-6).
_TIE = 1e-4


@dataclass(frozen=True)
class Params:
    """How the layer is built and searched.

    ``nlist`` about 4 x sqrt(faces) (a multiple of 64, at most faces / 32 so that k-means has 32 samples per
    list); ``nprobe`` the lists read per probe; ``fetch`` the faces proposed per probe before the exact
    re-rank (at least; more when ``top`` asks for more); ``duplicate_lists`` the lists (nearest a face's
    own) in which each face's nearest faces are looked for by :meth:`nomina.index.Gallery.duplicates`. A
    gallery's ``layer.params`` may be replaced (``dataclasses.replace``) to trade recall for time.
    """

    nlist: int
    nprobe: int
    fetch: int
    duplicate_lists: int

    @classmethod
    def for_size(cls, faces: int) -> Params:
        nlist = int(min(65536, max(64, round(_LISTS_PER_SQRT * math.sqrt(faces) / 64) * 64)))
        nlist = max(16, min(nlist, faces // _TRAIN_PER_LIST // 16 * 16))
        return cls(nlist=nlist, nprobe=max(16, nlist // 5), fetch=500, duplicate_lists=8)


class Layer:
    """The IVF-PQ codes of the gallery's live rows, with row-aligned list numbers, offsets and codes."""

    def __init__(self, index: faiss.IndexIVFPQFastScan, params: Params, trained: np.ndarray, trained_size: int):
        index.implem = _SEARCH_IMPLEM
        self.index = index
        self.params = params
        self.trained = trained  # the serialised index as trained, before any face was added
        self.trained_size = trained_size  # live faces when trained
        invlists = index.invlists
        if invlists is None:
            raise ValueError("an IVF index without inverted lists")
        self.invlists = faiss.downcast_InvertedLists(invlists)
        self.packer = getattr(self.invlists, "packer")  # noqa: B009 (not in faiss's type stubs)
        self.code_size = int(index.code_size)
        self.lists = Growable(np.int32)  # list of each row, -1: not in the layer (dead, or never added)
        self.offsets = Growable(np.int32)  # position of each row in its list
        self.codes = Growable(np.uint8, width=self.code_size, sensitive=True)
        self.entries = 0  # live entries
        self.dead_entries = 0  # entries overwritten with -1 and zeros, not yet dropped from their lists
        self._centroids: np.ndarray | None = None
        self._staged: list[np.ndarray] = []

    @classmethod
    def train(cls, sample: np.ndarray, faces: int, params: Params | None = None) -> Layer:
        """A layer trained on ``sample`` (float vectors of the gallery) for ``faces`` faces; no face added."""
        params = params or Params.for_size(faces)
        dim = sample.shape[1]
        index = faiss.IndexIVFPQFastScan(
            faiss.IndexFlatIP(dim), dim, params.nlist, SUB_QUANTIZERS, 4, faiss.METRIC_INNER_PRODUCT
        )
        index.cp.niter = 10
        index.cp.min_points_per_centroid = 1  # faiss otherwise prints a warning to stderr for small samples
        index.cp.max_points_per_centroid = _TRAIN_PER_LIST
        index.pq.cp.min_points_per_centroid = 1
        index.pq.cp.max_points_per_centroid = 128  # 2-d sub-vectors, 16 centroids: 2048 samples are plenty
        index.pq.cp.niter = 15
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        return cls(index, params, faiss.serialize_index(index), faces)

    @classmethod
    def from_trained(cls, trained: np.ndarray, params: Params, trained_size: int) -> Layer:
        """A layer from a serialised trained index (as :attr:`trained` holds); raises on a bad one."""
        index = faiss.deserialize_index(np.ascontiguousarray(trained, dtype=np.uint8))  # already of its class
        if not isinstance(index, faiss.IndexIVFPQFastScan) or index.nlist != params.nlist or index.ntotal:
            raise ValueError("not a trained, empty IVF-PQ fast-scan index of the expected shape")
        return cls(index, params, trained, trained_size)

    @classmethod
    def from_saved(cls, trained: np.ndarray, info: dict[str, Any]) -> Layer:
        """A layer from a snapshot: its serialised trained index and the meta the snapshot keeps of it
        (parameters, code size, faces when trained); raises ValueError on one this Nomina cannot use."""
        params = Params(*(int(info[key]) for key in ("nlist", "nprobe", "fetch", "duplicate_lists")))
        if int(info["code_size"]) != CODE_BYTES:
            raise ValueError(f"codes of {info['code_size']} bytes, not {CODE_BYTES}")
        return cls.from_trained(trained, params, int(info["trained_size"]))

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def centroids(self) -> np.ndarray:
        if self._centroids is None:
            self._centroids = self.index.quantizer.reconstruct_n(0, self.params.nlist)
        return self._centroids

    # -- contents ---------------------------------------------------------------------------------
    def encode(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(list number, code) of each vector; the codes do not depend on the list (no residuals)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        _, assigned = self.index.quantizer.search(vectors, 1)  # exact (an HNSW graph measured slower here)
        return assigned[:, 0].astype(np.int32), self.index.pq.compute_codes(vectors)

    def misplaced(self, vectors: np.ndarray, lists: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Which rows' stored list or code is not what :meth:`encode` gives their vector: a face moved to a
        list no probe near it reads, or given a code that scores it low, is hidden from the searches that
        should find it. Ties within float rounding count as agreeing (the product's summation order varies
        with the batch), so the check compares scores, not list numbers."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        lists = np.asarray(lists, dtype=np.int64)
        codes = np.asarray(codes, dtype=np.uint8)
        bad = np.zeros(len(vectors), dtype=bool)
        for start in range(0, len(vectors), 65536):  # faiss's own encoding first: only rows that differ are looked at
            part = slice(start, start + 65536)
            fresh_lists, fresh_codes = self.encode(vectors[part])
            bad[part] = (fresh_lists != lists[part]) | np.any(fresh_codes != codes[part], axis=1)
        suspects = np.flatnonzero(bad)
        for start in range(0, len(suspects), 4096):  # ties within float rounding: compare scores
            rows = suspects[start : start + 4096]
            bad[rows] = self._not_nearest(vectors[rows], lists[rows], codes[rows])
        return bad

    def _not_nearest(self, vectors: np.ndarray, lists: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Whether each row's list scores below its vector's best list, or a sub-code of its code is farther
        than the nearest codeword, by more than float rounding."""
        wrong = (lists < 0) | (lists >= self.params.nlist)
        scores = vectors @ self.centroids().T
        kept = np.take_along_axis(scores, np.clip(lists, 0, self.params.nlist - 1)[:, None], axis=1)[:, 0]
        wrong |= kept < scores.max(axis=1) - _TIE
        pq = self.index.pq
        books = faiss.vector_to_array(pq.centroids).reshape(pq.M, pq.ksub, pq.dsub)
        chosen = np.empty((len(codes), pq.M), dtype=np.int64)  # 4-bit codes, the low half of a byte first
        chosen[:, 0::2], chosen[:, 1::2] = codes & 15, codes >> 4
        distances = ((vectors.reshape(-1, pq.M, 1, pq.dsub) - books[None]) ** 2).sum(axis=3)  # rows x M x codewords
        given = np.take_along_axis(distances, chosen[:, :, None], axis=2)[:, :, 0]
        far: np.ndarray = np.any(given > distances.min(axis=2) + _TIE, axis=1)
        return np.asarray(wrong | far, dtype=bool)

    def add(self, rows: np.ndarray, vectors: np.ndarray, commit: bool = True) -> None:
        """Add rows (each past every row added before) with their float vectors. ``commit=False`` only
        stages them (codes computed and stored by row) for one :meth:`commit` of many batches, so that
        building a layer rewrites each list once instead of once per batch."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return
        lists, codes = self.encode(vectors)
        self.add_codes(rows, lists, codes, commit)
        codes.fill(0)

    def add_codes(self, rows: np.ndarray, lists: np.ndarray, codes: np.ndarray, commit: bool = True) -> None:
        """Add rows with their list numbers and codes (as :meth:`encode` gives them, or a snapshot holds)."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return
        end = int(rows.max()) + 1
        for grown in (self.lists, self.offsets):
            grown.extend(np.full(max(0, end - grown.n), -1, dtype=np.int32))
        self.codes.extend(np.zeros((max(0, end - self.codes.n), self.code_size), dtype=np.uint8))
        self.lists.data[rows] = lists
        self.codes.data[rows] = codes
        self._staged.append(rows)
        if commit:
            self.commit()

    def commit(self) -> None:
        """Put the staged rows into their inverted lists (each list touched rewritten once)."""
        if not self._staged:
            return
        rows = np.concatenate(self._staged)
        self._staged = []
        lists = self.lists.data[rows]
        order = np.argsort(lists, kind="stable")
        bounds = np.flatnonzero(np.diff(lists[order])) + 1
        for group in np.split(rows[order], bounds):
            self._rewrite(int(self.lists.data[group[0]]), group)
        self.entries += len(rows)
        self.index.ntotal = self.entries + self.dead_entries

    def _rewrite(self, list_no: int, new_rows: np.ndarray) -> None:
        """Refill list ``list_no`` with its live entries and ``new_rows``, zeroing its old bytes first."""
        inv = self.invlists
        old = inv.list_size(list_no)
        kept = np.zeros(0, dtype=np.int64)
        if old:
            ids = faiss.rev_swig_ptr(inv.get_ids(list_no), old)
            kept = ids[ids >= 0].copy()
            faiss.rev_swig_ptr(inv.get_codes(list_no), self._packed_bytes(old))[:] = 0
        inv.resize(list_no, 0)
        self.dead_entries -= old - len(kept)
        members = np.ascontiguousarray(np.concatenate([kept, new_rows]), dtype=np.int64)
        bbs = int(self.packer.nvec)
        blocks = -(-len(members) // bbs)
        flat = np.zeros((blocks * bbs, self.code_size), dtype=np.uint8)
        flat[: len(members)] = self.codes.data[members]
        packed = np.zeros(blocks * int(self.packer.block_size), dtype=np.uint8)
        for b in range(blocks):
            self.packer.pack_all(faiss.swig_ptr(flat[b * bbs :]), faiss.swig_ptr(packed[b * self.packer.block_size :]))
        inv.add_entries(list_no, len(members), faiss.swig_ptr(members), faiss.swig_ptr(packed))
        flat.fill(0)
        packed.fill(0)
        self.offsets.data[members] = np.arange(len(members), dtype=np.int32)

    def _packed_bytes(self, entries: int) -> int:
        return -(-entries // int(self.packer.nvec)) * int(self.packer.block_size)

    def remove(self, rows: np.ndarray) -> None:
        """Overwrite these rows' codes in place (in their lists and in :attr:`codes`); rows not here ignored."""
        rows = np.asarray(rows, dtype=np.int64)
        rows = rows[rows < self.lists.n]
        rows = rows[self.lists.data[rows] >= 0]
        if not len(rows):
            return
        zero = np.zeros(self.code_size, dtype=np.uint8)
        inv = self.invlists
        for row in rows.tolist():
            list_no = int(self.lists.data[row])
            offset = int(self.offsets.data[row])
            self.packer.pack_1_c(faiss.swig_ptr(zero), offset, inv.get_codes(list_no))
            faiss.rev_swig_ptr(inv.get_ids(list_no), inv.list_size(list_no))[offset] = -1
        self.codes.data[rows] = 0
        self.lists.data[rows] = -1
        self.entries -= len(rows)
        self.dead_entries += len(rows)

    def list_entries(self, list_no: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, codes) of every entry of a list, read back from faiss (unpacked): for checks."""
        inv = self.invlists
        n = inv.list_size(list_no)
        ids = faiss.rev_swig_ptr(inv.get_ids(list_no), n).copy() if n else np.zeros(0, dtype=np.int64)
        codes = np.zeros((n, self.code_size), dtype=np.uint8)
        for i in range(n):
            self.packer.unpack_1_c(inv.get_codes(list_no), i, faiss.swig_ptr(codes[i]))
        return ids, codes

    # -- search -----------------------------------------------------------------------------------
    def search(self, probes: np.ndarray, k: int, nprobe: int | None = None) -> np.ndarray:
        """Row numbers of the ``k`` faces with the best code scores for each probe (P x k; -1: none)."""
        params = faiss.SearchParametersIVF()
        params.nprobe = min(self.params.nlist, nprobe or self.params.nprobe)
        _, found = self.index.search(np.ascontiguousarray(probes, dtype=np.float32), k, params=params)
        return np.asarray(found)

    def search_lists(
        self, queries: np.ndarray, k: int, lists: np.ndarray, list_scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(code scores, rows) of the ``k`` best faces for each query among the lists given for it (Q x L
        list numbers and their centroid scores), without the coarse quantiser."""
        self.index.nprobe = lists.shape[1]  # faiss's wrapper checks it; searches pass their own nprobe
        call: Callable[..., tuple[np.ndarray, np.ndarray]] = getattr(self.index, "search_preassigned")  # noqa: B009
        return call(
            np.ascontiguousarray(queries, dtype=np.float32),
            k,
            np.ascontiguousarray(lists, dtype=np.int64),
            np.ascontiguousarray(list_scores, dtype=np.float32),
        )

    def wipe(self) -> None:
        """Zero every code, in the lists and in :attr:`codes` (before the layer is let go)."""
        inv = self.invlists
        for list_no in range(self.params.nlist):
            n = inv.list_size(list_no)
            if n:
                faiss.rev_swig_ptr(inv.get_codes(list_no), self._packed_bytes(n))[:] = 0
            inv.resize(list_no, 0)
        self.codes.wipe()
        self.entries = self.dead_entries = 0
