"""The evaluation protocols: which comparisons are made and what is reported about them.

Every photo contributes one vector (its face nearest the centre). A photo without one (no face found,
or not a usable image) is a failure: every comparison it takes part in gets :data:`WORST`, the lowest
score a cosine similarity can have, as NIST FRTE scores a failure to make a template. Each block is
also computed without the comparisons that involve failures, under ``excluding_failures``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import calibration as lr
from . import metrics
from .dataset import Dataset, Labels
from .pairs import PairsProtocol

__all__ = [
    "FAR_TARGETS",
    "FPIR_TARGETS",
    "RANKS",
    "WORST",
    "PairScores",
    "calibration_block",
    "quality_block",
    "genuine_pairs",
    "groups_block",
    "identification_block",
    "impostor_pairs",
    "pair_scores",
    "pairs_block",
    "verification_block",
]

WORST = -1.0
FAR_TARGETS = (0.01, 0.001, 0.0001)
FPIR_TARGETS = (0.01, 0.003)
RANKS = (1, 5, 10, 20, 50)
#: Length of the candidate list in open-set identification (Nomina's default number of candidates).
CANDIDATES = 50
# Impostor pairs are enumerated (then filtered) when there are at most this many pairs in all.
_ENUMERATE_LIMIT = 5_000_000


def _key(x: float) -> str:
    return f"{x:g}"  # 0.01, 0.001, 0.0001, 0.003: the JSON keys


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(float(x), digits)


@dataclass(frozen=True)
class PairScores:
    """Scores of the pairs (i, j) of photo indices, and which pairs involve no failure."""

    i: np.ndarray
    j: np.ndarray
    scores: np.ndarray
    clean: np.ndarray  # bool: neither photo failed


def pair_scores(vectors: np.ndarray, ok: np.ndarray, i: np.ndarray, j: np.ndarray) -> PairScores:
    """Cosine scores of photo pairs; :data:`WORST` where either photo failed."""
    scores = np.empty(len(i), dtype=np.float64)
    for start in range(0, len(i), 200_000):
        a, b = i[start : start + 200_000], j[start : start + 200_000]
        scores[start : start + len(a)] = np.einsum("ij,ij->i", vectors[a], vectors[b])
    clean = ok[i] & ok[j]
    scores[~clean] = WORST
    return PairScores(i, j, scores, clean)


def genuine_pairs(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of photos of the same identity."""
    a: list[int] = []
    b: list[int] = []
    for members in dataset.photos_of().values():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                a.append(members[x])
                b.append(members[y])
    return np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)


