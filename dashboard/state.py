"""What one dashboard session holds, and the keys its caches use.

The dashboard keeps one :class:`AppState` per browser session (in
``st.session_state``), so one user's upload, layouts and models are never seen
by another. No streamlit import here: plain Python, tested without a server.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnaimg_core.expression import Expression
from rnaimg_core.generators import REGISTRY, get_generator
from rnaimg_core.splits import FIT, default_holdout

# Parameters set once on the Data page (normalisation), not per generator.
DATA_LEVEL_PARAMS = ("log", "scale", "depth")
DEFAULT_GENERATOR = "chromosome"
MAX_LAYOUTS = 12
# What one pixel's value is under each per-gene scaling (normalize.SCALES): colour bar titles and hover text.
VALUE_NAMES = {"zscore": "z-score", "minmax": "scaled value (0 to 1)", "none": "value",
               "sample_max": "share of the sample's maximum"}


class Recent(OrderedDict):
    """A dict that keeps only its ``max_entries`` most recently used entries."""

    def __init__(self, max_entries: int = MAX_LAYOUTS):
        super().__init__()
        self.max_entries = max_entries

    def remember(self, key: Any, value: Any) -> Any:
        """Store ``value`` as the most recent entry, dropping the oldest beyond ``max_entries``; returns it."""
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.max_entries:
            self.popitem(last=False)
        return value

    def recall(self, key: Any) -> Any:
        """The entry under ``key`` (now the most recent), or None."""
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value


@dataclass
class AppState:
    """One browser session's data, choices, fitted layouts and trained model.

    Attributes
    ----------
    expression : the data in use (demo, synthetic or upload)
    data_key : identifies the data's content (``"demo"``, ``"synthetic:..."``,
        ``"upload:<sha1>:..."``); every cache below is keyed by it
    log, scale, depth : normalisation chosen on the Data page, passed to every generator
    generator : generator shown on the Layout page
    params : per generator, the parameters the user set (without log/scale)
    good_params : per generator, the user's parameters of its last layout that fitted and could be
        drawn: what a failed fit goes back to (:meth:`restore_good`)
    recovered : per generator, the message of a failed fit whose parameters were restored, shown once
        by the next page that draws that generator's layout
    layouts : fitted layouts of this session by :func:`layout_key`, the ``MAX_LAYOUTS`` most recent
    compare : other generators shown side by side on the Layout page
    training : the last :class:`~dashboard.training.TrainingJob` (running or finished), or None
    split : per sample ``"fit"`` or ``"holdout"``: a stratified share is held out of
        layout fitting (normalisation included) and training, to score the model honestly
        (:func:`rnaimg_core.splits.default_holdout`)
    origin : how the data were made, enough to make them again after a reload
        (``{"kind": "demo"}``, ``{"kind": "synthetic", ...}``, ``{"kind": "upload", ...}``)
    workspace : the session's :class:`~dashboard.workspace.Workspace` on the server, or None
    """

    expression: Expression | None = None
    data_key: str = ""
    log: str = "auto"
    scale: str = "zscore"
    depth: str = "auto"
    generator: str = DEFAULT_GENERATOR
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    good_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    recovered: dict[str, str] = field(default_factory=dict)
    layouts: Recent = field(default_factory=lambda: Recent(MAX_LAYOUTS))
    compare: list[str] = field(default_factory=list)
    training: Any = None
    split: np.ndarray | None = None
    layout_check: Any = None  # the last dashboard.compare.LayoutCheckJob (running or finished), or None
    origin: dict = field(default_factory=lambda: {"kind": "demo"})
    workspace: Any = None

    def set_data(self, expression: Expression | None, data_key: str, origin: dict | None = None) -> None:
        """Switch to new data; layouts and models of the old data are dropped."""
        if data_key != self.data_key:
            self.layouts.clear()
            for job in (self.training, self.layout_check):
                if job is not None:
                    job.stop_event.set()
            self.training = self.layout_check = None
        self.expression = expression
        self.data_key = data_key
        self.origin = dict(origin) if origin is not None else {"kind": "demo" if data_key == "demo" else "other"}
        self.split = None if expression is None else default_holdout(expression.labels, expression.n_samples)

    @property
    def value_name(self) -> str:
        """What a pixel's value is under this session's scaling ("z-score" ...), for colour bars and hover."""
        return VALUE_NAMES.get(self.scale, "value")

    @property
    def fit_index(self) -> np.ndarray:
        """Samples layouts are fitted on (all but the held-out ones)."""
        return np.flatnonzero(self.split == FIT)

    def generator_params(self, name: str) -> dict[str, Any]:
        """Full parameters for generator ``name``: defaults, then the user's, then log/scale."""
        spec = get_generator(name).parameter_spec()
        params = {key: p.default for key, p in spec.items()}
        params.update({k: v for k, v in self.params.get(name, {}).items() if k in spec})
        for key in DATA_LEVEL_PARAMS:
            if key in spec:
                params[key] = getattr(self, key)
        return params

    def remember_good(self, name: str) -> None:
        """Keep generator ``name``'s current parameters as the last ones that fitted and could be drawn."""
        self.good_params[name] = dict(self.params.get(name, {}))

    def restore_good(self, name: str) -> dict[str, tuple[Any, Any]]:
        """Go back to the last parameters of generator ``name`` that fitted (its defaults when none has).

        Returns
        -------
        dict: parameter name -> (value that failed, value restored), for every parameter that changed;
        empty when the failing parameters already were the last good ones (nothing to go back to)
        """
        failed = self.generator_params(name)
        good = self.good_params.get(name)
        if good is None:
            self.params.pop(name, None)
        else:
            self.params[name] = dict(good)
        restored = self.generator_params(name)
        return {key: (failed[key], value) for key, value in restored.items() if not _same(failed[key], value)}

    def choices(self) -> dict[str, Any]:
        """The user's choices as plain JSON-able values (what a reload restores besides data, layouts, model)."""
        return {"log": self.log, "scale": self.scale, "depth": self.depth, "generator": self.generator,
                "params": _plain(self.params),
                "good_params": _plain(self.good_params), "compare": list(self.compare)}

    def restore_choices(self, choices: dict[str, Any]) -> None:
        """Take back :meth:`choices`; unknown generators and parameters are ignored."""
        self.log = choices.get("log", self.log)
        self.scale = choices.get("scale", self.scale)
        self.depth = choices.get("depth", self.depth)
        if choices.get("generator") in REGISTRY:
            self.generator = choices["generator"]
        self.params = {name: _known_choices(name, values) for name, values in choices.get("params", {}).items()
                       if name in REGISTRY}
        self.good_params = {name: _known_choices(name, values)
                            for name, values in choices.get("good_params", {}).items() if name in REGISTRY}
        self.compare = [name for name in choices.get("compare", []) if name in REGISTRY]

    def layout_key(self, name: str, params: dict[str, Any] | None = None) -> str:
        """Cache key of generator ``name`` with ``params`` (default: its current parameters) on these data."""
        return layout_key(self.data_key, name, self.generator_params(name) if params is None else params)


