"""Shared test helpers: assertions on layouts and the planted-driver data builders.

Imported one way everywhere: ``from tests.helpers import ...``. The data these
build once per session are fixtures in ``tests/conftest.py``.
"""

from __future__ import annotations

import numpy as np

from rnaimg_core.annotation import gene_table
from rnaimg_core.expression import Expression, from_arrays
from rnaimg_core.generators import get_generator
from rnaimg_core.images import ImageSet
from rnaimg_core.layout import Layout, load_layout
from rnaimg_core.splits import FIT, holdout_split

# planted data: real annotated genes, and per class a few driver genes raised in that class only
N_GENES = 400
CLASSES = ("alpha", "beta", "gamma")
N_DRIVERS = 6


def make_planted(n_per_class: int = 80, seed: int = 0) -> tuple[Expression, dict[str, np.ndarray]]:
    """(expression, driver gene symbols per class) with genes on chromosomes 1-22.

    Log-scale noise plus, per class, ``N_DRIVERS`` genes raised by 3 in that
    class only: the only signal there is, so a trained model must use them and
    attribution must find them.
    """
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


def make_planted_images(expr: Expression, holdout: float = 0.25, seed: int = 0) -> ImageSet:
    """Chromosome-layout images of ``expr``; a stratified ``holdout`` is kept out of the fit."""
    split = holdout_split(expr.labels, expr.n_samples, holdout, seed)
    layout = get_generator("chromosome")().fit(expr, train_index=np.flatnonzero(split == FIT))
    images = layout.transform(expr.values, expr.gene_ids)
    return ImageSet(images, expr.sample_ids, expr.labels, split, layout)


def pixel_rc(layout: Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(channel, row, col) of each gene's first placement (-1 when not placed)."""
    channel = np.full(layout.n_genes, -1)
    row = np.full(layout.n_genes, -1)
    col = np.full(layout.n_genes, -1)
    first = np.unique(layout.placement_gene, return_index=True)[1]
    genes = layout.placement_gene[first]
    channel[genes], row[genes], col[genes] = layout.coordinates(layout.placement_pixel[first])
    return channel, row, col


def module_distance_ratio(layout: Layout, modules: dict[str, np.ndarray], seed: int = 0) -> float:
    """Mean pixel distance within planted modules over the mean distance of random gene pairs."""
    _, row, col = pixel_rc(layout)
    within = []
    for genes in modules.values():
        genes = genes[row[genes] >= 0]
        a, b = np.triu_indices(genes.size, 1)
        within.append(np.hypot(row[genes[a]] - row[genes[b]], col[genes[a]] - col[genes[b]]))
    placed = np.flatnonzero(row >= 0)
    rng = np.random.default_rng(seed)
    a, b = rng.choice(placed, 20_000), rng.choice(placed, 20_000)
    random = np.hypot(row[a] - row[b], col[a] - col[b]).mean()
    return float(np.concatenate(within).mean() / random)


def assert_round_trip(layout: Layout, expr: Expression, tmp_path) -> None:
    """save -> load -> transform gives identical images."""
    path = layout.save(tmp_path / f"{layout.generator}.json.gz")
    loaded = load_layout(path)
    assert loaded.shape == layout.shape
    assert loaded.quality == layout.quality
    sample = expr.values[:20]
    np.testing.assert_array_equal(loaded.transform(sample, device="cpu"), layout.transform(sample, device="cpu"))


def assert_every_gene_accounted(layout: Layout) -> None:
    """Every gene is placed, or the notes count the dropped ones."""
    placed = layout.placed_genes().size
    dropped = sum(v for k, v in layout.notes.items() if k.startswith("n_dropped") and isinstance(v, int))
    assert placed + dropped == layout.n_genes, (placed, dropped, layout.n_genes)
