"""The dashboard's figures, without streamlit: gene hover, region overlays, grids, charts, PNGs."""

from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard import figures
from rnaimg_core import get_generator, load_synthetic


@pytest.fixture(scope="module")
def layout():
    expr = load_synthetic(n_samples=40, n_genes=600, n_classes=2, seed=0, n_modules=5, module_size=20,
                          n_driver_genes=10)
    return get_generator("chromosome")().fit(expr)


def hover(layout):
    return figures.hover_labels(layout.pixel_labels(), layout.region_grid())


def first_pixels(layout, n: int = 2) -> list[tuple[int, int]]:
    """(row, col) of the first ``n`` pixels of channel 0 that hold a gene and lie in a region."""
    filled = (layout.genes_per_pixel[0] > 0) & (layout.region_grid()[0] != "")
    return list(zip(*np.nonzero(filled)))[:n]


def test_heatmap_hover_carries_genes_region_value_and_attribution(layout):
    labels = hover(layout)
    _, h, w = layout.shape
    image = np.arange(h * w, dtype=np.float32).reshape(h, w)
    empty = layout.genes_per_pixel[0] == 0
    fig = figures.image_figure(image, labels[0], empty=empty)
    trace = fig.data[0]
    row, col = first_pixels(layout, 1)[0]
    region = layout.region_grid()[0, row, col]
    assert trace.customdata[row][col] == f"{layout.pixel_labels()[0, row, col]} · {region}"
    assert "%{customdata}" in trace.hovertemplate and "row %{y}, col %{x}" in trace.hovertemplate
    r0, c0 = map(int, np.argwhere(empty)[0])
    assert np.isnan(trace.z[r0][c0])  # empty pixel drawn blank
    assert fig.layout.yaxis.autorange == "reversed"  # row 0 on top, as in the layout

    fig = figures.image_figure(image, labels[0], attribution=np.full((h, w), 0.25))
    trace = fig.data[0]
    assert trace.customdata[row][col][0] == labels[0, row, col]
    assert trace.customdata[row][col][1] == pytest.approx(0.25)
    assert "attribution: %{customdata[1]" in trace.hovertemplate


def test_grid_shares_one_colour_scale_and_highlights_in_every_image(layout):
    labels = hover(layout)[0]
    _, h, w = layout.shape
    images = [np.zeros((h, w)), np.ones((h, w))]
    gene = layout.pixel_genes(0, *first_pixels(layout, 1)[0])[0]
    pixels = layout.gene_coordinates([gene])
    fig = figures.image_grid_figure(images, ["a", "b"], labels, zrange=(0, 1), n_cols=2, highlight_pixels=pixels)
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    marks = [t for t in fig.data if t.type == "scatter"]
    assert len(heatmaps) == 2 and all(t.coloraxis == "coloraxis" for t in heatmaps)
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0, 1)
    expected = [(r, c) for ch, r, c in pixels if ch == 0]
    assert len(marks) == 2 and all(list(zip(m.y, m.x)) == expected for m in marks)
    assert fig.layout.yaxis2.autorange == "reversed"


def test_grid_region_labels_sit_on_every_image_and_the_figure_is_valid(layout):
    labels = hover(layout)[0]
    _, h, w = layout.shape
    images = [np.zeros((h, w)), np.ones((h, w)), np.full((h, w), -0.0)]
    fig = figures.image_grid_figure(images, ["a", "b", "c"], labels, zrange=(-1, 1), n_cols=2, regions=layout)
    regions = [a for a in fig.layout.annotations if a.name == "region"]
    per_image = {ref: [a.text for a in regions if a.xref == ref] for ref in ("x", "x2", "x3")}
    assert per_image["x"] and per_image["x"] == per_image["x2"] == per_image["x3"]  # one placement, on each image
    assert all(a.yref == "y" + a.xref[1:] for a in regions)
    outlines = [t for t in fig.data if t.type == "scatter" and t.mode == "lines"]
    assert sorted(t.xaxis for t in outlines) == ["x", "x2", "x3"]
    assert [a.text for a in fig.layout.annotations if a.name != "region"] == ["a", "b", "c"]  # subplot titles
    assert fig.layout.yaxis3.scaleanchor == "x3" and fig.layout.yaxis3.autorange == "reversed"
    assert not np.signbit(np.asarray(fig.data[2].z)).any()  # no "-0" to read in the hover


def test_set_annotations_appends_in_one_assignment():
    fig = go.Figure(layout=dict(annotations=[dict(text="kept", showarrow=False)]))
    figures.set_annotations(fig, [dict(text=str(i), x=i, y=0, showarrow=False) for i in range(300)])
    assert [a.text for a in fig.layout.annotations][:2] == ["kept", "0"] and len(fig.layout.annotations) == 301


