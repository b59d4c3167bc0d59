"""Similarity score -> likelihood ratio: calibration fitted on labelled comparisons, in plain numpy.

An examiner is never shown a raw similarity or a "confidence". Instead a mapping fitted on *genuine*
(same person) and *impostor* (different people) scores turns a score s into a likelihood ratio

    LR(s) = p(s | same person) / p(s | different people),

reported as LR, log10 LR and the verbal equivalent of the ENFSI guideline (:func:`verbal`).

Two mappings (``METHODS``), both from the forensic-biometrics literature:

- ``"logistic"``: logistic-regression calibration, ln LR = a + b*s, with the two classes weighted equally
  (as in Brümmer's FoCal toolkit and Morrison's 2013 tutorial), so that a + b*s is directly a log likelihood
  ratio, with no prior odds to remove;
- ``"pav"``: the pool-adjacent-violators (isotonic) mapping, the best any non-decreasing function of the
  scores can do on the data it is fitted on, with linear interpolation between its knots.

Every reported value is limited by bounds that depend on how much data there is (:func:`elub`, the empirical
lower and upper bounds of Vergeer et al. 2016): an LR of a million cannot be supported by a thousand
impostor comparisons. Performance is measured by Cllr (:func:`cllr`, Brümmer & du Preez 2006) on held-out
folds, and Cllr-min (:func:`cllr_min`) says how much of it is discrimination rather than calibration.

References:

- N. Brümmer, J. du Preez, "Application-independent evaluation of speaker detection", Computer Speech and
  Language 20 (2006) 230-275: Cllr and its PAV-based minimum.
- G.S. Morrison, "Tutorial on logistic-regression calibration and fusion: converting a score to a likelihood
  ratio", Australian Journal of Forensic Sciences 45 (2013) 173-197.
- P. Vergeer, A. van Es, A. de Jongh, I. Alberink, R. Stoel, "Numerical likelihood ratios outputted by LR
  systems are often based on extrapolation: when to stop extrapolating?", Science & Justice 56 (2016) 482-491.
- ENFSI Guideline for Evaluative Reporting in Forensic Science (2015), verbal equivalents of LR values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "METHODS",
    "VERBAL_SCALE",
    "Calibration",
    "Evidence",
    "cllr",
    "cllr_min",
    "elub",
    "fit",
    "lr_text",
    "pav",
    "significant",
    "verbal",
]

METHODS = ("logistic", "pav")

#: ENFSI (2015) verbal equivalents: (lowest |log10 LR| of the band, words). A band runs from its own bound
#: (included) to the next one (excluded); the words are completed by the proposition supported, see verbal().
VERBAL_SCALE: tuple[tuple[float, str], ...] = (
    (0.0, "no support for either proposition"),
    (math.log10(2.0), "weak or limited support"),
    (1.0, "moderate support"),
    (2.0, "moderately strong support"),
    (3.0, "strong support"),
    (4.0, "very strong support"),
    (6.0, "extremely strong support"),
)

_SAME = "the same person rather than different people"
_DIFFERENT = "different people rather than the same person"
_LN10 = math.log(10.0)
# Logistic regression: L2 penalty on the coefficients of the standardised score (the loss is a weighted mean
# whose weights sum to one, so this is a millionth of a unit of curvature), Newton iterations and stop rule.
_RIDGE = 1e-6
_NEWTON_ITERATIONS = 100
_NEWTON_TOLERANCE = 1e-10
# ELUB: resolution of the search for the bounds, in log10 units (the paper's 0.01).
_ELUB_STEP = 0.01
_PARAM_KEYS = {"logistic": ("a", "b"), "pav": ("scores", "log10_lr")}
_DICT_KEYS = ("method", "params", "bounds", "genuine", "impostor", "cllr", "cllr_min", "folds", "data")

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Evidence:
    """The strength of evidence of one score: its likelihood ratio and the ENFSI verbal equivalent."""

    log10_lr: float
    verbal: str

    @property
    def lr(self) -> float:
        return float(10.0**self.log10_lr)

    def text(self) -> str:
        """``LR 1,300 (log10 3.11): strong support for ...``; an LR below 1 is written 1/x."""
        return f"LR {lr_text(self.lr)} (log10 {self.log10_lr:+.2f}): {self.verbal}"

    def as_dict(self) -> dict[str, Any]:
        return {"lr": _sig_float(self.lr), "log10_lr": round(self.log10_lr, 3), "verbal": self.verbal}


def lr_text(lr: float) -> str:
    """An LR to two significant figures, below 1 written 1/x so both directions read alike: 1,300; 1/25."""
    return significant(lr) if lr >= 1 else "1/" + significant(1 / lr)


def significant(x: float) -> str:
    """A number of at least 1 to two significant figures, with thousands separators: 2.5, 25, 3,200."""
    rounded = _sig_float(x)
    return f"{int(rounded):,}" if rounded >= 100 else f"{rounded:g}"


def _sig_float(x: float) -> float:
    return float(f"{x:.2g}")


@dataclass(frozen=True)
class Calibration:
    """A fitted score -> likelihood-ratio mapping and what it was fitted on.

    ``params`` holds, for ``"logistic"``, ``{"a": a, "b": b}`` with ln LR = a + b*s; for ``"pav"``,
    ``{"scores": [...], "log10_lr": [...]}``: knots (scores strictly increasing, values non-decreasing and
    already limited to ``bounds``) joined by straight lines, flat beyond the first and last knot. ``bounds``
    limits every log10 LR this object returns. ``cllr`` and ``cllr_min`` are in bits, measured on held-out
    folds (see :func:`fit`); ``data`` describes the comparisons (dataset, model, ...) and is the caller's.

    Constructing one checks every field and raises ValueError when one is malformed.
    """

    method: str
    params: dict[str, Any]
    bounds: tuple[float, float]
    genuine: int
    impostor: int
    cllr: float | None
    cllr_min: float | None
    folds: int
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_calibration(self)

    @overload
    def log10_lr(self, scores: float) -> float: ...

    @overload
    def log10_lr(self, scores: Sequence[float] | NDArray[Any]) -> FloatArray: ...

    def log10_lr(self, scores: float | Sequence[float] | NDArray[Any]) -> float | FloatArray:
        """log10 LR of each score, limited to ``bounds``: a float for a float, an array for an array.

        Raises ValueError for a score that is not a finite number.
        """
        s = np.asarray(scores, dtype=np.float64)
        if not np.all(np.isfinite(s)):
            raise ValueError("scores must be finite numbers")
        lo, hi = self.bounds
        if self.method == "logistic":
            raw = (self.params["a"] + self.params["b"] * s) / _LN10
        else:
            raw = np.interp(s, self.params["scores"], self.params["log10_lr"])
        out = np.clip(raw, lo, hi)
        return float(out) if s.ndim == 0 else out

    def evidence(self, score: float) -> Evidence:
        """The likelihood ratio of one score with its verbal equivalent."""
        x = self.log10_lr(float(score))
        return Evidence(x, verbal(x))

    def describe(self) -> str:
        """One line naming the data the calibration was fitted on, for results and reports."""
        d = self.data
        where = f" of {d['photos']} photos of {d['identities']} people in {d['dataset']}" if "dataset" in d else ""
        cllr = "" if self.cllr is None else f"; Cllr {self.cllr:.3f} bits on held-out folds"
        return (
            f"{self.method} calibration fitted on {self.genuine} same-person and {self.impostor} "
            f"different-person pairs{where}{cllr}; LRs limited to 10^{self.bounds[0]:g}..10^{self.bounds[1]:g}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description; :meth:`from_dict` turns it back into an equal Calibration."""
        if self.method == "logistic":
            params: dict[str, Any] = {"a": self.params["a"], "b": self.params["b"]}
        else:
            params = {"scores": list(self.params["scores"]), "log10_lr": list(self.params["log10_lr"])}
        return {
            "method": self.method,
            "params": params,
            "bounds": [self.bounds[0], self.bounds[1]],
            "genuine": self.genuine,
            "impostor": self.impostor,
            "cllr": self.cllr,
            "cllr_min": self.cllr_min,
            "folds": self.folds,
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        """The Calibration :meth:`to_dict` described; ValueError naming the field when ``d`` is malformed."""
        if not isinstance(d, dict):
            raise ValueError(f"calibration: expected a dict, got {type(d).__name__}")
        missing = [k for k in _DICT_KEYS if k not in d]
        extra = sorted(str(k) for k in d if k not in _DICT_KEYS)
        if missing:
            raise ValueError(f"calibration: missing field(s) {', '.join(missing)}")
        if extra:
            raise ValueError(f"calibration: unknown field(s) {', '.join(extra)}")
        method = d["method"]
        if method not in METHODS:
            raise ValueError(f"calibration.method: expected one of {', '.join(METHODS)}, got {method!r}")
        raw = d["params"]
        if not isinstance(raw, dict) or set(raw) != set(_PARAM_KEYS[method]):
            raise ValueError(f"calibration.params: {method} needs exactly the keys {', '.join(_PARAM_KEYS[method])}")
        if method == "logistic":
            params: dict[str, Any] = {k: _number(raw[k], f"calibration.params.{k}") for k in ("a", "b")}
        else:
            params = {k: _numbers(raw[k], f"calibration.params.{k}") for k in ("scores", "log10_lr")}
        bounds = d["bounds"]
        if not isinstance(bounds, list | tuple) or len(bounds) != 2:
            raise ValueError("calibration.bounds: expected [lower, upper]")
        return cls(
            method=method,
            params=params,
            bounds=(_number(bounds[0], "calibration.bounds"), _number(bounds[1], "calibration.bounds")),
            genuine=d["genuine"],
            impostor=d["impostor"],
            cllr=None if d["cllr"] is None else _number(d["cllr"], "calibration.cllr"),
            cllr_min=None if d["cllr_min"] is None else _number(d["cllr_min"], "calibration.cllr_min"),
            folds=d["folds"],
            data=d["data"],
        )


def fit(
    genuine: ArrayLike,
    impostor: ArrayLike,
    method: str = "logistic",
    folds: int = 5,
    seed: int = 0,
    data: dict[str, Any] | None = None,
) -> Calibration:
    """Fit a score -> LR mapping on all the scores and measure it honestly on held-out folds.

    The stored mapping is fitted on all the scores. To measure it, each kind of score is split at random
    (seeded, so the result is reproducible) into ``folds`` folds of near-equal size; for each fold the mapping
    is fitted on the other folds and gives the log10 LRs of the held-out one. The pooled held-out log10 LRs
    are the validation set of the ELUB method (:func:`elub`), which sets ``bounds``; ``cllr`` is the Cllr of
    the held-out log10 LRs limited to those bounds; ``cllr_min`` is :func:`cllr_min` of the scores.

    A PAV mapping gives infinite LRs at its ends; its knots are limited to the bounds (for the held-out LRs
    used to choose the bounds, to the widest bounds ELUB can return, ±log10 of the count of the other kind
    + 1, beyond which no validation LR changes the result).

    ``data`` (dataset, model, ...) is stored as given. Raises ValueError for an unknown method, fewer than two
    folds, a score that is not a finite number, or fewer than 2 scores of either kind per fold.
    """
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be a whole number of at least 2, got {folds!r}")
    g = _scores(genuine, "genuine")
    i = _scores(impostor, "impostor")
    for name, kind, scores in (("genuine", "same-person", g), ("impostor", "different-person", i)):
        if len(scores) < 2 * folds:
            raise ValueError(
                f"too few {name} ({kind}) scores to calibrate: {len(scores)}, need at least {2 * folds} "
                f"(2 per fold, {folds} folds)"
            )
    rng = np.random.default_rng(seed)
    fold_g = _fold_of(len(g), folds, rng)
    fold_i = _fold_of(len(i), folds, rng)
    fitted = [_fit_mapping(method, g[fold_g != k], i[fold_i != k]) for k in range(folds)]

    def held_out(limits: tuple[float, float]) -> tuple[FloatArray, FloatArray]:
        out_g, out_i = np.empty(len(g)), np.empty(len(i))
        for k, mapping in enumerate(fitted):
            out_g[fold_g == k] = _apply(mapping, g[fold_g == k], limits)
            out_i[fold_i == k] = _apply(mapping, i[fold_i == k], limits)
        return out_g, out_i

    widest = (-math.log10(len(g) + 1), math.log10(len(i) + 1))
    bounds = elub(*held_out(widest))
    measured = cllr(*held_out(bounds))
    if method == "logistic":
        a, b = _fit_logistic(g, i)
        params: dict[str, Any] = {"a": a, "b": b}
    else:
        knots, values = _fit_pav(g, i)
        params = {"scores": knots.tolist(), "log10_lr": np.clip(values, *bounds).tolist()}
    return Calibration(
        method=method,
        params=params,
        bounds=bounds,
        genuine=len(g),
        impostor=len(i),
        cllr=measured,
        cllr_min=cllr_min(g, i),
        folds=folds,
        data=dict(data or {}),
    )


def cllr(log10_lr_genuine: ArrayLike, log10_lr_impostor: ArrayLike) -> float:
    """Log-likelihood-ratio cost in bits (Brümmer & du Preez 2006), from log10 LRs of both kinds.

    Cllr = 0.5 * (mean(log2(1 + 1/LR_genuine)) + mean(log2(1 + LR_impostor))). 0 is perfect, 1 is what
    always answering LR = 1 costs, more than 1 is worse than saying nothing. Computed as
    log2(1 + 10^x) = logaddexp(0, x ln 10) / ln 2, exact for any |log10 LR| and for infinite ones.
    """
    g = _log10_lrs(log10_lr_genuine, "log10_lr_genuine")
    i = _log10_lrs(log10_lr_impostor, "log10_lr_impostor")
    cost_g = np.logaddexp(0.0, -g * _LN10).mean() / math.log(2.0)
    cost_i = np.logaddexp(0.0, i * _LN10).mean() / math.log(2.0)
    return float(0.5 * (cost_g + cost_i))


def cllr_min(genuine_scores: ArrayLike, impostor_scores: ArrayLike) -> float:
    """Cllr after the optimal non-decreasing calibration of the scores themselves (discrimination only).

    The scores are mapped by PAV (:func:`pav`, classes weighted equally) to posterior probabilities under
    equal priors, which are then log likelihood ratios; no non-decreasing mapping of these scores can have
    a lower Cllr on them (Brümmer & du Preez 2006). A perfectly separated set gives 0, scores that say
    nothing give about 1 (a little less, because PAV fits the sample).
    """
    g = _scores(genuine_scores, "genuine_scores")
    i = _scores(impostor_scores, "impostor_scores")
    fitted = _log10_odds(pav(*_labelled(g, i)))
    return cllr(fitted[: len(g)], fitted[len(g) :])


def pav(scores: ArrayLike, labels: ArrayLike, weights: ArrayLike | None = None) -> FloatArray:
    """Pool-adjacent-violators: the weighted least-squares non-decreasing fit of ``labels`` on ``scores``.

    Returns the fitted value of each input, in input order. Equal scores are pooled first (their weighted
    mean label), so they always get the same fitted value. With 0/1 labels the fitted values are
    probabilities of label 1; ``weights`` (positive, default all 1) weight each input.
    """
    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    if x.ndim != 1 or y.shape != x.shape or w.shape != x.shape or len(x) == 0:
        raise ValueError("pav: scores, labels and weights must be non-empty 1-D arrays of the same length")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(np.isfinite(w))):
        raise ValueError("pav: scores, labels and weights must be finite numbers")
    if np.any(w <= 0):
        raise ValueError("pav: weights must be positive")
    _, inverse, fitted = _pav_unique(x, y, w)
    return fitted[inverse]


