"""t-SNE settings for DeepInsight: fit seconds against neighbourhood preservation, side by side.

Embeds the demo's genes (oligodendroglioma, 184 cells x 9,450 genes; real data)
with several openTSNE settings on the same exact-kNN affinities and reports,
per setting, the median seconds of the t-SNE (of ``--repeats`` runs), the
layout's neighbourhood preservation (``rnaimg_core.quality``) and the fraction of
each gene's 15 nearest neighbours in the feature space that stay among its 15
nearest in 2-D. Pass ``--synthetic 2000x20531`` for the TCGA-sized synthetic case.

Usage::

    python benchmarks/bench_tsne_settings.py [--repeats 3] [--only "1 thread;FFT, 250"] \
        [--json benchmarks/results_tsne.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SETTINGS = [  # (label, gradient method, iterations, threads (-1 = every core), FFT interpolation points
    #            [, embedding units per FFT grid interval, default 1])
    ("FFT, 500 iterations (before)", "fft", 500, -1, 3),
    ("FFT, 300 iterations", "fft", 300, -1, 3),
    ("FFT, 250 iterations", "fft", 250, -1, 3),
    ("Barnes-Hut, 500 iterations", "bh", 500, -1, 3),
    ("Barnes-Hut, 300 iterations", "bh", 300, -1, 3),
    ("Barnes-Hut, 250 iterations", "bh", 250, -1, 3),
    ("FFT, 250 iterations, 1 thread", "fft", 250, 1, 3),
    ("FFT, 200 iterations, 1 thread", "fft", 200, 1, 3),
    ("FFT, 150 iterations, 1 thread", "fft", 150, 1, 3),
    ("FFT, 100 iterations, 1 thread", "fft", 100, 1, 3),
    ("FFT, 250 iterations, 1 thread, 2 interpolation points", "fft", 250, 1, 2),
    ("FFT, 250 iterations, 1 thread, 2 interpolation points, grid intervals of 2 units", "fft", 250, 1, 2, 2),
]


def knn_kept(features: np.ndarray, coords: np.ndarray, k: int = 15) -> float:
    """Mean fraction of each point's k nearest neighbours in ``features`` kept among its k nearest in ``coords``."""
    from rnaimg_core.generators._embedding import exact_knn

    high, _ = exact_knn(features, k)
    low, _ = exact_knn(coords.astype(np.float32), k)
    return float(np.mean([np.intersect1d(a, b).size / k for a, b in zip(high, low)]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--synthetic", default="", help="SAMPLESxGENES synthetic data instead of the demo")
    parser.add_argument("--only", default="", help="texts separated by ';': run only settings whose label contains one")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from rnaimg_core import load_demo
    from rnaimg_core.assignment import place_positions
    from rnaimg_core.generators import fit_layout
    from rnaimg_core.generators._embedding import fast_tsne, gene_features
    from rnaimg_core.generators._grid import minimum_area_rotation, to_pixel_positions
    from rnaimg_core.quality import neighbourhood_quality

    if args.synthetic:
        from rnaimg_core.synthetic import make_synthetic

        n_samples, n_genes = (int(v) for v in args.synthetic.lower().split("x"))
        expression = make_synthetic(n_samples=n_samples, n_genes=n_genes, seed=0)
        data_label = f"SYNTHETIC {n_samples} x {n_genes}"
    else:
        expression = load_demo()
        data_label = f"demo (oligodendroglioma) {expression.n_samples} x {expression.n_genes}"
    base = fit_layout(expression, "deepinsight", {"method": "pca"}, quality=False)
    values = base.normalization.apply(expression.values)
    features = gene_features(values, "correlation", 50, 0)
    rows = []
    for label, gradient, iterations, n_jobs, points, *grid in SETTINGS:
        ints_in_interval = grid[0] if grid else 1
        if args.only and not any(text.strip() in label for text in args.only.split(";")):
            continue
        times, cpu_times = [], []
        for _ in range(args.repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            coords = fast_tsne(features, iterations=iterations, seed=0, gradient=gradient, n_jobs=n_jobs,
                               interpolation_points=points, ints_in_interval=ints_in_interval)
            times.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
        framed = minimum_area_rotation(coords)
        positions = to_pixel_positions(framed, *base.shape[1:])  # DeepInsight's grid step, nearest pixel
        pixels = place_positions(positions, *base.shape[1:], "nearest")
        layout = base.replace(placement_gene=np.arange(expression.n_genes), placement_pixel=pixels)
        quality = neighbourhood_quality(layout, values[:500], seed=0)
        rows.append({"setting": label, "gradient": gradient, "iterations": iterations, "n_jobs": n_jobs,
                     "interpolation_points": points, "ints_in_interval": ints_in_interval,
                     "seconds_median": round(statistics.median(times), 2),
                     "cpu_seconds_median": round(statistics.median(cpu_times), 2),
                     "neighbourhood_preservation": round(quality["neighbourhood_preservation"], 4),
                     "knn15_kept": round(knn_kept(features, coords), 4)})
        print(rows[-1], flush=True)
    print(f"\n### t-SNE settings, {data_label}, median of {args.repeats}\n")
    print("| setting | t-SNE s | CPU s | neighbourhood preservation | 15-NN kept |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['setting']} | {row['seconds_median']:.2f} | {row['cpu_seconds_median']:.2f} | "
              f"{row['neighbourhood_preservation']:.3f} | {row['knn15_kept']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"data": data_label, "repeats": args.repeats, "machine": platform.platform(),
                                         "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
