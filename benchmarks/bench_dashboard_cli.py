"""Dashboard and command line agree: the same demo, layout, holdout and seed give the same scores.

For each seed, the README's command-line walk-through runs in subprocesses::

    python -m rnaimg_core layout  --generator chromosome --holdout 0.2 --out chrom.layout.json --json
    python -m rnaimg_core convert --layout chrom.layout.json --out demo-images.npz --json
    python -m rnaimg_core train   --images demo-images.npz --out model-S/ --seed S --json

(``layout`` and ``convert`` once; ``python -m rnaimg_core`` is ``rnaimg``), and right after each
``train`` the real app is driven headless with ``streamlit.testing.v1.AppTest``: the demo (the
app's first data set), the Layout page's generator set to ``chromosome``, then the Train page with
its seed set to S and *Train* pressed; the run returns when training is over. Both balanced accuracies are read (the
dashboard's from the page's headline tile and, at full precision, from the session's training
job) and printed with their difference. To say why they differ if they do, the script also
compares what went into training: the held-out samples, the images and every ``TrainSettings``
field.

Usage::

    nice -n 5 python benchmarks/bench_dashboard_cli.py [--seeds 0 1] [--json benchmarks/results_dashboard_cli.json]

Exits 1 when a seed's balanced accuracies differ by more than ``--tolerance`` (0.02).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

GENERATOR = "chromosome"
HOLDOUT = 0.2
TOLERANCE = 0.02


def rnaimg(*args: str) -> dict:
    """Run one ``rnaimg`` command with ``--json``; its JSON summary (the last line of stdout)."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "rnaimg_core", *args, "--json"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"rnaimg {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def command_line_images(workdir: Path) -> Path:
    """The README walk-through's ``layout`` and ``convert``; the images file."""
    layout_path, images_path = workdir / "chrom.layout.json", workdir / "demo-images.npz"
    rnaimg("layout", "--generator", GENERATOR, "--holdout", str(HOLDOUT), "--out", str(layout_path))
    rnaimg("convert", "--layout", str(layout_path), "--out", str(images_path))
    return images_path


def command_line_train(images_path: Path, seed: int, epochs: int | None) -> dict:
    """The walk-through's ``train --seed``: its JSON summary, wall seconds and ``model.json``."""
    more = () if epochs is None else ("--epochs", str(epochs))
    out = images_path.parent / f"model-{seed}"
    started = time.perf_counter()
    summary = rnaimg("train", "--images", str(images_path), "--out", str(out), "--seed", str(seed), *more)
    return {"summary": summary, "wall_seconds": time.perf_counter() - started,
            "model": json.loads((out / "model.json").read_text())}


def dashboard(seed: int, timeout: float, epochs: int | None) -> dict:
    """Drive the real app: demo data, chromosome layout, Train page with ``seed``; the finished job."""
    from streamlit.testing.v1 import AppTest

    from dashboard.glue import STATE_KEY

    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=timeout)
    at.run()
    at.switch_page("pages/2_Layout.py").run()
    at.selectbox(key="w_generator").set_value(GENERATOR).run()
    at.switch_page("pages/4_Train.py").run()
    _check(at, "Train page")
    at.number_input(key="w_train_seed").set_value(seed)
    if epochs is not None:
        at.number_input(key="w_train_epochs").set_value(epochs)
    started = time.perf_counter()
    at.button(key="FormSubmitter:train_settings-Train").click().run()
    wall = time.perf_counter() - started
    _check(at, "training")
    state = at.session_state[STATE_KEY]
    job = state.training
    tiles = {metric.label: metric.value for metric in at.metric}
    return {"data_key": state.data_key, "generator": state.generator, "job": job, "tiles": tiles,
            "wall_seconds": wall}


def _check(at, step: str) -> None:
    problems = [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]
    if problems:
        raise RuntimeError(f"dashboard {step}: {problems}")


