"""Power of the layout check on the user's own data: plant a known local signal and see whether it is found.

A "no evidence it helps" means little without what the check *could* have seen.
:func:`plant_block` raises a block of neighbouring genes (a square window of the
layout's image) in one class of the user's own normalised matrix, labels unchanged;
:func:`power_statement` turns the check's answers on such planted matrices, at a
few strengths, into the sentence a biologist reads. The layout check
(:func:`rnaimg_core.compare.check_layouts`) runs the planting with its pooled probe
on the same folds as the real check.
"""

from __future__ import annotations

import numpy as np

from rnaimg_core.layout import Layout

__all__ = ["BLOCK_SHARE", "CEILING", "PLANT_STRENGTHS", "block_genes", "plant_block", "power_statement"]

PLANT_STRENGTHS = (0.1, 0.2, 0.35, 0.6, 1.0)   # per-gene shift, in standard deviations of the gene
BLOCK_SHARE = 0.02                              # the block holds about 2 % of the placed genes ...
BLOCK_GENES = (36, 256)                         # ... and between 36 (a 6 x 6 window) and 256 genes
CEILING = 0.98                                  # balanced accuracy above which no arrangement can add much


def block_genes(layout: Layout, *, seed: int = 0, share: float = BLOCK_SHARE,
                limits: tuple[int, int] = BLOCK_GENES) -> np.ndarray:
    """Genes of a square window of the layout's image: a contiguous block of neighbouring genes.

    The window's top-left corner is drawn (seeded) among the placed pixels of the first
    channel that holds genes, and the window grows until it holds about ``share`` of the
    placed genes (within ``limits``) or covers the image.

    Returns
    -------
    ndarray of int64: gene indices (``layout.gene_ids`` order), sorted
    """
    channel, row, col = layout.placement_coordinates()
    placed = np.unique(layout.placement_gene)
    target = int(np.clip(round(share * placed.size), limits[0], limits[1]))
    target = min(target, placed.size)
    first = int(channel.min()) if channel.size else 0
    in_channel = channel == first
    rng = np.random.default_rng(seed)
    _, h, w = layout.shape
    pick = rng.choice(np.flatnonzero(in_channel))
    side = 1
    while True:
        r0 = int(min(row[pick], max(0, h - side)))
        c0 = int(min(col[pick], max(0, w - side)))
        inside = in_channel & (row >= r0) & (row < r0 + side) & (col >= c0) & (col < c0 + side)
        genes = np.unique(layout.placement_gene[inside])
        if genes.size >= target or side >= max(h, w):
            return genes.astype(np.int64)
        side += 1


def plant_block(normalised: np.ndarray, genes: np.ndarray, rows: np.ndarray, strength: float,
                reference_rows: np.ndarray) -> np.ndarray:
    """A copy of a normalised matrix (n, g) with ``genes`` raised by ``strength`` SD in ``rows``.

    Each gene's standard deviation is taken over ``reference_rows`` (the training samples),
    so the planted shift is the same in every fold's units whatever the normalisation.
    """
    planted = np.array(normalised, dtype=np.float32, copy=True)
    spread = planted[np.ix_(reference_rows, genes)].std(axis=0)
    spread[~(spread > 0)] = 1.0
    planted[np.ix_(rows, genes)] += np.float32(strength) * spread.astype(np.float32)
    return planted


def power_statement(power: dict) -> str:
    """The plain-language power sentence of one generator's planting (see :func:`rnaimg_core.compare`)."""
    if not power or not power.get("strengths"):
        return "Power was not measured (no pooled-probe folds)."
    width = power.get("interval_half_width")
    wide = "" if width is None else f" Its difference interval is ±{width:.2f} balanced accuracy wide."
    where = (f"{power['n_genes']} neighbouring genes of class {power['planted_class']}")
    found = power.get("smallest_detected")
    if found is not None:
        return (f"On your data this check would have found an arrangement effect of {found['difference']:+.2f} "
                f"or more (a planted rise of {found['strength']:g} SD per gene in {where} was found).{wide}")
    last = power["strengths"][-1]
    if power.get("ceiling"):
        return (f"On these labels the check could not have found any arrangement effect: the models already "
                f"separate the classes (balanced accuracy {power['ceiling_score']:.2f}), so there is no room left "
                f"(a planted rise of {last['strength']:g} SD per gene in {where} changed the difference by only "
                f"{last['difference']:+.2f}).{wide}")
    return (f"On your data this check could not have found an arrangement effect below {last['difference']:+.2f}: "
            f"even a planted rise of {last['strength']:g} SD per gene in {where} went undetected. Add samples, "
            f"or use more folds and repeats.{wide}")
