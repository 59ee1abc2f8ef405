"""What the browser tests share: a real ``streamlit run app.py`` (one per worker, or a module's own), Debian's Chromium, plot helpers
(starting the server and Chromium's flags: ``server.py``, shared with the page benchmarks).

Facts these rest on are in ``/work/shared/TESTING.md`` (Streamlit 1.67, Plotly, Chromium here).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import playwright.sync_api as playwright_api
import pytest

from tests.browser.server import CHROMIUM, LAUNCH_ARGS, start_streamlit, stop

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


@contextlib.contextmanager
def streamlit_server(name: str):
    """A real ``streamlit run app.py`` on a free port, as its address; its log is ``test-artifacts/streamlit-server-NAME.log``."""
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / f"streamlit-server-{name}.log", "w") as log:
        process, address = start_streamlit("app.py", cwd=ROOT, log=log, where=log.name)
        try:
            yield address
        finally:
            stop(process)


@pytest.fixture(scope="session")
def server():
    """One dashboard server for the browser files of this pytest-xdist worker, as one server serves many people.

    Each test opens its own browser tab, so its own Streamlit session and workspace. A server start and its
    first page (which imports the whole stack) cost about 7 s of a core. A file that needs a server of its
    own (its first visitor, its own environment) asks for :func:`fresh_server` instead.
    """
    with streamlit_server(f"shared-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}") as address:
        yield address


@pytest.fixture(scope="module")
def fresh_server(request):
    """A dashboard server of this test module's own, started when the module first asks for it."""
    with streamlit_server(request.module.__name__.rsplit(".", 1)[-1]) as address:
        yield address


@pytest.fixture(scope="session")
def browser():
    """One Chromium (and one Playwright driver) for the browser files of a worker; each test opens its own tab
    in a context of its own (``browser.new_page()``), so no cookie or cache passes from test to test."""
    # No importorskip: a missing Playwright or Chromium must fail the run, never skip it.
    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def idle(page) -> None:
    """Wait until the page's script run has finished (loading a page, a click or a typed value runs it).

    Streamlit can drop a button click that arrives while the page's first run is still going (seen here under
    load: the Train button clicked, no run started), so a test clicks once the page is idle.
    """
    page.wait_for_timeout(300)
    page.wait_for_function("() => document.querySelector('[data-testid=stApp]')"
                           ".getAttribute('data-test-script-state') === 'notRunning'")


def screen_point(plot, row: int, col: int) -> tuple[float, float]:
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


def hover(page, x: float, y: float, expect: str) -> str:
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


def ready_plot(page, plot) -> None:
    """Wait until plotly has laid out ``plot`` (its axes map data to pixels) and it is on screen."""
    plot.wait_for(state="visible")
    plot.locator(".nsewdrag").first.wait_for(state="visible")
    handle = plot.element_handle()
    page.wait_for_function("gd => gd._fullLayout && gd._fullLayout.xaxis && gd._fullLayout.xaxis._length > 0",
                           arg=handle)
    # centre it: scroll_into_view_if_needed leaves a partly visible plot where it is
    plot.evaluate("gd => gd.scrollIntoView({block: 'center'})")
    page.wait_for_function("gd => { const r = gd.getBoundingClientRect(); "
                           "return r.top >= 0 && r.bottom <= window.innerHeight; }", arg=handle)