def elub(log10_lr_genuine: ArrayLike, log10_lr_impostor: ArrayLike, step: float = _ELUB_STEP) -> tuple[float, float]:
    """Empirical lower and upper bounds on log10 LR (Vergeer et al. 2016), from validation log10 LRs.

    For a threshold rho = log10 t, the normalised Bayes error of deciding "same person" when LR > t,
    compared with a system that always says LR = 1, is (rho >= 0)

        NBE(rho) = t * P(impostor LR >= t) + P(genuine LR < t)

    and for rho < 0, divided by t so that the neutral system scores 1 on both sides,

        NBE(rho) = P(genuine LR <= t) / t + P(impostor LR > t).

    As in the paper, one misleading LR of the threshold's own strength is added before each evaluation: an
    impostor comparison with LR = t for rho >= 0, a genuine one with LR = t for rho < 0. The upper bound is
    the highest threshold on the grid 0, step, 2*step, ... below which the system so handicapped still does
    better than neutral (NBE < 1) at every threshold; the lower bound likewise on 0, -step, -2*step, ...
    (a bound is 0 when the first step already fails). Where the authors' code reads the bounds off the whole
    range where NBE < 1, this stops at the first failure going out from 0, which is the same for a
    well-behaved system and never less cautious.

    The added LR alone costs t / (n_impostor + 1), so the upper bound is always below log10(n_impostor + 1)
    and the lower bound above -log10(n_genuine + 1): no LR stronger than the count of comparisons of the
    other kind can justify. Infinite validation LRs are allowed.
    """
    g = np.sort(_log10_lrs(log10_lr_genuine, "log10_lr_genuine"))
    i = np.sort(_log10_lrs(log10_lr_impostor, "log10_lr_impostor"))
    if not step > 0:
        raise ValueError(f"elub: step must be positive, got {step!r}")
    ng, ni = len(g), len(i)

    rho = _grid(math.log10(ni + 1), step)
    t = 10.0**rho
    impostor_at_or_above = ni - np.searchsorted(i, rho, side="left")
    genuine_below = np.searchsorted(g, rho, side="left")
    nbe_up = t * (impostor_at_or_above + 1) / (ni + 1) + genuine_below / ng
    upper = _last_before_failure(rho, nbe_up)

    rho = -_grid(math.log10(ng + 1), step)[1:]
    t = 10.0**rho
    genuine_at_or_below = np.searchsorted(g, rho, side="right")
    impostor_above = ni - np.searchsorted(i, rho, side="right")
    nbe_low = (genuine_at_or_below + 1) / ((ng + 1) * t) + impostor_above / ni
    lower = _last_before_failure(rho, nbe_low)
    return lower, upper


