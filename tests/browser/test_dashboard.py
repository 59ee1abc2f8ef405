"""A biologist's and a teacher's walk through the dashboard in real Chromium, on the worker's shared server.

- region (chromosome) labels are drawn on the landing, Layout, Gallery and Explain images, and their text
  is legible: the contrast of the rendered text colour on the rendered label box (composited over black
  and over white, the worst cases underneath) is at least 4.5:1 (WCAG AA);
- the Train page headlines balanced accuracy of the CNN and of the baseline, readable without hovering;
- clicking a pixel on the Explain page lists that pixel's genes;
- the Data page lists old gene symbols of several genes with their candidates;
- a reload keeps an upload, the fitted layout and the trained model (the session's token in the URL finds its
  workspace on the server);
- every page is photographed at 1400×1000 into ``test-artifacts/`` to be looked at.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from playwright import sync_api as playwright_api

from tests.browser.conftest import ARTIFACTS, hover, idle, ready_plot, screen_point

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORT = {"width": 1400, "height": 1000}
MIN_CONTRAST = 4.5

# Every region label's rendered text colour and label-box colour (plotly draws annotations as SVG).
LABEL_COLOURS_JS = """gd => [...gd.querySelectorAll('g.annotation')].map(a => {
    const text = a.querySelector('text.annotation-text'), box = a.querySelector('rect.bg');
    if (!text || !box) return null;
    const ts = getComputedStyle(text), bs = getComputedStyle(box);
    return {text: text.textContent, fg: ts.fill, bg: bs.fill, bgOpacity: parseFloat(bs.fillOpacity || '1')};
}).filter(x => x && x.bgOpacity > 0)"""


def _rgb(css: str) -> np.ndarray:
    return np.array([float(v) for v in re.findall(r"[\d.]+", css)[:3]])


def _luminance(rgb: np.ndarray) -> float:
    c = rgb / 255
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])


def contrast(fg: np.ndarray, bg: np.ndarray) -> float:
    """WCAG contrast ratio of two colours."""
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def check_region_labels(page, plot, at_least: int) -> list[str]:
    """The plot's region labels: at least ``at_least``, each legible over any colour under its box."""
    labels = plot.evaluate(LABEL_COLOURS_JS)
    assert len(labels) >= at_least, labels
    for label in labels:
        fg, bg, alpha = _rgb(label["fg"]), _rgb(label["bg"]), label["bgOpacity"]
        for under in (np.zeros(3), np.full(3, 255.0)):
            shown = alpha * bg + (1 - alpha) * under
            assert contrast(fg, shown) >= MIN_CONTRAST, (label, contrast(fg, shown))
    return [label["text"] for label in labels]


def laid_out(page, plot) -> None:
    """Wait until plotly has drawn ``plot`` (it may be taller than the window)."""
    plot.wait_for(state="attached", timeout=240_000)  # a grid of 18 images takes a while on a busy machine
    page.wait_for_function("gd => gd._fullLayout && gd._fullLayout.xaxis && gd._fullLayout.xaxis._length > 0",
                           arg=plot.element_handle())


def nav(page, name: str) -> None:
    """Go to a page through the sidebar (same browser session)."""
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name=name).click()


def shot(page, name: str, *, top: bool = True) -> None:
    """Screenshot into test-artifacts/: by default of the top of the page (what a person first sees)."""
    if top:
        # Streamlit scrolls its main section, not the window
        page.evaluate("() => { window.scrollTo(0, 0); document.querySelectorAll('[data-testid=stMain], "
                      "[data-testid=stAppViewContainer], section.main').forEach(e => e.scrollTo(0, 0)); }")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"page_{name}.png"))


@pytest.fixture(scope="module")
def session_page(server, browser):
    """One browser tab whose session goes through the pages in order (tests below run in file order)."""
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(120_000)
    page.goto(server)
    yield page
    page.close()


