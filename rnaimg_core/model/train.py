"""Training the small CNN: settings, the training loop, honest evaluation, a flat baseline.

:func:`train_model` takes an :class:`~rnaimg_core.images.ImageSet` (images,
labels, split, layout) and returns a :class:`TrainResult` with the trained
network, honest test metrics, the per-epoch history and a baseline fitted on
exactly the same samples.

Which samples are used for what
-------------------------------
* **test**: the samples marked ``split == "holdout"`` in the images file (held
  out when the layout was fitted, so the layout's normalisation never saw
  them). Without holdout samples, a stratified ``test_fraction`` of all
  samples is held out here instead (``TrainResult.split["test_source"]`` says
  which). Test samples are never used for training or early stopping.
* **validation**: a stratified ``val_fraction`` of the remaining samples, at most
  :data:`~rnaimg_core.splits.MAX_VAL_SAMPLES` (a stratified subsample; the others
  train); its loss drives early stopping and picks the best epoch.
* **train**: the rest. Each epoch passes over all of them in a fresh order, or over a
  fresh stratified draw of ``samples_per_epoch`` of them (for stores too large to pass
  over every epoch).
* **an ensemble** (``n_models`` networks, 5 by default, logits averaged) does not share
  one validation split by default (``ensemble_validation="folds"``): the non-test samples
  are cut into ``n_models`` stratified folds, and network k early-stops on fold k and
  trains on the others. Every non-test sample then trains all networks but one, and no
  single draw of a small validation set decides the model (the result lists every
  non-test sample under ``train``). Member seeds come from :func:`member_seed`.

Where each network starts
-------------------------
With the linear path (on by default), each network first fits that path alone to
convergence on its own training samples (:func:`linear_warm_start`: the L2 logistic
regression of the baseline), with the convolutions' output layer at zero, so it starts
at the converged linear model; epoch 0 (that model) is a candidate for the best epoch,
and the linear path then learns at ``linear_lr_scale`` (a tenth) of the learning rate
while the convolutions add what they can. Found by experiment on small, unbalanced real
cohorts (benchmarks/bench_recipe.py, benchmarks/README.md).

Images in memory and images stores (:func:`train_streamed`, read through
:mod:`rnaimg_core.model.data`) go through the same split, training loop, validation, test pass and result assembly.

The baseline
------------
Logistic regression (:mod:`rnaimg_core.model.baseline`: scikit-learn, L2, C = 1,
balanced class weights) fitted on the train + validation samples and scored on the same test samples. Its features
are the image pixels that carry at least one gene, flattened: that is, the
layout's normalised gene values (log2 and per-gene z-score fitted on the
layout's fit samples), averaged where genes share a pixel (the layout's
``reduce`` rule). For one-gene-per-pixel layouts (chromosome, DeepMapper) these
are exactly the normalised genes, so the baseline tells whether arranging
genes in an image helps a CNN or not.

Settings
--------
:class:`TrainSettings` holds every training default, with per-field bounds and
help text; the command line and the dashboard build their options from it.

Device
------
CUDA when present, then Apple MPS, then CPU (:func:`rnaimg_core.device.choose_device`);
the device used is reported in the result.
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from rnaimg_core import splits
from rnaimg_core.device import DEVICES, choose_device, describe_device, torch_threads
from rnaimg_core.errors import InputError
from rnaimg_core.images import ImageSet
from rnaimg_core.model.baseline import BASELINE_C, fit_baseline, score_baseline
from rnaimg_core.model.baseline import DESCRIPTION as BASELINE_DESCRIPTION
from rnaimg_core.model.data import EVAL_BATCH, ArrayDataset, EpochSampler, StoreDataset, batch_loader, predict_logits
from rnaimg_core.model.metrics import classification_metrics
from rnaimg_core.model.network import DEFAULT_ARCHITECTURE, SmallCNN, build_network
from rnaimg_core.model.trained import TrainedModel, TrainResult

Progress = Callable[[dict], None]
SCHEDULES = ("constant", "onecycle")
ENSEMBLE_VALIDATION = ("shared", "folds")
StopSignal = Callable[[], bool] | threading.Event | None


# ---------------------------------------------------------------- settings

def _setting(default: Any, help: str, bounds: tuple | None = None, choices: tuple | None = None) -> Any:
    """A TrainSettings field: its default, help line, (low, high) bounds and choices."""
    return field(default=default, metadata={"help": help, "bounds": bounds, "choices": choices})


@dataclass(frozen=True)
class TrainSettings:
    """How to train: the one home of every training default.

    Each field carries a help line and, for numbers, inclusive ``(low, high)``
    bounds (:meth:`bounds`, :meth:`help`, :meth:`describe`); the constructor and
    :meth:`replace` check them. ``architecture`` holds overrides of
    :data:`~rnaimg_core.model.network.DEFAULT_ARCHITECTURE` as ``(name, value)``
    pairs (a dict is accepted and converted), so settings are hashable.

    Examples
    --------
    >>> settings = TrainSettings().replace(epochs=30, seed=1)
    >>> TrainSettings.bounds("epochs")
    (1, 10000)
    """

    epochs: int = _setting(120, "maximum epochs (early stopping may end sooner)", (1, 10_000))
    batch_size: int = _setting(32, "samples per AdamW step", (2, 4096))
    learning_rate: float = _setting(2e-3, "AdamW learning rate", (1e-6, 1.0))
    weight_decay: float = _setting(1e-2, "AdamW weight decay", (0.0, 1.0))
    patience: int = _setting(15, "epochs without a lower validation loss before stopping", (1, 10_000))
    val_fraction: float = _setting(splits.VAL_FRACTION, "stratified share of the non-test samples used for "
                                   "early stopping (0: none, train for all epochs)", (0.0, 0.9))
    test_fraction: float = _setting(splits.TEST_FRACTION, "stratified test share, used only when the images "
                                    "carry no holdout samples", (0.01, 0.9))
    seed: int = _setting(0, "seed of the splits, weights, batch order and dropout", (0, 2**31 - 1))
    class_weighting: bool = _setting(True, "weight the loss by inverse class frequency (for unbalanced classes)")
    label_smoothing: float = _setting(0.0, "share of each target's probability spread over the other classes "
                                      "(keeps a small network from over-trusting a few samples)", (0.0, 0.5))
    schedule: str = _setting("constant", "learning-rate schedule: constant, or onecycle (warm-up then cosine "
                             "decay over the epoch budget)", choices=SCHEDULES)
    min_val_samples: int = _setting(0, "early stopping only when the validation split would hold at least this "
                                    "many samples; otherwise every non-test sample trains for the full epoch "
                                    "budget (a tiny validation set picks the best epoch by chance)", (0, 100_000))
    n_models: int = _setting(5, "networks trained from different seeds and averaged (an ensemble: steadier "
                             "scores and attributions, n times the time)", (1, 64))
    ensemble_validation: str = _setting(
        "folds", "how the networks of an ensemble early-stop: shared (all on the same validation samples) or "
        "folds (network k on the k-th of n_models stratified folds of the non-test samples, trained on the "
        "others, so every non-test sample trains all networks but one)", choices=ENSEMBLE_VALIDATION)
    architecture: tuple[tuple[str, Any], ...] = _setting(
        (), f"overrides of the network architecture ({', '.join(DEFAULT_ARCHITECTURE)})")
    linear_warm_start: bool = _setting(
        True, "before training each network, fit its linear path alone to convergence on that network's "
        "training samples (L2 logistic regression with the baseline's penalty, by L-BFGS) and start the "
        "convolutions' output layer at zero, so training starts from the converged linear model and epoch 0 "
        "(that model) is a candidate for the best epoch (ignored without the linear path)")
    linear_lr_scale: float = _setting(0.1, "learning rate of the linear path, as a share of learning_rate (0: the "
                                      "linear path stays where it started, e.g. at its warm start)", (0.0, 1.0))
    linear_warm_start_on: str = _setting(
        "train", "which samples the linear warm start is fitted on: train (the network's own training samples) "
        "or all (every non-test sample, train and validation: the flat baseline's own samples, so epoch 0 is "
        "the baseline; use with linear_lr_scale 0)", choices=("train", "all"))
    linear_fallback: bool = _setting(
        True, "keep the converged linear model (epoch 0 of a linear warm start) unless the best later epoch's "
        "validation loss is lower by more than one standard error of the paired per-sample differences (the "
        "one-standard-error rule): on a few validation samples a lower loss by chance must not replace the "
        "linear model the network started from")
    device: str = _setting("auto", "auto: CUDA GPU when present, then Apple MPS, then CPU", choices=DEVICES)
    baseline: bool = _setting(True, "also fit logistic regression on the flattened images (same samples)")
    random_control: bool = _setting(False, "also train the same CNN on randomly permuted pixels "
                                    "(a layout-free control)")
    n_threads: int | None = _setting(None, "CPU threads for torch during training (default: RNAIMG_THREADS, else "
                                     "1 on machines with at most 4 cores, else min(8, cores // 2); "
                                     "rnaimg_core.device.cpu_threads)", (1, 1024))
    samples_per_epoch: int | None = _setting(
        None, "training samples drawn per epoch, stratified by class, a fresh seeded draw each epoch (for "
        "stores too big to pass over every epoch; default: every training sample)", (2, 10**9))

    def __post_init__(self) -> None:
        architecture = self.architecture
        pairs = tuple((architecture or {}).items()) if isinstance(architecture, Mapping) or architecture is None \
            else tuple((str(name), value) for name, value in architecture)
        object.__setattr__(self, "architecture", pairs)
        unknown = set(dict(pairs)) - set(DEFAULT_ARCHITECTURE)
        if unknown:
            raise InputError(f"Unknown architecture setting(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(DEFAULT_ARCHITECTURE)}.")
        for spec in dataclasses.fields(self):
            _check(spec, getattr(self, spec.name))

    @classmethod
    def bounds(cls, name: str) -> tuple | None:
        """Inclusive ``(low, high)`` of a numeric setting; None for other settings."""
        return cls._field(name).metadata["bounds"]

    @classmethod
    def help(cls, name: str) -> str:
        """The help line of a setting."""
        return cls._field(name).metadata["help"]

    @classmethod
    def describe(cls) -> list[dict]:
        """Every setting: name, type, default, bounds, choices and help (for option and widget builders)."""
        defaults = cls().to_dict()
        return [{"name": spec.name, "type": str(spec.type), "default": defaults[spec.name],
                 "bounds": spec.metadata["bounds"], "choices": spec.metadata["choices"],
                 "help": spec.metadata["help"]} for spec in dataclasses.fields(cls)]

    @classmethod
    def _field(cls, name: str) -> dataclasses.Field:
        for spec in dataclasses.fields(cls):
            if spec.name == name:
                return spec
        raise KeyError(f"TrainSettings has no setting {name!r}")

    def replace(self, **changes: Any) -> "TrainSettings":
        """New settings with ``changes`` applied and checked (:class:`InputError` when out of bounds)."""
        known = [spec.name for spec in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise TypeError(f"Unknown training setting(s) {', '.join(unknown)}; settings: {', '.join(known)}.")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Every setting by name, ``architecture`` as a dict of its overrides."""
        out = {spec.name: getattr(self, spec.name) for spec in dataclasses.fields(self)}
        out["architecture"] = dict(self.architecture)
        return out

    @property
    def full_architecture(self) -> dict:
        """The network architecture: :data:`DEFAULT_ARCHITECTURE` with this run's overrides."""
        return {**DEFAULT_ARCHITECTURE, **dict(self.architecture)}

    def record(self) -> dict:
        """The settings a model folder records (``model.json`` "settings"; these keys are the file format)."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, "learning_rate": self.learning_rate,
                "weight_decay": self.weight_decay, "patience": self.patience, "val_fraction": self.val_fraction,
                "test_fraction": self.test_fraction, "seed": self.seed, "class_weighting": self.class_weighting,
                "label_smoothing": self.label_smoothing, "schedule": self.schedule,
                "min_val_samples": self.min_val_samples, "n_models": self.n_models,
                "ensemble_validation": self.ensemble_validation, "linear_warm_start": self.linear_warm_start,
                "linear_lr_scale": self.linear_lr_scale, "linear_fallback": self.linear_fallback,
                "linear_warm_start_on": self.linear_warm_start_on,
                "samples_per_epoch": self.samples_per_epoch, "architecture": self.full_architecture}


def _check(spec: dataclasses.Field, value: Any) -> None:
    """Raise InputError when a setting's value is outside its bounds or choices."""
    low_high, choices = spec.metadata["bounds"], spec.metadata["choices"]
    if low_high is not None and value is not None:
        low, high = low_high
        integral = str(spec.type).startswith("int")
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not number or not low <= value <= high or (integral and value != int(value)):
            kind = "a whole number" if integral else "a number"
            raise InputError(f"{spec.name} must be {kind} from {low} to {high}, not {value!r}.")
    if choices is not None and str(value).lower().split(":")[0] not in choices:
        raise InputError(f"{spec.name} must be one of {', '.join(choices)}, not {value!r}.")


