"""Layout -> Layout: stack layouts as channels, split one over channels, permutation controls.

Each operation keeps what it does not change (genes, normalisation, fit
samples) through :meth:`Layout.replace`, and reports the basic quality counts
of the new geometry. Fitted layouts go in, layouts come out; nothing is refitted.

* :func:`stack_layouts`: fitted layouts of the same genes, one after the other
  along the channel axis (the ``stack`` generator does the same at fit time).
* :func:`split_channels`: each gene of a one-channel layout to the channel of its group.
* :func:`permutation_control`: the same pixels with the genes shuffled (the ``random`` generator's ``like``).
* :func:`pixel_shuffle_control`: whole pixels moved to random places (genes sharing a pixel stay together).
* :func:`within_group_control`: genes shuffled only among the pixels of their own group (e.g. chromosome).
* :func:`group_order_control`: the groups' runs of pixels (e.g. chromosomes) in a random order, each run intact.

The last three are the layout check's structured controls (:mod:`rnaimg_core.compare`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rnaimg_core.errors import InputError
from rnaimg_core.layout import Layout, basic_quality, cell_pixels, flat_pixels, pixel_coordinates

__all__ = ["group_order_control", "permutation_control", "pixel_shuffle_control", "split_channels", "stack_geometry",
           "stack_layouts", "within_group_control"]


def _derived(layout: Layout, **changes) -> Layout:
    """``layout.replace(**changes)``, stamped with this rnaimg version, with its basic quality counts."""
    changes.setdefault("fit_sample_ids", list(layout.fit_sample_ids))
    derived = layout.replace(rnaimg_version="", **changes)
    derived.quality = basic_quality(derived)
    return derived


def stack_geometry(shapes: Sequence[Sequence[int]], pixels: Sequence[np.ndarray], names: Sequence[str]
                   ) -> tuple[tuple[int, int, int], np.ndarray, list[dict]]:
    """Flat pixels of several images stacked along channels, each padded to the largest height and width.

    Parameters
    ----------
    shapes : (C, H, W) of each image
    pixels : flat pixel indices in each image
    names : name of each image, for its regions

    Returns
    -------
    shape : (sum of C, max H, max W)
    pixel : ndarray of int64, all pixels moved into the stacked image (same row and column), concatenated
    regions : one region per channel, covering the image it came from, named after it
    """
    if not shapes:
        raise InputError("Nothing to stack: give at least one layout.")
    shape = (sum(s[0] for s in shapes), max(s[1] for s in shapes), max(s[2] for s in shapes))
    moved, regions = [], []
    offset = 0
    for old_shape, old_pixels, name in zip(shapes, pixels, names):
        channel, row, col = pixel_coordinates(old_shape, old_pixels)
        moved.append(flat_pixels(shape, channel + offset, row, col))
        for channel in range(old_shape[0]):
            regions.append({"name": name, "channel": offset + channel,
                            "rows": [0, old_shape[1] - 1], "cols": [0, old_shape[2] - 1]})
        offset += old_shape[0]
    return shape, np.concatenate(moved), regions


def stack_layouts(layouts: Sequence[Layout]) -> Layout:
    """One multi-channel layout from fitted layouts of the same genes, channel blocks in order.

    The layouts must share their genes and normalisation (fit them on the same
    samples with the same ``log``/``scale``); the first one's reduce rule is kept.

    Parameters
    ----------
    layouts : fitted layouts, stacked in this order

    Returns
    -------
    Layout with generator ``"stack"``
    """
    names = [lay.generator for lay in layouts]
    shape, pixel, regions = stack_geometry([lay.shape for lay in layouts],
                                           [lay.placement_pixel for lay in layouts], names)
    first = layouts[0]
    for other in layouts[1:]:
        differing = first.differences(other)
        if "genes" in differing:
            raise InputError("Only layouts of the same genes, in the same order, can be stacked.")
        if "normalisation" in differing:
            raise InputError("Layouts fitted with different normalisations (samples, log or scale) "
                             "cannot be stacked; fit them on the same samples with the same settings.")
    return _derived(first, generator="stack", params={"layers": names}, shape=shape,
                    placement_gene=np.concatenate([lay.placement_gene for lay in layouts]),
                    placement_pixel=pixel, regions=regions, notes={"layers": list(names)})


def split_channels(layout: Layout, groups: np.ndarray, group_names: Sequence[str] | None = None) -> Layout:
    """Move each placement of a one-channel layout to the channel of its gene's group.

    Parameters
    ----------
    layout : a fitted layout with one channel
    groups : ndarray of int, shape (n_genes,), channel per gene (0 .. k-1)
    group_names : optional name per channel, for the regions

    Returns
    -------
    Layout with shape (k, H, W): pixel positions unchanged, channels by group
    """
    if layout.shape[0] != 1:
        raise InputError("split_channels expects a one-channel layout.")
    groups = np.asarray(groups, dtype=np.int64)
    if groups.shape != (layout.n_genes,) or groups.min() < 0:
        raise InputError("groups must give a channel (0 or more) for every gene of the layout.")
    k = int(groups.max()) + 1
    _, h, w = layout.shape
    names = group_names or [f"group {i}" for i in range(k)]
    # one channel: every placement pixel is a cell of the grid, moved to its gene's channel
    return _derived(layout, params={**layout.params, "split_channels": k}, shape=(k, h, w),
                    placement_pixel=cell_pixels((k, h, w), groups[layout.placement_gene], layout.placement_pixel),
                    notes=dict(layout.notes),
                    regions=[{"name": str(names[i]), "channel": i, "rows": [0, h - 1], "cols": [0, w - 1]}
                             for i in range(k)])


def permutation_control(layout: Layout, seed: int = 0) -> Layout:
    """A control of a fitted layout: its placements' genes shuffled over the same pixels.

    Shape, genes, genes-per-pixel counts and normalisation stay the same; only
    which gene sits where is random.

    Parameters
    ----------
    layout : the fitted layout to imitate
    seed : seed of the permutation

    Returns
    -------
    Layout with generator ``"random"`` and no regions
    """
    rng = np.random.default_rng(seed)
    gene = layout.placement_gene[rng.permutation(layout.placement_gene.size)]
    return _derived(layout, generator="random", params={"like_generator": layout.generator, "seed": seed},
                    seed=seed, placement_gene=gene, placement_pixel=layout.placement_pixel.copy(),
                    notes={"control_of": layout.generator}, regions=[])


def _control(layout: Layout, kind: str, seed: int, gene: np.ndarray, pixel: np.ndarray) -> Layout:
    return _derived(layout, generator="random", params={"like_generator": layout.generator, "seed": seed,
                                                        "control": kind},
                    seed=seed, placement_gene=gene, placement_pixel=pixel,
                    notes={"control_of": layout.generator, "control": kind}, regions=[])


def pixel_shuffle_control(layout: Layout, seed: int = 0) -> Layout:
    """A control that keeps which genes share a pixel: every pixel moved, whole, to a random place.

    For layouts that pool several genes on one pixel (SOM, nearest-pixel DeepInsight)
    the gain of averaging co-expressed genes stays in this control, so only the
    arrangement of the pixels differs from the layout. Empty pixels move too; the
    channel count and image size stay.
    """
    rng = np.random.default_rng(seed)
    moved = rng.permutation(layout.n_pixels)
    return _control(layout, "pixels shuffled", seed, layout.placement_gene.copy(), moved[layout.placement_pixel])


def _group_codes(layout: Layout, gene_groups: Sequence) -> np.ndarray:
    groups = np.asarray(gene_groups).astype(str)
    if groups.shape != (layout.n_genes,):
        raise ValueError(f"gene_groups must give one group per layout gene ({layout.n_genes}), got {groups.shape}")
    return groups[layout.placement_gene]


def within_group_control(layout: Layout, gene_groups: Sequence, seed: int = 0) -> Layout:
    """Genes shuffled only among the pixels of their own group (e.g. within each chromosome).

    Keeps the genome-scale blocks of a chromosome layout (each chromosome covers the
    same pixels) and breaks the local order inside each block.

    Parameters
    ----------
    layout : the fitted layout
    gene_groups : one group name per layout gene (``layout.gene_ids`` order), e.g. its chromosome
    seed : seed of the shuffles
    """
    rng = np.random.default_rng(seed)
    groups = _group_codes(layout, gene_groups)
    gene = layout.placement_gene.copy()
    for name in np.unique(groups):
        where = np.flatnonzero(groups == name)
        gene[where] = gene[where[rng.permutation(where.size)]]
    return _control(layout, "genes shuffled within groups", seed, gene, layout.placement_pixel.copy())


def group_order_control(layout: Layout, gene_groups: Sequence, seed: int = 0) -> Layout:
    """The groups' runs in a random order, each run kept intact (e.g. whole chromosomes shuffled).

    The placements are read in pixel order (channel, row, column); each maximal run of
    one group is a block, the blocks are put in a random order and written back onto the
    same pixel sequence. Local order inside every block survives; where a block lies
    in the image does not.
    """
    rng = np.random.default_rng(seed)
    order = np.argsort(layout.placement_pixel, kind="stable")
    groups = _group_codes(layout, gene_groups)[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    blocks = np.split(layout.placement_gene[order], starts[1:])
    shuffled = np.concatenate([blocks[i] for i in rng.permutation(len(blocks))]) if blocks else order
    return _control(layout, "groups in random order", seed, shuffled, layout.placement_pixel[order])
