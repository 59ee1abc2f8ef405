"""Model folders: weights as safetensors, ``model.json`` and the layout; nothing is ever unpickled."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from rnaimg_core.errors import InputError
from rnaimg_core.layout import json_default, load_layout
from rnaimg_core.model.network import SmallCNN
from rnaimg_core.model.trained import TrainedModel, TrainResult

MODEL_FORMAT = "rnaimg-model"
MODEL_FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
INFO_FILE = "model.json"
LAYOUT_FILE = "layout.json.gz"


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
    from rnaimg_core._version import __version__

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
