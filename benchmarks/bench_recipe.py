"""Which training recipe holds up on small, unbalanced cohorts? CNN vs logistic regression over seeds.

Usage::

    python benchmarks/bench_recipe.py                                   # every variant, every cohort
    python benchmarks/bench_recipe.py --variants before,default --seeds 0,1,2,3,4
    python benchmarks/bench_recipe.py --cohorts demo --variants default --seeds 0

Cohorts are REAL data only (no synthetic values):

* ``demo``: the embedded oligodendroglioma cells (184 cells, 6 classes), 20 % held out
  (stratified, seed 0: 37 cells), as the dashboard does.
* ``demo-120``: 120 demo cells drawn per class, 32 from each of three tumours and 8 each
  from a fourth tumour, oligodendrocytes and microglia (4:1), 25 % held out.
* ``demo-50``: 50 demo cells, malignant (40, drawn across the four tumours) against
  non-malignant (10, oligodendrocytes and microglia): 4:1, two classes, 30 % held out.
* ``pbmc-150``: 150 cells of 10x PBMC 68k (scanpy's ``pbmc68k_reduced``, 765 genes,
  built by ``scripts/extract_pbmc.py``): 60 CD14+ monocytes, 60 CD19+ B cells, 15 NK cells
  and 15 CD8+ cytotoxic T cells (4:1), 25 % held out.

Subsampled cohorts come in draws (``draw`` 0 and 1: different cells); each draw is trained
with every seed, so the seed-to-seed spread is the training's own, and the mean over draws and
seeds is what the table reports. Every cohort uses the chromosome layout fitted on its
non-held-out cells; the baseline (logistic regression on the same pixels, same samples) is
computed in the same run. CPU seconds are ``time.process_time`` of the training run with torch
on one thread (so they bound the wall time on 2 cores). Writes ``benchmarks/results_recipe.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from rnaimg_core import get_generator, load_demo
from rnaimg_core.expression import from_arrays
from rnaimg_core.images import ImageSet
from rnaimg_core.model import TrainSettings, train_model
from rnaimg_core.splits import holdout_split

HERE = Path(__file__).resolve().parent

# The recipe before this benchmark (the defaults up to this change), spelled out so the row stays
# reproducible after the defaults moved.
BEFORE = {"epochs": 120, "batch_size": 32, "learning_rate": 2e-3, "weight_decay": 1e-2, "patience": 40,
          "val_fraction": 0.2, "class_weighting": True, "label_smoothing": 0.0, "schedule": "constant",
          "min_val_samples": 0, "n_models": 1, "linear_warm_start": False, "linear_lr_scale": 1.0, "architecture": {"linear_path": False}}

# The linear path as first measured: PyTorch's random start for its weights.
LINEAR = {"linear_path": True, "linear_zero_init": False}
# ... and started at zero (see SmallCNN's linear_zero_init).
LINEAR0 = {"linear_path": True, "linear_zero_init": True}

VARIANTS = {
    "before": BEFORE,
    # a fixed epoch budget on every non-test sample, one-cycle schedule, label smoothing
    "fixed60-onecycle-ls": {**BEFORE, "epochs": 60, "schedule": "onecycle", "label_smoothing": 0.1,
                            "min_val_samples": 100_000},
    # a linear path from every pixel to the logits beside the convolutions
    "before-linear": {**BEFORE, "architecture": LINEAR},
    # the same with label smoothing and a fixed budget when validation would hold < 25 samples
    "linear-ls-fixedsmall": {**BEFORE, "label_smoothing": 0.1, "min_val_samples": 25, "architecture": LINEAR},
    # three networks averaged (measured with members seeded seed, seed+1, seed+2; now member_seed())
    "linear-ens3": {**BEFORE, "n_models": 3, "architecture": LINEAR},
    # the linear path started at zero: one network, five
    "linear0": {**BEFORE, "architecture": LINEAR0},
    "linear0-ens5": {**BEFORE, "n_models": 5, "architecture": LINEAR0},
    # five networks, each early-stopping on its own fifth of the non-test samples
    "linear0-folds5": {**BEFORE, "n_models": 5, "ensemble_validation": "folds", "architecture": LINEAR0},
    # a probe after the table: the default at a quarter of the learning rate (the linear path's many weights
    # all move by about the learning rate per Adam step, so validation loss turns up after 1-5 epochs)
    "folds5-lr5e-4": {**BEFORE, "n_models": 5, "ensemble_validation": "folds", "architecture": LINEAR0,
                      "learning_rate": 5e-4},
    # issue 8, third session: linear0-folds5 with each network's linear path first fitted alone to convergence
    # on its own training part (L-BFGS, the baseline's L2) and the conv head's output layer started at zero,
    # so every network starts at the converged linear model (epoch 0 a candidate for the best epoch)
    "folds5-warm": {**BEFORE, "n_models": 5, "ensemble_validation": "folds", "architecture": LINEAR0,
                    "linear_warm_start": True},
    # the same with the linear path's learning rate cut to a tenth, or to zero (it stays at its warm start and the
    # convolutions learn what it leaves)
    "folds5-warm-lin0.1": {**BEFORE, "n_models": 5, "ensemble_validation": "folds", "architecture": LINEAR0,
                           "linear_warm_start": True, "linear_lr_scale": 0.1},
    "folds5-warm-lin0": {**BEFORE, "n_models": 5, "ensemble_validation": "folds", "architecture": LINEAR0,
                         "linear_warm_start": True, "linear_lr_scale": 0.0},
    # issue 8, fourth session: the default with a shorter patience (epoch 0 is already the converged linear model,
    # and the networks' best epochs on the demo were 0-6, so patience 40 mostly paid for epochs that were thrown away)
    "folds5-warm-lin0.1-p20": {**BEFORE, "n_models": 5, "ensemble_validation": "folds", "architecture": LINEAR0,
                               "linear_warm_start": True, "linear_lr_scale": 0.1, "patience": 20},
    "folds5-warm-lin0.1-p15": {**BEFORE, "n_models": 5, "ensemble_validation": "folds", "architecture": LINEAR0,
                               "linear_warm_start": True, "linear_lr_scale": 0.1, "patience": 15},
    # issue 18: the p15 recipe without the one-standard-error fallback to the linear model (the default has it)
    "p15-no-fallback": {"linear_fallback": False},
    # the linear path fitted on every non-test sample (the baseline's samples) and frozen there; the
    # convolutions learn what it leaves, kept by the one-standard-error rule (or not)
    "warm-all-lin0": {"linear_warm_start_on": "all", "linear_lr_scale": 0.0},
    "warm-all-lin0-no-fallback": {"linear_warm_start_on": "all", "linear_lr_scale": 0.0, "linear_fallback": False},
    "default": {},  # TrainSettings() as shipped: folds5-warm-lin0.1-p15 since 2026-11-26 02:20 UTC
    # (folds5-warm-lin0.1 earlier that day, linear0-folds5 before)
}

COHORTS = {
    "demo": {"draws": [None], "holdout": 0.2},
    "demo-120": {"draws": [0, 1], "holdout": 0.25},
    "demo-50": {"draws": [0, 1], "holdout": 0.3},
    "pbmc-150": {"draws": [0, 1], "holdout": 0.25},
}


def _draw(labels: np.ndarray, wanted: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    """Indices of ``wanted[class]`` samples drawn at random from each class, sorted."""
    picked = [rng.choice(np.flatnonzero(labels == name), size=n, replace=False) for name, n in wanted.items()]
    return np.sort(np.concatenate(picked))


def cohort(name: str, draw: int | None):
    """(Expression, holdout fraction) of a cohort and draw."""
    rng = np.random.default_rng(1000 + (draw or 0))
    if name == "demo":
        return load_demo()
    if name.startswith("demo-"):
        expr = load_demo()
        labels = expr.labels
        if name == "demo-120":
            wanted = {"malignant_93": 32, "malignant_97": 32, "malignant_MGH53": 32, "malignant_MGH36": 8,
                      "Oligodendrocytes (non-malignant)": 8, "Microglia/Macrophage": 8}
            return expr.subset(_draw(labels, wanted, rng))
        malignant = np.char.startswith(labels.astype(str), "malignant")
        merged = np.where(malignant, "malignant", "non-malignant")
        index = _draw(merged, {"malignant": 40, "non-malignant": 10}, rng)
        sub = expr.subset(index)
        return from_arrays(sub.values, sub.sample_ids, sub.gene_ids, merged[index], source="demo-50")
    data = np.load(HERE / "data" / "pbmc68k_reduced.npz", allow_pickle=False)
    wanted = {"CD14+ Monocyte": 60, "CD19+ B": 60, "CD56+ NK": 15, "CD8+ Cytotoxic T": 15}
    index = _draw(data["labels"], wanted, rng)
    return from_arrays(data["values"][index], data["sample_ids"][index], data["gene_ids"], data["labels"][index],
                       source="pbmc68k_reduced")


def image_set(expr, holdout: float) -> ImageSet:
    split = np.asarray(holdout_split(expr.labels, expr.n_samples, holdout, 0)).astype(str)
    layout = get_generator("chromosome")().fit(expr, train_index=np.flatnonzero(split == "fit"), quality=False)
    return ImageSet(layout.transform(expr.values, expr.gene_ids), expr.sample_ids, expr.labels, split, layout)


def run(images: ImageSet, variant: dict, seed: int) -> dict:
    settings = TrainSettings().replace(**variant, seed=seed, n_threads=1, device="cpu")
    member_epochs: dict[int, int] = {}  # epochs run by each network (the result keeps the first one's history)

    def progress(record: dict) -> None:
        member_epochs[record.get("model", 1)] = record["epoch"]

    cpu = time.process_time()
    result = train_model(images, settings, progress=progress)
    cpu = time.process_time() - cpu
    summary = result.summary()
    return {"seed": seed, "balanced_accuracy": summary["balanced_accuracy"], "accuracy": summary["accuracy"],
            "baseline_balanced_accuracy": summary["baseline_balanced_accuracy"],
            "n_predicted_classes": int((np.asarray(result.confusion).sum(axis=0) > 0).sum()),
            "n_classes": len(result.class_names), "epochs": summary["epochs"], "best_epoch": summary["best_epoch"],
            "member_epochs": [member_epochs[k] for k in sorted(member_epochs)],
            "cpu_seconds": round(cpu, 2), "wall_seconds": summary["seconds"], "n_train": summary["n_train"],
            "n_val": summary["n_val"], "n_test": summary["n_test"]}


def summarise(runs: list[dict]) -> dict:
    cnn = np.array([r["balanced_accuracy"] for r in runs])
    base = np.array([r["baseline_balanced_accuracy"] for r in runs])
    # the seed-to-seed SD within each draw, averaged over draws (draws differ in their cells)
    by_draw: dict = {}
    for r in runs:
        by_draw.setdefault(r["draw"], []).append(r["balanced_accuracy"])
    seed_sd = float(np.mean([np.std(v, ddof=1) for v in by_draw.values() if len(v) > 1] or [np.nan]))
    collapsed = sum(r["n_predicted_classes"] == 1 for r in runs)
    return {"cnn_mean": round(float(cnn.mean()), 4), "cnn_seed_sd": round(seed_sd, 4),
            "baseline_mean": round(float(base.mean()), 4), "gap": round(float(cnn.mean() - base.mean()), 4),
            "collapsed_runs": int(collapsed), "n_runs": len(runs),
            "cpu_seconds_median": round(float(np.median([r["cpu_seconds"] for r in runs])), 2)}


def table(results: dict, variants: list[str] | None = None) -> str:
    """The markdown table of benchmarks/README.md: every cohort, the variants run (or ``variants``), baselines."""
    lines = ["| cohort | recipe | runs (draws x seeds) | CNN balanced acc. mean | seed-to-seed SD | baseline mean "
             "| CNN - baseline | collapsed runs | CPU s per run (median) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for cohort_name in COHORTS:
        for variant in variants or VARIANTS:
            row = results.get("rows", {}).get(f"{cohort_name}|{variant}")
            if row is None:
                continue
            draws = len(COHORTS[cohort_name]["draws"])
            lines.append(f"| {cohort_name} ({row['n_samples']}, {row['n_classes']} classes) | {variant} | "
                         f"{draws} x {row['n_runs'] // draws} | {row['cnn_mean']:.3f} | {row['cnn_seed_sd']:.3f} | "
                         f"{row['baseline_mean']:.3f} | {row['gap']:+.3f} | {row['collapsed_runs']} | "
                         f"{row['cpu_seconds_median']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--cohorts", default=",".join(COHORTS))
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--out", default=str(HERE / "results_recipe.json"))
    parser.add_argument("--table", action="store_true",
                        help="print the README table from --out (the rows of --variants) and stop")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(Path(args.out).read_text()), args.variants.split(",")))
        return
    torch.set_num_threads(1)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    results["torch"], results["defaults"] = torch.__version__, TrainSettings().record()
    seeds = [int(s) for s in args.seeds.split(",")]
    for cohort_name in args.cohorts.split(","):
        spec = COHORTS[cohort_name]
        sets = {draw: image_set(cohort(cohort_name, draw), spec["holdout"]) for draw in spec["draws"]}
        for variant in args.variants.split(","):
            runs = []
            for draw, images in sets.items():
                for seed in seeds:
                    runs.append({"draw": draw, **run(images, VARIANTS[variant], seed)})
            row = {"cohort": cohort_name, "variant": variant, "settings": VARIANTS[variant] or "TrainSettings()",
                   "n_samples": images.n_samples, "n_classes": runs[-1]["n_classes"], **summarise(runs),
                   "runs": runs}
            # re-read before writing: several runs of this script may share the file
            results = json.loads(out_path.read_text()) if out_path.exists() else results
            results["torch"], results["defaults"] = torch.__version__, TrainSettings().record()
            results.setdefault("rows", {})[f"{cohort_name}|{variant}"] = row
            print(f"{cohort_name:9s} {variant:26s} CNN {row['cnn_mean']:.3f} (seed SD {row['cnn_seed_sd']:.3f}) "
                  f"baseline {row['baseline_mean']:.3f} gap {row['gap']:+.3f} collapsed {row['collapsed_runs']} "
                  f"cpu {row['cpu_seconds_median']:.1f} s", flush=True)
            out_path.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
