"""DeepMapper-style direct mapping: one gene, one pixel, in a chosen order."""

from __future__ import annotations

import numpy as np

from rnaimg_core.generators._grid import ONE_PER_PIXEL_ASSIGNMENT_PARAM, fill_row_major, size_params
from rnaimg_core.generators.base import FitData, Generator, Param, Placement

ORDERS = ("input", "variance", "mean", "symbol")


class DeepMapperGenerator(Generator):
    """One gene per pixel, in input, variance, mean or symbol order (DeepMapper-style direct mapping).

    Parameters are keyword arguments, checked on construction and kept in ``params``:
    ``order``, ``max_genes`` (0: every gene), ``height``, ``width``, ``channels``,
    ``assignment``, and the common ``log``, ``depth``, ``scale``, ``reduce``, ``seed``.
    """

    name = "deepmapper"
    title = "DeepMapper (direct mapping)"
    description = ("One gene per pixel, filled row by row in input order or a chosen order; "
                   "no gene is averaged away and the transform is a pure index copy.")
    reference = ("DeepMapper: direct mapping of each feature to its own pixel, so a CNN reads every raw "
                 "value without averaging (the simplest layout; fast on GPUs).")
    guide = """
**How it decides a gene's pixel.** Genes are written into the image one per pixel, left to right and
top to bottom, in the order you choose: as they come in the file, by decreasing variance across the
training samples, by decreasing mean, or alphabetically by symbol. Nothing is averaged, so every gene
keeps its own pixel and the network sees all of them; neighbouring pixels mean only "neighbours in
that order".

**What to tune.** *order* (variance order puts the most variable genes together at the top),
*max_genes* to keep only the first N genes of that order, *height*/*width* (0 = smallest square),
*channels* to spread the genes over several image channels.

**When to use it.** As a fast, faithful baseline: if a structured layout (chromosome, GO, SOM)
does not beat direct mapping, its structure is not helping the network.
"""
    parameters = (
        Param("order", "input", "Order in which genes fill the image.", choices=ORDERS),
        Param("max_genes", 0, "Keep only the first N genes of that order (0 = all).", low=0),
        *size_params("Number of channels the genes are spread over, in order.",
                     height="Image height in pixels (0 = automatic smallest square)."),
        ONE_PER_PIXEL_ASSIGNMENT_PARAM,
    )

    def place(self, data: FitData) -> Placement:
        p = self.params
        order = gene_order(data, p["order"])
        if p["max_genes"]:
            order = order[: p["max_genes"]]
        return fill_row_major(order, p["height"], p["width"], p["channels"],
                              notes={"order": p["order"], "n_dropped_by_max_genes": data.n_genes - order.size})


def gene_order(data: FitData, order: str) -> np.ndarray:
    """Gene column indices in the requested order (ties broken by input order)."""
    n = data.n_genes
    if order == "input":
        return np.arange(n)
    if order == "symbol":
        return np.argsort(data.genes["symbol"].astype(str).to_numpy(), kind="stable")
    logged = data.logged_values()
    stat = logged.var(axis=0) if order == "variance" else logged.mean(axis=0)
    return np.argsort(-stat, kind="stable")

