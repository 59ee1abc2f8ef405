"""A real browser over the real server: hover a pixel and read its genes in the tooltip.

Starts ``streamlit run app.py`` on a free port, drives Debian's headless
Chromium with Playwright, fits the chromosome layout on the demo data, moves
the mouse over one pixel of the sample image and checks that the tooltip
names the gene the same layout (fitted here, deterministically) puts there.
A screenshot is kept in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import playwright.sync_api as playwright_api
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("RNAIMG_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    log = open(ARTIFACTS.mkdir(exist_ok=True) or ARTIFACTS / "streamlit-server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"streamlit did not start; see {log.name}")
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    # No importorskip: a missing Playwright or Chromium must fail the run, never skip it.
    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _screen_point(plot, row: int, col: int) -> tuple[float, float]:
    """Page coordinates of pixel (row, col)'s centre, from plotly's own axis maps.

    The image is drawn square (scaleanchor), so the plot area is not the whole
    drag box; plotly's axis objects know the exact offset and scale, and the
    reversed y axis (row 0 on top) is handled by ``l2p``.
    """
    return tuple(plot.evaluate(
        """(gd, rc) => {
            const r = gd.querySelector('.main-svg').getBoundingClientRect();
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            return [r.left + xa._offset + xa.l2p(rc[1]), r.top + ya._offset + ya.l2p(rc[0])];
        }""", [row, col]))


def _hover(page, x: float, y: float, expect: str) -> str:
    """Move the mouse to (x, y) and return the tooltip text once it shows ``expect``.

    Plotly throttles hover events, so the tooltip can lag one mouse event
    behind; a second small move inside the same pixel settles it. Each try
    waits for the tooltip's text, not for a fixed time.
    """
    tooltip = page.locator(".hoverlayer .hovertext").first
    for attempt in range(10):
        page.mouse.move(x - 30, y - 30)
        page.mouse.move(x, y, steps=4)
        page.mouse.move(x + 0.5, y + 0.5)
        try:
            page.wait_for_function(
                """expect => [...document.querySelectorAll('.hoverlayer .hovertext')]
                               .some(t => (t.textContent || '').includes(expect))""", arg=expect, timeout=3_000)
            break
        except playwright_api.TimeoutError:
            continue
    return (tooltip.text_content() or "") if tooltip.count() else ""


def _ready_plot(page, plot) -> None:
    """Wait until plotly has laid out ``plot`` (its axes map data to pixels) and it is on screen."""
    plot.wait_for(state="visible")
    plot.locator(".nsewdrag").first.wait_for(state="visible")
    handle = plot.element_handle()
    page.wait_for_function("gd => gd._fullLayout && gd._fullLayout.xaxis && gd._fullLayout.xaxis._length > 0",
                           arg=handle)
    plot.scroll_into_view_if_needed()
    page.wait_for_function("gd => { const r = gd.getBoundingClientRect(); "
                           "return r.top >= 0 && r.bottom <= window.innerHeight; }", arg=handle)


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
    plot = page.locator(".js-plotly-plot").first
    _ready_plot(page, plot)
    box = plot.locator(".nsewdrag").first.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100

    _, h, w = layout.shape
    checked = []
    for row, col in ((10, 20), (h // 2, w // 3), (h - 5, 3)):
        if labels[0, row, col] == "(no gene)":
            continue
        x, y = _screen_point(plot, row, col)
        assert box["x"] <= x <= box["x"] + box["width"] and box["y"] <= y <= box["y"] + box["height"]
        text = _hover(page, x, y, f"row {row}, col {col}")
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
    epochs.fill("1")
    epochs.press("Tab")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("CNN accuracy (test)").wait_for()
    # the sidebar keeps the same session (a new URL would start a new one, without the model)
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Explain").click()
    page.get_by_text("Top genes:").wait_for()
    plot = page.locator(".js-plotly-plot").nth(1)  # the attribution map
    _ready_plot(page, plot)
    row, col = 20, 30
    x, y = _screen_point(plot, row, col)
    text = _hover(page, x, y, f"row {row}, col {col}")
    assert f"row {row}, col {col}" in text, text
    assert labels[0, row, col] in text, (labels[0, row, col], text)
    assert "attribution: " in text, text
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_hover_explain.png"))
    page.close()