def verbal(log10_lr: float) -> str:
    """The verbal equivalent of an LR, stated for the proposition it supports.

    Scale: ENFSI Guideline for Evaluative Reporting in Forensic Science (European Network of Forensic Science
    Institutes, 2015), table of verbal equivalents: LR 2-10 weak (or limited) support, 10-100 moderate,
    100-1,000 moderately strong, 1,000-10,000 strong, 10,000-1,000,000 very strong, 1,000,000 and above
    extremely strong; LR = 1 supports neither proposition. The guideline's ranges share their end points;
    here each band includes its lower end (LR = 100 is moderately strong support). An LR between 1/2 and 2,
    which the guideline's table leaves between "1" and "2-10", supports neither proposition. An LR below 1
    is read as 1/LR on the same scale for the other proposition, e.g. log10 LR = -2.5 gives "moderately
    strong support for different people rather than the same person". See ``VERBAL_SCALE``.
    """
    x = float(log10_lr)
    if math.isnan(x):
        raise ValueError("verbal: log10 LR is not a number")
    words = [text for bound, text in VERBAL_SCALE if abs(x) >= bound][-1]
    if words == VERBAL_SCALE[0][1]:
        return words
    return f"{words} for {_SAME if x > 0 else _DIFFERENT}"


# -- fitting -------------------------------------------------------------------------------------------

