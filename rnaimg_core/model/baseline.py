"""The flat baseline: one L2 logistic regression, fitted and scored the same way everywhere.

Training (:func:`rnaimg_core.model.train.train_model`, shown on the dashboard's Train page),
training from an images store (:func:`rnaimg_core.model.data.train_streamed`) and the layout
check all score a CNN against this model:

* scikit-learn's ``LogisticRegression`` with the L2 penalty at ``C = 1``
  (:data:`BASELINE_C`), ``class_weight="balanced"`` (each class weighs the same in the loss,
  however many samples it has), ``max_iter=1000`` and ``random_state=seed``;
* fitted on the **training rows** of a normalised samples x features matrix (the images'
  pixels flattened, or the layout's normalised genes), and scored on the **test rows**;
* columns that are zero in every training row (empty pixels, genes without signal) are left
  out: their L2-penalised weight is 0 anyway, and leaving them out saves the solver the work.

Use :func:`fit_baseline` for a fitted model (``predict`` on any rows, for example in
batches) or :func:`score_baseline` for the scores on the test rows in one call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rnaimg_core.model.metrics import classification_metrics

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression

BASELINE_C = 1.0        # inverse L2 strength (scikit-learn's default); the linear warm start uses the same
BASELINE_MAX_ITER = 1000
DESCRIPTION = "LogisticRegression(C=1, L2, class_weight='balanced')"


def baseline_model(seed: int = 0) -> LogisticRegression:
    """The unfitted baseline estimator: L2 logistic regression, C=1, balanced class weights, ``seed``."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 (lazy: scikit-learn loads on first fit, not at every start: 1.5 s)

    return LogisticRegression(C=BASELINE_C, class_weight="balanced", max_iter=BASELINE_MAX_ITER,
                              random_state=int(seed))


@dataclass(frozen=True)
class FittedBaseline:
    """A fitted baseline: the scikit-learn model and the columns it reads.

    Attributes
    ----------
    model : the fitted ``LogisticRegression``
    columns : ndarray of bool, shape (n_features,): the columns fitted on (non-zero in some training row)
    n_train : training rows it was fitted on
    """

    model: LogisticRegression
    columns: np.ndarray
    n_train: int

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predicted labels of the rows of ``features`` (shape (n, n_features), or images (n, c, h, w))."""
        features = np.asarray(features)
        if len(features) == 0:
            return np.empty(0, dtype=self.model.classes_.dtype)
        flat = features.reshape(len(features), -1)
        return self.model.predict(flat[:, self.columns])

    @property
    def n_features(self) -> int:
        """Columns the model was fitted on."""
        return int(self.columns.sum())


def fit_baseline(features: np.ndarray, labels: np.ndarray, train: np.ndarray | None = None, *,
                 seed: int = 0) -> FittedBaseline:
    """Fit the baseline on the training rows of a normalised matrix.

    Parameters
    ----------
    features : ndarray, shape (n_samples, n_features) or images (n_samples, c, h, w) (flattened)
    labels : ndarray, shape (n_samples,): class of each row (class indices or names)
    train : row indices to fit on; None: every row
    seed : ``random_state`` of the solver

    Returns
    -------
    FittedBaseline
    """
    flat = np.asarray(features).reshape(len(features), -1)
    labels = np.asarray(labels)
    rows = np.arange(flat.shape[0]) if train is None else np.asarray(train, dtype=np.int64)
    fit_rows = flat[rows]
    columns = np.any(fit_rows != 0, axis=0)
    model = baseline_model(seed)
    model.fit(fit_rows[:, columns], labels[rows])
    return FittedBaseline(model=model, columns=columns, n_train=int(rows.size))


def score_baseline(features: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
                   class_names: list[str], *, seed: int = 0) -> dict:
    """Fit the baseline on the ``train`` rows and score it on the ``test`` rows.

    Parameters
    ----------
    features : ndarray, shape (n_samples, n_features) or images (n_samples, c, h, w)
    y : ndarray of int, shape (n_samples,): class index of each row
    train, test : row indices (disjoint)
    class_names : name of each class index
    seed : ``random_state`` of the solver

    Returns
    -------
    dict with the :func:`~rnaimg_core.model.metrics.classification_metrics` scores (accuracy,
    balanced_accuracy, n_test), ``confusion`` (list of lists), ``per_class``, ``predicted``
    (class index of each test row, in ``test`` order), ``n_train``, ``n_features``, ``model``
    (what was fitted) and ``seconds``
    """
    started = time.perf_counter()
    y = np.asarray(y)
    test = np.asarray(test, dtype=np.int64)
    fitted = fit_baseline(features, y, train, seed=seed)
    predicted = fitted.predict(np.asarray(features)[test]).astype(np.int64)
    metrics, confusion, per_class = classification_metrics(y[test], predicted, len(class_names), class_names)
    return {**metrics, "confusion": confusion.tolist(), "per_class": per_class, "predicted": predicted,
            "n_train": fitted.n_train, "n_features": fitted.n_features, "model": DESCRIPTION,
            "seconds": round(time.perf_counter() - started, 3)}
