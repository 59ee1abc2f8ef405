"""What two interactions cost the browser: a Gallery gene search and the Explain page's first draw.

Streamlit sends every widget and chart again at each rerun, and the browser rebuilds them. Two things cost
the browser seconds of CPU at every rerun (found with Chromium's own profiler, the CDP ``Profiler`` domain):

- **Gallery gene search**: the search box was a select box offering every gene of the layout (9,450 on the
  demo); the browser rebuilt the 9,450 options at each rerun of the page. It is now a text box (aliases, ids
  and names spelt alike are looked up on the server, ``dashboard/genes.py``).
- **Explain's first draw**: the per-pixel click layer drew one invisible SVG marker per pixel (9,604 on the
  demo's chromosome layout, twice on the page); it now draws one (``marker.maxdisplayed``), and hover and
  click still find every pixel (``tests/browser`` hovers and clicks them).

Per build (a fresh ``streamlit run app.py`` each, one at a time, Debian's Chromium with the test suite's
launch flags), one browser tab:

- **search**: the Gallery page open, a name typed in "Find a gene" and Enter, until the page has rerun
  and the sentence about the name is shown; ``--repeats`` names in turn (p53, HER2, EGFR, ...);
- **explain**: one one-epoch training on the Train page, then ``--repeats`` times: Data page, then the
  Explain page through the sidebar, until the attribution map is laid out.

Reported per step, medians over the repeats: wall seconds, and CPU seconds (user + system) of every
Chromium process and of the server process over the step. ``--before REF`` exports that commit (``git
archive``) and measures it beside the working tree in the same run.

Usage::

    python benchmarks/bench_browser_work.py --repeats 5 --before 06200b3 --json benchmarks/results_browser_work.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pages import REPO, cpu_seconds, export_ref, start_server  # noqa: E402  (bench_pages puts REPO on the path)

from tests.browser.server import CHROMIUM, LAUNCH_ARGS, stop  # noqa: E402

NAMES = ["p53", "HER2", "EGFR", "MLL", "TP53", "KRAS", "ERBB2", "MYC"]
VIEWPORT = {"width": 1400, "height": 1000}


def chromium_cpu() -> float:
    """User + system CPU seconds of every running Chromium process."""
    total = 0.0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"/chromium" in (proc / "cmdline").read_bytes():
                total += cpu_seconds(int(proc.name))
        except OSError:  # ended meanwhile
            pass
    return total


def idle(page) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function("() => document.querySelector('[data-testid=stApp]')"
                           ".getAttribute('data-test-script-state') === 'notRunning'")


class Step:
    """Wall and CPU seconds (Chromium, server) of one interaction."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid

    def __enter__(self):
        self.start = (time.perf_counter(), chromium_cpu(), cpu_seconds(self.server_pid))
        return self

    def __exit__(self, *exc):
        wall, chrome, server = self.start
        self.result = {"wall_s": time.perf_counter() - wall, "chromium_cpu_s": chromium_cpu() - chrome,
                       "server_cpu_s": cpu_seconds(self.server_pid) - server}


def measure_build(browser, root: Path, repeats: int) -> dict:
    process, url = start_server(root)
    try:
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(300_000)
        page.goto(f"{url}/Gallery")
        page.locator(".st-key-w_gallery_gene input").wait_for()
        idle(page)
        search = page.locator(".st-key-w_gallery_gene input")
        searches = []
        for name in (NAMES * repeats)[:repeats]:
            with Step(process.pid) as step:
                search.click()
                search.fill(name)
                search.press("Enter")
                page.get_by_test_id("stAlert").filter(has_text=name).first.wait_for()
                idle(page)
            searches.append(step.result)
        page.goto(f"{url}/Train")
        epochs = page.get_by_role("spinbutton", name="epochs (maximum)")
        epochs.wait_for()
        idle(page)
        epochs.fill("1")
        epochs.press("Tab")
        idle(page)
        page.get_by_role("button", name="Train", exact=True).click()
        page.get_by_text("CNN balanced accuracy").first.wait_for()
        idle(page)
        draws = []
        nav = page.get_by_test_id("stSidebarNavItems")
        for _ in range(repeats):
            nav.get_by_role("link", name="Data").click()
            page.get_by_text("Summary").first.wait_for()
            idle(page)
            with Step(process.pid) as step:
                nav.get_by_role("link", name="Explain").click()
                page.get_by_text("Top genes:").first.wait_for()
                plot = page.locator(".js-plotly-plot").nth(1)
                page.wait_for_function("gd => gd._fullLayout && gd._fullLayout.xaxis && gd._fullLayout.xaxis._length > 0",
                                       arg=plot.element_handle())
                idle(page)
            draws.append(step.result)
        page.close()
        return {"search": searches, "explain": draws}
    finally:
        stop(process, 20)


def medians(rows: list[dict]) -> dict:
    return {key: round(statistics.median(r[key] for r in rows), 2) for key in rows[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="searches and Explain draws per build (median)")
    parser.add_argument("--before", help="git commit to measure beside the working tree")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        builds = ([(f"before ({args.before})", export_ref(args.before, Path(tmp)))] if args.before else [])
        builds.append(("after", REPO))
        for name, root in builds:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
            try:
                results[name] = measure_build(browser, root, args.repeats)
            finally:
                browser.close()
    summary = {name: {step: medians(rows) for step, rows in steps.items()} for name, steps in results.items()}
    print("| build | step | wall s | Chromium CPU s | server CPU s |\n|---|---|---:|---:|---:|")
    for name, steps in summary.items():
        for step, m in steps.items():
            print(f"| {name} | {step} | {m['wall_s']} | {m['chromium_cpu_s']} | {m['server_cpu_s']} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"repeats": args.repeats, "summary": summary, "runs": results},
                                              indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
