"""The small CNN for expression images: network, training settings and loop, results, model folders.

:func:`train_model` takes an :class:`~rnaimg_core.images.ImageSet` and a
:class:`TrainSettings` and returns a :class:`TrainResult`; :func:`save_model` /
:func:`load_model` write and read model folders (safetensors + JSON, never pickles).
"""

from rnaimg_core.model.metrics import classification_metrics
from rnaimg_core.model.network import DEFAULT_ARCHITECTURE, SmallCNN
from rnaimg_core.model.saved import load_model, save_model
from rnaimg_core.model.train import TrainSettings, cross_validate, train_model
from rnaimg_core.model.trained import TrainedModel, TrainResult

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
