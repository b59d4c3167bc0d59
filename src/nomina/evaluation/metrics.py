"""Accuracy measures for face comparison (1:1) and face search (1:N), in plain numpy.

Scores are similarity scores: higher means more alike. Nothing here assumes a range (cosine scores lie in
[-1, 1], other models' scores need not). One decision rule holds everywhere: a comparison is accepted,
called a match, when ``score >= threshold``.

Words as ISO/IEC 19795-1 and NIST's face recognition evaluations use them:

- *genuine* comparisons are of two photos of the same person, *impostor* comparisons of two people;
- FAR (false accept rate, also FMR) is the fraction of impostor scores ``>= threshold``, TAR (true accept
  rate) the fraction of genuine scores ``>= threshold``, and FRR = FNMR = 1 - TAR;
- in a search (1:N), a *mated* search has the person in the gallery, a *non-mated* search does not.

A rate read at a fixed FAR or FPIR rests on the few highest impostor (non-mated) scores; when there are too
few comparisons for even one error to be allowed the rate is not measured at all, and when only a handful of
errors are allowed it comes with a note saying it is rough (see :func:`tar_at_far`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "OperatingPoint",
    "PairsResult",
    "auc",
    "cmc",
    "det_curve",
    "eer",
    "fnir_at_fpir",
    "pairs_accuracy",
    "rank_rates",
    "ranks",
    "rates_at_threshold",
    "roc_curve",
    "tar_at_far",
    "wilson_interval",
]

# Below this many allowed errors, a rate at a fixed FAR / FPIR carries a note saying it is rough.
_FEW_ERRORS = 10


@dataclass(frozen=True)
class OperatingPoint:
    """A rate measured at the threshold that holds an error rate of the other kind to a target."""

    target: float  # the FAR / FPIR asked for, e.g. 0.001
    value: float | None  # TAR (for tar_at_far) or FNIR (for fnir_at_fpir); None when not measurable
    threshold: float | None  # accept when score >= threshold; None when not measurable
    errors_allowed: int  # floor(target * number of impostor comparisons / non-mated searches)
    achieved: float | None  # the FAR / FPIR actually reached at that threshold (<= target)
    note: str | None  # why value is None, or a caution; None otherwise

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-able values; measured floats rounded to 6 digits (the target is kept as asked)."""
        return {
            "target": self.target,
            "value": _round(self.value),
            "threshold": _round(self.threshold),
            "errors_allowed": self.errors_allowed,
            "achieved": _round(self.achieved),
            "note": self.note,
        }


@dataclass(frozen=True)
class PairsResult:
    """Accuracy over the folds of a pairs protocol, each fold's threshold chosen on the other folds."""

    folds: int
    accuracies: list[float]  # per fold, in fold order
    thresholds: list[float]  # per fold
    accuracy_mean: float
    accuracy_std: float  # sample standard deviation (ddof=1), as the LFW reporting procedure asks
    accuracy_se: float  # standard error of the mean: std / sqrt(folds)

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-able values, floats rounded to 6 digits."""
        return {
            "folds": self.folds,
            "accuracies": [round(a, 6) for a in self.accuracies],
            "thresholds": [round(t, 6) for t in self.thresholds],
            "accuracy_mean": round(self.accuracy_mean, 6),
            "accuracy_std": round(self.accuracy_std, 6),
            "accuracy_se": round(self.accuracy_se, 6),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _scores(values: ArrayLike, what: str) -> np.ndarray:
    """A 1-D float64 array of scores; ValueError for another shape or a NaN."""
    scores = np.asarray(values, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"{what} scores: expected a 1-D sequence, got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError(f"{what} scores: contain NaN")
    return scores


def _two_sets(genuine: ArrayLike, impostor: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor scores, both non-empty (ValueError otherwise)."""
    gen = _scores(genuine, "genuine")
    imp = _scores(impostor, "impostor")
    for scores, what in ((gen, "genuine"), (imp, "impostor")):
        if len(scores) == 0:
            raise ValueError(f"no {what} scores: this measure needs at least one genuine and one impostor score")
    return gen, imp


