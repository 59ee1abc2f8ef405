"""What every image generator shares: parameters, fitting, the Placement it returns.

A generator is configured once (``Generator(**params)``, parameters checked
against their declared ranges) and ``fit`` on an :class:`Expression`. ``fit``
learns the normalisation on the training samples, asks the generator's
``place`` for a :class:`Placement`, and wraps both in a
:class:`~rnaimg_core.layout.Layout` with its quality figures.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import pandas as pd

from rnaimg_core.errors import InputError
from rnaimg_core.expression import Expression, as_expression
from rnaimg_core.layout import REDUCERS, Layout, basic_quality
from rnaimg_core.limits import check_array, current_limits, how_to_raise
from rnaimg_core.normalize import DEPTH_CHOICES, LOG_CHOICES, SCALES, Normalization
from rnaimg_core.quality import held_out_values, neighbourhood_quality

if TYPE_CHECKING:
    from anndata import AnnData

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Param:
    """One tunable parameter: its default, range or choices, and a help line.

    ``limit`` names the :class:`~rnaimg_core.limits.Limits` field that is the upper
    bound (image sizes); such a bound is read from the active limits when the
    parameter is checked or described, not fixed when the class is defined.
    """

    name: str
    default: Any
    help: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    limit: str | None = None

    def bounded(self) -> "Param":
        """This parameter with ``high`` set from the active limits when ``limit`` names one of them.

        ``limit`` is a field of :class:`~rnaimg_core.limits.Limits` (``"max_height"``); it is read
        here, not at import, so ``--limit``, ``.streamlit/rnaimg.toml`` and ``RNAIMG_*`` apply.
        """
        if self.limit is None:
            return self
        return dataclasses.replace(self, high=getattr(current_limits(), self.limit))

    @property
    def kind(self) -> str:
        if isinstance(self.default, bool):
            return "bool"
        if isinstance(self.default, int):
            return "int"
        if isinstance(self.default, float):
            return "float"
        return "str"

    def parse(self, text: str) -> Any:
        """Convert a command-line string (``--set name=text``) and check it."""
        text = str(text).strip()
        try:
            if self.kind == "bool":
                lowered = text.lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                value: Any = lowered in ("true", "1", "yes")
            elif self.kind == "int":
                value = int(text)
            elif self.kind == "float":
                value = float(text)
            else:
                value = text
        except ValueError:
            raise InputError(f"Parameter {self.name}: {text!r} is not a valid {self.kind}.") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        """Validate a value; returns it converted to the parameter's type."""
        kind = self.kind
        if kind == "float" and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            value = float(value)
        if kind == "int" and isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        if kind == "int" and isinstance(value, np.integer):
            value = int(value)
        high = self.bounded().high
        expected = {"bool": bool, "int": int, "float": float, "str": str}[kind]
        if not isinstance(value, expected) or (kind == "int" and isinstance(value, bool)):
            raise InputError(f"Parameter {self.name} must be a {kind}, not {value!r}.")
        if self.choices is not None and value not in self.choices:
            raise InputError(f"Parameter {self.name} must be one of {', '.join(map(str, self.choices))}, not {value!r}.")
        if self.low is not None and value < self.low:
            raise InputError(f"Parameter {self.name} must be at least {self.low}, not {value}.")
        if high is not None and value > high:
            hint = "" if self.limit is None else f" {how_to_raise(self.limit)}"
            raise InputError(f"Parameter {self.name} must be at most {high}, not {value}.{hint}")
        return value

    def describe(self) -> dict:
        out = {"name": self.name, "type": self.kind, "default": self.default, "help": self.help}
        if self.choices is not None:
            out["choices"] = list(self.choices)
        if self.low is not None:
            out["min"] = self.low
        high = self.bounded().high
        if high is not None:
            out["max"] = high
        return out


# Parameters every generator accepts.
COMMON_PARAMS: tuple[Param, ...] = (
    Param("log", "auto", "log2(x+1) before scaling: auto applies it when values look raw (counts/TPM).",
          choices=LOG_CHOICES),
    Param("depth", "auto", "Library-size normalisation to counts per million before the log: auto applies it "
          "when values look like raw counts (whole numbers, large sample sums).", choices=DEPTH_CHOICES),
    Param("scale", "zscore", "Per-gene scaling fitted on training samples: z-score, min-max to [0, 1], or none; "
          "or sample_max: each sample divided by its largest placed gene (Lyu & Haque).", choices=SCALES),
    Param("reduce", "mean", "How several genes on one pixel are combined.", choices=REDUCERS),
    Param("seed", 0, "Random seed; the same seed gives the same layout.", low=0),
)

