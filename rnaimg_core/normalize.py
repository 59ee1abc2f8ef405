"""Per-gene value transforms, fitted on training samples and stored with a layout.

A :class:`Normalization` is ``log2(x + 1)`` (optional) followed by a per-gene
affine map ``(x - center) / spread``. Both ``center`` and ``spread`` are learned
from the training samples only, so new samples get exactly the same transform.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnaimg_core.errors import InputError

SCALES = ("zscore", "minmax", "none")
LOG_CHOICES = ("auto", "yes", "no")


def guess_scale(values: np.ndarray) -> str:
    """Guess whether expression values are raw (counts / TPM) or already logged.

    Parameters
    ----------
    values : ndarray, shape (n_samples, n_genes)

    Returns
    -------
    str
        ``"raw"`` (non-negative with a large range, log2(x+1) advised),
        ``"log"`` (non-negative, at most about 30: looks log-transformed), or
        ``"centred"`` (has negative values: looks scaled or z-scored already).
    """
    sample = values if values.size <= 2_000_000 else values[:: max(1, values.shape[0] // 200)]
    vmin = float(np.min(sample)) if sample.size else 0.0
    vmax = float(np.max(sample)) if sample.size else 0.0
    if vmin < 0:
        return "centred"
    if vmax > 50:
        return "raw"
    return "log"


SCALE_MESSAGES = {
    "raw": "Values look raw (counts or TPM: non-negative, maximum above 50); log2(x+1) is advised.",
    "log": "Values look already log-transformed (non-negative, maximum at most 50); no log is applied by default.",
    "centred": "Values contain negatives, so they look already scaled or centred; no log is applied.",
}


@dataclass
class Normalization:
    """Per-gene transform: optional ``log2(x+1)`` then ``(x - center) / spread``.

    Parameters
    ----------
    log : {"auto", "yes", "no"}
        ``"auto"`` applies log2(x+1) when :func:`guess_scale` says the values are raw.
    scale : {"zscore", "minmax", "none"}
        Per-gene z-score, per-gene min-max to [0, 1], or no scaling.
    """

    log: str = "auto"
    scale: str = "zscore"
    log_applied_: bool | None = None
    center_: np.ndarray | None = field(default=None, repr=False)
    spread_: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.log not in LOG_CHOICES:
            raise InputError(f"log must be one of {', '.join(LOG_CHOICES)}, not {self.log!r}.")
        if self.scale not in SCALES:
            raise InputError(f"scale must be one of {', '.join(SCALES)}, not {self.scale!r}.")

    @property
    def is_fitted(self) -> bool:
        return self.log_applied_ is not None

    def fit(self, values: np.ndarray) -> "Normalization":
        """Learn the per-gene parameters from training samples ``values`` (n, g)."""
        if self.log == "auto":
            self.log_applied_ = guess_scale(values) == "raw"
        else:
            self.log_applied_ = self.log == "yes"
        if self.log_applied_ and values.size and float(np.min(values)) < 0:
            raise InputError("log2(x+1) was requested but the values contain negatives; choose log=no.")
        n_genes = values.shape[1]
        if self.scale == "none":
            center = np.zeros(n_genes)
            spread = np.ones(n_genes)
        else:
            logged = self.log_transform(values)
            if self.scale == "zscore":
                center = logged.mean(axis=0, dtype=np.float64)
                spread = logged.std(axis=0, dtype=np.float64)
            else:
                center = logged.min(axis=0).astype(np.float64)
                spread = logged.max(axis=0).astype(np.float64) - center
            spread[~(spread > 0)] = 1.0  # constant genes map to 0 rather than NaN
        self.center_ = center.astype(np.float32)
        self.spread_ = spread.astype(np.float32)
        return self

    def log_transform(self, values: np.ndarray) -> np.ndarray:
        """The log step alone: ``log2(x + 1)`` when the fit chose it, else the values; float32."""
        values = np.asarray(values, dtype=np.float32)
        return np.log2(values + np.float32(1)) if self.log_applied_ else values

    def apply(self, values: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """Transform ``values`` (n, g) to float32; ``columns`` selects the genes' parameters."""
        if not self.is_fitted:
            raise RuntimeError("Normalization.apply called before fit")
        center = self.center_ if columns is None else self.center_[columns]
        spread = self.spread_ if columns is None else self.spread_[columns]
        out = self.log_transform(values)
        if out is values:  # never modify the caller's array in place
            out = out.copy()
        out -= center
        out /= spread
        return out

    def to_dict(self) -> dict:
        return {
            "log": self.log,
            "scale": self.scale,
            "log_applied": bool(self.log_applied_),
            "center": self.center_.tolist(),
            "spread": self.spread_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Normalization":
        norm = cls(log=data["log"], scale=data["scale"])
        norm.log_applied_ = bool(data["log_applied"])
        norm.center_ = np.asarray(data["center"], dtype=np.float32)
        norm.spread_ = np.asarray(data["spread"], dtype=np.float32)
        return norm