def test_fixed_decimals_never_read_minus_zero():
    assert figures.fixed(-0.0004) == "0.000" and figures.fixed(-0.0006) == "-0.001"
    assert figures.fixed(0.25, 2) == "0.25" and figures.fixed(None) == "–"


def test_regions_are_outlined_and_named_in_dark_text_on_a_light_box(layout):
    traces = figures.region_outline_traces(layout, 0)
    assert len(traces) == 1 and traces[0].mode == "lines"
    names = {str(r["name"]) for r in layout.regions if int(r.get("channel", 0)) == 0}
    labels = figures.region_label_annotations(layout, 0, px_per_cell=40)  # a large image: room for every name
    assert {a["text"] for a in labels} == names
    assert all(a["font"]["color"] == figures.LABEL_TEXT and a["bgcolor"] == figures.LABEL_BOX for a in labels)
    short = figures.region_label_annotations(layout, 0, short=True, xref=2, px_per_cell=40)
    assert "1" in {a["text"] for a in short} and short[0]["xref"] == "x2"
    _, h, w = layout.shape
    fig = figures.image_figure(np.zeros((h, w)), hover(layout)[0], regions=(layout, 0), region_labels=False)
    assert not fig.layout.annotations and fig.layout.xaxis.showticklabels  # toggle off; axes numbered


def _label_boxes(labels: list[dict], px_per_cell: float) -> list[tuple[float, float, float, float]]:
    """(x0, x1, y0, y1) of each label's box in data units, as :func:`figures.region_label_annotations` sizes it."""
    boxes = []
    for a in labels:
        size = a["font"]["size"]
        bw = (figures.CHAR_WIDTH_EM * size * len(a["text"]) + figures.LABEL_PAD_PX) / px_per_cell
        bh = (figures.LINE_HEIGHT_EM * size + figures.LABEL_PAD_PX) / px_per_cell
        boxes.append((a["x"] - bw / 2, a["x"] + bw / 2, a["y"] - bh / 2, a["y"] + bh / 2))
    return boxes


def _overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


@pytest.fixture(scope="module")
def demo_chromosome(demo_expression):
    return get_generator("chromosome")().fit(demo_expression, quality=False)


@pytest.mark.parametrize("px_per_cell", [4.6, 3.4, 2.6, 1.6])
def test_region_labels_never_overlap_or_leave_the_image_at_any_size(demo_chromosome, px_per_cell):
    """The demo's small chromosomes (13, 20-22, X, Y) sit a few rows apart: at the sizes the pages draw them,
    their labels take turns sideways instead of stacking, and shrink or shorten, or drop, rather than collide."""
    layout = demo_chromosome
    _, h, w = layout.shape
    labels = figures.region_label_annotations(layout, 0, px_per_cell=px_per_cell)
    boxes = _label_boxes(labels, px_per_cell)
    assert not [(labels[i]["text"], labels[j]["text"]) for i in range(len(boxes)) for j in range(i)
                if _overlap(boxes[i], boxes[j])]
    assert all(b[0] >= -0.5 - 1e-9 and b[1] <= w - 0.5 + 1e-9 and b[2] >= -0.5 - 1e-9 and b[3] <= h - 0.5 + 1e-9
               for b in boxes)
    texts = {a["text"] for a in labels}
    # every label sits on its own chromosome (at most a row off), never pushed by the image's edge over others
    grid = layout.region_grid()[0]
    for a in labels:
        rows = np.flatnonzero((grid == (a["text"] if a["text"].startswith("chr") else "chr" + a["text"])).any(axis=1))
        assert np.abs(rows - a["y"]).min() <= 1.0, a["text"]
    if px_per_cell >= 3.4:  # the Layout, Explain and Gallery sizes: every chromosome named, 13 and 20-22 included
        assert len(labels) == len(layout.regions)
        assert all(any(t in (f"chr{c}", c) for t in texts) for c in ("13", "20", "21", "22", "X", "Y"))
    else:  # a thumbnail (chrY's one row at the bottom cannot carry a 7-row label): the hover names the rest
        assert 0 < len(labels) <= len(layout.regions)
    grid = layout.region_grid()[0]
    for a in labels:  # each label starts from a pixel of its own region
        row, col = int(round(a["y"])), int(round(a["x"]))
        near = grid[max(0, row - 6):row + 7, max(0, col - 1):col + 2]
        assert any(n.endswith(a["text"]) or a["text"].rstrip("…") in n for n in near.ravel()), a


