"""The layout check end to end in real Chromium: start, progress over folds, Stop, the result chart.

One generator (chromosome) on the demo with 2 epochs per CNN, 5 folds x 2 repeats and
no time budget, so the check would run for minutes: the test waits until the
progress bar reports two finished folds, presses Stop, and checks that the
finished folds are kept: the folds line, the verdict, the interval chart and
the downloads. A screenshot is kept in ``test-artifacts/``.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import ARTIFACTS, idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _number(page, label: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=label)
    box.fill(str(value))
    box.press("Tab")
    idle(page)  # the value reruns the page; the next action waits for it


def test_compare_page_shows_progress_stops_and_keeps_finished_folds(server, browser):
    page = browser.new_page(viewport={"width": 1500, "height": 1600})
    page.set_default_timeout(120_000)
    page.goto(f"{server}/Compare")
    start = page.get_by_role("button", name="Start the check")
    start.wait_for()
    idle(page)  # a click while the page's first run is still going can be lost
    for name in ("deepmapper", "som", "gene_ontology", "deepinsight"):
        page.get_by_role("button", name=f"Remove {name}").click()
    page.get_by_test_id("stCheckbox").get_by_text("Quick check").click()  # untick: use the numbers below
    _number(page, "folds", 5)
    _number(page, "repeats", 2)
    _number(page, "time budget (s)", 0)
    _number(page, "epochs per CNN", 2)
    idle(page)
    start.click()

    progress = page.get_by_text(re.compile(r"fold [2-9] of 10 done · about \d+ s left"))
    progress.wait_for(timeout=240_000)
    page.get_by_role("button", name="Stop").click()

    # the fold in progress ends at its next batch (a layout fit or the baseline runs to its end)
    page.get_by_text(re.compile(r"of 10 planned folds ran .*stopped on request")).wait_for(timeout=240_000)
    folds_run = int(re.search(r"(\d+) of 10 planned folds ran",
                              page.get_by_text(re.compile("planned folds ran")).first.inner_text()).group(1))
    assert 2 <= folds_run < 10
    text = page.locator("section.main, [data-testid='stMain']").first.inner_text()
    assert re.search(r"chromosome: (arrangement helps|no evidence it helps|arrangement hurts)\.", text), text
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for()
    page.wait_for_function("gd => gd._fullLayout && gd._fullLayout.xaxis && gd._fullLayout.xaxis._length > 0",
                           arg=chart.element_handle())
    # the chart draws every model with its interval: each arm on the layout and its permutation, the hybrid CNN,
    # the flat baseline, and the differences
    traces = chart.evaluate("gd => gd.data.map(t => [t.name, (t.error_x || {}).array])")
    names = [name for name, _ in traces]
    assert {"chromosome · pooled probe · layout", "chromosome · pooled probe · permutation",
            "chromosome · image-only CNN · layout", "chromosome · hybrid CNN", "flat baseline",
            "chromosome · pooled probe", "chromosome · vs within chromosomes"} <= set(names), names
    assert all(plus is not None and plus[0] is not None for _, plus in traces), traces
    page.get_by_role("button", name="Download the table (CSV)").wait_for()
    page.get_by_role("button", name="Download everything (JSON)").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    chart.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "browser_compare.png"), full_page=True)
    # what a person sees at 1400x1000: the top of the page, then the result
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.evaluate("() => document.querySelectorAll('[data-testid=stMain]').forEach(e => e.scrollTo(0, 0))")
    page.screenshot(path=str(ARTIFACTS / "page_compare.png"))
    page.get_by_role("button", name="Download the table (CSV)").evaluate(
        "e => e.scrollIntoView({block: 'end'})")  # the chart and the table above it
    page.wait_for_timeout(500)  # the table's canvas draws after scrolling
    page.screenshot(path=str(ARTIFACTS / "page_compare_result.png"))
    page.close()
