"""The dashboard's figures, without streamlit: hover text per pixel, overlays, class images, PNGs."""

from __future__ import annotations

import io

import numpy as np
import pytest

from rnaimg_core import figures
from rnaimg_core.layout import Layout
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
    layout = small_layout()
    labels = figures.pixel_gene_labels(layout, max_symbols=3)
    assert labels.shape == (1, 2, 3)
    assert labels[0, 0, 0] == "TP53"
    assert labels[0, 0, 2] == "EGFR"
    assert labels[0, 1, 1] == "MYC"
    crowded = labels[0, 0, 1]
    assert crowded.startswith("KRAS, PTEN, CDK4") and "… and 2 more" in crowded and "(5 genes)" in crowded
    assert labels[0, 1, 0] == figures.EMPTY_PIXEL


def test_pixel_labels_agree_with_the_layouts_own_gene_lists():
    layout = small_layout()
    labels = figures.pixel_gene_labels(layout, max_symbols=10).ravel()
    for pixel, genes in enumerate(layout.pixel_gene_lists()):
        for g in genes:
            assert layout.symbols[g] in labels[pixel]


def test_region_grid_covers_runs_and_boxes():
    grid = figures.region_label_grid(small_layout())
    assert grid[0, 0, 0] == grid[0, 0, 1] == "chrA"
    assert grid[0, 0, 2] == ""
    assert grid[0, 1, 1] == grid[0, 1, 2] == "boxB"


def test_heatmap_hover_carries_symbols_value_and_attribution():
    layout = small_layout()
    labels = figures.hover_labels(figures.pixel_gene_labels(layout), figures.region_label_grid(layout))
    image = np.arange(6, dtype=np.float32).reshape(2, 3)
    fig = figures.image_figure(image, labels[0], empty=figures.empty_mask(layout)[0])
    trace = fig.data[0]
    assert trace.customdata[0][0] == "TP53 · chrA"
    assert trace.customdata[1][1] == "MYC · boxB"
    assert "%{customdata}" in trace.hovertemplate and "row %{y}, col %{x}" in trace.hovertemplate
    assert np.isnan(trace.z[1][0])  # empty pixel drawn blank
    assert fig.layout.yaxis.autorange == "reversed"  # row 0 on top, as in the layout

    attribution = np.full((2, 3), 0.25)
    fig = figures.image_figure(image, labels[0], attribution=attribution)
    trace = fig.data[0]
    assert trace.customdata[0][0][0] == "TP53 · chrA" and trace.customdata[0][0][1] == pytest.approx(0.25)
    assert "attribution: %{customdata[1]" in trace.hovertemplate


def test_grid_shares_one_colour_scale_and_highlights_in_every_image():
    layout = small_layout()
    labels = figures.hover_labels(figures.pixel_gene_labels(layout))[0]
    images = [np.zeros((2, 3)), np.ones((2, 3))]
    pixels = figures.find_gene_pixels(layout, "myc")
    assert pixels == [(0, 1, 1)]
    fig = figures.image_grid_figure(images, ["a", "b"], labels, zrange=(0, 1), n_cols=2, highlight_pixels=pixels)
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    marks = [t for t in fig.data if t.type == "scatter"]
    assert len(heatmaps) == 2 and all(t.coloraxis == "coloraxis" for t in heatmaps)
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0, 1)
    assert len(marks) == 2 and all(list(m.x) == [1] and list(m.y) == [1] for m in marks)
    assert fig.layout.yaxis2.autorange == "reversed"


def test_region_outline_traces_follow_row_major_runs():
    traces = figures.region_outline_traces(small_layout(), 0)
    assert len(traces) == 2
    assert set(traces[1].text) == {"chrA", "boxB"}


def test_class_means_and_differences():
    images = np.array([[[[1.0]]], [[[3.0]]], [[[10.0]]], [[[20.0]]]], dtype=np.float32)
    labels = np.array(["b", "b", "a", "a"])
    classes, means = figures.class_mean_images(images, labels)
    assert classes == ["a", "b"]
    assert means[:, 0, 0, 0].tolist() == [15.0, 2.0]
    _, diffs = figures.class_difference_images(images, labels)
    assert diffs[:, 0, 0, 0].tolist() == [13.0, -13.0]


def test_shared_range_is_symmetric_when_asked():
    lo, hi = figures.shared_range([np.array([-1.0, 3.0]), np.array([0.5])], symmetric=True, percentile=100)
    assert (lo, hi) == (-3.0, 3.0)


def test_png_grid_is_a_png_of_the_right_size():
    from PIL import Image

    data = figures.png_grid([np.zeros((4, 5)), np.ones((4, 5))], zrange=(0, 1), n_cols=2, scale=2, gap=1)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    assert image.size == (2 * (5 * 2 + 1), 4 * 2 + 1)


def test_pixel_genes_table_lists_every_gene_with_annotation():
    import pandas as pd

    layout = small_layout()
    genes = pd.DataFrame({"gene_id": layout.gene_ids, "chromosome": ["17"] * 8, "start": range(8)})
    table = figures.pixel_genes_table(layout, genes, 0, 0, 1)
    assert sorted(table["symbol"]) == ["BRCA1", "CDK4", "KRAS", "MDM2", "PTEN"]
    assert "chromosome" in table.columns


def test_hover_labels_on_a_real_chromosome_layout():
    from rnaimg_core import get_generator, load_synthetic

    expr = load_synthetic(n_samples=40, n_genes=600, n_classes=2, seed=0, n_modules=5, module_size=20,
                          n_driver_genes=10)
    layout = get_generator("chromosome")().fit(expr)
    labels = figures.pixel_gene_labels(layout)
    lists = layout.pixel_gene_lists()
    c, h, w = layout.shape
    for flat in (0, 17, layout.placement_pixel.max()):
        genes = lists[flat]
        assert labels.ravel()[flat] == layout.symbols[genes[0]]
    assert figures.pixel_under_point(layout.shape, 0.0, 0.0) == (0, 0)
    assert figures.pixel_under_point(layout.shape, 0.999, 0.999) == (h - 1, w - 1)
