"""Uncertainty of held-out scores: Jeffreys intervals, test samples per class, the train summary keys."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta

from rnaimg_core.model.metrics import (
    class_test_counts,
    classification_metrics,
    jeffreys_interval,
    perfect_score_note,
    score_intervals,
)


def _confusion(right: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """A confusion matrix with ``right[k]`` of ``sizes[k]`` right per class; the misses go to an extra class."""
    confusion = np.zeros((sizes.size + 1, sizes.size + 1), dtype=int)
    confusion[np.arange(sizes.size), np.arange(sizes.size)] = right
    confusion[np.arange(sizes.size), -1] = sizes - right
    return confusion


def test_accuracy_interval_is_the_jeffreys_interval_of_k_of_n():
    confusion = np.array([[18, 2], [5, 15]])  # 33 of 40 right
    low, high = score_intervals(confusion)["accuracy_ci"]
    assert low == pytest.approx(beta.ppf(0.025, 33.5, 7.5), abs=1e-6)
    assert high == pytest.approx(beta.ppf(0.975, 33.5, 7.5), abs=1e-6)
    assert low < 33 / 40 < high


def test_every_interval_holds_its_score():
    rng = np.random.default_rng(3)
    for _ in range(200):
        sizes = rng.integers(1, 12, size=rng.integers(1, 6))
        right = rng.binomial(sizes, rng.uniform(0, 1, sizes.size))
        out = score_intervals(_confusion(right, sizes))
        scores = {"accuracy_ci": right.sum() / sizes.sum(), "balanced_accuracy_ci": np.mean(right / sizes)}
        for key, score in scores.items():
            low, high = out[key]
            assert low - 1e-6 <= score <= high + 1e-6, (key, right, sizes, out[key])


def test_all_right_keeps_a_lower_bound_below_one_that_rises_with_more_samples():
    # the demo's held-out cells: 37 in six classes, two of them with 4 cells
    sizes = np.array([4, 4, 7, 7, 7, 8])
    intervals = [score_intervals(np.diag(sizes * k)) for k in (1, 2, 4, 10)]
    lows = [out["balanced_accuracy_ci"][0] for out in intervals]
    assert all(out["balanced_accuracy_ci"][1] == 1.0 and out["accuracy_ci"][1] == 1.0 for out in intervals)
    assert lows[0] < 0.95 and all(low < 1.0 for low in lows)
    assert lows == sorted(lows) and lows[-1] > 0.98, lows  # narrower as the classes grow
    # 37 of 37: the accuracy's lower bound is the Jeffreys one, about 0.935
    assert intervals[0]["accuracy_ci"][0] == pytest.approx(beta.ppf(0.025, 37.5, 0.5), abs=1e-6)
    # the balanced accuracy, whose small classes weigh more, is less certain than the accuracy
    assert intervals[0]["balanced_accuracy_ci"][0] < intervals[0]["accuracy_ci"][0]


def test_all_wrong_keeps_an_upper_bound_above_zero():
    confusion = np.array([[0, 6], [9, 0]])
    out = score_intervals(confusion)
    assert out["accuracy_ci"][0] == 0.0 and 0.0 < out["accuracy_ci"][1] < 0.3
    assert out["balanced_accuracy_ci"][0] == 0.0 and 0.0 < out["balanced_accuracy_ci"][1] < 0.4


def test_equal_classes_give_the_accuracy_interval_and_more_samples_a_narrower_one():
    small = score_intervals(np.array([[8, 2], [2, 8]]))
    assert small["balanced_accuracy_ci"] == pytest.approx(small["accuracy_ci"], abs=1e-6)
    large = score_intervals(np.array([[80, 20], [20, 80]]))["balanced_accuracy_ci"]
    assert large[1] - large[0] < small["balanced_accuracy_ci"][1] - small["balanced_accuracy_ci"][0]


@pytest.mark.parametrize("sizes, recalls", [
    ((40,), (0.85,)),                            # one class: a plain proportion
    ((10, 20, 30), (0.7, 0.85, 0.95)),           # unequal classes and recalls
    ((4, 4, 7, 7, 7, 8), (0.9,) * 6),            # the demo's held-out class sizes, near-perfect recalls
    ((4, 4, 15, 15), (0.95, 0.95, 0.99, 0.99)),  # 4:1, tiny classes almost always right
    ((4, 4, 15, 15), (0.6, 0.6, 0.95, 0.95)),    # 4:1, the small classes hard
])
def test_intervals_cover_the_true_score_about_95_percent_of_the_time(sizes, recalls):
    """Simulated test sets (binomial hits per class): how often does the 95 % interval hold the truth?"""
    rng = np.random.default_rng(11)
    sizes, recalls = np.array(sizes), np.array(recalls)
    true_accuracy, true_balanced = float(np.sum(sizes * recalls) / sizes.sum()), float(recalls.mean())
    covered = {"accuracy_ci": 0, "balanced_accuracy_ci": 0}
    runs = 600
    for _ in range(runs):
        out = score_intervals(_confusion(rng.binomial(sizes, recalls), sizes))
        covered["accuracy_ci"] += out["accuracy_ci"][0] <= true_accuracy <= out["accuracy_ci"][1]
        low, high = out["balanced_accuracy_ci"]
        covered["balanced_accuracy_ci"] += low <= true_balanced <= high
    for key, hits in covered.items():
        assert 0.87 <= hits / runs <= 0.995, (key, hits / runs)


def test_jeffreys_interval_boundaries():
    assert jeffreys_interval(0, 10)[0] == 0.0 and jeffreys_interval(10, 10)[1] == 1.0
    assert jeffreys_interval(5, 10) == pytest.approx((beta.ppf(0.025, 5.5, 5.5), beta.ppf(0.975, 5.5, 5.5)))
    wider = jeffreys_interval(5, 10, level=0.99)
    assert wider[0] < jeffreys_interval(5, 10)[0]


def test_a_perfect_score_says_how_low_it_could_be():
    confusion = np.diag([4, 4, 7, 7, 7, 8])
    note = perfect_score_note(confusion)
    low = score_intervals(confusion)["balanced_accuracy_ci"][0]
    assert "37" in note and f"{low:.2f}" in note
    assert perfect_score_note(np.array([[9, 1], [0, 10]])) is None


def test_empty_confusion_has_no_interval():
    out = score_intervals(np.zeros((3, 3), dtype=int))
    assert out["accuracy_ci"] is None and out["balanced_accuracy_ci"] is None


def test_small_classes_are_named_with_their_counts():
    confusion = np.array([[3, 0, 0], [0, 12, 1], [1, 0, 0]])
    counts = class_test_counts(confusion, ["rare", "common", "absent-ish"])
    assert counts["n_test_per_class"] == {"rare": 3, "common": 13, "absent-ish": 1}
    assert counts["small_test_classes"] == ["rare", "absent-ish"]
    assert "rare (3)" in counts["small_test_note"]
    assert class_test_counts(np.diag([5, 6]), ["a", "b"])["small_test_note"] is None


def test_interval_agrees_with_classification_metrics():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 3, 60)
    predicted = np.where(rng.random(60) < 0.7, true, rng.integers(0, 3, 60))
    metrics, confusion, _ = classification_metrics(true, predicted, 3, ["a", "b", "c"])
    out = score_intervals(confusion)
    assert out["accuracy_ci"][0] <= metrics["accuracy"] <= out["accuracy_ci"][1]
    assert out["balanced_accuracy_ci"][0] <= metrics["balanced_accuracy"] <= out["balanced_accuracy_ci"][1]


def test_train_summary_carries_intervals_and_counts(planted_images):
    from rnaimg_core.model import train_model

    summary = train_model(planted_images, epochs=2, seed=0, n_models=1).summary()
    for key in ("accuracy_ci", "balanced_accuracy_ci", "baseline_accuracy_ci", "baseline_balanced_accuracy_ci"):
        low, high = summary[key]
        assert 0.0 <= low <= high <= 1.0, (key, summary[key])
    assert summary["accuracy_ci"][0] <= summary["accuracy"] <= summary["accuracy_ci"][1]
    assert sum(summary["n_test_per_class"].values()) == summary["n_test"]
    assert set(summary["n_test_per_class"]) == set(summary["classes"])
    assert summary["small_test_classes"] == []
    assert summary["small_test_note"] is None
    assert "Jeffreys" in summary["interval_method"]
    no_baseline = train_model(planted_images, epochs=1, seed=0, baseline=False, n_models=1).summary()
    assert no_baseline["baseline_accuracy_ci"] is None and no_baseline["baseline_balanced_accuracy_ci"] is None