def test_landing_shows_how_an_image_is_made_with_legible_chromosome_labels(session_page):
    page = session_page
    page.get_by_text("How an image is made").wait_for()
    plot = page.locator(".js-plotly-plot").nth(1)  # class means
    laid_out(page, plot)
    names = check_region_labels(page, plot, at_least=20)
    assert {"1", "19"} <= set(names)
    flow = page.locator(".js-plotly-plot").first
    laid_out(page, flow)
    assert "EGFR" in " ".join(flow.evaluate("gd => [...gd.querySelectorAll('g.annotation')].map(a => a.textContent)"))
    assert re.search(r"[?&]s=[A-Za-z0-9_-]{40,}", page.url), page.url  # the private session token
    shot(page, "home")


def test_layout_and_gallery_label_chromosomes_legibly(session_page):
    page = session_page
    nav(page, "Layout")
    page.get_by_text("Sample image").first.wait_for()
    plot = page.locator(".js-plotly-plot").first
    laid_out(page, plot)
    assert "chr19" in check_region_labels(page, plot, at_least=20)
    shot(page, "layout")
    nav(page, "Gallery")
    page.get_by_text("Samples by class").first.wait_for()
    plot = page.locator(".js-plotly-plot").first
    laid_out(page, plot)
    check_region_labels(page, plot, at_least=20)
    shot(page, "gallery")
    page.get_by_role("tab", name="Class minus rest").click()
    diffs = page.get_by_text("Each class's mean image minus the mean of all other samples")
    diffs.wait_for()
    diffs.scroll_into_view_if_needed()
    shot(page, "gallery_class_minus_rest", top=False)


def test_train_headlines_balanced_accuracy_of_cnn_and_baseline(session_page):
    page = session_page
    nav(page, "Train")
    epochs = page.get_by_role("spinbutton", name="epochs (maximum)")
    epochs.wait_for()
    idle(page)  # a value typed while the page's run is still going can be lost
    epochs.fill("1")
    epochs.press("Tab")
    idle(page)  # the typed value reran the page: a click during that run can be lost
    page.get_by_role("button", name="Train", exact=True).click()
    for label in ("CNN balanced accuracy", "Baseline balanced accuracy"):
        tile = page.get_by_test_id("stMetric").filter(has_text=label)
        tile.wait_for(timeout=300_000)  # one epoch and the baseline; slow only on a busy machine
        value = tile.get_by_test_id("stMetricValue").inner_text()
        assert re.fullmatch(r"\d+\.\d %", value.strip()), value  # the number itself, not in a tooltip
        assert tile.is_visible()
    assert page.get_by_text("Test samples per class:").is_visible()
    shot(page, "train")
    for _ in range(5):  # the page may still redraw its charts after the headline: find the title afresh
        try:
            page.get_by_text("CNN confusion matrix (test)").first.scroll_into_view_if_needed(timeout=10_000)
            break
        except playwright_api.Error:
            page.wait_for_timeout(500)
    shot(page, "train_results", top=False)


def test_clicking_a_pixel_on_explain_lists_its_genes(session_page, demo_expression):
    from rnaimg_core import get_generator

    layout = get_generator("chromosome")().fit(demo_expression)  # what the page fitted (deterministic)
    page = session_page
    nav(page, "Explain")
    page.get_by_text("Top genes:").wait_for()
    plot = page.locator(".js-plotly-plot").nth(1)  # the attribution map
    ready_plot(page, plot)
    check_region_labels(page, plot, at_least=20)
    row, col = 37, 51
    genes = [str(layout.display_names[g]) for g in layout.pixel_genes(0, row, col)]
    assert genes
    heading = page.get_by_text(f"Pixel (row {row}, col {col})")
    for stale in ARTIFACTS.glob("page_explain_click_try*.png"):  # pictures of a failed click, if any
        stale.unlink()
    for attempt in range(3):
        # Plotly throttles hover events and a click selects the point hovered last: click only once the
        # tooltip names the target pixel (a click right after a fast move can land on a pixel passed on the way)
        x, y = screen_point(plot, row, col)
        assert f"row {row}, col {col}" in hover(page, x, y, f"row {row}, col {col}")
        page.mouse.click(x + 0.5, y + 0.5)
        try:
            heading.wait_for(timeout=60_000)
            break
        except Exception:
            shot(page, f"explain_click_try{attempt}", top=False)
    heading.wait_for(timeout=1_000)
    table = page.get_by_test_id("stDataFrame").first
    table.wait_for()
    page.wait_for_function("g => document.body.innerText.includes(g)", arg=genes[0])
    heading.scroll_into_view_if_needed()
    shot(page, "explain_clicked_pixel", top=False)
    shot(page, "explain")


