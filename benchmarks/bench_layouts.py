"""Side-by-side timing of rnaimg's layout generators against pyDeepInsight and TINTOlib.

One run writes seeded synthetic data (rnaimg's ``make_synthetic``) once per size
to a temporary folder as ``.npy``, then times every measurement in its own
subprocess, so each peak memory figure (``ru_maxrss``) belongs to one
measurement. rnaimg runs in this interpreter's environment; the peers run in a
separate benchmark environment (``--peer-python``, see README.md), so the
project's own requirements stay clean.

Usage::

    python benchmarks/bench_layouts.py --peer-python /work/bench-venv/bin/python \
        --sizes 2000x20531,300x2000 --cap 600 --json benchmarks/results.json
    python benchmarks/bench_layouts.py --only transform --sizes 2000x20531 --repeats 5 --rounds 3 \
        --json benchmarks/results_transform.json     # the two transform rows, side by side, alternating

Prints a markdown table of seconds, samples per second, peak memory and the
ratio to each peer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _worker import run_worker

REPO = Path(__file__).resolve().parents[1]
IMAGE_SIDE = 100

# DeepInsight's own rule at a fixed 100 x 100: nearest pixel, genes on one pixel averaged (as pyDeepInsight)
DEEPINSIGHT_100 = {"height": IMAGE_SIDE, "width": IMAGE_SIDE, "assignment": "nearest"}

# (label, generator, params) fitted on the rnaimg side
PROJECT_FITS = [
    ("chromosome", "chromosome", {}),
    ("deepmapper", "deepmapper", {}),
    ("random", "random", {}),
    ("som (batch)", "som", {}),
    ("som collision_free", "som", {"assignment": "collision_free"}),
    ("gene_ontology (pca)", "gene_ontology", {"embedding": "pca"}),
    ("gene_ontology (tsne)", "gene_ontology", {}),
    ("deepinsight pca 100x100", "deepinsight", {"method": "pca", **DEEPINSIGHT_100}),
    ("deepinsight tsne 100x100", "deepinsight", {"method": "tsne", **DEEPINSIGHT_100}),
    ("deepinsight tsne collision_free", "deepinsight", {"method": "tsne", "assignment": "collision_free"}),
]


# ---------------------------------------------------------------- workers (run in subprocesses)

def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load(data_dir: str):
    import numpy as np

    values = np.load(Path(data_dir) / "values.npy")
    gene_ids = np.load(Path(data_dir) / "gene_ids.npy")
    labels = np.load(Path(data_dir) / "labels.npy")
    return values, gene_ids, labels


def _median_time(fn, repeats: int) -> float:
    return _median_times(fn, repeats)[0]


def _median_times(fn, repeats: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds of the process (all its threads) per call."""
    walls, cpus = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_started)
    return statistics.median(walls), statistics.median(cpus)


