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
* **validation**: a stratified ``val_fraction`` of the remaining samples; its
  loss drives early stopping and picks the best epoch.
* **train**: the rest.

The baseline
------------
Logistic regression (scikit-learn, L2, balanced class weights) fitted on the
train + validation samples and scored on the same test samples. Its features
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
from rnaimg_core.device import DEVICES, choose_device, describe_device
from rnaimg_core.errors import InputError
from rnaimg_core.images import ImageSet
from rnaimg_core.model.metrics import classification_metrics
from rnaimg_core.model.network import DEFAULT_ARCHITECTURE, SmallCNN, build_network, predict_proba
from rnaimg_core.model.trained import TrainedModel, TrainResult

Progress = Callable[[dict], None]
SCHEDULES = ("constant", "onecycle")
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
    patience: int = _setting(40, "epochs without a lower validation loss before stopping", (1, 10_000))
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
    n_models: int = _setting(3, "networks trained from seeds seed, seed+1, ... on the same samples and averaged "
                             "(an ensemble: steadier scores and attributions, n times the time)", (1, 64))
    architecture: tuple[tuple[str, Any], ...] = _setting(
        (), f"overrides of the network architecture ({', '.join(DEFAULT_ARCHITECTURE)})")
    device: str = _setting("auto", "auto: CUDA GPU when present, then Apple MPS, then CPU", choices=DEVICES)
    baseline: bool = _setting(True, "also fit logistic regression on the flattened images (same samples)")
    random_control: bool = _setting(False, "also train the same CNN on randomly permuted pixels "
                                    "(a layout-free control)")
    n_threads: int | None = _setting(None, "CPU threads for torch during training (default: torch's setting)",
                                     (1, 1024))

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
                "architecture": self.full_architecture}


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
        (:func:`~rnaimg_core.stores.read_store`), streamed by :func:`~rnaimg_core.model.data.train_streamed`
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
        from rnaimg_core.model.data import train_streamed
        return train_streamed(images, settings, progress=progress, should_stop=should_stop)
    if images.labels is None:
        raise InputError("These images carry no labels; training needs a class for every sample. "
                         "Convert a labelled matrix (or give a sample sheet with --labels).")
    labels = np.asarray(images.labels).astype(str)
    class_names = sorted(set(labels.tolist()))
    if len(class_names) < 2:
        raise InputError(f"Training needs at least two classes; the images have only {class_names}.")
    y = np.searchsorted(class_names, labels)
    split = splits.train_val_test(labels, images.split, test_fraction=settings.test_fraction,
                                  val_fraction=settings.val_fraction, seed=settings.seed)
    notes = list(split.pop("notes"))
    if 0 < split["val"].size < settings.min_val_samples:
        n_fit = split["train"].size + split["val"].size
        notes.append(f"A validation split would hold only {split['val'].size} samples (fewer than "
                     f"{settings.min_val_samples}), too few to pick an epoch; all {n_fit} non-test samples "
                     f"trained for the full budget of {settings.epochs} epochs instead.")
        split["train"], split["val"] = np.sort(np.concatenate([split["train"], split["val"]])), split["val"][:0]
    dev = choose_device(settings.device)
    x = np.ascontiguousarray(images.images, dtype=np.float32)

    previous_threads = torch.get_num_threads()
    if settings.n_threads:
        torch.set_num_threads(int(settings.n_threads))
    try:
        fit = _fit_ensemble(x, y, split, len(class_names), settings, dev, progress, should_stop)
        network = fit["network"]
        test = split["test"]
        predicted = predict_proba(network, x[test], dev, 256).argmax(axis=1)
        metrics, confusion, per_class = classification_metrics(y[test], predicted, len(class_names), class_names)
        metrics["evaluated_on"] = split["test_source"]
        base = _baseline(x, y, split, len(class_names), class_names, settings.seed) if settings.baseline else None
        control = None
        if settings.random_control and fit["stopped"] not in ("stop requested", "interrupted"):
            control = _random_control(x, y, split, class_names, settings, dev, should_stop)
        device_name = describe_device(dev)
    finally:
        if settings.n_threads:
            torch.set_num_threads(previous_threads)

    network.cpu().eval()
    split_ids = {role: images.sample_ids[split[role]].astype(str).tolist() for role in ("train", "val", "test")}
    split_ids["test_source"] = split["test_source"]
    model = TrainedModel(network, class_names, images.layout, {})
    result = TrainResult(
        model=model, class_names=class_names, metrics=metrics, confusion=confusion, per_class=per_class,
        history=fit["history"], baseline=base, control=control, split=split_ids, device=device_name,
        seconds=time.perf_counter() - started, train_seconds=fit["seconds"],
        samples_per_second=fit["samples_per_second"], epochs_run=len(fit["history"]),
        best_epoch=fit["best_epoch"], stopped=fit["stopped"], settings=settings.record(), notes=notes,
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
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.learning_rate,
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


def _fit_ensemble(x: np.ndarray, y: np.ndarray, split: dict, n_classes: int, settings: TrainSettings,
                  dev: torch.device, progress: Progress | None, should_stop: StopSignal) -> dict:
    """``settings.n_models`` networks from seeds seed, seed+1, ...; one :class:`EnsembleCNN` when several.

    History, epochs and best epoch are the first member's; seconds add up. A stop
    request keeps the members trained so far (the current one at its best epoch).
    """
    fits = []
    for member in range(int(settings.n_models)):
        report = progress
        if progress is not None and settings.n_models > 1:
            report = (lambda record, member=member: progress({**record, "model": member + 1,
                                                              "n_models": int(settings.n_models)}))
        fits.append(_fit_network(x, y, split, n_classes, settings.replace(seed=settings.seed + member), dev,
                                 report, should_stop))
        if fits[-1]["stopped"] in ("stop requested", "interrupted"):
            break
    first = fits[0]
    if len(fits) == 1:
        return first
    network = build_network(**{**first["network"].hyperparameters, "members": len(fits)}).to(dev)
    for target, fit in zip(network.members, fits):
        target.load_state_dict(fit["network"].state_dict())
    seconds = sum(fit["seconds"] for fit in fits)
    samples = sum(fit["samples_per_second"] * fit["seconds"] for fit in fits)
    return {**first, "network": network.eval(), "seconds": seconds, "stopped": fits[-1]["stopped"],
            "samples_per_second": samples / max(seconds, 1e-9)}


def _fit_network(x: np.ndarray, y: np.ndarray, split: dict, n_classes: int, settings: TrainSettings,
                 dev: torch.device, progress: Progress | None, should_stop: StopSignal) -> dict:
    """The training loop: AdamW, weighted cross-entropy, early stopping on validation loss."""
    seed = int(settings.seed)
    train, val = split["train"], split["val"]
    c, h, w = x.shape[1:]
    cuda_devices = [dev.index or 0] if dev.type == "cuda" else []
    cudnn_flags = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    # fork the RNGs so seeding here leaves the caller's (the dashboard's) random state alone
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        if dev.type == "cuda":
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        try:
            network = SmallCNN(c, h, w, n_classes, **settings.full_architecture).to(dev)
            weights = _class_weights(y[train], n_classes) if settings.class_weighting else np.ones(
                n_classes, dtype=np.float32)
            criterion = nn.CrossEntropyLoss(weight=torch.as_tensor(weights, device=dev),
                                            label_smoothing=float(settings.label_smoothing))
            optimizer = torch.optim.AdamW(network.parameters(), lr=settings.learning_rate,
                                          weight_decay=settings.weight_decay)
            batch_size = max(1, int(settings.batch_size))
            scheduler = _scheduler(optimizer, settings, train.size, batch_size)
            x_train = torch.as_tensor(x[train])
            y_train = torch.as_tensor(y[train], dtype=torch.long)
            x_val = torch.as_tensor(x[val]).to(dev)
            y_val = torch.as_tensor(y[val], dtype=torch.long).to(dev)
            if dev.type != "cpu" and x_train.numel() * 4 < 2 * 2**30:
                x_train, y_train = x_train.to(dev), y_train.to(dev)
            order_rng = torch.Generator().manual_seed(seed)
            history: list[dict] = []
            best = {"loss": float("inf"), "state": None, "epoch": 0}
            stopped, waited, samples_seen = "completed", 0, 0
            started = time.perf_counter()
            try:
                for epoch in range(1, int(settings.epochs) + 1):
                    epoch_started = time.perf_counter()
                    network.train()
                    order = torch.randperm(train.size, generator=order_rng)
                    total_loss, total_correct, total_seen = 0.0, 0, 0
                    for start in range(0, train.size, batch_size):
                        batch = order[start:start + batch_size]
                        if batch.numel() < 2 and train.size > 1:
                            continue  # batch norm needs two samples; the next epoch reshuffles
                        inputs = x_train[batch].to(dev, non_blocking=True)
                        targets = y_train[batch].to(dev, non_blocking=True)
                        loss, logits = train_step(network, criterion, optimizer, scheduler, inputs, targets)
                        total_loss += float(loss) * batch.numel()
                        total_correct += int((logits.argmax(1) == targets).sum())
                        total_seen += batch.numel()
                        if stop_requested(should_stop):
                            stopped = "stop requested"
                            break
                    samples_seen += total_seen
                    if stopped == "stop requested" and total_seen < train.size:
                        break  # a partial epoch is not recorded; keep the best full epoch
                    record = {"epoch": epoch, "n_epochs": int(settings.epochs),
                              "train_loss": round(total_loss / max(1, total_seen), 6),
                              "train_accuracy": round(total_correct / max(1, total_seen), 6)}
                    record.update(_validate(network, criterion, x_val, y_val, n_classes))
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
            network.eval()
        finally:
            if dev.type == "cuda":
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn_flags
    return {"network": network, "history": history, "best_epoch": best["epoch"], "stopped": stopped,
            "seconds": seconds, "samples_per_second": samples_seen / max(seconds, 1e-9)}


def _validate(network: nn.Module, criterion: nn.Module, x_val: torch.Tensor, y_val: torch.Tensor,
              n_classes: int) -> dict:
    if y_val.numel() == 0:
        return {"val_loss": None, "val_accuracy": None, "val_balanced_accuracy": None}
    network.eval()
    with torch.inference_mode():
        logits = torch.cat([network(x_val[i:i + 256]) for i in range(0, y_val.numel(), 256)])
        loss = float(criterion(logits, y_val))
    predicted = logits.argmax(1).cpu().numpy()
    true = y_val.cpu().numpy()
    recalls = [np.mean(predicted[true == k] == k) for k in range(n_classes) if np.any(true == k)]
    return {"val_loss": round(loss, 6), "val_accuracy": round(float(np.mean(predicted == true)), 6),
            "val_balanced_accuracy": round(float(np.mean(recalls)), 6)}


def _baseline(x: np.ndarray, y: np.ndarray, split: dict, n_classes: int, class_names: list[str],
              seed: int) -> dict:
    """Logistic regression on the flattened non-empty pixels, train+val -> test."""
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    flat = x.reshape(x.shape[0], -1)
    fit_index = np.concatenate([split["train"], split["val"]])
    used = np.any(flat[fit_index] != 0, axis=0)  # empty pixels are 0 in every image
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000, random_state=seed)
    model.fit(flat[fit_index][:, used], y[fit_index])
    predicted = model.predict(flat[split["test"]][:, used])  # labels are the global class indices
    metrics, confusion, per_class = classification_metrics(y[split["test"]], predicted, n_classes, class_names)
    return {**metrics, "confusion": confusion.tolist(), "per_class": per_class,
            "model": "LogisticRegression(C=1, L2, class_weight='balanced') on train+validation samples",
            "features": f"{int(used.sum())} non-empty pixels of the flattened images (the layout's normalised "
                        "genes, averaged where genes share a pixel)",
            "seconds": round(time.perf_counter() - started, 3)}


def _random_control(x: np.ndarray, y: np.ndarray, split: dict, class_names: list[str], settings: TrainSettings,
                    dev: torch.device, should_stop: StopSignal) -> dict:
    """The same CNN on images whose pixels are shuffled by one fixed random permutation."""
    rng = np.random.default_rng(int(settings.seed) + 7919)
    n = x.shape[0]
    permutation = rng.permutation(x[0].size)
    shuffled = np.ascontiguousarray(x.reshape(n, -1)[:, permutation].reshape(x.shape))
    fit = _fit_ensemble(shuffled, y, split, len(class_names), settings, dev, None, should_stop)
    predicted = predict_proba(fit["network"], shuffled[split["test"]], dev, 256).argmax(axis=1)
    metrics, confusion, per_class = classification_metrics(y[split["test"]], predicted, len(class_names),
                                                           class_names)
    return {**metrics, "confusion": confusion.tolist(), "per_class": per_class,
            "epochs": len(fit["history"]), "seconds": round(fit["seconds"], 3),
            "layout": "random permutation of the pixels (same permutation for every sample)"}
