"""Per-gene value transforms, fitted on training samples and stored with a layout.

A :class:`Normalization` is library-size scaling to counts per million
(optional, per sample), then ``log2(x + 1)`` (optional), then a per-gene affine
map ``(x - center) / spread``. ``center`` and ``spread`` are learned from the
training samples only, so new samples get exactly the same transform; the
library size is each sample's own sum over the layout's genes.

``scale="sample_max"`` replaces the per-gene map by Lyu & Haque's per-sample
scaling: each sample divided by its own largest value (after the log) over the
layout's placed genes, so every image lies in [0, 1] and its brightest gene
pixel is 1. Nothing per gene is learned; which genes count is fitted state
(``sample_genes_``, set once the layout's placements are known).

Why library-size scaling: raw counts scale with sequencing depth, so without it
a sample's overall image brightness tracks how deeply it was sequenced (on raw
TCGA counts, r = 0.9 between mean brightness and library size) rather than its
biology. :func:`count_check` detects counts, whole (sample sums in the
thousands or more, RSEM expected counts included) or estimated (fractional with
sample sums in the millions: Salmon, kallisto), and ``depth="auto"`` applies CPM
to them; TPM/FPKM (sums at most about a million) are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnaimg_core.errors import InputError

SCALES = ("zscore", "minmax", "none", "sample_max")
PER_GENE_SCALES = ("zscore", "minmax")  # the scales that learn a centre and spread per gene
LOG_CHOICES = ("auto", "yes", "no")
DEPTH_CHOICES = ("auto", "cpm", "none")
COUNTS_MIN_SAMPLE_SUM = 1_000  # raw counts of a sequenced sample add up to thousands of reads or UMIs at least
COUNTS_MIN_WHOLE = 0.5  # share of whole non-zero values: RSEM expected counts about 0.9, TPM/FPKM about 0
# fractional values whose median sample sum is above what TPM or CPM can reach (10^6 over every gene, by
# definition; 5 % margin for rounding): estimated read counts. Over a subset of genes a Salmon matrix may sum
# to only a few million, so the bar is the TPM ceiling rather than "tens of millions".
ESTIMATED_COUNTS_MIN_SUM = 1_050_000
LOG_SCALE_MAX = 50  # a largest value at most this is a log scale (log2 of 10^15 is 50)
_PER_MILLION = np.float32(1e6)


def _sample_rows(values: np.ndarray, max_rows: int = 200) -> np.ndarray:
    """Evenly spaced rows, at most ``max_rows``, for cheap guesses on large matrices."""
    return values if values.shape[0] <= max_rows else values[:: max(1, values.shape[0] // max_rows)]


@dataclass(frozen=True)
class CountCheck:
    """Whether values look like sequencing counts that need library-size scaling, and why.

    Attributes
    ----------
    counts : the verdict (``depth="auto"`` applies counts per million when True)
    reason : the evidence in one plain sentence, for the Data page, the CLI and the layout file
    whole_fraction : share of the non-zero values that are whole numbers
    sum_low, sum_median, sum_high : per-sample sums (library sizes) of the rows looked at
    """

    counts: bool
    reason: str
    whole_fraction: float = 0.0
    sum_low: float = 0.0
    sum_median: float = 0.0
    sum_high: float = 0.0


def count_check(values: np.ndarray) -> CountCheck:
    """Decide whether ``values`` (n_samples, n_genes) are counts whose sums follow sequencing depth.

    Counts come in two forms. Whole numbers (featureCounts, HTSeq, UMI counts) are recognised when
    at least :data:`COUNTS_MIN_WHOLE` of the non-zero values are whole and sample sums reach
    :data:`COUNTS_MIN_SAMPLE_SUM`; RSEM's expected counts qualify (about 90 % whole: reads that map to
    several genes are split). Estimated counts (Salmon/kallisto ``NumReads``, RSEM on isoforms) are
    fractional, so non-negative values whose median sample sum reaches
    :data:`ESTIMATED_COUNTS_MIN_SUM` (just above a million) count too: TPM and CPM sum to at most a
    million per sample by definition (less over a subset of genes; the demo's TPM-like cells sum to
    about 100,000), and FPKM to about as much, so fractional values with smaller sums are taken as
    already depth-normalised and left alone. Values normalised otherwise whose sums exceed a million
    (RSEM upper-quartile "normalized counts", FPKM-UQ, MAS5 intensities) are rescaled per million too:
    a per-sample scale, harmless to them, where missing the scaling on counts is not (``depth=none``
    keeps them as given). Negative values (centred or scaled data) and a largest
    value of at most 50 (a log scale) never count.
    """
    rows = np.asarray(_sample_rows(values), dtype=np.float64)
    if rows.size == 0:
        return CountCheck(False, "no values")
    low, high = float(rows.min()), float(rows.max())
    if low < 0:
        return CountCheck(False, f"values go below 0 (down to {low:.3g}): already centred or scaled, not counts")
    sums = rows.sum(axis=1)
    nonzero = rows[rows != 0]
    whole = float(np.mean(nonzero == np.round(nonzero))) if nonzero.size else 1.0
    stats = dict(whole_fraction=whole, sum_low=float(sums.min()), sum_median=float(np.median(sums)),
                 sum_high=float(sums.max()))
    span = f"sample sums from {stats['sum_low']:,.0f} to {stats['sum_high']:,.0f}"
    if high <= LOG_SCALE_MAX:
        return CountCheck(False, f"the largest value is {high:.3g}: a log scale, not counts", **stats)
    if whole >= COUNTS_MIN_WHOLE and stats["sum_median"] >= COUNTS_MIN_SAMPLE_SUM:
        return CountCheck(True, f"{100 * whole:.1f} % of the non-zero values are whole numbers and {span}: "
                                "read counts (or RSEM expected counts)", **stats)
    if stats["sum_median"] >= ESTIMATED_COUNTS_MIN_SUM:
        return CountCheck(True, f"fractional values ({100 * whole:.1f} % whole) with {span}, above the million "
                                "TPM cannot exceed: estimated counts (RSEM expected counts, Salmon or kallisto "
                                "NumReads) or other totals that follow each sample's depth", **stats)
    return CountCheck(False, f"fractional values ({100 * whole:.1f} % whole) with {span}, at most about a "
                             "million: TPM, FPKM, microarray intensities or other values already normalised "
                             "for depth", **stats)


def looks_like_counts(values: np.ndarray) -> bool:
    """Whether values look like sequencing counts, whole or estimated (see :func:`count_check`).

    Parameters
    ----------
    values : ndarray, shape (n_samples, n_genes)
    """
    return count_check(values).counts


def library_sizes(values: np.ndarray) -> np.ndarray:
    """Per-sample sums (library sizes), float64, with empty samples counted as 1 (they stay all zero)."""
    sums = np.asarray(values).sum(axis=1, dtype=np.float64)  # no float64 copy of the matrix
    sums[~(sums > 0)] = 1.0
    return sums


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
COUNTS_MESSAGE = ("Sequencing depth: they look like counts ({reason}), so by default (depth=auto) each sample "
                  "is scaled to counts per million of its sum before log2(x+1), and sequencing depth does not set "
                  "image brightness. depth=none turns this off.")
NOT_COUNTS_MESSAGE = ("Sequencing depth: no library-size scaling by default ({reason}). depth=cpm forces it.")


def depth_message(values: np.ndarray) -> str:
    """What depth=auto will do with these values, and the evidence (Data page, CLI report)."""
    check = count_check(values)
    return (COUNTS_MESSAGE if check.counts else NOT_COUNTS_MESSAGE).format(reason=check.reason)


def scale_message(values: np.ndarray) -> str:
    """What the values look like and what the default normalisation will do with them (for the Data page)."""
    return SCALE_MESSAGES[guess_scale(values)] + " " + depth_message(values)


@dataclass
class Normalization:
    """Per-gene transform: optional CPM, optional ``log2(x+1)``, then ``(x - center) / spread``.

    Parameters
    ----------
    log : {"auto", "yes", "no"}
        ``"auto"`` applies log2(x+1) when :func:`guess_scale` says the values are
        raw, or when library-size scaling is applied.
    scale : {"zscore", "minmax", "none", "sample_max"}
        Per-gene z-score, per-gene min-max to [0, 1], no scaling, or each sample
        divided by its largest value over ``sample_genes_`` (Lyu & Haque's scaling;
        no per-gene centre or spread).
    depth : {"auto", "cpm", "none"}
        Library-size normalisation: each sample scaled to counts per million of
        its own sum over the genes. ``"auto"`` applies it when
        :func:`looks_like_counts` says the values are counts (whole or estimated).
    floor : float or None
        Values at or below ``floor`` after the log (or, without the log, as given) become 0
        (Lyu & Haque's released code sets ``log2(1 + x) <= 1`` to 0). The test is made on the
        values before the log, ``x <= 2**floor - 1``: the same, since the log is increasing and
        maps 0 to 0. Library sizes are sums before it.

    Attributes
    ----------
    sample_genes_ : ndarray of int64 or None
        With ``scale="sample_max"``, the gene columns whose largest value scales each
        sample (a layout's placed genes, :meth:`use_sample_genes`); None means every gene.
    """

    log: str = "auto"
    scale: str = "zscore"
    depth: str = "auto"
    floor: float | None = None
    depth_applied_: bool | None = None
    depth_reason_: str = ""
    log_applied_: bool | None = None
    center_: np.ndarray | None = field(default=None, repr=False)
    spread_: np.ndarray | None = field(default=None, repr=False)
    sample_genes_: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.log not in LOG_CHOICES:
            raise InputError(f"log must be one of {', '.join(LOG_CHOICES)}, not {self.log!r}.")
        if self.scale not in SCALES:
            raise InputError(f"scale must be one of {', '.join(SCALES)}, not {self.scale!r}.")
        if self.depth not in DEPTH_CHOICES:
            raise InputError(f"depth must be one of {', '.join(DEPTH_CHOICES)}, not {self.depth!r}.")
        if self.floor is not None and not (np.isfinite(self.floor) and 0 <= self.floor <= LOG_SCALE_MAX):
            raise InputError(f"floor must be a number from 0 to {LOG_SCALE_MAX} (a log2 value), not {self.floor!r}.")

    def raw_floor(self) -> float | None:
        """The floor on the values before the log (after library-size scaling), or None without one."""
        if self.floor is None:
            return None
        return float(2.0 ** self.floor - 1.0) if self.log_applied_ else float(self.floor)

    @property
    def is_fitted(self) -> bool:
        return self.log_applied_ is not None

    def fit(self, values: np.ndarray) -> "Normalization":
        """Learn the per-gene parameters from training samples ``values`` (n, g), every gene column."""
        self.sample_genes_ = None  # every gene until a layout says which genes it places
        if self.depth == "auto":
            check = count_check(values)
            self.depth_applied_, self.depth_reason_ = check.counts, "auto: " + check.reason
        else:
            self.depth_applied_ = self.depth == "cpm"
            self.depth_reason_ = f"chosen: depth={self.depth}"
        if self.depth_applied_ and values.size and float(np.min(values)) < 0:
            raise InputError("Library-size normalisation (depth=cpm) needs non-negative values; choose depth=none.")
        if self.log == "auto":
            self.log_applied_ = self.depth_applied_ or guess_scale(values) == "raw"
        else:
            self.log_applied_ = self.log == "yes"
        if self.log_applied_ and values.size and float(np.min(values)) < 0:
            raise InputError("log2(x+1) was requested but the values contain negatives; choose log=no.")
        if self.scale == "sample_max" and values.size and float(np.min(values)) < 0:
            raise InputError("Per-sample max scaling (scale=sample_max) needs non-negative values; "
                             "these contain negatives (already centred?): choose another scale.")
        if self.scale not in PER_GENE_SCALES:
            self.center_ = np.zeros(values.shape[1], dtype=np.float32)
            self.spread_ = np.ones(values.shape[1], dtype=np.float32)
            return self
        logged = self.log_transform(values)
        if self.scale == "zscore":
            return self.set_statistics(mean=logged.mean(axis=0, dtype=np.float64),
                                       std=logged.std(axis=0, dtype=np.float64))
        return self.set_statistics(minimum=logged.min(axis=0), maximum=logged.max(axis=0))

    def set_statistics(self, *, mean=None, std=None, minimum=None, maximum=None) -> "Normalization":
        """Centre and spread from per-gene statistics of the logged training values, by ``scale``.

        ``zscore`` needs ``mean``/``std``, ``minmax`` needs ``minimum``/``maximum``; :meth:`fit`
        and streamed fits over a whole cohort (:mod:`rnaimg_core.bigrun`) share this rule.
        The other scales learn nothing per gene: the statistics are ignored.
        """
        if self.scale not in PER_GENE_SCALES:
            n_genes = len(mean if mean is not None else minimum)
            self.center_ = np.zeros(n_genes, dtype=np.float32)
            self.spread_ = np.ones(n_genes, dtype=np.float32)
            return self
        if self.scale == "zscore":
            center, spread = np.asarray(mean, dtype=np.float64), np.array(std, dtype=np.float64)
        else:
            center = np.asarray(minimum, dtype=np.float64)
            spread = np.asarray(maximum, dtype=np.float64) - center
        spread[~(spread > 0)] = 1.0  # constant genes map to 0 rather than NaN
        self.center_ = center.astype(np.float32)
        self.spread_ = spread.astype(np.float32)
        return self

    def use_sample_genes(self, genes: np.ndarray) -> "Normalization":
        """Set the genes whose largest value scales each sample (``scale="sample_max"``; a layout's placed genes)."""
        genes = np.unique(np.asarray(genes, dtype=np.int64))
        if self.center_ is not None and genes.size and (genes[0] < 0 or genes[-1] >= self.center_.size):
            raise ValueError("sample genes must be gene columns of the normalisation")
        self.sample_genes_ = genes
        return self

    def sample_peaks(self, logged: np.ndarray) -> np.ndarray:
        """Per-sample divisor of ``scale="sample_max"``: the largest value among the sample genes.

        ``logged`` is (n, n_genes) after the per-sample steps (:meth:`log_transform`);
        returns float32 of shape (n, 1), 1 for a sample with no value above 0.
        """
        genes = logged if self.sample_genes_ is None else logged[:, self.sample_genes_]
        if genes.shape[1] == 0:
            return np.ones((logged.shape[0], 1), dtype=np.float32)
        peaks = genes.max(axis=1, keepdims=True).astype(np.float32)
        peaks[~(peaks > 0)] = 1.0  # a sample with no expression in these genes stays all zero
        return peaks

    def log_transform(self, values: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """The per-sample steps alone (CPM, then ``log2(x + 1)``, as the fit chose); float32.

        ``values`` must hold every gene column (library sizes are per-sample sums over
        them); ``columns`` then selects genes from the result.
        """
        values = np.asarray(values, dtype=np.float32)
        if self.depth_applied_:
            factor = (_PER_MILLION / library_sizes(values)).astype(np.float32)
            values = (values if columns is None else values[:, columns]) * factor[:, None]
        elif columns is not None:
            values = values[:, columns]
        if self.floor is not None:
            values = np.where(values <= np.float32(self.raw_floor()), np.float32(0), values)
        return np.log2(values + np.float32(1)) if self.log_applied_ else values

    def apply(self, values: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """Transform ``values`` (n, g) to float32; ``columns`` selects the genes' parameters.

        With library-size scaling, ``values`` must hold every gene column and
        ``columns`` is not accepted (a subset of genes has no library size); the same
        holds for ``scale="sample_max"`` (a subset has no sample maximum).
        """
        if not self.is_fitted:
            raise RuntimeError("Normalization.apply called before fit")
        if self.depth_applied_ and columns is not None:
            raise ValueError("apply(columns=...) is not defined with library-size scaling; pass every gene")
        if self.scale == "sample_max":
            if columns is not None:
                raise ValueError("apply(columns=...) is not defined with scale=sample_max; pass every gene")
            out = self.log_transform(values)
            return out / self.sample_peaks(out)
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
            "depth": self.depth,
            "depth_applied": bool(self.depth_applied_),
            "depth_method": "counts per million of each sample's sum over the layout's genes"
                            if self.depth_applied_ else "none",
            "depth_reason": self.depth_reason_,
            "log_applied": bool(self.log_applied_),
            "floor": self.floor,
            "center": self.center_.tolist(),
            "spread": self.spread_.tolist(),
            "sample_genes": None if self.sample_genes_ is None else self.sample_genes_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Normalization":
        # files written before library-size scaling existed carry no "depth": none was applied
        floor = data.get("floor")
        if floor is not None and (isinstance(floor, bool) or not isinstance(floor, (int, float))):
            raise InputError("The layout file is damaged: normalization floor must be a number or null.")
        norm = cls(log=data["log"], scale=data["scale"], depth=data.get("depth", "none"),
                   floor=None if floor is None else float(floor))
        norm.depth_applied_ = bool(data.get("depth_applied", False))
        norm.depth_reason_ = str(data.get("depth_reason", ""))
        norm.log_applied_ = bool(data["log_applied"])
        norm.center_ = np.asarray(data["center"], dtype=np.float32)
        norm.spread_ = np.asarray(data["spread"], dtype=np.float32)
        if data.get("sample_genes") is not None:
            norm.sample_genes_ = np.asarray(data["sample_genes"], dtype=np.int64)
        return norm
