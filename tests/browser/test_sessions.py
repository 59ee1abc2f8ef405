"""Sessions as a person meets them in real Chromium: a reload during a run, two tabs on one address, searches.

- a reload during a Train run attaches to it (its progress over the whole ensemble, with time left, then its
  result after Stop);
- the Gallery keeps the chosen tab while a gene is searched, and a name the data lack says what it is;
- a tab whose address another tab gave other data says so and moves to an address of its own;
- the Classroom page at 1024×768 and at a projector's 1920×1080, photographed into ``test-artifacts/``.
"""

from __future__ import annotations

import re

import pytest
from playwright import sync_api as playwright_api

from tests.browser.conftest import ARTIFACTS, idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SMALL = {"width": 1024, "height": 768}
PROJECTOR = {"width": 1920, "height": 1080}
PROGRESS = re.compile(r"network \d of 5, epoch \d+ \(at most \d+\) · \d+ % · about .* left")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"sessions_{name}.png"))


def nav(page, name: str) -> None:
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name=name).click()


def test_a_reload_during_training_attaches_to_the_run(server, browser):
    page = browser.new_page(viewport=SMALL)
    page.set_default_timeout(180_000)
    page.goto(server + "/Train")
    idle(page)  # a click while the page's first run is still going can be lost
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text(PROGRESS).wait_for()
    token = re.search(r"[?&]s=([A-Za-z0-9_-]+)", page.url).group(1)
    page.reload()  # a new browser session on the same address, while the run goes on
    page.get_by_text(PROGRESS).wait_for()  # attached: the same run's progress, not a fresh Train form
    assert token in page.url
    shot(page, "train_reattached")
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("CNN balanced accuracy").first.wait_for()
    shot(page, "train_result_after_reload")
    page.close()


def test_the_gallery_keeps_its_tab_while_searching_and_names_what_it_cannot_find(server, browser):
    page = browser.new_page(viewport=SMALL)
    page.set_default_timeout(180_000)
    page.goto(server + "/Gallery")
    tab = page.get_by_role("tab", name="Class means")
    tab.wait_for()
    idle(page)  # a click while the page's first run is still going can be lost
    tab.click()
    page.locator(".st-key-gallery_means .js-plotly-plot").wait_for()
    idle(page)
    search = page.locator(".st-key-w_gallery_gene input")
    for typed, words in (("p53", "is an alias of TP53"), ("HER2", "which these data do not hold")):
        search.click()
        search.fill(typed)
        search.press("Enter")
        page.get_by_text(words).wait_for()
        idle(page)
        assert tab.get_attribute("aria-selected") == "true", typed  # still the class means
        page.locator(".st-key-gallery_means .js-plotly-plot").wait_for()
    shot(page, "gallery_search_keeps_tab")
    page.close()


def test_two_tabs_on_one_address_do_not_mix(server, browser):
    context = browser.new_context(viewport=SMALL)
    tab_a = context.new_page()
    tab_a.set_default_timeout(180_000)
    tab_a.goto(server + "/Layout")
    tab_a.get_by_role("tab", name="Sample image").wait_for()
    idle(tab_a)
    address = tab_a.url
    tab_b = context.new_page()
    tab_b.set_default_timeout(180_000)
    tab_b.goto(address.replace("/Layout", "/Data"))
    idle(tab_b)
    tab_b.get_by_text("Synthetic (labelled, seeded)").click()
    tab_b.get_by_role("button", name="Make synthetic data").click()
    tab_b.get_by_text("SYN").first.wait_for()
    idle(tab_b)  # its run saves the new data to the shared workspace as it ends
    idle(tab_a)
    warning = tab_a.get_by_text("Another tab with this session's address loaded other data")
    for attempt in range(10):  # tab A's next run notices; a click landing while its first run ends may be lost
        tab_a.get_by_role("tab", name=("Genes per pixel", "Sample image")[attempt % 2]).click()
        try:
            warning.wait_for(timeout=8_000 * 2 ** min(attempt, 3))  # 8 s, then longer under load
            break
        except playwright_api.TimeoutError:
            shot(tab_a, f"two_tabs_try{attempt}")
    warning.wait_for(timeout=1_000)
    tab_a.wait_for_function("old => !location.href.includes(old)", arg=address.split("s=")[1].split("&")[0])
    shot(tab_a, "two_tabs_warning")
    context.close()


@pytest.mark.parametrize("viewport", [SMALL, PROJECTOR], ids=["1024x768", "1920x1080"])
def test_the_classroom_steps_through_a_sample_in_large_type(server, browser, viewport):
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(180_000)
    page.goto(server + "/Classroom")
    picture = page.locator('[data-testid="stMain"] [data-testid="stImage"] img').first
    picture.wait_for()
    idle(page)  # a click while the page's first run is still going can be lost
    for step in range(1, 6):
        page.get_by_text(f"{step} · ", exact=False).first.wait_for()
        box = picture.bounding_box()
        assert box and box["width"] <= viewport["width"] and box["width"] > 0.5 * (viewport["width"] - 400)
        shot(page, f"classroom_{viewport['width']}_step{step}")
        if step < 5:
            page.get_by_role("button", name="▶").click()
            idle(page)
    size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector("
                         "'[data-testid=stMain] label p, [data-testid=stMain] p')).fontSize)")
    assert size >= 20, size  # large type for the back of the room
    page.close()
