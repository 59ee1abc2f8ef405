"""Training and attribution benchmark: CNN vs logistic-regression baseline.

Usage::

    python benchmarks/bench_training.py                       # demo + synthetic, CPU
    python benchmarks/bench_training.py --skip-synthetic      # demo only
    python benchmarks/bench_training.py --synthetic-samples 2000 --generators chromosome,deepmapper,random
    python benchmarks/bench_training.py --threads-only        # CPU threads: 1 / 2 / torch's default

Demo part: the embedded oligodendroglioma cells, chromosome layout fitted on a
stratified 70 % (``--holdout 0.3``, as ``rnaimg layout`` does), CNN trained with
default settings for several seeds; balanced accuracy on the 56 held-out cells,
beside the baseline; then attribution seconds per method for all 184 cells.

Synthetic part: SYNTHETIC TCGA-like data (20,531 genes, 33 classes; no value was
measured), one layout per generator, CNN vs baseline accuracy on held-out
samples and CNN training samples per second.

Writes ``benchmarks/results_training.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from rnaimg_core import get_generator, load_demo, load_synthetic
from rnaimg_core.attribution import METHODS, explain
from rnaimg_core.images import ImageSet
from rnaimg_core.model import TrainSettings, train_model
from rnaimg_core.splits import holdout_split


def image_set(expr, generator: str, holdout: float, seed: int = 0) -> ImageSet:
    split = np.asarray(holdout_split(expr.labels, expr.n_samples, holdout, seed)).astype(str)
    layout = get_generator(generator)().fit(expr, train_index=np.flatnonzero(split == "fit"))
    images = layout.transform(expr.values, expr.gene_ids)
    return ImageSet(images, expr.sample_ids, expr.labels, split, layout)


def bench_demo(seeds: list[int]) -> dict:
    images = image_set(load_demo(), "chromosome", 0.3)
    runs = []
    for seed in seeds:
        result = train_model(images, seed=seed)
        runs.append(result.summary())
        print(f"demo seed {seed}: CNN bal.acc {runs[-1]['balanced_accuracy']:.3f} "
              f"(baseline {runs[-1]['baseline_balanced_accuracy']:.3f}) in {runs[-1]['train_seconds']:.1f} s "
              f"train / {runs[-1]['seconds']:.1f} s total", flush=True)
    model = result.model
    attribution = {}
    for method in METHODS:
        started = time.perf_counter()
        explanation = explain(model, images, method=method)
        attribution[method] = {"seconds": round(time.perf_counter() - started, 2),
                               "n_samples": int(explanation.sample_ids.size)}
        print(f"demo attribution {method}: {attribution[method]['seconds']} s for "
              f"{attribution[method]['n_samples']} cells", flush=True)
    return {"layout": "chromosome", "shape": list(images.layout.shape), "runs": runs, "attribution": attribution,
            "top_genes_last_seed": explanation.summary(top=5)["top_genes"]}


def bench_overlap(seeds: list[int], recipe: str = "default", method: str = "integrated_gradients",
                  top: int = 20) -> dict:
    """Do the top genes per class agree between training seeds? Demo, chromosome layout.

    Each seed's model (``recipe``: a variant of ``bench_recipe.VARIANTS``, ``default`` being
    ``TrainSettings()``) explains the held-out cells (``explain``'s default); per class, the top
    ``top`` genes of every pair of seeds are compared, and the genes in every seed's list counted.
    The seed models together (``explain(models, ...)``) give each gene's rank stability.
    """
    from bench_recipe import VARIANTS

    images = image_set(load_demo(), "chromosome", 0.2)
    settings = TrainSettings().replace(**VARIANTS[recipe], baseline=False, n_threads=1)  # CPU s comparable
    models, cpu_seconds = [], []
    for seed in seeds:
        cpu = time.process_time()
        models.append(train_model(images, settings.replace(seed=seed)).model)
        cpu_seconds.append(round(time.process_time() - cpu, 2))
    tops = [explain(m, images, method=method).class_gene_table(top=top, go_terms=0) for m in models]
    per_class = {}
    for name in models[0].class_names:
        lists = [set(t.loc[t["class"] == name, "symbol"]) for t in tops]
        pairs = [len(lists[i] & lists[j]) for i in range(len(lists)) for j in range(i + 1, len(lists))]
        per_class[name] = {"pairwise": pairs, "in_all": len(set.intersection(*lists))}
    together = explain(models, images, method=method)
    table = together.class_gene_table(top=top, go_terms=0)
    out = {"recipe": recipe, "settings": settings.record(), "training_cpu_seconds": cpu_seconds,
           "method": method, "seeds": seeds, "top": top, "per_class": per_class,
           "mean_pairwise": round(float(np.mean([v for c in per_class.values() for v in c["pairwise"]])), 2),
           "mean_in_all": round(float(np.mean([c["in_all"] for c in per_class.values()])), 2),
           "ensemble_mean_stability_of_top": round(float(table[f"top{top}_stability"].mean()), 3),
           "notes": together.notes}
    for name, figures in per_class.items():
        print(f"top-{top} overlap {name}: pairwise {figures['pairwise']}, in all {figures['in_all']}", flush=True)
    print(f"mean pairwise {out['mean_pairwise']} of {top}; mean in all {len(seeds)}: {out['mean_in_all']}", flush=True)
    return out


def bench_threads(repeats: int = 3, epochs: int = 15, counts: list[int] | None = None) -> dict:
    """Wall and CPU seconds of one network, ``epochs`` epochs on the demo, per torch thread count.

    Thread counts ``counts`` (default 1, 2 and torch's own default: one per core, read before anything sets it), in
    turn within each repeat so that a change of load hits every count alike; the median of
    ``repeats`` is reported, with the load average before each run. Chromosome layout, 20 %
    held out, one network (``n_models=1``), no early stop within the budget, no baseline.
    """
    import os

    from rnaimg_core.device import auto_threads

    torch_default = torch.get_num_threads()
    images = image_set(load_demo(), "chromosome", 0.2)
    settings = TrainSettings().replace(n_models=1, epochs=epochs, patience=epochs, baseline=False, device="cpu")
    counts = sorted(set(counts or (1, 2, torch_default)))
    runs: dict = {n: [] for n in counts}
    for repeat in range(repeats):
        for n in counts:
            load = os.getloadavg()[0]
            wall, cpu = time.perf_counter(), time.process_time()
            train_model(images, settings.replace(n_threads=n, seed=repeat))
            runs[n].append({"wall_seconds": round(time.perf_counter() - wall, 2),
                            "cpu_seconds": round(time.process_time() - cpu, 2), "load_before": round(load, 2)})
            print(f"threads {n} repeat {repeat}: {runs[n][-1]}", flush=True)
    out = {"epochs": epochs, "repeats": repeats, "cores": os.cpu_count(), "torch_default_threads": torch_default,
           "auto_threads": auto_threads(), "runs": {str(n): r for n, r in runs.items()},
           "median_wall_seconds": {str(n): float(np.median([r["wall_seconds"] for r in v])) for n, v in runs.items()},
           "median_cpu_seconds": {str(n): float(np.median([r["cpu_seconds"] for r in v])) for n, v in runs.items()}}
    print(f"median wall seconds by threads: {out['median_wall_seconds']}", flush=True)
    return out


def bench_synthetic(n_samples: int, generators: list[str], epochs: int) -> dict:
    expr = load_synthetic(n_samples=n_samples)
    out = {"n_samples": n_samples, "n_genes": expr.n_genes, "n_classes": len(expr.classes), "generators": {}}
    for name in generators:
        started = time.perf_counter()
        images = image_set(expr, name, 0.25)
        layout_seconds = time.perf_counter() - started
        result = train_model(images, seed=0, epochs=epochs)
        summary = result.summary()
        summary["layout_seconds"] = round(layout_seconds, 2)
        summary["shape"] = list(images.layout.shape)
        out["generators"][name] = summary
        print(f"synthetic {name} {summary['shape']}: CNN acc {summary['accuracy']:.3f} / bal {summary['balanced_accuracy']:.3f}"
              f"; baseline {summary['baseline_accuracy']:.3f} / {summary['baseline_balanced_accuracy']:.3f}; "
              f"{summary['samples_per_second']:.0f} training samples/s on {summary['device']}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--overlap-only", action="store_true",
                        help="only the top-20 gene overlap between the seeds (demo, default recipe)")
    parser.add_argument("--threads-only", action="store_true",
                        help="only the CPU-threads measurement (one network, 15 epochs on the demo, 1 / 2 / torch's "
                             "default threads, median of 3)")
    parser.add_argument("--thread-counts", help="thread counts of --threads-only (default 1,2 and torch's default)")
    parser.add_argument("--recipe", default="default",
                        help="training recipe of the overlap run: a variant of bench_recipe.py's VARIANTS")
    parser.add_argument("--synthetic-samples", type=int, default=1000)
    parser.add_argument("--generators", default="chromosome,deepmapper,random")
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results_training.json")))
    args = parser.parse_args()
    results = {"torch": torch.__version__, "threads": torch.get_num_threads(),
               "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    if args.threads_only:
        out_path = Path(args.out)
        previous = json.loads(out_path.read_text()) if out_path.exists() else {}
        counts = [int(n) for n in args.thread_counts.split(",")] if args.thread_counts else None
        previous["cpu_threads"] = {**bench_threads(counts=counts), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        out_path.write_text(json.dumps(previous, indent=1, default=str))
        return
    if args.overlap_only:
        out_path = Path(args.out)
        previous = json.loads(out_path.read_text()) if out_path.exists() else {}
        overlap = bench_overlap([int(s) for s in args.seeds.split(",")], args.recipe)
        previous.setdefault("top_gene_overlap_by_recipe", {})[args.recipe] = overlap
        if args.recipe == "default":
            previous["top_gene_overlap"] = overlap
        out_path.write_text(json.dumps(previous, indent=1, default=str))
        return
    if not args.skip_demo:
        results["demo"] = bench_demo([int(s) for s in args.seeds.split(",")])
    if not args.skip_synthetic:
        results["synthetic"] = bench_synthetic(args.synthetic_samples, args.generators.split(","), args.epochs)
    Path(args.out).write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
