"""The flat baseline (rnaimg_core.model.baseline) is scikit-learn's L2 logistic regression, C=1, balanced."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from rnaimg_core.model.baseline import DESCRIPTION, fit_baseline, score_baseline
from rnaimg_core.model.metrics import classification_metrics
from rnaimg_core.splits import FIT, holdout_split


def _demo_split(demo_expression):
    """Normalised demo genes (log2, z-score fitted on the fit rows), class indices, fit and test rows."""
    expr = demo_expression
    split = holdout_split(expr.labels, expr.n_samples, 0.25, seed=0)
    train, test = np.flatnonzero(split == FIT), np.flatnonzero(split != FIT)
    logged = np.log2(expr.values[:, :1500].astype(np.float64) + 1.0)
    mean, std = logged[train].mean(0), logged[train].std(0)
    features = np.where(std > 0, (logged - mean) / np.where(std > 0, std, 1.0), 0.0)
    class_names = sorted(set(expr.labels.tolist()))
    return features, np.searchsorted(class_names, expr.labels), train, test, class_names


def test_the_baseline_is_scikit_learns_balanced_logistic_regression(demo_expression):
    """Fitted on the train rows of a normalised matrix, it predicts what scikit-learn's model predicts."""
    features, y, train, test, class_names = _demo_split(demo_expression)
    features[:, :40] = 0.0  # columns empty in every row are left out: the same model (their L2 weight is 0)
    reference = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000, random_state=3)
    reference.fit(features[train], y[train])
    fitted = fit_baseline(features, y, train, seed=3)
    assert fitted.n_train == train.size and fitted.n_features == features.shape[1] - 40
    np.testing.assert_array_equal(fitted.predict(features[test]), reference.predict(features[test]))
    np.testing.assert_allclose(fitted.model.predict_proba(features[test][:, 40:]),
                               reference.predict_proba(features[test]), atol=1e-4)
    assert fitted.model.C == 1.0 and fitted.model.class_weight == "balanced"

    scores = score_baseline(features, y, train, test, class_names, seed=3)
    metrics, confusion, _ = classification_metrics(y[test], reference.predict(features[test]), len(class_names),
                                                   class_names)
    assert {k: scores[k] for k in metrics} == metrics
    assert scores["confusion"] == confusion.tolist() and scores["model"] == DESCRIPTION
    np.testing.assert_array_equal(scores["predicted"], reference.predict(features[test]))
    assert scores["balanced_accuracy"] > 0.8  # the demo's six cell types separate on their genes


def test_images_are_flattened_and_empty_pixels_left_out(planted_images):
    """Images (n, c, h, w) are read as flat pixel vectors; pixels empty in every image carry no weight."""
    images = planted_images.images.copy()
    images[:, :, 0, :3] = 0.0  # three pixels without a gene
    labels = np.asarray(planted_images.labels)
    train = np.flatnonzero(planted_images.split == FIT)
    fitted = fit_baseline(images, labels, train, seed=0)
    flat = images.reshape(len(images), -1)
    assert fitted.n_features == flat.shape[1] - 3 * images.shape[1]
    np.testing.assert_array_equal(fitted.predict(images), fitted.predict(flat))
    assert fitted.predict(images[:0]).shape == (0,)
