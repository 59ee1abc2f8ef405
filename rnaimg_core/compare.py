"""Does this layout help? Each layout against its own random permutation and a flat baseline, on the same folds.

:func:`check_layouts` answers the question a biologist brings to the dashboard:
*for my data, does this arrangement of genes give a CNN something that the
same genes in random places do not, and how does it compare with a flat
model?* For every chosen generator and every fold of a repeated stratified
cross-validation (:func:`rnaimg_core.splits.stratified_folds`):

1. the layout is fitted on the fold's training samples only (its normalisation
   included), and every sample is turned into an image;
2. the CNN (:func:`rnaimg_core.model.train_model`, with the given
   :class:`~rnaimg_core.model.TrainSettings`) is trained on the training samples
   and scored on the fold's test samples;
3. the same CNN, with the same seed, is trained on the layout's own random
   permutation (:func:`rnaimg_core.compose.permutation_control`: same shape, same
   pixels, same genes sharing pixels; only which gene sits where is random);
4. once per fold, the flat baseline (logistic regression, L2, balanced class
   weights) is fitted on the same training samples' normalised genes (all genes,
   normalised as the first generator's layout normalises them) and scored on the
   same test samples.

Statistics
----------
The folds of one repeat share most of their training samples, so fold scores are
not independent and a plain t-interval over folds is too narrow. Means get the
corrected resampled t-interval of Nadeau & Bengio (2003): the variance of the
mean is ``(1/J + n_test/n_train) * s**2`` over the ``J`` folds run, with Student's
t on ``J - 1`` degrees of freedom. The paired difference layout − control is
computed per fold (both were trained on the same samples with the same seed), and
gets the same corrected interval and a two-sided sign-flip permutation p-value
(exact over all ``2**J`` sign patterns up to 16 folds, else 20,000 seeded random
patterns). The p-value treats folds as independent, which overstates the evidence
for repeated folds; the **verdict therefore rests on the corrected interval**:
"arrangement helps" when its lower end is above 0, "arrangement hurts" when its
upper end is below 0, "no evidence it helps" otherwise.

**Never narrower than the test counts allow.** When every fold scores the same
(the flat baseline at 1.000 in every fold, or a layout and its control with the
same score in every fold), the t-interval has zero width: not an honest 95 %
interval when the folds tested a few dozen samples. Every interval is therefore
the union (the wider bounds) of the corrected t-interval and an interval from the
pooled out-of-fold predictions, each sample counted once however many repeats
tested it (each class's pooled counts scaled to its distinct test samples):

- a row's balanced accuracy (and accuracy) also gets the Jeffreys interval of
  :func:`rnaimg_core.model.metrics.count_intervals` on those pooled counts
  (balanced accuracy at its effective number of test samples), as ``rnaimg
  train`` reports for one split (:func:`pooled_score_interval`);
- the paired difference also gets a paired interval on the same samples
  (:func:`paired_difference_interval`): per class, the rates of "only the layout
  right" and "only the other right" at their Jeffreys posterior means, so that a
  difference of exactly 0 on every sample still leaves an interval around 0 whose
  width shrinks as more samples are tested, never ``[0, 0]``.

Both need the per-sample results that :func:`check_layouts` records (``test_index``
and ``correct`` in each fold record, and the check's ``labels``); fold records
without them get the t-interval alone.

Cost and budget
---------------
Every fold trains two CNNs per generator. ``time_budget`` (seconds) is checked
before each fold: the check starts another fold only when the time spent plus
one fold's time so far fits in the budget; it always runs at least
:data:`MIN_FOLDS` folds, so that there is an interval, and it reports how many
folds ran out of how many planned. :data:`QUICK` is a cheaper setting (fewer
folds, one repeat, fewer epochs) for a first look.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from rnaimg_core import splits
from rnaimg_core.compose import permutation_control
from rnaimg_core.errors import InputError
from rnaimg_core.expression import as_expression
from rnaimg_core.generators import REGISTRY, Generator, get_generator
from rnaimg_core.images import ImageSet
from rnaimg_core.layout import Layout, json_default
from rnaimg_core.model import TrainSettings, classification_metrics, train_model
from rnaimg_core.model.train import stop_requested
from rnaimg_core.outputs import atomic_output

__all__ = ["HELPS", "HURTS", "LEVEL", "LayoutCheck", "MIN_FOLDS", "NO_EVIDENCE", "QUICK", "applicable_generators",
           "check_layouts", "check_settings", "mean_interval", "paired_difference_interval", "pooled_score_interval",
           "sign_flip_p_value", "verdict", "widest"]

HELPS, NO_EVIDENCE, HURTS = "arrangement helps", "no evidence it helps", "arrangement hurts"
LEVEL = 0.95
MIN_FOLDS = 2                      # an interval needs at least two folds
SKIPPED_BY_DEFAULT = ("random", "stack")   # a random layout is the control itself; stack needs layers chosen
MIN_MAPPED_SHARE = 0.5             # annotation layouts apply when at least half the genes map
EXACT_SIGN_FLIPS = 16              # up to this many folds the permutation test enumerates every sign pattern
RANDOM_SIGN_FLIPS = 20_000
QUICK = {"n_folds": 3, "n_repeats": 1, "epochs": 30}   # a first look: 3 folds, one repeat, 30 epochs
# one network per CNN fit rather than the training recipe's ensemble: the check already trains two
# CNNs per generator and fold, and its repeats do the averaging; a user may ask for the ensemble
CHECK_SETTINGS = {"n_models": 1}
MODELS = ("layout", "random control", "baseline")

Progress = Callable[[dict], None]


# ---------------------------------------------------------------- statistics

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
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return float("nan"), None
    mean = float(values.mean())
    if values.size < 2:
        return mean, None
    variance = (1 / values.size + test_train_ratio) * values.var(ddof=1)
    half = float(stats.t.ppf(0.5 + level / 2, values.size - 1) * math.sqrt(variance))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(bounds[0], low), min(bounds[1], high)
    return mean, [low, high]


def sign_flip_p_value(differences: Sequence[float], *, seed: int = 0) -> float | None:
    """Two-sided paired permutation p-value: how often a random sign per fold gives a mean as far from 0.

    Exact (every one of the ``2**J`` sign patterns, the observed one included) up to
    :data:`EXACT_SIGN_FLIPS` folds; otherwise :data:`RANDOM_SIGN_FLIPS` seeded patterns
    plus the observed one. None with no differences.
    """
    d = np.asarray(differences, dtype=float)
    if d.size == 0:
        return None
    if d.size <= EXACT_SIGN_FLIPS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    else:
        rng = np.random.default_rng(seed)
        signs = np.vstack([np.ones(d.size), rng.choice((1.0, -1.0), size=(RANDOM_SIGN_FLIPS, d.size))])
    flipped = np.abs(signs @ d) / d.size
    observed = abs(d.mean())
    # a small tolerance so sign patterns tying the observed mean count as "as extreme" despite rounding
    return float(np.mean(flipped >= observed - 1e-12))


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
    from rnaimg_core.model.metrics import count_intervals

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
                               level: float = LEVEL) -> list[float] | None:
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

    Returns
    -------
    [low, high], or None when no fold has both models
    """
    from scipy import stats

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
    half = float(stats.norm.ppf(0.5 + level / 2)) * math.sqrt(variance)
    return [max(-1.0, difference - half), min(1.0, difference + half)]


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


