"""Does this arrangement help? Each layout against its own permutation, with models that must use the image.

:func:`check_layouts` answers the question a biologist brings: *for my data, does
this arrangement of genes give a model something that the same genes in random
places do not?* A flat model (logistic regression on the genes) and the hybrid
CNN's linear path score the same on any permutation of the pixels, so they cannot
answer it. On every fold of a repeated stratified cross-validation
(:func:`rnaimg_core.splits.stratified_folds`), for every chosen generator:

1. the layout is fitted on the fold's training samples only (normalisation included);
2. **the arrangement question** is answered by models that must use the image, each on
   the layout and on the layout's own permutation (:func:`_controls`), trained on the
   same samples with the same seed and scored on the same test samples:

   - ``probe``: the pooled probe (:mod:`rnaimg_core.probe`), a ridge classifier on local
     window means of the image: seconds per fold;
   - ``cnn``: the CNN with its linear path removed (image only: convolutions, pooling,
     one output layer), trained as :class:`~rnaimg_core.model.TrainSettings` says;

   the permutation is the gene shuffle over the same pixels for layouts with one gene per
   pixel, and the whole-pixel shuffle for pooled layouts (several genes on a pixel: SOM,
   nearest-pixel DeepInsight), so a gain from averaging genes that share a pixel is not
   called an arrangement gain;
3. **what the arrangement's gain comes from** (``probe`` only): structured controls where
   the layout has structure. Chromosome layouts: genes shuffled within each chromosome
   (genome-scale blocks kept, local order broken) and whole chromosomes in random order
   (local order kept); pooled layouts: genes shuffled over the same pixels (pooling broken too);
4. **the best predictor** (``hybrid``): the default CNN recipe (linear path + convolutions) on
   the layout, against the flat baseline, which is fitted once per fold on one fixed
   normalisation (log2 when the values look raw, per-gene z-score on the training samples)
   whatever generators are listed. The check counts the test predictions the hybrid's
   convolutions changed from its linear path alone.

Statistics (:mod:`rnaimg_core.check_stats`): every score and difference gets the corrected
resampled t-interval over folds, widened to what the pooled per-sample test counts allow, and
one p-value that agrees with it. The arrangement verdict of a generator combines the arms
that ran with Bonferroni (each arm at ``1 - 0.05 / m``): "arrangement helps" when an arm's
interval lies above 0 and none below, "arrangement hurts" the other way round, otherwise "no
evidence it helps".

Power (:mod:`rnaimg_core.power`): for every generator without "arrangement helps", the check
plants a rise of a few strengths in a square block of neighbouring genes (about 2 % of them)
in the class the probe found hardest, in the user's own normalised matrix with labels
unchanged, reruns the probe's layout-vs-permutation contrast on the same folds, and reports
the smallest planted effect it detects and the width of the difference interval.

Cost and budget: ``time_budget`` (seconds) is checked before each fold; the check always runs
at least :data:`MIN_FOLDS` folds and reports how many ran.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from rnaimg_core import splits
from rnaimg_core.check_stats import (
    HELPS,
    HURTS,
    LEVEL,
    NO_EVIDENCE,
    difference_test,
    mean_interval,
    paired_difference_interval,
    pooled_score_interval,
    verdict,
    widest,
)
from rnaimg_core.compose import group_order_control, permutation_control, pixel_shuffle_control, within_group_control
from rnaimg_core.device import one_blas_thread
from rnaimg_core.errors import InputError
from rnaimg_core.expression import as_expression
from rnaimg_core.generators import REGISTRY, Generator, get_generator
from rnaimg_core.images import ImageSet
from rnaimg_core.layout import Layout, json_default
from rnaimg_core.model import TrainSettings, classification_metrics, train_model
from rnaimg_core.model.baseline import fit_baseline
from rnaimg_core.model.train import stop_requested
from rnaimg_core.normalize import Normalization
from rnaimg_core.outputs import atomic_output
from rnaimg_core.power import CEILING, PLANT_STRENGTHS, block_genes, plant_block, power_statement
from rnaimg_core.probe import PROBE_DESCRIPTION, PooledProbe

__all__ = ["ARMS", "ARM_TITLES", "HELPS", "HURTS", "LEVEL", "LayoutCheck", "MIN_FOLDS", "NO_EVIDENCE", "QUICK",
           "applicable_generators", "check_layouts", "check_settings", "mean_interval",
           "paired_difference_interval", "pooled_score_interval", "verdict", "widest"]

MIN_FOLDS = 2                      # an interval needs at least two folds
SKIPPED_BY_DEFAULT = ("random", "stack")   # a random layout is the control itself; stack needs layers chosen
MIN_MAPPED_SHARE = 0.5             # annotation layouts apply when at least half the genes map
QUICK = {"n_folds": 3, "n_repeats": 1, "epochs": 30}   # a first look: 3 folds, one repeat, 30 epochs
# one network per CNN fit rather than the training recipe's ensemble: the check already trains several
# CNNs per generator and fold, and its repeats do the averaging; a user may ask for the ensemble
CHECK_SETTINGS = {"n_models": 1}
ARMS = ("probe", "cnn")            # the models that answer the arrangement question
ARM_TITLES = {"probe": "pooled probe", "cnn": "image-only CNN", "hybrid": "hybrid CNN (default recipe)",
              "flat": "flat baseline"}
PERMUTATION = "permutation"        # the primary control's model name
FLAT_NORMALIZATION = {"log": "auto", "scale": "zscore", "depth": "auto"}
ARM_QUESTIONS = {
    "probe": "does the arrangement help? (" + PROBE_DESCRIPTION + "; layout vs its own permutation)",
    "cnn": "does the arrangement help? (the CNN without its linear path, so it must use the image; layout vs "
           "its own permutation)",
    "hybrid": "which predicts best? (the default CNN recipe, linear path + convolutions, against the flat "
              "baseline; blind to pixel order through its linear path, so not an arrangement test)",
}

Progress = Callable[[dict], None]


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


def _generators(expression, generators, params: dict | None) -> tuple[list[Generator], list[str]]:
    notes: list[str] = []
    if generators is None:
        generators, notes = applicable_generators(expression)
    if isinstance(generators, (str, Generator)):
        generators = [generators]
    params = dict(params or {})
    chosen = []
    for g in generators:
        if isinstance(g, str):
            given = params.pop(g, {})
            cls = get_generator(g)
            g = cls.from_strings(given) if all(isinstance(v, str) for v in given.values()) else cls(**given)
        elif not isinstance(g, Generator):
            raise TypeError(f"generators must be names or Generator instances, not {type(g).__name__}.")
        chosen.append(g)
    if params:
        raise InputError(f"Settings were given for {', '.join(sorted(params))}, which is not among the checked "
                         "generators.")
    if not chosen:
        raise InputError("Choose at least one generator to check.")
    names = [g.name for g in chosen]
    if len(set(names)) != len(names):
        raise InputError("Each generator can be checked once; remove the repeated name(s).")
    return chosen, notes


# ---------------------------------------------------------------- controls

def _is_pooled(layout: Layout) -> bool:
    return bool(layout.placement_gene.size) and int(layout.genes_per_pixel.max()) > 1


def _chromosomes(layout: Layout, expression) -> np.ndarray | None:
    """Chromosome of every layout gene, for chromosome layouts; None otherwise."""
    if layout.generator != "chromosome" or "chromosome" not in expression.genes:
        return None
    by_id = pd.Series(expression.genes["chromosome"].astype(str).to_numpy(), index=expression.gene_ids)
    return by_id.reindex(layout.gene_ids).fillna("").to_numpy()


def _controls(layout: Layout, expression, seed: int) -> dict[str, tuple[Layout, str]]:
    """The layout's own permutation (first) and its structured controls: name -> (layout, what it keeps)."""
    if _is_pooled(layout):
        controls = {PERMUTATION: (pixel_shuffle_control(layout, seed),
                                  "its pixels moved whole to random places: genes that share a pixel stay together "
                                  "(pooling kept, arrangement broken)"),
                    "genes shuffled": (permutation_control(layout, seed),
                                       "genes shuffled over the same pixels (pooling and arrangement both broken)")}
    else:
        controls = {PERMUTATION: (permutation_control(layout, seed),
                                  "its own random permutation: the same pixels, genes shuffled")}
    chromosomes = _chromosomes(layout, expression)
    if chromosomes is not None:
        controls["within chromosomes"] = (within_group_control(layout, chromosomes, seed),
                                          "genes shuffled within each chromosome (genome-scale blocks kept, local "
                                          "order broken)")
        controls["chromosomes shuffled"] = (group_order_control(layout, chromosomes, seed),
                                            "whole chromosomes in random order (local order kept, where each "
                                            "chromosome lies broken)")
    return controls