def worker(task: dict) -> dict:
    import numpy as np

    values, gene_ids, labels = _load(task["data"])
    base_mb = _peak_mb()
    kind = task["kind"]
    out: dict = {}
    if kind == "project_fit":
        sys.path.insert(0, str(REPO))
        from rnaimg_core.expression import from_arrays
        from rnaimg_core.generators import fit_layout

        expr = from_arrays(values, [f"s{i}" for i in range(values.shape[0])], gene_ids, labels)
        base_mb = _peak_mb()
        started = time.perf_counter()
        layout = fit_layout(expr, task["generator"], task["params"])
        out["seconds"] = time.perf_counter() - started
        out["quality"] = {k: layout.quality.get(k) for k in ("fraction_placed", "max_genes_per_pixel",
                                                            "neighbourhood_preservation", "quality_seconds")}
    elif kind == "project_transform":
        sys.path.insert(0, str(REPO))
        from rnaimg_core.expression import from_arrays
        from rnaimg_core.generators import fit_layout

        expr = from_arrays(values, [f"s{i}" for i in range(values.shape[0])], gene_ids, labels)
        layout = fit_layout(expr, "deepinsight", {"method": "pca", **DEEPINSIGHT_100}, quality=False)
        images = np.empty((values.shape[0], *layout.shape), dtype=np.float32)
        layout.transform(values, device="cpu", out=images)  # warm-up
        base_mb = _peak_mb()
        out["seconds"], out["cpu_seconds"] = _median_times(lambda: layout.transform(values, device="cpu", out=images),
                                                           task["repeats"])

        def floor() -> None:
            copy = np.array(values, copy=True)
            result = np.empty((values.shape[0], *layout.shape), dtype=np.float32)
            result.fill(0.0)
            del copy, result

        out["floor_seconds"] = _median_time(floor, task["repeats"])
    elif kind in ("pdi_fit", "pdi_transform"):
        from pyDeepInsight import ImageTransformer
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE
        from sklearn.preprocessing import StandardScaler

        x = StandardScaler().fit_transform(np.log2(values + 1.0))
        base_mb = _peak_mb()
        extractor = (PCA(n_components=2) if task["method"] == "pca"
                     else TSNE(n_components=2, metric="cosine", n_jobs=-1, random_state=0))
        transformer = ImageTransformer(feature_extractor=extractor, pixels=IMAGE_SIDE)
        started = time.perf_counter()
        transformer.fit(x)
        out["seconds"] = time.perf_counter() - started
        if kind == "pdi_transform":
            transformer.transform(x[:50], img_format="scalar")  # warm-up
            out["seconds"], out["cpu_seconds"] = _median_times(lambda: transformer.transform(x, img_format="scalar"),
                                                               task["repeats"])
    elif kind == "tintolib":
        import pandas as pd
        from TINTOlib.igtd import IGTD
        from TINTOlib.refined import REFINED
        from TINTOlib.tinto import TINTO

        frame = pd.DataFrame(np.log2(values + 1.0), columns=[f"g{i}" for i in range(values.shape[1])])
        frame["target"] = pd.factorize(labels)[0]
        cls = {"TINTO": TINTO, "IGTD": IGTD, "REFINED": REFINED}[task["method"]]
        if task["method"] == "IGTD":  # its default 6 x 6 image holds only 36 features
            side = int(np.ceil(np.sqrt(values.shape[1])))
            model = cls(problem="supervised", scale=[side, side], random_seed=0)
        else:
            model = cls(problem="supervised", random_seed=0)
        base_mb = _peak_mb()
        started = time.perf_counter()
        model.fit(frame)
        out["fit_seconds"] = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            model.transform(frame, folder)
            out["seconds"] = time.perf_counter() - started
    else:
        raise ValueError(kind)
    out["peak_mb"] = _peak_mb()
    out["data_mb"] = base_mb
    return out


# ---------------------------------------------------------------- driver

def run_task(python: str, task: dict, cap: float) -> dict:
    started = time.perf_counter()
    # peers write scratch files (TINTOlib REFINED: Init_MDS_Euc.pickle) into the working folder
    result = run_worker(__file__, task, cap=cap, cwd=task["data"], python=python)
    if result["status"] != "ok":
        return result
    result["wall_seconds"] = time.perf_counter() - started
    return result