# ---------------------------------------------------------------- which generators

def applicable_generators(expression) -> tuple[list[str], list[str]]:
    """The generators a layout check uses by default on ``expression``, and why others were left out.

    Every registered generator except ``random`` (the control itself) and ``stack``
    (its layers must be chosen); ``chromosome`` only when at least half the genes have a
    chromosome position, ``gene_ontology`` only when at least half map to an Entrez id.

    Returns
    -------
    (names, notes)
    """
    expression = as_expression(expression)
    genes = expression.genes
    mapped = {
        "chromosome": float(genes["start"].notna().mean()) if "start" in genes else 0.0,
        "gene_ontology": float((pd.to_numeric(genes["entrez_id"], errors="coerce").fillna(0) > 0).mean())
        if "entrez_id" in genes else 0.0,
    }
    names, notes = [], []
    for name in REGISTRY:
        if name in SKIPPED_BY_DEFAULT:
            continue
        if name in mapped and mapped[name] < MIN_MAPPED_SHARE:
            notes.append(f"{name} left out: only {mapped[name]:.0%} of the genes map to its annotation.")
            continue
        names.append(name)
    return names, notes


def _generators(expression, generators) -> tuple[list[Generator], list[str]]:
    notes: list[str] = []
    if generators is None:
        generators, notes = applicable_generators(expression)
    if isinstance(generators, (str, Generator)):
        generators = [generators]
    chosen = [get_generator(g)() if isinstance(g, str) else g for g in generators]
    if not chosen:
        raise InputError("Choose at least one generator to check.")
    for g in chosen:
        if not isinstance(g, Generator):
            raise TypeError(f"generators must be names or Generator instances, not {type(g).__name__}.")
    names = [g.name for g in chosen]
    if len(set(names)) != len(names):
        raise InputError("Each generator can be checked once; remove the repeated name(s).")
    return chosen, notes


