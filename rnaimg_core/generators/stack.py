"""Multi-channel images: stack layouts, or split one layout's genes over channels.

* :func:`stack_layouts` puts fitted layouts (same genes) into one image, one
  after the other along the channel axis, padding smaller ones.
* :class:`StackGenerator` (registry name ``stack``) fits several generators on
  the same training samples and stacks them, from the command line:
  ``--set layers=chromosome,deepinsight``.
* :func:`split_channels` moves each gene of a layout to the channel of its group
  (for example chromosome-arm groups), keeping its pixel.
* :func:`channel_groups` decides those groups; the embedding generators use it
  for their ``channels`` / ``channel_by`` parameters.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from rnaimg_core.errors import InputError
from rnaimg_core.generators.base import FitData, Generator, Param, Placement
from rnaimg_core.layout import Layout

_CHROMOSOME_RANK = {str(i): i for i in range(1, 23)} | {"X": 23, "Y": 24, "MT": 25}
_ARM = re.compile(r"^(?:\d{1,2}|X|Y)([pq])")


def arm_rank(genes) -> np.ndarray:
    """Genome-order rank of each gene's chromosome arm (1p=2, 1q=3, ...); 1000 when unknown.

    Parameters
    ----------
    genes : DataFrame with ``chromosome`` and ``cytoband`` columns
    """
    chromosomes = genes["chromosome"].astype(str).to_numpy()
    bands = genes["cytoband"].fillna("").astype(str).to_numpy()
    ranks = np.full(len(chromosomes), 1000, dtype=np.int64)
    for i, (chromosome, band) in enumerate(zip(chromosomes, bands)):
        base = _CHROMOSOME_RANK.get(chromosome)
        if base is None:
            continue
        match = _ARM.match(band)
        arm = 1 if (match is not None and match.group(1) == "q") else 0
        ranks[i] = 2 * base + arm
    return ranks


def channel_groups(data: FitData, genes: np.ndarray, n_channels: int, by: str) -> np.ndarray:
    """Channel (0 .. n_channels-1) of each gene in ``genes``.

    Parameters
    ----------
    data : FitData
    genes : gene column indices
    n_channels : number of channels
    by : ``"arm"``: whole chromosome arms in genome order, cut into groups of
        about equal gene counts (genes without a position go to the last
        channel); ``"variance"``: tiers of decreasing variance over the training
        samples (channel 0 holds the most variable genes).

    Returns
    -------
    ndarray of int64, shape (len(genes),)
    """
    genes = np.asarray(genes, dtype=np.int64)
    if n_channels == 1:
        return np.zeros(genes.size, dtype=np.int64)
    if genes.size < n_channels:
        raise InputError(f"Cannot split {genes.size} genes over {n_channels} channels.")
    if by == "variance":
        raw = data.expression.values[data.train_index][:, genes]
        variance = data.normalization._log(raw).var(axis=0)
        rank = np.empty(genes.size, dtype=np.int64)
        rank[np.argsort(-variance, kind="stable")] = np.arange(genes.size)
        return rank * n_channels // genes.size
    if by == "arm":
        ranks = arm_rank(data.genes.iloc[genes])
        known = ranks < 1000
        groups = np.full(genes.size, n_channels - 1, dtype=np.int64)
        if known.any():
            arms, counts = np.unique(ranks[known], return_counts=True)
            middle = np.cumsum(counts) - counts / 2  # each arm goes where its middle falls
            arm_group = np.minimum((middle / counts.sum() * n_channels).astype(np.int64), n_channels - 1)
            groups[known] = arm_group[np.searchsorted(arms, ranks[known])]
        return groups
    raise InputError(f"channel_by must be 'arm' or 'variance', not {by!r}.")


def _move(pixels: np.ndarray, old_shape: Sequence[int], new_shape: Sequence[int], channel_offset: int) -> np.ndarray:
    """Flat pixels of ``old_shape`` re-indexed into ``new_shape`` (same row/column, shifted channel)."""
    _, h, w = old_shape
    _, nh, nw = new_shape
    channel, rest = np.divmod(np.asarray(pixels, dtype=np.int64), h * w)
    row, col = np.divmod(rest, w)
    return (channel + channel_offset) * nh * nw + row * nw + col


def stack_placements(placements: Sequence[Placement], names: Sequence[str] | None = None) -> Placement:
    """Stack placements along channels, padding each to the largest height and width."""
    if not placements:
        raise InputError("Nothing to stack: give at least one layout.")
    height = max(p.shape[1] for p in placements)
    width = max(p.shape[2] for p in placements)
    channels = sum(p.shape[0] for p in placements)
    shape = (channels, height, width)
    genes, pixels, regions = [], [], []
    offset = 0
    for i, placement in enumerate(placements):
        genes.append(np.asarray(placement.gene, dtype=np.int64))
        pixels.append(_move(placement.pixel, placement.shape, shape, offset))
        name = names[i] if names is not None else f"layer {i}"
        for channel in range(placement.shape[0]):
            regions.append({"name": name, "channel": offset + channel,
                            "rows": [0, placement.shape[1] - 1], "cols": [0, placement.shape[2] - 1]})
        offset += placement.shape[0]
    return Placement(shape=shape, gene=np.concatenate(genes), pixel=np.concatenate(pixels), regions=regions)


def stack_layouts(layouts: Sequence[Layout]) -> Layout:
    """One multi-channel layout from fitted layouts of the same genes, channel blocks in order.

    The layouts must share their genes and normalisation (fit them on the same
    samples with the same ``log``/``scale``); the first one's reduce rule is kept.
    """
    if not layouts:
        raise InputError("Nothing to stack: give at least one layout.")
    first = layouts[0]
    for other in layouts[1:]:
        if not np.array_equal(other.gene_ids, first.gene_ids):
            raise InputError("Only layouts of the same genes, in the same order, can be stacked.")
        if (other.normalization.log_applied_ != first.normalization.log_applied_
                or not np.allclose(other.normalization.center_, first.normalization.center_)
                or not np.allclose(other.normalization.spread_, first.normalization.spread_)):
            raise InputError("Layouts fitted with different normalisations (samples, log or scale) "
                             "cannot be stacked; fit them on the same samples with the same settings.")
    placement = stack_placements(
        [Placement(lay.shape, lay.placement_gene, lay.placement_pixel) for lay in layouts],
        names=[lay.generator for lay in layouts])
    from rnaimg_core.layout import basic_quality

    layout = Layout(generator="stack", params={"layers": [lay.generator for lay in layouts]}, seed=first.seed,
                    shape=placement.shape, gene_ids=first.gene_ids, placement_gene=placement.gene,
                    placement_pixel=placement.pixel, reduce=first.reduce, normalization=first.normalization,
                    entrez_ids=first.entrez_ids, symbols=first.symbols, regions=placement.regions,
                    notes={"layers": [lay.generator for lay in layouts]},
                    fit_sample_ids=list(first.fit_sample_ids))
    layout.quality = basic_quality(layout)
    return layout


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
    pixel = groups[layout.placement_gene] * h * w + layout.placement_pixel
    names = group_names or [f"group {i}" for i in range(k)]
    split = Layout(generator=layout.generator, params={**layout.params, "split_channels": k}, seed=layout.seed,
                   shape=(k, h, w), gene_ids=layout.gene_ids, placement_gene=layout.placement_gene,
                   placement_pixel=pixel, reduce=layout.reduce, normalization=layout.normalization,
                   entrez_ids=layout.entrez_ids, symbols=layout.symbols, notes=dict(layout.notes),
                   regions=[{"name": str(names[i]), "channel": i, "rows": [0, h - 1], "cols": [0, w - 1]}
                            for i in range(k)],
                   fit_sample_ids=list(layout.fit_sample_ids))
    from rnaimg_core.layout import basic_quality

    split.quality = basic_quality(split)
    return split


class StackGenerator(Generator):
    name = "stack"
    title = "Stacked layouts (multi-channel)"
    summary = "Several layouts fitted on the same samples, one after the other as image channels."
    reference = "Multi-channel inputs as in RGB images: each channel is one view of the same sample."
    guide = """