def write_data(folder: Path, n_samples: int, n_genes: int) -> None:
    import numpy as np

    sys.path.insert(0, str(REPO))
    from rnaimg_core.synthetic import make_synthetic

    if n_genes >= 10_000:  # TCGA-like defaults: 33 classes, 50 modules of 40 genes
        data = make_synthetic(n_samples=n_samples, n_genes=n_genes, seed=0)
    else:  # as make_synthetic_small: 6 classes, 10 modules of 30 genes
        data = make_synthetic(n_samples=n_samples, n_genes=n_genes, n_classes=6, n_modules=10, module_size=30,
                              n_driver_genes=10, seed=0)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "values.npy", data.values.astype(np.float32))
    np.save(folder / "gene_ids.npy", data.gene_ids.astype(str))
    np.save(folder / "labels.npy", data.labels.astype(str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="2000x20531,300x2000", help="SAMPLESxGENES, comma-separated")
    parser.add_argument("--peer-python", default="/work/bench-venv/bin/python",
                        help="interpreter of the benchmark environment with pyDeepInsight and TINTOlib")
    parser.add_argument("--cap", type=float, default=600, help="seconds allowed per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-tintolib-above", type=int, default=5000,
                        help="run TINTOlib only up to this many genes (its methods scale quadratically or worse)")
    parser.add_argument("--only", choices=("all", "transform"), default="all",
                        help="transform: only the two transform rows (rnaimg and pyDeepInsight, side by side)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --only transform: run the two rows this many times, alternating, and report "
                             "the median of the rounds (each round's figures and load average kept in the JSON)")
    parser.add_argument("--json", help="also write all results here")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    peers_available = Path(args.peer_python).exists()
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                          f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
               "sizes": {}}
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            n_samples, n_genes = (int(v) for v in size.lower().split("x"))
            folder = Path(tmp) / size
            write_data(folder, n_samples, n_genes)
            base = {"data": str(folder), "repeats": args.repeats}
            rows: dict = {}
            print(f"== {n_samples} samples x {n_genes} genes", file=sys.stderr)

            def record(label: str, python: str, task: dict, cap: float = args.cap) -> dict:
                rows[label] = run_task(python, {**base, **task}, cap)
                print(f"  {label}: {rows[label]}", file=sys.stderr, flush=True)
                return rows[label]

            if args.only == "transform":
                rounds = []
                for _ in range(max(1, args.rounds)):  # alternating, so both sides see the same load phases
                    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
                    record("rnaimg transform (deepinsight pca 100x100)", sys.executable, {"kind": "project_transform"})
                    if peers_available:
                        record("pyDeepInsight transform (pca 100x100)", args.peer_python,
                               {"kind": "pdi_transform", "method": "pca"})
                    rounds.append({"load_average_before": load, **{k: dict(v) for k, v in rows.items()}})
                if len(rounds) > 1:
                    rows = _median_rounds(rounds)
                results["sizes"][size] = {**rows, "rounds": rounds} if len(rounds) > 1 else rows
                tables.append(format_table(size, n_samples, rows, rounds if len(rounds) > 1 else None))
                continue
            record("rnaimg transform (deepinsight pca 100x100)", sys.executable, {"kind": "project_transform"})
            for label, generator, params in PROJECT_FITS:
                record(f"rnaimg fit {label}", sys.executable,
                       {"kind": "project_fit", "generator": generator, "params": params})
            if peers_available:
                record("pyDeepInsight transform (pca 100x100)", args.peer_python,
                       {"kind": "pdi_transform", "method": "pca"})
                record("pyDeepInsight fit pca", args.peer_python, {"kind": "pdi_fit", "method": "pca"})
                record("pyDeepInsight fit tsne (scikit-learn)", args.peer_python,
                       {"kind": "pdi_fit", "method": "tsne"})
                for method in ("TINTO", "IGTD", "REFINED"):
                    if n_genes <= args.skip_tintolib_above:
                        record(f"TINTOlib {method} (fit, transform to PNG)", args.peer_python,
                               {"kind": "tintolib", "method": method})
                    else:
                        rows[f"TINTOlib {method} (fit, transform to PNG)"] = {
                            "status": f"not run above {args.skip_tintolib_above} genes"}
            results["sizes"][size] = rows
            tables.append(format_table(size, n_samples, rows))
    text = f"Machine: {results['machine']}\n\n" + "\n\n".join(tables)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