def _normalised(layout: Layout, expression) -> tuple[np.ndarray, Layout]:
    """Every sample normalised as ``layout`` says (n, layout genes), and the layout reading such values as they are.

    Planting signals and building controls from the normalised matrix keeps one
    normalisation per fold for a layout and all its controls.
    """
    columns = layout.align(expression.gene_ids)
    values = np.asarray(expression.values)[:, columns]
    normalised = layout.normalization.apply(values)
    identity = Normalization(log="no", scale="none", depth="none").fit(normalised[:1])
    return normalised, layout.replace(normalization=identity)


def _images(layout: Layout, normalised: np.ndarray) -> np.ndarray:
    return layout.transform(normalised, layout.gene_ids, device="cpu")


# ---------------------------------------------------------------- the result

def check_settings(settings: TrainSettings | None = None, *, quick: bool = False) -> TrainSettings:
    """The training settings a layout check uses by default: ``settings`` with :data:`CHECK_SETTINGS`.

    ``quick`` also applies the epochs of :data:`QUICK`.
    """
    changes = {**CHECK_SETTINGS, **({"epochs": QUICK["epochs"]} if quick else {})}
    return (settings or TrainSettings()).replace(**changes)


@dataclass
class LayoutCheck:
    """The result of :func:`check_layouts`: fold records, the table, verdicts, power.

    Attributes
    ----------
    generators : generator names, in the order checked
    folds : one record per fold and model: repeat, fold, generator (``""`` for the flat
        baseline), arm (``"probe"``, ``"cnn"``, ``"hybrid"`` or ``"flat"``), model
        (``"layout"``, ``"permutation"``, a structured control's name, or ``"baseline"``),
        accuracy, balanced_accuracy, seconds, n_train, n_test, test_index (the fold's test
        samples), correct (1 where the model was right); hybrid records also
        ``conv_changed`` (test predictions the convolutions changed)
    n_folds, n_repeats : folds per repeat and repeats planned
    arms : the arms that answered the arrangement question
    folds_run : complete folds
    stopped : ``"completed"``, ``"time budget"`` or ``"stop requested"``
    seconds : wall time of the whole check
    settings : the training settings used, with ``check_seed``
    time_budget : seconds, or None
    notes : what the user should know
    level : coverage asked for each question (split over the arms by Bonferroni)
    labels : class of every sample
    controls : per generator: control name -> what it keeps and breaks
    power : per generator: the planting's results (:mod:`rnaimg_core.power`), or absent
    """

    generators: list[str]
    folds: list[dict]
    n_folds: int
    n_repeats: int
    arms: tuple = ARMS
    folds_run: int = 0
    stopped: str = "completed"
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)
    time_budget: float | None = None
    notes: list[str] = field(default_factory=list)
    level: float = LEVEL
    labels: list[str] | None = None
    controls: dict = field(default_factory=dict)
    power: dict = field(default_factory=dict)

    @property
    def folds_planned(self) -> int:
        return self.n_folds * self.n_repeats

    def _records(self, generator: str, arm: str, model: str) -> list[dict]:
        records = [r for r in self.folds if r["generator"] == generator and r.get("arm") == arm
                   and r["model"] == model]
        return sorted(records, key=lambda r: (r["repeat"], r["fold"]))

    def _ratio(self) -> float:
        """Mean ``n_test / n_train`` over the folds (the same for every model of a fold)."""
        per_fold = {(r["repeat"], r["fold"]): r["n_test"] / r["n_train"] for r in self.folds}
        return float(np.mean(list(per_fold.values()))) if per_fold else 0.0

    def _has_samples(self, records: list[dict]) -> bool:
        return self.labels is not None and bool(records) and all("correct" in r for r in records)

    def model_stats(self, generator: str, arm: str, model: str) -> dict:
        """Mean balanced accuracy and accuracy of one model over the folds, with intervals."""
        records = self._records(generator, arm, model)
        ratio = self._ratio()
        out = {"folds": len(records), "seconds": round(float(sum(r["seconds"] for r in records)), 2)}
        for key in ("balanced_accuracy", "accuracy"):
            mean, interval = mean_interval([r[key] for r in records], test_train_ratio=ratio, level=self.level,
                                           bounds=(0.0, 1.0))
            if self._has_samples(records):  # never narrower than the pooled test counts allow
                interval = widest(interval, pooled_score_interval(self.labels, records, level=self.level)[f"{key}_ci"])
            out[key], out[f"{key}_ci"] = _round(mean), _round(interval)
        return out

    def difference(self, generator: str, arm: str, model: str, other_generator: str, other_arm: str,
                   other_model: str, *, n_tests: int = 1) -> dict:
        """Paired difference of balanced accuracy, model − other, over the folds both ran."""
        mine = {(r["repeat"], r["fold"]): r for r in self._records(generator, arm, model)}
        theirs = {(r["repeat"], r["fold"]): r for r in self._records(other_generator, other_arm, other_model)}
        keys = sorted(set(mine) & set(theirs))
        records, others = [mine[k] for k in keys], [theirs[k] for k in keys]
        d = [a["balanced_accuracy"] - b["balanced_accuracy"] for a, b in zip(records, others)]
        paired = self._has_samples(records) and self._has_samples(others)
        test = difference_test(d, test_train_ratio=self._ratio(), level=self.level, n_tests=n_tests,
                               labels=self.labels if paired else None, records=records, others=others)
        return {"mean": _round(test["mean"]), "ci": _round(test["ci"]), "p_value": _round_p(test["p_value"]),
                "level": round(test["level"], 4), "folds": test["folds"]}

    def generator_summary(self, generator: str) -> dict:
        """One generator: the arrangement answer per arm, the structured controls, the best-predictor row, power."""
        arms = [a for a in self.arms if self._records(generator, a, "layout")]
        arrangement = {}
        for arm in arms:
            diff = self.difference(generator, arm, "layout", generator, arm, PERMUTATION, n_tests=len(arms))
            arrangement[arm] = {"layout": self.model_stats(generator, arm, "layout"),
                                "permutation": self.model_stats(generator, arm, PERMUTATION),
                                "difference": diff, "verdict": verdict(diff["ci"])}
        said = _combined_verdict([a["verdict"] for a in arrangement.values()])
        structure = []
        for name, what in self.controls.get(generator, {}).items():
            if name == PERMUTATION or not self._records(generator, "probe", name):
                continue
            structure.append({"control": name, "keeps": what,
                              "score": self.model_stats(generator, "probe", name),
                              "difference": self.difference(generator, "probe", "layout", generator, "probe", name)})
        hybrid = self._records(generator, "hybrid", "layout")
        best = None
        if hybrid:
            best = {"hybrid": self.model_stats(generator, "hybrid", "layout"),
                    "baseline": self.model_stats("", "flat", "baseline"),
                    "difference": self.difference(generator, "hybrid", "layout", "", "flat", "baseline"),
                    "conv_changed": int(sum(r.get("conv_changed", 0) for r in hybrid)),
                    "tested": int(sum(r["n_test"] for r in hybrid))}
        power = self.power.get(generator)
        summary = {"verdict": said, "arrangement": arrangement, "permutation": self.controls.get(generator, {}).get(
                       PERMUTATION, ""),
                   "structure": structure, "best_predictor": best, "power": power,
                   "power_line": power_statement(power) if power else None}
        summary["verdict_line"] = _verdict_line(generator, summary)
        return summary

    def table(self) -> pd.DataFrame:
        """One row per generator, arm and model (balanced accuracy), and one for the flat baseline."""
        rows = []
        for name in self.generators:
            summary = self.generator_summary(name)
            for arm, answer in summary["arrangement"].items():
                rows.append({"generator": name, "arm": arm, "model": "layout", **_flat_stats(answer["layout"]),
                             **_flat_diff(answer["difference"]), "verdict": answer["verdict"]})
                rows.append({"generator": name, "arm": arm, "model": PERMUTATION,
                             **_flat_stats(answer["permutation"])})
            for row in summary["structure"]:
                rows.append({"generator": name, "arm": "probe", "model": row["control"], **_flat_stats(row["score"]),
                             **_flat_diff(row["difference"])})
            if summary["best_predictor"]:
                best = summary["best_predictor"]
                rows.append({"generator": name, "arm": "hybrid", "model": "layout", **_flat_stats(best["hybrid"]),
                             **_flat_diff(best["difference"]), "conv_changed": best["conv_changed"]})
        if self._records("", "flat", "baseline"):
            rows.append({"generator": "", "arm": "flat", "model": "baseline",
                         **_flat_stats(self.model_stats("", "flat", "baseline"))})
        columns = ["generator", "arm", "model", "balanced_accuracy", "balanced_accuracy_low", "balanced_accuracy_high",
                   "accuracy", "accuracy_low", "accuracy_high", "difference", "difference_low", "difference_high",
                   "difference_level", "p_value", "verdict", "conv_changed", "folds", "seconds"]
        return pd.DataFrame(rows, columns=columns)

    def verdict_lines(self) -> list[str]:
        """One plain-language paragraph per generator."""
        return [self.generator_summary(name)["verdict_line"] for name in self.generators]

    def folds_line(self) -> str:
        """How many folds ran, out of how many planned, and why it ended."""
        why = {"completed": "", "time budget": " (the time budget was spent)",
               "stop requested": " (stopped on request)"}[self.stopped]
        return (f"{self.folds_run} of {self.folds_planned} planned folds ran ({self.n_folds}-fold × "
                f"{self.n_repeats} repeat{'s' if self.n_repeats > 1 else ''}){why}.")

    def explanation(self) -> str:
        """One paragraph for a biologist: what was compared, each verdict, the power statement, what next."""
        parts = [f"Each layout was fitted on the training samples of every fold ({self.folds_run} folds of "
                 f"{self.n_folds}-fold cross-validation, {self.n_repeats} repeat{'s' if self.n_repeats > 1 else ''}) and "
                 "compared with its own permutation, the same genes on randomly rearranged pixels, by models that "
                 "must use the image: " + " and ".join(ARM_TITLES[a] for a in self.arms) + ". A flat model cannot "
                 "tell the two apart, so any difference is what the arrangement gives."]
        summaries = {name: self.generator_summary(name) for name in self.generators}
        for name, summary in summaries.items():
            line = f"{name}: {summary['verdict']}"
            if summary["power_line"] and summary["verdict"] != HELPS:
                line += f"; {summary['power_line'][0].lower()}{summary['power_line'][1:]}"
            else:
                line += "."
            parts.append(line)
        helped = [name for name, summary in summaries.items() if summary["verdict"] == HELPS]
        if helped:
            parts.append(f"Next: use {helped[0]} for the big run, and look at its attribution (Explain) to see which "
                         "neighbourhoods carry the signal.")
        else:
            parts.append("Next: if the power statement says the check could have found a useful effect, the "
                         "arrangement adds little on these data and a flat model is as good; if it says the check "
                         "was too weak, add samples or run more repeats before deciding.")
        return " ".join(parts)

    def to_dict(self) -> dict:
        """Everything as JSON-ready values: per-generator summaries, table rows, fold records."""
        return {
            "generators": {name: self.generator_summary(name) for name in self.generators},
            "table": json.loads(self.table().to_json(orient="records")),
            "verdicts": self.verdict_lines(), "explanation": self.explanation(),
            "arms": list(self.arms), "questions": {a: ARM_QUESTIONS[a] for a in (*self.arms, "hybrid")},
            "n_folds": self.n_folds, "n_repeats": self.n_repeats, "folds_planned": self.folds_planned,
            "folds_run": self.folds_run, "folds_line": self.folds_line(), "stopped": self.stopped,
            "seconds": round(self.seconds, 2), "time_budget": self.time_budget, "level": self.level,
            "interval": self.interval_method(), "controls": self.controls,
            "p_value": "two-sided; the larger of the corrected repeated-CV t-test's and the paired per-sample "
                       "test's, Bonferroni-adjusted over the arms (agrees with the interval)",
            "settings": self.settings, "notes": list(self.notes), "folds": list(self.folds),
        }

    def interval_method(self) -> str:
        """One sentence: which rule gave the intervals."""
        return ("corrected resampled t-interval over folds (Nadeau & Bengio 2003), widened where needed to the "
                "interval the pooled out-of-fold test counts allow (each sample once); arrangement differences at "
                f"{self.level:.0%} per question, split over the {len(self.arms)} arm(s) by Bonferroni")

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


