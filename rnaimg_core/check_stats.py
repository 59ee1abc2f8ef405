"""Statistics of the layout check: fold-score intervals, paired differences, one p-value, the verdict.

The folds of one repeat share most of their training samples, so fold scores are
not independent and a plain t-interval over folds is too narrow. Means get the
corrected resampled t-interval of Nadeau & Bengio (2003): the variance of the
mean is ``(1/J + n_test/n_train) * s**2`` over the ``J`` folds run, with Student's
t on ``J - 1`` degrees of freedom (the corrected repeated-CV t-test of Bouckaert &
Frank 2004 for paired differences).

**Never narrower than the test counts allow.** When every fold scores the same
(1.000 in every fold, or a layout and its control with the same score in every
fold) the t-interval has zero width, which is not an honest interval for a few
dozen test samples. Every interval is therefore the union (the wider bounds) of
the corrected t-interval and an interval from the pooled out-of-fold predictions,
each sample counted once however many repeats tested it:
:func:`pooled_score_interval` for a score, :func:`paired_difference_interval` for
a paired difference.

**One statistic, one verdict.** A difference gets one two-sided p-value, the larger
of the corrected t-test's and the paired per-sample test's: the union interval at
level ``1 - a`` excludes 0 exactly when both tests reject at ``a``, so "p < a"
and "the interval excludes 0" always agree (:func:`difference_test`). When several
models answer the same question (the layout check's pooled probe and image-only
CNN), each is tested at ``a / m`` (Bonferroni; :func:`adjusted_level`) and reports
``min(1, m * p)``, so the question's false-claim rate stays at most ``a``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from rnaimg_core.model.metrics import count_intervals

__all__ = ["HELPS", "HURTS", "LEVEL", "NO_EVIDENCE", "adjusted_level", "difference_test", "mean_interval",
           "paired_difference_interval", "pooled_score_interval", "verdict", "widest"]

HELPS, NO_EVIDENCE, HURTS = "arrangement helps", "no evidence it helps", "arrangement hurts"
LEVEL = 0.95


def _stats():
    """scipy.stats, loaded on first use: it took 1 s of every start of the command line."""
    from scipy import stats  # noqa: PLC0415 (lazy: scipy.stats loads on first use, not at every start: 1 s)

    return stats


def mean_interval(values: Sequence[float], *, test_train_ratio: float = 0.0, level: float = LEVEL,
                  bounds: tuple[float, float] | None = None) -> tuple[float, list[float] | None]:
    """Mean of fold scores and its corrected resampled t-interval (Nadeau & Bengio 2003).

    Parameters
    ----------
    values : one score (or paired difference) per fold
    test_train_ratio : mean ``n_test / n_train`` of the folds; 0 gives the plain t-interval
    level : coverage of the interval
    bounds : clip the interval to these (e.g. ``(0, 1)`` for accuracies)

    Returns
    -------
    (mean, [low, high]); the interval is None with fewer than two values
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return float("nan"), None
    mean = float(values.mean())
    if values.size < 2:
        return mean, None
    variance = (1 / values.size + test_train_ratio) * values.var(ddof=1)
    half = float(_stats().t.ppf(0.5 + level / 2, values.size - 1) * math.sqrt(variance))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(bounds[0], low), min(bounds[1], high)
    return mean, [low, high]


def _pooled_counts(labels: np.ndarray, records: Sequence[dict]) -> tuple[list, np.ndarray, np.ndarray]:
    """Per class: the pooled test count over ``records`` and the number of distinct samples tested."""
    tested = np.concatenate([np.asarray(r["test_index"], dtype=np.int64) for r in records])
    classes = sorted(set(labels[tested].tolist()))
    pooled = np.array([np.sum(labels[tested] == c) for c in classes], dtype=float)
    distinct = np.array([np.sum(labels[np.unique(tested)] == c) for c in classes], dtype=float)
    return classes, pooled, distinct


