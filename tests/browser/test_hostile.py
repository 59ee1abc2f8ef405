"""Hostile use of the dashboard in real Chromium: a bomb upload and an oversize layout request.

The image-size widgets stop where the server's memory budget could not draw the images (a 1,024 x 1,024
layout of the demo cannot be asked for); a size within them but over ``max_image_bytes`` is refused.

Both must show one clean message (no exception box), keep the data in use, and leave every
page working afterwards. The server runs with a lowered decompressed-size limit
(``RNAIMG_MAX_DECOMPRESSED_BYTES``) so the bomb stays small and quick.
"""

from __future__ import annotations

import gzip
import os
import re

import pytest

from tests.browser.conftest import ARTIFACTS, idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORT = {"width": 1400, "height": 1000}
LIMIT = 4 * 2**20


@pytest.fixture(scope="module")
def limited_env():
    name = "RNAIMG_MAX_DECOMPRESSED_BYTES"
    before = os.environ.get(name)
    os.environ[name] = str(LIMIT)
    yield
    if before is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = before


@pytest.fixture(scope="module")
def server(limited_env, fresh_server):
    """A server of this module's own, started with the lowered limit."""
    return fresh_server


def nav(page, name: str) -> None:
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name=name).click()


def no_exception(page) -> None:
    page.wait_for_timeout(300)
    assert page.get_by_test_id("stException").count() == 0, page.get_by_test_id("stException").first.inner_text()


def gzip_bomb() -> bytes:
    header = ("sample," + ",".join(f"G{i}" for i in range(200)) + "\n").encode()
    row = ("S," + ",".join(["1"] * 200) + "\n").encode()
    return gzip.compress(header + row * 40_000, compresslevel=9)  # ~16 MB of text, a few kB on disk


def test_bomb_upload_and_oversize_layout_give_clean_messages(server, browser):
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(90_000)
    page.goto(f"{server}/Data")
    idle(page)  # a choice made while the page's first run is still going can be lost
    page.get_by_text("Upload a file").click()
    bomb = gzip_bomb()
    assert len(bomb) < 200_000
    page.locator("input[type=file]").first.set_input_files(
        files=[{"name": "bomb.csv.gz", "mimeType": "application/gzip", "buffer": bomb}])
    idle(page)
    page.get_by_role("button", name="Read the file").click()
    alert = page.get_by_test_id("stAlert").filter(has_text="max_decompressed_bytes")
    alert.wait_for()
    assert "RNAIMG_MAX_DECOMPRESSED_BYTES" in alert.inner_text()
    no_exception(page)
    samples = page.get_by_test_id("stMetric").filter(has_text="Samples")
    assert samples.get_by_test_id("stMetricValue").inner_text().strip() == "184"  # the demo is kept
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_hostile_bomb.png"))

    nav(page, "Layout")
    page.get_by_role("button", name="Fit layout").wait_for()
    idle(page)
    height = page.get_by_role("spinbutton", name=re.compile(r"^height\b"))
    assert int(float(height.get_attribute("max"))) < 1024  # the server's memory budget bounds the widget (20.3)
    for label, value in (("height", "900"), ("width", "900"), ("channels", "16")):
        box = page.get_by_role("spinbutton", name=re.compile(rf"^{label}\b"))
        box.fill(value)
        box.press("Tab")
        idle(page)  # each value reruns the page; the next one waits for it
    page.get_by_role("button", name="Fit layout").click()
    alert = page.get_by_test_id("stAlert").filter(has_text="max_image_bytes")
    alert.wait_for()
    no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "browser_hostile_oversize.png"))

    for name, marker in (("Gallery", "Samples by class"), ("Layout", "Sample image"), ("Data", "Summary")):
        nav(page, name)
        page.get_by_text(marker).first.wait_for()
        no_exception(page)
    page.close()
