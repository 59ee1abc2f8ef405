"""A small CNN for expression images: training, evaluation, a flat baseline, saving.

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

Device
------
CUDA when present, then Apple MPS, then CPU (``choose_device``); the device
used is reported in the result.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from rnaimg_core.errors import InputError
from rnaimg_core.images import ImageSet
from rnaimg_core.layout import Layout, json_default, load_layout

MODEL_FORMAT = "rnaimg-model"
MODEL_FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
INFO_FILE = "model.json"
LAYOUT_FILE = "layout.json.gz"

Progress = Callable[[dict], None]
StopSignal = Callable[[], bool] | threading.Event | None


# ---------------------------------------------------------------- device

def choose_device(requested: str = "auto") -> torch.device:
    """The device to train on.

    Parameters
    ----------
    requested : {"auto", "cuda", "mps", "cpu"}
        ``"auto"`` picks a CUDA GPU when present, then Apple MPS, then the CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    InputError
        When a device is requested explicitly but is not available.
    """
    requested = str(requested).lower()
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if requested == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if requested.startswith("cuda"):
        if not cuda:
            raise InputError("device 'cuda' was requested but no CUDA GPU is available; use 'auto' or 'cpu'.")
        return torch.device(requested)
    if requested == "mps":
        if not mps:
            raise InputError("device 'mps' was requested but Apple MPS is not available; use 'auto' or 'cpu'.")
        return torch.device("mps")
    raise InputError(f"device must be auto, cuda, mps or cpu, not {requested!r}.")


def describe_device(device: torch.device) -> str:
    """A human-readable name: ``'cuda (NVIDIA H100 ...)'``, ``'mps'``, ``'cpu (2 threads)'``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


# ---------------------------------------------------------------- network