def roc_curve(genuine: ArrayLike, impostor: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(far, tar, thresholds): one point per distinct score, thresholds decreasing.

    The first point is far = tar = 0 at threshold +inf; then ``far[i]`` / ``tar[i]`` is the fraction of
    impostor / genuine scores ``>= thresholds[i]``, for every distinct score in either set. Agrees with
    ``sklearn.metrics.roc_curve(..., drop_intermediate=False)`` on the same data.
    """
    gen, imp = _two_sets(genuine, impostor)
    scores = np.concatenate([gen, imp])
    is_genuine = np.concatenate([np.ones(len(gen), dtype=np.int64), np.zeros(len(imp), dtype=np.int64)])
    order = np.argsort(-scores, kind="stable")
    scores, is_genuine = scores[order], is_genuine[order]
    # The last position of each run of equal scores: every score up to it is >= that score.
    last = np.flatnonzero(np.diff(scores) != 0)
    last = np.append(last, len(scores) - 1)
    true_accepts = np.cumsum(is_genuine)[last]
    false_accepts = last + 1 - true_accepts
    far = np.concatenate([[0.0], false_accepts / len(imp)])
    tar = np.concatenate([[0.0], true_accepts / len(gen)])
    thresholds = np.concatenate([[np.inf], scores[last]])
    return far, tar, thresholds


def auc(genuine: ArrayLike, impostor: ArrayLike) -> float:
    """Area under the ROC: P(g > i) + 0.5 P(g == i) over all genuine-impostor pairs (Mann-Whitney U).

    Counted by sorting the impostor scores and locating each genuine score among them, so it needs
    memory for the scores only (10^3 genuine x 10^6 impostor scores is fine). Agrees with
    ``sklearn.metrics.roc_auc_score``.
    """
    gen, imp = _two_sets(genuine, impostor)
    imp = np.sort(imp)
    below = np.searchsorted(imp, gen, side="left")  # impostor scores < g
    at_or_below = np.searchsorted(imp, gen, side="right")  # impostor scores <= g
    # 2 * (below + ties / 2) = below + at_or_below, summed exactly in integers.
    twice_wins = int(below.sum()) + int(at_or_below.sum())
    return twice_wins / (2 * len(gen) * len(imp))


def eer(genuine: ArrayLike, impostor: ArrayLike) -> tuple[float, float]:
    """(equal error rate, threshold): where the false accept and false reject rates cross.

    FAR(t) = fraction of impostor scores ``>= t`` and FRR(t) = fraction of genuine scores ``< t`` are
    evaluated at every distinct score t (in either set). Going up through these scores FRR - FAR strictly
    increases (each distinct score moves at least one of the two rates), from -1 at the lowest score. The
    crossing is the first score where FRR - FAR >= 0: if the difference is exactly 0 there, that score and
    its FAR are the answer; otherwise both the rate and the threshold are interpolated linearly between that
    score and the one below it, at the fraction of the step where FRR - FAR reaches 0. If the rates have not
    crossed at the highest score, the step used is to a threshold just above it (FAR 0, FRR 1).
    """
    gen, imp = _two_sets(genuine, impostor)
    gen, imp = np.sort(gen), np.sort(imp)
    t = np.unique(np.concatenate([gen, imp]))
    far = (len(imp) - np.searchsorted(imp, t, side="left")) / len(imp)
    frr = np.searchsorted(gen, t, side="left") / len(gen)
    t = np.append(t, np.nextafter(t[-1], np.inf))
    far = np.append(far, 0.0)
    frr = np.append(frr, 1.0)
    diff = frr - far
    i = int(np.argmax(diff >= 0))  # exists (the last point has diff 1) and is >= 1 (the first has diff -1)
    if diff[i] == 0:
        return float(far[i]), float(t[i])
    step = -diff[i - 1] / (diff[i] - diff[i - 1])
    rate = far[i - 1] + step * (far[i] - far[i - 1])
    threshold = t[i - 1] + step * (t[i] - t[i - 1])
    return float(rate), float(threshold)


def _errors_allowed(target: float, count: int) -> int:
    """floor(target * count), without float products such as 0.29 * 100 = 28.999... losing one."""
    return math.floor(round(target * count, 9))


def _hold(
    negatives: np.ndarray, positives: np.ndarray, target: float, rate: str, comparisons: str, errors: tuple[str, str]
) -> tuple[int, float | None, float | None, str | None]:
    """(errors allowed, threshold, achieved rate, note): the lowest threshold at which at most
    floor(target * len(negatives)) negative scores are accepted. ``errors``: the error's name, singular
    and plural."""
    if not 0 < target <= 1:
        raise ValueError(f"{rate} target {target!r}: must be above 0 and at most 1")
    n = len(negatives)
    k = _errors_allowed(target, n)
    if k == 0:
        need = math.ceil(round(1 / target, 9))
        return 0, None, None, f"needs at least {need} {comparisons} for {rate} {target:g}; have {n}"
    if k >= n:  # every negative may be accepted: accept everything
        threshold = float(min(negatives.min(), positives.min() if len(positives) else np.inf))
    else:
        kth_highest = np.partition(negatives, n - 1 - k)[n - 1 - k]  # the (k+1)-th highest
        threshold = float(np.nextafter(kth_highest, np.inf))
    achieved = float(np.count_nonzero(negatives >= threshold) / n)
    note = None
    if k < _FEW_ERRORS:
        note = f"rests on only {k} {errors[0] if k == 1 else errors[1]} allowed in {n} {comparisons}: a rough estimate"
    return k, threshold, achieved, note


def _join(*notes: str | None) -> str | None:
    present = [n for n in notes if n]
    return "; ".join(present) if present else None


def tar_at_far(genuine: ArrayLike, impostor: ArrayLike, far: float) -> OperatingPoint:
    """TAR at the threshold that holds FAR to ``far``.

    k = floor(far * number of impostor scores) false accepts are allowed. The threshold is the smallest
    float strictly greater than the (k+1)-th highest impostor score, so that at most k impostor scores are
    ``>= threshold`` even when several impostor scores tie there. ``value`` is the fraction of genuine
    scores ``>= threshold`` and ``achieved`` the fraction of impostor scores ``>= threshold``.

    When k == 0 (fewer than 1/far impostor comparisons) the rate cannot be measured: value, threshold and
    achieved are None and the note names the counts. When 1 <= k < 10 the value is given with a note that
    it rests on only k false matches and is rough. With no genuine scores, value is None with a note.
    """
    gen = _scores(genuine, "genuine")
    imp = _scores(impostor, "impostor")
    k, threshold, achieved, note = _hold(imp, gen, far, "FAR", "impostor comparisons", ("false match", "false matches"))
    value = None
    if threshold is not None and len(gen):
        value = float(np.count_nonzero(gen >= threshold) / len(gen))
    if len(gen) == 0:
        note = _join(note, "no genuine comparisons: TAR cannot be measured")
    return OperatingPoint(float(far), value, threshold, k, achieved, note)


def det_curve(genuine: ArrayLike, impostor: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(fmr, fnmr) at every distinct threshold, as in :func:`roc_curve` (fnmr = 1 - tar), for plotting.

    The first point is fmr = 0, fnmr = 1 (threshold +inf); fmr increases and fnmr decreases from there.
    """
    far, tar, _ = roc_curve(genuine, impostor)
    return far, 1.0 - tar


def rates_at_threshold(genuine: ArrayLike, impostor: ArrayLike, threshold: float) -> tuple[float | None, float | None]:
    """(fnmr, fmr) at one threshold: fractions of genuine scores ``< threshold`` and of impostor scores
    ``>= threshold``; None for an empty score set."""
    gen = _scores(genuine, "genuine")
    imp = _scores(impostor, "impostor")
    fnmr = float(np.count_nonzero(gen < threshold) / len(gen)) if len(gen) else None
    fmr = float(np.count_nonzero(imp >= threshold) / len(imp)) if len(imp) else None
    return fnmr, fmr


def ranks(scores: np.ndarray, mates: np.ndarray) -> np.ndarray:
    """Each mate's 1-based rank in its search, counting ties pessimistically.

    ``scores`` is the probes x gallery similarity matrix and ``mates`` gives, for each probe, the gallery
    column of its mate. rank = 1 + the number of OTHER gallery entries scoring ``>=`` the mate's score:
    a tie never helps the mate.
    """
    matrix = np.asarray(scores, dtype=np.float64)
    columns = np.asarray(mates)
    if matrix.ndim != 2:
        raise ValueError(f"scores: expected a probes x gallery matrix, got shape {matrix.shape}")
    if columns.shape != (matrix.shape[0],):
        raise ValueError(f"mates: expected one gallery column per probe ({matrix.shape[0]}), got {columns.shape}")
    if len(columns) == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(columns.dtype, np.integer):
        raise ValueError("mates: expected integer gallery columns")
    if columns.min() < 0 or columns.max() >= matrix.shape[1]:
        raise ValueError(f"mates: gallery columns must lie in 0..{matrix.shape[1] - 1}")
    if np.isnan(matrix).any():
        raise ValueError("scores: contain NaN")
    mate_scores = matrix[np.arange(len(columns)), columns]
    # The mate itself is counted by >= as well, which supplies the 1.
    counts: np.ndarray = np.count_nonzero(matrix >= mate_scores[:, None], axis=1)
    return counts.astype(np.int64)


def _ranks(rank_of_mate: np.ndarray) -> np.ndarray:
    r = np.asarray(rank_of_mate)
    if r.ndim != 1 or len(r) == 0:
        raise ValueError("ranks: expected a non-empty 1-D array (one rank per search)")
    return r.astype(np.int64)


def rank_rates(rank_of_mate: np.ndarray, ks: Sequence[int]) -> dict[int, float]:
    """Fraction of searches whose mate has rank <= k, for each k (a k larger than the gallery is still
    reported, as the fraction at the gallery size)."""
    r = _ranks(rank_of_mate)
    out: dict[int, float] = {}
    for k in ks:
        if k < 1:
            raise ValueError(f"rank {k}: ranks start at 1")
        out[int(k)] = float(np.count_nonzero(r <= k) / len(r))
    return out


def cmc(rank_of_mate: np.ndarray, max_rank: int) -> np.ndarray:
    """Identification rate at ranks 1..max_rank (cumulative match characteristic), length max_rank."""
    if max_rank < 1:
        raise ValueError(f"max_rank {max_rank}: must be at least 1")
    r = np.sort(_ranks(rank_of_mate))
    return np.searchsorted(r, np.arange(1, max_rank + 1), side="right") / len(r)


def fnir_at_fpir(
    mate_scores: ArrayLike, mate_ranks: ArrayLike, nonmated_top: ArrayLike, fpir: float, max_rank: int = 50
) -> OperatingPoint:
    """FNIR at the threshold that holds FPIR to ``fpir``: open-set 1:N as NIST FRVT reports it.

    FPIR(T) is the fraction of non-mated searches whose top candidate scores ``>= T`` (the search produces
    one or more candidates above threshold). FNIR(T) is the fraction of mated searches that fail to return
    the mate above threshold within the candidate list: mate score ``< T`` or mate rank ``> max_rank``.
    T is chosen from the non-mated top scores exactly as :func:`tar_at_far` chooses it from impostor
    scores: k = floor(fpir * non-mated searches); k == 0 is not measurable (with a note naming the counts)
    and 1 <= k < 10 gives a value with a note that it is rough.
    """
    scores = _scores(mate_scores, "mate")
    rank = np.asarray(mate_ranks)
    top = _scores(nonmated_top, "non-mated top")
    if rank.shape != scores.shape:
        raise ValueError(f"mate_ranks: expected one rank per mated search ({len(scores)}), got shape {rank.shape}")
    if max_rank < 1:
        raise ValueError(f"max_rank {max_rank}: must be at least 1")
    k, threshold, achieved, note = _hold(
        top, scores, fpir, "FPIR", "non-mated searches", ("false positive", "false positives")
    )
    value = None
    if threshold is not None and len(scores):
        missed = (scores < threshold) | (rank > max_rank)
        value = float(np.count_nonzero(missed) / len(scores))
    if len(scores) == 0:
        note = _join(note, "no mated searches: FNIR cannot be measured")
    return OperatingPoint(float(fpir), value, threshold, k, achieved, note)


def _best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold that classifies the most pairs correctly (see :func:`pairs_accuracy`)."""
    distinct = np.unique(scores)
    low, high = distinct[:-1], distinct[1:]
    middle = low + (high - low) / 2
    middle = np.where(middle > low, middle, high)  # two adjacent floats: the midpoint rounds onto the lower
    candidates = np.concatenate([[np.nextafter(distinct[0], -np.inf)], middle, [np.nextafter(distinct[-1], np.inf)]])
    same_scores = np.sort(scores[same])
    different_scores = np.sort(scores[~same])
    accepted_same = len(same_scores) - np.searchsorted(same_scores, candidates, side="left")
    rejected_different = np.searchsorted(different_scores, candidates, side="left")
    correct = accepted_same + rejected_different
    best = np.flatnonzero(correct == correct.max())
    return float(candidates[best[(len(best) - 1) // 2]])


def pairs_accuracy(scores: ArrayLike, same: np.ndarray, folds: np.ndarray) -> PairsResult:
    """Accuracy over the folds of a pairs protocol (LFW's "unrestricted" k-fold procedure).

    For each fold f, in sorted order of the fold labels: the threshold is chosen on the OTHER folds as the
    one maximising their accuracy, the fraction of pairs where ``(score >= t) == same``. Candidate thresholds
    are the midpoints between consecutive distinct training scores, plus the float just below the lowest
    (accept all) and the float just above the highest (reject all). Among equally good candidates the median
    one is taken (the lower median for an even count), so the choice is deterministic. Then fold f's accuracy
    is measured with that threshold. The standard deviation is the sample one (ddof=1). Needs at least 2 folds
    (ValueError otherwise).
    """
    s = _scores(scores, "pair")
    is_same = np.asarray(same, dtype=bool)
    fold_of = np.asarray(folds)
    if is_same.shape != s.shape or fold_of.shape != s.shape:
        raise ValueError(
            f"scores, same and folds must have one entry per pair: got {len(s)}, {is_same.shape}, {fold_of.shape}"
        )
    labels = np.unique(fold_of)
    if len(labels) < 2:
        raise ValueError(f"pairs accuracy needs at least 2 folds for cross-validation; got {len(labels)}")
    accuracies: list[float] = []
    thresholds: list[float] = []
    for label in labels:
        test = fold_of == label
        t = _best_threshold(s[~test], is_same[~test])
        accuracies.append(float(np.mean((s[test] >= t) == is_same[test])))
        thresholds.append(t)
    std = float(np.std(accuracies, ddof=1))
    return PairsResult(
        folds=len(labels),
        accuracies=accuracies,
        thresholds=thresholds,
        accuracy_mean=float(np.mean(accuracies)),
        accuracy_std=std,
        accuracy_se=std / math.sqrt(len(labels)),
    )


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """Wilson score interval for a proportion (95% with the default z); None when n == 0.

    Unlike p +/- z * sqrt(p(1-p)/n) it stays inside [0, 1] and does not collapse to a point at 0% or 100%.
    """
    if n == 0:
        return None
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"wilson_interval: need 0 <= successes <= n, got {successes} of {n}")
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # At 0% and 100% one bound is exactly 0 or 1; rounding would leave it a hair inside.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high