def pooled_score_interval(labels: Sequence[str], records: Sequence[dict], *,
                          level: float = LEVEL) -> dict | None:
    """Jeffreys intervals of accuracy and balanced accuracy from pooled out-of-fold predictions.

    The fold records of one model are pooled into one confusion of right and wrong per
    class; each class's counts are scaled to its *distinct* test samples (repeated folds
    test the same samples again, which must not narrow the interval) and rounded, and
    :func:`rnaimg_core.model.metrics.count_intervals` gives the intervals (balanced
    accuracy at its effective number of test samples).

    Parameters
    ----------
    labels : class of every sample of the check
    records : fold records with ``test_index`` (sample indices) and ``correct`` (0/1 per test sample)
    level : coverage of the intervals

    Returns
    -------
    dict with ``accuracy_ci`` and ``balanced_accuracy_ci``, or None without records
    """
    if not records:
        return None
    labels = np.asarray(labels).astype(str)
    classes, pooled, distinct = _pooled_counts(labels, records)
    right = np.zeros(len(classes))
    for record in records:
        index, correct = np.asarray(record["test_index"], dtype=np.int64), np.asarray(record["correct"], dtype=bool)
        for k, c in enumerate(classes):
            right[k] += np.sum(correct & (labels[index] == c))
    right = np.rint(right * distinct / pooled).astype(np.int64)
    intervals = count_intervals(right, distinct.astype(np.int64), level=level)
    return {"accuracy_ci": intervals["accuracy_ci"], "balanced_accuracy_ci": intervals["balanced_accuracy_ci"]}


def paired_difference_interval(labels: Sequence[str], records: Sequence[dict], others: Sequence[dict], *,
                               level: float = LEVEL, with_p_value: bool = False):
    """Interval of balanced accuracy (first − other) from paired pooled out-of-fold predictions.

    Records pair by ``(repeat, fold)`` (same test samples). Per class ``c`` with
    ``n_c`` distinct test samples, ``a_c`` and ``b_c`` are the shares of samples only
    the first model got right and only the other got right: the pooled counts scaled
    to the ``n_c`` distinct samples (repeats must not narrow the interval), at their
    Jeffreys posterior means (``(count + 1/2) / (n_c + 3/2)``, three outcomes: only
    first, only other, both or neither). The difference of balanced accuracies is the
    mean over classes of the observed (pooled) difference of those shares, with variance
    ``sum_c (a_c + b_c - (a_c - b_c)**2) / n_c / C**2``; the interval is its normal
    interval, clipped to [-1, 1]. When both models got the same samples right it is
    centred on 0 with a half-width that shrinks like ``1 / n`` per class, never
    zero.

    Parameters
    ----------
    labels : class of every sample of the check
    records, others : fold records of the two models, with ``repeat``, ``fold``,
        ``test_index`` and ``correct``
    level : coverage of the interval

    with_p_value : also return the two-sided normal p-value of the difference and the difference

    Returns
    -------
    [low, high], or None when no fold has both models; with ``with_p_value``
    ``([low, high], p_value, difference)``
    """
    labels = np.asarray(labels).astype(str)
    other_by_fold = {(r["repeat"], r["fold"]): r for r in others}
    pairs = [(r, other_by_fold[(r["repeat"], r["fold"])]) for r in records
             if (r["repeat"], r["fold"]) in other_by_fold]
    if not pairs:
        return None
    classes, pooled, distinct = _pooled_counts(labels, [first for first, _ in pairs])
    only_first, only_other = np.zeros(len(classes)), np.zeros(len(classes))
    for first, other in pairs:
        index = np.asarray(first["test_index"], dtype=np.int64)
        if not np.array_equal(index, np.asarray(other["test_index"], dtype=np.int64)):
            raise ValueError(f"Fold {first['fold']} of repeat {first['repeat']} tested different samples.")
        mine, theirs = np.asarray(first["correct"], dtype=bool), np.asarray(other["correct"], dtype=bool)
        for k, c in enumerate(classes):
            in_class = labels[index] == c
            only_first[k] += np.sum(mine & ~theirs & in_class)
            only_other[k] += np.sum(~mine & theirs & in_class)
    difference = float(np.mean((only_first - only_other) / pooled))
    scale = distinct / pooled  # each sample once, however many repeats tested it
    a, b = (only_first * scale + 0.5) / (distinct + 1.5), (only_other * scale + 0.5) / (distinct + 1.5)
    variance = float(np.sum((a + b - (a - b) ** 2) / distinct)) / len(classes) ** 2
    half = float(_stats().norm.ppf(0.5 + level / 2)) * math.sqrt(variance)
    interval = [max(-1.0, difference - half), min(1.0, difference + half)]
    if not with_p_value:
        return interval
    return interval, float(2 * _stats().norm.sf(abs(difference) / math.sqrt(variance))), difference