def test_treemap_labels_stay_apart_and_long_go_terms_shrink_or_shorten(demo_expression):
    layout = get_generator("gene_ontology")(style="treemap").fit(demo_expression, quality=False)
    _, h, w = layout.shape
    scale = figures.drawn_px_per_cell((h, w), 530, 460)  # the Layout page's sample image
    labels = figures.region_label_annotations(layout, 0, px_per_cell=scale)
    boxes = _label_boxes(labels, scale)
    assert not any(_overlap(boxes[i], boxes[j]) for i in range(len(boxes)) for j in range(i))
    top = [r["name"] for r in layout.regions if r["level"] == 0]
    assert sum(a["text"] in top for a in labels) >= len(top) - 2  # nearly every block named in full


def test_images_have_no_stray_tick_marks_and_grid_images_sit_under_their_titles(layout):
    _, h, w = layout.shape
    images = [np.zeros((h, w))] * 6
    grid = figures.image_grid_figure(images, list("abcdef"), hover(layout)[0], zrange=(0, 1), n_cols=3,
                                     cell_px=330, regions=layout)
    assert grid.layout.yaxis.ticks == "" and grid.layout.xaxis4.ticks == ""
    assert grid.layout.yaxis4.constraintoward == "top"
    # a row is as tall as a square image in its column plus the title, not the 330 px asked for
    assert grid.layout.height < 330 * 2 + 60
    flow = figures.gene_flow_figure(np.zeros((h, w)), hover(layout)[0], [("G1", 1.0, 2, 3)])
    assert flow.layout.yaxis.ticks == "" and flow.layout.xaxis.range[0] > -0.75 * w


def test_clickable_images_colour_bar_sits_below_the_axis_title(layout):
    _, h, w = layout.shape
    fig = figures.image_figure(np.zeros((h, w)), hover(layout)[0], clickable=True, regions=(layout, 0))
    bar = fig.data[0].colorbar
    assert bar.orientation == "h" and bar.yref == "container" and bar.y == 0 and bar.yanchor == "bottom"
    # the bottom margin holds the column numbers and title (about 40 px) above the bar (thickness + pad)
    assert fig.layout.margin.b >= 40 + bar.thickness + bar.ypad + 20


def test_clickable_image_has_one_invisible_marker_per_pixel_carrying_row_col_and_genes(layout):
    labels = hover(layout)[0]
    _, h, w = layout.shape
    image = np.arange(h * w, dtype=float).reshape(h, w)
    fig = figures.image_figure(image, labels, attribution=np.ones((h, w)), clickable=True)
    click = fig.data[-1]
    assert click.type == "scatter" and len(click.x) == h * w and click.marker.opacity == 0
    row, col = h - 1, 2
    i = row * w + col
    assert (click.y[i], click.x[i]) == (row, col)
    assert list(click.customdata[i][:3]) == [row, col, labels[row, col]]
    assert "attribution: %{customdata[4]" in click.hovertemplate
    assert fig.data[0].hoverinfo == "skip"  # one hover source: the tooltip and the click name the same pixel


def test_download_files_are_built_on_click_and_read_back(layout, tmp_path):
    from functools import partial

    from dashboard.glue import images_file_bytes, npy_bytes
    from rnaimg_core.images import read_images

    expr = load_synthetic(n_samples=40, n_genes=600, n_classes=2, seed=0, n_modules=5, module_size=20,
                          n_driver_genes=10)
    images = layout.transform(expr.values, expr.gene_ids)
    build = partial(images_file_bytes, images, layout, expr.sample_ids.tolist(), expr.labels.tolist())
    (tmp_path / "images.npz").write_bytes(build())  # what the Gallery's button hands over when clicked
    back = read_images(tmp_path / "images.npz")
    assert np.array_equal(back.images, images) and back.labels.tolist() == expr.labels.tolist()
    assert np.array_equal(np.load(io.BytesIO(npy_bytes(images[0]))), images[0])


def test_the_images_download_carries_the_held_out_samples_as_the_cli_file_does(tmp_path):
    from dashboard.glue import images_file_bytes
    from dashboard.state import AppState
    from rnaimg_core.images import read_images
    from rnaimg_core.splits import HOLDOUT, layout_split

    expr = load_synthetic(n_samples=40, n_genes=600, n_classes=2, seed=0, n_modules=5, module_size=20,
                          n_driver_genes=10)
    state = AppState()
    state.set_data(expr, "synthetic:test-split")  # the dashboard holds a stratified share out of every fit
    layout = get_generator("random")().fit(expr, train_index=state.fit_index)
    (tmp_path / "images.npz").write_bytes(images_file_bytes(layout.transform(expr.values, expr.gene_ids), layout,
                                                            expr.sample_ids.tolist(), expr.labels.tolist()))
    back = read_images(tmp_path / "images.npz")
    assert (state.split == HOLDOUT).sum() > 0
    assert back.split.tolist() == state.split.tolist()  # the samples the dashboard held out, held out in the file
    assert back.split.tolist() == layout_split(layout.fit_sample_ids, expr.sample_ids).tolist()  # as `rnaimg convert`
    assert back.sample_ids.tolist() == expr.sample_ids.tolist() and back.layout.gene_ids.tolist() == \
        layout.gene_ids.tolist()


