"""Search latency, recall and memory of Nomina's gallery index (``nomina.index.Gallery``) at 100k-10M faces.

What it measures, for each gallery size in ``--sizes`` (default 100k, 1M and 10M faces), one query at a
time, top 50, on this machine (BLAS and faiss with their default thread counts):

* the approximate index (``mode="approximate"``): build time (``Gallery.build`` until no background work
  is left), process memory, and the latency of ``Gallery.search(probe[None, :], top=50)``, p50 and p95 in
  ms over every query (after a few warm-up queries);
* the exact index (``mode="exact"``) at the sizes up to ``--exact-max`` (default 1M): the same latencies
  over the first ``--exact-queries`` queries, and a baseline measured in the same run, interleaved with
  them: the time to read the float32 vector matrix once on one core (the faster median of
  ``np.add.reduce`` and ``np.maximum.reduce``). Target: p50 within 1.2x of it at 1M;
* recall against exact search, computed from an independent oracle: each query's best 250 faces by
  brute-force inner product over the whole gallery (faiss ``knn`` over blocks of the float vectors; 250 =
  50 references x at most 5 faces each, so the exact top 50 references and their best faces follow). The
  exact ``Gallery`` is checked against the oracle too. Figures:
  - the FPIR 0.01 threshold: the score above which 1% of non-mated searches (queries of people in no
    gallery) return any candidate, i.e. the 99th percentile of their exact best scores; measured at each
    size on the non-mated queries (real and synthetic pooled; each kind's own threshold is reported too);
  - of the faces the exact top 50 holds above that threshold (the candidates that can matter), the share
    the index returns (target >= 99.9%);
  - of the mated faces (a query's own person's reference face) that the exact top 50 returns, how many the
    index returns (target: all);
  - plain recall@50: the share of the exact top 50 references returned, averaged over queries; and the
    largest difference between a returned score and the exact one (scores must be exact);
* ``Gallery.duplicates`` at the sizes in ``--duplicates-at`` (default 1M): its time, the pairs it finds
  above a score (default: that size's FPIR 0.01 threshold), and how many of the gallery's planted
  duplicates (one synthetic person enrolled as two references) it finds;
* peak resident memory of the measuring process (it holds the gallery and runs the searches; generating
  the gallery and the oracle run in the parent process), and the CPU time other processes used meanwhile.

Data (see ``bench/synthetic_gallery.py``): a synthetic gallery whose genuine and impostor score
distributions are fitted to SFace's on the clean sample photos, with the real reference photos' embeddings
(london neutral, lisa1-2, zoom 15/30 cm) inserted as their own references. Queries: real case embeddings,
clean and in the 15 degraded variants of ``bench/degrade.py``: mated ones (london smiling, lisa3-4, zoom
45/60 cm) and non-mated ones (canada, in no gallery), plus ``--nonmated`` synthetic faces of new identities.
Nothing here chooses an index parameter: ``Gallery`` is measured as shipped.

Run from the repository root. The defaults took 12 minutes on 2 cores with the cache filled (about
half of it building the 10M-face index) and take about 30 more with an empty cache (8 minutes of face
analysis for the real embeddings, 1.5 minutes to generate 10M faces, 5-10 minutes for the oracle at
10M). The measuring process peaks at about 12 GB at 10M faces (its own float array plus the gallery's
copy while building; 7 GB once built); the cache takes 5.4 GB of disk:

    python bench/search_latency.py --out bench/results/search_latency.json
    python bench/search_latency.py --sizes 100000,1000000 --cache /tmp/nomina-bench   # a quicker check

The sample photos are read from ``../shared/faces`` or the folder named by NOMINA_TEST_FACES (``--faces``
overrides both). Generated galleries, real embeddings, the fitted generator and the oracle's results are
cached under ``--cache`` (private files), so a rerun skips them.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic_gallery as sg  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOP = 50
ORACLE_K = TOP * sg.MAX_FACES
FPIR = 0.01
TARGETS = {
    "exact_ratio_1m": 1.2,
    "p50_ms": {1_000_000: 3.0, 10_000_000: 10.0},
    "p95_ms": {10_000_000: 25.0},
    "relevant_recall": 0.999,
    "peak_rss_bytes": 16 * 2**30,
    "build_s": 30 * 60,
}
WARMUP = 10
BASELINE_EVERY = 5  # one baseline read per this many exact queries, interleaved with them


# -- machine state ----------------------------------------------------------------------------------
def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rss_bytes() -> int:
    """Current resident set size."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def busy_and_own() -> tuple[float | None, float]:
    """Machine-wide busy CPU seconds (/proc/stat; None elsewhere) and this process's CPU seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    try:
        with open("/proc/stat") as fh:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fh.readline().split()[1:9])
        busy: float | None = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except OSError:
        busy = None
    return busy, usage.ru_utime + usage.ru_stime


class OtherLoad:
    """CPU time other processes used while a measurement ran, in cores (Linux; None elsewhere).

    A value well above zero means the measurement shared the CPUs and its latencies are pessimistic.
    """

    def __enter__(self) -> OtherLoad:
        self.cores: float | None = None
        self._t, (self._busy, self._own) = time.perf_counter(), busy_and_own()
        return self

    def __exit__(self, *exc: object) -> None:
        wall, (busy, own) = time.perf_counter() - self._t, busy_and_own()
        if busy is not None and self._busy is not None:
            self.cores = max(0.0, (busy - self._busy - (own - self._own)) / wall)


def machine() -> dict[str, Any]:
    import faiss

    import nomina

    names = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "src"], capture_output=True, text=True)
    return {
        "platform": platform.platform(),
        "cpu": names[0].split(":", 1)[1].strip() if names else platform.processor(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "nomina": nomina.__version__,
        "commit": git.stdout.strip() if git.returncode == 0 else None,
        "src_changed_since_commit": bool(dirty.stdout.strip()),
    }


def wait_quiet(seconds: float, load: float = 0.5) -> None:
    """Wait (at most ``seconds``) until the 1-minute load average is under ``load``: other work on the
    machine makes every latency pessimistic."""
    deadline = time.monotonic() + seconds
    while os.getloadavg()[0] >= load and time.monotonic() < deadline:
        time.sleep(10)


def machine_state() -> dict[str, Any]:
    return {"load_average": list(os.getloadavg()), "mem_available_bytes": mem_available()}


# -- measuring --------------------------------------------------------------------------------------
def percentiles(samples_ns: list[int]) -> dict[str, float]:
    a = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p95_ms": float(np.percentile(a, 95)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
        "mean_ms": float(a.mean()),
        "queries": len(a),
    }


def timed(fn: Callable[[], Any]) -> tuple[Any, int]:
    t = time.perf_counter_ns()
    out = fn()
    return out, time.perf_counter_ns() - t


def oracle_top(scores: np.ndarray, rows: np.ndarray, refs: np.ndarray) -> list[list[tuple[int, int, float]]]:
    """Per query, the exact top-50 references as (reference number, best face row, score), from its best faces."""
    out = []
    for s, r in zip(scores, rows, strict=True):
        seen: set[int] = set()
        top: list[tuple[int, int, float]] = []
        for score, row in zip(s.tolist(), r.tolist(), strict=True):
            ref = int(refs[row])
            if ref not in seen:
                seen.add(ref)
                top.append((ref, row, score))
                if len(top) == TOP:
                    break
        out.append(top)
    return out


def thresholds(top1: np.ndarray, kinds: np.ndarray) -> dict[str, Any]:
    """FPIR 0.01 thresholds from the exact best scores of the non-mated queries (pooled, and per kind)."""

    def at(values: np.ndarray) -> float:
        return float(np.quantile(values, 1 - FPIR, method="higher"))  # at most 1% of the searches score above

    real, syn = top1[kinds == "nonmated_real"], top1[kinds == "nonmated_synthetic"]
    pooled = np.concatenate([real, syn])
    return {
        "fpir": FPIR,
        "threshold": at(pooled),
        "nonmated_searches": len(pooled),
        "real_nonmated": {"threshold": at(real), "searches": len(real)},
        "synthetic_nonmated": {"threshold": at(syn), "searches": len(syn)},
    }


def score_results(
    hits: list[list[Any]],
    qidx: np.ndarray,
    exact: list[list[tuple[int, int, float]]],
    job: dict[str, Any],
    threshold: float,
) -> dict[str, Any]:
    """Recall of one index's results (hits[i] for query qidx[i]) against the oracle's exact top 50."""
    kinds = np.asarray(job["kinds"])
    mated_rows: dict[str, set[int]] = {name: set(rows) for name, rows in job["real_rows"].items()}
    relevant = relevant_found = mated = mated_found = mated_ref_found = 0
    mated_missed: list[dict[str, Any]] = []
    recall_sum = 0.0
    score_err = 0.0
    rank1_exact = rank1_index = fp_searches = 0
    nonmated = 0
    per_kind: dict[str, list[int]] = {}
    for q, result in zip(qidx.tolist(), hits, strict=True):
        got_rows = {h.face_id - 1 for h in result}
        got_refs = {h.reference_id for h in result}
        want = exact[q]
        exact_by_row = {row: s for _, row, s in want}
        for h in result:
            if h.face_id - 1 in exact_by_row:
                score_err = max(score_err, abs(h.score - exact_by_row[h.face_id - 1]))
        want_refs = {
            job["ref_names"][str(ref)] if str(ref) in job["ref_names"] else f"syn-{ref:08d}" for ref, _, _ in want
        }
        recall_sum += len(got_refs & want_refs) / len(want_refs)
        above = [row for _, row, s in want if s > threshold]
        relevant += len(above)
        found = sum(row in got_rows for row in above)
        relevant_found += found
        kind = str(kinds[q])
        k = per_kind.setdefault(kind, [0, 0])
        k[0] += len(above)
        k[1] += found
        if kind.startswith("nonmated"):
            nonmated += 1
            fp_searches += bool(result) and result[0].score > threshold
        identity = job["identities"][q]
        if identity in mated_rows:
            own = mated_rows[identity]
            exact_mated = [(rank, row, score) for rank, (_, row, score) in enumerate(want) if row in own]
            if exact_mated:
                mated += 1
                rank, row, score = exact_mated[0]
                rank1_exact += rank == 0
                if row in got_rows:
                    mated_found += 1
                    rank1_index += bool(result) and result[0].face_id - 1 == row
                else:
                    mated_missed.append(
                        {"query": q, "variant": job["variants"][q], "exact_rank": rank + 1, "score": score}
                    )
                mated_ref_found += any(h.face_id - 1 in own for h in result)
    return {
        "queries": len(qidx),
        "relevant_faces": relevant,
        "relevant_returned": relevant_found,
        "relevant_recall": relevant_found / relevant if relevant else None,
        "relevant_by_kind": {k: {"faces": v[0], "returned": v[1]} for k, v in sorted(per_kind.items())},
        "mated_in_exact_top": mated,
        "mated_returned": mated_found,
        "mated_reference_returned": mated_ref_found,
        "mated_missed": mated_missed,
        "mated_rank1_exact": rank1_exact,
        "mated_rank1_index": rank1_index,
        "recall_at_50": recall_sum / len(qidx),
        "max_score_error": score_err,
        "nonmated_searches": nonmated,
        "nonmated_above_threshold": fp_searches,
    }


def measure_index(
    gallery: Any,
    queries: np.ndarray,
    order: np.ndarray,
    baseline: np.ndarray | None,
) -> tuple[list[list[Any]], dict[str, Any]]:
    """Time gallery.search on each query of ``order``, one at a time; interleave the baseline reads."""
    for i in range(WARMUP):
        gallery.search(queries[order[i % len(order)]][None, :], top=TOP)
    reads: dict[str, Callable[[], object]] = {}
    if baseline is not None:
        flat = baseline.reshape(-1)
        reads = {"add.reduce": lambda: np.add.reduce(flat), "maximum.reduce": lambda: np.maximum.reduce(flat)}
        for read in reads.values():
            read()
    search_ns: list[int] = []
    read_ns: dict[str, list[int]] = {name: [] for name in reads}
    results: list[list[Any]] = []
    with OtherLoad() as load:
        for i, q in enumerate(order.tolist()):
            hits, ns = timed(lambda q=q: gallery.search(queries[q][None, :], top=TOP))
            search_ns.append(ns)
            results.append(hits)
            if reads and i % BASELINE_EVERY == 0:
                for name, read in reads.items():
                    read_ns[name].append(timed(read)[1])
    out: dict[str, Any] = {"latency": percentiles(search_ns), "other_load_cores": load.cores}
    if reads:
        medians = {name: float(np.median(v)) / 1e6 for name, v in read_ns.items()}
        out["baseline_reads_ms"] = medians
        out["baseline_read_ms"] = min(medians.values())
        out["ratio"] = out["latency"]["p50_ms"] / out["baseline_read_ms"]
    return results, out


def build_index(mode: str, refs: list[str], vectors: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """Gallery.build in ``mode``, timed until no background work is left; memory before and after."""
    from nomina.index import Gallery

    gc.collect()
    rss0 = rss_bytes()
    face_ids = np.arange(1, len(vectors) + 1, dtype=np.int64)
    with OtherLoad() as load:
        t = time.perf_counter()
        gallery = Gallery.build(refs, face_ids, vectors, seq=1, mode=mode)
        gallery.wait()
        build_s = time.perf_counter() - t
    gc.collect()
    return gallery, {
        "mode": mode,
        "kind": gallery.kind,
        "build_s": build_s,
        "build_other_load_cores": load.cores,
        "rss_before_build_bytes": rss0,
        "rss_after_build_bytes": rss_bytes(),
        "faces": gallery.size,
        "references": gallery.references,
    }


def measure_duplicates(
    gallery: Any, vectors: np.ndarray, refs_num: np.ndarray, job: dict[str, Any], min_score: float
) -> dict[str, Any]:
    """Gallery.duplicates over the whole gallery: time, pairs, and the planted duplicates it finds."""
    limit = job["duplicates_limit"]
    with OtherLoad() as load:
        pairs, ns = timed(lambda: gallery.duplicates(min_score=min_score, limit=limit))
    found = {frozenset((p.reference_a, p.reference_b)) for p in pairs}
    names = job["ref_names"]

    def name(k: int) -> str:
        return names.get(str(k), f"syn-{k:08d}")

    planted = [tuple(p) for p in job["duplicates"]]
    order = np.argsort(refs_num, kind="stable")
    starts = np.searchsorted(refs_num[order], np.arange(int(refs_num.max()) + 2))
    above = found_planted = 0
    for a, b in planted:
        va = vectors[order[starts[a] : starts[a + 1]]]
        vb = vectors[order[starts[b] : starts[b + 1]]]
        best = float((va @ vb.T).max())
        if best >= min_score:
            above += 1
            found_planted += frozenset((name(a), name(b))) in found
    scores = [p.score for p in pairs]
    return {
        "seconds": ns / 1e9,
        "min_score": min_score,
        "limit": limit,
        "k": 10,
        "pairs": len(pairs),
        "lowest_score": min(scores) if scores else None,
        "highest_score": max(scores) if scores else None,
        "planted": len(planted),
        "planted_above_min_score": above,
        "planted_found": found_planted,
        "other_load_cores": load.cores,
    }


def worker(args: argparse.Namespace) -> None:
    """Measure one gallery size in this process (its peak memory is the figure reported)."""
    job = json.loads(Path(args.job).read_text())
    data = np.load(job["queries_file"])
    queries, oracle_s, oracle_r = data["queries"], data["oracle_scores"], data["oracle_rows"]
    gallery_meta = job["gallery"]
    g = sg.SyntheticGallery(
        folder=Path(gallery_meta["folder"]),
        size=gallery_meta["size"],
        references=gallery_meta["references"],
        real_names=gallery_meta["real_names"],
        real_rows=gallery_meta["real_rows"],
        duplicates=np.asarray(gallery_meta["duplicates"], dtype=np.int64).reshape(-1, 2),
        meta=gallery_meta,
    )
    n = g.size
    out: dict[str, Any] = {"faces": n, "rss_start_bytes": rss_bytes(), "state_before": machine_state()}
    refs_num = g.refs()
    counts = np.bincount(refs_num)
    if counts.max() > sg.MAX_FACES:
        raise SystemExit(f"a reference has {counts.max()} faces: the oracle's top {ORACLE_K} would not suffice")
    refs = g.ref_names()
    job["ref_names"] = {str(k): v for k, v in enumerate(g.real_names)}
    exact = oracle_top(oracle_s, oracle_r, refs_num)
    kinds = np.asarray(job["kinds"])
    thr = thresholds(oracle_s[:, 0], kinds)
    out["thresholds"] = thr
    out["references"] = g.references
    t = time.perf_counter()
    vectors: np.ndarray | None = g.vectors()
    out["read_vectors_s"] = time.perf_counter() - t
    order = np.random.default_rng(job["seed"]).permutation(len(queries))
    out["runs"] = []
    modes = (["exact"] if n <= job["exact_max"] else []) + ["approximate"]
    keep_vectors = n <= job["exact_max"] or n in job["duplicates_at"]
    for mode in modes:
        log(f"[{n:,}] building the {mode} index ...")
        assert vectors is not None
        gallery, run = build_index(mode, refs, vectors)
        log(f"[{n:,}] {mode}: kind {run['kind']}, built in {run['build_s']:.1f} s; searching ...")
        if not keep_vectors:
            vectors = None  # the gallery holds what it needs; keep no second copy
            gc.collect()
        qidx = order[: job["exact_queries"]] if mode == "exact" else order
        hits, timing = measure_index(gallery, queries, qidx, vectors if mode == "exact" else None)
        run.update(timing)
        run.update(score_results(hits, qidx, exact, job, thr["threshold"]))
        run["rss_after_searches_bytes"] = rss_bytes()
        if mode == "approximate" and n in job["duplicates_at"]:
            log(f"[{n:,}] duplicates ...")
            min_score = job["duplicates_score"] if job["duplicates_score"] is not None else thr["threshold"]
            run["duplicates"] = measure_duplicates(gallery, g.vectors(), refs_num, job, min_score)
        log(f"[{n:,}] {mode}: p50 {run['latency']['p50_ms']:.2f} ms, p95 {run['latency']['p95_ms']:.2f} ms")
        out["runs"].append(run)
        gallery.close()
        del gallery
        gc.collect()
    out["peak_rss_bytes"] = peak_rss_bytes()
    Path(args.result).write_text(json.dumps(out))


# -- preparing (parent process) ---------------------------------------------------------------------
def queries_of(real: sg.RealFaces, gen: sg.Generator, seed: int, nonmated: int) -> dict[str, Any]:
    """Every query: real mated and non-mated case embeddings (clean and degraded), synthetic non-mated."""
    mated = real.rows(role="mated")
    real_nm = real.rows(role="nonmated")
    syn = sg.nonmated_queries(gen, seed, nonmated)
    rows = np.concatenate([mated, real_nm])
    return {
        "queries": np.vstack([real.vectors[rows], syn]).astype(np.float32),
        "kinds": [("mated_clean" if real.variant[i] == "clean" else "mated_degraded") for i in mated]
        + ["nonmated_real"] * len(real_nm)
        + ["nonmated_synthetic"] * nonmated,
        "identities": [real.identity[i] for i in rows] + [""] * nonmated,
        "variants": [real.variant[i] for i in rows] + ["synthetic"] * nonmated,
    }


def oracle(g: sg.SyntheticGallery, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The exact best ORACLE_K faces of every query (cached beside the gallery)."""
    key = hashlib.sha256(queries.tobytes() + str(ORACLE_K).encode()).hexdigest()[:16]
    file = g.folder / f"oracle-{key}.npz"
    if file.is_file():
        with np.load(file) as data:
            return data["scores"], data["rows"], float(data["seconds"])
    t = time.perf_counter()
    scores, rows = sg.exact_top(g, queries, ORACLE_K, log=log)
    seconds = time.perf_counter() - t
    tmp = g.folder / f".{file.stem}.{os.getpid()}.npz"
    np.savez(tmp, scores=scores, rows=rows, seconds=seconds)
    os.chmod(tmp, 0o600)
    os.replace(tmp, file)
    return scores, rows, seconds