# ---------------------------------------------------------------- the check

def check_settings(settings: TrainSettings | None = None, *, quick: bool = False) -> TrainSettings:
    """The training settings a layout check uses by default: ``settings`` with :data:`CHECK_SETTINGS`.

    ``quick`` also applies the epochs of :data:`QUICK`.
    """
    changes = {**CHECK_SETTINGS, **({"epochs": QUICK["epochs"]} if quick else {})}
    return (settings or TrainSettings()).replace(**changes)


@dataclass
class LayoutCheck:
    """The result of :func:`check_layouts`: fold scores, the table, verdicts.

    Attributes
    ----------
    generators : generator names, in the order checked
    folds : one record per fold and model: repeat, fold, generator, model (``"layout"``,
        ``"random control"`` or ``"baseline"``; the baseline's generator is ``""``),
        accuracy, balanced_accuracy, seconds, n_train, n_test; from :func:`check_layouts` also
        ``test_index`` (the fold's test samples) and ``correct`` (1 where the model was right)
    n_folds : folds per repeat (fewer than asked when the smallest class is small)
    n_repeats : repeats planned
    folds_run : complete folds (every model of the fold scored)
    stopped : ``"completed"``, ``"time budget"`` or ``"stop requested"``
    seconds : wall time of the whole check
    settings : the training settings used (``TrainSettings.to_dict()``), with ``seed``
    time_budget : seconds, or None
    notes : what the user should know (fewer folds, generators left out, budget)
    level : coverage of the intervals
    labels : class of every sample (with the records' ``test_index`` and ``correct``: the
        pooled-count intervals of the module notes); None: the t-interval alone
    """

    generators: list[str]
    folds: list[dict]
    n_folds: int
    n_repeats: int
    folds_run: int = 0
    stopped: str = "completed"
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)
    time_budget: float | None = None
    notes: list[str] = field(default_factory=list)
    level: float = LEVEL
    labels: list[str] | None = None

    @property
    def folds_planned(self) -> int:
        return self.n_folds * self.n_repeats

    def _scores(self, generator: str, model: str) -> pd.DataFrame:
        frame = pd.DataFrame(self.folds, columns=["repeat", "fold", "generator", "model", "accuracy",
                                                  "balanced_accuracy", "seconds", "n_train", "n_test"])
        rows = frame[(frame["generator"] == generator) & (frame["model"] == model)]
        return rows.sort_values(["repeat", "fold"]).reset_index(drop=True)

    def _records(self, generator: str, model: str) -> list[dict] | None:
        """The fold records of one model with per-sample results, or None when any lacks them."""
        records = [r for r in self.folds if r["generator"] == generator and r["model"] == model]
        if self.labels is None or not records or any("correct" not in r or "test_index" not in r for r in records):
            return None
        return records

    def _ratio(self) -> float:
        scores = self._scores("", "baseline")
        return float((scores["n_test"] / scores["n_train"]).mean()) if len(scores) else 0.0

    def _model_stats(self, generator: str, model: str) -> dict:
        scores = self._scores(generator, model)
        ratio = self._ratio()
        balanced, balanced_ci = mean_interval(scores["balanced_accuracy"], test_train_ratio=ratio,
                                              level=self.level, bounds=(0.0, 1.0))
        accuracy, accuracy_ci = mean_interval(scores["accuracy"], test_train_ratio=ratio, level=self.level,
                                              bounds=(0.0, 1.0))
        records = self._records(generator, model)
        if records is not None:  # never narrower than the pooled test counts allow (module notes)
            pooled = pooled_score_interval(self.labels, records, level=self.level)
            balanced_ci = widest(balanced_ci, pooled["balanced_accuracy_ci"])
            accuracy_ci = widest(accuracy_ci, pooled["accuracy_ci"])
        return {"balanced_accuracy": _round(balanced), "balanced_accuracy_ci": _round(balanced_ci),
                "accuracy": _round(accuracy), "accuracy_ci": _round(accuracy_ci),
                "folds": int(len(scores)), "seconds": round(float(scores["seconds"].sum()), 2)}

    def _difference(self, generator: str, other_generator: str, other_model: str) -> dict:
        mine = self._scores(generator, "layout")["balanced_accuracy"].to_numpy()
        other = self._scores(other_generator, other_model)["balanced_accuracy"].to_numpy()
        d = mine - other
        mean, interval = mean_interval(d, test_train_ratio=self._ratio(), level=self.level, bounds=(-1.0, 1.0))
        records, others = self._records(generator, "layout"), self._records(other_generator, other_model)
        if records is not None and others is not None:  # never [0, 0] when every fold difference is 0
            interval = widest(interval, paired_difference_interval(self.labels, records, others, level=self.level))
        return {"mean": _round(mean), "ci": _round(interval), "p_value": _round(sign_flip_p_value(d)),
                "folds": int(d.size)}

    def generator_summary(self, generator: str) -> dict:
        """One generator beside its random control and the baseline: scores, paired differences, verdict."""
        versus_control = self._difference(generator, generator, "random control")
        said = verdict(versus_control["ci"])
        layout, control = self._model_stats(generator, "layout"), self._model_stats(generator, "random control")
        return {
            "layout": layout,
            "random_control": control,
            "baseline": self._model_stats("", "baseline"),
            "difference_vs_control": versus_control,
            "difference_vs_baseline": self._difference(generator, "", "baseline"),
            "verdict": said,
            "verdict_line": _verdict_line(generator, said, layout, control, versus_control, self.level),
        }

    def table(self) -> pd.DataFrame:
        """One row per generator, per random control and one for the baseline (balanced accuracy)."""
        rows = []
        for name in self.generators:
            summary = self.generator_summary(name)
            for model, key in (("layout", "layout"), ("random control", "random_control")):
                stats = summary[key]
                row = {"generator": name, "model": model, **_flat_stats(stats)}
                if model == "layout":
                    diff = summary["difference_vs_control"]
                    row.update({"difference_vs_control": diff["mean"],
                                "difference_low": None if diff["ci"] is None else diff["ci"][0],
                                "difference_high": None if diff["ci"] is None else diff["ci"][1],
                                "p_value": diff["p_value"], "verdict": summary["verdict"]})
                rows.append(row)
        rows.append({"generator": "", "model": "baseline", **_flat_stats(self._model_stats("", "baseline"))})
        columns = ["generator", "model", "balanced_accuracy", "balanced_accuracy_low", "balanced_accuracy_high",
                   "accuracy", "accuracy_low", "accuracy_high", "difference_vs_control", "difference_low",
                   "difference_high", "p_value", "verdict", "folds", "seconds"]
        return pd.DataFrame(rows, columns=columns)

    def verdict_lines(self) -> list[str]:
        """One plain-language sentence per generator."""
        return [self.generator_summary(name)["verdict_line"] for name in self.generators]

    def folds_line(self) -> str:
        """How many folds ran, out of how many planned, and why it ended."""
        why = {"completed": "", "time budget": " (the time budget was spent)",
               "stop requested": " (stopped on request)"}[self.stopped]
        return (f"{self.folds_run} of {self.folds_planned} planned folds ran ({self.n_folds}-fold × "
                f"{self.n_repeats} repeat{'s' if self.n_repeats > 1 else ''}){why}.")

    def to_dict(self) -> dict:
        """Everything as JSON-ready values: the per-generator summaries, the table rows, the fold scores."""
        return {
            "generators": {name: self.generator_summary(name) for name in self.generators},
            "table": json.loads(self.table().to_json(orient="records")),
            "verdicts": self.verdict_lines(),
            "n_folds": self.n_folds, "n_repeats": self.n_repeats, "folds_planned": self.folds_planned,
            "folds_run": self.folds_run, "folds_line": self.folds_line(), "stopped": self.stopped,
            "seconds": round(self.seconds, 2), "time_budget": self.time_budget, "level": self.level,
            "interval": self.interval_method(),
            "p_value": "two-sided paired sign-flip permutation test over folds",
            "settings": self.settings, "notes": list(self.notes), "folds": list(self.folds),
        }

    def interval_method(self) -> str:
        """One sentence: which rule gave the intervals."""
        rule = "corrected resampled t-interval over folds (Nadeau & Bengio 2003)"
        if self.labels is None:
            return rule
        return (rule + ", widened where needed to the interval the pooled out-of-fold test counts allow (each "
                "sample once): Jeffreys intervals at the effective number of test samples for the scores, a "
                "paired per-sample interval for the differences")

    def to_json(self) -> str:
        """:meth:`to_dict` as one line of JSON."""
        return json.dumps(self.to_dict(), default=json_default)

    def to_csv(self, path=None) -> str:
        """The table as CSV text; also written to ``path`` when given (atomically: :mod:`rnaimg_core.outputs`)."""
        text = self.table().to_csv(index=False)
        if path is not None:
            with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
        return text


