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