def _combined_verdict(verdicts: list[str]) -> str:
    if HELPS in verdicts and HURTS not in verdicts:
        return HELPS
    if HURTS in verdicts and HELPS not in verdicts:
        return HURTS
    return NO_EVIDENCE


def _round(value):
    if value is None:
        return None
    if isinstance(value, list):
        return [_round(v) for v in value]
    return None if not math.isfinite(value) else round(float(value), 4)


def _round_p(value):
    return None if value is None else float(f"{value:.3g}")


def _flat_stats(stats: dict) -> dict:
    out = {"folds": stats["folds"], "seconds": stats["seconds"]}
    for key in ("balanced_accuracy", "accuracy"):
        interval = stats[f"{key}_ci"] or [None, None]
        out.update({key: stats[key], f"{key}_low": interval[0], f"{key}_high": interval[1]})
    return out


def _flat_diff(diff: dict) -> dict:
    interval = diff["ci"] or [None, None]
    return {"difference": diff["mean"], "difference_low": interval[0], "difference_high": interval[1],
            "difference_level": diff["level"], "p_value": diff["p_value"]}


def _interval_text(diff: dict) -> str:
    if diff["ci"] is None:
        return f"{diff['mean']:+.3f} (too few folds for an interval)"
    return (f"{diff['mean']:+.3f} ({diff['level']:.1%} interval {diff['ci'][0]:+.3f} to {diff['ci'][1]:+.3f}, "
            f"p = {diff['p_value']:.3g})")