def _settings(settings: TrainSettings | None, overrides: dict) -> TrainSettings:
    settings = TrainSettings() if settings is None else settings
    if not isinstance(settings, TrainSettings):
        raise TypeError(f"settings must be a TrainSettings, not {type(settings).__name__}.")
    return settings.replace(**overrides) if overrides else settings


# ---------------------------------------------------------------- training

def train_model(images: ImageSet, settings: TrainSettings | None = None, *, progress: Progress | None = None,
                should_stop: StopSignal = None, **overrides: Any) -> TrainResult:
    """Train the small CNN on an image set and evaluate it honestly beside a baseline.

    Parameters
    ----------
    images : ImageSet with labels (``read_images`` or built in memory), or an images store
        (:func:`~rnaimg_core.stores.read_store`), streamed by :func:`train_streamed`
    settings : TrainSettings (default: ``TrainSettings()``)
    progress : called after every epoch with the epoch's history record (a dict
        with epoch, n_epochs, train_loss, val_loss, train_accuracy, val_accuracy, ...)
    should_stop : a callable returning True, or a ``threading.Event`` that is set,
        to end training after the current batch; the best model so far is kept.
        Ctrl-C (KeyboardInterrupt) does the same.
    **overrides : settings to change, by name (``epochs=5, seed=1``; see :class:`TrainSettings`)

    Returns
    -------
    TrainResult
    """
    started = time.perf_counter()
    settings = _settings(settings, overrides)
    if getattr(images, "streamed", False):  # an images store (rnaimg_core.stores): streamed, never loaded whole
        return train_streamed(images, settings, progress=progress, should_stop=should_stop)
    class_names, y, split, notes = _classes_and_split(images.labels, images.split, settings)
    dev = choose_device(settings.device)
    x = np.ascontiguousarray(images.images, dtype=np.float32)
    data = _memory_datasets(x, y, split, dev)
    with torch_threads(settings.n_threads):
        fit = _fit_ensemble(data, y, split, len(class_names), settings, dev, progress, should_stop)
        evaluation = _evaluate(fit["network"], data["test"], y, split, class_names, dev)
        base = _baseline(x, y, split, class_names, settings.seed) if settings.baseline else None
        control = None
        if settings.random_control and fit["stopped"] not in ("stop requested", "interrupted"):
            control = _random_control(x, y, split, class_names, settings, dev, should_stop)
        # inside the threads block: the result's device line names the threads training used
        return _assemble_result(fit, evaluation, base, control, class_names=class_names, layout=images.layout,
                                sample_ids=images.sample_ids, split=split, device=dev, settings=settings,
                                notes=notes, started=started)



