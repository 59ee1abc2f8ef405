"""Layout quality figures and the collision-free assignment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from rnaimg_core.assignment import assign_to_grid, nearest_cells
from rnaimg_core.errors import InputError
from rnaimg_core.layout import Layout
from rnaimg_core.normalize import Normalization
from rnaimg_core.quality import neighbourhood_quality


def _layout(pixels: np.ndarray, side: int, n_genes: int) -> Layout:
    norm = Normalization(log="no", scale="none").fit(np.zeros((2, n_genes), dtype=np.float32))
    return Layout(generator="test", params={}, seed=0, shape=(1, side, side),
                  gene_ids=[f"g{i}" for i in range(n_genes)], placement_gene=np.arange(n_genes),
                  placement_pixel=pixels, reduce="mean", normalization=norm)


def test_quality_sees_a_smooth_layout_and_not_a_shuffled_one():
    # genes along a line, expression a smooth function of position: close pixels = correlated genes
    side, n_samples = 40, 200
    rng = np.random.default_rng(0)
    n = side * side
    rows, cols = np.divmod(np.arange(n), side)
    signals = rng.standard_normal((n_samples, 6))
    values = (np.sin(rows / 6)[None] * signals[:, [0]] + np.cos(cols / 6)[None] * signals[:, [1]]
              + np.sin((rows + cols) / 9)[None] * signals[:, [2]] + 0.3 * rng.standard_normal((n_samples, n)))
    smooth = neighbourhood_quality(_layout(np.arange(n), side, n), values.astype(np.float32))
    shuffled = neighbourhood_quality(_layout(rng.permutation(n), side, n), values.astype(np.float32))
    assert smooth["neighbourhood_preservation"] > 0.3
    assert smooth["adjacent_correlation_gain"] > 0.3
    assert abs(shuffled["neighbourhood_preservation"]) < 0.02
    assert abs(shuffled["adjacent_correlation_gain"]) < 0.02


def test_quality_runs_at_20000_genes():
    # timed in benchmarks/bench_steps.py
    n, side = 20_531, 144
    rng = np.random.default_rng(0)
    values = rng.standard_normal((500, n)).astype(np.float32)
    layout = _layout(rng.permutation(side * side)[:n], side, n)
    figures = neighbourhood_quality(layout, values)
    assert figures["quality_pairs"] > 50_000


def test_fit_stores_quality_in_layout_and_summary(demo_expression):
    from rnaimg_core.generators import fit_layout

    layout = fit_layout(demo_expression, "chromosome")
    for key in ("fraction_placed", "n_pixels_used", "max_genes_per_pixel", "mean_genes_per_pixel",
                "neighbourhood_preservation", "adjacent_pair_correlation", "random_pair_correlation"):
        assert key in layout.quality and key in layout.summary()


def test_collision_free_assignment_is_exact_on_small_problems():
    rng = np.random.default_rng(0)
    positions = rng.uniform(0, 9, size=(70, 2))
    cells = assign_to_grid(positions, 10, 10)
    assert np.unique(cells).size == 70
    grid = np.column_stack(np.divmod(np.arange(100), 10))
    cost = ((positions[:, None] - grid[None]) ** 2).sum(axis=2)
    r, c = linear_sum_assignment(cost)
    assert cost[np.arange(70), cells].sum() == pytest.approx(cost[r, c].sum())


def test_collision_free_assignment_scales_and_stays_local():
    rng = np.random.default_rng(1)
    n, side = 20_000, 142
    positions = rng.uniform(0, side - 1, size=(n, 2))
    cells = assign_to_grid(positions, side, side)  # timed in benchmarks/bench_steps.py
    assert np.unique(cells).size == n
    moved = np.hypot(*(np.column_stack(np.divmod(cells, side)) - positions).T)
    assert np.median(moved) < 2.0
    # points already on distinct cells stay there
    exact = np.column_stack(np.divmod(rng.permutation(side * side)[:n], side)).astype(float)
    np.testing.assert_array_equal(assign_to_grid(exact, side, side), nearest_cells(exact, side, side))


def test_collision_free_assignment_refuses_too_small_a_grid():
    with pytest.raises(InputError, match="one pixel per gene"):
        assign_to_grid(np.zeros((11, 2)), 2, 5)


def test_fit_measures_quality_on_held_out_samples_when_there_are_any(demo_expression):
    from rnaimg_core.generators import get_generator
    from rnaimg_core.splits import holdout_split

    split = holdout_split(demo_expression.labels, demo_expression.n_samples, 0.2, seed=0)
    fit = np.flatnonzero(split == "fit")
    generator = get_generator("chromosome")()
    held_out = generator.fit(demo_expression, train_index=fit)
    assert held_out.quality["quality_samples"] == f"holdout (n={demo_expression.n_samples - fit.size})"
    # the figure is the one measured on exactly those samples, not on the fitted ones
    expected = neighbourhood_quality(held_out, held_out.normalization.apply(demo_expression.values[split == "holdout"]))
    assert held_out.quality["neighbourhood_preservation"] == expected["neighbourhood_preservation"]
    everything = generator.fit(demo_expression)
    assert everything.quality["quality_samples"].startswith(f"fit samples (n={demo_expression.n_samples}")
    assert "quality_samples" in held_out.summary()
