"""Chromosome location layout (Lyu & Haque 2018): genes in genome order, row by row."""

from __future__ import annotations

import numpy as np

from rnaimg_core.annotation import CHROMOSOMES, NUCLEAR_CHROMOSOMES, chromosome_sort_key
from rnaimg_core.errors import InputError
from rnaimg_core.generators._grid import ONE_PER_PIXEL_ASSIGNMENT_PARAM, fill_row_major, size_params
from rnaimg_core.generators.base import FitData, Generator, Param, Placement
from rnaimg_core.normalize import count_check

PRESETS = ("rnaimg", "lyu_haque_code", "lyu_haque_paper")
LYU_HAQUE_PRESETS = ("lyu_haque_code", "lyu_haque_paper")
OLD_PRESET_NAMES = {"lyu_haque": "lyu_haque_paper"}  # what "lyu_haque" meant before the code variant existed
LYU_HAQUE_SIDE = 102
LYU_HAQUE_MIN_VARIANCE = 1.2  # the paper's threshold on the variance of log2(1+x)
LYU_HAQUE_CODE_VARIANCE = 6.0  # preprocessing_th1.py: VarianceThreshold(threshold=6) keeps variance > 6
LYU_HAQUE_CODE_FLOOR = 1.0  # preprocessing_th1.py: features[features <= 1] = 0 after log2(1 + x)
FEW_GENES_SHARE = 0.25  # warn when a variance filter keeps less than this share of the genes