def train_streamed(store, settings: TrainSettings, *, progress: Progress | None = None,
                   should_stop: StopSignal = None, num_workers: int = 2) -> TrainResult:
    """Train the CNN on an images store without loading it (``train_model`` hands a store here).

    The same split rules (the store's holdout samples are the test set), settings, training
    loop, early stopping and :class:`TrainResult` as :func:`train_model`, with every pass
    streamed through DataLoaders (:class:`~rnaimg_core.model.data.StoreDataset`) so memory
    holds a few batches, not the store. The baseline is fitted on a stratified sample of at
    most :data:`BASELINE_SAMPLES` train + validation samples (noted in the result); the
    random-permutation control is not run on a store.

    Parameters
    ----------
    store : ImagesStore (:func:`~rnaimg_core.stores.read_store`)
    settings : TrainSettings
    progress, should_stop : as for :func:`train_model`
    num_workers : DataLoader worker processes reading the store for training and test

    Returns
    -------
    TrainResult; ``samples_per_second`` counts training samples streamed per second of training steps
    """
    started = time.perf_counter()
    class_names, y, split, notes = _classes_and_split(store.labels, store.split, settings)
    notes.append("Trained from an images store, streamed in batches.")
    if settings.random_control:
        notes.append("The random-permutation control is not run on an images store.")
    dev = choose_device(settings.device)
    # one read of every image before training: a damaged (NaN) store is refused here with one clear line,
    # not from inside a DataLoader worker
    store.check_finite(np.concatenate([split[role] for role in ("train", "val", "test")]))
    data = {role: StoreDataset(store.path, split[role], y) for role in ("train", "val", "test")}
    with torch_threads(settings.n_threads):
        fit = _fit_ensemble(data, y, split, len(class_names), settings, dev, progress, should_stop,
                            num_workers=num_workers)
        evaluation = _evaluate(fit["network"], data["test"], y, split, class_names, dev, num_workers=num_workers)
        base = _streamed_baseline(store, y, split, class_names, settings.seed) if settings.baseline else None
        return _assemble_result(fit, evaluation, base, None, class_names=class_names, layout=store.layout,
                                sample_ids=store.sample_ids, split=split, device=dev, settings=settings,
                                notes=notes, started=started)


