"""Shared, cached data for the generator tests: the demo and a small synthetic set with planted modules."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from rnaimg_core.expression import Expression, from_arrays, load_demo
from rnaimg_core.layout import Layout


@lru_cache(maxsize=1)
def demo() -> Expression:
    return load_demo()


@lru_cache(maxsize=1)
def synthetic_small():
    """(Expression, modules) of rnaimg's small synthetic set: 300 samples x 2,000 genes, 10 modules of 30."""
    from rnaimg_core.synthetic import make_synthetic_small

    data = make_synthetic_small(seed=0)
    expr = from_arrays(data.values, data.sample_ids, data.gene_ids, data.labels, source="synthetic small")
    return expr, data.modules


def pixel_rc(layout: Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(channel, row, col) of each gene's first placement (-1 when not placed)."""
    c, h, w = layout.shape
    channel = np.full(layout.n_genes, -1)
    row = np.full(layout.n_genes, -1)
    col = np.full(layout.n_genes, -1)
    first = np.unique(layout.placement_gene, return_index=True)[1]
    genes = layout.placement_gene[first]
    ch, rest = np.divmod(layout.placement_pixel[first], h * w)
    channel[genes], (row[genes], col[genes]) = ch, np.divmod(rest, w)
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
    from rnaimg_core.layout import load_layout

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
