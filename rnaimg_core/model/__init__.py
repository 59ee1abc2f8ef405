"""The small CNN for expression images: network, training settings and loop, results, model folders.

:func:`train_model` takes an :class:`~rnaimg_core.images.ImageSet` and a
:class:`TrainSettings` and returns a :class:`TrainResult`; :func:`save_model` /
:func:`load_model` write and read model folders (safetensors + JSON, never pickles).
The names load from their modules on first use (``__init__.pyi`` names them; see :mod:`rnaimg_core`).
"""

from __future__ import annotations

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