def widest(*intervals: list[float] | None) -> list[float] | None:
    """The union of the given intervals (lowest low, highest high); None when the first is None."""
    if intervals[0] is None:
        return None
    present = [i for i in intervals if i is not None]
    return [min(i[0] for i in present), max(i[1] for i in present)]


def verdict(interval: list[float] | None) -> str:
    """The plain-language verdict from the interval of layout − control (never from the mean alone)."""
    if interval is None:
        return NO_EVIDENCE
    if interval[0] > 0:
        return HELPS
    if interval[1] < 0:
        return HURTS
    return NO_EVIDENCE


def adjusted_level(level: float, n_tests: int) -> float:
    """Bonferroni: the per-test coverage that keeps ``n_tests`` tests of one question at ``level`` together."""
    return 1.0 - (1.0 - float(level)) / max(1, int(n_tests))


def _t_part(differences: np.ndarray, test_train_ratio: float, level: float) -> tuple[float, list[float], float]:
    """Mean, corrected t-interval and two-sided p-value of per-fold differences (two folds at least)."""
    mean = float(differences.mean())
    variance = (1 / differences.size + test_train_ratio) * differences.var(ddof=1)
    df = differences.size - 1
    if not variance > 0:  # every fold the same: the t-part says nothing beyond its mean
        return mean, [mean, mean], 1.0 if mean == 0 else 0.0
    se = math.sqrt(variance)
    half = float(_stats().t.ppf(0.5 + level / 2, df)) * se
    return mean, [mean - half, mean + half], float(2 * _stats().t.sf(abs(mean) / se, df))


def difference_test(differences: Sequence[float], *, test_train_ratio: float = 0.0, level: float = LEVEL,
                    labels: Sequence[str] | None = None, records: Sequence[dict] | None = None,
                    others: Sequence[dict] | None = None, n_tests: int = 1) -> dict:
    """Mean paired difference, its interval and one p-value that agrees with it.

    Parameters
    ----------
    differences : per-fold differences of a score (model − other), paired by fold
    test_train_ratio : mean ``n_test / n_train`` of the folds (the Nadeau & Bengio correction)
    level : coverage asked for the question (before any Bonferroni split)
    labels, records, others : the per-sample results of the two models (see
        :func:`paired_difference_interval`); without them the t-part alone
    n_tests : how many tests answer the same question (Bonferroni)

    Returns
    -------
    dict: ``mean``, ``ci`` (at :func:`adjusted_level`; None with fewer than two folds),
    ``level`` (that coverage), ``p_value`` (two-sided, Bonferroni-adjusted; None without an
    interval), ``folds``
    """
    d = np.asarray(differences, dtype=float)
    used_level = adjusted_level(level, n_tests)
    out = {"mean": float(d.mean()) if d.size else float("nan"), "ci": None, "p_value": None,
           "folds": int(d.size), "level": used_level}
    if d.size < 2:
        return out
    mean, interval, p_value = _t_part(d, test_train_ratio, used_level)
    if labels is not None and records and others:
        paired = paired_difference_interval(labels, records, others, level=used_level, with_p_value=True)
        if paired is not None:
            paired_ci, paired_p, paired_mean = paired
            interval = widest(interval, paired_ci)
            # the union excludes 0 exactly when both parts do, on the same side
            same_side = np.sign(paired_mean) == np.sign(mean)
            p_value = max(p_value, paired_p) if same_side else 1.0
    out.update(mean=mean, ci=[max(-1.0, interval[0]), min(1.0, interval[1])],
               p_value=min(1.0, p_value * max(1, int(n_tests))))
    return out
