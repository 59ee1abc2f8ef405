"""Classification scores, rounded as reported (model.json, ``rnaimg train --json``)."""

from __future__ import annotations

import numpy as np


def classification_metrics(true: np.ndarray, predicted: np.ndarray, n_classes: int,
                           class_names: list[str]) -> tuple[dict, np.ndarray, list[dict]]:
    """Accuracy, balanced accuracy, confusion matrix and per-class table for class indices.

    Parameters
    ----------
    true, predicted : ndarray of int, shape (n,), class indices
    n_classes : number of classes (rows and columns of the confusion matrix)
    class_names : name of each class index

    Returns
    -------
    metrics : dict with accuracy, balanced_accuracy (over the classes present) and n_test
    confusion : ndarray (n_classes, n_classes), rows true class, columns predicted
    per_class : list of dicts: class, precision, recall, f1, support
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support  # noqa: PLC0415 (lazy: scikit-learn loads in ~0.5 s; only some paths need it)

    classes = np.arange(n_classes)
    confusion = confusion_matrix(true, predicted, labels=classes)
    present = confusion.sum(axis=1) > 0
    recall = np.divide(np.diag(confusion), confusion.sum(axis=1), out=np.zeros(n_classes), where=present)
    metrics = {
        "accuracy": round(float(np.mean(true == predicted)) if true.size else float("nan"), 6),
        # balanced accuracy over the classes present among the test samples (sklearn's definition)
        "balanced_accuracy": round(float(recall[present].mean()) if present.any() else float("nan"), 6),
        "n_test": int(true.size),
    }
    precision, rec, f1, support = precision_recall_fscore_support(true, predicted, labels=classes, zero_division=0)
    per_class = [{"class": class_names[k], "precision": round(float(precision[k]), 6),
                  "recall": round(float(rec[k]), 6), "f1": round(float(f1[k]), 6), "support": int(support[k])}
                 for k in classes]
    return metrics, confusion, per_class


# ---------------------------------------------------------------- uncertainty

LEVEL = 0.95
SMALL_CLASS = 5  # fewer test samples than this in a class: its recall rests on too few cells to read alone
INTERVAL_METHOD = ("Jeffreys intervals: accuracy from k of n test samples right; balanced accuracy from the mean "
                   "recall at its effective number of test samples")


def jeffreys_interval(successes: float, trials: float, level: float = LEVEL) -> tuple[float, float]:
    """Equal-tailed Jeffreys interval of a proportion: quantiles of Beta(k + 1/2, n - k + 1/2).

    With Brown, Cai & DasGupta's (2001) boundary rule: the lower bound is 0 when
    ``successes`` is 0 and the upper bound 1 when every trial succeeded, so the
    interval always holds the observed proportion. Unlike a bootstrap over the
    samples it never collapses: 37 of 37 right gives about [0.935, 1].

    Parameters
    ----------
    successes, trials : k and n (``trials`` > 0; both may be fractional, see :func:`score_intervals`)
    level : coverage of the interval

    Returns
    -------
    (low, high)
    """
    from scipy.stats import beta  # noqa: PLC0415 (lazy: scipy.stats loads in ~0.3 s; only some paths need it)

    tail = (1 - level) / 2
    low = 0.0 if successes <= 0 else float(beta.ppf(tail, successes + 0.5, trials - successes + 0.5))
    high = 1.0 if successes >= trials else float(beta.ppf(1 - tail, successes + 0.5, trials - successes + 0.5))
    return low, high


def score_intervals(confusion: np.ndarray, *, level: float = LEVEL) -> dict:
    """Intervals of accuracy and balanced accuracy on the test samples, honest at 100 % and 0 %.

    **Accuracy** is k right of n test samples: the Jeffreys interval of k of n
    (:func:`jeffreys_interval`).

    **Balanced accuracy** is the mean recall over the C classes present. Its
    variance is ``sum_c r_c (1 - r_c) / n_c / C**2``, with each class's recall
    ``r_c`` taken at its Jeffreys posterior mean ``(k_c + 1/2) / (n_c + 1)`` (never
    exactly 0 or 1, so a class with every sample right still carries the
    uncertainty of its few samples). The balanced accuracy is then treated as a
    proportion of its *effective number of test samples* ``n_eff = r (1 - r) /
    variance`` (``r`` the mean of those recalls; at most n): the Jeffreys interval
    of ``balanced_accuracy * n_eff`` of ``n_eff``. Small classes weigh more in the
    mean, so ``n_eff`` is below n and the interval wider than the accuracy's; with
    equal classes it is the accuracy's interval. When every test sample is right
    the interval is ``[low, 1]`` with ``low`` below 1, rising towards 1 as the
    classes grow.

    Why not a bootstrap over test samples: it collapses to [1, 1] when every
    sample is right (and to [0, 0] when all are wrong). Why not a simulation of
    per-class Beta posteriors: with classes of 4-8 test samples and recalls near 1
    (the demo's held-out cells) the prior's pull towards 0.5, averaged over the
    classes, left about 85 % of simulated 95 % intervals covering the true value;
    this interval covered 89-98 % over the cases tried (``tests/test_metrics.py``).

    Parameters
    ----------
    confusion : ndarray (n_classes, n_classes), rows true class, columns predicted
    level : coverage of the intervals

    Returns
    -------
    dict with ``accuracy_ci`` and ``balanced_accuracy_ci`` (``[low, high]`` rounded to
    6 digits, None when there are no test samples), ``level`` and ``method`` (a sentence)
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    return count_intervals(np.diag(confusion), confusion.sum(axis=1), level=level)


def count_intervals(right: np.ndarray, support: np.ndarray, *, level: float = LEVEL) -> dict:
    """:func:`score_intervals` from per-class counts: ``right[c]`` of ``support[c]`` test samples right.

    Classes with no test samples are left out; the returned dict is :func:`score_intervals`'.
    """
    right, support = np.asarray(right, dtype=np.int64), np.asarray(support, dtype=np.int64)
    present = support > 0
    out = {"accuracy_ci": None, "balanced_accuracy_ci": None, "level": level, "method": INTERVAL_METHOD}
    if not present.any():
        return out
    right, counts = right[present], support[present]
    out["accuracy_ci"] = _rounded(jeffreys_interval(int(right.sum()), int(counts.sum()), level))
    balanced = float(np.mean(right / counts))
    recalls = (right + 0.5) / (counts + 1.0)
    variance = float(np.sum(recalls * (1 - recalls) / counts)) / counts.size ** 2
    mean_recall = float(recalls.mean())
    n_effective = min(mean_recall * (1 - mean_recall) / variance, float(counts.sum()))
    out["balanced_accuracy_ci"] = _rounded(jeffreys_interval(balanced * n_effective, n_effective, level))
    return out


def _rounded(interval: tuple[float, float]) -> list[float]:
    return [round(float(interval[0]), 6), round(float(interval[1]), 6)]


def class_test_counts(confusion: np.ndarray, class_names: list[str], *, small: int = SMALL_CLASS) -> dict:
    """Test samples per class, the classes with fewer than ``small``, and a sentence saying so.

    Returns
    -------
    dict with ``n_test_per_class`` ({class: n}), ``small_test_classes`` (list) and
    ``small_test_note`` (str, or None when every class has at least ``small`` test samples)
    """
    support = np.asarray(confusion).sum(axis=1).astype(int)
    counts = {str(name): int(n) for name, n in zip(class_names, support)}
    few = [name for name, n in counts.items() if n < small]
    note = None
    if few:
        listed = ", ".join(f"{name} ({counts[name]})" for name in few)
        note = (f"Fewer than {small} test samples in {listed}: the recall of such a class, and so the balanced "
                "accuracy, moves a lot with one sample; read the intervals, not the point values.")
    return {"n_test_per_class": counts, "small_test_classes": few, "small_test_note": note}


def perfect_score_note(confusion: np.ndarray, who: str = "the CNN") -> str | None:
    """A sentence when every test sample is right: 100 % on few samples means "no error seen", not proof.

    It gives the lower bound of the balanced accuracy's 95 % interval (:func:`score_intervals`).
    """
    confusion = np.asarray(confusion)
    n = int(confusion.sum())
    if n == 0 or int(np.trace(confusion)) != n:
        return None
    low = score_intervals(confusion)["balanced_accuracy_ci"][0]
    return (f"All {n} test samples were classified correctly by {who}: no error seen, yet with so few samples "
            f"the balanced accuracy could be as low as {low:.2f} (lower end of its 95 % interval).")
