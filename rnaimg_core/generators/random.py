"""Random-permutation control: the same image shape with genes on random pixels.

A structured layout helps a CNN only if its arrangement carries information;
a network trained on this control (same shape, same genes, random places)
shows what the same genes give without any arrangement. A fitted layout's
control is :func:`rnaimg_core.compose.permutation_control`.
"""

from __future__ import annotations

import numpy as np

from rnaimg_core.compose import permutation_control
from rnaimg_core.errors import InputError
from rnaimg_core.generators._grid import GRID_PARAMS, cell_positions, place_on_grid
from rnaimg_core.generators.base import FitData, Generator, Param, Placement
from rnaimg_core.layout import Layout, load_layout


class RandomGenerator(Generator):
    """The control: genes on random pixels of the same image shape (``like``: another layout's file).

    Parameters are keyword arguments, checked on construction and kept in ``params``:
    ``like``, ``height``, ``width``, ``channels``, ``channel_by``, ``assignment``, and the
    common ``log``, ``depth``, ``scale``, ``reduce``, ``seed`` (the permutation's seed).
    """

    name = "random"
    title = "Random permutation (control)"
    description = ("A control: genes on random pixels, in the same image shape as another layout (or the "
                   "smallest square), to see whether a layout beats chance.")
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
    parameters = (
        Param("like", "", "Layout whose shape and genes-per-pixel counts to copy: a fitted Layout, or (command "
                          "line only) a layout file (.json); empty = none."),
        *GRID_PARAMS,
    )

    def __init__(self, *, like: "Layout | str" = "", **params) -> None:
        # a Layout object is the only form the dashboard passes: a browser user never names a server path
        self.like_layout = like if isinstance(like, Layout) else None
        super().__init__(like=f"{like.generator} layout {like.shape}" if self.like_layout else like, **params)

    def place(self, data: FitData) -> Placement:
        p = self.params
        if self.like_layout is not None or p["like"]:
            template = self.like_layout if self.like_layout is not None else load_layout(p["like"])
            if not np.array_equal(template.gene_ids, data.expression.gene_ids):
                raise InputError(f"The layout {p['like']} was fitted on other genes; the control needs the same "
                                 "genes in the same order.")
            control = permutation_control(template, seed=data.seed)
            return Placement(shape=control.shape, gene=control.placement_gene, pixel=control.placement_pixel,
                             notes={"like": str(p["like"]), "control_of": template.generator})
        rng = np.random.default_rng(data.seed)

        def random_cells(height: int, width: int) -> np.ndarray:
            n_cells = height * width
            n = data.n_genes
            cells = rng.permutation(n_cells)[:n] if n_cells >= n else rng.integers(0, n_cells, size=n)
            return cell_positions(cells, height, width)

        placement = place_on_grid(np.arange(data.n_genes), random_cells, data, p)
        placement.notes = {"control_of": None}
        return placement
