"""DeepInsight and SOM generators: placement, determinism, round trips, planted structure."""

from __future__ import annotations

import numpy as np
import pytest

from rnaimg_core.errors import InputError
from rnaimg_core.expression import from_arrays
from rnaimg_core.generators import fit_layout, get_generator
from rnaimg_core.generators._embedding import reduce_dimensions
from rnaimg_core.generators._grid import minimum_area_rotation
from rnaimg_core.generators.som import best_matching_nodes, quantization_error, train_batch_som, train_minisom
from tests.helpers import assert_every_gene_accounted, assert_round_trip, module_distance_ratio


@pytest.mark.parametrize("params", [{"method": "pca"}, {"method": "pca", "assignment": "nearest"},
                                    {"method": "kpca", "height": 40, "width": 40, "assignment": "nearest"}])
def test_deepinsight_on_demo_places_every_gene_and_round_trips(params, tmp_path, demo_expression):
    expr = demo_expression
    layout = fit_layout(expr, "deepinsight", params)
    assert_every_gene_accounted(layout)
    assert layout.quality["fraction_placed"] == 1.0
    if params.get("assignment") == "collision_free":
        assert layout.quality["max_genes_per_pixel"] == 1
    if "height" in params:
        assert layout.shape == (1, 40, 40)
    # co-expressed genes end up adjacent: neighbouring pixels beat random pairs
    assert layout.quality["adjacent_pair_correlation"] > layout.quality["random_pair_correlation"] + 0.03
    assert layout.quality["neighbourhood_preservation"] > 0.1
    assert_round_trip(layout, expr, tmp_path)


def test_deepinsight_is_deterministic_for_a_seed(synthetic_small):
    expr = synthetic_small[0]
    expr = from_arrays(expr.values[:60, :600], expr.sample_ids[:60], expr.gene_ids[:600], expr.labels[:60])
    params = {"iterations": 100, "seed": 3, "components": 10}
    first = fit_layout(expr, "deepinsight", params, quality=False)
    second = fit_layout(expr, "deepinsight", params, quality=False)
    np.testing.assert_array_equal(first.placement_pixel, second.placement_pixel)
    other = fit_layout(expr, "deepinsight", {**params, "seed": 4}, quality=False)
    assert not np.array_equal(first.placement_pixel, other.placement_pixel)


@pytest.mark.parametrize("params", [
    {"iterations": 250},
    pytest.param({"iterations": 250, "assignment": "collision_free"}, marks=pytest.mark.slow),
    {"method": "pca"}])
def test_deepinsight_keeps_planted_modules_together(params, synthetic_small):
    expr, modules = synthetic_small
    layout = fit_layout(expr, "deepinsight", params, quality=False)
    assert module_distance_ratio(layout, modules) < 0.5


def test_minimum_area_rotation_aligns_a_rotated_rectangle():
    rng = np.random.default_rng(0)
    rect = rng.uniform([0, 0], [10, 2], size=(500, 2))
    angle = 0.6
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    framed = minimum_area_rotation(rect @ rotation.T)
    assert np.ptp(framed[:, 0]) == pytest.approx(np.ptp(rect[:, 0]), rel=0.02)
    assert np.ptp(framed[:, 1]) == pytest.approx(np.ptp(rect[:, 1]), rel=0.05)


def test_reduce_dimensions_matches_exact_pca():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((400, 5)) @ rng.standard_normal((5, 300)) + 0.01 * rng.standard_normal((400, 300)))
    reduced = reduce_dimensions(x.astype(np.float32), 3, seed=0)
    centred = x - x.mean(axis=0)
    _, s, _ = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(np.linalg.norm(reduced, axis=0), s[:3], rtol=1e-3)


def test_som_on_demo_places_every_gene_and_round_trips(tmp_path, demo_expression):
    expr = demo_expression
    layout = fit_layout(expr, "som", {"iterations": 10})
    assert_every_gene_accounted(layout)
    c, h, w = layout.shape
    assert h * w * 4 >= expr.n_genes  # about four genes per node by default
    assert layout.quality["adjacent_pair_correlation"] > layout.quality["random_pair_correlation"] + 0.05
    assert_round_trip(layout, expr, tmp_path)


@pytest.mark.parametrize("params", [{}, {"assignment": "collision_free"}, {"topology": "hexagonal"},
                                    {"variant": "portrait"}])
def test_som_keeps_planted_modules_together_and_is_deterministic(params, synthetic_small):
    expr, modules = synthetic_small
    params = {"iterations": 15, **params}
    layout = fit_layout(expr, "som", params, quality=False)
    again = fit_layout(expr, "som", params, quality=False)
    np.testing.assert_array_equal(layout.placement_pixel, again.placement_pixel)
    assert module_distance_ratio(layout, modules) < 0.4
    if params.get("assignment") == "collision_free":
        assert layout.genes_per_pixel.max() == 1
    if params.get("variant") == "portrait":
        assert layout.quality["fraction_pixels_used"] == 1.0  # a portrait has no empty pixel


def test_som_portrait_refuses_collision_free(synthetic_small):
    with pytest.raises(InputError, match="portrait"):
        fit_layout(synthetic_small[0], "som", {"variant": "portrait", "assignment": "collision_free"})


def test_batch_som_agrees_with_minisom_on_small_data(synthetic_small):
    expr, modules = synthetic_small
    from rnaimg_core.generators._embedding import gene_features
    from rnaimg_core.normalize import Normalization

    values = Normalization().fit(expr.values).apply(expr.values)
    features = gene_features(values, "correlation", 20, seed=0)[:600]
    batch = train_batch_som(features, 8, 8, sigma=2.0, sigma_end=0.7, learning_rate=1.0, iterations=20)
    reference = train_minisom(features, 8, 8, sigma=2.0, learning_rate=0.5, iterations=10,
                              topology="rectangular", seed=0)
    # the batch map fits the genes at least as tightly as MiniSom's (within 10 %)
    assert quantization_error(features, batch) <= 1.1 * quantization_error(features, reference)
    # and both maps are ordered: neighbouring nodes are closer than random node pairs
    for weights in (batch, reference):
        grid = weights.reshape(8, 8, -1)
        neighbour = np.linalg.norm(grid[:, 1:] - grid[:, :-1], axis=2).mean()
        spread = np.linalg.norm(weights[:, None] - weights[None], axis=2).mean()
        assert neighbour < 0.7 * spread
    # genes sharing a node under one map are mostly close under the other
    b1, _ = best_matching_nodes(features, batch)
    b2, _ = best_matching_nodes(features, reference)
    same = b1[:, None] == b1[None, :]
    np.fill_diagonal(same, False)
    r2, c2 = np.divmod(b2, 8)
    gap = np.hypot(r2[:, None] - r2[None, :], c2[:, None] - c2[None, :])
    assert gap[same].mean() < 0.75 * gap.mean()


def test_every_generator_lists_the_shared_parameters():
    for name in ("chromosome", "deepmapper", "som", "gene_ontology", "deepinsight", "random"):
        spec = get_generator(name).parameter_spec()
        for key in ("height", "width", "channels", "assignment", "reduce", "seed"):
            assert key in spec, (name, key)
        assert get_generator(name).guide.strip()
