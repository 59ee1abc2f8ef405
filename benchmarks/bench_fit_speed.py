"""Fit seconds of every generator before and after the "speed of a click" work, in one run.

The "before" code is the commit before that work (``fc224e8``), checked out as a
git worktree (``git worktree add /tmp/layouts_before fc224e8``; the script does
this when the folder is missing) and imported from there; "after" is this
working tree. Each (side, data, generator) runs in its own subprocess with
``PYTHONPATH`` pointing at its tree, on the same data:

* demo: the shipped oligodendroglioma data (real; 184 cells x 9,450 genes);
* SYNTHETIC 2,000 x 20,531 (``make_synthetic``, seed 0; synthetic, labelled so).

Per cell: median fit seconds of ``--repeats`` fits without quality figures, then
one fit with them for the neighbourhood preservation, the share of genes that
share a pixel and the share of empty pixels. Generators are run with their
defaults on each side.

Usage::

    python benchmarks/bench_fit_speed.py --repeats 3 --large-repeats 1 --json benchmarks/results_fit_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEFORE_COMMIT = "fc224e8"
GENERATORS = ["chromosome", "deepmapper", "som", "gene_ontology", "deepinsight", "random", "stack"]
AFTER_ONLY = {"gene_ontology (treemap)": ("gene_ontology", {"style": "treemap"})}


def worker(task: dict) -> dict:
    """Runs inside the subprocess, importing rnaimg_core from the side's tree."""
    import numpy as np

    import rnaimg_core
    from rnaimg_core.generators import fit_layout

    if task["data"] == "demo":
        expression = rnaimg_core.load_demo()
    else:
        from rnaimg_core.expression import from_arrays

        folder = Path(task["data"])
        values = np.load(folder / "values.npy")
        expression = from_arrays(values, [f"s{i}" for i in range(values.shape[0])],
                                 np.load(folder / "gene_ids.npy", allow_pickle=False), np.load(folder / "labels.npy"))
    times = []
    for _ in range(task["repeats"]):
        started = time.perf_counter()
        fit_layout(expression, task["generator"], task["params"], quality=False)
        times.append(time.perf_counter() - started)
    layout = fit_layout(expression, task["generator"], task["params"], quality=True)
    per_pixel = layout.genes_per_pixel.ravel()
    gene_pixel_count = per_pixel[layout.placement_pixel]
    return {"seconds": statistics.median(times), "times": times, "module": rnaimg_core.__file__,
            "preservation": layout.quality.get("neighbourhood_preservation"),
            "genes_sharing_pixel": float(np.mean(gene_pixel_count > 1)) if gene_pixel_count.size else 0.0,
            "empty_pixels": float(np.mean(per_pixel == 0)), "shape": list(layout.shape)}


def run(side_root: Path, task: dict, timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(side_root), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    code = ("import json, sys; sys.path.insert(0, %r); from bench_fit_speed import worker; "
            "print('RESULT' + json.dumps(worker(json.loads(sys.argv[1]))))" % str(Path(__file__).parent))
    try:
        out = subprocess.run([sys.executable, "-c", code, json.dumps(task)], env=env, capture_output=True,
                             text=True, timeout=timeout, cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[6:])
    return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:200]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, default=Path("/tmp/layouts_before"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large-repeats", type=int, default=1)
    parser.add_argument("--large", default="2000x20531", help="SAMPLESxGENES of the synthetic set ('' to skip)")
    parser.add_argument("--generators", default=",".join(GENERATORS + list(AFTER_ONLY)))
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--table", type=Path, default=None, help="print the table of an earlier --json file and stop")
    args = parser.parse_args(argv)
    if args.table:
        print(format_table(json.loads(args.table.read_text())["rows"]))
        return 0
    if not args.before.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(args.before), BEFORE_COMMIT], cwd=REPO, check=True)
    datasets = [("demo (real, 184 x 9,450)", "demo", args.repeats)]
    with tempfile.TemporaryDirectory() as tmp:
        if args.large:
            import numpy as np

            sys.path.insert(0, str(REPO))
            from rnaimg_core.synthetic import make_synthetic

            n_samples, n_genes = (int(v) for v in args.large.lower().split("x"))
            synthetic = make_synthetic(n_samples=n_samples, n_genes=n_genes, seed=0)
            np.save(Path(tmp) / "values.npy", synthetic.values)
            np.save(Path(tmp) / "gene_ids.npy", np.asarray(synthetic.gene_ids, dtype=str))
            np.save(Path(tmp) / "labels.npy", np.asarray(synthetic.labels, dtype=str))
            datasets.append((f"SYNTHETIC {n_samples:,} x {n_genes:,}", tmp, args.large_repeats))
        rows = []
        for label in args.generators.split(","):
            generator, params = AFTER_ONLY.get(label, (label, {}))
            for data_label, data, repeats in datasets:
                row = {"generator": label, "data": data_label, "repeats": repeats}
                for side, root in (("before", args.before), ("after", REPO)):
                    if label in AFTER_ONLY and side == "before":
                        row[side] = {"error": "new"}
                        continue
                    task = {"generator": generator, "params": params, "data": data, "repeats": repeats}
                    row[side] = run(root, task, args.timeout)
                print(json.dumps(row), flush=True)
                rows.append(row)
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(),
                                         "before_commit": BEFORE_COMMIT, "rows": rows}, indent=2) + "\n")
    return 0


def _percent(side: dict, key: str) -> str:
    return "" if side.get(key) is None else f"{100 * side[key]:.0f} %"


def format_table(rows: list[dict]) -> str:
    """The markdown table of benchmarks/README.md: seconds, speed-up and the quality figures of both sides."""
    lines = ["| generator | data | fit s before | fit s after | before / after | neighbourhood preservation "
             "before / after | genes sharing a pixel before / after | empty pixels before / after |",
             "|---|---|---:|---:|---:|---|---|---|"]
    for row in rows:
        b, a = row["before"], row["after"]
        bs, as_ = b.get("seconds"), a.get("seconds")
        speed = f"{bs / as_:.1f}x" if bs and as_ else ""

        def seconds(side: dict, value) -> str:
            return f"{value:.2f}" if value is not None else ("new" if side.get("error") == "new"
                                                             else side.get("error", "not measured"))

        def pair(key: str, fmt) -> str:
            return f"{fmt(b)} / {fmt(a)}" if "seconds" in b or "seconds" in a else ""

        preservation = pair("preservation", lambda side: "" if side.get("preservation") is None
                            else f"{side['preservation']:.3f}")
        lines.append(f"| {row['generator']} | {row['data']} | {seconds(b, bs)} | {seconds(a, as_)} | {speed} | "
                     f"{preservation} | {pair('genes_sharing_pixel', lambda s: _percent(s, 'genes_sharing_pixel'))} | "
                     f"{pair('empty_pixels', lambda s: _percent(s, 'empty_pixels'))} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
