"""Seeded synthetic expression data shaped like a TCGA pan-cancer matrix.

The data are **synthetic**: no value was measured. Class names (``SYN01``, ...),
sample ids (``synthetic-000001``, ...) and :attr:`SyntheticData.description`
say so, so a figure made from them cannot pass for real data.

What is planted, so that layouts and attributions have something to find:

* real genes: columns are named ``SYMBOL|ENTREZ`` (TCGA legacy form, ``?`` for
  about 1 % of symbols) after real Entrez genes of the shipped annotation, mostly
  protein-coding and almost all with a GRCh38 position, and sorted by that name
  as TCGA matrices are (so column order is *not* genome order);
* copy-number events: each class carries a few gains and losses of whole
  chromosome arms or large contiguous blocks of genes in genome order, some
  shared by its "tissue family" of related classes, each present in only part
  of the class's samples and scaled by a per-sample tumour purity;
* co-expression modules: groups of genes spread over the genome that share one
  latent factor per sample, whose mean differs between families and classes;
* driver genes: per class, a few genes raised in that class only (in most, not
  all, of its samples), for attribution sanity checks;
* gene-specific baselines (log-normal means), a per-sample size factor and
  gene-specific noise.

Everything is built in log2 space and returned as ``2**y - 1`` clipped at zero,
a non-negative raw scale on which ``log2(x + 1)`` is the natural transform.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse

from rnaimg_core.annotation import CHROMOSOMES, chromosome_arms, chromosome_sort_key, gene_table
from rnaimg_core.errors import InputError

__all__ = ["SyntheticData", "make_synthetic", "make_synthetic_small"]


# Gene universe
_UNPLACED_FRACTION = 0.01      # genes without a position (TCGA has about 1 %)
_PROTEIN_CODING_FRACTION = 0.93
_MISSING_SYMBOL_FRACTION = 0.01

# Baseline expression, log2 scale: a low-expressed group (gives the zeros) and the rest
_LOW_GENE_FRACTION = 0.12
_LOW_MEAN, _LOW_SD = 0.0, 1.5
_EXPRESSED_MEAN, _EXPRESSED_SD = 7.0, 2.2
_EXPRESSED_MIN = 3.0            # drivers and module genes are picked above this baseline
_NOISE_SD_RANGE = (0.35, 0.9)
_SIZE_FACTOR_SD = 0.15

# Classes
_CLASSES_PER_FAMILY = 4
_MIN_CLASS_SIZE = 10
_CLASS_SIZE_SPREAD = 0.7        # sd of log class weights: unbalanced classes

# Copy-number events (log2 change in a pure tumour sample)
_FAMILY_EVENTS = 2
_CLASS_EVENTS_RANGE = (1, 3)
_BLOCK_PROBABILITY = 0.3
_BLOCK_FRACTION_RANGE = (0.3, 0.7)
_GAIN_PROBABILITY = 0.55
_GAIN_RANGE = (0.4, 0.8)
_LOSS_RANGE = (0.5, 1.0)
_FAMILY_EVENT_FREQUENCY = (0.6, 0.95)
_CLASS_EVENT_FREQUENCY = (0.45, 0.85)
_PURITY_RANGE = (0.4, 1.0)

# Drivers and modules
_DRIVER_SHIFT_RANGE = (0.8, 1.6)
_DRIVER_ACTIVE_FRACTION = 0.7
_DRIVER_ACTIVITY_RANGE = (0.5, 1.0)
_MODULE_LOADING_RANGE = (0.5, 1.0)
_MODULE_FAMILY_SD = 0.8
_MODULE_CLASS_SD = 0.3

# About 32 MB of float32 per chunk of samples
_CHUNK_ELEMENTS = 8_000_000

_EFFECT_COLUMNS = [
    "label", "family", "chromosome", "arm", "start", "end", "n_genes",
    "extent", "kind", "log2_change", "frequency",
]


@dataclass(frozen=True)
class SyntheticData:
    """A synthetic expression data set and the structure planted in it.

    Attributes
    ----------
    values : numpy.ndarray
        Shape ``(n_samples, n_genes)``, non-negative, raw (not logged) scale;
        use ``log2(x + 1)``.
    sample_ids : numpy.ndarray
        Unicode, ``synthetic-000001``, ... in row order.
    gene_ids : numpy.ndarray
        Unicode, ``SYMBOL|ENTREZ`` (``?|ENTREZ`` when the symbol is withheld),
        in column order.
    labels : numpy.ndarray
        Unicode class names ``SYN01``, ... per sample.
    modules : dict of str to numpy.ndarray
        Module name -> column indices of its co-expressed genes.
    driver_genes : dict of str to numpy.ndarray
        Class name -> column indices of the genes raised in that class only.
    chromosome_arm_effects : pandas.DataFrame
        One row per class and copy-number event: ``label``, ``family``,
        ``chromosome``, ``arm``, ``start``, ``end`` (GRCh38, 1-based, outer
        bounds of the affected genes), ``n_genes``, ``extent`` (``arm`` or
        ``block``), ``kind`` (``gain`` or ``loss``), ``log2_change`` (in a pure
        sample) and ``frequency`` (fraction of the class's samples carrying it).
    description : str
        Plain-language statement that the data are synthetic and how they were made.
    """

    values: np.ndarray
    sample_ids: np.ndarray
    gene_ids: np.ndarray
    labels: np.ndarray
    modules: dict[str, np.ndarray]
    driver_genes: dict[str, np.ndarray]
    chromosome_arm_effects: pd.DataFrame
    description: str


@functools.lru_cache(maxsize=1)
def _gene_candidates() -> pd.DataFrame:
    """Genes of the shipped annotation with their chromosome arm, read once."""
    table = gene_table()
    genes = pd.DataFrame({
        "entrez_id": table["entrez_id"].to_numpy(dtype=np.int64),
        "symbol": table["symbol"].fillna("").astype(str).to_numpy(),
        "chromosome": table["chromosome"].fillna("").astype(str).str.removeprefix("chr").to_numpy(),
        "start": pd.array(table["start"], dtype="Int64"),
        "end": pd.array(table["end"], dtype="Int64"),
        "protein_coding": table["gene_type"].astype(str).str.replace("_", "-").eq("protein-coding").to_numpy(),
    })
    genes = genes[genes["symbol"] != ""]
    genes["placed"] = genes["start"].notna().to_numpy() & genes["chromosome"].isin(CHROMOSOMES).to_numpy()
    genes["arm"] = _chromosome_arms(genes, table.loc[genes.index, "cytoband"].fillna("").astype(str))
    return genes.reset_index(drop=True)


def _chromosome_arms(genes: pd.DataFrame, cytobands: pd.Series) -> np.ndarray:
    """``'p'``/``'q'`` per placed gene of 1-22, X, Y ('' otherwise).

    The arm comes from the cytoband; a placed gene without a usable band gets
    the arm its position falls in, split halfway between the last p-arm and
    the first q-arm gene of its chromosome.
    """
    band_chromosome, band_arm = chromosome_arms(cytobands)
    chromosome = genes["chromosome"].to_numpy()
    placed = genes["placed"].to_numpy() & (chromosome != "MT")
    band_ok = band_chromosome == chromosome
    arms = np.where(placed & band_ok, band_arm, "").astype(object)
    start = genes["start"].to_numpy(dtype=np.float64, na_value=np.nan)
    for name in np.unique(chromosome[placed & ~band_ok]):
        on_chromosome = placed & (chromosome == name)
        p_starts = start[on_chromosome & (arms == "p")]
        q_starts = start[on_chromosome & (arms == "q")]
        if p_starts.size and q_starts.size:
            split = (p_starts.max() + q_starts.min()) / 2
        else:
            split = -np.inf if not p_starts.size else np.inf
        fix = on_chromosome & (arms == "")
        arms[fix] = np.where(start[fix] < split, "p", "q")
    return arms.astype(str)


def _choose_genes(n_genes: int, rng: np.random.Generator) -> pd.DataFrame:
    """Pick ``n_genes`` real genes, mostly placed and protein-coding, in TCGA column order."""
    genes = _gene_candidates()
    if n_genes > len(genes):
        raise InputError(f"n_genes must be at most {len(genes):,} (the annotated genes with a symbol).")
    placed = genes["placed"].to_numpy()
    coding = genes["protein_coding"].to_numpy()
    n_unplaced = min(int(round(_UNPLACED_FRACTION * n_genes)), int((~placed).sum()))
    n_placed = n_genes - n_unplaced
    n_coding = min(int(round(_PROTEIN_CODING_FRACTION * n_placed)), int((placed & coding).sum()))
    # Pools in order of preference; each later pool tops up what earlier ones lack.
    wanted = [
        (placed & coding, n_coding),
        (placed & ~coding, n_placed - n_coding),
        (placed & coding, 0),
        (~placed & coding, n_unplaced),
        (~placed & ~coding, 0),
    ]
    taken = np.zeros(len(genes), dtype=bool)
    shortfall = 0
    for pool, target in wanted:
        available = np.flatnonzero(pool & ~taken)
        count = min(target + shortfall, available.size)
        taken[rng.choice(available, size=count, replace=False)] = True
        shortfall = target + shortfall - count
    chosen = genes[taken].copy()
    withheld = rng.random(len(chosen)) < _MISSING_SYMBOL_FRACTION
    symbols = np.where(withheld, "?", chosen["symbol"].to_numpy())
    chosen["gene_id"] = [f"{s}|{e}" for s, e in zip(symbols, chosen["entrez_id"], strict=True)]
    return chosen.sort_values("gene_id", kind="stable").reset_index(drop=True)


def _class_sizes(n_samples: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Unbalanced class sizes summing to ``n_samples``, each at least ``min(10, n // k)``."""
    floor = min(_MIN_CLASS_SIZE, n_samples // n_classes)
    weights = rng.lognormal(0.0, _CLASS_SIZE_SPREAD, n_classes)
    share = (n_samples - floor * n_classes) * weights / weights.sum()
    sizes = floor + np.floor(share).astype(np.int64)
    leftover = n_samples - int(sizes.sum())
    sizes[np.argsort(-(share - np.floor(share)), kind="stable")[:leftover]] += 1
    return sizes


@dataclass(frozen=True)
class _Event:
    """One copy-number event: affected columns, where they lie, log2 change in a pure sample."""

    columns: np.ndarray
    chromosome: str
    arm: str
    start: int
    end: int
    extent: str
    log2_change: float


def _arm_segments(genes: pd.DataFrame, min_genes: int) -> list[tuple[str, str, np.ndarray]]:
    """Chromosome arms as (chromosome, arm, column indices in genome order)."""
    arms = genes[genes["arm"] != ""]
    order = np.lexsort((arms["start"].to_numpy(dtype=np.int64),
                        chromosome_sort_key(arms["chromosome"])))
    arms = arms.iloc[order]
    segments = []
    for (chromosome, arm), group in arms.groupby(["chromosome", "arm"], sort=False):
        if len(group) >= min_genes:
            segments.append((chromosome, arm, group.index.to_numpy()))
    return segments


def _draw_event(segments: list[tuple[str, str, np.ndarray]], used: set[tuple[str, str]],
                genes: pd.DataFrame, rng: np.random.Generator, min_genes: int,
                allow_block: bool) -> _Event:
    """Draw a gain or loss of a whole arm, or of a contiguous block of it.

    The arm is chosen among those not in ``used`` (any arm once all are used)
    and is added to ``used``.
    """
    free = [s for s in segments if (s[0], s[1]) not in used] or segments
    chromosome, arm, columns = free[rng.integers(len(free))]
    used.add((chromosome, arm))
    extent = "arm"
    if allow_block and rng.random() < _BLOCK_PROBABILITY:
        size = int(round(rng.uniform(*_BLOCK_FRACTION_RANGE) * columns.size))
        if min_genes <= size < columns.size:
            first = int(rng.integers(columns.size - size + 1))
            columns = columns[first:first + size]
            extent = "block"
    if rng.random() < _GAIN_PROBABILITY:
        change = rng.uniform(*_GAIN_RANGE)
    else:
        change = -rng.uniform(*_LOSS_RANGE)
    starts = genes["start"].to_numpy(dtype=np.int64, na_value=0)[columns]
    ends = genes["end"].to_numpy(dtype=np.int64, na_value=0)[columns]
    return _Event(np.sort(columns), chromosome, arm, int(starts.min()), int(ends.max()),
                  extent, float(change))


def _draw_events(genes: pd.DataFrame, family_of: np.ndarray,
                 rng: np.random.Generator) -> tuple[list[_Event], np.ndarray]:
    """Copy-number events shared by a family or private to a class.

    Returns
    -------
    events : list of _Event
        All events.
    event_frequency : numpy.ndarray
        Shape ``(n_classes, n_events)``: fraction of each class's samples that
        carry each event (0 for classes without it).
    """
    n_classes, n_families = family_of.size, int(family_of.max()) + 1
    min_arm_genes = max(5, len(genes) // 2000)
    segments = _arm_segments(genes, min_arm_genes)
    if not segments:
        return [], np.zeros((n_classes, 0))
    events: list[_Event] = []
    frequencies: list[np.ndarray] = []
    family_arms: list[set[tuple[str, str]]] = [set() for _ in range(n_families)]
    for family in range(n_families):
        for _ in range(_FAMILY_EVENTS):
            events.append(_draw_event(segments, family_arms[family], genes, rng,
                                      min_arm_genes, allow_block=False))
            frequencies.append(np.where(family_of == family,
                                        rng.uniform(*_FAMILY_EVENT_FREQUENCY, n_classes), 0.0))
    low, high = _CLASS_EVENTS_RANGE
    for c in range(n_classes):
        used = set(family_arms[family_of[c]])
        for _ in range(int(rng.integers(low, high + 1))):
            events.append(_draw_event(segments, used, genes, rng, min_arm_genes, allow_block=True))
            frequency = np.zeros(n_classes)
            frequency[c] = rng.uniform(*_CLASS_EVENT_FREQUENCY)
            frequencies.append(frequency)
    return events, np.column_stack(frequencies)


def _loading_matrix(events: list[_Event], driver_columns: np.ndarray, driver_shift: np.ndarray,
                    module_columns: np.ndarray, module_loading: np.ndarray,
                    n_genes: int) -> scipy.sparse.csr_array:
    """Sparse ``(n_factors, n_genes)`` log2 loadings: events, then class drivers, then modules."""
    n_events, n_classes, n_modules = len(events), driver_columns.shape[0], module_columns.shape[0]
    rows = [np.full(event.columns.size, e) for e, event in enumerate(events)]
    cols = [event.columns for event in events]
    weights = [np.full(event.columns.size, event.log2_change) for event in events]
    rows.append(np.repeat(n_events + np.arange(n_classes), driver_columns.shape[1]))
    cols.append(driver_columns.ravel())
    weights.append(driver_shift.ravel())
    rows.append(np.repeat(n_events + n_classes + np.arange(n_modules), module_columns.shape[1]))
    cols.append(module_columns.ravel())
    weights.append(module_loading.ravel())
    return scipy.sparse.csr_array(
        (np.concatenate(weights).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_events + n_classes + n_modules, n_genes))


def _sample_factors(label_index: np.ndarray, sizes: np.ndarray, event_frequency: np.ndarray,
                    module_mean: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample factor activities (matching :func:`_loading_matrix` rows) and size factors.

    Events are present at their class frequency and scaled by the sample's
    tumour purity; drivers are on in a fixed share of each class with a random
    strength; module activity is the class mean plus standard normal noise.
    """
    n_samples, n_classes = label_index.size, sizes.size
    purity = rng.uniform(*_PURITY_RANGE, n_samples)
    carries = rng.random((n_samples, event_frequency.shape[1])) < event_frequency[label_index]
    driver_activity = np.zeros((n_samples, n_classes))
    driver_activity[np.arange(n_samples), label_index] = (
        _drivers_on(label_index, sizes, rng) * rng.uniform(*_DRIVER_ACTIVITY_RANGE, n_samples))
    module_activity = module_mean[label_index] + rng.standard_normal((n_samples, module_mean.shape[1]))
    size_factor = rng.normal(0.0, _SIZE_FACTOR_SD, n_samples).astype(np.float32)
    factors = np.hstack([carries * purity[:, None], driver_activity, module_activity])
    return factors.astype(np.float32), size_factor


def _pick_drivers(pool: np.ndarray, events: list[_Event], event_frequency: np.ndarray,
                  n_driver_genes: int) -> np.ndarray:
    """Driver columns per class, shape ``(n_classes, n_driver_genes)``, sorted per row.

    ``pool`` holds every column once, in order of preference. Genes are taken
    in that order, skipping genes already taken and genes in the class's own
    copy-number events (unless nothing else is left).
    """
    n_classes = event_frequency.shape[0]
    n_genes = pool.size
    taken = np.zeros(n_genes, dtype=bool)
    drivers = np.empty((n_classes, n_driver_genes), dtype=np.int64)
    for c in range(n_classes):
        in_events = np.zeros(n_genes, dtype=bool)
        for e in np.flatnonzero(event_frequency[c] > 0):
            in_events[events[e].columns] = True
        free = pool[~taken[pool]]
        preferred = free[~in_events[free]]
        chosen = np.concatenate([preferred, free[in_events[free]]])[:n_driver_genes]
        taken[chosen] = True
        drivers[c] = np.sort(chosen)
    return drivers


def _drivers_on(label_index: np.ndarray, sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boolean per sample: a random ``_DRIVER_ACTIVE_FRACTION`` of each class (rounded up)."""
    order = np.lexsort((rng.random(label_index.size), label_index))
    class_start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(label_index.size, dtype=np.int64)
    rank[order] = np.arange(label_index.size) - class_start[label_index[order]]
    return rank < np.ceil(_DRIVER_ACTIVE_FRACTION * sizes[label_index])


def _validate(n_samples: int, n_genes: int, n_classes: int, n_modules: int, module_size: int,
              n_driver_genes: int, dtype: np.dtype) -> None:
    """Raise :class:`InputError` for parameter values that cannot make a data set."""
    for name, value, least in [("n_samples", n_samples, 1), ("n_genes", n_genes, 1),
                               ("n_classes", n_classes, 1), ("n_modules", n_modules, 0),
                               ("module_size", module_size, 2), ("n_driver_genes", n_driver_genes, 0)]:
        if int(value) != value or value < least:
            raise InputError(f"{name} must be a whole number of at least {least}; got {value}.")
    if n_samples < n_classes:
        raise InputError(f"n_samples ({n_samples}) must be at least n_classes ({n_classes}).")
    planted = n_modules * module_size + n_classes * n_driver_genes
    if planted > n_genes:
        raise InputError(
            f"n_modules x module_size + n_classes x n_driver_genes = {planted:,} genes, "
            f"more than n_genes ({n_genes:,}).")
    if not np.issubdtype(dtype, np.floating):
        raise InputError(f"dtype must be a floating-point type; got {dtype}.")


def make_synthetic(n_samples: int = 2000, n_genes: int = 20531, n_classes: int = 33,
                   n_modules: int = 50, module_size: int = 40, n_driver_genes: int = 20,
                   seed: int = 0, dtype: np.dtype | type = np.float32) -> SyntheticData:
    """Generate a seeded, synthetic, TCGA-like expression data set.

    The same arguments always give the same data. The gene choice depends only
    on ``seed`` and ``n_genes``; the class structure on those and the class,
    module and driver counts; so adding samples keeps the genes and classes.

    Parameters
    ----------
    n_samples : int
        Number of samples (rows). With ``n_samples >= 20 * n_classes`` every
        class has at least 10 samples.
    n_genes : int
        Number of genes (columns), real annotated genes.
    n_classes : int
        Number of classes, named ``SYN01``, ``SYN02``, ...; grouped in families
        of about four related classes that share copy-number events and module
        activity.
    n_modules : int
        Number of co-expression modules.
    module_size : int
        Genes per module.
    n_driver_genes : int
        Driver genes per class.
    seed : int
        Seed of the random generator.
    dtype : numpy dtype
        Floating dtype of ``values``; generation runs in float32.

    Returns
    -------
    SyntheticData
        Values (samples x genes, raw scale, use ``log2(x + 1)``), ids, labels
        and the planted structure.

    Raises
    ------
    InputError
        If the parameters cannot make a data set (for example more planted
        genes than ``n_genes``).
    """
    dtype = np.dtype(dtype)
    _validate(n_samples, n_genes, n_classes, n_modules, module_size, n_driver_genes, dtype)
    gene_rng, structure_rng, sample_rng, noise_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))

    genes = _choose_genes(n_genes, gene_rng)
    baseline = np.where(gene_rng.random(n_genes) < _LOW_GENE_FRACTION,
                        gene_rng.normal(_LOW_MEAN, _LOW_SD, n_genes),
                        gene_rng.normal(_EXPRESSED_MEAN, _EXPRESSED_SD, n_genes)).astype(np.float32)
    noise_sd = gene_rng.uniform(*_NOISE_SD_RANGE, n_genes).astype(np.float32)

    width = max(2, len(str(n_classes)))
    class_names = [f"SYN{c + 1:0{width}d}" for c in range(n_classes)]
    n_families = max(1, int(round(n_classes / _CLASSES_PER_FAMILY)))
    family_of = structure_rng.permutation(np.arange(n_classes) % n_families)

    events, event_frequency = _draw_events(genes, family_of, structure_rng)

    # Drivers and modules use distinct, well-expressed genes; a class's drivers lie outside
    # its own copy-number regions, so their shift is the driver effect alone.
    expressed = structure_rng.permutation(np.flatnonzero(baseline >= _EXPRESSED_MIN))
    others = structure_rng.permutation(np.flatnonzero(baseline < _EXPRESSED_MIN))
    pool = np.concatenate([expressed, others])
    driver_columns = _pick_drivers(pool, events, event_frequency, n_driver_genes)
    module_pool = pool[~np.isin(pool, driver_columns)]
    module_columns = np.sort(module_pool[:n_modules * module_size].reshape(n_modules, module_size), axis=1)
    driver_shift = structure_rng.uniform(*_DRIVER_SHIFT_RANGE, driver_columns.shape)
    module_loading = structure_rng.uniform(*_MODULE_LOADING_RANGE, module_columns.shape)
    module_mean = (structure_rng.normal(0.0, _MODULE_FAMILY_SD, (n_families, n_modules))[family_of]
                   + structure_rng.normal(0.0, _MODULE_CLASS_SD, (n_classes, n_modules)))

    loadings = _loading_matrix(events, driver_columns, driver_shift, module_columns,
                               module_loading, n_genes)

    sizes = _class_sizes(n_samples, n_classes, sample_rng)
    label_index = sample_rng.permutation(np.repeat(np.arange(n_classes), sizes))
    factors, size_factor = _sample_factors(label_index, sizes, event_frequency, module_mean, sample_rng)
    values = _simulate_values(factors, loadings, baseline, noise_sd, size_factor, noise_rng)
    if values.dtype != dtype:
        values = values.astype(dtype)

    digits = max(6, len(str(n_samples)))
    effects = _effects_table(events, event_frequency, class_names, family_of)
    return SyntheticData(
        values=values,
        sample_ids=np.array([f"synthetic-{i + 1:0{digits}d}" for i in range(n_samples)]),
        gene_ids=genes["gene_id"].to_numpy().astype(str),
        labels=np.asarray(class_names)[label_index],
        modules={f"module_{m + 1:02d}": module_columns[m] for m in range(n_modules)},
        driver_genes={class_names[c]: driver_columns[c] for c in range(n_classes)},
        chromosome_arm_effects=effects,
        description=_describe(n_samples, n_genes, n_classes, n_families, n_modules, module_size,
                              n_driver_genes, len(effects), seed, sizes),
    )


def _simulate_values(factors: np.ndarray, loadings: scipy.sparse.csr_array, baseline: np.ndarray,
                     noise_sd: np.ndarray, size_factor: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Fill the float32 matrix chunk by chunk: ``2**(baseline + factors @ loadings + noise) - 1``.

    The noise is drawn straight into the output rows, so the only other
    temporary is one chunk of ``factors @ loadings``. The chunk size depends
    on the number of genes only, which keeps the result independent of memory.
    """
    n_samples, n_genes = factors.shape[0], baseline.size
    values = np.empty((n_samples, n_genes), dtype=np.float32)
    chunk = max(1, _CHUNK_ELEMENTS // n_genes)
    for first in range(0, n_samples, chunk):
        rows = slice(first, min(first + chunk, n_samples))
        block = values[rows]
        rng.standard_normal(out=block, dtype=np.float32)
        block *= noise_sd
        block += baseline
        block += size_factor[rows, None]
        block += factors[rows] @ loadings
        np.exp2(block, out=block)
        block -= 1.0
        np.maximum(block, 0.0, out=block)
    return values


def _effects_table(events: list[_Event], event_frequency: np.ndarray, class_names: list[str],
                   family_of: np.ndarray) -> pd.DataFrame:
    """One row per (class, event) the class can carry, in class then genome order."""
    records = []
    for c, name in enumerate(class_names):
        for e in np.flatnonzero(event_frequency[c] > 0):
            event = events[e]
            records.append({
                "label": name, "family": f"family {family_of[c] + 1}",
                "chromosome": event.chromosome, "arm": event.arm,
                "start": event.start, "end": event.end, "n_genes": int(event.columns.size),
                "extent": event.extent, "kind": "gain" if event.log2_change > 0 else "loss",
                "log2_change": round(event.log2_change, 3),
                "frequency": round(float(event_frequency[c, e]), 3),
            })
    table = pd.DataFrame.from_records(records, columns=_EFFECT_COLUMNS)
    table["rank"] = chromosome_sort_key(table["chromosome"])
    table = table.sort_values(["label", "rank", "start"], kind="stable").drop(columns="rank")
    return table.reset_index(drop=True)


def _describe(n_samples: int, n_genes: int, n_classes: int, n_families: int, n_modules: int,
              module_size: int, n_driver_genes: int, n_effects: int, seed: int,
              sizes: np.ndarray) -> str:
    """Write the plain-language description that travels with the data."""
    return (
        f"SYNTHETIC data, not measured: {n_samples:,} simulated samples x {n_genes:,} genes in "
        f"{n_classes} synthetic classes (SYN..., {sizes.min()}-{sizes.max()} samples each), made by "
        f"rnaimg_core.synthetic.make_synthetic(seed={seed}). Genes are real (SYMBOL|ENTREZ from the "
        f"shipped GRCh38 annotation) but their values are simulated. Planted structure: "
        f"{n_effects} class copy-number gains and losses of whole chromosome arms or large "
        f"blocks of neighbouring genes (shared within {n_families} families of related classes, "
        f"present in part of each class and scaled by a simulated tumour purity); "
        f"{n_modules} co-expression modules of {module_size} genes; {n_driver_genes} driver genes "
        f"per class raised in that class only; log-normal gene baselines and noise. "
        f"Values are on a raw TPM-like scale: use log2(x + 1)."
    )


def make_synthetic_small(seed: int = 0) -> SyntheticData:
    """Make a small synthetic set for fast tests: 300 samples x 2,000 genes, 6 classes.

    Parameters
    ----------
    seed : int
        Seed of the random generator.

    Returns
    -------
    SyntheticData
        With 10 modules of 30 genes and 10 driver genes per class.
    """
    return make_synthetic(n_samples=300, n_genes=2000, n_classes=6, n_modules=10,
                          module_size=30, n_driver_genes=10, seed=seed)
