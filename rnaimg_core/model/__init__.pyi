"""The public names of ``rnaimg_core.model`` and their modules (loaded on first use: ``__init__.py``)."""

from .metrics import classification_metrics
from .network import DEFAULT_ARCHITECTURE, SmallCNN
from .saved import load_model, save_model
from .train import TrainSettings, cross_validate, train_model
from .trained import TrainedModel, TrainResult

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
