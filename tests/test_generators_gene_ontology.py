"""Gene Ontology generator: annotation-driven placement, unannotated genes, GO-term clustering."""

from __future__ import annotations

import numpy as np
import pytest

from rnaimg_core import annotation
from rnaimg_core.generators import fit_layout
from rnaimg_core.generators.gene_ontology import UNANNOTATED_REGION
from tests.helpers import assert_every_gene_accounted, assert_round_trip, pixel_rc


def test_go_region_places_every_gene_and_marks_the_unannotated(tmp_path, go_layout, go_expression):
    layout = go_layout
    expr = go_expression
    assert_every_gene_accounted(layout)
    assert layout.quality["max_genes_per_pixel"] == 1
    n_unannotated = layout.notes["n_unannotated"]
    entrez = expr.genes["entrez_id"].to_numpy()
    expected = np.count_nonzero(annotation.go_incidence(entrez, "BP")[0].getnnz(axis=1) == 0)
    assert n_unannotated >= expected > 0
    region = [r for r in layout.regions if r["name"] == UNANNOTATED_REGION][0]
    _, row, _ = pixel_rc(layout)
    in_region = (row >= region["rows"][0]) & (row <= region["rows"][1])
    assert in_region.sum() == n_unannotated
    assert_round_trip(layout, expr, tmp_path)


def test_go_drop_reports_the_count(go_expression):
    layout = fit_layout(go_expression, "gene_ontology", {"embedding": "pca", "unannotated": "drop"})
    assert layout.notes["n_dropped_unannotated"] > 0
    assert layout.placed_genes().size == layout.n_genes - layout.notes["n_dropped_unannotated"]
    assert not any(r["name"] == UNANNOTATED_REGION for r in layout.regions)


def test_genes_sharing_a_specific_go_term_cluster(go_layout, go_expression):
    layout = go_layout
    expr = go_expression
    incidence, terms = annotation.go_incidence(expr.genes["entrez_id"].to_numpy(), "BP", propagate=False)
    sizes = np.asarray(incidence.sum(axis=0)).ravel()
    _, row, col = pixel_rc(layout)
    placed = np.flatnonzero(row >= 0)
    rng = np.random.default_rng(0)
    a, b = rng.choice(placed, 20_000), rng.choice(placed, 20_000)
    random_distance = np.hypot(row[a] - row[b], col[a] - col[b]).mean()
    ratios = []
    for term in np.flatnonzero((sizes >= 8) & (sizes <= 40))[:30]:  # specific terms with a few members
        genes = incidence[:, term].nonzero()[0]
        i, j = np.triu_indices(genes.size, 1)
        ratios.append(np.hypot(row[genes[i]] - row[genes[j]], col[genes[i]] - col[genes[j]]).mean() / random_distance)
    assert len(ratios) >= 10
    assert np.median(ratios) < 0.6


def test_go_all_ontologies_gives_three_channels_and_is_deterministic(go_expression):
    first = fit_layout(go_expression, "gene_ontology", {"ontology": "all", "embedding": "pca"}, quality=False)
    second = fit_layout(go_expression, "gene_ontology", {"ontology": "all", "embedding": "pca"}, quality=False)
    assert first.shape[0] == 3
    np.testing.assert_array_equal(first.placement_pixel, second.placement_pixel)
    assert {r["name"] for r in first.regions} >= {"GO BP", "GO MF", "GO CC"}


@pytest.mark.slow
def test_go_on_the_whole_demo(demo_expression):
    layout = fit_layout(demo_expression, "gene_ontology", {"embedding": "pca"})
    assert_every_gene_accounted(layout)
