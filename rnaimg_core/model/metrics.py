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
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

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

N_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0
SMALL_CLASS = 5  # fewer test samples than this in a class: its recall rests on too few cells to read alone


def bootstrap_intervals(confusion: np.ndarray, *, n_resamples: int = N_BOOTSTRAP, level: float = 0.95,
                        seed: int = BOOTSTRAP_SEED) -> dict:
    """Percentile bootstrap intervals of accuracy and balanced accuracy, resampling test samples.

    The bootstrap is stratified by true class: each resample draws, within every
    class, as many test samples as the class has (with replacement). Test sets
    here are stratified by design, so class sizes are fixed quantities; keeping
    them fixed also keeps every class present, so balanced accuracy stays
    defined in every resample. Resampling a class's samples is a multinomial
    draw over its row of the confusion matrix, so the confusion matrix is all
    that is needed.

    Parameters
    ----------
    confusion : ndarray (n_classes, n_classes), rows true class, columns predicted
    n_resamples : bootstrap resamples
    level : coverage of the interval
    seed : seed of the resampling (the same confusion matrix always gives the same interval)

    Returns
    -------
    dict with ``accuracy_ci`` and ``balanced_accuracy_ci`` (``[low, high]``, rounded to 6
    digits, None when there are no test samples), ``n_resamples`` and ``level``
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    support = confusion.sum(axis=1)
    present = np.flatnonzero(support > 0)
    out = {"accuracy_ci": None, "balanced_accuracy_ci": None, "n_resamples": int(n_resamples), "level": level}
    if present.size == 0:
        return out
    rng = np.random.default_rng(seed)
    # correct[b, k]: resample b's correctly classified samples of class k (row k's diagonal cell)
    correct = np.stack([rng.binomial(support[k], confusion[k, k] / support[k], size=n_resamples)
                        for k in present], axis=1)
    accuracy = correct.sum(axis=1) / support[present].sum()
    balanced = (correct / support[present]).mean(axis=1)
    tail = 100 * (1 - level) / 2
    for key, values in (("accuracy_ci", accuracy), ("balanced_accuracy_ci", balanced)):
        low, high = np.percentile(values, [tail, 100 - tail])
        out[key] = [round(float(low), 6), round(float(high), 6)]
    return out


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
    """A sentence when every test sample is right: a bootstrap interval then collapses to [1, 1].

    With ``n`` test samples and none wrong, the one-sided 95 % lower bound of the
    accuracy is about ``1 - 3/n`` (the rule of three); the note says so.
    """
    confusion = np.asarray(confusion)
    n = int(confusion.sum())
    if n == 0 or int(np.trace(confusion)) != n:
        return None
    return (f"All {n} test samples were classified correctly by {who}: the bootstrap interval collapses to "
            f"[1, 1], yet with {n} samples the accuracy could be as low as {max(0.0, 1 - 3 / n):.2f} "
            "(95 %, rule of three).")
