"""First open of every dashboard page in real Chromium: seconds until its first image, and until it is done.

A person meets a page by opening its address: a fresh browser tab, a new Streamlit session (its own
workspace; the demo data), the page's script run and Plotly drawing in the browser. This benchmark does
exactly that, per page, with Debian's Chromium (the launch recipe of ``tests/browser/conftest.py``,
facts in ``/work/shared/TESTING.md``):

- a fresh ``streamlit run app.py`` server per build measured; one untimed visit of every page first
  (the server process imports torch, scikit-learn, reads the demo: what only its first visitor pays,
  reported as "first visit on a fresh server");
- then ``--repeats`` rounds; in each, every page is opened in a new browser context (a new session, no
  cookies, no URL token) at its address, and the time from navigation start is taken until
  **first image**: the first Plotly chart in the main area has drawn its plot (a heatmap's image, or a
  chart's traces), and **done**: the page's script has finished and every chart is drawn (the app's
  ``data-test-script-state`` is "notRunning" for half a second; the half second is not counted). Pages that draw no chart on first
  open (Train, Explain and Compare before any run) have only "done". Beside the wall seconds, the server
  process's CPU seconds (user + system, all threads) from the navigation to done: what the page costs the
  server whatever else the machine runs.

Builds side by side in one run: ``--before REF`` exports that git commit (``git archive``) into a
temporary folder and serves it from there, beside the working tree ("after"); rounds alternate between
the two servers' results only in time, never in load (one server runs at a time).
``--labels-one-by-one`` adds a third build: the working tree with region labels added to the figures one
``add_annotation`` at a time (the quadratic way, patched in), which isolates that one change.

Usage::

    python benchmarks/bench_pages.py --repeats 5 --before 1e83986 --labels-one-by-one \\
        --json benchmarks/results_pages.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.browser.server import CHROMIUM, LAUNCH_ARGS, start_streamlit, stop  # noqa: E402  (shared with the browser tests)

# (page, address, keys of the charts it draws on first open) in the navigation's order
PAGES = [("Home", "", ("home_flow", "home_means")), ("Data", "Data", ()), ("Layout", "Layout", ("layout_image",)),
         ("Gallery", "Gallery", ("gallery_samples",)), ("Train", "Train", ()), ("Explain", "Explain", ()),
         ("Compare", "Compare", ())]
TARGET_SECONDS = 2.0
VIEWPORT = {"width": 1400, "height": 1000}

# Polls the page from the moment the document exists: times (ms from navigation start) of the first drawn
# chart in the main area and of the page's end (script state notRunning, title and every chart drawn, for
# `quiet` ms).
WATCH_JS = """([charts, quiet, limit]) => new Promise(resolve => {
    let chart = null, idleSince = null;
    // a chart is drawn when its element (class st-key-<key>) holds a plot with a heatmap image or traces
    const drawn = key => document.querySelector(`[data-testid="stMain"] .st-key-${key} .js-plotly-plot`
        + ' :is(g.hm image, .scatterlayer .trace, .barlayer .trace, g.imagelayer image)');
    const tick = () => {
        const now = performance.now();
        if (chart === null && charts.some(drawn)) chart = now;
        const app = document.querySelector('[data-testid="stApp"]');
        const state = app ? app.getAttribute('data-test-script-state') : null;
        const titled = document.querySelector('[data-testid="stMain"] h1');
        if (state === 'notRunning' && titled && charts.every(drawn)) { if (idleSince === null) idleSince = now; }
        else idleSince = null;
        if (idleSince !== null && now - idleSince >= quiet) return resolve({chart, done: idleSince});
        if (now > limit) return resolve({chart, done: null});
        setTimeout(tick, 20);
    };
    tick();
})"""


def start_server(root: Path, *, labels_one_by_one: bool = False) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` from ``root`` on a free port (with the quadratic labels patched in, if asked)."""
    launcher = [sys.executable, str(Path(__file__).resolve()), "--serve-one-by-one"] if labels_one_by_one else None
    return start_streamlit(root / "app.py", cwd=root, command=launcher, env={**os.environ, "PYTHONPATH": str(root)},
                           timeout=90)


