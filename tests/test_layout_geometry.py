"""Pixel geometry of a Layout as the dashboard shows it: hover text, regions, gene search, the genes of a pixel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnaimg_core.errors import InputError
from rnaimg_core.images import pixel_genes_table
from rnaimg_core.layout import Layout, cell_pixels, flat_pixels, pixel_coordinates
from rnaimg_core.normalize import Normalization


def small_layout() -> Layout:
    """2 x 3 image: pixel 0 holds TP53; pixel 1 holds five genes; pixel 2 EGFR; pixels 3-5 empty but 4 (MYC)."""
    symbols = ["TP53", "EGFR", "MYC", "KRAS", "PTEN", "CDK4", "MDM2", "BRCA1"]
    gene = np.array([0, 3, 4, 5, 6, 7, 1, 2])
    pixel = np.array([0, 1, 1, 1, 1, 1, 2, 4])
    norm = Normalization(log="no", scale="none").fit(np.zeros((2, len(symbols)), dtype=np.float32))
    return Layout(generator="test", params={}, seed=0, shape=(1, 2, 3), gene_ids=np.array(symbols),
                  placement_gene=gene, placement_pixel=pixel, reduce="mean", normalization=norm,
                  symbols=np.array(symbols), entrez_ids=np.arange(len(symbols)),
                  regions=[{"name": "chrA", "channel": 0, "first": 0, "last": 1},
                           {"name": "boxB", "channel": 0, "rows": [1, 1], "cols": [1, 2]}])


def test_pixel_labels_name_the_genes_of_each_pixel():
    labels = small_layout().pixel_labels(max_names=3)
    assert labels.shape == (1, 2, 3)
    assert labels[0, 0, 0] == "TP53"
    assert labels[0, 0, 2] == "EGFR"
    assert labels[0, 1, 1] == "MYC"
    crowded = labels[0, 0, 1]
    assert crowded.startswith("KRAS, PTEN, CDK4") and "… and 2 more" in crowded and "(5 genes)" in crowded
    assert labels[0, 1, 0] == "(no gene)"


def test_pixel_labels_agree_with_the_layouts_own_gene_lists():
    layout = small_layout()
    labels = layout.pixel_labels(max_names=10).ravel()
    for pixel, genes in enumerate(layout.pixel_gene_lists()):
        for g in genes:
            assert layout.symbols[g] in labels[pixel]


def test_region_grid_covers_runs_and_boxes():
    grid = small_layout().region_grid()
    assert grid[0, 0, 0] == grid[0, 0, 1] == "chrA"
    assert grid[0, 0, 2] == ""
    assert grid[0, 1, 1] == grid[0, 1, 2] == "boxB"


def test_gene_search_is_case_insensitive_and_finds_the_pixel():
    layout = small_layout()
    assert layout.gene_coordinates(layout.find_genes("myc")) == [(0, 1, 1)]
    assert layout.gene_coordinates(layout.find_genes("  ")) == []


def test_pixel_genes_table_lists_every_gene_with_annotation():
    layout = small_layout()
    genes = pd.DataFrame({"gene_id": layout.gene_ids, "chromosome": ["17"] * 8, "start": range(8)})
    table = pixel_genes_table(layout, 0, 0, 1, genes)
    assert sorted(table["symbol"]) == ["BRCA1", "CDK4", "KRAS", "MDM2", "PTEN"]
    assert "chromosome" in table.columns and "entrez_id" in table.columns
    assert list(pixel_genes_table(layout, 0, 0, 1).columns) == ["gene_id", "symbol", "entrez_id"]


def test_pixel_labels_on_a_real_chromosome_layout():
    from rnaimg_core import get_generator, load_synthetic

    expr = load_synthetic(n_samples=40, n_genes=600, n_classes=2, seed=0, n_modules=5, module_size=20,
                          n_driver_genes=10)
    layout = get_generator("chromosome")().fit(expr)
    labels = layout.pixel_labels().ravel()
    lists = layout.pixel_gene_lists()
    for flat in (0, 17, layout.placement_pixel.max()):
        assert labels[flat] == layout.symbols[lists[flat][0]]


def test_flat_pixels_number_channel_row_col_and_grid_cells_alike():
    shape = (3, 4, 5)
    channel, row, col = np.meshgrid(np.arange(3), np.arange(4), np.arange(5), indexing="ij")
    flat = flat_pixels(shape, channel, row, col)
    np.testing.assert_array_equal(flat.ravel(), np.arange(60))  # the C-order numbering of a (C, H, W) array
    np.testing.assert_array_equal(cell_pixels(shape, channel, row * 5 + col), flat)
    back = pixel_coordinates(shape, flat.ravel())
    for got, want in zip(back, (channel, row, col)):
        np.testing.assert_array_equal(got, want.ravel())


def test_differences_name_what_changes_the_images():
    layout = small_layout()
    reordered = layout.replace(placement_gene=layout.placement_gene[::-1], placement_pixel=layout.placement_pixel[::-1])
    assert layout.differences(reordered) == []  # the same placements listed in another order
    layout.check_same_as(reordered)
    swapped = layout.placement_gene.copy()
    swapped[[0, 6]] = swapped[[6, 0]]  # TP53 and EGFR trade pixels: same pixels used, other genes on them
    assert layout.differences(layout.replace(placement_gene=swapped)) == ["pixels"]
    assert layout.differences(layout.replace(reduce="max")) == ["reduce rule"]
    assert layout.differences(layout.replace(shape=(1, 3, 2))) == ["image shape"]
    assert layout.differences(layout.replace(gene_ids=layout.gene_ids[::-1])) == ["genes"]
    refitted = Normalization(log="no", scale="zscore").fit(np.arange(16, dtype=np.float32).reshape(2, 8))
    assert layout.differences(layout.replace(normalization=refitted)) == ["normalisation"]
    with pytest.raises(InputError, match=r"x\.npz came from another layout than the model's: different pixels, "
                                         r"reduce rule\. Convert the data with the model's\."):
        layout.check_same_as(layout.replace(placement_gene=swapped, reduce="sum"), what="x.npz",
                             whose="the model's")