def _fmt(value, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _median_rounds(rounds: list[dict]) -> dict:
    """One row per measurement: the median over rounds of each figure (status ok in every round)."""
    rows = {}
    for label in rounds[0]:
        if label == "load_average_before":
            continue
        runs = [r[label] for r in rounds]
        if any(run.get("status") != "ok" for run in runs):
            rows[label] = next(run for run in runs if run.get("status") != "ok")
            continue
        rows[label] = {key: statistics.median(run[key] for run in runs) for key in runs[0]
                       if isinstance(runs[0][key], (int, float)) and all(key in run for run in runs)}
        rows[label]["status"] = "ok"
    return rows


def _transform_ratio(rnaimg: dict, peer: dict) -> str:
    text = f"{peer['seconds'] / rnaimg['seconds']:.1f}x pyDeepInsight's throughput"
    if rnaimg.get("cpu_seconds") and peer.get("cpu_seconds"):
        text += f" ({peer['cpu_seconds'] / rnaimg['cpu_seconds']:.1f}x in CPU time)"
    return text


def format_table(size: str, n_samples: int, rows: dict, rounds: list[dict] | None = None) -> str:
    """Markdown table: seconds, samples per second, peak memory, ratios to the peers.

    With ``rounds`` (``--rounds``), the rows are medians over the rounds and a line per round follows.
    """
    pdi_transform = rows.get("pyDeepInsight transform (pca 100x100)", {})
    pdi_tsne = rows.get("pyDeepInsight fit tsne (scikit-learn)", {})
    lines = [f"### {size.replace('x', ' samples x ')} genes", "",
             "| measurement | status | seconds | samples/s | peak MB (data loaded) | ratio |",
             "|---|---|---:|---:|---:|---|"]
    for label, row in rows.items():
        seconds = row.get("seconds")
        per_second = n_samples / seconds if seconds and "transform" in label else None
        ratio = ""
        if row.get("status") == "ok" and label.startswith("rnaimg transform"):
            parts = []
            if pdi_transform.get("status") == "ok":
                parts.append(_transform_ratio(row, pdi_transform))
            if row.get("floor_seconds"):
                parts.append(f"{seconds / row['floor_seconds']:.2f}x the copy+write floor "
                             f"({row['floor_seconds']:.3f} s)")
            ratio = "; ".join(parts)
        if row.get("status") == "ok" and label == "rnaimg fit deepinsight tsne 100x100" and pdi_tsne.get("status") == "ok":
            ratio = f"{pdi_tsne['seconds'] / seconds:.1f}x faster than pyDeepInsight t-SNE"
        if label.startswith("TINTOlib") and row.get("status") == "ok":
            ratio = f"fit {row['fit_seconds']:.1f} s"
        if label.startswith("rnaimg fit") and row.get("status") == "ok" and row.get("quality"):
            q = row["quality"]
            ratio = (ratio + "; " if ratio else "") + (f"preservation {_fmt(q.get('neighbourhood_preservation'), 3)}, "
                                                       f"max genes/pixel {q.get('max_genes_per_pixel')}")
        peak = f"{row['peak_mb']:.0f} ({row['data_mb']:.0f})" if "peak_mb" in row else ""
        lines.append(f"| {label} | {row.get('status')} | {_fmt(seconds)} | {_fmt(per_second, 0)} | {peak} | {ratio} |")
    mine, peer = "rnaimg transform (deepinsight pca 100x100)", "pyDeepInsight transform (pca 100x100)"
    for number, one in enumerate(rounds or [], 1):
        if one.get(mine, {}).get("status") == "ok" and one.get(peer, {}).get("status") == "ok":
            lines.append(f"\nround {number} (load average before {one['load_average_before']}): rnaimg "
                         f"{one[mine]['seconds']:.4f} s ({one[mine]['cpu_seconds']:.4f} s CPU), pyDeepInsight "
                         f"{one[peer]['seconds']:.4f} s ({one[peer]['cpu_seconds']:.4f} s CPU): "
                         f"{_transform_ratio(one[mine], one[peer])}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