**How it decides a gene's pixel.** Each generator named in *layers* places the genes its own way
(for example by chromosome and by co-expression); the layouts are stacked as channels of one image,
so every gene appears once per layer. Smaller layers are padded with empty pixels.

**What to tune.** *layers* (comma-separated generator names, each with its default settings);
*height*/*width* and *assignment*, passed to every layer that has them, so all channels share a size.
"""
    params = (
        Param("layers", "chromosome,deepinsight", "Comma-separated generator names, stacked in this order."),
        Param("height", 0, "Image height passed to every layer (0 = each layer's automatic size).", low=0,
              high=4096),
        Param("width", 0, "Image width passed to every layer (0 = automatic).", low=0, high=4096),
        Param("assignment", "nearest", "Collision rule passed to every layer that has one.",
              choices=("nearest", "collision_free")),
    )

    def place(self, data: FitData) -> Placement:
        from rnaimg_core.generators import get_generator

        names = [name.strip() for name in self.params_["layers"].split(",") if name.strip()]
        if not names:
            raise InputError("layers must name at least one generator, e.g. chromosome,deepinsight.")
        placements = []
        for i, name in enumerate(names):
            if name == self.name:
                raise InputError("A stack cannot contain another stack.")
            cls = get_generator(name)
            spec = cls.parameter_spec()
            shared = {key: self.params_[key] for key in ("height", "width", "assignment", "seed") if key in spec}
            data.progress(i / len(names), f"layer {name}")
            placements.append(cls(**shared).place(data))
        placement = stack_placements(placements, names)
        placement.notes = {"layers": names,
                           "layer_notes": {name: pl.notes for name, pl in zip(names, placements)}}
        return placement