def plot(path: Path, real_s: dict[str, np.ndarray], syn_s: dict[str, np.ndarray], lines: dict[str, float]) -> None:
    """Real against synthetic score histograms (impostor, genuine) and the impostor tail, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    bins = np.linspace(-0.3, 1.0, 66)
    ax = axes[0]
    ax.hist(real_s["impostor"], bins=bins, density=True, alpha=0.55, label=f"real ({len(real_s['impostor']):,} pairs)")
    ax.hist(syn_s["impostor"], bins=bins, density=True, histtype="step", lw=2, label="synthetic")
    ax.set(title="Impostor scores (two people)", xlabel="cosine score", ylabel="density")
    ax.legend()
    ax = axes[1]
    ax.hist(
        real_s["genuine"], bins=bins, density=True, alpha=0.55, label=f"real, clean ({len(real_s['genuine'])} pairs)"
    )
    ax.hist(syn_s["genuine"], bins=bins, density=True, histtype="step", lw=2, label="synthetic")
    ax.hist(
        real_s["genuine_degraded"],
        bins=bins,
        density=True,
        histtype="step",
        lw=1,
        ls="--",
        color="grey",
        label=f"real, degraded query ({len(real_s['genuine_degraded']):,}; not fitted)",
    )
    ax.set(title="Genuine scores (one person)", xlabel="cosine score")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[2]
    for name, values, style in (("real", real_s["impostor"], "-"), ("synthetic", syn_s["impostor"], "--")):
        x = np.sort(values)
        ax.semilogy(x, 1 - np.arange(len(x)) / len(x), style, label=name)
    for i, (label, value) in enumerate(lines.items()):
        ax.axvline(value, color="grey", lw=0.8, ls=":")
        ax.text(value + 0.01, 10 ** (-1 - i), label, fontsize=7, va="center", ha="left")
    ax.set(title="Impostor tail", xlabel="cosine score", ylabel="share of pairs above", ylim=(1e-6, 1), xlim=(0, 1))
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


# -- reporting --------------------------------------------------------------------------------------
def gib(b: float) -> str:
    return f"{b / 2**30:.2f}"


def load_str(cores: float | None) -> str:
    return "n/a" if cores is None else f"{cores:.2f}"


def report(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"# Gallery search at {', '.join(f'{n:,}' for n in result['sizes'])} faces ({result['date']})",
        "",
        f"Nomina {m['nomina']} (commit {m['commit']}{', src changed' if m['src_changed_since_commit'] else ''}); "
        f"{m['cpu']}, {m['cpu_count']} cores, {m['memory_bytes'] / 2**30:.0f} GiB; Python {m['python']}, "
        f"numpy {m['numpy']}, faiss {m['faiss']}. Top {TOP}, one query at a time; {result['query_counts']}.",
        "",
        "| faces | index | build s | p50 ms | p95 ms | baseline read ms | ratio | relevant returned | mated returned "
        "| recall@50 | max score error | other load |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["results"]:
        for run in s["runs"]:
            lat = run["latency"]
            rel = run["relevant_recall"]
            share = f"{100 * rel:.2f}%" if rel is not None else "n/a"
            lines.append(
                f"| {s['faces']:,} | {run['kind']} | {run['build_s']:.1f} | {lat['p50_ms']:.2f} | "
                f"{lat['p95_ms']:.2f} | {run.get('baseline_read_ms', float('nan')):.2f} | "
                f"{run.get('ratio', float('nan')):.2f} | "
                f"{run['relevant_returned']}/{run['relevant_faces']} ({share}) | "
                f"{run['mated_returned']}/{run['mated_in_exact_top']} | {run['recall_at_50']:.4f} | "
                f"{run['max_score_error']:.1e} | {load_str(run['other_load_cores'])} |"
            )
    lines += [
        "",
        "| faces | FPIR 0.01 threshold (pooled) | real non-mated | synthetic non-mated | peak RSS GiB | "
        "index RSS growth GiB | oracle s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["results"]:
        t = s["thresholds"]
        approx = s["runs"][-1]
        lines.append(
            f"| {s['faces']:,} | {t['threshold']:.4f} ({t['nonmated_searches']}) | "
            f"{t['real_nonmated']['threshold']:.4f} ({t['real_nonmated']['searches']}) | "
            f"{t['synthetic_nonmated']['threshold']:.4f} ({t['synthetic_nonmated']['searches']}) | "
            f"{gib(s['peak_rss_bytes'])} | {gib(approx['rss_after_build_bytes'] - approx['rss_before_build_bytes'])} | "
            f"{s['oracle_s']:.0f} |"
        )
    for s in result["results"]:
        for run in s["runs"]:
            if d := run.get("duplicates"):
                lines.append(
                    f"\nduplicates at {s['faces']:,} faces: {d['seconds']:.1f} s, {d['pairs']} pairs >= "
                    f"{d['min_score']:.4f} (limit {d['limit']}); planted {d['planted']}, "
                    f"{d['planted_above_min_score']} above the score, {d['planted_found']} found"
                )
    lines.append(f"\nTotal runtime {result['runtime_s']:.0f} s.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000", help="gallery sizes in faces, comma-separated")
    parser.add_argument("--cache", default=None, help="folder for cached galleries (default a folder under /tmp)")
    parser.add_argument("--faces", default=None, help="sample photos (default ../shared/faces or NOMINA_TEST_FACES)")
    parser.add_argument("--nonmated", type=int, default=2000, help="synthetic non-mated queries (default 2000)")
    parser.add_argument("--exact-max", type=int, default=1_000_000, help="largest size searched exactly too")
    parser.add_argument("--exact-queries", type=int, default=1000, help="queries timed on the exact index")
    parser.add_argument("--duplicates-at", default="1000000", help="sizes at which Gallery.duplicates is timed")
    parser.add_argument("--duplicates-score", type=float, default=None, help="min_score (default: FPIR 0.01 threshold)")
    parser.add_argument("--duplicates-limit", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--wait-quiet", type=float, default=0, help="before each size, wait up to this many seconds for load < 0.5"
    )
    parser.add_argument("--plot", default=str(REPO / "docs" / "img" / "bench-synthetic-scores.png"))
    parser.add_argument("--out", default=None, help="write the results as JSON to this file")
    parser.add_argument(
        "--prepare-only", action="store_true", help="only fill the cache (embeddings, galleries, oracle)"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip())
    dup_sizes = [int(s.replace("_", "")) for s in args.duplicates_at.split(",") if s.strip()]
    cache = Path(args.cache or Path(tempfile.gettempdir()) / f"nomina-bench-{os.getuid()}")
    faces = Path(args.faces or os.environ.get("NOMINA_TEST_FACES") or REPO.parent / "shared" / "faces")

    started = time.perf_counter()
    state = machine_state()
    log(f"load average {state['load_average']}, {gib(state['mem_available_bytes'])} GiB available")
    log("real embeddings (cached after the first run) ...")
    real = sg.real_faces(faces, cache, log=log)
    log("fitting the generator (cached) ...")
    gen, fit = sg.fitted_generator(real, args.seed, cache)
    q = queries_of(real, gen, args.seed, args.nonmated)
    counts = {k: q["kinds"].count(k) for k in dict.fromkeys(q["kinds"])}
    query_counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()) + " queries"

    results = []
    with tempfile.TemporaryDirectory(prefix="nomina-bench-") as tmp:
        for n in sizes:
            log(f"[{n:,}] gallery (cached after the first run) ...")
            t = time.perf_counter()
            g = sg.build_gallery(n, gen, real, args.seed, cache, log=log)
            gallery_s = time.perf_counter() - t
            log(f"[{n:,}] exact oracle for {len(q['queries']):,} queries (cached) ...")
            scores, rows, oracle_s = oracle(g, q["queries"])
            if args.prepare_only:
                continue
            qfile = Path(tmp) / f"queries-{n}.npz"
            np.savez(qfile, queries=q["queries"], oracle_scores=scores, oracle_rows=rows)
            job = {
                "queries_file": str(qfile),
                "gallery": {**g.meta, "folder": str(g.folder)},
                "kinds": q["kinds"],
                "identities": q["identities"],
                "variants": q["variants"],
                "real_rows": g.real_rows,
                "duplicates": g.duplicates.tolist(),
                "seed": args.seed,
                "exact_max": args.exact_max,
                "exact_queries": args.exact_queries,
                "duplicates_at": dup_sizes,
                "duplicates_score": args.duplicates_score,
                "duplicates_limit": args.duplicates_limit,
            }
            job_file, result_file = Path(tmp) / f"job-{n}.json", Path(tmp) / f"result-{n}.json"
            job_file.write_text(json.dumps(job))
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
            state = machine_state()
            log(
                f"[{n:,}] measuring (load average {state['load_average'][0]:.2f}, "
                f"{gib(state['mem_available_bytes'])} GiB available) ..."
            )
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                "--job",
                str(job_file),
                "--result",
                str(result_file),
            ]
            subprocess.run(cmd, check=True)
            result = json.loads(result_file.read_text())
            result.update(
                {
                    "gallery_s": gallery_s,
                    "gallery_generated_s": g.meta["seconds"],
                    "oracle_s": oracle_s,
                    "planted_duplicates": len(g.duplicates),
                }
            )
            results.append(result)

    if args.prepare_only:
        log(f"cache ready under {cache} ({time.perf_counter() - started:.0f} s)")
        return
    real_s = sg.real_scores(real)
    parts = [sg.synthetic_scores(gen, np.random.default_rng([args.seed, 3, i]), 200_000) for i in range(5)]
    syn_s = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}  # 1M pairs of each
    lines = {f"FPIR 0.01 at {r['faces']:,}": r["thresholds"]["threshold"] for r in results}
    if args.plot:
        plot(Path(args.plot), real_s, syn_s, lines)
    out = {
        "benchmark": "gallery search latency and recall",
        "command": "python " + " ".join([str(Path(sys.argv[0]))] + sys.argv[1:]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "sizes": sizes,
        "top": TOP,
        "seed": args.seed,
        "targets": TARGETS,
        "query_counts": query_counts,
        "queries": counts,
        "real_faces_missed": real.missed,
        "generator_fit": fit,
        "synthetic_impostor_tail": {
            str(p): float(np.quantile(syn_s["impostor"], p)) for p in (0.99, 0.999, 0.9999, 0.99999)
        },
        "results": results,
        "runtime_s": time.perf_counter() - started,
    }
    print(report(out))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