def impostor_pairs(dataset: Dataset, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Pairs of photos of different identities: all of them, or a seeded sample of ``limit``.

    Returns (i, j, number available). The sample is drawn uniformly without replacement from all
    different-identity pairs and depends only on the dataset's sorted photo list and the seed.
    """
    n = len(dataset.photos)
    number = {name: k for k, name in enumerate(dataset.identities)}
    ident = np.asarray([number[p.identity] for p in dataset.photos], dtype=np.int64)
    sizes = np.bincount(ident)
    available = n * (n - 1) // 2 - int((sizes * (sizes - 1) // 2).sum())
    if available <= limit and n * (n - 1) // 2 <= _ENUMERATE_LIMIT:
        i, j = np.triu_indices(n, 1)
        keep = ident[i] != ident[j]
        return i[keep].astype(np.int64), j[keep].astype(np.int64), available
    rng = np.random.default_rng(seed)
    want = min(limit, available)
    chosen = np.zeros(0, dtype=np.int64)
    while len(chosen) < want:
        draw = 2 * (want - len(chosen)) + 1000
        i = rng.integers(0, n, draw)
        j = rng.integers(0, n, draw)
        keep = ident[i] != ident[j]
        lo, hi = np.minimum(i[keep], j[keep]), np.maximum(i[keep], j[keep])
        codes = np.concatenate([chosen, lo * n + hi])
        _, first = np.unique(codes, return_index=True)
        chosen = codes[np.sort(first)]  # keep draw order, drop repeats
    chosen = chosen[:want]
    return chosen // n, chosen % n, available


def _verification(gen: np.ndarray, imp: np.ndarray) -> dict[str, Any]:
    block: dict[str, Any] = {"genuine_pairs": int(len(gen)), "impostor_pairs": int(len(imp))}
    if len(gen) == 0 or len(imp) == 0:
        return {**block, "auc": None, "eer": None, "tar_at_far": {_key(f): None for f in FAR_TARGETS}}
    rate, threshold = metrics.eer(gen, imp)
    points = {_key(f): metrics.tar_at_far(gen, imp, f) for f in FAR_TARGETS}
    detail = {}
    for key, p in points.items():
        d = p.as_dict()
        if p.threshold is not None:
            d["tar_ci95"] = _interval(int((gen >= p.threshold).sum()), len(gen))
        detail[key] = d
    return {
        **block,
        "auc": _r(metrics.auc(gen, imp)),
        "eer": _r(rate),
        "tar_at_far": {k: _r(p.value) for k, p in points.items()},
        "eer_threshold": _r(threshold),
        "operating_points": detail,
        "notes": [f"FAR {k}: {p.note}" for k, p in points.items() if p.note],
    }


def verification_block(gen: PairScores, imp: PairScores, available: int, seed: int) -> dict[str, Any]:
    """1:1 verification over every genuine pair and the chosen impostor pairs."""
    block = _verification(gen.scores, imp.scores)
    block["impostor_sampling"] = {
        "available": available,
        "all": len(imp.scores) == available,
        "seed": None if len(imp.scores) == available else seed,
    }
    block["pairs_with_failures"] = {"genuine": int((~gen.clean).sum()), "impostor": int((~imp.clean).sum())}
    excl = _verification(gen.scores[gen.clean], imp.scores[imp.clean])
    excl.pop("operating_points", None)
    excl.pop("notes", None)
    block["excluding_failures"] = excl
    return block


def _identification(scores: np.ndarray, mates: np.ndarray, gallery: int) -> dict[str, Any]:
    block: dict[str, Any] = {"gallery": gallery, "probes": int(len(mates))}
    if len(mates) == 0 or gallery < 2:
        return {
            **block,
            "rank": {str(k): None for k in RANKS},
            "fnir_at_fpir": {_key(f): None for f in FPIR_TARGETS},
        }
    rank_of_mate = metrics.ranks(scores, mates)
    rows = np.arange(len(mates))
    mate_scores = scores[rows, mates]
    others = scores.copy()
    others[rows, mates] = -np.inf  # the same probes searched with their own identity removed
    nonmated_top = others.max(axis=1)
    points = {
        _key(f): metrics.fnir_at_fpir(mate_scores, rank_of_mate, nonmated_top, f, max_rank=CANDIDATES)
        for f in FPIR_TARGETS
    }
    return {
        **block,
        "rank": {str(k): _r(v) for k, v in metrics.rank_rates(rank_of_mate, RANKS).items()},
        "fnir_at_fpir": {k: _r(p.value) for k, p in points.items()},
        "nonmated_searches": int(len(mates)),
        "candidate_list": CANDIDATES,
        "operating_points": {k: p.as_dict() for k, p in points.items()},
        "notes": [f"FPIR {k}: {p.note}" for k, p in points.items() if p.note],
        "_ranks": rank_of_mate,
    }


def identification_block(
    dataset: Dataset, vectors: np.ndarray, ok: np.ndarray
) -> tuple[dict[str, Any], np.ndarray | None]:
    """Closed- and open-set 1:N. Gallery: each identity's first photo; probes: every other photo.

    Returns the block and the mates' ranks (for the CMC plot; None without probes).
    """
    groups = dataset.photos_of()
    gallery = [members[0] for members in groups.values()]
    column = {dataset.photos[g].identity: c for c, g in enumerate(gallery)}
    probes = [k for members in groups.values() if len(members) > 1 for k in members[1:]]
    mates = np.asarray([column[dataset.photos[k].identity] for k in probes], dtype=np.int64)
    g_idx = np.asarray(gallery, dtype=np.int64)
    p_idx = np.asarray(probes, dtype=np.int64)
    scores = vectors[p_idx] @ vectors[g_idx].T if len(p_idx) else np.zeros((0, len(g_idx)))
    scores = scores.astype(np.float64)
    scores[~ok[p_idx], :] = WORST
    scores[:, ~ok[g_idx]] = WORST
    block = _identification(scores, mates, len(gallery))
    ranks = block.pop("_ranks", None)

    # Without failures: failed gallery photos leave the gallery, with their identity's probes.
    keep_cols = ok[g_idx]
    new_col = np.cumsum(keep_cols) - 1
    keep_rows = ok[p_idx] & keep_cols[mates] if len(mates) else np.zeros(0, dtype=bool)
    excl = _identification(scores[keep_rows][:, keep_cols], new_col[mates[keep_rows]], int(keep_cols.sum()))
    excl.pop("_ranks", None)
    for k in ("operating_points", "notes", "nonmated_searches", "candidate_list"):
        excl.pop(k, None)
    block["excluding_failures"] = excl
    block.setdefault("notes", [])
    if len(probes) == 0:
        block["notes"].append("no identity has two or more photos: nothing to search")
    return block, ranks


def pairs_block(protocol: PairsProtocol, dataset: Dataset, vectors: np.ndarray, ok: np.ndarray) -> dict[str, Any]:
    """Accuracy over the protocol's folds, each fold's threshold chosen on the other folds."""
    index = {p.path.resolve(): k for k, p in enumerate(dataset.photos)}
    i = np.asarray([index[p.a.resolve()] for p in protocol.pairs], dtype=np.int64)
    j = np.asarray([index[p.b.resolve()] for p in protocol.pairs], dtype=np.int64)
    same = np.asarray([p.same for p in protocol.pairs], dtype=bool)
    folds = np.asarray([p.fold for p in protocol.pairs], dtype=np.int64)
    ps = pair_scores(vectors, ok, i, j)
    result = metrics.pairs_accuracy(ps.scores, same, folds)
    block: dict[str, Any] = {
        "folds": result.folds,
        "accuracy_mean": _r(result.accuracy_mean),
        "accuracy_std": _r(result.accuracy_std),
        "accuracy_se": _r(result.accuracy_se),
        "fold_accuracies": [_r(a) for a in result.accuracies],
        "fold_thresholds": [_r(t) for t in result.thresholds],
        "file": str(protocol.path),
        "pairs": int(len(same)),
        "pairs_with_failures": int((~ps.clean).sum()),
    }
    clean = ps.clean
    if clean.all():
        block["excluding_failures"] = {k: block[k] for k in ("folds", "accuracy_mean", "accuracy_std", "pairs")}
    elif len(np.unique(folds[clean])) >= 2:
        r = metrics.pairs_accuracy(ps.scores[clean], same[clean], folds[clean])
        block["excluding_failures"] = {
            "folds": r.folds,
            "accuracy_mean": _r(r.accuracy_mean),
            "accuracy_std": _r(r.accuracy_std),
            "pairs": int(clean.sum()),
        }
    else:
        block["excluding_failures"] = None
    return block


def groups_block(labels: Labels, gen: PairScores, imp: PairScores, threshold: float | None) -> dict[str, Any]:
    """False non-match and false match rates per group at one threshold (NIST IR 8280's differentials).

    A pair counts for a group when both its photos belong to it (impostor pairs of the same group are the
    ones that matter for false matches); pairs across groups count for neither.
    """
    out: dict[str, Any] = {}
    for column in labels.columns:
        values = sorted({v[column] for v in labels.values.values() if column in v})
        per_photo = {k: v.get(column) for k, v in labels.values.items()}
        out[column] = {}
        for value in values:
            g_in = _both_in(gen, per_photo, value)
            i_in = _both_in(imp, per_photo, value)
            fnmr = fmr = None
            if threshold is not None:
                fnmr, fmr = metrics.rates_at_threshold(gen.scores[g_in], imp.scores[i_in], threshold)
            out[column][value] = {
                "fnmr": _r(fnmr),
                "fmr": _r(fmr),
                "genuine_pairs": int(g_in.sum()),
                "impostor_pairs": int(i_in.sum()),
                "threshold": _r(threshold),
            }
    return out


def _both_in(ps: PairScores, per_photo: dict[int, str | None], value: str) -> np.ndarray:
    members = np.asarray(sorted(k for k, v in per_photo.items() if v == value), dtype=np.int64)
    return np.isin(ps.i, members) & np.isin(ps.j, members)


def score_summary(scores: Sequence[float]) -> dict[str, float | None]:
    """Median and spread of a score set, for the report."""
    a = np.asarray(scores, dtype=np.float64)
    if len(a) == 0:
        return {"median": None, "p5": None, "p95": None}
    return {"median": _r(np.median(a)), "p5": _r(np.percentile(a, 5)), "p95": _r(np.percentile(a, 95))}


def calibration_block(
    calibration_id: int, calibration: lr.Calibration, gen: PairScores, imp: PairScores, dataset: str
) -> tuple[dict[str, Any], tuple[np.ndarray, np.ndarray] | None]:
    """How a stored calibration performs on this dataset's pairs, as forensic LR validation reports it.

    Pairs involving a failure are left out (they have no score to turn into an LR). ``cllr`` is the cost of
    the stored calibration's LRs on these pairs; ``cllr_min`` what the best monotonic calibration of
    these scores would cost (discrimination alone); ``cllr_refitted`` the held-out cost of the same method
    fitted afresh on these pairs in 5 folds. ``misleading`` gives the rates of misleading evidence: same-
    person pairs with LR < 1 and different-person pairs with LR > 1, and strongly misleading (LR < 1/100,
    LR > 100). Returns the block and the log10 LRs (genuine, impostor) for the Tippett plot.
    """
    g = gen.scores[gen.clean]
    i = imp.scores[imp.clean]
    fitted_on = calibration.data.get("dataset")
    block: dict[str, Any] = {
        "id": calibration_id,
        "method": calibration.method,
        "description": calibration.describe(),
        "fitted_on": fitted_on,
        "same_dataset": fitted_on == dataset,
        "genuine_pairs": int(len(g)),
        "impostor_pairs": int(len(i)),
        "notes": [],
    }
    if fitted_on == dataset:
        block["notes"].append(
            "the calibration was fitted on this dataset, so cllr is an in-sample figure; cllr_refitted and the "
            "calibrate command's held-out Cllr are the honest ones"
        )
    if len(g) == 0 or len(i) == 0:
        block["notes"].append("no same-person or no different-person pairs with faces: nothing to measure")
        return {**block, "cllr": None, "cllr_min": None, "cllr_refitted": None, "misleading": None}, None
    lg, li = calibration.log10_lr(g), calibration.log10_lr(i)
    try:
        refitted: float | None = lr.fit(g, i, method=calibration.method).cllr
    except ValueError as exc:
        refitted = None
        block["notes"].append(f"cllr_refitted: {exc}")
    block.update(
        {
            "cllr": _r(lr.cllr(lg, li)),
            "cllr_min": _r(lr.cllr_min(g, i)),
            "cllr_refitted": _r(refitted),
            "misleading": {
                "genuine_lr_below_1": _r(float(np.mean(lg < 0))),
                "impostor_lr_above_1": _r(float(np.mean(li > 0))),
                "genuine_lr_below_0.01": _r(float(np.mean(lg < -2))),
                "impostor_lr_above_100": _r(float(np.mean(li > 2))),
            },
            "log10_lr_genuine": score_summary(lg),
            "log10_lr_impostor": score_summary(li),
        }
    )
    return block, (lg, li)


#: Quality bands of :func:`quality_block`: [low, high) on the 0-100 quality score (the last includes 100).
QUALITY_BANDS = ((0, 20), (20, 40), (40, 60), (60, 80), (80, 100))


def quality_block(quality: np.ndarray, gen: PairScores, imp: PairScores, threshold: float | None) -> dict[str, Any]:
    """False non-match and false match rates by quality band, at one threshold (FAR 0.001 over all pairs).

    ``quality`` is each photo's face quality score (NaN for a failure). A pair falls in the band of the
    lower of its two scores, since the poorer face limits the comparison; pairs with a failure are left
    out. If quality means anything, FNMR falls from the lowest band to the highest.
    """
    pair_low_g = np.fmin(quality[gen.i], quality[gen.j])
    pair_low_i = np.fmin(quality[imp.i], quality[imp.j])
    bands = []
    for low, high in QUALITY_BANDS:
        top = high if high < 100 else np.inf
        g = gen.clean & (pair_low_g >= low) & (pair_low_g < top)
        i = imp.clean & (pair_low_i >= low) & (pair_low_i < top)
        fnmr = fmr = None
        if threshold is not None:
            fnmr, fmr = metrics.rates_at_threshold(gen.scores[g], imp.scores[i], threshold)
        bands.append(
            {
                "band": f"{low}-{high}",
                "genuine_pairs": int(g.sum()),
                "impostor_pairs": int(i.sum()),
                "fnmr": _r(fnmr),
                "fmr": _r(fmr),
                "fnmr_ci95": None
                if fnmr is None or not g.any()
                else _interval(int(round(fnmr * g.sum())), int(g.sum())),
            }
        )
    scored = quality[~np.isnan(quality)]
    return {
        "threshold": _r(threshold),
        "photos": score_summary(scored),
        "bands": bands,
        "pair_quality": "the lower of the two photos' quality scores",
    }


def _interval(successes: int, n: int) -> list[float | None] | None:
    """The 95% Wilson interval, rounded like every other rate."""
    bounds = metrics.wilson_interval(successes, n)
    return None if bounds is None else [_r(bounds[0]), _r(bounds[1])]