def _round(value):
    if value is None:
        return None
    if isinstance(value, list):
        return [_round(v) for v in value]
    return None if not math.isfinite(value) else round(float(value), 4)


def _flat_stats(stats: dict) -> dict:
    out = {"folds": stats["folds"], "seconds": stats["seconds"]}
    for key in ("balanced_accuracy", "accuracy"):
        interval = stats[f"{key}_ci"] or [None, None]
        out.update({key: stats[key], f"{key}_low": interval[0], f"{key}_high": interval[1]})
    return out


def _verdict_line(name: str, said: str, layout: dict, control: dict, diff: dict, level: float) -> str:
    if diff["ci"] is None:
        return f"{name}: {said} (too few folds for an interval)."
    return (f"{name}: {said}. Balanced accuracy {layout['balanced_accuracy']:.3f} against "
            f"{control['balanced_accuracy']:.3f} for its own random permutation: difference "
            f"{diff['mean']:+.3f}, {level:.0%} interval {diff['ci'][0]:+.3f} to {diff['ci'][1]:+.3f}, "
            f"p = {diff['p_value']:.3g}, over {diff['folds']} folds.")


def _fold_count(labels: np.ndarray, n_folds: int) -> tuple[int, list[str]]:
    classes, counts = np.unique(labels, return_counts=True)
    smallest = int(counts.min())
    if smallest < 2:
        raise InputError(f"Class {classes[counts.argmin()]} has a single sample; every class needs at least two "
                         "for a cross-validated layout check.")
    if smallest >= n_folds:
        return n_folds, []
    return smallest, [f"The smallest class ({classes[counts.argmin()]}) has only {smallest} samples, so the "
                      f"check uses {smallest} folds instead of {n_folds}."]