def _classes_and_split(labels: np.ndarray | None, split_column: np.ndarray | None,
                       settings: TrainSettings) -> tuple[list[str], np.ndarray, dict, list[str]]:
    """Class names, class index per sample, train/val/test indices and notes (in memory and streamed alike).

    The split follows :func:`rnaimg_core.splits.train_val_test` (validation at most
    :data:`~rnaimg_core.splits.MAX_VAL_SAMPLES`); a validation split smaller than
    ``settings.min_val_samples`` joins training and the full epoch budget is trained.
    """
    if labels is None:
        raise InputError("These images carry no labels; training needs a class for every sample. "
                         "Convert a labelled matrix (or give a sample sheet with --labels).")
    labels = np.asarray(labels).astype(str)
    class_names = sorted(set(labels.tolist()))
    if len(class_names) < 2:
        raise InputError(f"Training needs at least two classes; the images have only {class_names}.")
    y = np.searchsorted(class_names, labels)
    split = splits.train_val_test(labels, split_column, test_fraction=settings.test_fraction,
                                  val_fraction=settings.val_fraction, seed=settings.seed,
                                  max_val=splits.MAX_VAL_SAMPLES)
    notes = list(split.pop("notes"))
    if 0 < split["val"].size < settings.min_val_samples:
        n_fit = split["train"].size + split["val"].size
        notes.append(f"A validation split would hold only {split['val'].size} samples (fewer than "
                     f"{settings.min_val_samples}), too few to pick an epoch; all {n_fit} non-test samples "
                     f"trained for the full budget of {settings.epochs} epochs instead.")
        split["train"], split["val"] = np.sort(np.concatenate([split["train"], split["val"]])), split["val"][:0]
    if settings.samples_per_epoch is not None and settings.samples_per_epoch < split["train"].size:
        notes.append(f"Each epoch trained on {settings.samples_per_epoch} of the {split['train'].size} training "
                     "samples, a fresh draw stratified by class.")
    return class_names, y, split, notes


def _memory_datasets(x: np.ndarray, y: np.ndarray, split: dict, dev: torch.device) -> dict[str, ArrayDataset]:
    """Train/val/test datasets over images in memory, held on ``dev`` when they fit (under 2 GiB), else the CPU."""
    device = dev if dev.type != "cpu" and x.nbytes < 2 * 2**30 else None
    images = ArrayDataset.from_numpy(x, y, device=device)
    return {role: ArrayDataset(images.images, images.targets, split[role]) for role in ("train", "val", "test")}


def _evaluate(network: nn.Module, test: torch.utils.data.Dataset, y: np.ndarray, split: dict,
              class_names: list[str], dev: torch.device, *, num_workers: int = 0) -> dict:
    """Test metrics, confusion and per-class table of ``network`` on every test sample (forward only)."""
    logits, _ = predict_logits(network, batch_loader(test, EVAL_BATCH, num_workers=num_workers), dev)
    predicted = logits.argmax(1).numpy() if logits.numel() else np.empty(0, np.int64)
    metrics, confusion, per_class = classification_metrics(y[split["test"]], predicted, len(class_names),
                                                           class_names)
    metrics["evaluated_on"] = split["test_source"]
    return {"metrics": metrics, "confusion": confusion, "per_class": per_class}


def _assemble_result(fit: dict, evaluation: dict, baseline: dict | None, control: dict | None, *,
                     class_names: list[str], layout, sample_ids: np.ndarray, split: dict, device: torch.device,
                     settings: TrainSettings, notes: list[str], started: float) -> TrainResult:
    """The :class:`TrainResult` of a run (its model's ``info`` filled in).

    ``fit`` may carry its own ``split`` (networks validated on folds of the non-test samples
    report them all as training samples) and ``notes``.
    """
    network = fit["network"].cpu().eval()
    split, notes = fit.get("split", split), list(notes) + list(fit.get("notes", []))
    split_ids = {role: np.asarray(sample_ids)[split[role]].astype(str).tolist() for role in ("train", "val", "test")}
    split_ids["test_source"] = split["test_source"]
    model = TrainedModel(network, class_names, layout, {})
    result = TrainResult(
        model=model, class_names=class_names, metrics=evaluation["metrics"], confusion=evaluation["confusion"],
        per_class=evaluation["per_class"], history=fit["history"], baseline=baseline, control=control,
        split=split_ids, device=describe_device(device), seconds=time.perf_counter() - started,
        train_seconds=fit["seconds"], samples_per_second=fit["samples"] / max(fit["step_seconds"], 1e-9),
        epochs_run=len(fit["history"]), best_epoch=fit["best_epoch"], stopped=fit["stopped"],
        settings=settings.record(), notes=notes,
    )
    model.info = result.model_info()
    return result


def cross_validate(images: ImageSet, settings: TrainSettings | None = None, *, n_folds: int = 5,
                   progress: Progress | None = None, should_stop: StopSignal = None, **overrides: Any) -> dict:
    """Stratified k-fold cross-validation of the CNN (and the baseline) on all labelled samples.

    Each fold is the test set once; training and validation come from the other
    folds. The images' ``split`` column is ignored here (every sample is tested once).

    Parameters
    ----------
    images : ImageSet with labels
    settings : TrainSettings; its ``seed`` seeds the folds, and fold ``k`` trains with ``seed + k``
    n_folds : number of folds
    progress, should_stop : passed to :func:`train_model` for every fold
    **overrides : settings to change, by name (see :class:`TrainSettings`)

    Returns
    -------
    dict with ``folds`` (one :meth:`TrainResult.summary` per fold) and the mean and
    standard deviation of accuracy and balanced accuracy for the CNN and the baseline
    """
    settings = _settings(settings, overrides)
    if images.labels is None:
        raise InputError("Cross-validation needs labelled images.")
    labels = np.asarray(images.labels).astype(str)
    summaries = []
    for fold, test in enumerate(splits.stratified_folds(labels, n_folds, settings.seed)):
        subset = ImageSet(images.images, images.sample_ids, labels, splits.fold_split(labels.size, test),
                          images.layout)
        result = train_model(subset, settings.replace(seed=settings.seed + fold), progress=progress,
                             should_stop=should_stop)
        summaries.append({"fold": fold, **result.summary()})
    frame = pd.DataFrame(summaries)
    out: dict = {"n_folds": n_folds, "folds": summaries}
    for column in ("accuracy", "balanced_accuracy", "baseline_accuracy", "baseline_balanced_accuracy"):
        values = pd.to_numeric(frame[column], errors="coerce")
        out[f"{column}_mean"] = None if values.isna().all() else round(float(values.mean()), 6)
        out[f"{column}_sd"] = None if values.isna().all() else round(float(values.std(ddof=1)), 6)
    return out


