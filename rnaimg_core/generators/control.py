"""Random-permutation control: the same image shape with genes on random pixels.

A structured layout helps a CNN only if its arrangement carries information;
a network trained on this control (same shape, same genes, random places)
shows what the same genes give without any arrangement.
"""

from __future__ import annotations

import numpy as np

from rnaimg_core.errors import InputError
from rnaimg_core.generators.base import (ASSIGNMENT_PARAM, CHANNEL_BY_PARAM, FitData, Generator, Param,
                                         Placement, size_params)
from rnaimg_core.generators.deepinsight import place_on_grid
from rnaimg_core.layout import Layout, basic_quality, load_layout


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
    Layout with generator ``"random"``
    """
    rng = np.random.default_rng(seed)
    gene = layout.placement_gene[rng.permutation(layout.placement_gene.size)]
    control = Layout(generator="random", params={"like_generator": layout.generator, "seed": seed}, seed=seed,
                     shape=layout.shape, gene_ids=layout.gene_ids, placement_gene=gene,
                     placement_pixel=layout.placement_pixel.copy(), reduce=layout.reduce,
                     normalization=layout.normalization, entrez_ids=layout.entrez_ids, symbols=layout.symbols,
                     notes={"control_of": layout.generator}, fit_sample_ids=list(layout.fit_sample_ids))
    control.quality = basic_quality(control)
    return control


class RandomGenerator(Generator):
    name = "random"
    title = "Random permutation (control)"
    summary = ("A control: genes on random pixels, in the same image shape as another layout (or the smallest "
               "square), to see whether a layout beats chance.")
    reference = ("Permutation control for image-based gene expression models: compare against the same genes "
                 "placed at random (as done for DeepInsight, REFINED and IGTD comparisons).")
    guide = """
**How it decides a gene's pixel.** At random: each gene goes to a random pixel (one gene per pixel
when the image is large enough). Given a layout file in *like*, the control copies its exact shape
and its number of genes on every pixel and only shuffles which gene sits where.

**What to tune.** *seed* (try several: the spread of accuracies over seeds is the chance level);
*like* (a layout file to imitate); otherwise *height*/*width*/*channels*.

**How to read it.** If a structured layout trains no better than its random control, the
arrangement is not what the network learns from.
"""
    params = (
        Param("like", "", "Layout file (.json) whose shape and genes-per-pixel counts to copy (empty = none)."),
        *size_params(),
        CHANNEL_BY_PARAM,
        ASSIGNMENT_PARAM,
    )

    def place(self, data: FitData) -> Placement:
        p = self.params_
        rng = np.random.default_rng(data.seed)
        if p["like"]:
            template = load_layout(p["like"])
            if not np.array_equal(template.gene_ids, data.expression.gene_ids):
                raise InputError(f"The layout {p['like']} was fitted on other genes; the control needs the same "
                                 "genes in the same order.")
            gene = template.placement_gene[rng.permutation(template.placement_gene.size)]
            return Placement(shape=template.shape, gene=gene, pixel=template.placement_pixel.copy(),
                             notes={"like": str(p["like"]), "control_of": template.generator})

        def random_cells(height: int, width: int) -> np.ndarray:
            n_cells = height * width
            n = data.n_genes
            cells = rng.permutation(n_cells)[:n] if n_cells >= n else rng.integers(0, n_cells, size=n)
            return np.column_stack(np.divmod(cells, width)).astype(np.float64)

        placement = place_on_grid(np.arange(data.n_genes), random_cells, data, p)
        placement.notes = {"control_of": None}
        return placement
