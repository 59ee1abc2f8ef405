"""Summaries of images the dashboard shows: class means, class-minus-rest, colour range, samples per class."""

from __future__ import annotations

import numpy as np
import pytest

from rnaimg_core.images import class_difference_images, class_mean_images, samples_per_class, shared_range


def test_class_means_and_differences():
    images = np.array([[[[1.0]]], [[[3.0]]], [[[10.0]]], [[[20.0]]]], dtype=np.float32)
    labels = np.array(["b", "b", "a", "a"])
    classes, means = class_mean_images(images, labels)
    assert classes == ["a", "b"]
    assert means.dtype == np.float32 and means.shape == (2, 1, 1, 1)
    assert means[:, 0, 0, 0].tolist() == [15.0, 2.0]
    _, diffs = class_difference_images(images, labels)
    assert diffs[:, 0, 0, 0].tolist() == [13.0, -13.0]


def test_class_difference_is_mean_minus_mean_of_the_rest():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(30, 2, 3, 4)).astype(np.float32)
    labels = rng.choice(["x", "y", "z"], size=30)
    classes, diffs = class_difference_images(images, labels)
    for i, name in enumerate(classes):
        expected = images[labels == name].mean(axis=0) - images[labels != name].mean(axis=0)
        np.testing.assert_allclose(diffs[i], expected, atol=1e-5)


def test_shared_range_is_symmetric_when_asked():
    lo, hi = shared_range([np.array([-1.0, 3.0]), np.array([0.5])], symmetric=True, percentile=100)
    assert (lo, hi) == (-3.0, 3.0)
    assert shared_range([np.full(3, np.nan)]) == (0.0, 1.0)
    lo, hi = shared_range([np.full(4, 2.0)])
    assert lo == pytest.approx(2.0) and hi == pytest.approx(3.0)


def test_samples_per_class_is_seeded_and_grouped():
    labels = np.array(["b", "a", "b", "a", "a", "b", "c"])
    picked = samples_per_class(labels, 2)
    assert picked == samples_per_class(labels, 2)
    assert [labels[i] for i in picked] == ["a", "a", "b", "b", "c"]
    assert [labels[i] for i in samples_per_class(labels, 1, ["c", "a"])] == ["c", "a"]
    assert samples_per_class(None, 2) == list(range(8))