@dataclass
class Placement:
    """What a generator decides: image shape and gene -> pixel placements.

    ``gene`` holds gene column indices, ``pixel`` flat pixel indices
    ``c*H*W + r*W + col`` (same length). ``notes`` says what was dropped and
    why; ``regions`` labels areas of the image for overlays, each a dict with
    ``name`` and ``channel`` and either ``first``/``last`` (a run of pixels in
    row-major order within the channel) or ``rows``/``cols`` (a box, inclusive).
    """

    shape: tuple[int, int, int]
    gene: np.ndarray
    pixel: np.ndarray
    notes: dict = field(default_factory=dict)
    regions: list = field(default_factory=list)


class FitData:
    """What ``place`` sees: the training samples, lazily normalised, and the gene table."""

    def __init__(self, expression: Expression, train_index: np.ndarray, normalization: Normalization,
                 seed: int, progress: Progress | None):
        self.expression = expression
        self.train_index = train_index
        self.normalization = normalization
        self.seed = seed
        self._progress = progress

    @property
    def genes(self) -> pd.DataFrame:
        return self.expression.genes

    @property
    def n_genes(self) -> int:
        return self.expression.n_genes

    @property
    def labels(self) -> np.ndarray | None:
        labels = self.expression.labels
        return None if labels is None else labels[self.train_index]

    def logged_values(self, genes: np.ndarray | None = None) -> np.ndarray:
        """Training values after the log step only (no scaling), shape (n_train, n_genes or len(genes))."""
        raw = self.expression.values[self.train_index]
        return self.normalization.log_transform(raw, columns=genes)

    @cached_property
    def values(self) -> np.ndarray:
        """Normalised training matrix, shape (n_train, n_genes), float32."""
        return self.normalization.apply(self.expression.values[self.train_index])

    def quality_values(self, max_samples: int = 500) -> np.ndarray:
        """Normalised values of at most ``max_samples`` training samples (evenly spaced), for quality figures."""
        n = self.train_index.size
        rows = np.arange(n) if n <= max_samples else np.linspace(0, n - 1, max_samples).round().astype(np.int64)
        if "values" in self.__dict__:  # already normalised by place(): reuse it
            return self.values[rows]
        return self.normalization.apply(self.expression.values[self.train_index[rows]])

    def progress(self, fraction: float, message: str = "") -> None:
        if self._progress is not None:
            self._progress(min(1.0, max(0.0, float(fraction))), message)


