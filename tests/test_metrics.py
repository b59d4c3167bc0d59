"""The accuracy measures behind ``nomina evaluate``: answers worked out by hand, and scikit-learn as a
reference on larger data with ties."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from nomina.evaluation import metrics

# Set A, no ties. Ascending: 0.1i 0.2i 0.3i 0.4g 0.5i 0.6g 0.7i 0.8g 0.9g
GEN_A = [0.9, 0.8, 0.6, 0.4]
IMP_A = [0.7, 0.5, 0.3, 0.2, 0.1]
# Set B, ties between genuine and impostor scores (0.7, 0.5) and between impostors (0.5, 0.5).
GEN_B = [0.9, 0.7, 0.7, 0.5, 0.3]
IMP_B = [0.7, 0.5, 0.5, 0.4, 0.2, 0.1]


def above(x: float) -> float:
    return float(np.nextafter(x, np.inf))


# --- ROC, AUC, EER -------------------------------------------------------------------------------------


def test_roc_curve_by_hand():
    far, tar, thresholds = metrics.roc_curve(GEN_A, IMP_A)
    # Thresholds from +inf down through every distinct score; at each, the fraction of impostor (of 5) and
    # genuine (of 4) scores >= it.
    assert thresholds.tolist() == [np.inf, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    assert far.tolist() == pytest.approx([0, 0, 0, 1 / 5, 1 / 5, 2 / 5, 2 / 5, 3 / 5, 4 / 5, 1])
    assert tar.tolist() == pytest.approx([0, 1 / 4, 2 / 4, 2 / 4, 3 / 4, 3 / 4, 1, 1, 1, 1])


def test_roc_curve_with_ties_has_one_point_per_distinct_score():
    far, tar, thresholds = metrics.roc_curve(GEN_B, IMP_B)
    # 0.7: genuine 0.9, 0.7, 0.7 (3/5) and impostor 0.7 (1/6) all pass together.
    # 0.5: adds genuine 0.5 (4/5) and both impostor 0.5s (3/6).
    assert thresholds.tolist() == [np.inf, 0.9, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1]
    assert far.tolist() == pytest.approx([0, 0, 1 / 6, 3 / 6, 4 / 6, 4 / 6, 5 / 6, 1])
    assert tar.tolist() == pytest.approx([0, 1 / 5, 3 / 5, 4 / 5, 4 / 5, 1, 1, 1])


def test_auc_by_hand():
    # Set A, g > i counts: 0.9 -> 5, 0.8 -> 5, 0.6 -> 4 (0.5 0.3 0.2 0.1), 0.4 -> 3; no ties. 17 / (4 * 5).
    assert metrics.auc(GEN_A, IMP_A) == pytest.approx(17 / 20)
    # Set B: 0.9 -> 6; each 0.7 -> 5 above + 0.5 for the tie with 0.7 = 5.5; 0.5 -> 3 above (0.4 0.2 0.1)
    # + 0.5 x 2 ties = 4; 0.3 -> 2. Total 6 + 5.5 + 5.5 + 4 + 2 = 23 over 5 * 6 = 30 pairs.
    assert metrics.auc(GEN_B, IMP_B) == pytest.approx(23 / 30)
    # Complete separation and complete overlap.
    assert metrics.auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert metrics.auc([0.1, 0.2], [0.9, 0.8]) == 0.0
    assert metrics.auc([0.5, 0.5], [0.5]) == 0.5


def test_eer_interpolated_between_two_scores():
    # Set A. FAR(t) = frac impostor >= t, FRR(t) = frac genuine < t:
    #   t    0.1  0.2  0.3  0.4  0.5   0.6  0.7  0.8  0.9
    #   FAR  1    .8   .6   .4   .4    .2   .2   0    0
    #   FRR  0    0    0    0    .25   .25  .5   .5   .75
    #   d    -1   -.8  -.6  -.4  -.15  .05  ...
    # FRR - FAR crosses 0 between 0.5 (-0.15) and 0.6 (+0.05), 0.15 / 0.2 = 3/4 of the way:
    # threshold 0.5 + 0.75 * 0.1 = 0.575; FAR 0.4 + 0.75 * (0.2 - 0.4) = 0.25 = FRR 0.25 + 0.75 * 0.
    rate, threshold = metrics.eer(GEN_A, IMP_A)
    assert rate == pytest.approx(0.25)
    assert threshold == pytest.approx(0.575)


def test_eer_with_ties():
    # Set B:
    #   t    0.1  0.2   0.3   0.4   0.5   0.7   0.9
    #   FAR  6/6  5/6   4/6   4/6   3/6   1/6   0
    #   FRR  0    0     0     1/5   1/5   2/5   4/5
    # d at 0.5 = 1/5 - 1/2 = -9/30, at 0.7 = 2/5 - 1/6 = 7/30: crossing 9/16 of the way from 0.5 to 0.7.
    # threshold 0.5 + 9/16 * 0.2 = 0.6125; rate 1/2 + 9/16 * (1/6 - 1/2) = 5/16 = 1/5 + 9/16 * 1/5.
    rate, threshold = metrics.eer(GEN_B, IMP_B)
    assert rate == pytest.approx(5 / 16)
    assert threshold == pytest.approx(0.6125)


def test_eer_exactly_at_a_score():
    # t: 0.2 0.6 0.7 0.8; FAR 1 .5 .5 0; FRR 0 0 .5 .5; FRR - FAR is exactly 0 at 0.7.
    assert metrics.eer([0.8, 0.6], [0.7, 0.2]) == pytest.approx((0.5, 0.7))


def test_eer_when_rates_cross_only_above_the_highest_score():
    # One score each, equal: at 0.5 FAR 1 and FRR 0; just above it FAR 0 and FRR 1. Halfway: 0.5.
    rate, threshold = metrics.eer([0.5], [0.5])
    assert rate == pytest.approx(0.5)
    assert threshold == pytest.approx(0.5)


def test_eer_perfect_separation_is_zero():
    # t 0.1 0.2 0.8 0.9: FAR 1 .5 0 0, FRR 0 0 0 .5: d = 0 first at 0.8.
    assert metrics.eer([0.9, 0.8], [0.1, 0.2]) == (0.0, 0.8)


@pytest.mark.parametrize("measure", [metrics.roc_curve, metrics.auc, metrics.eer, metrics.det_curve])
def test_empty_score_sets_are_refused(measure):
    with pytest.raises(ValueError, match="no genuine scores"):
        measure([], IMP_A)
    with pytest.raises(ValueError, match="no impostor scores"):
        measure(GEN_A, [])


def test_nan_scores_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        metrics.auc([0.5, float("nan")], IMP_A)


@pytest.fixture(scope="module")
def tied_scores() -> tuple[np.ndarray, np.ndarray]:
    """A few thousand scores rounded to 2 decimals: many ties within and between the two sets."""
    rng = np.random.default_rng(20240611)
    gen = np.round(rng.normal(0.55, 0.15, 1500), 2)
    imp = np.round(rng.normal(0.10, 0.12, 4000), 2)
    return gen, imp


def test_roc_and_auc_agree_with_scikit_learn(tied_scores):
    gen, imp = tied_scores
    y = np.r_[np.ones(len(gen)), np.zeros(len(imp))]
    s = np.r_[gen, imp]
    fpr, tpr, thr = sk_roc_curve(y, s, drop_intermediate=False)
    far, tar, thresholds = metrics.roc_curve(gen, imp)
    assert len(thresholds) == len(np.unique(s)) + 1
    np.testing.assert_array_equal(thresholds, thr)
    np.testing.assert_allclose(far, fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tar, tpr, rtol=0, atol=1e-12)
    assert metrics.auc(gen, imp) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    # Lists work as well as arrays.
    assert metrics.auc(gen.tolist(), imp.tolist()) == metrics.auc(gen, imp)


def test_eer_agrees_with_the_roc(tied_scores):
    gen, imp = tied_scores
    rate, threshold = metrics.eer(gen, imp)
    far, tar, thresholds = metrics.roc_curve(gen, imp)
    frr = 1 - tar
    # The two rates cross between two neighbouring ROC points: FRR - FAR changes sign there, and the
    # interpolated rate lies between the FARs and between the FRRs of the two points.
    below = np.flatnonzero(thresholds <= threshold)[0]  # first ROC point at or under the threshold
    hi = below - 1  # the point just above it
    assert frr[below] - far[below] <= 0 <= frr[hi] - far[hi]
    assert far[hi] <= rate <= far[below]
    assert frr[below] <= rate <= frr[hi]
    assert thresholds[below] <= threshold < thresholds[hi]


def test_det_curve_and_rates_at_threshold():
    fmr, fnmr = metrics.det_curve(GEN_A, IMP_A)
    # Same points as the ROC: fnmr = 1 - tar.
    assert fmr.tolist() == pytest.approx([0, 0, 0, 1 / 5, 1 / 5, 2 / 5, 2 / 5, 3 / 5, 4 / 5, 1])
    assert fnmr.tolist() == pytest.approx([1, 3 / 4, 2 / 4, 2 / 4, 1 / 4, 1 / 4, 0, 0, 0, 0])
    # At 0.6: genuine below 0.6 -> 0.4 (1 of 4); impostors >= 0.6 -> 0.7 (1 of 5). Equal scores are accepted.
    assert metrics.rates_at_threshold(GEN_A, IMP_A, 0.6) == pytest.approx((0.25, 0.2))
    assert metrics.rates_at_threshold(GEN_A, IMP_A, 0.7) == pytest.approx((0.5, 0.2))
    assert metrics.rates_at_threshold([], IMP_A, 0.6) == (None, pytest.approx(0.2))
    assert metrics.rates_at_threshold(GEN_A, [], 0.6) == (pytest.approx(0.25), None)


# --- TAR at FAR ------------------------------------------------------------------------------------------


def test_tar_at_far_by_hand():
    # Set A, FAR 0.4: k = floor(0.4 * 5) = 2 false accepts allowed. Impostors, highest first: 0.7 0.5 0.3 ...
    # The 3rd highest is 0.3, so the threshold is the float just above 0.3: impostors 0.7, 0.5 pass (2/5),
    # every genuine score (lowest 0.4) passes.
    p = metrics.tar_at_far(GEN_A, IMP_A, 0.4)
    assert p.errors_allowed == 2
    assert p.threshold == above(0.3)
    assert p.achieved == pytest.approx(0.4)
    assert p.value == 1.0
    # FAR 0.2: k = 1; 2nd highest impostor 0.5 -> threshold just above 0.5; impostor 0.7 passes (1/5),
    # genuine 0.9 0.8 0.6 pass (3/4).
    p = metrics.tar_at_far(GEN_A, IMP_A, 0.2)
    assert (p.errors_allowed, p.threshold, p.achieved, p.value) == (1, above(0.5), pytest.approx(0.2), 0.75)


def test_tar_at_far_with_impostor_ties_at_the_threshold():
    # 20 impostors, FAR 0.1: k = 2. Highest first: 0.9, 0.8, 0.8, 0.8, then low ones. The 3rd highest is 0.8:
    # the threshold just above 0.8 lets only 0.9 through (1/20 = 0.05 <= 0.1). Accepting at 0.8 itself
    # would let 4 impostors through, twice the 2 allowed.
    imp = [0.9, 0.8, 0.8, 0.8] + [0.1] * 16
    # Genuine 0.8 ties the impostors at the threshold and is rejected with them: 0.95, 0.85 pass -> 2/5.
    gen = [0.95, 0.85, 0.8, 0.8, 0.7]
    p = metrics.tar_at_far(gen, imp, 0.1)
    assert p.errors_allowed == 2
    assert p.threshold == above(0.8)
    assert p.achieved == pytest.approx(0.05)
    assert p.value == pytest.approx(0.4)


def test_tar_at_far_not_measurable_with_too_few_impostors():
    # FAR 0.0001 allows floor(0.0001 * 2061) = 0 false accepts: no threshold can be read.
    imp = np.linspace(-0.3, 0.4, 2061)
    p = metrics.tar_at_far([0.8, 0.7], imp, 0.0001)
    assert p.errors_allowed == 0
    assert p.value is None and p.threshold is None and p.achieved is None
    assert p.note == "needs at least 10000 impostor comparisons for FAR 0.0001; have 2061"
    # Set A: FAR 0.1 x 5 impostors = 0.5.
    assert metrics.tar_at_far(GEN_A, IMP_A, 0.1).note == "needs at least 10 impostor comparisons for FAR 0.1; have 5"


def test_tar_at_far_cautions_when_few_false_matches_are_allowed():
    p = metrics.tar_at_far(GEN_A, IMP_A, 0.2)  # k = 1
    assert p.value is not None and p.note is not None
    assert "only 1 false match allowed" in p.note and "rough" in p.note
    p = metrics.tar_at_far([0.5], np.arange(90) / 100, 0.1)  # k = 9
    assert p.errors_allowed == 9 and "only 9 false matches" in p.note


def test_tar_at_far_has_no_note_with_ten_or_more_false_matches():
    # 1000 impostors 0.000 .. 0.999, FAR 0.01: k = 10. The 11th highest is 0.989; just above it only
    # 0.990 .. 0.999 pass (10/1000). Genuine 0.995 and 0.99 pass, 0.989 and 0.5 do not: 2/4.
    imp = np.arange(1000) / 1000
    p = metrics.tar_at_far([0.995, 0.99, 0.989, 0.5], imp, 0.01)
    assert p.errors_allowed == 10
    assert p.threshold == above(0.989)
    assert p.achieved == pytest.approx(0.01)
    assert p.value == 0.5
    assert p.note is None


def test_tar_at_far_counts_allowed_errors_without_float_slips():
    # 0.29 * 100 is 28.999999999999996 in floating point; 29 false accepts are allowed.
    assert metrics.tar_at_far([0.5], np.arange(100) / 100, 0.29).errors_allowed == 29


def test_tar_at_far_without_genuine_scores():
    p = metrics.tar_at_far([], [0.1] * 20, 0.1)
    assert p.value is None
    assert p.note is not None and "no genuine comparisons" in p.note


def test_tar_at_far_refuses_a_target_outside_0_1():
    for far in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="FAR target"):
            metrics.tar_at_far(GEN_A, IMP_A, far)


def test_operating_point_as_dict_is_plain_json():
    p = metrics.tar_at_far(GEN_A, IMP_A, 0.2)
    d = p.as_dict()
    assert d == {
        "target": 0.2,
        "value": 0.75,
        "threshold": 0.5,  # just above 0.5, rounded to 6 digits
        "errors_allowed": 1,
        "achieved": 0.2,
        "note": p.note,
    }
    assert json.loads(json.dumps(d)) == d
    missing = metrics.tar_at_far(GEN_A, IMP_A, 0.01).as_dict()
    assert missing["value"] is None and missing["threshold"] is None and missing["achieved"] is None


# --- ranks, CMC, open-set search -------------------------------------------------------------------------

# 4 probes x 4 gallery entries, and each probe's mate.
SEARCHES = np.array(
    [
        [0.9, 0.2, 0.3, 0.1],  # mate 0 scores highest: rank 1
        [0.5, 0.6, 0.5, 0.1],  # mate 0 (0.5): 0.6 above it and 0.5 tied with it -> rank 1 + 2 = 3
        [0.4, 0.4, 0.8, 0.4],  # mate 2 highest: rank 1
        [0.7, 0.7, 0.7, 0.7],  # mate 3 tied with all three others -> rank 4
    ]
)
MATES = np.array([0, 0, 2, 3])


def test_ranks_count_ties_against_the_mate():
    r = metrics.ranks(SEARCHES, MATES)
    assert r.tolist() == [1, 3, 1, 4]
    assert r.dtype == np.int64


def test_rank_rates_and_cmc():
    r = metrics.ranks(SEARCHES, MATES)
    # ranks 1, 3, 1, 4: rank <= 1 for 2 of 4, <= 2 still 2, <= 3 for 3, <= 5 (beyond the gallery) for all.
    assert metrics.rank_rates(r, [1, 2, 3, 5]) == {1: 0.5, 2: 0.5, 3: 0.75, 5: 1.0}
    np.testing.assert_allclose(metrics.cmc(r, 4), [0.5, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(metrics.cmc(r, 2), [0.5, 0.5])


def test_ranks_refuse_bad_shapes():
    with pytest.raises(ValueError, match="mates"):
        metrics.ranks(SEARCHES, np.array([0, 1]))
    with pytest.raises(ValueError, match="mates"):
        metrics.ranks(SEARCHES, np.array([0, 1, 2, 4]))
    with pytest.raises(ValueError, match="ranks"):
        metrics.rank_rates(np.array([], dtype=np.int64), [1])


def test_fnir_at_fpir_by_hand():
    # 20 non-mated searches, FPIR 0.1: k = 2. Top scores, highest first: 0.9, 0.6, 0.6, 0.6, then 0.2s.
    # The 3rd highest is 0.6 -> T just above 0.6; only the 0.9 search returns a candidate: FPIR 1/20.
    nonmated_top = [0.9, 0.6, 0.6, 0.6] + [0.2] * 16
    mate_scores = [0.95, 0.8, 0.6, 0.7, 0.65]
    mate_ranks = [1, 1, 1, 3, 60]
    # Misses at T, list of 50: 0.6 (below T), and 0.65 (above T but rank 60 > 50). FNIR 2/5.
    p = metrics.fnir_at_fpir(mate_scores, mate_ranks, nonmated_top, 0.1, max_rank=50)
    assert p.errors_allowed == 2
    assert p.threshold == above(0.6)
    assert p.achieved == pytest.approx(0.05)
    assert p.value == pytest.approx(0.4)
    assert p.note is not None and "only 2 false positives" in p.note and "non-mated searches" in p.note
    # With a 100-candidate list the rank-60 mate is found: only the 0.6 mate misses, 1/5.
    assert metrics.fnir_at_fpir(mate_scores, mate_ranks, nonmated_top, 0.1, max_rank=100).value == pytest.approx(0.2)


def test_fnir_at_fpir_not_measurable_with_too_few_searches():
    p = metrics.fnir_at_fpir([0.9], [1], [0.1] * 20, 0.01)
    assert p.value is None and p.threshold is None and p.errors_allowed == 0
    assert p.note == "needs at least 100 non-mated searches for FPIR 0.01; have 20"


# --- LFW-style pairs protocol ----------------------------------------------------------------------------

# Three folds of two same-person (True) and two different-person (False) pairs.
PAIR_SCORES = [0.9, 0.6, 0.5, 0.2, 0.8, 0.4, 0.45, 0.1, 0.7, 0.3, 0.65, 0.35]
PAIR_SAME = [True, True, False, False] * 3
PAIR_FOLDS = [0] * 4 + [1] * 4 + [2] * 4


def test_pairs_accuracy_by_hand():
    # Correct pairs on the training folds for each candidate t (same-person >= t plus different-person < t).
    # Fold 0, trained on folds 1-2 (8 pairs). Sorted: .1D .3S .35D .4S .45D .65D .7S .8S
    #   t:       <.1  .2  .325  .375  .425  .55  .675  .75  >.8
    #   correct:  4   5    4     5     4     5    6     5    4      -> 0.675, the only best
    #   fold 0 at 0.675: .9S yes, .6S no, .5D yes, .2D yes -> 3/4
    # Fold 1, trained on folds 0 and 2. Sorted: .2D .3S .35D .5D .6S .65D .7S .9S
    #   t:       <.2  .25  .325  .425  .55  .625  .675  .8  >.9
    #   correct:  4   5     4     5     6    5     6     5   4       -> 0.55 and 0.675 tie: lower median 0.55
    #   fold 1 at 0.55: .8S yes, .4S no, .45D yes, .1D yes -> 3/4
    # Fold 2, trained on folds 0-1. Sorted: .1D .2D .4S .45D .5D .6S .8S .9S
    #   t:       <.1  .15  .3  .425  .475  .55  .7  .85  >.9
    #   correct:  4   5    6    5     6     7    6   5    4        -> 0.55
    #   fold 2 at 0.55: .7S yes, .3S no, .65D no (accepted), .35D yes -> 2/4
    r = metrics.pairs_accuracy(PAIR_SCORES, np.array(PAIR_SAME), np.array(PAIR_FOLDS))
    assert r.folds == 3
    assert r.thresholds == pytest.approx([0.675, 0.55, 0.55])
    assert r.accuracies == [0.75, 0.75, 0.5]
    # mean 2/3; deviations 1/12, 1/12, -1/6 -> squares sum 6/144 = 1/24; / (3 - 1) = 1/48 -> std sqrt(1/48).
    assert r.accuracy_mean == pytest.approx(2 / 3)
    assert r.accuracy_std == pytest.approx(math.sqrt(1 / 48))
    # standard error sqrt(1/48) / sqrt(3) = sqrt(1/144) = 1/12
    assert r.accuracy_se == pytest.approx(1 / 12)
    d = r.as_dict()
    assert d["accuracies"] == [0.75, 0.75, 0.5] and d["accuracy_se"] == 0.083333
    assert json.loads(json.dumps(d)) == d


def test_pairs_accuracy_does_not_depend_on_pair_order():
    order = np.random.default_rng(3).permutation(len(PAIR_SCORES))
    r = metrics.pairs_accuracy(np.array(PAIR_SCORES)[order], np.array(PAIR_SAME)[order], np.array(PAIR_FOLDS)[order])
    assert r.accuracies == [0.75, 0.75, 0.5]
    assert r.thresholds == pytest.approx([0.675, 0.55, 0.55])


def test_pairs_accuracy_thresholds_beyond_the_training_scores():
    # Fold 1 trains on fold 0, only same-person pairs 0.5 and 0.7: candidates just below 0.5 (2 correct),
    # 0.6 (1), just above 0.7 (0) -> accept everything, threshold just below 0.5. Fold 1: 0.6S yes, 0.2D no
    # (below the threshold, rejected) -> 2/2.
    # Fold 0 trains on fold 1 (0.2D, 0.6S): just below 0.2 -> 1, 0.4 -> 2, above 0.6 -> 1 -> 0.4; 2/2.
    r = metrics.pairs_accuracy([0.5, 0.7, 0.6, 0.2], np.array([True, True, True, False]), np.array([0, 0, 1, 1]))
    assert r.thresholds == [pytest.approx(0.4), float(np.nextafter(0.5, -np.inf))]
    assert r.accuracies == [1.0, 1.0]
    assert r.accuracy_std == 0.0


def test_pairs_accuracy_needs_two_folds():
    with pytest.raises(ValueError, match="at least 2 folds"):
        metrics.pairs_accuracy([0.9, 0.1], np.array([True, False]), np.array([0, 0]))


# --- confidence interval ---------------------------------------------------------------------------------


def test_wilson_interval_textbook_values():
    # 8 successes of 10, z = 1.96, z^2 = 3.8416: denominator 1 + 3.8416/10 = 1.38416;
    # centre (0.8 + 3.8416/20) / 1.38416 = 0.71675; half-width 1.96 sqrt(0.8*0.2/10 + 3.8416/400) / 1.38416
    # = 1.96 * 0.160012 / 1.38416 = 0.22658 -> 0.4902 to 0.9433, the textbook interval.
    low, high = metrics.wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=5e-5)
    assert high == pytest.approx(0.9433, abs=5e-5)
    # 0 of 10: centre 0.19208 / 1.38416 = 0.13877 = half-width 1.96 sqrt(0.009604) / 1.38416 -> 0 to 0.2775;
    # 10 of 10 mirrors it.
    assert metrics.wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=5e-5))
    assert metrics.wilson_interval(10, 10) == (pytest.approx(0.7225, abs=5e-5), 1.0)
    assert metrics.wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        metrics.wilson_interval(11, 10)