def test_data_page_explains_unmatched_gene_ids(session_page):
    page = session_page
    nav(page, "Data")
    page.get_by_text("Summary").first.wait_for()
    page.get_by_test_id("stDataFrame").filter(has_text="matched by").wait_for()  # the tables are drawn
    shot(page, "data")
    # the demo's old symbols of several genes, each with today's candidates, in plain words
    heading = page.get_by_text(re.compile(r"gene id\(s\) matched no gene")).first
    heading.wait_for()
    page.get_by_text("old official symbols that HGNC later gave to more than one gene").wait_for()
    table = page.get_by_test_id("stDataFrame").filter(has_text="symbol in your data")
    table.wait_for()
    heading.scroll_into_view_if_needed()
    page.mouse.wheel(0, 250)
    page.wait_for_timeout(500)  # the table's canvas draws after scrolling
    shot(page, "data_gene_mapping", top=False)


def test_a_reload_keeps_the_layout_and_the_trained_model(session_page):
    page = session_page
    token = re.search(r"[?&]s=([A-Za-z0-9_-]+)", page.url).group(1)
    page.reload()
    page.get_by_text(re.compile(r"Your session was restored: .*layout\(s\), the trained model")).wait_for()
    assert token in page.url
    nav(page, "Explain")
    page.get_by_text("Top genes:").wait_for()  # no "Train a model first": the model came back
    assert not page.get_by_text("Train a model first").count()


def test_a_reload_keeps_the_upload(server, browser):
    rng = np.random.default_rng(1)
    genes = ["TP53", "EGFR", "MYC", "KRAS", "PTEN", "CDK4", "MDM2", "BRCA1", "GFAP", "OLIG2"]
    frame = pd.DataFrame(rng.gamma(2, 50, size=(14, len(genes))), columns=genes,
                         index=pd.Index([f"patient{i}" for i in range(14)], name="sample"))
    frame.insert(0, "tumor_type", ["A"] * 7 + ["B"] * 7)
    buffer = io.StringIO()
    frame.to_csv(buffer)
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(60_000)
    page.goto(f"{server}/Data")
    page.get_by_text("Upload a file").wait_for()
    idle(page)  # a choice made while the page's first run is still going can be lost
    page.get_by_text("Upload a file").click()
    page.locator("input[type=file]").first.set_input_files(
        files=[{"name": "my_cohort.csv", "mimeType": "text/csv", "buffer": buffer.getvalue().encode()}])
    idle(page)
    page.get_by_role("button", name="Read the file").click()
    page.get_by_text("Read my_cohort.csv").wait_for()
    token = re.search(r"[?&]s=([A-Za-z0-9_-]+)", page.url).group(1)

    page.reload()
    samples = page.get_by_test_id("stMetric").filter(has_text="Samples")
    samples.wait_for()
    page.wait_for_function("() => document.body.innerText.includes('my_cohort.csv')")
    assert samples.get_by_test_id("stMetricValue").inner_text().strip() == "14"
    assert token in page.url  # the same session
    shot(page, "data_after_reload")

    # another browser session without the token does not see it
    other = browser.new_page(viewport=VIEWPORT)
    other.goto(f"{server}/Data")
    other.get_by_test_id("stMetric").filter(has_text="Samples").wait_for()
    assert other.get_by_test_id("stMetric").filter(has_text="Samples").get_by_test_id(
        "stMetricValue").inner_text().strip() == "184"
    assert token not in other.url
    other.close()
    page.close()