def _verdict_line(name: str, summary: dict) -> str:
    parts = [f"{name}: {summary['verdict']}."]
    for arm, answer in summary["arrangement"].items():
        title = ARM_TITLES[arm]
        parts.append(f"{title[0].upper()}{title[1:]}: balanced accuracy {answer['layout']['balanced_accuracy']:.3f} "
                     f"on the layout, {answer['permutation']['balanced_accuracy']:.3f} on its permutation, "
                     f"difference {_interval_text(answer['difference'])}.")
    for row in summary["structure"]:
        parts.append(f"Against {row['control']} ({row['keeps']}): {_interval_text(row['difference'])}.")
    best = summary["best_predictor"]
    if best:
        parts.append(f"Best predictor: hybrid CNN {best['hybrid']['balanced_accuracy']:.3f} vs flat baseline "
                     f"{best['baseline']['balanced_accuracy']:.3f}, difference {_interval_text(best['difference'])}; "
                     f"its convolutions changed {best['conv_changed']} of {best['tested']} test predictions.")
    if summary["power_line"] and summary["verdict"] != HELPS:
        parts.append(summary["power_line"])
    return " ".join(parts)


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


# ---------------------------------------------------------------- the check

def check_layouts(expression, generators: Sequence[str | Generator] | None = None, *,
                  settings: TrainSettings | None = None, arms: Sequence[str] = ARMS, hybrid: bool = True,
                  power: bool = True, structure: bool = True, params: dict | None = None, n_folds: int = 5, n_repeats: int = 3,
                  time_budget: float | None = None, seed: int = 0, progress: Progress | None = None,
                  should_stop=None) -> LayoutCheck:
    """Each layout against its own permutation, with models that must use the image; the best predictor; power.

    Parameters
    ----------
    expression : labelled Expression (or AnnData)
    generators : names or configured :class:`~rnaimg_core.generators.Generator` instances
        (default: :func:`applicable_generators`)
    settings : training settings of every CNN (default :func:`check_settings`); fold ``k`` of
        repeat ``r`` trains with ``seed = settings.seed + r * n_folds + k``
    arms : which models answer the arrangement question: ``"probe"`` and/or ``"cnn"``
    hybrid : also train the default hybrid CNN on the layout and fit the flat baseline (the
        best-predictor rows)
    power : plant known signals to say what the check could have found (needs the probe arm)
    structure : also score the structured controls (probe arm)
    params : generator settings by name, e.g. ``{"chromosome": {"preset": "lyu_haque"}}`` (values as
        Python values, or all as text as typed on the command line)
    n_folds : folds per repeat; fewer when the smallest class has fewer samples (said in ``notes``)
    n_repeats : repeats of the stratified folds, each shuffled with ``seed + repeat``
    time_budget : seconds; checked before each fold; None: no limit
    seed : seed of the folds, the controls and the planted block
    progress : called after every fitted model with ``done``, ``total``, ``folds_done``,
        ``folds_planned``, ``repeat``, ``fold``, ``elapsed``, ``eta`` and ``message``
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
    arms = tuple(dict.fromkeys(arms))
    if not arms or set(arms) - set(ARMS):
        raise InputError(f"Choose the arms among {', '.join(ARMS)} (at least one).")
    if time_budget is not None and time_budget <= 0:
        time_budget = None
    chosen, notes = _generators(expression, generators, params)
    settings = (settings or check_settings()).replace(baseline=False, random_control=False)
    image_only = settings.replace(architecture={**dict(settings.architecture), "linear_path": False})
    labels = np.asarray(expression.labels).astype(str)
    class_names = sorted(set(labels.tolist()))
    y = np.searchsorted(class_names, labels)
    k, fold_notes = _fold_count(labels, int(n_folds))
    notes += fold_notes
    check = LayoutCheck([g.name for g in chosen], [], k, int(n_repeats), arms=arms,
                        settings={**settings.to_dict(), "check_seed": seed}, time_budget=time_budget, notes=notes,
                        labels=labels.tolist())
    stop = functools.partial(stop_requested, should_stop)
    cnn_per_generator = 2 * ("cnn" in arms) + bool(hybrid)
    units_per_fold = bool(hybrid) + len(chosen) * (("probe" in arms) + cnn_per_generator)  # baseline, probe, CNNs
    total = k * int(n_repeats) * units_per_fold
    done, fold_seconds, kept = 0, [], []

    def report(repeat: int, fold: int, message: str) -> None:
        if progress is None:
            return
        elapsed = time.perf_counter() - started
        left = elapsed / max(done, 1) * (total - done)
        if time_budget is not None:
            left = min(left, max(time_budget - elapsed, 0.0))
        progress({"done": done, "total": total, "folds_done": check.folds_run, "folds_planned": check.folds_planned,
                  "repeat": repeat, "fold": fold, "elapsed": round(elapsed, 1), "eta": round(left, 1),
                  "message": message})

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
            base = {"repeat": repeat, "fold": fold, "n_train": int(train.size), "n_test": int(test.size),
                    "test_index": test.tolist()}
            records = []
            if hybrid:
                records.append({**base, "generator": "", "arm": "flat", "model": "baseline",
                                **_flat_baseline(expression, y, train, test, fold_settings.seed)})
                done += 1
            fold_layouts = {}
            for generator in chosen:
                label = f"repeat {repeat + 1}, fold {fold + 1}: {generator.name}"
                fit_started = time.perf_counter()
                try:
                    layout = generator.fit(expression, train_index=train, quality=False)
                except InputError as exc:
                    raise InputError(f"{generator.name}: {exc}") from None
                control_seed = seed + 1000 * repeat + fold
                controls = _controls(layout, expression, control_seed)
                if not structure:
                    controls = {PERMUTATION: controls[PERMUTATION]}
                check.controls.setdefault(generator.name, {n: what for n, (_, what) in controls.items()})
                normalised, as_is = _normalised(layout, expression)
                fit_seconds = time.perf_counter() - fit_started
                images = {"layout": _images(as_is, normalised)}
                for name, (control, _) in controls.items():
                    images[name] = _images(control.replace(normalization=as_is.normalization), normalised)
                fold_layouts[generator.name] = (as_is, controls[PERMUTATION][0].replace(
                    normalization=as_is.normalization), layout)
                if "probe" in arms:
                    for name, picture in images.items():
                        records.append({**base, "generator": generator.name, "arm": "probe", "model": name,
                                        **_probe(picture, y, train, test, fit_seconds)})
                        fit_seconds = 0.0
                    done += 1
                    report(repeat, fold, f"{label} (pooled probe) done")
                cnn_models = ((["layout", PERMUTATION] if "cnn" in arms else [])
                              + (["hybrid"] if hybrid else []))
                for model in cnn_models:
                    picture = images["layout" if model == "hybrid" else model]
                    result = _train(picture, expression, as_is, y, test,
                                    fold_settings if model == "hybrid" else image_only.replace(seed=fold_settings.seed),
                                    stop, linear_share=model == "hybrid")
                    if result is None:
                        break
                    records.append({**base, "generator": generator.name, "arm": "hybrid" if model == "hybrid"
                                    else "cnn", "model": "layout" if model == "hybrid" else model, **result,
                                    "seconds": round(result["seconds"] + fit_seconds, 3)})
                    fit_seconds = 0.0
                    done += 1
                    report(repeat, fold, f"{label} ({'hybrid CNN' if model == 'hybrid' else 'image-only CNN, ' + model}) done")
                if stop():
                    break
            if stop():
                check.stopped = "stop requested"
                break
            check.folds.extend(records)
            check.folds_run += 1
            kept.append((repeat, fold, train, test, fold_layouts))
            fold_seconds.append(time.perf_counter() - fold_started)
            report(repeat, fold, f"repeat {repeat + 1}, fold {fold + 1}: done")
        if check.stopped != "completed":
            break
    if check.stopped == "time budget":
        notes.append(f"The time budget of {time_budget:g} s was spent: {check.folds_run} of "
                     f"{check.folds_planned} planned folds ran.")
    if power and "probe" in arms and check.folds_run >= MIN_FOLDS and check.stopped != "stop requested":
        for generator in check.generators:
            if check.generator_summary(generator)["verdict"] == HELPS:
                continue
            if progress is not None:
                report(-1, -1, f"{generator}: measuring what the check could have found (planted signals)")
            check.power[generator] = _measure_power(check, generator, expression, y, kept, seed, stop)
    check.seconds = time.perf_counter() - started
    return check


# ---------------------------------------------------------------- one model on one fold

def _scores(y_true: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict:
    metrics, _, _ = classification_metrics(y_true, predicted, n_classes, [str(i) for i in range(n_classes)])
    return {"accuracy": metrics["accuracy"], "balanced_accuracy": metrics["balanced_accuracy"],
            "correct": (predicted == y_true).astype(int).tolist()}


def _probe(images: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, extra_seconds: float) -> dict:
    started = time.perf_counter()
    predicted = PooledProbe().fit(images[train], y[train]).predict(images[test])
    n_classes = int(y.max()) + 1
    return {**_scores(y[test], predicted, n_classes),
            "seconds": round(time.perf_counter() - started + extra_seconds, 3)}


def _train(images: np.ndarray, expression, layout: Layout, y: np.ndarray, test: np.ndarray,
           settings: TrainSettings, stop: Callable[[], bool], *, linear_share: bool) -> dict | None:
    """The CNN trained on every sample but ``test`` and scored on ``test``."""
    n = images.shape[0]
    image_set = ImageSet(images, expression.sample_ids, expression.labels, splits.fold_split(n, test), layout)
    result = train_model(image_set, settings, should_stop=stop)
    if result.stopped == "stop requested" or stop():
        return None
    class_names = list(result.class_names)
    truth = np.searchsorted(class_names, np.asarray(expression.labels).astype(str)[test])
    probabilities = result.model.predict_proba(images[test], device=settings.device)
    predicted = probabilities.argmax(axis=1)
    out = {**_scores(truth, predicted, len(class_names)), "seconds": round(result.seconds, 3)}
    if linear_share:
        network = result.model.network.cpu().eval()
        with torch.inference_mode():
            linear = network.linear_logits(torch.as_tensor(images[test]))
        if linear is not None:
            out["conv_changed"] = int(np.sum(linear.argmax(1).numpy() != predicted))
    return out


def _flat_baseline(expression, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int) -> dict:
    """The flat baseline (:mod:`rnaimg_core.model.baseline`) on every gene, normalised once per fold.

    The normalisation (:data:`FLAT_NORMALIZATION`) is fitted on the fold's training samples and does
    not depend on which generators are checked.
    """
    started = time.perf_counter()
    values = np.asarray(expression.values, dtype=np.float32)
    features = Normalization(**FLAT_NORMALIZATION).fit(values[train]).apply(values)
    with one_blas_thread():
        predicted = fit_baseline(features, y, train, seed=seed).predict(features[test]).astype(np.int64)
    return {**_scores(y[test], predicted, int(y.max()) + 1), "seconds": round(time.perf_counter() - started, 3)}


# ---------------------------------------------------------------- power

def _hardest_class(check: LayoutCheck, generator: str, labels: np.ndarray) -> str:
    """The class the probe's layout model got right least often (pooled over folds), ties to the smallest class."""
    records = check._records(generator, "probe", "layout")
    right, seen = {}, {}
    for record in records:
        for index, correct in zip(record["test_index"], record["correct"]):
            c = labels[index]
            right[c] = right.get(c, 0) + correct
            seen[c] = seen.get(c, 0) + 1
    counts = {c: int(np.sum(labels == c)) for c in seen}
    return min(seen, key=lambda c: (right[c] / seen[c], counts[c], c))