def _class_weights(y_train: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y_train, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def _scheduler(optimizer: torch.optim.Optimizer, settings: TrainSettings, n_train: int,
               batch_size: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule, stepped once per batch (None: constant rate)."""
    if settings.schedule == "constant":
        return None
    # the loop skips a trailing batch of one sample (batch norm needs two)
    steps = n_train // batch_size + (1 if n_train % batch_size >= 2 or n_train < 2 else 0)
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[group["lr"] for group in optimizer.param_groups],
                                               total_steps=max(1, steps) * int(settings.epochs) + 1,
                                               pct_start=0.3, anneal_strategy="cos")


def train_step(network: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
               inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on a batch (shared with streamed training); returns the detached loss and logits."""
    optimizer.zero_grad(set_to_none=True)
    logits = network(inputs)
    loss = criterion(logits, targets)
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return loss.detach(), logits.detach()


def stop_requested(should_stop: StopSignal) -> bool:
    """True when ``should_stop`` (None, a ``threading.Event`` or a callable) asks to stop."""
    if should_stop is None:
        return False
    if isinstance(should_stop, threading.Event):
        return should_stop.is_set()
    return bool(should_stop())


def member_seed(seed: int, member: int) -> int:
    """The seed of an ensemble's member ``member`` (0, 1, ...) for a run with seed ``seed``.

    Member 0 trains with ``seed`` itself (a one-network run is member 0); the others get
    seeds drawn from ``(seed, member)`` by :class:`numpy.random.SeedSequence`, so the
    ensembles of two runs never share a member (with ``seed + member``, seeds 0 and 1 would
    share two of three networks, and their agreement would be partly agreement with themselves).
    """
    if member == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(member)]).generate_state(1)[0] % 2**31)


def _fit_ensemble(data: dict, y: np.ndarray, split: dict, n_classes: int, settings: TrainSettings,
                  dev: torch.device, progress: Progress | None, should_stop: StopSignal, *,
                  num_workers: int = 0) -> dict:
    """``settings.n_models`` networks (seeds from :func:`member_seed`); one :class:`EnsembleCNN` when several.

    ``data`` holds the ``train`` and ``val`` Datasets (:mod:`rnaimg_core.model.data`: in memory
    or streamed from a store); ``num_workers`` DataLoader processes read the training batches.
    With ``ensemble_validation="folds"`` each network trains and early-stops on its own part
    of the non-test samples (:func:`_member_parts`); the result then carries ``split`` (every
    non-test sample under ``train``) and ``notes``.
    History, epochs and best epoch are the first member's; seconds and samples add up. A stop
    request keeps the members trained so far (the current one at its best epoch).
    """
    parts, extra = _member_parts(data, y, split, settings)
    fits = []
    for member in range(int(settings.n_models)):
        report = progress
        if progress is not None and settings.n_models > 1:
            report = _member_progress(progress, member + 1, int(settings.n_models))
        member_settings = settings.replace(seed=member_seed(settings.seed, member))
        member_data, member_split = parts[member] if parts else (data, split)
        fits.append(_fit_network(member_data, y, member_split, n_classes, member_settings, dev, report,
                                 should_stop, num_workers=num_workers))
        if fits[-1]["stopped"] in ("stop requested", "interrupted"):
            break
    warm = [fit for fit in fits if fit.get("warm_start")]
    if warm:
        kept = sum(fit["best_epoch"] == 0 for fit in warm)
        extra = {**extra, "notes": list(extra.get("notes", [])) + [
            f"{'Each network' if len(fits) > 1 else 'The network'} started from its linear path fitted alone to "
            f"convergence on its training samples (L2 logistic regression, C = {WARM_START_C:g}); "
            f"{kept} of {len(warm)} kept that linear model (best epoch 0)."]}
    first = {**fits[0], **extra}
    if len(fits) == 1:
        return first
    network = build_network(**{**first["network"].hyperparameters, "members": len(fits)}).to(dev)
    for target, fit in zip(network.members, fits):
        target.load_state_dict(fit["network"].state_dict())
    return {**first, "network": network.eval(), "stopped": fits[-1]["stopped"],
            **{key: sum(fit[key] for fit in fits) for key in ("seconds", "step_seconds", "samples")}}


def _member_progress(progress: Progress, member: int, n_models: int) -> Progress:
    """``progress`` with each record saying which network of the ensemble it is about."""
    return lambda record: progress({**record, "model": member, "n_models": n_models})