def check_layouts(expression, generators: Sequence[str | Generator] | None = None, *,
                  settings: TrainSettings | None = None, n_folds: int = 5, n_repeats: int = 3,
                  time_budget: float | None = None, seed: int = 0, progress: Progress | None = None,
                  should_stop=None) -> LayoutCheck:
    """Each layout against its own random permutation and the flat baseline, on the same repeated folds.

    Parameters
    ----------
    expression : labelled Expression (or AnnData)
    generators : names or configured :class:`~rnaimg_core.generators.Generator` instances
        (default: :func:`applicable_generators`)
    settings : training settings of every CNN (default :func:`check_settings`); ``baseline`` and
        ``random_control`` are ignored (the check trains its own controls); fold ``k`` of
        repeat ``r`` trains layout and control with ``seed = settings.seed + r * n_folds + k``
    n_folds : folds per repeat; fewer when the smallest class has fewer samples (said in ``notes``)
    n_repeats : repeats of the stratified folds, each shuffled with ``seed + repeat``
    time_budget : seconds; checked before each fold (see the module notes); None: no limit
    seed : seed of the folds and of the permutation controls
    progress : called after every trained model with a dict: ``done``, ``total`` (models),
        ``folds_done``, ``folds_planned``, ``repeat``, ``fold``, ``elapsed``, ``eta`` (seconds
        left, estimated from the pace so far and capped by the budget) and ``message``
    should_stop : callable returning True, or a ``threading.Event``: ends the check; the fold in
        progress is dropped and the finished folds are kept

    Returns
    -------
    LayoutCheck
    """
    started = time.perf_counter()
    expression = as_expression(expression)
    if expression.labels is None:
        raise InputError("The layout check needs a class for every sample; add labels first.")
    if int(n_folds) < 2 or int(n_repeats) < 1:
        raise InputError("The layout check needs at least 2 folds and 1 repeat.")
    if time_budget is not None and time_budget <= 0:
        time_budget = None
    chosen, notes = _generators(expression, generators)
    settings = (settings or check_settings()).replace(baseline=False, random_control=False)
    labels = np.asarray(expression.labels).astype(str)
    k, fold_notes = _fold_count(labels, int(n_folds))
    notes += fold_notes
    names = [g.name for g in chosen]
    check = LayoutCheck(names, [], k, int(n_repeats), settings={**settings.to_dict(), "check_seed": seed},
                        time_budget=time_budget, notes=notes, labels=labels.tolist())
    stop = functools.partial(stop_requested, should_stop)
    models_per_fold = 2 * len(chosen) + 1
    total_models = k * int(n_repeats) * models_per_fold
    done, fold_seconds = 0, []

    def report(repeat: int, fold: int, message: str) -> None:
        if progress is None:
            return
        elapsed = time.perf_counter() - started
        per_model = elapsed / max(done, 1)
        left = per_model * (total_models - done)
        if time_budget is not None:  # the budget ends the check early, but never before MIN_FOLDS folds
            to_minimum = per_model * max(0, MIN_FOLDS * models_per_fold - done)
            left = min(left, max(time_budget - elapsed, to_minimum, 0.0))
        progress({"done": done, "total": total_models, "folds_done": check.folds_run,
                  "folds_planned": check.folds_planned, "repeat": repeat, "fold": fold,
                  "elapsed": round(elapsed, 1), "eta": round(left, 1), "message": message})

    for repeat in range(int(n_repeats)):
        for fold, test in enumerate(splits.stratified_folds(labels, k, seed + repeat)):
            elapsed = time.perf_counter() - started
            if (time_budget is not None and check.folds_run >= MIN_FOLDS
                    and elapsed + float(np.mean(fold_seconds)) > time_budget):
                check.stopped = "time budget"
                break
            fold_started = time.perf_counter()
            train = np.setdiff1d(np.arange(labels.size), test)
            fold_settings = settings.replace(seed=settings.seed + repeat * k + fold)
            records: list[dict] = []
            first_layout = None
            for generator in chosen:
                label = f"repeat {repeat + 1}, fold {fold + 1}: {generator.name}"
                model_started = time.perf_counter()
                try:
                    layout = generator.fit(expression, train_index=train, quality=False)
                except InputError as exc:
                    raise InputError(f"{generator.name}: {exc}") from None
                first_layout = first_layout or layout
                fit_seconds = time.perf_counter() - model_started
                control = permutation_control(layout, seed=seed + 1000 * repeat + fold)
                for model, used in (("layout", layout), ("random control", control)):
                    result = _train(expression, used, test, fold_settings, stop)
                    if result is None:
                        break
                    records.append({"repeat": repeat, "fold": fold, "generator": generator.name, "model": model,
                                    **result, "seconds": round(result["seconds"] + fit_seconds, 3)})
                    fit_seconds = 0.0  # the layout fit counts once, with the layout's CNN
                    done += 1
                    report(repeat, fold, f"{label} ({model}) done")
                if stop():
                    break
            if stop():
                check.stopped = "stop requested"
                break
            records.append({"repeat": repeat, "fold": fold, "generator": "", "model": "baseline",
                            **_flat_baseline(expression, first_layout, labels, test, fold_settings.seed)})
            done += 1
            check.folds.extend(records)
            check.folds_run += 1
            fold_seconds.append(time.perf_counter() - fold_started)
            report(repeat, fold, f"repeat {repeat + 1}, fold {fold + 1}: done")
        if check.stopped != "completed":
            break
    if check.stopped == "time budget":
        notes.append(f"The time budget of {time_budget:g} s was spent: {check.folds_run} of "
                     f"{check.folds_planned} planned folds ran.")
    check.seconds = time.perf_counter() - started
    return check