def _measure_power(check: LayoutCheck, generator: str, expression, y: np.ndarray, kept: list, seed: int,
                   stop: Callable[[], bool]) -> dict:
    """Plant rising signals in a block of neighbouring genes; the probe's contrast at each strength."""
    labels = np.asarray(check.labels)
    planted_class = _hardest_class(check, generator, labels)
    rows = np.flatnonzero(labels == planted_class)
    n_arms = len(check.arms)
    layout_score = check.model_stats(generator, "probe", "layout")["balanced_accuracy"]
    real = check.generator_summary(generator)["arrangement"]["probe"]["difference"]
    out = {"planted_class": planted_class, "strengths": [], "smallest_detected": None, "arm": "probe",
           "interval_half_width": None if real["ci"] is None else round((real["ci"][1] - real["ci"][0]) / 2, 4),
           "ceiling_score": layout_score, "n_genes": 0}
    prepared = []
    for repeat, fold, train, test, fold_layouts in kept:
        as_is, permuted, layout = fold_layouts[generator]
        normalised, _ = _normalised(layout, expression)
        genes = block_genes(as_is, seed=seed)
        prepared.append((repeat, fold, train, test, as_is, permuted, normalised, genes))
    out["n_genes"] = int(round(np.mean([p[-1].size for p in prepared])))
    for strength in PLANT_STRENGTHS:
        if stop():
            break
        probe = LayoutCheck([generator], [], check.n_folds, check.n_repeats, arms=("probe",), labels=check.labels)
        for repeat, fold, train, test, as_is, permuted, normalised, genes in prepared:
            planted = plant_block(normalised, genes, rows, strength, train)
            base = {"repeat": repeat, "fold": fold, "generator": generator, "arm": "probe",
                    "n_train": int(train.size), "n_test": int(test.size), "test_index": test.tolist()}
            for model, layout_used in (("layout", as_is), (PERMUTATION, permuted)):
                probe.folds.append({**base, "model": model, **_probe(_images(layout_used, planted), y, train, test,
                                                                     0.0)})
        diff = probe.difference(generator, "probe", "layout", generator, "probe", PERMUTATION, n_tests=n_arms)
        detected = diff["ci"] is not None and diff["ci"][0] > 0
        step = {"strength": strength, "difference": diff["mean"], "ci": diff["ci"], "detected": detected}
        out["strengths"].append(step)
        if detected:
            out["smallest_detected"] = step
            break
    last = out["strengths"][-1] if out["strengths"] else None
    out["ceiling"] = bool(last is not None and not last["detected"] and layout_score is not None
                          and layout_score >= CEILING and abs(last["difference"]) < 1 - CEILING)
    return out