Mapping = tuple[float, float] | tuple[FloatArray, FloatArray]


def _fit_mapping(method: str, genuine: FloatArray, impostor: FloatArray) -> Mapping:
    if method == "logistic":
        return _fit_logistic(genuine, impostor)
    return _fit_pav(genuine, impostor)


def _apply(mapping: Mapping, scores: FloatArray, limits: tuple[float, float]) -> FloatArray:
    """log10 LRs of a mapping from _fit_mapping, limited to ``limits`` (PAV: knot values limited first)."""
    first, second = mapping
    if isinstance(first, float) and isinstance(second, float):
        raw = (first + second * scores) / _LN10
    else:
        raw = np.interp(scores, first, np.clip(second, *limits))
    return np.clip(raw, *limits)


def _fit_logistic(genuine: FloatArray, impostor: FloatArray) -> tuple[float, float]:
    """(a, b) of ln LR = a + b*s, by prior-weighted logistic regression (FoCal's objective at P = 1/2).

    Minimises 0.5 * mean over genuine of ln(1 + exp(-(a + b s))) + 0.5 * mean over impostor of
    ln(1 + exp(a + b s)): each class carries half the weight whatever its size, so the fitted log odds are
    log likelihood ratios. The score is standardised first (so the fit does not depend on its units) and a
    ridge penalty of 1e-6/2 * (alpha^2 + beta^2) on the standardised coefficients keeps them finite when the
    classes are perfectly separated (the unpenalised optimum is then at infinity); it moves the estimates of
    overlapping classes by about a millionth. Newton-Raphson with step halving until the loss decreases,
    stopped when a step changes no coefficient by more than 1e-10 (relative), at most 100 steps.
    """
    s = np.concatenate([genuine, impostor])
    y = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    w = np.concatenate([np.full(len(genuine), 0.5 / len(genuine)), np.full(len(impostor), 0.5 / len(impostor))])
    centre = float(s.mean())
    spread = float(s.std()) or 1.0
    z = (s - centre) / spread
    sign = 2.0 * y - 1.0

    def loss(theta: FloatArray) -> float:
        eta = theta[0] + theta[1] * z
        return float(w @ np.logaddexp(0.0, -sign * eta) + 0.5 * _RIDGE * theta @ theta)

    theta = np.zeros(2)
    current = loss(theta)
    for _ in range(_NEWTON_ITERATIONS):
        eta = theta[0] + theta[1] * z
        p = 0.5 * (1.0 + np.tanh(0.5 * eta))  # logistic sigmoid without overflow
        r = w * (p - y)
        grad = np.array([r.sum(), r @ z]) + _RIDGE * theta
        h = w * p * (1.0 - p)
        hz = h @ z
        hessian = np.array([[h.sum() + _RIDGE, hz], [hz, h @ (z * z) + _RIDGE]])
        step = np.linalg.solve(hessian, grad)
        scale = 1.0
        while True:
            candidate = theta - scale * step
            value = loss(candidate)
            if value <= current or scale < 1e-12:
                break
            scale *= 0.5
        change = np.abs(candidate - theta)
        theta, current = candidate, value
        if np.all(change <= _NEWTON_TOLERANCE * (1.0 + np.abs(theta))):
            break
    alpha, beta = float(theta[0]), float(theta[1])
    return alpha - beta * centre / spread, beta / spread


