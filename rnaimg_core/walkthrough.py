"""How one sample becomes an image, gene by gene: the numbers behind each step, for teaching.

:func:`gene_steps` follows a few named genes of one sample through a fitted layout: the measured
value in the table, the per-sample steps (counts per million, ``log2(x+1)``) and the per-gene scaling
the layout fitted (its centre and spread), the pixel the gene lands on, and that pixel's value in the
image (the genes sharing a pixel are combined by the layout's collision rule). The dashboard's
classroom page draws these steps; the numbers come from the layout's own normalisation, so they
are exactly what :meth:`Layout.transform` computes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from rnaimg_core.errors import InputError
from rnaimg_core.expression import Expression
from rnaimg_core.layout import Layout


def gene_steps(layout: Layout, expression: Expression, sample: int | str, symbols: Sequence[str]) -> pd.DataFrame:
    """One row per gene of ``symbols`` placed by ``layout``, for one sample of ``expression``.

    Parameters
    ----------
    layout : a fitted layout of these data
    expression : the data (every gene column the layout was fitted on)
    sample : row index or sample id
    symbols : gene symbols or ids (case-insensitive); genes not placed are left out

    Returns
    -------
    DataFrame with columns ``symbol``, ``chromosome``, ``measured`` (the table's value), ``per_sample``
    (after counts per million and log2(x+1), as the layout's normalisation applies them), ``centre`` and
    ``spread`` (the gene's scaling learnt on the fit samples), ``normalised`` (the gene's value on its
    pixel), ``channel``, ``row``, ``col``, ``genes_on_pixel`` and ``pixel_value`` (the image's value there)

    Raises
    ------
    InputError
        When the sample is not in the data or a layout gene is missing from them.
    """
    if isinstance(sample, str):
        where = np.flatnonzero(expression.sample_ids == sample)
        if where.size == 0:
            raise InputError(f"Sample {sample!r} is not in the data.")
        sample = int(where[0])
    if not 0 <= int(sample) < expression.n_samples:
        raise InputError(f"Sample {sample} is out of range (the data hold {expression.n_samples} samples).")
    columns = layout.align(expression.gene_ids)
    row = np.asarray(expression.values[int(sample)], dtype=np.float32)[columns][None, :]
    norm = layout.normalization
    per_sample = norm.log_transform(row)[0]
    normalised = norm.apply(row)[0]
    image = layout.transform(row, layout.gene_ids, device="cpu")[0]
    chromosome = layout_chromosomes(layout, expression)
    rows = []
    for symbol in symbols:
        for gene in layout.find_genes(str(symbol)):
            for channel, r, c in layout.gene_coordinates([gene])[:1]:
                rows.append({"symbol": str(layout.display_names[gene]), "chromosome": chromosome[gene],
                             "measured": float(row[0, gene]), "per_sample": float(per_sample[gene]),
                             "centre": float(norm.center_[gene]), "spread": float(norm.spread_[gene]),
                             "normalised": float(normalised[gene]), "channel": int(channel), "row": int(r),
                             "col": int(c), "genes_on_pixel": int(layout.genes_per_pixel[channel, r, c]),
                             "pixel_value": float(image[channel, r, c])})
    return pd.DataFrame(rows, columns=["symbol", "chromosome", "measured", "per_sample", "centre", "spread",
                                       "normalised", "channel", "row", "col", "genes_on_pixel", "pixel_value"])


def layout_chromosomes(layout: Layout, expression: Expression) -> np.ndarray:
    """Chromosome of each layout gene ("" where unknown), from the data's gene table."""
    if "chromosome" not in expression.genes.columns:
        return np.full(layout.n_genes, "", dtype=object)
    by_id = dict(zip(expression.gene_ids.astype(str), expression.genes["chromosome"].fillna("").astype(str)))
    return np.array([by_id.get(str(g), "") for g in layout.gene_ids], dtype=object)
