"""A real browser over the real server: hover a pixel and read its genes in the tooltip.

Starts ``streamlit run app.py`` on a free port, drives Debian's headless
Chromium with Playwright, fits the chromosome layout on the demo data, moves
the mouse over one pixel of the sample image and checks that the tooltip
names the gene the same layout (fitted here, deterministically) puts there.
A screenshot is kept in ``test-artifacts/``. Server, browser and helpers: ``conftest.py``.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS, hover, idle, ready_plot, screen_point

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(fresh_server):
    """A server of this module's own: its first test is the server's first visitor (see the last test)."""
    return fresh_server


@pytest.fixture(scope="module")
def expected_labels(demo_expression):
    """(layout, hover labels) of the chromosome layout on the demo, as the dashboard builds them."""
    from rnaimg_core import get_generator

    layout = get_generator("chromosome")().fit(demo_expression)
    return layout, layout.pixel_labels()


def test_hover_shows_gene_symbols_of_the_pixel(server, browser, expected_labels):
    layout, labels = expected_labels
    page = browser.new_page(viewport={"width": 1500, "height": 1400})
    page.set_default_timeout(60_000)
    page.goto(f"{server}/Layout")
    page.get_by_role("button", name="Fit layout").click()
    # a first visit straight to a page's address gets app.py's navigation, headed "Home" (not "app")
    links = page.get_by_test_id("stSidebarNavItems").get_by_role("link")
    assert links.first.inner_text().strip() == "Home", links.all_inner_texts()
    plot = page.locator(".js-plotly-plot").first
    ready_plot(page, plot)
    box = plot.locator(".nsewdrag").first.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100

    _, h, w = layout.shape
    checked = []
    for row, col in ((10, 20), (h // 2, w // 3), (h - 5, 3)):
        if labels[0, row, col] == "(no gene)":
            continue
        x, y = screen_point(plot, row, col)
        assert box["x"] <= x <= box["x"] + box["width"] and box["y"] <= y <= box["y"] + box["height"]
        text = hover(page, x, y, f"row {row}, col {col}")
        assert f"row {row}, col {col}" in text, text
        assert labels[0, row, col] in text, (labels[0, row, col], text)
        checked.append((row, col, labels[0, row, col]))
    assert checked, "no pixel with a gene was hovered"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_hover_layout.png"))
    page.close()


def test_explain_hover_shows_genes_and_attribution(server, browser, expected_labels):
    layout, labels = expected_labels
    page = browser.new_page(viewport={"width": 1500, "height": 1400})
    page.set_default_timeout(120_000)
    page.goto(f"{server}/Train")
    epochs = page.get_by_role("spinbutton", name="epochs (maximum)")
    epochs.wait_for()
    idle(page)  # a value typed or a click made while the page's run is still going can be lost
    epochs.fill("1")
    epochs.press("Tab")
    idle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("CNN balanced accuracy").wait_for()
    # the sidebar keeps the same session (a new URL would start a new one, without the model)
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Explain").click()
    page.get_by_text("Top genes:").wait_for()
    plot = page.locator(".js-plotly-plot").nth(1)  # the attribution map
    ready_plot(page, plot)
    row, col = 20, 30
    x, y = screen_point(plot, row, col)
    text = hover(page, x, y, f"row {row}, col {col}")
    assert f"row {row}, col {col}" in text, text
    assert labels[0, row, col] in text, (labels[0, row, col], text)
    assert "attribution: " in text, text
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_hover_explain.png"))
    page.close()


def test_a_page_opened_by_its_address_shows_the_app_navigation(server, browser):
    """This module's first visitor opened /Layout directly, which Streamlit runs the old ``pages/`` way;
    later visitors of any page address get ``app.py``'s navigation (headed "Home", not "app")."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(f"{server}/Gallery")
    page.get_by_text("Samples by class").first.wait_for()
    links = page.get_by_test_id("stSidebarNavItems").get_by_role("link")
    names = [name.strip() for name in links.all_inner_texts()]
    assert names[:2] == ["Home", "Data"], names
    assert "app" not in names, names
    page.close()