class ChromosomeGenerator(Generator):
    """Genes by chromosome (1-22, X, Y) and start position, row by row (Lyu & Haque 2018).

    Parameters are keyword arguments, checked on construction and kept in ``params``
    (``rnaimg generators`` lists them with defaults and ranges): ``height``, ``width``,
    ``channels`` (0: the smallest square), ``include_mt``, ``preset`` (``"rnaimg"`` or Lyu &
    Haque's released recipe ``"lyu_haque"``), ``assignment``, and the common normalisation
    parameters ``log``, ``depth``, ``scale``, ``reduce`` and ``seed``.

    Examples
    --------
    >>> layout = ChromosomeGenerator(preset="lyu_haque").fit(expression)  # doctest: +SKIP
    """

    name = "chromosome"
    title = "Chromosome location"
    description = ("Genes ordered by chromosome (1-22, X, Y) and start position, filled row by row into "
                   "the smallest square image; neighbouring pixels are neighbouring genes.")
    reference = ("Lyu B, Haque A (2018). Deep learning based tumor type classification using gene "
                 "expression data. ACM-BCB '18, 89-96. doi:10.1145/3233547.3233588")
    guide = """
**How it decides a gene's pixel.** Every gene is looked up in the shipped GRCh38 annotation, sorted
by chromosome (1 to 22, then X, then Y) and by start position, and written into the image left to
right, top to bottom. Genes without a known position (and, by default, mitochondrial genes) are
dropped and counted. Genes that sit next to each other on a chromosome, and that often share
regulation or copy-number changes, end up next to each other in the image, so a CNN's small filters
see whole chromosome segments. Lyu & Haque used this layout on TCGA (10,267 samples, 33 tumour
types) and reached about 95 % accuracy.

**What to tune.** *height*/*width* (0 = smallest square), *channels* to split the genome over several
channels, *include_mt* to keep mitochondrial genes at the end.

**Lyu & Haque's recipe, two ways.** The paper (TCGA pan-cancer, 20,531 genes) describes
log2(1+x), genes with variance below 1.2 dropped (10,381 remained), genes in chromosome order in a
fixed 102 x 102 image, each sample divided by its own maximum. Their released code
(`preprocessing_th1.py` in BoyuLyu/DL-based-Tumor-Classification) differs in the details, and
*preset* offers both:

- *lyu_haque_code*, the released code exactly: log2(1+x); every value at or below 1 after the log set
  to 0 (for new samples too); genes of the annotation kept whether or not they have a position; sorted
  by the chromosome field **as text** (1, 10, 11, ..., 19, 2, 20, ..., 9, MT, X, Y) with the file's
  column order kept within a chromosome (no positions); `VarianceThreshold(threshold=6)`: genes whose
  variance is above 6 kept; written row by row into 102 x 102 and each sample divided by its maximum.
  One difference on purpose: their filter sees every sample before the folds are drawn; here it
  is fitted on the training samples only, so held-out samples do not choose the genes. Their
  input was RSEM-normalised values, so depth scaling stays off (*depth = auto* means none here;
  *depth = cpm* scales raw counts first).
- *lyu_haque_paper*, the paper's numbers with rnaimg's gene order: genes with a GRCh38 position in
  chromosome order (1-22, X, Y) and by start, variance of log2(1+x) at least 1.2 over the training
  samples, 102 x 102, each sample divided by its largest placed gene. (*lyu_haque* is its old name.)

In both, if more genes pass than the 10,404 pixels hold, the most variable ones are kept. Their
variance thresholds are absolute, set for TCGA's 20,531 genes; on a small matrix they can leave
few genes (332 of 3,899 on a colorectal cohort with the code's 6), and the layout notes then warn.
The default (*rnaimg*) keeps every positioned gene, uses the smallest square that holds them, and
scales each gene rather than each sample (z-score over the training samples), so a pixel says how
high the gene is in this sample compared with the other samples, not compared with the sample's
most expressed gene; log2(1+x) applies when the values look raw and counts are first scaled to
counts per million (*depth = auto*).

**What to look for.** Copy-number changes show as bands: in oligodendroglioma, the 1p/19q
co-deletion dims the chromosome 1p and 19q stretches.
"""
    parameters = (
        *size_params("Number of channels the genome is split over, in order.",
                     height="Image height in pixels (0 = automatic smallest square)."),
        Param("include_mt", False, "Also place mitochondrial genes (after Y)."),
        Param("preset", "rnaimg", "rnaimg: every positioned gene, smallest square; lyu_haque_code: Lyu & Haque's "
              "released code (log2(1+x) with values <= 1 set to 0, chromosome sorted as text, variance above 6, "
              "102 x 102, each sample divided by its maximum); lyu_haque_paper: the paper's numbers (variance of "
              "log2(1+x) at least 1.2, genome order, 102 x 102, each sample divided by its maximum). Both set "
              "scale to sample_max.", choices=PRESETS),
        ONE_PER_PIXEL_ASSIGNMENT_PARAM,
    )

    def __init__(self, **params) -> None:
        if params.get("preset") in OLD_PRESET_NAMES:  # layouts and sessions saved before the two variants
            params["preset"] = OLD_PRESET_NAMES[params["preset"]]
        super().__init__(**params)
        p = self.params
        if p["preset"] in LYU_HAQUE_PRESETS:
            # their values: log2(1+x), then each sample divided by its maximum (recorded in the layout's params)
            p["scale"] = "sample_max"
        self._depth_by_preset = p["preset"] == "lyu_haque_code" and p["depth"] == "auto"
        if p["preset"] == "lyu_haque_code":
            # their code takes log2(1+x) of the values as given (RSEM-normalised): auto means that here
            p["log"] = "yes" if p["log"] == "auto" else p["log"]
            p["depth"] = "none" if p["depth"] == "auto" else p["depth"]

    def normalization_floor(self) -> float | None:
        return LYU_HAQUE_CODE_FLOOR if self.params["preset"] == "lyu_haque_code" else None

    def place(self, data: FitData) -> Placement:
        if self.params["preset"] == "lyu_haque_code":
            if self._depth_by_preset:
                data.normalization.depth_reason_ = ("preset lyu_haque_code: their code takes the values as given "
                                                    "(their input was RSEM-normalised); depth=cpm scales counts first")
            return self._place_as_their_code(data)
        p = self.params
        genes = data.genes
        chromosomes = genes["chromosome"].astype(str).to_numpy()
        allowed = NUCLEAR_CHROMOSOMES + (("MT",) if p["include_mt"] else ())
        rank = chromosome_sort_key(genes["chromosome"])
        has_position = genes["start"].notna().to_numpy() & np.isin(chromosomes, allowed)
        keep = np.flatnonzero(has_position)
        n_positioned = int(keep.size)
        notes: dict = {}
        if p["preset"] == "lyu_haque_paper" and keep.size:
            variance = data.logged_values(keep).var(axis=0, dtype=np.float64)
            keep, notes = _variance_filter(keep, variance, variance >= LYU_HAQUE_MIN_VARIANCE,
                                           f"variance of log2(1+x) at least {LYU_HAQUE_MIN_VARIANCE}")
        if keep.size == 0:
            raise InputError(_nothing_left(n_positioned, "have a chromosome position", notes))
        starts = genes["start"].to_numpy(dtype=float, na_value=np.nan)
        order = keep[np.lexsort((keep, starts[keep], rank[keep]))]
        side = (LYU_HAQUE_SIDE, LYU_HAQUE_SIDE) if p["preset"] in LYU_HAQUE_PRESETS else (p["height"], p["width"])
        placement = fill_row_major(order, side[0], side[1], p["channels"])
        placement.regions = _chromosome_regions(chromosomes[order], placement.shape)
        no_position = np.flatnonzero(~has_position)
        placement.notes = {
            "n_dropped_no_position": int(no_position.size),
            "dropped_examples": genes["gene_id"].to_numpy()[no_position[:10]].tolist(),
            "order": "chromosome 1-22, X, Y" + (", MT" if p["include_mt"] else "") + "; then start (GRCh38)",
            **notes,
        }
        return placement

    def _place_as_their_code(self, data: FitData) -> Placement:
        """Lyu & Haque's ``feature_selection`` and ``embedding_2d``: annotation genes, chromosome as text,
        input order within a chromosome, variance above 6 (on the training samples), 102 x 102."""
        genes = data.genes
        chromosomes = genes["chromosome"].astype(str).to_numpy()
        in_annotation = np.flatnonzero(np.isin(chromosomes, CHROMOSOMES))
        # Python's sorted() on the chromosome text is stable: the input order stays within a chromosome
        by_text = in_annotation[np.argsort(chromosomes[in_annotation], kind="stable")]
        notes: dict = {}
        if by_text.size:
            variance = data.logged_values(by_text).var(axis=0, dtype=np.float64)  # after the floor, as theirs
            by_text, notes = _variance_filter(by_text, variance, variance > LYU_HAQUE_CODE_VARIANCE,
                                              f"variance above {LYU_HAQUE_CODE_VARIANCE:g}, their VarianceThreshold")
        if by_text.size == 0:
            raise InputError(_nothing_left(int(in_annotation.size), "have a chromosome in the annotation", notes))
        placement = fill_row_major(by_text, LYU_HAQUE_SIDE, LYU_HAQUE_SIDE, 1)
        placement.regions = _chromosome_regions(chromosomes[by_text], placement.shape)
        no_chromosome = np.setdiff1d(np.arange(data.n_genes), in_annotation)
        check = count_check(data.expression.values[data.train_index])
        if check.counts and not data.normalization.depth_applied_:
            notes["warning_depth"] = (f"These values look like counts ({check.reason}). Lyu & Haque's code takes "
                                      "values as given (their input was RSEM-normalised), so sequencing depth will "
                                      "show in the images' brightness; set depth=cpm to scale each sample first.")
        placement.notes = {
            "n_dropped_no_chromosome": int(no_chromosome.size),
            "dropped_examples": genes["gene_id"].to_numpy()[no_chromosome[:10]].tolist(),
            "order": "chromosome name as text (1, 10, 11, ..., 19, 2, 20, ..., 9, MT, X, Y), then the input's "
                     "column order (Lyu & Haque's code: no positions)",
            "values": "log2(1+x), values <= 1 set to 0, each sample divided by its maximum",
            "variance_filter_fitted_on": "training samples only (their code: every sample, before the folds)",
            **notes,
        }
        return placement


