"""Tiny planted data through the real layout path, shared by the model tests.

Real annotated genes (so the chromosome layout places them), log-scale noise,
and per class a few *driver* genes raised in that class only: the only signal
there is, so a trained model must use them and attribution must find them.
"""

from __future__ import annotations

import functools

import numpy as np

from rnaimg_core.annotation import gene_table
from rnaimg_core.expression import from_arrays
from rnaimg_core.generators import get_generator
from rnaimg_core.images import ImageSet

N_GENES = 400
CLASSES = ("alpha", "beta", "gamma")
N_DRIVERS = 6


@functools.lru_cache(maxsize=2)
def planted(n_per_class: int = 80, seed: int = 0):
    """(expression, driver gene ids per class) with genes on chromosomes 1-22."""
    rng = np.random.default_rng(seed)
    table = gene_table()
    table = table[table["start"].notna() & table["chromosome"].isin([str(i) for i in range(1, 23)])
                  & (table["gene_type"] == "protein-coding")]
    symbols = table.sample(N_GENES, random_state=seed)["symbol"].to_numpy().astype(str)
    labels = np.repeat(CLASSES, n_per_class)
    values = rng.normal(5.0, 1.0, size=(labels.size, N_GENES)).astype(np.float32)
    drivers = {}
    chosen = rng.choice(N_GENES, size=N_DRIVERS * len(CLASSES), replace=False).reshape(len(CLASSES), N_DRIVERS)
    for k, name in enumerate(CLASSES):
        values[np.ix_(labels == name, chosen[k])] += 3.0
        drivers[name] = symbols[chosen[k]]
    sample_ids = [f"s{i:03d}" for i in range(labels.size)]
    expr = from_arrays(values, sample_ids, symbols, labels, source="planted test data")
    return expr, drivers


@functools.lru_cache(maxsize=2)
def planted_images(holdout: float = 0.25, seed: int = 0) -> ImageSet:
    """Chromosome-layout images of the planted data; a stratified ``holdout`` is kept out of the fit."""
    from sklearn.model_selection import train_test_split

    expr, _ = planted(seed=seed)
    index = np.arange(expr.n_samples)
    fit, _ = train_test_split(index, test_size=holdout, random_state=seed, stratify=expr.labels)
    layout = get_generator("chromosome")().fit(expr, train_index=fit)
    images = layout.transform(expr.values, expr.gene_ids)
    split = np.where(np.isin(index, fit), "fit", "holdout")
    return ImageSet(images, expr.sample_ids, expr.labels, split, layout)
