"""Figure files for slides and papers: every one has its title, colour bar and caption, as PNG and SVG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dashboard import export
from rnaimg_core import fit_layout, load_demo
from rnaimg_core.images import shared_range
from rnaimg_core.walkthrough import gene_steps


@pytest.fixture(scope="module")
def demo():
    expr = load_demo()
    layout = fit_layout(expr, "chromosome")
    return expr, layout, layout.transform(expr.values[:3], expr.gene_ids)


def test_every_step_of_the_classroom_has_title_caption_and_colour_bar(demo):
    expr, layout, images = demo
    steps = gene_steps(layout, expr, 0, ["EGFR", "APOE"])
    image, empty = images[0, 0], layout.genes_per_pixel[0] == 0
    zrange = shared_range([image], symmetric=True)
    made = {
        "1 · The table": export.table_figure(steps, expr.sample_ids[0], expr.labels[0]),
        "2 · Normalisation": export.normalisation_figure(steps, "z-score", "RdBu_r", zrange, log_applied=True),
        "3 · Each gene gets a pixel": export.pixel_figure(image, empty, steps, layout, colorscale="RdBu_r",
                                                          zrange=zrange, value_name="z-score"),
        "4 · The image": export.image_export_figure(image, empty, layout, title="4 · The image", caption="All genes.",
                                                    colorscale="RdBu_r", zrange=zrange, value_name="z-score"),
        "5 · One sample and its class": export.class_mean_figure(image, images[1, 0], empty, layout, sample="s",
                                                                 label="A", n_class=2, colorscale="RdBu_r",
                                                                 zrange=zrange, value_name="z-score"),
    }
    for title, fig in made.items():
        svg = export.to_svg(fig).decode()
        assert title in svg, title  # text stays text in the SVG: titles and captions editable on a slide
        png = Image.open(io.BytesIO(export.to_png(fig)))
        assert png.size == (1200, 675)  # a 16:9 slide
    for title in ("3 · Each gene gets a pixel", "4 · The image", "5 · One sample and its class"):
        assert "z-score" in export.to_svg(made[title]).decode()  # the colour bar's title
    assert "EGFR (chr7)" in export.to_svg(made["3 · Each gene gets a pixel"]).decode()
    assert "chromosome" in export.to_svg(made["1 · The table"]).decode()


def test_the_gallery_grid_file_has_titles_a_colour_bar_and_a_caption(demo):
    _, layout, images = demo
    shown = [images[i, 0] for i in range(3)]
    args = (shown, ["A<br>s1", "A<br>s2", "B<br>s3"], layout.genes_per_pixel[0] == 0)
    options = dict(colorscale="Viridis", zrange=(-2.0, 2.0), value_name="mean z-score", n_cols=3,
                   title="Class means · chromosome layout", caption="Each class's mean image.")
    svg = export.grid_svg(*args, **options).decode()
    for text in ("Class means · chromosome layout", "Each class's mean image.", "mean z-score", "s3"):
        assert text in svg, text
    png = Image.open(io.BytesIO(export.grid_png(*args, **options)))
    assert png.size[0] > png.size[1] > 200 and np.asarray(png).std() > 0
