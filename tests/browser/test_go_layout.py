"""A real browser over the real server: the Gene Ontology treemap on the Layout page, with named blocks.

Chooses the ``gene_ontology`` generator with ``style = treemap`` on the demo,
fits it, checks that the page draws the block names (GO terms) over the image
and that hovering a pixel names its gene and its block's GO term (the same
layout fitted here, deterministically). Screenshot: ``test-artifacts/browser_go_treemap.png``.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.conftest import ARTIFACTS, hover, idle, playwright_api, ready_plot, screen_point

ROOT_BLOCK = "other biological process"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def treemap(demo_expression):
    """(layout, hover labels, region names per pixel) of the GO treemap on the demo."""
    from rnaimg_core import get_generator

    layout = get_generator("gene_ontology")(style="treemap").fit(demo_expression, quality=False)
    return layout, layout.pixel_labels(), layout.region_grid()


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label``."""
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True)).first
    box.click()
    page.get_by_role("option", name=option).first.click()


def test_layout_page_shows_named_go_blocks_and_hover_names_the_term(server, browser, treemap):
    layout, labels, regions = treemap
    page = browser.new_page(viewport={"width": 1600, "height": 2200})
    page.set_default_timeout(180_000)
    page.goto(f"{server}/Layout")
    idle(page)  # a choice made while the page's first run is still going can be lost
    _choose(page, "Generator", "Gene Ontology  ·  gene_ontology")
    idle(page)
    _choose(page, "style", "treemap")
    idle(page)
    page.get_by_role("button", name="Fit layout").click()
    confirm = page.get_by_role("button", name="Fit Gene Ontology now")  # shown when a fit is expected to be slow
    try:
        confirm.wait_for(timeout=5_000)
        confirm.click()
    except playwright_api.TimeoutError:
        pass
    plot = page.locator(".js-plotly-plot").first
    # the treemap's catch-all block, which the embedding style (fitted first, on the switch) does not have
    try:
        plot.locator(".annotation-text", has_text=ROOT_BLOCK).first.wait_for()
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "browser_go_treemap.png"), full_page=True)
    ready_plot(page, plot)

    top_blocks = [r for r in layout.regions if r["level"] == 0]
    shown = plot.locator(".annotation-text").all_text_contents()
    assert sum(r["name"] in shown for r in top_blocks) >= len(top_blocks) - 2, shown  # named blocks drawn

    # hover the centre pixel of the largest child block: the tooltip names its gene and GO term
    children = sorted((r for r in layout.regions if r["level"] == 1),
                      key=lambda r: -(r["rows"][1] - r["rows"][0]) * (r["cols"][1] - r["cols"][0]))
    checked = 0
    for region in children[:3]:
        row = int(np.mean(region["rows"]))
        col = int(np.mean(region["cols"]))
        if labels[0, row, col] == "(no gene)":
            continue
        x, y = screen_point(plot, row, col)
        text = hover(page, x, y, f"row {row}, col {col}")
        assert labels[0, row, col] in text, (labels[0, row, col], text)
        assert regions[0, row, col] == region["name"] and region["name"] in text, (region["name"], text)
        checked += 1
    assert checked
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_go_treemap.png"), full_page=True)
    page.close()
