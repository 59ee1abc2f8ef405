"""A trained network (:class:`TrainedModel`) and everything a training run produced (:class:`TrainResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rnaimg_core.device import choose_device
from rnaimg_core.errors import InputError
from rnaimg_core.layout import Layout
from rnaimg_core.model.metrics import class_test_counts, perfect_score_note, score_intervals
from rnaimg_core.model.network import SmallCNN, predict_proba


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
        """(channels, height, width) of the images the network takes."""
        hp = self.network.hyperparameters
        return hp["in_channels"], hp["height"], hp["width"]

    def predict_proba(self, images: np.ndarray, *, batch_size: int = 256, device: str = "cpu") -> np.ndarray:
        """Class probabilities, shape (n, n_classes), for images of shape (n, C, H, W)."""
        images = self._check_images(images)
        return predict_proba(self.network, images, choose_device(device), batch_size)

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
        out.update(self.uncertainty())
        notes = list(self.notes) + [note for note in (
            perfect_score_note(self.confusion),
            None if self.baseline is None else perfect_score_note(self.baseline["confusion"], "the baseline"))
            if note]
        if notes:
            out["notes"] = notes
        return out

    def uncertainty(self) -> dict:
        """95 % intervals of the held-out scores and the test samples per class.

        Returns
        -------
        dict with ``accuracy_ci``, ``balanced_accuracy_ci``, ``baseline_accuracy_ci``,
        ``baseline_balanced_accuracy_ci`` (``[low, high]``; the baseline's None when it
        was skipped), ``interval_method`` (a sentence), ``n_test_per_class``,
        ``small_test_classes`` (fewer than 5 test samples) and ``small_test_note`` (a
        sentence, or None). The intervals are Jeffreys intervals, which stay honest
        when every test sample is right (:func:`~rnaimg_core.model.metrics.score_intervals`).
        """
        cnn = score_intervals(self.confusion)
        base = None if self.baseline is None else score_intervals(np.asarray(self.baseline["confusion"]))
        return {
            "accuracy_ci": cnn["accuracy_ci"],
            "balanced_accuracy_ci": cnn["balanced_accuracy_ci"],
            "baseline_accuracy_ci": None if base is None else base["accuracy_ci"],
            "baseline_balanced_accuracy_ci": None if base is None else base["balanced_accuracy_ci"],
            "interval_method": cnn["method"],
            **class_test_counts(self.confusion, self.class_names),
        }

    def model_info(self) -> dict:
        """What ``model.json`` records of this run: summary, per-class table, confusion, history, settings, split."""
        return {
            "metrics": self.summary(),
            "per_class": self.per_class,
            "confusion": np.asarray(self.confusion).tolist(),
            "baseline": self.baseline,
            "control": self.control,
            "history": self.history,
            "settings": self.settings,
            "split": self.split,
        }
