"""cauce.stats equals its SciPy / scikit-learn references, and is None where undefined.

Distances and tests between distributions (the drift metrics, rollout analysis), and the
model-quality metrics with their one rule for classes, the positive label and averaging (monitors,
gates, ``models evaluate``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics as skm
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import chebyshev, jensenshannon

from cauce.stats import (
    NO_SCORE,
    Positive,
    RuleError,
    Scoring,
    accuracy,
    chebyshev_distance,
    check_label,
    check_rule,
    chi_squared,
    classification_metrics,
    default_positive,
    f1,
    frequencies,
    jensen_shannon,
    jensen_shannon_distance,
    known_classes,
    ks_2samp,
    label_text,
    mae,
    normalized_wasserstein,
    precision,
    psi,
    r2,
    recall,
    regression_metrics,
    rmse,
    roc_auc,
    scoring,
    undefined,
)

FAST = settings(max_examples=60, deadline=None)
counts = st.one_of(st.integers(0, 50), st.just(0.0), st.floats(0.01, 100))  # weighted counts
count_pairs = st.integers(1, 12).flatmap(
    lambda n: st.tuples(
        st.lists(counts, min_size=n, max_size=n), st.lists(counts, min_size=n, max_size=n)
    )
)
values = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
samples = st.lists(values, min_size=1, max_size=40)


def close(expected: float) -> Any:
    return pytest.approx(expected, rel=1e-6, abs=1e-6)


def ref_js(p: Any, q: Any) -> float:
    with np.errstate(invalid="ignore"):  # scipy's sqrt of a rounding error below 0 is NaN
        return float(np.nan_to_num(jensenshannon(p, q, base=2)))


def ref_psi(p: Any, q: Any, epsilon: float = 1e-4) -> float:
    p, q = np.asarray(p, float) / np.sum(p), np.asarray(q, float) / np.sum(q)
    p, q = np.where(p == 0, epsilon, p), np.where(q == 0, epsilon, q)
    return float(np.sum((q - p) * np.log(q / p)))  # the textbook formula


def shares(c: Any) -> Any:
    return np.asarray(c, float) / np.sum(c)


# Distribution metrics over count vectors


def test_count_metrics_on_fixed_examples() -> None:
    ref, cur = [10, 20, 30, 40], [25, 25, 25, 25]
    assert jensen_shannon_distance(ref, cur) == close(ref_js(ref, cur))
    assert chebyshev_distance(ref, cur) == close(chebyshev(shares(ref), shares(cur)))
    assert chebyshev_distance(ref, cur) == close(0.15)
    # PSI by hand: p = .1 .2 .3 .4, q = .25 each
    by_hand = sum((0.25 - p) * math.log(0.25 / p) for p in (0.1, 0.2, 0.3, 0.4))
    assert psi(ref, cur) == close(by_hand) == close(ref_psi(ref, cur))
    assert psi(ref, cur) == pytest.approx(0.2282, abs=1e-4)  # .1374 + .0112 + .0091 + .0705
    statistic, p_value = chi_squared(ref, cur) or (None, None)
    expected = scipy.stats.chi2_contingency([ref, cur], correction=False)
    assert (statistic, p_value) == (close(expected.statistic), close(expected.pvalue))


def test_identical_and_disjoint_distributions() -> None:
    same = [3, 0, 7.5, 1]
    assert jensen_shannon_distance(same, same) == 0.0
    assert psi(same, same) == 0.0
    assert chebyshev_distance(same, [6, 0, 15, 2]) == close(0.0)
    assert chi_squared(same, same) == (0.0, 1.0)
    assert jensen_shannon_distance([1, 2, 0, 0], [0, 0, 5, 1]) == close(1.0)
    assert chebyshev_distance([1, 0], [0, 1]) == 1.0


def test_empty_sides_give_none() -> None:
    for metric in (jensen_shannon_distance, psi, chebyshev_distance, chi_squared):
        assert metric([], []) is None
        assert metric([0, 0], [1, 2]) is None
        assert metric([1, 2], [0, 0]) is None


def test_psi_with_zeros_on_one_side_uses_epsilon() -> None:
    ref, cur = [50, 50, 0], [40, 40, 20]  # the third category is new in current
    by_hand = 2 * (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    assert psi(ref, cur) == close(by_hand)
    assert psi(cur, ref) == close(by_hand)  # PSI is symmetric
    assert psi(ref, cur, epsilon=1e-3) == close(ref_psi(ref, cur, 1e-3))
    assert psi([1, 0], [1, 0]) == 0.0  # empty on both sides: no contribution
    with pytest.raises(ValueError, match="epsilon"):
        psi(ref, cur, epsilon=0)


def test_categories_present_only_in_current() -> None:
    ref, cur = [5, 5, 0], [3, 3, 4]
    assert jensen_shannon_distance(ref, cur) == close(ref_js(ref, cur))
    assert chebyshev_distance(ref, cur) == close(0.4)
    result = chi_squared(ref, cur)
    expected = scipy.stats.chi2_contingency([ref, cur], correction=False)
    assert result == (close(expected.statistic), close(expected.pvalue))


def test_chi_squared_drops_categories_empty_on_both_sides() -> None:
    ref, cur = [10, 0, 5, 0], [4, 0, 9, 0]
    expected = scipy.stats.chi2_contingency([[10, 5], [4, 9]], correction=False)
    assert chi_squared(ref, cur) == (close(expected.statistic), close(expected.pvalue))
    assert chi_squared([3, 0], [5, 0]) is None  # one category left
    assert chi_squared([3], [5]) is None


def test_count_vectors_are_checked() -> None:
    with pytest.raises(ValueError, match="length"):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        jensen_shannon_distance([1, -1], [1, 1])


@FAST
@given(count_pairs)
def test_count_metrics_match_references(pair: tuple[list[float], list[float]]) -> None:
    ref, cur = pair
    if sum(ref) == 0 or sum(cur) == 0:
        for metric in (jensen_shannon_distance, psi, chebyshev_distance, chi_squared):
            assert metric(ref, cur) is None
        return
    assert jensen_shannon_distance(ref, cur) == close(ref_js(ref, cur))
    assert psi(ref, cur) == close(ref_psi(ref, cur))
    assert chebyshev_distance(ref, cur) == close(chebyshev(shares(ref), shares(cur)))
    table = np.array([ref, cur], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    result = chi_squared(ref, cur)
    if table.shape[1] < 2:
        assert result is None
    else:
        expected = scipy.stats.chi2_contingency(table, correction=False)
        assert result == (close(expected.statistic), close(expected.pvalue))


# Wasserstein


def ref_wasserstein(ref: Any, cur: Any, rw: Any = None, cw: Any = None) -> float:
    return float(scipy.stats.wasserstein_distance(ref, cur, rw, cw))


def test_wasserstein_on_fixed_examples() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(0, 2, 5000), rng.normal(0.5, 2, 7000)
    std = float(np.std(ref))
    expected = ref_wasserstein(ref, cur) / std
    assert normalized_wasserstein(ref, cur, ref_std=std) == close(expected)
    rw, cw = rng.random(5000), rng.random(7000)
    expected = ref_wasserstein(ref, cur, rw, cw) / 1.5
    got = normalized_wasserstein(ref, cur, ref_weights=rw, cur_weights=cw, ref_std=1.5)
    assert got == close(expected)
    assert normalized_wasserstein([0, 1, 3], [5, 6, 8], ref_std=2.0) == close(2.5)


@FAST
@given(samples, samples, st.booleans(), st.data())
def test_wasserstein_matches_scipy(
    ref: list[float], cur: list[float], weighted: bool, data: st.DataObject
) -> None:
    rw = cw = None
    if weighted:
        weight = st.floats(0, 10, allow_nan=False)
        rw = data.draw(st.lists(weight, min_size=len(ref), max_size=len(ref)))
        cw = data.draw(st.lists(weight, min_size=len(cur), max_size=len(cur)))
        assume(sum(rw) > 0 and sum(cw) > 0)
    std = float(np.std(ref)) or 1.0
    got = normalized_wasserstein(ref, cur, ref_weights=rw, cur_weights=cw, ref_std=std)
    assert got == close(ref_wasserstein(ref, cur, rw, cw) / std)


def test_wasserstein_constant_reference_uses_the_mixture_std() -> None:
    assert normalized_wasserstein([4, 4, 4], [4, 4], ref_std=0.0) == 0.0
    # a constant that moved to another constant: the mixture's std is half the gap
    assert normalized_wasserstein([4, 4, 4], [9, 9], ref_std=0.0) == close(2.0)
    assert normalized_wasserstein([1], [3], ref_std=0.0) == close(2.0)
    # 1% of rows moved by 1: distance 0.01, mixture variance 0.0099 / 2 + 0.01 ** 2 / 4
    cur = np.r_[np.zeros(99), 1.0]
    expected = 0.01 / math.sqrt(0.0099 / 2 + 0.01**2 / 4)
    assert normalized_wasserstein(np.zeros(1000), cur, ref_std=0.0) == close(expected)
    # units do not matter
    scaled = normalized_wasserstein(np.zeros(1000), cur * 1e-6, ref_std=0.0)
    assert scaled == close(expected)


@FAST
@given(st.floats(-100, 100), samples)
def test_wasserstein_constant_reference_is_at_most_2(level: float, cur: list[float]) -> None:
    got = normalized_wasserstein([level] * 5, cur, ref_std=0.0)
    assert got is not None and 0.0 <= got <= 2.0 + 1e-9


def test_wasserstein_edge_cases() -> None:
    assert normalized_wasserstein([], [1.0], ref_std=1.0) is None
    assert normalized_wasserstein([1.0], [np.nan, np.inf], ref_std=1.0) is None
    assert normalized_wasserstein([1.0], [2.0], ref_weights=[0.0], ref_std=1.0) is None
    assert normalized_wasserstein([1, np.nan, 3], [1, 3, np.inf], ref_std=1.0) == 0.0
    assert normalized_wasserstein([2.5], [2.5], ref_std=0.0) == 0.0
    with pytest.raises(ValueError, match="ref_std"):
        normalized_wasserstein([1.0], [2.0], ref_std=-1.0)
    with pytest.raises(ValueError, match="weights"):
        normalized_wasserstein([1.0], [2.0], cur_weights=[1.0, 2.0], ref_std=1.0)
    with pytest.raises(ValueError, match="non-negative"):
        normalized_wasserstein([1.0], [2.0], cur_weights=[-1.0], ref_std=1.0)


# Kolmogorov-Smirnov


def assert_ks_matches(ref: Any, cur: Any) -> None:
    ref = np.sort(np.asarray(ref, float))
    with warnings.catch_warnings():  # exact p-value rounding past 1: SciPy falls back, warning
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
        expected = scipy.stats.ks_2samp(ref, cur)
    assert ks_2samp(ref, cur) == (close(expected.statistic), close(expected.pvalue))


@FAST
@given(samples, samples)
def test_ks_matches_scipy_on_small_samples(ref: list[float], cur: list[float]) -> None:
    assert_ks_matches(ref, cur)


@FAST
@given(
    st.integers(0, 2**32 - 1),
    st.integers(10_001, 30_000),
    st.integers(1, 12_000),
    st.sampled_from(["normal", "ties", "shifted ties"]),
    st.booleans(),
)
def test_ks_matches_scipy_on_asymptotic_samples(
    seed: int, large: int, small: int, kind: str, ref_is_large: bool
) -> None:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        a, b = rng.normal(0, 1, large), rng.normal(0.05, 1, small)
    else:
        a = rng.integers(0, 8, large).astype(float)
        b = rng.integers(1 if kind == "shifted ties" else 0, 8, small).astype(float)
    ref, cur = (a, b) if ref_is_large else (b, a)
    assert_ks_matches(ref, cur)


def test_ks_on_a_million_values_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    ref, cur = np.sort(rng.normal(size=20_000)), rng.normal(0.01, 1, 1_000_000)
    assert_ks_matches(ref, cur)


def test_ks_edge_cases() -> None:
    assert ks_2samp([], [1.0]) is None
    assert ks_2samp([1.0], [np.nan]) is None
    assert ks_2samp([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == (0.0, 1.0)
    assert ks_2samp(np.full(20_000, 3.0), np.full(15_000, 3.0)) == (0.0, 1.0)
    assert ks_2samp(np.full(20_000, 3.0), np.full(15_000, 4.0)) == (1.0, close(0.0))
    assert_ks_matches([5.0], [6.0])
    ref, cur = np.arange(20_000.0), np.r_[np.arange(20_000.0), np.nan]
    assert ks_2samp(np.r_[ref, np.nan], cur) == (0.0, 1.0)
    assert_ks_matches(ref, [-np.inf, 5.0, np.inf])


def test_sample_jensen_shannon_agrees_with_the_count_version() -> None:
    ref, cur = ["a", "b", "b", "c"], ["b", "c", "c", "d"]
    p, q = frequencies(ref, cur)
    assert jensen_shannon(ref, cur) == close(jensen_shannon_distance(p, q) or 0.0)
    assert jensen_shannon(ref, cur) == close(ref_js(p, q))
    assert jensen_shannon([], [1.0, 2.0]) is None


@FAST
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([(40, 60), (3000, 9000), (20_000, 4000), (15_000, 30_000)]),
    st.integers(3, 40),
)
def test_ks_of_counts_equals_scipy_on_the_repeated_values(
    seed: int, sizes: tuple[int, int], bins: int
) -> None:
    """A binned sample (values and their counts), as drift's profiles hold one, is the sample
    with each value repeated its count times: exact and asymptotic sizes alike."""
    rng = np.random.default_rng(seed)
    values = np.sort(rng.normal(0, 1, bins))
    p = rng.multinomial(sizes[0], rng.dirichlet(np.ones(bins))).astype(float)
    q = rng.multinomial(sizes[1], rng.dirichlet(np.ones(bins))).astype(float)
    assume(p.sum() and q.sum())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
        expected = scipy.stats.ks_2samp(
            np.repeat(values, p.astype(int)), np.repeat(values, q.astype(int))
        )
    got = ks_2samp(values, values, ref_counts=p, cur_counts=q)
    assert got == (close(expected.statistic), close(expected.pvalue))


def test_ks_counts_are_checked() -> None:
    assert ks_2samp([1.0, 2.0], [1.0, 2.0], ref_counts=[0, 0], cur_counts=[1, 1]) is None
    with pytest.raises(ValueError, match="whole"):
        ks_2samp([1.0, 2.0], [1.0], ref_counts=[0.5, 1.0])
    with pytest.raises(ValueError, match="counts: 1 for 2 values"):
        ks_2samp([1.0, 2.0], [1.0], ref_counts=[1])


# Model quality: the one rule for classes, the positive label and averaging


def sklearn_scores(truth: Any, predicted: Any, **rule: Any) -> dict[str, float]:
    kw = {"zero_division": 0, **rule}
    return {
        "accuracy": skm.accuracy_score(truth, predicted),
        "precision": skm.precision_score(truth, predicted, **kw),
        "recall": skm.recall_score(truth, predicted, **kw),
        "f1": skm.f1_score(truth, predicted, **kw),
    }


def assert_scores(got: dict[str, Any], expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        assert got[name] == (None if value is None else close(value)), name


def noisy(truth: Any, classes: list[Any], seed: int, wrong: float = 0.3) -> Any:
    rng = np.random.default_rng(seed)
    flip = rng.random(len(truth)) < wrong
    return np.where(flip, rng.choice(np.array(classes, dtype=object), len(truth)), truth)


def labelled(classes: list[Any], n: int, seed: int) -> tuple[Any, Any]:
    """``n`` true labels drawn from ``classes`` (in their type) and noisy predictions of them."""
    rng = np.random.default_rng(seed)
    truth = np.array(classes, dtype=object)[rng.integers(0, len(classes), n)]
    kind = {bool: bool, int: int, float: float}.get(type(classes[0]))
    truth = truth.astype(kind) if kind else truth.astype(str)
    return truth, noisy(truth, classes, seed=seed + 1).astype(truth.dtype)


BINARY = [
    pytest.param([0, 1], {}, 1, id="int-default-is-1"),
    pytest.param([0, 1], {"positive": 0}, 0, id="int-positive-0"),
    pytest.param([-1, 1], {}, 1, id="minus-one-one-default-is-1"),
    pytest.param([1, 2], {}, 2, id="int-1-2-default-is-2"),
    pytest.param([0.0, 1.0], {"positive": True}, 1.0, id="float-positive-True-names-1.0"),
    pytest.param([False, True], {}, True, id="bool-default-is-True"),
    pytest.param([False, True], {"positive": False}, False, id="bool-positive-False"),
    pytest.param([False, True], {"positive": "0"}, False, id="bool-positive-text-0"),
    pytest.param(["no", "yes"], {}, "yes", id="text-default-is-greater"),
    pytest.param(["no", "yes"], {"positive": "no"}, "no", id="text-positive-no"),
    pytest.param(["churned", "stayed"], {"positive": "churned"}, "churned", id="text-given"),
]


@pytest.mark.parametrize(("classes", "rule", "positive"), BINARY)
def test_binary_labels_equal_sklearn(
    classes: list[Any], rule: dict[str, Any], positive: Any
) -> None:
    truth, predicted = labelled(classes, 400, seed=3)
    rng = np.random.default_rng(4)
    score = rng.random(400) * 0.6 + 0.4 * (truth == positive)  # the positive class's score
    known = {"labels": classes, **rule}
    used = scoring(truth, predicted, **known)
    assert used == Scoring("binary", positive, classes)
    assert type(used.positive) is type(classes[0])  # the class as the known classes spell it

    got = classification_metrics(truth, predicted, score, **known)
    assert_scores(got, sklearn_scores(truth, predicted, pos_label=positive))
    assert got["roc_auc"] == close(skm.roc_auc_score(truth == positive, score))
    # each metric alone says the same
    assert accuracy(truth, predicted) == got["accuracy"]
    assert precision(truth, predicted, **known) == got["precision"]
    assert recall(truth, predicted, **known) == got["recall"]
    assert f1(truth, predicted, **known) == got["f1"]
    assert roc_auc(truth, score, **known) == got["roc_auc"]
    # class probabilities (a model's predict_proba, columns in classes_ order) give the same AUC
    proba = np.column_stack([1 - score, score] if positive == classes[1] else [score, 1 - score])
    assert roc_auc(truth, proba, **known) == close(got["roc_auc"])
    with_proba = classification_metrics(truth, predicted, proba, **known)
    assert with_proba == {**got, "roc_auc": close(got["roc_auc"])}


MULTICLASS = [
    pytest.param([0, 1, 2], id="int"),
    pytest.param(["bronze", "gold", "none", "silver"], id="text"),
]


@pytest.mark.parametrize("classes", MULTICLASS)
@pytest.mark.parametrize("average", [None, "macro", "micro", "weighted"])
def test_multiclass_labels_equal_sklearn(classes: list[Any], average: str | None) -> None:
    rng = np.random.default_rng(5)
    truth = np.array(classes)[rng.choice(len(classes), 500, p=rng.dirichlet(np.ones(len(classes))))]
    predicted = noisy(truth, classes, seed=6).astype(truth.dtype)
    proba = rng.dirichlet(np.ones(len(classes)), 500)
    proba[np.arange(500), np.searchsorted(classes, truth)] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    used = average or "macro"  # more than two known classes: macro by default
    assert scoring(truth, predicted, average=average, labels=classes) == Scoring(  # type: ignore[arg-type]
        used, None, classes
    )

    got = classification_metrics(truth, predicted, proba, average=average, labels=classes)  # type: ignore[arg-type]
    assert_scores(got, sklearn_scores(truth, predicted, average=used))
    expected = skm.roc_auc_score(truth, proba, multi_class="ovr", average=used, labels=classes)
    assert got["roc_auc"] == close(expected)
    # without a score there is no ROC AUC: the hard predictions do not rank the rows
    hard = classification_metrics(truth, predicted, average=average, labels=classes)  # type: ignore[arg-type]
    assert hard == {**got, "roc_auc": None}


@pytest.mark.parametrize("classes", MULTICLASS)
def test_a_positive_class_against_the_others(classes: list[Any]) -> None:
    rng = np.random.default_rng(7)
    truth = np.array(classes)[rng.integers(0, len(classes), 300)]
    predicted = noisy(truth, classes, seed=8).astype(truth.dtype)
    positive = classes[1]
    score = rng.random(300) + (truth == positive)
    got = classification_metrics(truth, predicted, score, positive=positive, labels=classes)
    expected = sklearn_scores(truth == positive, predicted == positive, pos_label=True)
    assert_scores(got, {**expected, "accuracy": skm.accuracy_score(truth, predicted)})
    assert got["roc_auc"] == close(skm.roc_auc_score(truth == positive, score))
    # the same as scikit-learn's one-label micro average
    assert got["precision"] == close(
        skm.precision_score(truth, predicted, labels=[positive], average="micro", zero_division=0)
    )


WINDOWS = [
    # known classes, then rows that hold all of them, some of them, or one
    pytest.param([1, 2], [[1, 2, 2, 1], [1, 1, 1, 1], [2, 2, 2, 2]], 2, id="int-1-2"),
    pytest.param([0, 1], [[0, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]], 1, id="int-0-1"),
    pytest.param(["no", "yes"], [["no", "yes", "no"], ["no", "no"], ["yes"]], "yes", id="text"),
    pytest.param([False, True], [[False, True], [False, False]], True, id="bool"),
]


@pytest.mark.parametrize(("classes", "windows", "positive"), WINDOWS)
def test_the_default_comes_from_the_known_classes_not_from_the_rows(
    classes: list[Any], windows: list[list[Any]], positive: Any
) -> None:
    """A window holding one class keeps the positive class of the model's classes (the review's
    precision([1, 1], [1, 1]) == 1.0 but precision([1, 2], [1, 1]) == 0.0)."""
    for truth in windows:
        predicted = [classes[0]] * (len(truth) - 1) + [classes[-1]]
        assert scoring(truth, predicted, labels=classes) == Scoring("binary", positive, classes)
        got = classification_metrics(truth, predicted, labels=classes)
        expected = sklearn_scores(truth, predicted, pos_label=positive, labels=classes)
        assert_scores(got, {**expected, "accuracy": skm.accuracy_score(truth, predicted)})


def test_without_known_classes_the_labels_type_decides_never_the_rows() -> None:
    # numbers: scikit-learn's pos_label=1, whatever the rows hold
    for truth in ([1, 1], [1, 2], [2, 2], [0, 1]):
        assert scoring(truth, truth) == Scoring("binary", 1)
        assert precision(truth, [1] * len(truth)) == close(
            skm.precision_score(truth, [1] * len(truth), pos_label=1, zero_division=0)
        )
    assert scoring([False, False], [False, False]) == Scoring("binary", True)
    # a positive in the labels' type: 1, 1.0, True and "1" name one class of numbers
    assert {scoring([0, 1], positive=p).positive for p in (1, 1.0, True, "1")} == {1}
    assert {scoring([True], positive=p).positive for p in (1, 1.0, True, "1", "true")} == {True}
    assert scoring(["a"], positive=1).positive == "1"
    with pytest.raises(RuleError, match="positive 'yes' cannot name a class of number labels"):
        scoring([0, 1], positive="yes")
    # text: no default to fall back on
    with pytest.raises(RuleError, match="the labels are text and their classes are not known"):
        precision(["no", "yes"], ["no", "yes"])
    assert accuracy(["no", "yes"], ["no", "no"]) == 0.5  # accuracy needs no positive
    assert scoring(["no"], average="macro") == Scoring("macro")


def test_a_positive_that_names_no_known_class_is_refused() -> None:
    three = ["a", "b", "c"]
    for rows in (three, ["a", "a"]):
        with pytest.raises(RuleError, match=r"positive label 'd' is not one of the labels \['a',"):
            precision(rows, rows, positive="d", labels=three)
    with pytest.raises(RuleError, match="positive label 1 is not one of the labels") as caught:
        classification_metrics(["no", "yes"], ["no", "no"], positive=1, labels=["no", "yes"])
    assert caught.value.field == "positive"
    # a known positive class that no row holds: scikit-learn's zero_division, 0
    got = classification_metrics(["a", "b"], ["a", "a"], positive="c", labels=three)
    assert_scores(got, sklearn_scores(["a", "b"], ["a", "a"], labels=["c"], average="micro"))
    assert got["precision"] == got["recall"] == got["f1"] == 0.0


def test_the_default_positive_label() -> None:
    assert default_positive([0, 1]) == 1 and default_positive([0]) == 1
    assert default_positive([-1, 1]) == 1 and default_positive([0.0, 1.0]) == 1
    assert default_positive([False, True]) is True and default_positive([False]) is True
    assert default_positive([1, 2]) == 2 and default_positive([2]) == 2
    assert default_positive(["no", "yes"]) == "yes" and default_positive(["no"]) == "no"
    assert default_positive([]) is None


def test_known_classes_and_the_stored_text_of_a_class() -> None:
    assert known_classes(np.array([1, 0, 1], dtype=np.int64)) == [0, 1]
    assert known_classes(np.array(["yes", "no"], dtype=object)) == ["no", "yes"]
    assert known_classes([True, False, None]) == [False, True]
    assert known_classes(None) is None and known_classes([]) is None
    assert {label_text(v) for v in (1, 1.0, np.int64(1), np.float64(1.0))} == {"1"}
    assert label_text(True) == "True" and label_text("yes") == "yes" and label_text(0.5) == "0.5"


def test_a_class_label_users_name_is_a_scalar() -> None:
    for label in (None, 1, 0.5, True, "yes"):
        assert check_label(label) == label
    for bad in ("", [1], {"a": 1}, b"yes"):
        with pytest.raises(ValueError, match="a class label is non-empty text"):
            check_label(bad)


def test_the_positive_and_average_rule_is_checked_once_with_the_field() -> None:
    from pydantic import BaseModel, ValidationError

    check_rule("yes", None)
    check_rule(None, "macro")
    for positive, average, field, words in [
        ("yes", "macro", "positive", "positive applies to average binary"),
        (None, "samples", "average", "average must be one of binary, micro, macro, weighted"),
        ([1], None, "positive", "a class label is non-empty text"),
    ]:
        with pytest.raises(RuleError, match=words) as caught:
            check_rule(positive, average)
        assert caught.value.field == field

    class Spec(BaseModel):  # the spec field type monitors and gate policies use
        positive: Positive = None

    assert Spec(positive=True).positive is True and Spec().positive is None
    with pytest.raises(ValidationError, match="a class label is non-empty text") as invalid:
        Spec(positive=[1])
    assert len(invalid.value.errors()) == 1  # one error, not one per type of the union
    accepted = Spec.model_json_schema()["properties"]["positive"]["anyOf"]
    assert {t["type"] for t in accepted} == {"boolean", "integer", "number", "string", "null"}


def test_labels_are_compared_as_text_when_either_side_is_text() -> None:
    truth, predicted = ["1", "0", "1", "1"], [1, 0, 0, 1]
    got = classification_metrics(truth, predicted, labels=[0, 1])
    assert_scores(got, sklearn_scores(truth, [str(v) for v in predicted], pos_label="1"))
    # a positive given as text names the class with that text, and the reverse
    numbers = classification_metrics([1, 0, 1, 1], predicted, positive="0")
    assert numbers == classification_metrics([1, 0, 1, 1], predicted, positive=0)
    assert classification_metrics(truth, predicted, positive=1) == got


def test_a_rule_that_cannot_apply_is_a_clear_error() -> None:
    three, two = ["a", "b", "c", "a"], ["no", "yes", "yes", "no"]
    with pytest.raises(RuleError, match="3 classes: give positive"):
        precision(three, three, average="binary", labels=three)
    with pytest.raises(RuleError, match="positive applies to average binary"):
        recall(two, two, positive="yes", average="macro")
    with pytest.raises(RuleError, match="average must be one of"):
        f1(two, two, average="samples")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a 1-D score is the positive class's score"):
        roc_auc(three, [0.1, 0.2, 0.3, 0.4], labels=three)
    with pytest.raises(ValueError, match="3 score columns for 2 labels"):
        roc_auc(two, np.ones((4, 3)) / 3, labels=["no", "yes"])
    with pytest.raises(ValueError, match="length"):
        classification_metrics([1, 0], [1])


def test_classification_edge_cases() -> None:
    empty = dict.fromkeys(["accuracy", "precision", "recall", "f1", "roc_auc"])
    assert classification_metrics([], []) == empty
    assert classification_metrics([None], [1]) == empty
    assert classification_metrics([1, 1], [1, 0], [0.9, 0.3])["roc_auc"] is None  # one class
    assert "rows of the positive class and rows of the others" in undefined("roc_auc")
    assert "score of the positive class" in NO_SCORE and undefined("r2").startswith("r2 needs")
    # the positive class never occurs: nothing found, nothing to find (scikit-learn's 0)
    assert classification_metrics([0, 0], [0, 0]) == {
        "accuracy": 1.0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "roc_auc": None
    }  # fmt: skip
    # rows whose label (or score) has not arrived yet are left out
    got = classification_metrics([1, None, 0], [1, 1, 0], [0.8, 0.7, np.nan])
    assert got == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "roc_auc": None}
    got = classification_metrics([1, None, 0], [1, 1, 0], [0.8, 0.7, 0.1])
    assert got["roc_auc"] == 1.0
    # a class the model has no probability column for: its AUC is undefined
    assert roc_auc(["a", "b", "c"], np.eye(3)[:, :2], labels=["a", "b"], average="macro") is None
    # pandas' nullable and text dtypes read like plain arrays
    import pandas as pd

    truth = pd.Series([1, 0, None, 1], dtype="Int64")
    assert classification_metrics(truth, [1, 1, 0, 1]) == classification_metrics(
        [1, 0, 1], [1, 1, 1]
    )
    words = pd.Series(["yes", "no", "yes"], dtype="string")
    assert precision(words, ["yes", "yes", "yes"], labels=["no", "yes"]) == close(2 / 3)
    flags = pd.Series([True, None, False], dtype="boolean")
    assert scoring(flags, [True, True, False]) == Scoring("binary", True)


@FAST
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.sampled_from([0.1, 0.5, 0.9])))
    | st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.floats(0, 1)), min_size=1)
)
def test_binary_metrics_match_sklearn_on_any_rows(rows: list[tuple[int, int, float]]) -> None:
    if not rows:
        return
    truth, predicted, score = (np.array(c) for c in zip(*rows, strict=True))
    for positive in (None, 1, 0):
        got = classification_metrics(truth, predicted, score, positive=positive, labels=[0, 1])
        assert got == classification_metrics(truth, predicted, score, positive=positive)
        chosen = 1 if positive is None else positive
        assert_scores(got, sklearn_scores(truth, predicted, pos_label=chosen, labels=[0, 1]))
        actual = truth == chosen
        expected = skm.roc_auc_score(actual, score) if 0 < actual.sum() < len(actual) else None
        assert got["roc_auc"] == (None if expected is None else close(expected))


@FAST
@given(
    st.lists(st.tuples(st.sampled_from("abcd"), st.sampled_from("abcd")), min_size=1),
    st.sampled_from(["macro", "micro", "weighted", None]),
)
def test_averaged_metrics_match_sklearn_on_any_rows(
    rows: list[tuple[str, str]], average: str | None
) -> None:
    truth, predicted = (list(c) for c in zip(*rows, strict=True))
    got = classification_metrics(truth, predicted, average=average, labels=list("abcd"))  # type: ignore[arg-type]
    assert_scores(got, sklearn_scores(truth, predicted, average=average or "macro"))


def test_regression_metrics_on_fixed_examples() -> None:
    truth, predicted = [3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0]
    assert regression_metrics(truth, predicted) == {
        "mae": close(skm.mean_absolute_error(truth, predicted)),
        "rmse": close(skm.root_mean_squared_error(truth, predicted)),
        "r2": close(skm.r2_score(truth, predicted)),
    }
    assert mae(truth, predicted) == close(0.5) and rmse(truth, predicted) == close(math.sqrt(0.375))
    # a constant truth: 1 when predicted exactly, else 0 (scikit-learn's force_finite)
    assert r2([2.0, 2.0], [2.0, 2.0]) == 1.0 == skm.r2_score([2.0, 2.0], [2.0, 2.0])
    assert r2([2.0, 2.0], [1.0, 2.0]) == 0.0 == skm.r2_score([2.0, 2.0], [1.0, 2.0])
    assert r2([2.0], [2.0]) is None  # undefined on one row
    with pytest.raises(ValueError, match="need numbers"):
        mae(["a"], [1.0])


@FAST
@given(st.lists(st.tuples(values, values)))
def test_regression_metrics_match_sklearn(rows: list[tuple[float, float]]) -> None:
    if not rows:
        assert regression_metrics([], []) == {"mae": None, "rmse": None, "r2": None}
        return
    truth, predicted = (list(c) for c in zip(*rows, strict=True))
    got = regression_metrics(truth, predicted)
    assert got["mae"] == close(skm.mean_absolute_error(truth, predicted))
    assert got["rmse"] == close(math.sqrt(skm.mean_squared_error(truth, predicted)))
    if len(rows) > 1:
        assert got["r2"] == pytest.approx(skm.r2_score(truth, predicted), rel=1e-6, abs=1e-6)


def test_regression_metrics_drop_missing_rows() -> None:
    got = regression_metrics([1.0, np.nan, 3.0, 5.0], [2.0, 1.0, None, 5.0])
    assert got == {"mae": 0.5, "rmse": close(math.sqrt(0.5)), "r2": close(1 - 1 / 8)}
    assert regression_metrics([np.nan], [1.0]) == {"mae": None, "rmse": None, "r2": None}
    assert regression_metrics([2.0], [2.0]) == {"mae": 0.0, "rmse": 0.0, "r2": None}


def test_importing_stats_imports_no_numerical_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, cauce.stats; "
        "print(sorted(m for m in ('numpy', 'scipy', 'pandas', 'sklearn', 'pydantic') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
