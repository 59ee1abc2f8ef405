"""Dashboard generator switch: how long the Layout page takes to show a generator's picture on the demo.

Drives the real app (``app.py``, the Layout page ``pages/2_Layout.py``) headless with Streamlit's
``AppTest``, as ``tests/app/test_pages.py`` does. For each generator, one subprocess (a fresh
server process) runs ``1 + repeats`` browser sessions one after the other; each session starts
like a user's: the home page on the demo, then the Layout page (the default generator,
chromosome, fitted and drawn). Then the generator select box is switched to the generator and the
time until the page run returns with its picture is taken (everything the page computes for the
new generator: the fit, the images of every sample, hover text, class images and the other tabs;
not the browser's drawing).

The chromosome rows start from deepmapper (switched to untimed first), since chromosome is the
start-up generator. Every switch is a real first fit: the session's own layout cache holds no layout of that
generator (it is removed first where the start-up fitted one, as for ``deepmapper``, which the
Compare tab shows beside ``chromosome``). Session 1 is the first fit of that generator in the
server process (for example the first one reads the shipped GO embedding); sessions 2 to
``1 + repeats`` are fresh sessions on that warm server, and their median is the headline figure.

Where the page asks for a "Fit ... now" click (a fit it expects to take long), the click is made
and the time is taken from the click. Whether a progress bar was drawn is recorded by wrapping
``DeltaGenerator.progress`` (the page's bar from :func:`dashboard.glue.fit_layout`). Beside the
wall seconds, each switch's CPU seconds (``time.process_time`` of the server process, all its
threads) say what the switch costs whatever else the machine is running.

Usage::

    python benchmarks/bench_switch.py --repeats 3 --json benchmarks/results_switch.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from _worker import run_worker

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
LAYOUT_PAGE = "pages/2_Layout.py"
TIMEOUT = 600
# (row label, generator, parameters the session already holds for it, target seconds)
SWITCHES = [
    ("chromosome", "chromosome", {}, 2.0),
    ("chromosome (lyu_haque preset)", "chromosome", {"preset": "lyu_haque"}, 2.0),
    ("deepmapper", "deepmapper", {}, 2.0),
    ("som", "som", {}, 2.0),
    ("gene_ontology", "gene_ontology", {}, 2.0),
    ("gene_ontology (treemap)", "gene_ontology", {"style": "treemap"}, 2.0),
    ("deepinsight (t-SNE)", "deepinsight", {}, 5.0),
    ("random", "random", {}, 2.0),
    ("stack (chromosome + deepinsight t-SNE)", "stack", {}, 5.0),
]


def load_average() -> float:
    return os.getloadavg()[0]


# ---------------------------------------------------------------- worker (one server process)

def worker(task: dict) -> dict:
    sys.path.insert(0, str(REPO))
    import streamlit.delta_generator as delta_generator
    from streamlit.testing.v1 import AppTest

    from dashboard import glue
    from dashboard.glue import STATE_KEY

    progress_calls: list[tuple[float, float]] = []
    original = delta_generator.DeltaGenerator.progress

    def recording_progress(self, value, text=None):
        progress_calls.append((time.monotonic(), float(value)))
        return original(self, value, text=text)

    delta_generator.DeltaGenerator.progress = recording_progress
    name, params = task["generator"], task["params"]
    sessions = []
    for session in range(1 + task["repeats"]):
        started = time.monotonic()
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.run()
        at.switch_page(LAYOUT_PAGE).run()
        startup = time.monotonic() - started
        state = at.session_state[STATE_KEY]
        if name == state.generator:  # the start-up generator: switch away first (untimed), then back to it
            at.selectbox(key="w_generator").set_value("deepmapper").run()
        for key in [k for k in state.layouts if k.startswith(name + ":")]:
            del state.layouts[key]  # a real first fit of this generator in this session
        glue._shared_fits.clear()  # and not the server's fit of the demo from an earlier session
        if params:
            state.params[name] = dict(params)
        progress_calls.clear()
        load_before = load_average()
        switched, cpu_switched = time.monotonic(), time.process_time()
        at.selectbox(key="w_generator").set_value(name).run()
        waited = time.monotonic() - switched
        confirm = [b for b in at.button if str(b.key).startswith(f"w_btn_fit_{name}")]
        clicked = None
        if confirm:  # the page waits for the user's go: click it, time from the click
            clicked = time.monotonic()
            confirm[0].click().run()
        done, cpu_done = time.monotonic(), time.process_time()
        problems = [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]
        layout = next((v for k, v in state.layouts.items() if k.startswith(name + ":")), None)
        charts = len(at.get("plotly_chart"))
        base = clicked if clicked is not None else switched
        first_bar = progress_calls[0][0] - base if progress_calls else None
        sessions.append({
            "session": session + 1,
            "startup_seconds": round(startup, 3),
            "seconds": round(done - base, 3),
            "cpu_seconds": round(cpu_done - cpu_switched, 3),  # this process, all threads, from the switch
            "seconds_to_confirm_button": round(waited, 3) if confirm else None,
            "needed_click": bool(confirm),
            "fit_seconds": None if layout is None else layout.quality.get("seconds"),
            "picture": bool(layout is not None and charts and not problems),
            "progress_bar_at": None if first_bar is None else round(first_bar, 3),
            "progress_updates": len(progress_calls),
            "problems": problems[:3],
            "load_before": round(load_before, 2),
            "load_after": round(load_average(), 2),
        })
    return {"sessions": sessions}


# ---------------------------------------------------------------- driver

def run_one(label: str, name: str, params: dict, repeats: int, cap: float) -> dict:
    task = {"generator": name, "params": params, "repeats": repeats}
    return run_worker(__file__, task, cap=cap, cwd=REPO)


def summarise(label: str, target: float, result: dict) -> dict:
    """One table row from the sessions of one generator."""
    if result.get("status") != "ok":
        return {"label": label, "target": target, "status": result.get("status")}
    sessions = result["sessions"]
    later = sessions[1:] or sessions
    median = statistics.median(s["seconds"] for s in later)
    fits = [s["fit_seconds"] for s in later if s["fit_seconds"] is not None]
    bars = [s for s in sessions if s["progress_bar_at"] is not None]
    return {
        "label": label, "target": target, "status": "ok", "sessions": sessions,
        "first_in_process": sessions[0]["seconds"],
        "median_fresh_session": median,
        "switches": [s["seconds"] for s in later],
        "fit_median": statistics.median(fits) if fits else None,
        "cpu_median": (statistics.median(s["cpu_seconds"] for s in later)  # None in files from before
                       if all("cpu_seconds" in s for s in later) else None),
        "all_pictures": all(s["picture"] for s in sessions),
        "progress_bar": f"{len(bars)}/{len(sessions)} fits, first at +{min(s['progress_bar_at'] for s in bars):.2f} s"
                        if bars else "none",
        "click_sessions": [s["session"] for s in sessions if s["needed_click"]],
        "met": median <= target,
        "load": [min(s["load_before"] for s in sessions), max(s["load_after"] for s in sessions)],
        "problems": sorted({p for s in sessions for p in s["problems"]}),
    }


def _clicks(sessions: list[int], n: int) -> str:
    if not sessions:
        return "no"
    return "every session" if len(sessions) == n else "session " + ", ".join(map(str, sessions))


def format_table(rows: list[dict]) -> str:
    lines = ["| generator switched to | target s | median s (fresh sessions) | switches s | first in a new server "
             "process s | fit s (median) | CPU s (median) | progress bar | Fit-now click | met | load (1 min) |",
             "|---|---:|---:|---|---:|---:|---:|---|---|---|---|"]
    for row in rows:
        if row.get("status") != "ok":
            lines.append(f"| {row['label']} | {row['target']:.0f} | {row.get('status')} | | | | | | | | |")
            continue
        fit = "" if row["fit_median"] is None else f"{row['fit_median']:.2f}"
        lines.append(
            f"| {row['label']} | {row['target']:.0f} | {row['median_fresh_session']:.2f} | "
            f"{', '.join(f'{s:.2f}' for s in row['switches'])} | {row['first_in_process']:.2f} | {fit} | "
            f"{'' if row.get('cpu_median') is None else format(row['cpu_median'], '.2f')} | "
            f"{row['progress_bar']} | {_clicks(row['click_sessions'], len(row['sessions'] or []))} | "
            f"{'yes' if row['met'] else 'no'}{'' if row['all_pictures'] else ' (no picture!)'} | "
            f"{row['load'][0]:.1f}-{row['load'][1]:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3, help="fresh sessions timed after the first (median)")
    parser.add_argument("--only", help="comma-separated row labels or generator names to run")
    parser.add_argument("--cap", type=float, default=1800, help="seconds allowed per generator (all its sessions)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--table", help="print the table of an earlier --json file and stop")
    args = parser.parse_args(argv)
    if args.table:
        saved = json.loads(Path(args.table).read_text())
        for row in saved["rows"]:  # summarised again from the sessions, so the table follows this script
            if row.get("status") == "ok":
                row.update(summarise(row["label"], row["target"], {"status": "ok", "sessions": row["sessions"]}))
        print(f"load average (1, 5, 15 min) before: {saved['load_before']}, after: {saved['load_after']}\n")
        print(format_table(saved["rows"]))
        return 0
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    wanted = None if not args.only else {w.strip() for w in args.only.split(",")}
    rows = []
    uptime_before = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None
    for label, name, params, target in SWITCHES:
        if wanted and label not in wanted and name not in wanted:
            continue
        print(f"== {label}", file=sys.stderr, flush=True)
        result = run_one(label, name, params, args.repeats, args.cap)
        row = {**summarise(label, target, result), "sessions": result.get("sessions")}
        print(f"   {json.dumps({k: v for k, v in row.items() if k != 'sessions'})}", file=sys.stderr, flush=True)
        rows.append(row)
    uptime_after = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None
    text = format_table(rows)
    print(f"load average (1, 5, 15 min) before: {uptime_before}, after: {uptime_after}; {os.cpu_count()} cores\n")
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"load_before": uptime_before, "load_after": uptime_after,
                                               "cores": os.cpu_count(), "rows": rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
