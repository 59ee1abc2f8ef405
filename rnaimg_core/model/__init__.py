"""The small CNN for expression images: network, training settings and loop, results, model folders.

:func:`train_model` takes an :class:`~rnaimg_core.images.ImageSet` and a
:class:`TrainSettings` and returns a :class:`TrainResult`; :func:`save_model` /
:func:`load_model` write and read model folders (safetensors + JSON, never pickles).
The names load from their modules on first use (see :mod:`rnaimg_core`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnaimg_core._lazy import lazy_names

_HOMES = {
    "classification_metrics": "metrics", "DEFAULT_ARCHITECTURE": "network", "SmallCNN": "network",
    "load_model": "saved", "save_model": "saved",
    "TrainSettings": "train", "cross_validate": "train", "train_model": "train",
    "TrainedModel": "trained", "TrainResult": "trained",
}

if TYPE_CHECKING:
    from rnaimg_core.model.metrics import classification_metrics
    from rnaimg_core.model.network import DEFAULT_ARCHITECTURE, SmallCNN
    from rnaimg_core.model.saved import load_model, save_model
    from rnaimg_core.model.train import TrainSettings, cross_validate, train_model
    from rnaimg_core.model.trained import TrainedModel, TrainResult


__getattr__, __dir__ = lazy_names(globals(), _HOMES)

__all__ = [
    "DEFAULT_ARCHITECTURE",
    "SmallCNN",
    "TrainSettings",
    "TrainResult",
    "TrainedModel",
    "classification_metrics",
    "cross_validate",
    "load_model",
    "save_model",
    "train_model",
]