def _member_parts(data: dict, y: np.ndarray, split: dict, settings: TrainSettings) -> tuple[list | None, dict]:
    """Each network's (datasets, split) for ``ensemble_validation="folds"``, and what the result reports.

    The non-test samples (train + validation of ``split``) are cut into ``n_models``
    stratified folds (seeded by ``settings.seed``); network k validates on fold k and
    trains on the others. Returns ``(None, {})`` for shared validation: one network, no
    validation samples, a class with fewer non-test samples than networks, or folds larger
    than :data:`~rnaimg_core.splits.MAX_VAL_SAMPLES` (large cohorts, whose shared validation
    set is big enough to be steady); the last two with a note.
    """
    n_models = int(settings.n_models)
    if settings.ensemble_validation != "folds" or n_models < 2 or split["val"].size == 0:
        return None, {}
    fit_samples = np.sort(np.concatenate([split["train"], split["val"]]))
    counts = np.bincount(y[fit_samples])
    if counts[counts > 0].min() < n_models:
        return None, {"notes": [f"A class has fewer than {n_models} non-test samples, too few to give each of the "
                                f"{n_models} networks its own validation fold; they shared one validation split."]}
    if fit_samples.size // n_models > splits.MAX_VAL_SAMPLES:
        return None, {"notes": [f"The {n_models} networks shared one validation split of at most "
                                f"{splits.MAX_VAL_SAMPLES} samples (folds of {fit_samples.size // n_models} "
                                "samples each would make every epoch's validation pass needlessly long)."]}
    folds = splits.stratified_folds(y[fit_samples], n_models, settings.seed)
    parts = []
    for fold in folds:
        member_split = {**split, "train": np.setdiff1d(fit_samples, fit_samples[fold]), "val": fit_samples[fold]}
        parts.append(({**data, "train": _with_indices(data["train"], member_split["train"]),
                       "val": _with_indices(data["val"], member_split["val"])}, member_split))
    note = (f"Each of the {n_models} networks early-stopped on its own fold of the {fit_samples.size} non-test "
            f"samples (about {fit_samples.size // n_models}) and trained on the others.")
    return parts, {"split": {**split, "train": fit_samples, "val": fit_samples[:0]}, "notes": [note]}


def _with_indices(dataset: torch.utils.data.Dataset, indices: np.ndarray) -> torch.utils.data.Dataset:
    """A copy of an in-memory or store dataset (:mod:`rnaimg_core.model.data`) serving other sample positions."""
    subset = copy.copy(dataset)
    indices = np.asarray(indices, dtype=np.int64)
    subset.indices = torch.as_tensor(indices) if isinstance(dataset.indices, torch.Tensor) else indices
    return subset


def _fit_network(data: dict, y: np.ndarray, split: dict, n_classes: int, settings: TrainSettings,
                 dev: torch.device, progress: Progress | None, should_stop: StopSignal, *,
                 num_workers: int = 0) -> dict:
    """The training loop: AdamW, weighted cross-entropy, early stopping on validation loss.

    One loop for images in memory and streamed from a store: each epoch is the batches
    of an :class:`~rnaimg_core.model.data.EpochSampler` draw (every training sample, or
    ``settings.samples_per_epoch`` of them) through a DataLoader, then one forward pass
    over the validation samples. ``step_seconds`` is the time spent in training batches
    (reading and optimiser steps), ``seconds`` the whole loop with validation.
    """
    seed = int(settings.seed)
    train, val = split["train"], split["val"]
    c, h, w = data["train"].image_shape
    cuda_devices = [dev.index or 0] if dev.type == "cuda" else []
    cudnn_flags = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    # fork the RNGs so seeding here leaves the caller's (the dashboard's) random state alone
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        if dev.type == "cuda":
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        try:
            network = SmallCNN(c, h, w, n_classes, **settings.full_architecture).to(dev)
            # channels-last tensors run this network's convolutions, batch norm and pooling about a quarter
            # faster on CPUs (benchmarks/README.md); the weights return to the usual layout after training
            channels_last = dev.type == "cpu"
            if channels_last:
                network = network.to(memory_format=torch.channels_last)
            weights = _class_weights(y[train], n_classes) if settings.class_weighting else np.ones(
                n_classes, dtype=np.float32)
            criterion = nn.CrossEntropyLoss(weight=torch.as_tensor(weights, device=dev),
                                            label_smoothing=float(settings.label_smoothing))
            warm_samples = (data["train"] if settings.linear_warm_start_on == "train" or not val.size
                            else _with_indices(data["train"], np.concatenate([train, val])))
            warm = (linear_warm_start(network, warm_samples, criterion, dev, seed=seed)
                    if settings.linear_warm_start and network.linear is not None and train.size else None)
            optimizer = torch.optim.AdamW(_parameter_groups(network, settings), lr=settings.learning_rate,
                                          weight_decay=settings.weight_decay)
            batch_size = max(1, int(settings.batch_size))
            sampler = EpochSampler(y[train], settings.samples_per_epoch, seed)
            scheduler = _scheduler(optimizer, settings, len(sampler), batch_size)
            train_loader = batch_loader(data["train"], batch_size, sampler=sampler, num_workers=num_workers)
            val_loader = batch_loader(data["val"], EVAL_BATCH)  # in order (a store reads contiguous chunks)
            history: list[dict] = []
            best = {"loss": float("inf"), "state": None, "epoch": 0}
            linear = None
            if warm is not None and val.size:  # epoch 0, the fitted linear model, is a candidate too
                best = {"loss": _validate(network, criterion, val_loader, dev)["val_loss"], "epoch": 0,
                        "state": copy.deepcopy(network.state_dict())}
                linear = {"state": best["state"], "losses": _sample_losses(network, criterion, val_loader, dev)}
            stopped, waited, samples_seen, step_seconds = "completed", 0, 0, 0.0
            started = time.perf_counter()
            try:
                for epoch in range(1, int(settings.epochs) + 1):
                    epoch_started = time.perf_counter()
                    network.train()
                    total_loss, total_correct, total_seen = 0.0, 0, 0
                    for inputs, targets in train_loader:
                        inputs = inputs.to(dev, non_blocking=True)
                        if channels_last:
                            inputs = inputs.contiguous(memory_format=torch.channels_last)
                        targets = targets.to(dev, non_blocking=True)
                        loss, logits = train_step(network, criterion, optimizer, scheduler, inputs, targets)
                        total_loss += float(loss) * targets.numel()
                        total_correct += int((logits.argmax(1) == targets).sum())
                        total_seen += targets.numel()
                        if stop_requested(should_stop):
                            stopped = "stop requested"
                            break
                    samples_seen += total_seen
                    step_seconds += time.perf_counter() - epoch_started
                    if stopped == "stop requested" and total_seen < len(sampler):
                        break  # a partial epoch is not recorded; keep the best full epoch
                    record = {"epoch": epoch, "n_epochs": int(settings.epochs),
                              "train_loss": round(total_loss / max(1, total_seen), 6),
                              "train_accuracy": round(total_correct / max(1, total_seen), 6)}
                    record.update(_validate(network, criterion, val_loader, dev))
                    record["seconds"] = round(time.perf_counter() - epoch_started, 4)
                    history.append(record)
                    # without a validation split the budget is fixed: the last epoch is the model
                    monitored = record["val_loss"] if val.size else -float(epoch)
                    if monitored < best["loss"] - 1e-6 or best["state"] is None:
                        best = {"loss": monitored, "epoch": epoch, "state": copy.deepcopy(network.state_dict())}
                        waited = 0
                    else:
                        waited += 1
                    if progress is not None:
                        progress(dict(record))
                    if stopped == "stop requested":
                        break
                    if val.size and waited >= int(settings.patience):
                        stopped = "early stopping"
                        break
            except KeyboardInterrupt:
                stopped = "interrupted"
            seconds = time.perf_counter() - started
            if best["state"] is not None:
                network.load_state_dict(best["state"])
            if linear is not None and settings.linear_fallback and best["epoch"] > 0:
                gain = _one_se_gain(_sample_losses(network, criterion, val_loader, dev), linear["losses"])
                if gain is not None and gain <= 0:  # not better than the linear model by one standard error
                    network.load_state_dict(linear["state"])
                    best = {**best, "epoch": 0}
                    warm = {**warm, "kept": True}
            network = network.to(memory_format=torch.contiguous_format).eval()
        finally:
            if dev.type == "cuda":
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn_flags
    return {"network": network, "history": history, "best_epoch": best["epoch"], "stopped": stopped,
            "seconds": seconds, "step_seconds": step_seconds, "samples": samples_seen, "warm_start": warm}