class Generator(ABC):
    """Base class: subclasses set the class attributes and implement :meth:`place`.

    Class attributes: ``name`` (registry name, also the module's file name),
    ``title``, ``description`` (one paragraph), ``guide`` (markdown for the
    dashboard and docs), ``reference`` and ``parameters`` (the generator's own
    :class:`Param` specs; :data:`COMMON_PARAMS` are added to every generator).
    An instance keeps the chosen values in ``params``.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    guide: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    parameters: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **params: Any) -> None:
        spec = self._checked_spec(params)
        self.params: dict[str, Any] = {name: p.default for name, p in spec.items()}
        for name, value in params.items():
            self.params[name] = spec[name].check(value)

    def __repr__(self) -> str:
        """The class with the parameters that differ from their defaults, as scikit-learn shows estimators."""
        spec = self.parameter_spec()
        changed = [f"{name}={value!r}" for name, value in self.params.items()
                   if name not in spec or value != spec[name].default]
        return f"{type(self).__name__}({', '.join(changed)})"

    @classmethod
    def parameter_spec(cls) -> dict[str, Param]:
        """Every parameter the generator takes, by name: its own, then :data:`COMMON_PARAMS`.

        Bounds that come from the resource policy (:meth:`Param.bounded`) are read now, so the
        spec, the checks and the dashboard's widget ranges follow the active limits.
        """
        return {p.name: p.bounded() for p in (*cls.parameters, *COMMON_PARAMS)}

    @classmethod
    def _checked_spec(cls, names) -> dict[str, Param]:
        """The parameter spec, after checking that every one of ``names`` is in it."""
        spec = cls.parameter_spec()
        unknown = sorted(set(names) - set(spec))
        if unknown:
            raise InputError(f"Generator {cls.name} has no parameter {', '.join(unknown)}; "
                             f"it takes {', '.join(spec)}.")
        return spec

    @classmethod
    def from_strings(cls, settings: dict[str, str]) -> "Generator":
        """A generator from ``name -> text`` settings (``--set name=text`` on the command line)."""
        spec = cls._checked_spec(settings)
        return cls(**{k: spec[k].parse(v) for k, v in settings.items()})

    @classmethod
    def describe(cls) -> dict:
        return {
            "name": cls.name,
            "title": cls.title,
            "description": cls.description,
            "reference": cls.reference,
            "parameters": [p.describe() for p in cls.parameter_spec().values()],
        }

    def normalization_floor(self) -> float | None:
        """Values at or below this after the log become 0 (see :class:`Normalization`); None: no floor."""
        return None

    @abstractmethod
    def place(self, data: FitData) -> Placement:
        """Decide the image shape and each gene's pixel(s)."""

    def fit(self, expression: Expression | AnnData, *, train_index: np.ndarray | None = None,
            progress: Progress | None = None, quality: bool = True) -> Layout:
        """Fit the layout on the training samples of ``expression``.

        Parameters
        ----------
        expression : Expression, or an AnnData (converted by :func:`~rnaimg_core.expression.as_expression`)
        train_index : sample indices to learn from (all samples when omitted).
        progress : optional callback ``(fraction_done, message)``.
        quality : also compute neighbourhood preservation (a few seconds at
            20,000 genes); the counts of :func:`basic_quality` are always reported.

        Returns
        -------
        Layout
        """
        started = time.perf_counter()
        expression = as_expression(expression)
        p = self.params
        if train_index is None:
            train_index = np.arange(expression.n_samples)
        train_index = np.asarray(train_index, dtype=np.int64)
        if train_index.size < 2:
            # per-gene spread, neighbours and embeddings need two samples at least
            raise InputError(f"A layout is fitted on at least 2 samples; {train_index.size} given.")
        height, width, channels = (int(p.get(k) or 0) for k in ("height", "width", "channels"))
        if height and width:  # placement grids hold a pixel index (8 bytes) per pixel: bound them before any

            check_array((max(1, channels), height, width), np.int64,
                        f"An image grid of {max(1, channels)} x {height:,} x {width:,} pixels "
                        "(8 bytes a pixel while placing)")
        normalization = Normalization(log=p["log"], scale=p["scale"], depth=p["depth"],
                                      floor=self.normalization_floor()).fit(
            expression.values[train_index])
        data = FitData(expression, train_index, normalization, int(p["seed"]), progress)
        data.progress(0.0, f"fitting {self.name}")
        placement = self.place(data)
        if normalization.scale == "sample_max":
            # each sample is scaled by its largest placed gene, so the brightest gene pixel is 1
            normalization.use_sample_genes(placement.gene)
            data.__dict__.pop("values", None)  # normalised with every gene while placing: redo for quality
        layout = Layout(
            generator=self.name,
            params=dict(self.params),
            seed=int(p["seed"]),
            shape=placement.shape,
            gene_ids=expression.gene_ids,
            placement_gene=placement.gene,
            placement_pixel=placement.pixel,
            reduce=p["reduce"],
            normalization=normalization,
            entrez_ids=expression.genes["entrez_id"].to_numpy(),
            symbols=expression.genes["symbol"].astype(str).to_numpy(),
            notes=placement.notes,
            regions=placement.regions,
            fit_sample_ids=expression.sample_ids[train_index].tolist(),
        )
        features = expression.notes.get("feature_mapping")
        if features:  # how probes or transcripts became these genes: new data must be read the same way
            layout.notes = {**layout.notes, "features_to_genes": {
                key: features[key] for key in ("kind", "gene_map", "collapse") if key in features}}
        layout.quality = basic_quality(layout)
        layout.quality["seconds"] = round(time.perf_counter() - started, 4)
        if quality:
            data.progress(0.95, "layout quality")
            # out of sample when there are held-out samples: on the fitted ones the figure reads about 2x high
            values, samples = held_out_values(expression.values, train_index, normalization, data.quality_values)
            layout.quality.update(neighbourhood_quality(layout, values, seed=int(p["seed"]), samples=samples))
        data.progress(1.0, "done")
        return layout

