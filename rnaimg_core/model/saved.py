"""Model folders: weights as safetensors, ``model.json`` and the layout; nothing is ever unpickled."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path

from rnaimg_core._version import __version__
from rnaimg_core.errors import InputError
from rnaimg_core.layout import Layout, json_default
from rnaimg_core.limits import check, gunzip_capped, load_json
from rnaimg_core.model.network import SmallCNN, build_network
from rnaimg_core.model.trained import TrainedModel, TrainResult
from rnaimg_core.outputs import atomic_output
from rnaimg_core.schema import check_format

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
    from safetensors.torch import save_file  # noqa: PLC0415 (lazy: safetensors loads only to save or load a model)

    result = model if isinstance(model, TrainResult) else None
    trained = model.model if result is not None else model
    directory = Path(directory)
    with atomic_output(directory, folder=True) as tmp:
        _write_model_files(trained, result, tmp, save_file)
    return directory


def _write_model_files(trained: TrainedModel, result: TrainResult | None, directory: Path, save_file) -> None:
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in trained.network.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": MODEL_FORMAT})

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


# ranges of the network's constructor arguments; types come from the constructor's defaults
ARCHITECTURE_RANGES = {
    "in_channels": (1, None), "height": (1, None), "width": (1, None), "n_classes": (2, 100_000),
    "base_channels": (1, 512), "n_blocks": (1, 12), "pool_size": (1, 256), "dropout": (0.0, 1.0),
    "stem_stride": (1, 16), "input_clip": (0.0, 1e6), "input_dropout": (0.0, 1.0), "members": (1, 64),
}
_REQUIRED = ("in_channels", "height", "width", "n_classes")


def _architecture_types() -> dict[str, type]:
    """Each :class:`SmallCNN` argument and its type (int for the required sizes, else its default's)."""
    params = inspect.signature(SmallCNN.__init__).parameters
    types = {name: (int if p.default is inspect.Parameter.empty else type(p.default))
             for name, p in params.items() if name != "self"}
    return {**types, "members": int}  # an EnsembleCNN: how many SmallCNN members


def check_model_info(info, where: str) -> None:
    """Check ``model.json``'s fields (types and ranges); raises InputError naming the first bad one."""
    def bad(name: str, wanted: str) -> InputError:
        return InputError(f"{where}: {name!r} must be {wanted}.")

    try:
        check_format(info, MODEL_FORMAT, MODEL_FORMAT_VERSION, "model")
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    arch = info.get("architecture")
    types = _architecture_types()
    if not isinstance(arch, dict) or set(arch) - set(types):
        raise bad("architecture", f"an object with fields among {', '.join(types)}")
    for name, kind in types.items():
        if name not in arch:
            if name in _REQUIRED:
                raise bad(f"architecture.{name}", "given")
            continue
        value = arch[name]
        if kind is bool:
            if type(value) is not bool:
                raise bad(f"architecture.{name}", "true or false")
            continue
        low, high = ARCHITECTURE_RANGES.get(name, (None, None))
        ok_type = type(value) is int or (kind is float and type(value) is float)
        in_range = ok_type and (low is None or value >= low) and (high is None or value <= high)
        if not in_range:
            raise bad(f"architecture.{name}", f"a {kind.__name__} from {low} to {'no limit' if high is None else high}")
    check("max_channels", arch["in_channels"], f"{where}: the model's image channels")
    check("max_height", arch["height"], f"{where}: the model's image height")
    check("max_width", arch["width"], f"{where}: the model's image width")
    names = info.get("class_names")
    if (not isinstance(names, list) or not all(isinstance(n, str) for n in names)
            or len(names) != arch["n_classes"] or len(set(names)) != len(names)):
        raise bad("class_names", f"{arch['n_classes']} distinct texts, one per network output")
    if info.get("weights", WEIGHTS_FILE) != WEIGHTS_FILE:
        raise bad("weights", repr(WEIGHTS_FILE))
    ref = info.get("layout")
    if ref is not None:
        if (not isinstance(ref, dict) or not isinstance(ref.get("file"), str)
                or not isinstance(ref.get("sha256"), str)):
            raise bad("layout", "an object with a 'file' name and its 'sha256'")


def _inside(directory: Path, name: str, where: str) -> Path:
    """``directory / name``, refused unless it resolves to a file inside ``directory``."""
    if not name or Path(name).is_absolute() or "\\" in name:
        raise InputError(f"{where}: the file name {name!r} must be a plain name inside the model folder.")
    target = (directory / name).resolve()
    if not target.is_relative_to(directory.resolve()):
        raise InputError(f"{where}: the file {name!r} lies outside the model folder; only files inside it are read.")
    return target


def load_model(directory: str | os.PathLike) -> TrainedModel:
    """Read a model folder written by :func:`save_model`.

    Only safe formats are read: JSON and safetensors (plain tensors). Nothing
    is unpickled, so a model file cannot run code.

    Raises
    ------
    InputError
        When the folder or a file is missing, or the weights do not match the architecture.
    """
    from safetensors import SafetensorError  # noqa: PLC0415 (lazy: safetensors loads only to save or load a model)
    from safetensors.torch import load_file  # noqa: PLC0415 (lazy: safetensors loads only to save or load a model)

    directory = Path(directory)
    info_path, weights_path = directory / INFO_FILE, directory / WEIGHTS_FILE
    if not directory.is_dir() or not info_path.is_file() or not weights_path.is_file():
        raise InputError(f"{directory} is not an rnaimg model folder (it needs {INFO_FILE} and {WEIGHTS_FILE}; "
                         "write one with 'rnaimg train --out').")
    check("max_json_bytes", info_path.stat().st_size, str(info_path))
    info = load_json(info_path.read_bytes(), str(info_path))
    check_model_info(info, str(info_path))
    check("max_array_bytes", weights_path.stat().st_size, str(weights_path))
    try:
        network = build_network(**info["architecture"])
        state = load_file(str(_inside(directory, WEIGHTS_FILE, str(info_path))), device="cpu")
        network.load_state_dict(state, strict=True)
    except (KeyError, TypeError, RuntimeError, SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"The model weights in {directory} could not be loaded: {_first_line(exc)}") from None
    network.eval()
    layout = None
    layout_ref = info.get("layout")
    if layout_ref:
        layout_path = _inside(directory, layout_ref["file"], str(info_path))
        if not layout_path.is_file():
            raise InputError(f"{info_path}: the layout file {layout_ref['file']!r} is missing from the model folder.")
        check("max_json_bytes", layout_path.stat().st_size, str(layout_path))
        raw = layout_path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gunzip_capped(raw, str(layout_path), "max_json_bytes")
        if hashlib.sha256(raw).hexdigest() != layout_ref["sha256"]:
            raise InputError(f"{layout_path}: the layout differs from the one the model was trained with "
                             "(sha256 mismatch); the model folder was altered.")
        layout = Layout.from_json(raw)
        if tuple(layout.shape) != network_shape(info):
            raise InputError(f"{layout_path}: the layout's image shape {layout.shape} is not the model's "
                             f"{network_shape(info)}.")
    extra = {k: v for k, v in info.items()
             if k not in ("format", "format_version", "architecture", "class_names", "image_shape", "weights")}
    return TrainedModel(network, list(info["class_names"]), layout, extra)


def network_shape(info: dict) -> tuple[int, int, int]:
    """(channels, height, width) of a checked ``model.json``'s network."""
    arch = info["architecture"]
    return arch["in_channels"], arch["height"], arch["width"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