def _parameter_groups(network: SmallCNN, settings: TrainSettings) -> list[dict]:
    """AdamW parameter groups: the linear path at ``linear_lr_scale`` times the learning rate, the rest at it."""
    linear = [] if network.linear is None else list(network.linear.parameters())
    taken = {id(p) for p in linear}
    groups = [{"params": [p for p in network.parameters() if id(p) not in taken], "lr": settings.learning_rate}]
    if linear:
        groups.append({"params": linear, "lr": settings.learning_rate * settings.linear_lr_scale})
    return groups


WARM_START_SAMPLES = 4000  # training samples the linear warm start is fitted on at most (held in memory)
WARM_START_C = BASELINE_C  # inverse L2 strength of the warm start: the baseline's LogisticRegression(C=1)


def linear_warm_start(network: SmallCNN, train: torch.utils.data.Dataset, criterion: nn.CrossEntropyLoss,
                      dev: torch.device, *, seed: int = 0, max_iter: int = 500) -> dict:
    """Start ``network`` at the converged linear model: its linear path fitted alone, the conv head at zero.

    The linear path (``SmallCNN(linear_path=True)``) is fitted by full-batch L-BFGS on the
    training samples (a stratified draw of :data:`WARM_START_SAMPLES` when there are more),
    with the training loss (``criterion``: class weights, label smoothing) plus the L2
    penalty of scikit-learn's ``LogisticRegression(C=1)``, ``|W|**2 / (2 C sum(sample
    weights))``, so it finds what the baseline finds on the same samples (on the soft-clipped
    inputs the network sees). With two classes the network has two logit rows where
    scikit-learn has one weight vector (their difference), and the factor doubles so the
    penalty on that difference is scikit-learn's. The intercept goes to the bias of the
    convolutions' output layer, whose weights are set to zero: the network's logits are then
    exactly the fitted linear model's, and training moves on from there. The fit draws no
    random numbers.

    Parameters
    ----------
    network : SmallCNN with a linear path (changed in place)
    train : the network's training Dataset (:mod:`rnaimg_core.model.data`: in memory or a store)
    criterion : the training loss (weighted cross-entropy)
    dev : device of the network
    seed : seed of the stratified draw when the training samples exceed :data:`WARM_START_SAMPLES`
    max_iter : L-BFGS iterations at most

    Returns
    -------
    dict with ``samples``, ``iterations``, ``loss`` (the penalised training loss reached) and ``seconds``
    """
    started = time.perf_counter()
    targets = train.targets[train.indices]
    targets = targets.cpu().numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
    positions = list(EpochSampler(targets, WARM_START_SAMPLES, seed))
    items = train.__getitems__(sorted(positions))
    x = torch.stack([image for image, _ in items]).to(dev, torch.float32)
    targets = torch.as_tensor([int(target) for _, target in items], device=dev)
    with torch.no_grad():
        x = network.linear_inputs(x).reshape(x.shape[0], -1)  # what the linear path sees (SmallCNN.forward)
    n_classes = network.hyperparameters["n_classes"]
    weight = torch.zeros(n_classes, x.shape[1], device=dev, requires_grad=True)
    bias = torch.zeros(n_classes, device=dev, requires_grad=True)
    class_weights = criterion.weight if criterion.weight is not None else torch.ones(n_classes, device=dev)
    # scikit-learn's penalty; with two classes it penalises the one weight vector d = w1 - w0, and the two
    # symmetric logit rows here (w0 = -d/2, w1 = d/2 at the optimum) carry |d|**2 / 2: twice the factor
    penalty = (2.0 if n_classes == 2 else 1.0) / (2.0 * WARM_START_C * float(class_weights[targets].sum()))
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=int(max_iter), history_size=10,
                                  tolerance_grad=1e-6, tolerance_change=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(x @ weight.T + bias, targets) + penalty * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
        loss = float(closure().detach())
    with torch.no_grad():
        network.linear[1].weight.copy_(weight)
        output = network.classifier[-1]
        output.weight.zero_()
        output.bias.copy_(bias)
    state = optimizer.state[weight]
    return {"samples": int(x.shape[0]), "iterations": int(state.get("n_iter", 0)), "loss": round(loss, 6),
            "seconds": round(time.perf_counter() - started, 3)}


