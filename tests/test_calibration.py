"""Score -> likelihood-ratio calibration: Cllr, PAV, logistic calibration, ELUB bounds, verbal scale."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from nomina.calibration import METHODS, VERBAL_SCALE, Calibration, cllr, cllr_min, elub, fit, pav, verbal

LOG10_3 = math.log10(3.0)


def _gaussian_scores(n: int, seed: int, mu1: float = 0.5, mu0: float = 0.2, sigma: float = 0.15):
    rng = np.random.default_rng(seed)
    return rng.normal(mu1, sigma, n), rng.normal(mu0, sigma, n)


# -- Cllr ----------------------------------------------------------------------------------------------


def test_cllr_of_saying_nothing_is_exactly_one_bit():
    # LR = 1 everywhere: 0.5 * (log2(1 + 1) + log2(1 + 1)) = 1
    assert cllr(np.zeros(7), np.zeros(3)) == 1.0


def test_cllr_of_perfect_lrs_is_zero():
    assert cllr([12.0, 30.0], [-12.0, -30.0]) < 1e-11
    assert cllr([np.inf], [-np.inf]) == 0.0


def test_cllr_hand_worked():
    # Genuine LR = 1/3 costs log2(1 + 3) = 2 bits; impostor LR = 3 costs log2(1 + 3) = 2 bits: Cllr = 2.
    assert cllr([-LOG10_3], [LOG10_3]) == pytest.approx(2.0, abs=1e-12)
    # Genuine LRs 1/7 and 1: log2(1 + 7) = 3 and log2(2) = 1, mean 2.
    # Impostor LRs 15, 1 and 1/3: log2(1 + 15) = 4, log2(2) = 1, log2(1 + 1/3) = 2 - log2(3);
    # their mean is (7 - log2 3) / 3. Cllr = 0.5 * (2 + (7 - log2 3) / 3) = 13/6 - log2(3)/6 = 1.9025062...
    value = cllr([-math.log10(7), 0.0], [math.log10(15), 0.0, -LOG10_3])
    assert value == pytest.approx(13 / 6 - math.log2(3) / 6, abs=1e-12)
    assert value == pytest.approx(1.902506, abs=1e-6)


def test_cllr_stays_finite_and_exact_at_extreme_lrs():
    # A genuine LR of 1e-300 costs log2(1 + 1e300) = 300 * log2(10) bits (to 1e-300 relative), likewise the
    # impostor LR of 1e300; the right answers (1e300 / 1e-300) cost nothing.
    assert cllr([300.0], [-300.0]) == pytest.approx(0.0, abs=1e-12)
    assert cllr([-300.0], [300.0]) == pytest.approx(300 * math.log2(10), rel=1e-12)
    assert cllr([-400.0, 400.0], [-400.0]) == pytest.approx(0.25 * 400 * math.log2(10), rel=1e-12)


def test_cllr_refuses_nan_and_empty_input():
    with pytest.raises(ValueError, match="not a number"):
        cllr([np.nan], [0.0])
    with pytest.raises(ValueError, match="no values"):
        cllr([], [0.0])


# -- PAV and Cllr-min ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pav_matches_sklearn_isotonic_regression_with_weights_and_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, 300).astype(float)  # many tied scores
    y = np.where(rng.random(300) < 0.3, rng.random(300), rng.integers(0, 2, 300).astype(float))
    w = rng.uniform(0.1, 3.0, 300)
    expected = IsotonicRegression().fit(x, y, sample_weight=w).predict(x)
    got = pav(x, y, w)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert np.all(np.diff(got[np.argsort(x, kind="stable")]) >= 0)
    assert all(len(set(got[x == v])) == 1 for v in np.unique(x))  # tied scores share one fitted value


def test_pav_unweighted_hand_worked():
    # Labels 1, 0 violate the order and pool to 0.5; the tied scores 3, 3 pool to their mean first.
    np.testing.assert_allclose(pav([1, 2, 3, 3, 4], [1, 0, 0, 1, 1]), [0.5, 0.5, 0.5, 0.5, 1.0])


def test_cllr_min_never_exceeds_the_cllr_of_a_monotonic_mapping_of_the_same_scores():
    genuine, impostor = _gaussian_scores(3000, seed=3)
    for method in METHODS:
        calibration = fit(genuine, impostor, method=method)
        # the stored mapping is non-decreasing in the score, so PAV on these scores can only do better
        in_sample = cllr(calibration.log10_lr(genuine), calibration.log10_lr(impostor))
        assert calibration.cllr_min == cllr_min(genuine, impostor)
        assert calibration.cllr_min <= in_sample
        assert calibration.cllr_min <= calibration.cllr
        assert calibration.cllr - calibration.cllr_min < 0.05  # well calibrated: little calibration loss


def test_cllr_min_of_separated_scores_is_zero():
    assert cllr_min([0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.69]) == 0.0


def test_cllr_min_of_scores_that_say_nothing_is_about_one_bit():
    rng = np.random.default_rng(4)
    value = cllr_min(rng.normal(0, 1, 5000), rng.normal(0, 1, 5000))
    # PAV can never do worse than LR = 1 (1 bit); it fits the sample's chance structure a little, so on
    # 10,000 scores it lands a percent or two below.
    assert 0.97 < value <= 1.0


# -- logistic calibration --------------------------------------------------------------------------------


def test_logistic_calibration_recovers_the_true_lr_of_equal_variance_gaussians():
    mu1, mu0, sigma, n = 0.5, 0.2, 0.15, 20000
    genuine, impostor = _gaussian_scores(n, seed=5, mu1=mu1, mu0=mu0, sigma=sigma)
    b_true = (mu1 - mu0) / sigma**2  # 13.33
    a_true = (mu0**2 - mu1**2) / (2 * sigma**2)  # -4.67
    calibration = fit(genuine, impostor)
    a, b = calibration.params["a"], calibration.params["b"]
    # Tolerance: 4 asymptotic standard errors of the maximum-likelihood estimate. With equal class sizes the
    # equal class weights are uniform weights, so the covariance is the inverse Fisher information
    # sum p(1-p) [1, s][1, s]^T at the true parameters: SE(a) ~ 0.048, SE(b) ~ 0.13 here (100 seeded
    # repetitions gave standard deviations 0.044 and 0.12).
    s = np.concatenate([genuine, impostor])
    p = 1 / (1 + np.exp(-(a_true + b_true * s)))
    design = np.stack([np.ones_like(s), s], axis=1)
    se_a, se_b = np.sqrt(np.diag(np.linalg.inv(design.T @ (design * (p * (1 - p))[:, None]))))
    assert abs(a - a_true) < 4 * se_a
    assert abs(b - b_true) < 4 * se_b
    # Held-out Cllr is that of the true LRs on the same scores, to a few thousandths of a bit (two fitted
    # parameters on 32,000 scores per fold cost ~1e-4 bit; 30 repetitions differed by at most 2e-4).
    true_cllr = cllr((a_true + b_true * genuine) / math.log(10), (a_true + b_true * impostor) / math.log(10))
    assert calibration.cllr == pytest.approx(true_cllr, abs=0.002)
    assert calibration.cllr >= calibration.cllr_min


def test_logistic_calibration_gives_lrs_not_posteriors_when_the_classes_differ_in_size():
    # Ten impostor scores for each genuine one. Unweighted logistic regression would fold the sample's prior
    # log odds, ln(1/10) = -2.30, into the intercept; with the classes weighted equally it estimates the LR.
    # Tolerance: 4 standard deviations of 100 seeded repetitions of this fit (0.13 for a, 0.31 for b).
    mu1, mu0, sigma = 0.5, 0.2, 0.15
    rng = np.random.default_rng(13)
    genuine, impostor = rng.normal(mu1, sigma, 2000), rng.normal(mu0, sigma, 20000)
    calibration = fit(genuine, impostor)
    assert calibration.params["a"] == pytest.approx((mu0**2 - mu1**2) / (2 * sigma**2), abs=0.52)
    assert calibration.params["b"] == pytest.approx((mu1 - mu0) / sigma**2, abs=1.25)


def test_logistic_slope_is_positive_and_finite_even_for_perfectly_separated_scores():
    calibration = fit(np.linspace(0.6, 0.9, 10), np.linspace(0.0, 0.3, 10))
    assert 0 < calibration.params["b"] < 1e4 and math.isfinite(calibration.params["a"])
    # the boundary lies between the classes: LR < 1 at the top impostor score, LR > 1 at the lowest genuine
    assert calibration.log10_lr(0.3) < 0 < calibration.log10_lr(0.6)


def test_pav_calibration_of_gaussian_scores_is_close_to_the_logistic_one():
    genuine, impostor = _gaussian_scores(5000, seed=6)
    logistic, isotonic = fit(genuine, impostor), fit(genuine, impostor, method="pav")
    assert isotonic.cllr == pytest.approx(logistic.cllr, abs=0.02)
    knots, values = isotonic.params["scores"], isotonic.params["log10_lr"]
    assert np.all(np.diff(knots) > 0) and np.all(np.diff(values) >= 0)
    s = np.linspace(0.1, 0.6, 11)
    np.testing.assert_allclose(isotonic.log10_lr(s), logistic.log10_lr(s), atol=0.35)


@pytest.mark.parametrize("seed", range(5))
def test_held_out_cllr_is_not_the_flattering_in_sample_one(seed):
    # PAV fits its own sample closely; on 40 + 40 overlapping scores its Cllr on the scores it was fitted on
    # is well below what it achieves on scores it has not seen, which is what fit() must report.
    rng = np.random.default_rng(seed)
    genuine, impostor = rng.normal(1.5, 1, 40), rng.normal(0, 1, 40)
    calibration = fit(genuine, impostor, method="pav")
    in_sample = cllr(calibration.log10_lr(genuine), calibration.log10_lr(impostor))
    assert calibration.cllr > in_sample + 0.02


# -- bounds (ELUB) ---------------------------------------------------------------------------------------


def test_elub_of_perfect_validation_lrs_is_set_by_the_data_size():
    # Upper side: the added impostor LR t alone costs t / (9 + 1), so NBE < 1 exactly while t < 10:
    # the last grid point before log10 LR = 1 is 0.99. Likewise below with 9 genuine comparisons.
    assert elub([np.inf] * 9, [-np.inf] * 9) == (-0.99, 0.99)
    assert elub([np.inf] * 99, [-np.inf] * 9) == (-1.99, 0.99)


def test_elub_hand_worked_with_one_misleading_lr():
    # 9 genuine LRs at +inf; 8 impostor LRs at -inf and one misleading at LR = 10.
    # Upper side (rho <= 1): NBE = t * (1 + 1) / (9 + 1) < 1  <=>  t < 5  <=>  rho < 0.69897 -> 0.69.
    # Lower side (rho < 0): NBE = (0 + 1) / ((9 + 1) t) + 1/9 < 1  <=>  t > 9/80  <=>  rho > -0.9488 -> -0.94.
    assert elub([np.inf] * 9, [-np.inf] * 8 + [1.0]) == (-0.94, 0.69)


def test_elub_of_a_system_worse_than_saying_nothing_is_zero():
    # Every LR points the wrong way: no threshold beats LR = 1, both bounds collapse to 0 (report LR = 1).
    assert elub([-2.0] * 20, [2.0] * 20) == (0.0, 0.0)


@pytest.mark.parametrize("method", METHODS)
def test_scores_that_say_nothing_are_reported_as_no_support(method):
    # Same distribution for both kinds: whatever the fitted mapping makes of the noise, the ELUB bounds close
    # in on LR = 1, so every score reads "no support for either proposition".
    for seed in range(5):
        rng = np.random.default_rng(seed)
        calibration = fit(rng.normal(0, 1, 300), rng.normal(0, 1, 300), method=method)
        assert -math.log10(2) < calibration.bounds[0] <= 0 <= calibration.bounds[1] < math.log10(2)
        assert {verbal(x) for x in calibration.log10_lr(np.linspace(-5, 5, 41))} == {VERBAL_SCALE[0][1]}
        assert calibration.cllr == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("method", METHODS)
def test_few_scores_never_give_an_lr_stronger_than_the_bounds_even_at_extreme_scores(method):
    genuine, impostor = np.linspace(0.6, 0.9, 10), np.linspace(0.0, 0.3, 12)
    calibration = fit(genuine, impostor, method=method)
    lower, upper = calibration.bounds
    # the bounds themselves can never exceed what the counts support: log10(n of the other kind + 1)
    assert -math.log10(10 + 1) <= lower < 0 < upper <= math.log10(12 + 1)
    scores = np.array([-1e12, -1.0, 0.0, 0.3, 0.45, 0.6, 1.0, 1e12])
    out = calibration.log10_lr(scores)
    assert np.all(out >= lower) and np.all(out <= upper)
    assert out[0] == lower and out[-1] == upper  # perfectly separated data reaches both bounds
    assert calibration.log10_lr(1e300) == upper and calibration.log10_lr(-1e300) == lower


def test_bounds_grow_with_the_amount_of_data():
    small = fit(*_gaussian_scores(30, seed=7, mu1=0.8, mu0=0.1, sigma=0.1))
    large = fit(*_gaussian_scores(3000, seed=7, mu1=0.8, mu0=0.1, sigma=0.1))
    assert small.bounds[1] <= math.log10(31) and small.bounds[0] >= -math.log10(31)
    assert large.bounds[1] > small.bounds[1] + 1 and large.bounds[0] < small.bounds[0] - 1


# -- verbal scale ----------------------------------------------------------------------------------------

SAME = " for the same person rather than different people"
DIFFERENT = " for different people rather than the same person"


@pytest.mark.parametrize(
    ("lr", "words"),
    [
        (1.0, "no support for either proposition"),
        (1.99, "no support for either proposition"),
        (2.0, "weak or limited support"),
        (9.99, "weak or limited support"),
        (10.0, "moderate support"),
        (99.9, "moderate support"),
        (100.0, "moderately strong support"),
        (999.0, "moderately strong support"),
        (1000.0, "strong support"),
        (9999.0, "strong support"),
        (1e4, "very strong support"),
        (999_999.0, "very strong support"),
        (1e6, "extremely strong support"),
        (1e30, "extremely strong support"),
    ],
)
def test_verbal_bands_and_their_mirror_for_lr_below_one(lr, words):
    x = math.log10(lr)
    if words.startswith("no support"):
        assert verbal(x) == verbal(-x) == words
    else:
        assert verbal(x) == words + SAME
        assert verbal(-x) == words + DIFFERENT  # LR = 1/lr: the same strength for the other proposition


def test_verbal_at_exact_log10_boundaries_and_infinity():
    assert verbal(math.log10(2)) == "weak or limited support" + SAME
    assert verbal(math.nextafter(math.log10(2), 0)) == "no support for either proposition"
    assert verbal(-math.log10(2)) == "weak or limited support" + DIFFERENT  # LR = 1/2
    assert verbal(2.0) == "moderately strong support" + SAME
    assert verbal(math.nextafter(2.0, 0)) == "moderate support" + SAME
    assert verbal(-6.0) == "extremely strong support" + DIFFERENT
    assert verbal(math.inf) == "extremely strong support" + SAME
    assert verbal(0.0) == "no support for either proposition"
    with pytest.raises(ValueError):
        verbal(math.nan)


def test_verbal_scale_table_is_the_enfsi_boundaries_in_order():
    bounds = [b for b, _ in VERBAL_SCALE]
    assert bounds == [0.0, math.log10(2), 1.0, 2.0, 3.0, 4.0, 6.0]
    assert [verbal(b + 1e-9) for b in bounds[1:]] == [words + SAME for _, words in VERBAL_SCALE[1:]]


# -- storage ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_to_dict_from_dict_round_trip_through_json(method):
    genuine, impostor = _gaussian_scores(200, seed=8)
    calibration = fit(genuine, impostor, method=method, data={"dataset": "lfw", "model": "sface", "pairs": 400})
    text = json.dumps(calibration.to_dict(), allow_nan=False)  # strict JSON: no Infinity or NaN anywhere
    again = Calibration.from_dict(json.loads(text))
    assert again == calibration
    s = np.linspace(-1, 1, 21)
    np.testing.assert_array_equal(again.log10_lr(s), calibration.log10_lr(s))


def _stored() -> dict:
    return fit(*_gaussian_scores(50, seed=9)).to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("bounds"), "missing field"),
        (lambda d: d.update(extra=1), "unknown field"),
        (lambda d: d.update(method="kde"), "calibration.method"),
        (lambda d: d.update(params={"a": 1.0}), "calibration.params"),
        (lambda d: d["params"].update(b="steep"), "calibration.params.b"),
        (lambda d: d["params"].update(a=float("nan")), "calibration.params.a"),
        (lambda d: d.update(bounds=[-1.0]), "calibration.bounds"),
        (lambda d: d.update(bounds=[0.5, 2.0]), "calibration.bounds"),
        (lambda d: d.update(genuine=-3), "calibration.genuine"),
        (lambda d: d.update(impostor=True), "calibration.impostor"),
        (lambda d: d.update(cllr=-0.1), "calibration.cllr"),
        (lambda d: d.update(data=["lfw"]), "calibration.data"),
        (
            lambda d: d.update(method="pav", params={"scores": [0.2, 0.1], "log10_lr": [-1.0, 1.0]}),
            "strictly increasing",
        ),
        (lambda d: d.update(method="pav", params={"scores": [0.1, 0.2], "log10_lr": [1.0, -1.0]}), "non-decreasing"),
        (lambda d: d.update(method="pav", params={"scores": [0.1, 0.2], "log10_lr": [1.0]}), "as many"),
    ],
)
def test_from_dict_rejects_a_malformed_dict(change, message):
    d = _stored()
    Calibration.from_dict(d)  # the unchanged dict is fine
    change(d)
    with pytest.raises(ValueError, match=message):
        Calibration.from_dict(d)


def test_from_dict_rejects_something_that_is_not_a_dict():
    with pytest.raises(ValueError, match="expected a dict"):
        Calibration.from_dict([1, 2])  # type: ignore[arg-type]


# -- fit's contract --------------------------------------------------------------------------------------


def test_fit_refuses_too_little_data():
    with pytest.raises(ValueError, match=r"too few genuine .* 9, need at least 10"):
        fit(np.linspace(0.5, 0.9, 9), np.linspace(0.0, 0.4, 50))
    with pytest.raises(ValueError, match=r"too few impostor .* 5, need at least 6 \(2 per fold, 3 folds\)"):
        fit(np.linspace(0.5, 0.9, 50), np.linspace(0.0, 0.4, 5), folds=3)
    fit(np.linspace(0.5, 0.9, 6), np.linspace(0.0, 0.4, 6), folds=3)  # exactly 2 per fold is enough


def test_fit_refuses_an_unknown_method_bad_folds_and_non_finite_scores():
    genuine, impostor = _gaussian_scores(50, seed=10)
    with pytest.raises(ValueError, match="unknown calibration method 'kde'"):
        fit(genuine, impostor, method="kde")
    with pytest.raises(ValueError, match="folds"):
        fit(genuine, impostor, folds=1)
    with pytest.raises(ValueError, match="finite"):
        fit(np.append(genuine, np.nan), impostor)


def test_fit_is_deterministic_for_a_seed_and_records_what_it_was_fitted_on():
    genuine, impostor = _gaussian_scores(300, seed=11)
    first = fit(genuine, impostor, method="pav", seed=3, data={"dataset": "x"})
    assert fit(genuine, impostor, method="pav", seed=3, data={"dataset": "x"}) == first
    assert fit(genuine, impostor, method="pav", seed=4).cllr != first.cllr  # the seed does choose the folds
    assert (first.genuine, first.impostor, first.folds, first.data) == (300, 300, 5, {"dataset": "x"})


def test_log10_lr_keeps_the_shape_of_its_input_and_refuses_non_finite_scores():
    calibration = fit(*_gaussian_scores(100, seed=12))
    assert isinstance(calibration.log10_lr(0.4), float)
    assert calibration.log10_lr(np.zeros((2, 3))).shape == (2, 3)
    with pytest.raises(ValueError, match="finite"):
        calibration.log10_lr(np.array([0.1, np.nan]))