def _train(expression, layout: Layout, test: np.ndarray, settings: TrainSettings,
           stop: Callable[[], bool]) -> dict | None:
    """Images of every sample through ``layout``, the CNN trained without ``test`` and scored on it."""
    n = expression.n_samples
    images = ImageSet.from_expression(layout, expression, splits.fold_split(n, test), device=settings.device)
    result = train_model(images, settings, should_stop=stop)
    if result.stopped == "stop requested" or stop():
        return None
    predicted = result.model.predict(images.images[test], device=settings.device)
    return {"accuracy": result.metrics["accuracy"], "balanced_accuracy": result.metrics["balanced_accuracy"],
            "seconds": result.seconds, "n_train": n - test.size, "n_test": int(test.size),
            "test_index": test.tolist(), "correct": (predicted == images.labels[test]).astype(int).tolist()}


def _flat_baseline(expression, layout: Layout, labels: np.ndarray, test: np.ndarray, seed: int) -> dict:
    """Logistic regression on every gene, normalised as the fold's layout normalises them."""
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    features = layout.normalization.apply(expression.values)
    train = np.setdiff1d(np.arange(labels.size), test)
    class_names = sorted(set(labels.tolist()))
    y = np.searchsorted(class_names, labels)
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000, random_state=seed)
    model.fit(features[train], y[train])
    predicted = model.predict(features[test])
    metrics, _, _ = classification_metrics(y[test], predicted, len(class_names), class_names)
    return {"accuracy": metrics["accuracy"], "balanced_accuracy": metrics["balanced_accuracy"],
            "seconds": round(time.perf_counter() - started, 3), "n_train": int(train.size),
            "n_test": int(test.size), "test_index": test.tolist(),
            "correct": (predicted == y[test]).astype(int).tolist()}