def compare_inputs(job, images_path: Path, cli_model: dict) -> dict:
    """What the two runs trained on: same held-out samples, images, train/validation split and settings?"""
    from rnaimg_core.images import read_images

    cli_images = read_images(images_path)
    ours = job.image_set
    same_order = np.array_equal(np.asarray(ours.sample_ids, dtype=str), np.asarray(cli_images.sample_ids, dtype=str))
    cli_settings, dashboard_settings = cli_model["settings"], job.result.settings
    differing = sorted(name for name in set(cli_settings) | set(dashboard_settings)
                       if json.dumps(dashboard_settings.get(name), default=str)
                       != json.dumps(cli_settings.get(name), default=str))
    same_split = all(sorted(map(str, job.result.split[part])) == sorted(map(str, cli_model["split"][part]))
                     for part in ("train", "val", "test"))
    return {
        "same_sample_order": bool(same_order),
        "same_holdout": bool(same_order and np.array_equal(np.asarray(ours.split, dtype=str),
                                                           np.asarray(cli_images.split, dtype=str))),
        "n_holdout": int((np.asarray(ours.split, dtype=str) == "holdout").sum()),
        "image_shape": list(np.asarray(ours.images).shape),
        "cli_image_shape": list(np.asarray(cli_images.images).shape),
        "max_abs_image_difference": (float(np.max(np.abs(np.asarray(ours.images, dtype=np.float64)
                                                         - np.asarray(cli_images.images, dtype=np.float64))))
                                     if same_order and np.asarray(ours.images).shape
                                     == np.asarray(cli_images.images).shape else None),
        "same_train_val_test": bool(same_order and same_split),
        "settings_differing": differing,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds one dashboard run may take")
    parser.add_argument("--epochs", type=int, default=None,
                        help="maximum epochs for both (default: TrainSettings'; a few for a quick check)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    rows = []
    started = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "load_average_start": [round(v, 2) for v in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="rnaimg-bench-dashboard-cli-") as tmp:
        images_path = command_line_images(Path(tmp))
        for seed in args.seeds:  # each seed's two runs back to back, so they meet about the same machine load
            load_before = [round(v, 2) for v in os.getloadavg()]
            cli_run = command_line_train(images_path, seed, args.epochs)
            cli = cli_run["summary"]
            app = dashboard(seed, args.timeout, args.epochs)
            job = app["job"]
            ours = job.result.summary()
            inputs = compare_inputs(job, images_path, cli_run["model"])
            row = {
                "seed": seed,
                "cli_balanced_accuracy": cli["balanced_accuracy"],
                "dashboard_balanced_accuracy": ours["balanced_accuracy"],
                "difference": abs(cli["balanced_accuracy"] - ours["balanced_accuracy"]),
                "dashboard_tile": app["tiles"].get("CNN balanced accuracy"),
                "cli_baseline_balanced_accuracy": cli.get("baseline_balanced_accuracy"),
                "dashboard_baseline_balanced_accuracy": ours.get("baseline_balanced_accuracy"),
                "cli_epochs": cli["epochs"], "dashboard_epochs": ours["epochs"],
                "cli_seconds": cli["seconds"], "dashboard_seconds": ours["seconds"],
                "cli_wall_seconds": cli_run["wall_seconds"], "dashboard_wall_seconds": app["wall_seconds"],
                "n_test": ours["n_test"], "dashboard_data": app["data_key"], "dashboard_generator": app["generator"],
                "cli_device": cli.get("device"), "dashboard_device": ours.get("device"),
                "load_average_before": load_before, "load_average_after": [round(v, 2) for v in os.getloadavg()],
                **inputs,
            }
            rows.append(row)
            print(f"seed {seed}: command line {row['cli_balanced_accuracy']:.4f} ({row['cli_epochs']} epochs, "
                  f"{row['cli_seconds']:.0f} s), dashboard {row['dashboard_balanced_accuracy']:.4f} "
                  f"(tile {row['dashboard_tile']}, {row['dashboard_epochs']} epochs, "
                  f"{row['dashboard_seconds']:.0f} s), "
                  f"difference {row['difference']:.4f}; same holdout {row['same_holdout']}, image difference "
                  f"{row['max_abs_image_difference']}, same train/val/test {row['same_train_val_test']}, "
                  f"settings differing {row['settings_differing'] or 'none'}",
                  flush=True)

    print("\n| seed | command line | dashboard | difference | baseline (CLI / dashboard) | epochs (CLI / dashboard) "
          "| training s (CLI / dashboard) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['seed']} | {row['cli_balanced_accuracy']:.3f} | {row['dashboard_balanced_accuracy']:.3f} | "
              f"{row['difference']:.3f} | {row['cli_baseline_balanced_accuracy']:.3f} / "
              f"{row['dashboard_baseline_balanced_accuracy']:.3f} | {row['cli_epochs']} / {row['dashboard_epochs']} | "
              f"{row['cli_seconds']:.0f} / {row['dashboard_seconds']:.0f} |")
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} (training threads: "
                          "the rows' cli_device and dashboard_device)",
               **started, "load_average_end": [round(v, 2) for v in os.getloadavg()],
               "generator": GENERATOR, "holdout": HOLDOUT, "tolerance": args.tolerance, "rows": rows}
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    worst = max(row["difference"] for row in rows)
    print(f"\nlargest difference {worst:.4f} (tolerance {args.tolerance})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