_PLAIN = (str, int, float, bool, type(None))  # a parameter holding a Layout ("like") is not kept across reloads


def _known_choices(generator: str, values: dict[str, Any]) -> dict[str, Any]:
    """Saved parameters of ``generator`` whose choice still exists (an old preset name under its new name)."""
    from rnaimg_core.generators.chromosome import OLD_PRESET_NAMES

    spec = get_generator(generator).parameter_spec()
    out = {}
    for key, value in values.items():
        if key == "preset" and value in OLD_PRESET_NAMES:
            value = OLD_PRESET_NAMES[value]
        if key in spec and spec[key].choices is not None and value not in spec[key].choices:
            continue  # a choice no longer offered: the widget takes its default
        out[key] = value
    return out


def _plain(params: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: {k: v for k, v in values.items() if isinstance(v, _PLAIN)} for name, values in params.items()}


def _same(a: Any, b: Any) -> bool:
    """Whether two parameter values are the same (a Layout only as the same object)."""
    return a is b or (isinstance(a, _PLAIN) and isinstance(b, _PLAIN) and a == b)


def restored_text(changes: dict[str, tuple[Any, Any]]) -> str:
    """``changes`` of :meth:`AppState.restore_good` in words: ``"height 64 (not 4096), width 64 (not 4096)"``."""
    def shown(value: Any) -> str:
        if isinstance(value, _PLAIN):
            return "none" if value is None or value == "" else str(value)
        return f"a {getattr(value, 'generator', 'chosen')} layout"  # a Layout ("like")

    return ", ".join(f"{name.replace('_', ' ')} {shown(new)} (not {shown(old)})"
                     for name, (old, new) in changes.items())


def made_from(layout: Any, expression: Expression) -> bool:
    """Whether ``layout`` was fitted on these data: the same genes in the same order, and its fit samples
    among these samples (what a restored layout or model is checked against before it is used)."""
    genes = np.asarray(layout.gene_ids).astype(str)
    if genes.shape != expression.gene_ids.shape or not np.array_equal(genes, expression.gene_ids.astype(str)):
        return False
    fitted = layout.fit_sample_ids
    return fitted is None or bool(np.isin(np.asarray(fitted).astype(str), expression.sample_ids.astype(str)).all())


def layout_key(data_key: str, generator: str, params: dict[str, Any]) -> str:
    """A short, stable key for (data, generator, parameters)."""
    text = json.dumps([data_key, generator, params], sort_keys=True, default=str)
    return generator + ":" + hashlib.sha1(text.encode()).hexdigest()[:16]


def upload_key(data: bytes, filename: str, labels: bytes | None, labels_filename: str | None,
               label_column: str | None, orientation: str, gene_map: bytes | None = None,
               gene_map_filename: str | None = None, collapse: str = "auto") -> str:
    """Content key of an upload and its reading options."""
    digest = hashlib.sha1(data)
    digest.update(b"\0" + (labels or b""))
    options = [filename, labels_filename, label_column, orientation]
    if gene_map is not None or collapse != "auto":  # keys of uploads without a gene map stay as they were
        digest.update(b"\0gene_map\0" + (gene_map or b""))
        options += [gene_map_filename, collapse]
    options = json.dumps(options)
    digest.update(options.encode())
    return "upload:" + digest.hexdigest()


def synthetic_key(n_samples: int, n_genes: int, n_classes: int, seed: int) -> str:
    """Content key of seeded synthetic data."""
    return f"synthetic:{n_samples}:{n_genes}:{n_classes}:{seed}"


def generator_names() -> list[str]:
    """Registered generators, the default first."""
    names = list(REGISTRY)
    if DEFAULT_GENERATOR in names:
        names.remove(DEFAULT_GENERATOR)
        names.insert(0, DEFAULT_GENERATOR)
    return names