class SmallCNN(nn.Module):
    """A small convolutional classifier for (C, H, W) expression images.

    ``n_blocks`` blocks of 3x3 convolution, batch normalisation and ReLU; the
    first block downsamples with stride ``stem_stride`` (images of at least
    8 pixels a side), the others with 2x2 max pooling as long as the feature
    map stays at least ``pool_size`` a side (where a gene sits is what it is,
    so the classifier must keep seeing positions; small images work), then adaptive average pooling to
    ``pool_size`` x ``pool_size``, dropout and one linear layer.

    Every ReLU is its own module and none is in-place, so captum's DeepLift
    and Guided Grad-CAM can hook them.

    Parameters
    ----------
    in_channels, height, width : the image shape
    n_classes : number of output classes
    base_channels : filters in the first block; doubled in each further block
    n_blocks : number of convolution blocks
    pool_size : side of the adaptive pooling output
    dropout : dropout probability before the classifier
    stem_stride : stride of the first convolution (2 keeps CPU training fast)
    input_clip : inputs pass through ``input_clip * tanh(x / input_clip)`` (0 = off)
    input_dropout : fraction of input pixels zeroed at random during training
    """

    def __init__(self, in_channels: int, height: int, width: int, n_classes: int, *,
                 base_channels: int = 8, n_blocks: int = 3, pool_size: int = 12, dropout: float = 0.5,
                 stem_stride: int = 2, input_clip: float = 4.0, input_dropout: float = 0.0):
        super().__init__()
        self.hyperparameters = {
            "in_channels": int(in_channels), "height": int(height), "width": int(width),
            "n_classes": int(n_classes), "base_channels": int(base_channels), "n_blocks": int(n_blocks),
            "pool_size": int(pool_size), "dropout": float(dropout), "stem_stride": int(stem_stride),
            "input_clip": float(input_clip), "input_dropout": float(input_dropout),
        }
        # dropping random pixels while training mimics single-cell dropouts and regularises
        # strongly with few samples; in eval mode (prediction, attribution) it does nothing
        self.input_dropout = nn.Dropout(float(input_dropout))
        # z-scores of rarely expressed genes reach 10 or more; a soft clip keeps them from
        # dominating while staying differentiable (and a module, so DeepLift can hook it)
        self.clip = nn.Tanh() if input_clip > 0 else nn.Identity()
        layers: list[nn.Module] = []
        channels, side = int(in_channels), min(int(height), int(width))
        for block in range(int(n_blocks)):
            out = int(base_channels) * 2 ** block
            # the first block downsamples by its stride instead of pooling: a full-resolution
            # convolution is what makes small CNNs slow on CPUs
            stride = int(stem_stride) if block == 0 and side >= 8 else 1
            layers += [nn.Conv2d(channels, out, kernel_size=3, stride=stride, padding=1, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU(inplace=False)]
            side = (side + stride - 1) // stride
            # pool only while the map stays at least pool_size a side: a gene's position is
            # information here (unlike in photographs), so the classifier must still see where
            if stride == 1 and side >= 4 and side // 2 >= int(pool_size):
                layers.append(nn.MaxPool2d(2))
                side //= 2
            channels = out
        self.features = nn.Sequential(*layers)
        # never pool "up": a feature map smaller than pool_size keeps its own size
        pooled = max(1, min(int(pool_size), side))
        self.pool = nn.AdaptiveAvgPool2d(pooled)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(float(dropout)),
                                        nn.Linear(channels * pooled ** 2, int(n_classes)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits, shape (n, n_classes), for images of shape (n, C, H, W)."""
        limit = self.hyperparameters["input_clip"]
        if limit > 0:
            images = limit * self.clip(images / limit)
        images = self.input_dropout(images)
        return self.classifier(self.pool(self.features(images)))

    @property
    def last_conv(self) -> nn.Conv2d:
        """The last convolution layer (Grad-CAM's default layer)."""
        return [m for m in self.features if isinstance(m, nn.Conv2d)][-1]


DEFAULT_ARCHITECTURE = {"base_channels": 8, "n_blocks": 3, "pool_size": 12, "dropout": 0.5, "stem_stride": 2,
                        "input_clip": 4.0, "input_dropout": 0.0}


@dataclass
class TrainedModel:
    """A trained network with what is needed to use and explain it.

    Attributes
    ----------
    network : SmallCNN, in eval mode, on the CPU unless moved
    class_names : class of each output, in order
    layout : the layout the images were made with (pixel -> gene map), or None
    info : dict, what ``model.json`` holds (architecture, metrics, training settings)
    """

    network: SmallCNN
    class_names: list[str]
    layout: Layout | None
    info: dict = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        hp = self.network.hyperparameters
        return hp["in_channels"], hp["height"], hp["width"]

    def predict_proba(self, images: np.ndarray, *, batch_size: int = 256, device: str = "cpu") -> np.ndarray:
        """Class probabilities, shape (n, n_classes), for images of shape (n, C, H, W)."""
        images = self._check_images(images)
        return _predict_proba(self.network, images, choose_device(device), batch_size)

    def predict(self, images: np.ndarray, **kwargs) -> np.ndarray:
        """Predicted class names, shape (n,)."""
        proba = self.predict_proba(images, **kwargs)
        return np.asarray(self.class_names)[proba.argmax(axis=1)]

    def _check_images(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise InputError(f"The model expects images of shape {self.image_shape} (channels, height, width), "
                             f"got {images.shape[1:]}. Use images made with the model's layout.")
        return images


# ---------------------------------------------------------------- results

@dataclass
class TrainResult:
    """Everything a training run produced.

    Attributes
    ----------
    model : the trained model (best epoch by validation loss)
    class_names : list of class names, the order of the confusion matrix
    metrics : dict, CNN on the test samples: accuracy, balanced_accuracy, n_test, evaluated_on
    confusion : ndarray (n_classes, n_classes), rows true class, columns predicted
    per_class : list of dicts: class, precision, recall, f1, support
    history : list of per-epoch dicts: epoch, train_loss, val_loss, train_accuracy,
        val_accuracy, val_balanced_accuracy, seconds
    baseline : dict, logistic regression on the same samples (accuracy,
        balanced_accuracy, confusion, features), or None when skipped
    control : dict, the same CNN on a random pixel permutation (accuracy,
        balanced_accuracy, confusion, epochs), or None when not asked for
    split : dict of sample ids per role (train, val, test) and test_source
    device : str, where the network was trained
    seconds : float, wall time of the whole run (CNN, baseline and control)
    train_seconds : float, CNN training time alone
    samples_per_second : float, training samples processed per second by the CNN
    epochs_run, best_epoch : int
    stopped : why training ended: "completed", "early stopping", "stop requested" or "interrupted"
    settings : dict, the training settings used
    notes : list of str, anything the user should know (fallbacks, small classes)
    """

    model: TrainedModel
    class_names: list[str]
    metrics: dict
    confusion: np.ndarray
    per_class: list[dict]
    history: list[dict]
    baseline: dict | None
    control: dict | None
    split: dict
    device: str
    seconds: float
    train_seconds: float
    samples_per_second: float
    epochs_run: int
    best_epoch: int
    stopped: str
    settings: dict
    notes: list[str] = field(default_factory=list)

    def per_class_table(self) -> pd.DataFrame:
        """Per-class precision, recall, F1 and support on the test samples."""
        return pd.DataFrame(self.per_class, columns=["class", "precision", "recall", "f1", "support"])

    def history_table(self) -> pd.DataFrame:
        """The per-epoch curves as a DataFrame."""
        return pd.DataFrame(self.history)

    def confusion_table(self) -> pd.DataFrame:
        """The confusion matrix with class names (rows: true, columns: predicted)."""
        return pd.DataFrame(self.confusion, index=pd.Index(self.class_names, name="true"),
                            columns=pd.Index(self.class_names, name="predicted"))

    def summary(self) -> dict:
        """JSON-serialisable headline figures (what ``rnaimg train --json`` prints)."""
        out = {
            "accuracy": self.metrics["accuracy"],
            "balanced_accuracy": self.metrics["balanced_accuracy"],
            "baseline_accuracy": None if self.baseline is None else self.baseline["accuracy"],
            "baseline_balanced_accuracy": None if self.baseline is None else self.baseline["balanced_accuracy"],
            "device": self.device,
            "epochs": self.epochs_run,
            "best_epoch": self.best_epoch,
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
            "train_seconds": round(self.train_seconds, 3),
            "samples_per_second": round(self.samples_per_second, 1),
            "n_train": len(self.split["train"]),
            "n_val": len(self.split["val"]),
            "n_test": len(self.split["test"]),
            "evaluated_on": self.split["test_source"],
            "classes": list(self.class_names),
        }
        if self.control is not None:
            out["control_accuracy"] = self.control["accuracy"]
            out["control_balanced_accuracy"] = self.control["balanced_accuracy"]
        if self.notes:
            out["notes"] = list(self.notes)
        return out


# ---------------------------------------------------------------- splitting

def make_split(labels: np.ndarray, split: np.ndarray | None = None, *, test_fraction: float = 0.25,
               val_fraction: float = 0.2, seed: int = 0) -> dict:
    """Sample indices for training, validation and test.

    Parameters
    ----------
    labels : ndarray of str, shape (n,)
    split : ndarray of str, ``"fit"``/``"holdout"`` per sample (from the images file), or None
    test_fraction : used only when there are no holdout samples: the stratified
        fraction of all samples held out for testing
    val_fraction : stratified fraction of the non-test samples used for early stopping
    seed : seed of the random splits

    Returns
    -------
    dict with ``train``, ``val``, ``test`` (index arrays), ``test_source`` and ``notes``
    """
    labels = np.asarray(labels).astype(str)
    n = labels.size
    notes: list[str] = []
    holdout = np.zeros(n, dtype=bool) if split is None else (np.asarray(split).astype(str) == "holdout")
    if holdout.any():
        test = np.flatnonzero(holdout)
        rest = np.flatnonzero(~holdout)
        source = "holdout samples (kept out of layout fitting)"
        missing = sorted(set(labels[test]) - set(labels[rest]))
        if missing:
            raise InputError(f"Class(es) {', '.join(missing)} occur only among the holdout samples; the network "
                             "cannot learn them. Refit the layout with a stratified --holdout.")
    else:
        if not 0 < test_fraction < 1:
            raise InputError("test_fraction must be between 0 and 1 when the images carry no holdout samples.")
        rest, test = _stratified(np.arange(n), labels, test_fraction, seed, notes, "test")
        source = f"stratified {test_fraction:.0%} test split (no holdout samples in the images)"
    if val_fraction > 0:
        train, val = _stratified(rest, labels[rest], val_fraction, seed + 1, notes, "validation")
    else:
        train, val = rest, np.empty(0, dtype=np.int64)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test), "test_source": source,
            "notes": notes}


def _stratified(index: np.ndarray, labels: np.ndarray, fraction: float, seed: int, notes: list[str],
                what: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    if index.size < 2:
        raise InputError(f"Too few samples ({index.size}) to make a {what} split.")
    try:
        return tuple(train_test_split(index, test_size=fraction, random_state=seed, stratify=labels))
    except ValueError:
        notes.append(f"The {what} split could not be stratified (some classes are too small); "
                     "it was drawn at random instead.")
        return tuple(train_test_split(index, test_size=fraction, random_state=seed))


# ---------------------------------------------------------------- metrics

def classification_metrics(true: np.ndarray, predicted: np.ndarray, n_classes: int,
                           class_names: list[str]) -> tuple[dict, np.ndarray, list[dict]]:
    """Accuracy, balanced accuracy, confusion matrix and per-class table for class indices."""
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


# ---------------------------------------------------------------- training

def train_model(
    images: ImageSet,
    *,
    epochs: int = 120,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    weight_decay: float = 1e-2,
    patience: int = 40,
    val_fraction: float = 0.2,
    test_fraction: float = 0.25,
    seed: int = 0,
    class_weighting: bool = True,
    architecture: dict | None = None,
    device: str = "auto",
    baseline: bool = True,
    random_control: bool = False,
    n_threads: int | None = None,
    progress: Progress | None = None,
    should_stop: StopSignal = None,
) -> TrainResult:
    """Train the small CNN on an image set and evaluate it honestly beside a baseline.

    Parameters
    ----------
    images : ImageSet with labels (``read_images`` or built in memory)
    epochs : maximum number of epochs
    batch_size, learning_rate, weight_decay : AdamW settings
    patience : stop after this many epochs without a lower validation loss
    val_fraction : stratified fraction of the non-test samples used for early stopping
    test_fraction : held-out test fraction when the images carry no ``"holdout"`` samples
    seed : seeds the splits, the weights, the batch order and dropout
    class_weighting : weight the loss by inverse class frequency (for unbalanced classes)
    architecture : overrides of :data:`DEFAULT_ARCHITECTURE` (base_channels, n_blocks, pool_size, dropout)
    device : ``"auto"`` (CUDA, then MPS, then CPU), ``"cuda"``, ``"mps"`` or ``"cpu"``
    baseline : also fit logistic regression on the flattened images (same samples)
    random_control : also train the same CNN on a random permutation of the pixels
    n_threads : CPU threads for torch during this call (default: torch's setting)
    progress : called after every epoch with the epoch's history record (a dict
        with epoch, n_epochs, train_loss, val_loss, train_accuracy, val_accuracy, ...)
    should_stop : a callable returning True, or a ``threading.Event`` that is set,
        to end training after the current batch; the best model so far is kept.
        Ctrl-C (KeyboardInterrupt) does the same.

    Returns
    -------
    TrainResult
    """
    started = time.perf_counter()
    if images.labels is None:
        raise InputError("These images carry no labels; training needs a class for every sample. "
                         "Convert a labelled matrix (or give a sample sheet with --labels).")
    if epochs < 1:
        raise InputError("epochs must be at least 1.")
    labels = np.asarray(images.labels).astype(str)
    class_names = sorted(set(labels.tolist()))
    if len(class_names) < 2:
        raise InputError(f"Training needs at least two classes; the images have only {class_names}.")
    y = np.searchsorted(class_names, labels)
    split = make_split(labels, images.split, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed)
    notes = list(split.pop("notes"))
    arch = {**DEFAULT_ARCHITECTURE, **(architecture or {})}
    unknown = set(arch) - set(DEFAULT_ARCHITECTURE)
    if unknown:
        raise InputError(f"Unknown architecture setting(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(DEFAULT_ARCHITECTURE)}.")
    dev = choose_device(device)
    settings = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                "weight_decay": weight_decay, "patience": patience, "val_fraction": val_fraction,
                "test_fraction": test_fraction, "seed": seed, "class_weighting": class_weighting,
                "architecture": arch}
    x = np.ascontiguousarray(images.images, dtype=np.float32)

    previous_threads = torch.get_num_threads()
    if n_threads:
        torch.set_num_threads(int(n_threads))
    try:
        fit = _fit_network(x, y, split, len(class_names), arch, settings, dev, progress, should_stop)
        network = fit["network"]
        test = split["test"]
        predicted = _predict_proba(network, x[test], dev, 256).argmax(axis=1)
        metrics, confusion, per_class = classification_metrics(y[test], predicted, len(class_names), class_names)
        metrics["evaluated_on"] = split["test_source"]
        base = _baseline(x, y, split, len(class_names), class_names, seed) if baseline else None
        control = None
        if random_control and fit["stopped"] not in ("stop requested", "interrupted"):
            control = _random_control(x, y, split, class_names, arch, settings, dev, should_stop)
        device_name = describe_device(dev)
    finally:
        if n_threads:
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
        best_epoch=fit["best_epoch"], stopped=fit["stopped"], settings=settings, notes=notes,
    )
    model.info = _model_info(result)
    return result


def _class_weights(y_train: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y_train, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def _stop_requested(should_stop: StopSignal) -> bool:
    if should_stop is None:
        return False
    if isinstance(should_stop, threading.Event):
        return should_stop.is_set()
    return bool(should_stop())


def _fit_network(x: np.ndarray, y: np.ndarray, split: dict, n_classes: int, arch: dict, settings: dict,
                 dev: torch.device, progress: Progress | None, should_stop: StopSignal) -> dict:
    """The training loop: AdamW, weighted cross-entropy, early stopping on validation loss."""
    seed = int(settings["seed"])
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
            network = SmallCNN(c, h, w, n_classes, **arch).to(dev)
            weights = _class_weights(y[train], n_classes) if settings["class_weighting"] else np.ones(
                n_classes, dtype=np.float32)
            criterion = nn.CrossEntropyLoss(weight=torch.as_tensor(weights, device=dev))
            optimizer = torch.optim.AdamW(network.parameters(), lr=settings["learning_rate"],
                                          weight_decay=settings["weight_decay"])
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
            batch_size = max(1, int(settings["batch_size"]))
            try:
                for epoch in range(1, int(settings["epochs"]) + 1):
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
                        optimizer.zero_grad(set_to_none=True)
                        logits = network(inputs)
                        loss = criterion(logits, targets)
                        loss.backward()
                        optimizer.step()
                        total_loss += float(loss.detach()) * batch.numel()
                        total_correct += int((logits.detach().argmax(1) == targets).sum())
                        total_seen += batch.numel()
                        if _stop_requested(should_stop):
                            stopped = "stop requested"
                            break
                    samples_seen += total_seen
                    if stopped == "stop requested" and total_seen < train.size:
                        break  # a partial epoch is not recorded; keep the best full epoch
                    record = {"epoch": epoch, "n_epochs": int(settings["epochs"]),
                              "train_loss": round(total_loss / max(1, total_seen), 6),
                              "train_accuracy": round(total_correct / max(1, total_seen), 6)}
                    record.update(_validate(network, criterion, x_val, y_val, n_classes))
                    record["seconds"] = round(time.perf_counter() - epoch_started, 4)
                    history.append(record)
                    monitored = record["val_loss"] if val.size else record["train_loss"]
                    if monitored < best["loss"] - 1e-6 or best["state"] is None:
                        best = {"loss": monitored, "epoch": epoch, "state": copy.deepcopy(network.state_dict())}
                        waited = 0
                    else:
                        waited += 1
                    if progress is not None:
                        progress(dict(record))
                    if stopped == "stop requested":
                        break
                    if val.size and waited >= int(settings["patience"]):
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


def _predict_proba(network: nn.Module, images: np.ndarray, dev: torch.device, batch_size: int) -> np.ndarray:
    network.eval()
    parameter = next(network.parameters())
    original = parameter.device
    network.to(dev)
    out = []
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            batch = torch.as_tensor(images[start:start + batch_size]).to(dev)
            out.append(torch.softmax(network(batch), dim=1).cpu().numpy())
    network.to(original)
    n_classes = network.hyperparameters["n_classes"] if hasattr(network, "hyperparameters") else 0
    return np.concatenate(out) if out else np.empty((0, n_classes), dtype=np.float32)


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


def _random_control(x: np.ndarray, y: np.ndarray, split: dict, class_names: list[str], arch: dict,
                    settings: dict, dev: torch.device, should_stop: StopSignal) -> dict:
    """The same CNN on images whose pixels are shuffled by one fixed random permutation."""
    rng = np.random.default_rng(int(settings["seed"]) + 7919)
    n = x.shape[0]
    permutation = rng.permutation(x[0].size)
    shuffled = np.ascontiguousarray(x.reshape(n, -1)[:, permutation].reshape(x.shape))
    fit = _fit_network(shuffled, y, split, len(class_names), arch, settings, dev, None, should_stop)
    predicted = _predict_proba(fit["network"], shuffled[split["test"]], dev, 256).argmax(axis=1)
    metrics, confusion, per_class = classification_metrics(y[split["test"]], predicted, len(class_names),
                                                           class_names)
    return {**metrics, "confusion": confusion.tolist(), "per_class": per_class,
            "epochs": len(fit["history"]), "seconds": round(fit["seconds"], 3),
            "layout": "random permutation of the pixels (same permutation for every sample)"}


def cross_validate(images: ImageSet, *, n_folds: int = 5, seed: int = 0, **train_kwargs: Any) -> dict:
    """Stratified k-fold cross-validation of the CNN (and the baseline) on all labelled samples.

    Each fold is the test set once; training and validation come from the other
    folds. The images' ``split`` column is ignored here (every sample is tested once).

    Parameters
    ----------
    images : ImageSet with labels
    n_folds : number of folds
    seed : seeds the folds and each fold's training
    **train_kwargs : passed to :func:`train_model` (epochs, batch_size, progress, ...)

    Returns
    -------
    dict with ``folds`` (one :meth:`TrainResult.summary` per fold) and the mean and
    standard deviation of accuracy and balanced accuracy for the CNN and the baseline
    """
    from sklearn.model_selection import StratifiedKFold

    if images.labels is None:
        raise InputError("Cross-validation needs labelled images.")
    labels = np.asarray(images.labels).astype(str)
    _, counts = np.unique(labels, return_counts=True)
    if counts.min() < n_folds:
        raise InputError(f"The smallest class has {counts.min()} samples, fewer than the {n_folds} folds; "
                         "use fewer folds.")
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(labels, labels)
    summaries = []
    for fold, (_, test) in enumerate(folds):
        split = np.full(labels.size, "fit", dtype=object)
        split[test] = "holdout"
        subset = ImageSet(images.images, images.sample_ids, labels, split.astype(str), images.layout)
        summaries.append({"fold": fold, **train_model(subset, seed=seed + fold, **train_kwargs).summary()})
    frame = pd.DataFrame(summaries)
    out: dict = {"n_folds": n_folds, "folds": summaries}
    for column in ("accuracy", "balanced_accuracy", "baseline_accuracy", "baseline_balanced_accuracy"):
        values = pd.to_numeric(frame[column], errors="coerce")
        out[f"{column}_mean"] = None if values.isna().all() else round(float(values.mean()), 6)
        out[f"{column}_sd"] = None if values.isna().all() else round(float(values.std(ddof=1)), 6)
    return out


# ---------------------------------------------------------------- saving

def _model_info(result: TrainResult) -> dict:
    return {
        "metrics": result.summary(),
        "per_class": result.per_class,
        "confusion": np.asarray(result.confusion).tolist(),
        "baseline": result.baseline,
        "control": result.control,
        "history": result.history,
        "settings": result.settings,
        "split": result.split,
    }


def save_model(model: TrainedModel | TrainResult, directory: str | os.PathLike) -> Path:
    """Write a model folder: weights (safetensors), ``model.json`` and a copy of the layout.

    Parameters
    ----------
    model : a TrainedModel, or the TrainResult of :func:`train_model` (its metrics,
        history and split are stored in ``model.json`` too)
    directory : the folder to write (created when missing)

    Returns
    -------
    Path of the folder. Files: ``model.safetensors`` (tensors only, never
    pickled), ``model.json`` (format, architecture, class names, image shape,
    layout reference, metrics, history), ``layout.json.gz`` (the layout used),
    and for a TrainResult ``history.csv``, ``per_class.csv``, ``confusion.csv``.
    """
    from safetensors.torch import save_file

    result = model if isinstance(model, TrainResult) else None
    trained = model.model if result is not None else model
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in trained.network.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": MODEL_FORMAT})
    from rnaimg_core import __version__

    info = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "rnaimg_version": __version__,
        "architecture": dict(trained.network.hyperparameters),
        "class_names": list(trained.class_names),
        "image_shape": list(trained.image_shape),
        "weights": WEIGHTS_FILE,
        **{k: v for k, v in trained.info.items() if k not in ("layout", "rnaimg_version")},
    }
    if trained.layout is not None:
        layout_text = trained.layout.to_json().encode()
        trained.layout.save(directory / LAYOUT_FILE)
        info["layout"] = {"file": LAYOUT_FILE, "generator": trained.layout.generator,
                          "shape": list(trained.layout.shape),
                          "sha256": hashlib.sha256(layout_text).hexdigest()}
    (directory / INFO_FILE).write_text(json.dumps(info, indent=1, default=json_default))
    if result is not None:
        result.history_table().to_csv(directory / "history.csv", index=False)
        result.per_class_table().to_csv(directory / "per_class.csv", index=False)
        result.confusion_table().to_csv(directory / "confusion.csv")
    return directory


def load_model(directory: str | os.PathLike) -> TrainedModel:
    """Read a model folder written by :func:`save_model`.

    Only safe formats are read: JSON and safetensors (plain tensors). Nothing
    is unpickled, so a model file cannot run code.

    Raises
    ------
    InputError
        When the folder or a file is missing, or the weights do not match the architecture.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    info_path, weights_path = directory / INFO_FILE, directory / WEIGHTS_FILE
    if not directory.is_dir() or not info_path.is_file() or not weights_path.is_file():
        raise InputError(f"{directory} is not an rnaimg model folder (it needs {INFO_FILE} and {WEIGHTS_FILE}; "
                         "write one with 'rnaimg train --out').")
    try:
        info = json.loads(info_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{info_path} is not valid JSON ({exc}).") from None
    if info.get("format") != MODEL_FORMAT:
        raise InputError(f"{info_path} is not an rnaimg model description (format {info.get('format')!r}).")
    if int(info.get("format_version", 0)) > MODEL_FORMAT_VERSION:
        raise InputError(f"The model has format version {info['format_version']}; this rnaimg reads up to "
                         f"{MODEL_FORMAT_VERSION}. Please upgrade rnaimg.")
    try:
        network = SmallCNN(**info["architecture"])
        state = load_file(str(weights_path), device="cpu")
        network.load_state_dict(state, strict=True)
    except (KeyError, TypeError, RuntimeError, SafetensorError, OSError) as exc:
        raise InputError(f"The model weights in {directory} could not be loaded: {exc}") from None
    network.eval()
    layout = None
    layout_ref = info.get("layout")
    if layout_ref:
        layout = load_layout(directory / layout_ref["file"])
    extra = {k: v for k, v in info.items()
             if k not in ("format", "format_version", "architecture", "class_names", "image_shape", "weights")}
    return TrainedModel(network, list(info["class_names"]), layout, extra)
