"""What one dashboard session holds, and the small decisions its pages share.

The dashboard keeps one :class:`AppState` per browser session (in
``st.session_state``), so one user's upload, layouts and models are never seen
by another. This module has no streamlit import: it is plain Python, tested
like the rest of the library.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnaimg_core.expression import Expression, holdout_split
from rnaimg_core.generators import REGISTRY, get_generator
from rnaimg_core.layout import Layout

# Parameters set once on the Data page (normalisation), not per generator.
DATA_LEVEL_PARAMS = ("log", "scale")
DEFAULT_GENERATOR = "chromosome"
HOLDOUT_FRACTION = 0.2  # stratified share of samples kept out of layout fitting and training
MAX_LAYOUTS = 12


@dataclass
class AppState:
    """One browser session's data, choices, fitted layouts and trained model.

    Attributes
    ----------
    expression : the data in use (demo, synthetic or upload)
    data_key : identifies the data's content (``"demo"``, ``"synthetic:..."``,
        ``"upload:<sha1>:..."``); every cache below is keyed by it
    log, scale : normalisation chosen on the Data page, passed to every generator
    generator : generator shown on the Layout page
    params : per generator, the parameters the user set (without log/scale)
    layouts : fitted layouts of this session by :func:`layout_key`, most recent last
    compare : other generators shown side by side on the Layout page
    training : the last :class:`TrainingJob` (running or finished), or None
    split : per sample ``"fit"`` or ``"holdout"``: a stratified 20 % is held out of
        layout fitting (normalisation included) and training, to score the model honestly
    """

    expression: Expression | None = None
    data_key: str = ""
    log: str = "auto"
    scale: str = "zscore"
    generator: str = DEFAULT_GENERATOR
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    layouts: "OrderedDict[str, Layout]" = field(default_factory=OrderedDict)
    compare: list[str] = field(default_factory=list)
    training: Any = None
    attribution_cache: dict = field(default_factory=dict)
    split: np.ndarray | None = None

    def set_data(self, expression: Expression | None, data_key: str) -> None:
        """Switch to new data; layouts and models of the old data are dropped."""
        if data_key != self.data_key:
            self.layouts.clear()
            if self.training is not None:
                self.training.stop_event.set()
            self.training = None
            self.attribution_cache.clear()
        self.expression = expression
        self.data_key = data_key
        self.split = None if expression is None else held_out_split(expression)

    @property
    def fit_index(self) -> np.ndarray:
        """Samples layouts are fitted on (all but the held-out ones)."""
        return np.flatnonzero(self.split == "fit")

    def generator_params(self, name: str) -> dict[str, Any]:
        """Full parameters for generator ``name``: defaults, then the user's, then log/scale."""
        spec = get_generator(name).parameter_spec()
        params = {key: p.default for key, p in spec.items()}
        params.update({k: v for k, v in self.params.get(name, {}).items() if k in spec})
        for key in DATA_LEVEL_PARAMS:
            if key in spec:
                params[key] = getattr(self, key)
        return params

    def layout_key(self, name: str, params: dict[str, Any] | None = None) -> str:
        return layout_key(self.data_key, name, self.generator_params(name) if params is None else params)

    def remember_layout(self, key: str, layout: Layout) -> None:
        self.layouts[key] = layout
        self.layouts.move_to_end(key)
        while len(self.layouts) > MAX_LAYOUTS:
            self.layouts.popitem(last=False)

    def cached_layout(self, key: str) -> Layout | None:
        layout = self.layouts.get(key)
        if layout is not None:
            self.layouts.move_to_end(key)
        return layout


def held_out_split(expression: Expression) -> np.ndarray:
    """The session's fit/holdout split; everything is "fit" when classes are too small to split."""
    labels = expression.labels
    if labels is None:
        return np.full(expression.n_samples, "fit")
    counts = np.unique(labels, return_counts=True)[1]
    n_held = int(np.ceil(HOLDOUT_FRACTION * labels.size))
    if counts.min() < 2 or n_held < counts.size:
        return np.full(expression.n_samples, "fit")
    return holdout_split(labels, labels.size, HOLDOUT_FRACTION, seed=0)


def layout_key(data_key: str, generator: str, params: dict[str, Any]) -> str:
    """A short, stable key for (data, generator, parameters)."""
    text = json.dumps([data_key, generator, params], sort_keys=True, default=str)
    return generator + ":" + hashlib.sha1(text.encode()).hexdigest()[:16]


def upload_key(data: bytes, filename: str, labels: bytes | None, labels_filename: str | None,
               label_column: str | None, orientation: str) -> str:
    """Content key of an upload and its reading options."""
    digest = hashlib.sha1(data)
    digest.update(b"\0" + (labels or b""))
    options = json.dumps([filename, labels_filename, label_column, orientation])
    digest.update(options.encode())
    return "upload:" + digest.hexdigest()


