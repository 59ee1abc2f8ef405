"""Uncertainty of held-out scores: bootstrap intervals, test samples per class, the train summary keys."""

from __future__ import annotations

import numpy as np
import pytest

from rnaimg_core.model.metrics import (bootstrap_intervals, class_test_counts, classification_metrics,
                                       perfect_score_note)


def test_interval_holds_the_score_and_is_reproducible():
    confusion = np.array([[18, 2], [5, 15]])  # accuracy 33/40, balanced (0.9 + 0.75) / 2
    out = bootstrap_intervals(confusion)
    low, high = out["accuracy_ci"]
    assert low < 33 / 40 < high
    low, high = out["balanced_accuracy_ci"]
    assert low < 0.825 < high
    assert out == bootstrap_intervals(confusion), "same confusion, same seed: same interval"


def test_interval_width_matches_the_binomial_standard_error():
    # one class of 100 samples, 80 right: the stratified bootstrap is a binomial(100, 0.8) draw,
    # so the 95 % interval is about 0.8 +- 1.96 * sqrt(0.8 * 0.2 / 100) = 0.8 +- 0.078
    low, high = bootstrap_intervals(np.array([[80, 20], [0, 0]]))["accuracy_ci"]
    assert high - low == pytest.approx(2 * 1.96 * 0.04, abs=0.02)


def test_more_test_samples_give_a_narrower_interval():
    small = bootstrap_intervals(np.array([[8, 2], [2, 8]]))["balanced_accuracy_ci"]
    large = bootstrap_intervals(np.array([[80, 20], [20, 80]]))["balanced_accuracy_ci"]
    assert large[1] - large[0] < small[1] - small[0]


def test_every_sample_right_collapses_the_interval_and_the_note_says_so():
    confusion = np.diag([10, 12, 15])
    assert bootstrap_intervals(confusion)["accuracy_ci"] == [1.0, 1.0]
    note = perfect_score_note(confusion)
    assert "37" in note and "0.92" in note  # 1 - 3/37
    assert perfect_score_note(np.array([[9, 1], [0, 10]])) is None


def test_empty_confusion_has_no_interval():
    out = bootstrap_intervals(np.zeros((3, 3), dtype=int))
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
    out = bootstrap_intervals(confusion)
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
    no_baseline = train_model(planted_images, epochs=1, seed=0, baseline=False, n_models=1).summary()
    assert no_baseline["baseline_accuracy_ci"] is None and no_baseline["baseline_balanced_accuracy_ci"] is None