def _sample_losses(network: nn.Module, criterion: nn.CrossEntropyLoss, loader: torch.utils.data.DataLoader,
                   dev: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Per validation sample: its weighted loss (class weight x cross-entropy) and its class weight."""
    logits, true = predict_logits(network, loader, dev)
    weight = criterion.weight.cpu() if criterion.weight is not None else torch.ones(logits.shape[1])
    with torch.inference_mode():
        losses = nn.functional.cross_entropy(logits, true, weight=weight, reduction="none",
                                             label_smoothing=criterion.label_smoothing)
    return losses.numpy().astype(np.float64), weight[true].numpy().astype(np.float64)


def _one_se_gain(later: tuple[np.ndarray, np.ndarray], linear: tuple[np.ndarray, np.ndarray]) -> float | None:
    """How far the later model's weighted validation loss is below the linear model's, less one standard error.

    The weighted mean loss is ``sum(l_i) / sum(w_i)``; the paired per-sample differences
    ``d_i`` give the difference of the two means, ``D = sum(d_i) / W``, whose standard error
    is that of a ratio estimate, ``sqrt(n / (n - 1) * sum((d_i - D w_i)**2)) / W``. Positive:
    the later model is better by more than one standard error. None with fewer than two samples.
    """
    (mine, weights), (theirs, _) = later, linear
    if mine.size < 2:
        return None
    total = weights.sum()
    d = theirs - mine  # positive where the later model's loss is lower
    mean = d.sum() / total
    se = np.sqrt(mine.size / (mine.size - 1) * np.sum((d - mean * weights) ** 2)) / total
    return float(mean - se)


def _validate(network: nn.Module, criterion: nn.Module, loader: torch.utils.data.DataLoader,
              dev: torch.device) -> dict:
    """Loss, accuracy and balanced accuracy on the validation samples (forward only)."""
    logits, true = predict_logits(network, loader, dev)
    if true.numel() == 0:
        return {"val_loss": None, "val_accuracy": None, "val_balanced_accuracy": None}
    with torch.inference_mode():
        loss = float(criterion(logits.to(dev), true.to(dev)))
    predicted = logits.argmax(1).numpy()
    true = true.numpy()
    recalls = [np.mean(predicted[true == k] == k) for k in np.unique(true)]
    return {"val_loss": round(loss, 6), "val_accuracy": round(float(np.mean(predicted == true)), 6),
            "val_balanced_accuracy": round(float(np.mean(recalls)), 6)}


def _baseline(x: np.ndarray, y: np.ndarray, split: dict, class_names: list[str], seed: int) -> dict:
    """The flat baseline (:mod:`rnaimg_core.model.baseline`) on the flattened pixels, train+val -> test."""
    fit_index = np.concatenate([split["train"], split["val"]])
    scores = score_baseline(x, y, fit_index, split["test"], class_names, seed=seed)
    scores.pop("predicted")
    n_features = scores.pop("n_features")
    scores.pop("n_train")
    return {**scores, "model": f"{BASELINE_DESCRIPTION} on train+validation samples",
            "features": f"{n_features} non-empty pixels of the flattened images (the layout's normalised "
                        "genes, averaged where genes share a pixel)"}


BASELINE_SAMPLES = 4000  # train+validation samples the streamed baseline is fitted on (held in memory)


def _streamed_baseline(store, y: np.ndarray, split: dict, class_names: list[str], seed: int) -> dict:
    """The flat baseline on a stratified sample of train+val, scored on every test sample in batches."""
    started = time.perf_counter()
    fit_index = splits.stratified_sample(store.labels, np.concatenate([split["train"], split["val"]]),
                                         BASELINE_SAMPLES, seed)
    fitted = fit_baseline(store.load(fit_index).images, y[fit_index], seed=seed)
    test = split["test"]
    predicted = np.concatenate([fitted.predict(store.load(test[i:i + 1024]).images)
                                for i in range(0, test.size, 1024)]) if test.size else np.empty(0, np.int64)
    metrics, confusion, per_class = classification_metrics(y[test], predicted, len(class_names), class_names)
    return {**metrics, "confusion": confusion.tolist(), "per_class": per_class,
            "model": f"{BASELINE_DESCRIPTION} on a stratified sample of {fit_index.size} train+validation samples",
            "features": f"{fitted.n_features} non-empty pixels of the flattened images",
            "seconds": round(time.perf_counter() - started, 3)}


def _random_control(x: np.ndarray, y: np.ndarray, split: dict, class_names: list[str], settings: TrainSettings,
                    dev: torch.device, should_stop: StopSignal) -> dict:
    """The same CNN on images whose pixels are shuffled by one fixed random permutation."""
    rng = np.random.default_rng(int(settings.seed) + 7919)
    n = x.shape[0]
    permutation = rng.permutation(x[0].size)
    shuffled = np.ascontiguousarray(x.reshape(n, -1)[:, permutation].reshape(x.shape))
    data = _memory_datasets(shuffled, y, split, dev)
    fit = _fit_ensemble(data, y, split, len(class_names), settings, dev, None, should_stop)
    evaluation = _evaluate(fit["network"], data["test"], y, split, class_names, dev)
    metrics = {key: value for key, value in evaluation["metrics"].items() if key != "evaluated_on"}
    return {**metrics, "confusion": evaluation["confusion"].tolist(), "per_class": evaluation["per_class"],
            "epochs": len(fit["history"]), "seconds": round(fit["seconds"], 3),
            "layout": "random permutation of the pixels (same permutation for every sample)"}