def synthetic_key(n_samples: int, n_genes: int, n_classes: int, seed: int) -> str:
    return f"synthetic:{n_samples}:{n_genes}:{n_classes}:{seed}"


def generator_names() -> list[str]:
    """Registered generators, the default first."""
    names = list(REGISTRY)
    if DEFAULT_GENERATOR in names:
        names.remove(DEFAULT_GENERATOR)
        names.insert(0, DEFAULT_GENERATOR)
    return names


@dataclass(frozen=True)
class WidgetSpec:
    """How a page should draw one generator parameter."""

    kind: str  # "select", "checkbox", "int", "float", "text"
    label: str
    help: str
    options: tuple = ()
    min_value: float | None = None
    max_value: float | None = None
    step: float | None = None


def widget_spec(param) -> WidgetSpec:
    """Widget kind, bounds and a help line naming default and range, for a :class:`Param`."""
    range_text = ""
    if param.low is not None or param.high is not None:
        lo = "" if param.low is None else f"{param.low:g}"
        hi = "" if param.high is None else f"{param.high:g}"
        range_text = f" Range: {lo} to {hi or 'no limit'}."
    help_text = f"{param.help} Default: {param.default}.{range_text}"
    label = param.name.replace("_", " ")
    if param.choices is not None:
        return WidgetSpec("select", label, help_text, options=tuple(param.choices))
    kind = param.kind
    if kind == "bool":
        return WidgetSpec("checkbox", label, help_text)
    if kind == "int":
        return WidgetSpec("int", label, help_text,
                          min_value=None if param.low is None else int(param.low),
                          max_value=None if param.high is None else int(param.high), step=1)
    if kind == "float":
        span = (param.high - param.low) if (param.low is not None and param.high is not None) else None
        step = float(10 ** np.floor(np.log10(span / 100))) if span else 0.01
        return WidgetSpec("float", label, help_text,
                          min_value=None if param.low is None else float(param.low),
                          max_value=None if param.high is None else float(param.high), step=step)
    return WidgetSpec("text", label, help_text)


def samples_per_class(labels: np.ndarray | None, per_class: int, classes: list[str] | None = None,
                      seed: int = 0) -> list[int]:
    """Indices of up to ``per_class`` samples of each class (seeded), grouped by class.

    Unlabelled data gives the first ``per_class * 4`` samples.
    """
    if labels is None:
        return list(range(per_class * 4))
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels).astype(str)
    chosen: list[int] = []
    for name in (classes if classes is not None else sorted(set(labels.tolist()))):
        index = np.flatnonzero(labels == name)
        if index.size:
            chosen += sorted(rng.choice(index, size=min(per_class, index.size), replace=False).tolist())
    return chosen


def report_tables(report: dict):
    """The data report as (classes, gene mapping, label join) DataFrames for display."""
    import pandas as pd

    classes = pd.DataFrame(sorted(report.get("classes", {}).items()), columns=["class", "samples"])
    mapping = report.get("gene_mapping", {})
    routes = pd.DataFrame(sorted(mapping.get("by_route", {}).items(), key=lambda kv: -kv[1]),
                          columns=["matched by", "genes"])
    join = report.get("label_join")
    return classes, routes, join


class TrainingJob:
    """One training run in a background thread, so the page can draw live progress and a stop button.

    The thread only calls :func:`rnaimg_core.model.train_model`; the page polls
    :attr:`history` (one record per finished epoch) and :attr:`running`, and
    sets :attr:`stop_event` when the user presses Stop (the best epoch so far
    is kept).
    """

    def __init__(self, image_set, layout_key: str, settings: dict[str, Any]):
        import threading

        self.image_set = image_set
        self.layout_key = layout_key
        self.settings = dict(settings)
        self.history: list[dict] = []
        self.result = None
        self.error: BaseException | None = None
        self.stop_event = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rnaimg-training", daemon=True)

    def start(self) -> "TrainingJob":
        self._thread.start()
        return self

    def _run(self) -> None:
        from rnaimg_core.model import train_model

        try:
            self.result = train_model(self.image_set, progress=self.history.append, should_stop=self.stop_event,
                                      **self.settings)
        except BaseException as exc:  # handed to the page, which shows InputError and re-raises the rest
            self.error = exc

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def model_zip(self) -> bytes:
        """The trained model as a zip (built once per job)."""
        if getattr(self, "_zip", None) is None:
            self._zip = model_zip_bytes(self.result)
        return self._zip

    @property
    def n_epochs(self) -> int:
        return int(self.settings.get("epochs", 1))


def model_zip_bytes(result) -> bytes:
    """The model folder of :func:`rnaimg_core.model.save_model` as a zip file, in memory."""
    import io
    import tempfile
    import zipfile
    from pathlib import Path

    from rnaimg_core.model import save_model

    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="rnaimg-model-") as tmp:
        folder = save_model(result, Path(tmp) / "model")
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.iterdir()):
                archive.write(path, arcname=f"model/{path.name}")
    return buffer.getvalue()