def _fit_pav(genuine: FloatArray, impostor: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Knots (scores, log10 LRs) of the PAV mapping: each pooled block's first and last score, its value.

    Classes weighted equally, so the block's posterior log odds are its log LR; the lowest block is -inf
    when it holds only impostor scores and the highest +inf when it holds only genuine ones.
    """
    unique, _, fitted = _pav_unique(*_labelled(genuine, impostor))
    changes = np.flatnonzero(fitted[1:] != fitted[:-1]) + 1
    starts = np.concatenate([[0], changes])
    ends = np.concatenate([changes - 1, [len(unique) - 1]])
    keep = np.sort(np.unique(np.concatenate([starts, ends])))
    return unique[keep], _log10_odds(fitted[keep])


def _labelled(genuine: FloatArray, impostor: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Scores, labels (1 genuine, 0 impostor) and weights giving each class half the total weight."""
    scores = np.concatenate([genuine, impostor])
    labels = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    weights = np.concatenate([np.full(len(genuine), 0.5 / len(genuine)), np.full(len(impostor), 0.5 / len(impostor))])
    return scores, labels, weights


def _pav_unique(x: FloatArray, y: FloatArray, w: FloatArray) -> tuple[FloatArray, NDArray[np.intp], FloatArray]:
    """Sorted unique scores, each input's index among them, and the isotonic fit at each unique score."""
    unique, inverse = np.unique(x, return_inverse=True)
    weight = np.bincount(inverse, weights=w, minlength=len(unique))
    mean = np.bincount(inverse, weights=w * y, minlength=len(unique)) / weight
    # Neighbours with equal means always share a fitted value (averaging them can only lower the squared
    # error), so runs of them enter the stack as one block: with 0/1 labels that is every run of one class.
    run_starts = np.flatnonzero(np.concatenate([[True], mean[1:] != mean[:-1]]))
    run_sizes = np.diff(np.concatenate([run_starts, [len(unique)]]))
    values: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for value, wt, size in zip(
        mean[run_starts].tolist(), np.add.reduceat(weight, run_starts).tolist(), run_sizes.tolist(), strict=True
    ):
        while values and values[-1] >= value:
            previous, previous_weight = values.pop(), weights.pop()
            value = (previous * previous_weight + value * wt) / (previous_weight + wt)
            wt += previous_weight
            size += sizes.pop()
        values.append(value)
        weights.append(wt)
        sizes.append(size)
    return unique, inverse.reshape(-1), np.repeat(np.array(values), sizes)


def _log10_odds(p: FloatArray) -> FloatArray:
    """log10(p / (1 - p)), -inf at 0 and +inf at 1, without warnings."""
    out = np.empty_like(p)
    low, high = p <= 0.0, p >= 1.0
    inside = ~(low | high)
    out[low], out[high] = -np.inf, np.inf
    out[inside] = np.log10(p[inside]) - np.log10(1.0 - p[inside])
    return out


def _fold_of(n: int, folds: int, rng: np.random.Generator) -> NDArray[np.intp]:
    """Fold number of each of n items: a seeded shuffle dealt round the folds, so sizes differ by at most one."""
    fold = np.empty(n, dtype=np.intp)
    fold[rng.permutation(n)] = np.arange(n) % folds
    return fold


def _grid(end: float, step: float) -> FloatArray:
    """0, step, 2*step, ... up to one step past ``end``, rounded so that 0.01 * 100 is exactly 1."""
    count = math.ceil(end / step) + 2
    return np.round(np.arange(count) * step, 12)


def _last_before_failure(rho: FloatArray, nbe: FloatArray) -> float:
    failed = np.flatnonzero(nbe >= 1.0)
    first = int(failed[0]) if len(failed) else len(rho)
    return 0.0 if first == 0 else float(rho[first - 1])


# -- checks --------------------------------------------------------------------------------------------


def _scores(values: ArrayLike, name: str) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a list of numbers") from None
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a flat list of numbers, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: every score must be a finite number")
    return arr


def _log10_lrs(values: ArrayLike, name: str) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a list of numbers") from None
    if len(arr) == 0:
        raise ValueError(f"{name}: no values")
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name}: a log10 LR is not a number")
    return arr


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def _numbers(value: Any, name: str) -> list[float]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{name}: expected a list of numbers")
    return [_number(v, name) for v in value]


