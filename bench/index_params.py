"""How the approximate index's search parameters were chosen: a sweep on a tuning set of its own.

``bench/search_latency.py`` measures ``nomina.index.Gallery`` as shipped, with real case embeddings (clean and
degraded sample photos) as queries. Its figures would mean little if the parameters had been chosen on those
same queries, so they are chosen here, on data that shares nothing with them: a gallery generated with a
different seed (the same fitted generator, ``bench/synthetic_gallery.py``), and synthetic queries only:

- mated: a new face of a gallery identity (drawn like its gallery faces), degraded by adding noise of a
  uniformly drawn strength, so that its best score with its own reference spreads from about 0.3 (a photo
  an examiner would hardly recognise) to about 0.95 (a clean one);
- non-mated: one face of each of as many new identities (the FPIR 0.01 threshold comes from their exact
  best scores, as in the benchmark).

For each setting (``nprobe`` as a share of the lists, and ``fetch``) it times ``Gallery.search`` one query at
a time and counts, against the exact top 50 (brute force): the faces above the FPIR 0.01 threshold returned,
the mated faces returned, recall@50, and for every mated face missed whether its list was read at all (a
miss of the inverted file) or read but not proposed (a miss of the codes and ``fetch``).

    python bench/index_params.py --size 1000000 --cache /tmp/nomina-bench-cache
    python bench/index_params.py --size 10000000 --settings 5:500,8:500,8:1000,10:1000

Build once per size (about 15 s at 1M, 5 minutes at 10M on 2 cores), then about 20 s per setting at 10M.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_latency as sl  # noqa: E402
import synthetic_gallery as sg  # noqa: E402

BENCH_SEED = 20240601  # the benchmark's seed: its fitted generator is the one reused here
TUNING_SEED = 7  # everything else here: a gallery and queries the benchmark never sees


def tuning_gallery(gen: sg.Generator, size: int, probes: int, seed: int) -> dict[str, Any]:
    """``size`` faces of identities with 1-5 faces each, plus ``probes`` mated queries of random identities."""
    rng = np.random.default_rng([seed, size])
    counts = rng.integers(1, sg.MAX_FACES + 1, size=size)  # more identities than needed; cut below
    counts = counts[: int(np.searchsorted(np.cumsum(counts), size)) + 1]
    counts[-1] -= int(counts.sum()) - size
    counts = counts[counts > 0]
    ids = len(counts)
    chosen = np.sort(rng.choice(ids, size=probes, replace=False))
    vectors = np.empty((size, sg.DIM), dtype=np.float32)
    refs = np.repeat(np.arange(ids, dtype=np.int32), counts)
    mated = np.empty((probes, sg.DIM), dtype=np.float32)
    strength = rng.uniform(0.0, 2.5, size=probes)
    starts = np.concatenate([[0], np.cumsum(counts)])
    step = sg.CHUNK_IDENTITIES
    for lo in range(0, ids, step):
        hi = min(ids, lo + step)
        centres = gen.centres(rng.standard_normal((hi - lo, sg.DIM), dtype=np.float32))
        u = rng.standard_normal(hi - lo, dtype=np.float32)
        owner = np.repeat(np.arange(hi - lo), counts[lo:hi])
        w = rng.standard_normal((len(owner), sg.DIM), dtype=np.float32)
        vectors[starts[lo] : starts[hi]] = gen.faces(centres[owner], u[owner], w)
        mine = chosen[(chosen >= lo) & (chosen < hi)]
        at = np.searchsorted(chosen, mine)
        fresh = gen.faces(centres[mine - lo], u[mine - lo], rng.standard_normal((len(mine), sg.DIM), dtype=np.float32))
        noise = rng.standard_normal((len(mine), sg.DIM), dtype=np.float32) / sg.DIM**0.5
        mated[at] = sg._normalise(fresh + strength[at, None].astype(np.float32) * noise)
    return {"vectors": vectors, "refs": refs, "mated": mated, "mated_refs": chosen}


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query's k best faces by brute force (faiss ``knn``, blocks of 2M faces)."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_r = np.full((len(queries), k), -1, dtype=np.int64)
    for lo in range(0, len(vectors), 1 << 21):
        s, r = faiss.knn(queries, vectors[lo : lo + (1 << 21)], k, metric=faiss.METRIC_INNER_PRODUCT)
        s_all, r_all = np.concatenate([best_s, s], axis=1), np.concatenate([best_r, r + lo], axis=1)
        top = np.argsort(-s_all, axis=1, kind="stable")[:, :k]
        best_s, best_r = np.take_along_axis(s_all, top, 1), np.take_along_axis(r_all, top, 1)
    return best_s, best_r


def sweep_one(
    gallery: Any, queries: np.ndarray, exact: list[list[tuple[int, int, float]]], mated_ref: np.ndarray, thr: float
) -> dict[str, Any]:
    """Time every query once (in a fixed shuffled order) and count what the exact top 50 has and this lacks."""
    layer = gallery.layer
    order = np.random.default_rng(TUNING_SEED).permutation(len(queries))
    for q in order[: sl.WARMUP]:
        gallery.search(queries[q][None, :], top=sl.TOP)
    times: list[int] = []
    relevant = relevant_found = mated = mated_found = unread = 0
    recall = 0.0
    for q in order.tolist():
        hits, ns = sl.timed(lambda q=q: gallery.search(queries[q][None, :], top=sl.TOP))
        times.append(ns)
        got = {h.face_id - 1 for h in hits}
        want = exact[q]
        recall += len({h.reference_id for h in hits} & {str(ref) for ref, _, _ in want}) / len(want)
        above = [row for _, row, s in want if s > thr]
        relevant += len(above)
        relevant_found += sum(row in got for row in above)
        if q < len(mated_ref):
            own = [row for ref, row, _ in want if ref == mated_ref[q]]
            if own:
                mated += 1
                if own[0] in got:
                    mated_found += 1
                else:
                    _, read = layer.index.quantizer.search(queries[q][None, :], layer.params.nprobe)
                    unread += int(layer.lists.data[own[0]]) not in set(read[0].tolist())
    codes_only = [
        sl.timed(lambda q=q: layer.search(queries[q][None, :], max(layer.params.fetch, 8 * sl.TOP)))[1]
        for q in order[:500].tolist()
    ]
    return {
        "layer_search": sl.percentiles(codes_only),
        "nprobe": layer.params.nprobe,
        "fetch": layer.params.fetch,
        "latency": sl.percentiles(times),
        "relevant_faces": relevant,
        "relevant_returned": relevant_found,
        "mated_in_exact_top": mated,
        "mated_returned": mated_found,
        "mated_missed_list_unread": unread,
        "recall_at_50": recall / len(queries),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--probes", type=int, default=1500, help="mated queries (and as many non-mated)")
    parser.add_argument("--settings", default="5:500,8:500,8:1000,10:1000,12:1000", help="lists/nprobe:fetch, ...")
    parser.add_argument("--cache", default=None, help="the benchmark's cache (real embeddings, fitted generator)")
    parser.add_argument("--faces", default=None, help="sample photos (default ../shared/faces)")
    parser.add_argument("--out", default=None, help="write the results as JSON to this file")
    args = parser.parse_args()
    from nomina.index import Gallery

    cache = Path(args.cache or Path("/tmp") / f"nomina-bench-{os.getuid()}")
    faces = Path(args.faces or os.environ.get("NOMINA_TEST_FACES") or sl.REPO.parent / "shared" / "faces")
    real = sg.real_faces(faces, cache, log=sl.log)
    gen, _ = sg.fitted_generator(real, BENCH_SEED, cache)
    t = time.perf_counter()
    data = tuning_gallery(gen, args.size, args.probes, TUNING_SEED)
    nonmated = sg.nonmated_queries(gen, TUNING_SEED + 1, args.probes)
    queries = np.ascontiguousarray(np.vstack([data["mated"], nonmated]), dtype=np.float32)
    sl.log(f"[{args.size:,}] generated in {time.perf_counter() - t:.0f} s; exact top {sl.ORACLE_K} ...")
    t = time.perf_counter()
    scores, rows = exact_top(data["vectors"], queries, sl.ORACLE_K)
    exact = sl.oracle_top(scores, rows, data["refs"])
    thr = float(np.quantile(scores[args.probes :, 0], 1 - sl.FPIR, method="higher"))
    genuine = np.array(
        [next((s for ref, _, s in exact[i] if ref == data["mated_refs"][i]), np.nan) for i in range(args.probes)]
    )
    sl.log(
        f"oracle {time.perf_counter() - t:.0f} s; FPIR 0.01 threshold {thr:.4f}; mated scores "
        f"{np.nanpercentile(genuine, [5, 25, 50, 75, 95]).round(3).tolist()} (5/25/50/75/95%)"
    )
    t = time.perf_counter()
    gallery = Gallery.build(
        [str(r) for r in data["refs"].tolist()], np.arange(1, args.size + 1), data["vectors"], seq=1, mode="approximate"
    )
    gallery.wait()
    build_s = time.perf_counter() - t
    del data["vectors"]
    shipped = gallery.layer.params
    sl.log(f"built in {build_s:.0f} s: {shipped}")
    results = []
    for setting in args.settings.split(","):
        share, fetch = (int(x) for x in setting.split(":"))
        gallery.layer.params = replace(shipped, nprobe=max(16, shipped.nlist // share), fetch=fetch)
        with sl.OtherLoad() as load:
            r = sweep_one(gallery, queries, exact, data["mated_refs"], thr)
        r.update({"lists_per_probe": f"1/{share}", "other_load_cores": load.cores})
        results.append(r)
        sl.log(
            f"  1/{share} of {shipped.nlist} lists, fetch {fetch}: p50 {r['latency']['p50_ms']:.2f} ms, "
            f"p95 {r['latency']['p95_ms']:.2f} ms (codes alone p50 {r['layer_search']['p50_ms']:.2f}); "
            f"relevant {r['relevant_returned']}/{r['relevant_faces']}; "
            f"mated {r['mated_returned']}/{r['mated_in_exact_top']} ({r['mated_missed_list_unread']} of the misses "
            f"in lists not read); recall@50 {r['recall_at_50']:.3f}; other load {load.cores:.2f}"
        )
    if args.out:
        out = {
            "size": args.size,
            "build_s": build_s,
            "threshold": thr,
            "shipped": str(shipped),
            "machine": sl.machine(),
            "results": results,
        }
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