def _variance_filter(genes: np.ndarray, variance: np.ndarray, informative: np.ndarray,
                     rule: str) -> tuple[np.ndarray, dict]:
    """Genes passing a variance filter (at most the 102 x 102 pixels: then the most variable), and its notes.

    The notes count the genes left out for low variance (their own note, apart from genes without a
    position) and warn when the absolute threshold leaves few genes.
    """
    n_in = int(genes.size)
    n_passed = int(informative.sum())
    notes: dict = {"variance_filter": rule, "n_dropped_low_variance": n_in - n_passed}
    if n_passed > LYU_HAQUE_SIDE ** 2:  # more informative genes than pixels: keep the most variable ones
        informative = np.zeros(n_in, dtype=bool)
        informative[np.argsort(-variance, kind="stable")[:LYU_HAQUE_SIDE ** 2]] = True
        notes["n_dropped_over_capacity"] = n_passed - LYU_HAQUE_SIDE ** 2
    if n_passed < FEW_GENES_SHARE * n_in:
        notes["warning"] = (f"The variance filter ({rule}) kept {n_passed:,} of {n_in:,} genes "
                            f"({100 * n_passed / max(1, n_in):.1f} %). Its threshold is absolute, set for TCGA's "
                            "20,531 genes (where about half pass); on this matrix most of the 102 x 102 image "
                            "stays empty. The default preset keeps every positioned gene.")
    return genes[informative], notes


def _nothing_left(n_candidates: int, what: str, notes: dict) -> str:
    if n_candidates and notes:
        return (f"No gene passed the variance filter ({notes['variance_filter']}): all {n_candidates:,} genes that "
                f"{what} vary less. Use the default preset, or check that the values are not already scaled.")
    return (f"No gene {what} in the annotation; the chromosome layout cannot be built. Check the gene ids "
            "(symbols, Entrez, Ensembl, RefSeq/ENST transcripts or SYMBOL|ENTREZ), or give a gene map for probes.")


def _chromosome_regions(sorted_chromosomes: np.ndarray, shape: tuple[int, int, int]) -> list[dict]:
    """One region per chromosome: the run of row-major pixels it fills, per channel."""
    c, h, w = shape
    n = sorted_chromosomes.size
    per_channel = int(np.ceil(n / c))
    change = np.flatnonzero(sorted_chromosomes[1:] != sorted_chromosomes[:-1]) + 1
    bounds = np.concatenate(([0], change, [n]))
    regions = []
    for first, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        name = "chr" + str(sorted_chromosomes[first])
        # a chromosome may straddle two channels: split its run at the boundary
        for channel in range(first // per_channel, (stop - 1) // per_channel + 1):
            lo = max(first, channel * per_channel) - channel * per_channel
            hi = min(stop, (channel + 1) * per_channel) - 1 - channel * per_channel
            regions.append({"name": name, "channel": channel, "first": lo, "last": hi})
    return regions