def test_quality_samples_are_named_in_words():
    from dashboard.glue import quality_samples_text

    assert quality_samples_text({"quality_samples": "holdout (n=37)"}) == "the 37 held-out samples"
    fitted = quality_samples_text({"quality_samples": "fit samples (n=40; no holdout: in-sample figures read high)"})
    assert fitted.startswith("the samples the layout was fitted on (n=40")
    assert quality_samples_text({}) == "the samples the layout was fitted on"


def test_clicked_pixel_reads_the_selection():
    from dashboard.glue import clicked_pixel

    assert clicked_pixel({"selection": {"points": [{"x": 7, "y": 3, "curve_number": 1}]}}) == (3, 7)
    assert clicked_pixel({"selection": {"points": []}}) is None
    assert clicked_pixel(None) is None


def test_headline_names_balanced_accuracy_of_both_models_and_small_classes():
    summary = {"accuracy": 0.9, "balanced_accuracy": 0.8, "baseline_accuracy": 0.85,
               "baseline_balanced_accuracy": 0.75, "balanced_accuracy_ci": [0.6, 0.92], "n_test": 12,
               "n_test_per_class": {"A": 9, "B": 3}, "small_test_classes": ["B"]}
    headline = figures.headline_scores(summary)
    labels = [t["label"] for t in headline["tiles"]]
    assert labels == ["CNN balanced accuracy", "Baseline balanced accuracy"]
    assert headline["tiles"][0]["value"] == "80.0 %" and "60–92 %" in headline["tiles"][0]["caption"]
    assert headline["per_class"] == "A: 9 · B: 3" and headline["small"] == "B (3)"
    assert "no interval" in headline["tiles"][1]["caption"]  # the baseline's interval is missing


def test_tables_and_charts(layout):
    quality = figures.quality_table(layout)
    assert list(quality.columns) == ["figure", "value"] and len(quality) > 0
    classes, routes, join = figures.report_tables({"classes": {"b": 2, "a": 3},
                                                   "gene_mapping": {"by_route": {"symbol": 5, "entrez": 9}}})
    assert classes["class"].tolist() == ["a", "b"] and routes["matched by"].tolist() == ["entrez", "symbol"]
    assert join is None
    curves = figures.training_curves_figure([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2}])
    assert {t.name for t in curves.data} == {"train_loss", "val_loss"}
    confusion = figures.confusion_figure(np.array([[3, 1], [0, 4]]), ["a", "b"])
    assert confusion.data[0].z.tolist() == [[3, 1], [0, 4]]


def test_colour_map_follows_the_layouts_own_normalisation():
    """z-scored layouts get the diverging map; Lyu & Haque's 0-1 per-sample scaling and minmax a sequential one."""
    expr = load_synthetic(n_samples=40, n_genes=600, n_classes=2, seed=0, n_modules=5, module_size=20,
                          n_driver_genes=10)
    zscored = get_generator("chromosome")().fit(expr)
    lyu_haque = get_generator("chromosome")(preset="lyu_haque_paper").fit(expr)
    minmax = get_generator("chromosome")(scale="minmax").fit(expr)
    raw = get_generator("chromosome")(scale="none").fit(expr)
    assert lyu_haque.normalization.scale == "sample_max" and minmax.normalization.scale == "minmax"
    images = lyu_haque.transform(expr.values, expr.gene_ids)
    assert images.min() >= 0 and images.max() == 1  # what the sequential map shows: 0 to each sample's peak
    assert figures.layout_values_signed(zscored, zscored.transform(expr.values, expr.gene_ids))
    assert not figures.layout_values_signed(lyu_haque, images)
    assert not figures.layout_values_signed(minmax)
    raw_images = raw.transform(expr.values, expr.gene_ids)
    assert not figures.layout_values_signed(raw, raw_images)  # log2(1 + counts): never negative
    assert figures.layout_values_signed(raw, raw_images - raw_images.mean())  # already centred input
    assert figures.colorscale_for(figures.layout_values_signed(lyu_haque, images)) == figures.SEQUENTIAL