def serve_one_by_one(args: list[str]) -> None:
    """Run streamlit in this process with region labels added one ``add_annotation`` at a time."""
    sys.path.insert(0, os.environ["PYTHONPATH"])
    from dashboard import figures

    def one_by_one(fig, annotations):
        for annotation in annotations:
            fig.add_annotation(annotation)  # plotly re-validates the whole list each time: quadratic
        return fig

    figures.set_annotations = one_by_one
    from streamlit.web import cli

    sys.argv = ["streamlit", *args]
    cli.main()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, all its threads (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_page(browser, url: str, charts: tuple[str, ...], limit_s: float, pid: int) -> dict:
    """Open ``url`` in a new context (a new session); seconds to the first drawn chart and to done, and the
    server's CPU seconds for it (what the page costs whatever else the machine runs)."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        cpu = cpu_seconds(pid)
        page.goto(url, wait_until="commit")
        times = page.evaluate(WATCH_JS, [list(charts), 500, limit_s * 1000])
        errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count()
        return {"first_image": None if times["chart"] is None else round(times["chart"] / 1000, 3),
                "done": None if times["done"] is None else round(times["done"] / 1000, 3), "errors": errors,
                "server_cpu": round(cpu_seconds(pid) - cpu, 3)}
    finally:
        context.close()


def measure_build(browser, name: str, root: Path, repeats: int, limit_s: float, **server_options) -> dict:
    process, url = start_server(root, **server_options)
    try:
        first = {label: open_page(browser, f"{url}/{address}", charts, limit_s, process.pid)
                 for label, address, charts in PAGES}
        rounds = []
        for r in range(repeats):
            rounds.append({label: open_page(browser, f"{url}/{address}", charts, limit_s, process.pid)
                           for label, address, charts in PAGES})
            print(f"   {name} round {r + 1}: " + ", ".join(
                f"{label} {v['first_image'] if v['first_image'] is not None else '-'}/{v['done']}"
                for label, v in rounds[-1].items()), file=sys.stderr, flush=True)
    finally:
        stop(process)
    return {"build": name, "first_visit": first, "rounds": rounds}


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return None if not values else round(statistics.median(values), 2)


def summarise(result: dict) -> dict:
    rows = {}
    for label, *_ in PAGES:
        runs = [r[label] for r in result["rounds"]]
        rows[label] = {"first_image": _median([r["first_image"] for r in runs]),
                       "done": _median([r["done"] for r in runs]),
                       "server_cpu": _median([r.get("server_cpu") for r in runs]),
                       "first_visit_first_image": result["first_visit"][label]["first_image"],
                       "first_visit_done": result["first_visit"][label]["done"],
                       "errors": sum(r["errors"] for r in runs)}
    return rows


def _s(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def format_table(summaries: dict[str, dict]) -> str:
    builds = list(summaries)
    head = "| page | " + " | ".join(f"{b}: first image s | {b}: done s | {b}: server CPU s" for b in builds)
    if len(builds) > 1:
        head += f" | first image {builds[0]} / {builds[-1]}"
    head += f" | first image ≤ {TARGET_SECONDS:.0f} s ({builds[-1]}) |"
    lines = [head, "|---|" + "---:|---:|---:|" * len(builds) + ("---:|" if len(builds) > 1 else "") + "---|"]
    for label, *_ in PAGES:
        cells = []
        for b in builds:
            row = summaries[b][label]
            cells += [_s(row["first_image"]) + (" (errors!)" if row["errors"] else ""), _s(row["done"]),
                      _s(row.get("server_cpu"))]
        line = f"| {label} | " + " | ".join(cells)
        first, last = summaries[builds[0]][label]["first_image"], summaries[builds[-1]][label]["first_image"]
        if len(builds) > 1:
            line += " | " + (f"{first / last:.1f}×" if first and last else "–")
        met = "no chart" if last is None else ("yes" if last <= TARGET_SECONDS else "no")
        lines.append(line + f" | {met} |")
    lines.append("")
    lines.append("First visit on a fresh server (imports, demo read), first image / done s: " + "; ".join(
        f"{b}: " + ", ".join(f"{label} {_s(summaries[b][label]['first_visit_first_image'])}/"
                             f"{_s(summaries[b][label]['first_visit_done'])}" for label, *_ in PAGES)
        for b in builds))
    return "\n".join(lines)


def export_ref(ref: str, folder: Path) -> Path:
    """The tree of git commit ``ref`` in ``folder`` (``git archive``; the working tree is not touched)."""
    archive = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-one-by-one"]:  # start_server's launcher: streamlit's own arguments follow
        serve_one_by_one(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of fresh tabs per page (median)")
    parser.add_argument("--before", help="git commit to measure beside the working tree")
    parser.add_argument("--labels-one-by-one", action="store_true",
                        help="also measure the working tree with region labels added one at a time")
    parser.add_argument("--limit", type=float, default=300, help="seconds a page may take before it counts as not done")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    import playwright.sync_api as playwright_api

    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="rnaimg-bench-pages-") as tmp, \
            playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        builds: list[tuple[str, Path, dict]] = []
        if args.before:
            builds.append((f"before ({args.before[:7]})", export_ref(args.before, Path(tmp)), {}))
        if args.labels_one_by_one:
            builds.append(("labels one by one", REPO, {"labels_one_by_one": True}))
        builds.append(("after", REPO, {}))
        for name, root, options in builds:
            print(f"== {name}", file=sys.stderr, flush=True)
            results[name] = measure_build(browser, name, root, args.repeats, args.limit, **options)
        browser.close()
    summaries = {name: summarise(result) for name, result in results.items()}
    load_after = os.getloadavg()
    print(f"load average (1, 5, 15 min) before: {load_before}, after: {load_after}; {os.cpu_count()} cores; "
          f"Chromium {CHROMIUM}; viewport {VIEWPORT['width']}x{VIEWPORT['height']}\n")
    print(format_table(summaries))
    if args.json:
        Path(args.json).write_text(json.dumps({"load_before": load_before, "load_after": load_after,
                                               "cores": os.cpu_count(), "repeats": args.repeats,
                                               "summaries": summaries, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