def _count(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}: expected a whole number >= 0, got {value!r}")


def _check_calibration(c: Calibration) -> None:
    if c.method not in METHODS:
        raise ValueError(f"calibration.method: expected one of {', '.join(METHODS)}, got {c.method!r}")
    if not isinstance(c.params, dict) or set(c.params) != set(_PARAM_KEYS[c.method]):
        raise ValueError(f"calibration.params: {c.method} needs exactly the keys {', '.join(_PARAM_KEYS[c.method])}")
    if c.method == "logistic":
        for key in ("a", "b"):
            _number(c.params[key], f"calibration.params.{key}")
    else:
        knots = _numbers(c.params["scores"], "calibration.params.scores")
        values = _numbers(c.params["log10_lr"], "calibration.params.log10_lr")
        if not knots or len(knots) != len(values):
            raise ValueError("calibration.params: pav needs as many log10_lr values as scores, at least one")
        if any(b <= a for a, b in zip(knots, knots[1:], strict=False)):
            raise ValueError("calibration.params.scores: knots must be strictly increasing")
        if any(b < a for a, b in zip(values, values[1:], strict=False)):
            raise ValueError("calibration.params.log10_lr: values must be non-decreasing")
    if not isinstance(c.bounds, tuple) or len(c.bounds) != 2:
        raise ValueError("calibration.bounds: expected (lower, upper)")
    lower = _number(c.bounds[0], "calibration.bounds")
    upper = _number(c.bounds[1], "calibration.bounds")
    if not lower <= 0.0 <= upper:
        raise ValueError(f"calibration.bounds: expected lower <= 0 <= upper, got {c.bounds!r}")
    _count(c.genuine, "calibration.genuine")
    _count(c.impostor, "calibration.impostor")
    _count(c.folds, "calibration.folds")
    for name, value in (("cllr", c.cllr), ("cllr_min", c.cllr_min)):
        if value is not None and _number(value, f"calibration.{name}") < 0:
            raise ValueError(f"calibration.{name}: expected a number >= 0, got {value!r}")
    if not isinstance(c.data, dict) or not all(isinstance(k, str) for k in c.data):
        raise ValueError("calibration.data: expected a dict with text keys")
