"""GPU benchmark: transform, training and attribution on a CUDA GPU beside the CPU of the same machine.

Parts (``--parts``, each in its own ``try``: a failing part records its error and the next one runs;
the JSON is rewritten after every part, so a run stopped by a time limit keeps what it measured):

* ``transform``: SYNTHETIC TCGA-like data (``load_synthetic``, seed 0; no value was measured) of
  2,000 and 10,267 samples x 20,531 genes, through two 100 x 100 layouts fitted on the first 2,000
  samples: ``deepmapper`` (10,000 most variable genes, one gene per pixel: the gather path) and
  ``deepinsight`` PCA with ``assignment="nearest"`` (all genes, genes share pixels: the scatter-add
  path). Samples per second of ``Layout.transform`` on the CPU (torch threads = CPU cores) and on the
  device, median of ``--repeats`` after one untimed warm-up, from a host array to a host array
  (host -> device copy and back included), and the largest absolute difference between the device
  images and the CPU images. The *device-resident* figure runs the transform's own kernels
  (``rnaimg_core.transform``: ``plan_transform`` + ``transform_chunk``; ``Layout.transform`` takes and
  returns host arrays) on an input already on the device into an output left there; the host -> device copy of
  the input and the device -> host copy of the images are timed apart.
* ``training``: the real demo (184 oligodendroglioma cells), chromosome layout fitted on the
  dashboard's stratified 80 % (``splits.default_holdout``), ``TrainSettings()`` (the default recipe)
  on the device for seeds 0 and 1, then on the CPU for seed 0: wall seconds, balanced accuracy of the
  CNN and of the logistic-regression baseline on the held-out cells.
* ``attribution``: ``explain`` (integrated gradients) of the CPU seed-0 model on the held-out cells
  (``--attribution-samples all``: all 184), on the device (twice: the first call includes moving the
  networks) and on the CPU: seconds, and how close the device's class maps are to the CPU's (largest
  difference, correlation).
* ``bigrun``: a SYNTHETIC 20,000 x 20,531 AnnData ``.zarr`` cohort (``bench_bigrun.write_cohort``),
  a 100 x 100 DeepInsight PCA layout fitted on 2,000 of its samples, converted by
  ``bigrun.convert_to_store`` on a ``LocalCluster`` once with ``device="cuda"`` and once with
  ``device="cpu"``: seconds, samples per second, and the largest difference between the two stores.
  Needs dask, distributed, zarr and anndata; skipped when they are missing.

``--device cpu`` runs every part with the CPU as the device under test (a dry run on a machine
without a GPU); ``--small`` shrinks every size so the dry run takes about a minute.

Usage::

    python3 benchmarks/bench_gpu.py --device cuda --out results_gpu.json           # on the GPU machine
    python benchmarks/bench_gpu.py --device cpu --small --out /tmp/gpu_dry.json    # a dry run here
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_bigrun's cohort writer
# spawned Dask workers import rnaimg_core too
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)

N_GENES = 20531
PARTS = ("transform", "training", "attribution", "bigrun")
# (label, generator, parameters) of the transform part: one gather layout, one scatter-add layout
TRANSFORM_LAYOUTS = (
    ("deepmapper 100x100 (10,000 most variable genes, one per pixel)", "deepmapper",
     {"height": 100, "width": 100, "order": "variance", "max_genes": 10_000}),
    ("deepinsight pca 100x100 nearest (all genes, shared pixels)", "deepinsight",
     {"method": "pca", "height": 100, "width": 100, "assignment": "nearest", "seed": 0}),
)
TOLERANCE = 1e-4  # largest absolute difference allowed between device and CPU images


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(call: Callable[[], object], device, repeats: int) -> dict:
    """Seconds of ``call``: one untimed warm-up (reported as ``first_seconds``), then ``repeats`` timed calls."""
    _synchronize(device)
    started = time.perf_counter()
    call()
    _synchronize(device)
    first = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        _synchronize(device)
        started = time.perf_counter()
        call()
        _synchronize(device)
        times.append(time.perf_counter() - started)
    return {"median_seconds": statistics.median(times), "seconds": [round(t, 6) for t in times],
            "first_seconds": round(first, 6)}


def environment(device_name: str) -> dict:
    """What ran: Python, torch, threads, the device, and the versions of the optional packages."""
    import torch

    from rnaimg_core.device import choose_device, describe_device

    versions = {}
    for name in ("numpy", "numba", "scipy", "pandas", "scikit-learn", "safetensors", "captum", "dask", "distributed",
                 "zarr", "numcodecs", "anndata"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:  # a missing optional package is a fact to record
            versions[name] = "missing"
    info = {"python": sys.version.split()[0], "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda_available": torch.cuda.is_available(), "device_under_test": describe_device(
                choose_device(device_name)), "load_average_before": [round(v, 2) for v in os.getloadavg()],
            "versions": versions}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                    matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32)
    return info


# ------------------------------------------------------------------ transform

def bench_transform(device_name: str, sizes: list[int], repeats: int) -> dict:
    """Samples per second of ``Layout.transform`` on the CPU and on the device, and their difference."""
    import torch

    from rnaimg_core.device import choose_device
    from rnaimg_core.expression import load_synthetic
    from rnaimg_core.generators import fit_layout

    device = choose_device(device_name)
    cpu = torch.device("cpu")
    started = time.perf_counter()
    data = load_synthetic(n_samples=max(sizes), n_genes=N_GENES, seed=0)
    fit_rows = min(2000, max(sizes))
    fit_data = data.subset(slice(0, fit_rows))
    part: dict = {"data": f"SYNTHETIC (load_synthetic seed 0, {max(sizes):,} x {N_GENES:,}; the smaller sizes "
                          "are its first rows; no value was measured)",
                  "make_data_seconds": round(time.perf_counter() - started, 2), "repeats": repeats,
                  "layouts_fitted_on": f"the first {fit_rows:,} samples", "tolerance": TOLERANCE, "rows": []}
    for label, generator, params in TRANSFORM_LAYOUTS:
        started = time.perf_counter()
        layout = fit_layout(fit_data, generator, params, quality=False)
        fit_seconds = round(time.perf_counter() - started, 2)
        for n in sizes:
            values = np.ascontiguousarray(data.values[:n])
            row = {"layout": label, "shape": list(layout.shape), "fit_seconds": fit_seconds,
                   "samples": n, "genes": N_GENES}
            try:
                reference = layout.transform(values, data.gene_ids, device="cpu")
                cpu_time = timed(lambda: layout.transform(values, data.gene_ids, device="cpu"), cpu, repeats)  # noqa: F821 (a del below)
                row["cpu"] = {**cpu_time, "samples_per_second": round(n / cpu_time["median_seconds"], 1)}
                images = layout.transform(values, data.gene_ids, device=device_name)
                row["max_abs_diff_device_vs_cpu"] = float(np.max(np.abs(images - reference)))
                row["within_tolerance"] = bool(row["max_abs_diff_device_vs_cpu"] <= TOLERANCE)
                del images
                dev_time = timed(lambda: layout.transform(values, data.gene_ids, device=device_name), device,  # noqa: F821 (a del below)
                                 repeats)
                row["device_host_to_host"] = {**dev_time,
                                              "samples_per_second": round(n / dev_time["median_seconds"], 1)}
                row["device_resident"] = _resident(layout, values, data.gene_ids, device, reference, repeats)
            except Exception as exc:
                row["error"] = _error(exc)
            print(json.dumps(row), flush=True)
            part["rows"].append(row)
            del values
    return part


def _resident(layout, values: np.ndarray, gene_ids, device, reference: np.ndarray, repeats: int) -> dict:
    """The transform's kernels on an input already on ``device``; the copies in and out timed apart."""
    import torch

    from rnaimg_core.transform import plan_transform, transform_chunk

    if layout.normalization.depth_applied_ or layout.normalization.scale == "sample_max":
        return {"skipped": "the plan of depth or sample_max normalisation is built inside Layout.transform"}
    columns = layout.align(gene_ids)
    plan = plan_transform(layout, columns, device, n_inputs=values.shape[1])
    copy_in = timed(lambda: torch.from_numpy(values).to(device), device, repeats)
    x = torch.from_numpy(values).to(device)
    out = torch.empty((values.shape[0], layout.n_pixels), dtype=torch.float32, device=device)
    kernels = timed(lambda: transform_chunk(layout, x, plan, out), device, repeats)  # noqa: F821 (a del below)
    copy_out = timed(lambda: out.cpu(), device, repeats)  # noqa: F821 (a del below)
    difference = float((out.cpu() - torch.from_numpy(reference.reshape(values.shape[0], -1))).abs().max())
    del x, out
    if device.type == "cuda":
        torch.cuda.empty_cache()
    n = values.shape[0]
    return {"kernels": {**kernels, "samples_per_second": round(n / kernels["median_seconds"], 1)},
            "host_to_device_input": copy_in, "device_to_host_images": copy_out,
            "input_gib": round(values.nbytes / 2**30, 3), "max_abs_diff_vs_cpu": difference,
            "note": "transform.plan_transform/transform_chunk on the whole matrix in one chunk (pageable host memory)"}


# ------------------------------------------------------------------ training and attribution

def demo_images():
    """The demo's chromosome-layout ImageSet: layout fitted on the dashboard's stratified 80 %."""
    from rnaimg_core import ImageSet, fit_layout, load_demo
    from rnaimg_core.splits import FIT, default_holdout

    expr = load_demo()
    split = default_holdout(expr.labels, expr.n_samples)
    layout = fit_layout(expr, "chromosome", train_index=np.flatnonzero(split == FIT))
    return ImageSet.from_expression(layout, expr, device="cpu")


def bench_training(device_name: str, seeds: list[int], small: bool) -> tuple[dict, object]:
    """Default-recipe training on the device (each seed) and on the CPU (the first seed)."""
    from rnaimg_core.model import TrainSettings, train_model

    images = demo_images()
    settings = TrainSettings()
    if small:  # the dry run: the same code path, a fraction of the epochs
        settings = settings.replace(epochs=4, patience=4, n_models=2)
    part: dict = {"data": "real demo: 184 oligodendroglioma cells x 9,450 genes, chromosome layout "
                          f"{list(images.layout.shape)}", "settings": settings.to_dict(),
                  "held_out_cells": int((images.split == "holdout").sum()), "runs": []}
    cpu_model = None
    part["cpu_threads_for_training"] = _package_threads(settings.n_threads)
    for device, seed in [(device_name, s) for s in seeds] + [("cpu", seeds[0])]:
        run = {"device": device, "seed": seed}
        try:
            started = time.perf_counter()
            result = train_model(images, settings.replace(device=device, seed=seed))
            run["wall_seconds"] = round(time.perf_counter() - started, 2)
            summary = result.summary()
            run.update({key: summary.get(key) for key in (
                "device", "balanced_accuracy", "baseline_balanced_accuracy", "accuracy", "baseline_accuracy",
                "train_seconds", "seconds", "epochs", "best_epoch", "stopped", "samples_per_second", "n_test")})
            if device == "cpu":
                cpu_model = result.model
        except Exception as exc:
            run["error"] = _error(exc)
        print(json.dumps(run), flush=True)
        part["runs"].append(run)
    return part, (cpu_model, images)


def bench_attribution(device_name: str, model, images, samples: str) -> dict:
    """``explain`` (integrated gradients) on the device and on the CPU, on the ``samples`` demo cells."""
    from rnaimg_core.attribution import explain

    if model is None:
        raise RuntimeError("no CPU-trained model to explain (the training part failed)")
    part: dict = {"method": "integrated_gradients", "samples": samples, "network": type(model.network).__name__,
                  "cpu_threads": _package_threads(None), "runs": []}
    explanations = {}
    for device in (device_name, device_name, "cpu"):
        started = time.perf_counter()
        explanation = explain(model, images, method="integrated_gradients", samples=samples, device=device)
        part["n_samples"] = int(explanation.sample_ids.size)
        part["runs"].append({"device": device, "seconds": round(time.perf_counter() - started, 3),
                             "first_call_on_this_device": device not in explanations})
        explanations.setdefault(device, explanation)
        print(json.dumps(part["runs"][-1]), flush=True)
    on_device, on_cpu = explanations[device_name], explanations["cpu"]
    maps_device = np.stack([on_device.class_pixel_maps[c] for c in sorted(on_cpu.class_pixel_maps)])
    maps_cpu = np.stack([on_cpu.class_pixel_maps[c] for c in sorted(on_cpu.class_pixel_maps)])
    part["class_maps_max_abs_diff"] = float(np.max(np.abs(maps_device - maps_cpu)))
    part["class_maps_max_abs_value"] = float(np.max(np.abs(maps_cpu)))
    part["class_maps_correlation"] = float(np.corrcoef(maps_device.ravel(), maps_cpu.ravel())[0, 1])
    part["same_predictions"] = bool(np.array_equal(on_device.predicted, on_cpu.predicted))
    return part


# ------------------------------------------------------------------ big run

def bench_bigrun(device_name: str, n_samples: int, block: int, workers: int) -> dict:
    """A SYNTHETIC cohort converted to images stores by ``convert_to_store`` on the device and on the CPU."""
    from bench_bigrun import write_cohort
    from distributed import Client, LocalCluster

    from rnaimg_core.bigrun import convert_to_store, fit_cohort_layout
    from rnaimg_core.generators import get_generator
    from rnaimg_core.stores import open_cohort, read_store

    folder = Path(tempfile.mkdtemp(prefix="rnaimg-gpu-bigrun-"))
    part: dict = {"data": f"SYNTHETIC AnnData .zarr cohort, {n_samples:,} x {N_GENES:,} (bench_bigrun.write_cohort, "
                          "seed 0; no value was measured)", "block": block, "workers": workers,
                  "threads_per_worker": 1}
    try:
        started = time.perf_counter()
        write_cohort(folder / "cohort.zarr", n_samples, block)
        part["write_cohort_seconds"] = round(time.perf_counter() - started, 1)
        cohort = open_cohort(folder / "cohort.zarr", label_column="label", block_size=block)
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          memory_limit=None) as cluster, Client(cluster) as client:
            started = time.perf_counter()
            generator = get_generator("deepinsight")(method="pca", height=100, width=100, assignment="nearest",
                                                     seed=0)
            layout = fit_cohort_layout(generator, cohort, sample_size=min(2000, n_samples), client=client)
            part["fit_seconds"] = round(time.perf_counter() - started, 1)
            for device in (device_name, "cpu"):
                summary = convert_to_store(layout, cohort, folder / f"images_{device}.zarr", client=client,
                                           device=device, resume=False)
                part[f"convert_{device}"] = {"seconds": summary["seconds"],
                                             "samples_per_second": summary["samples_per_second"]}
                print(json.dumps({device: part[f"convert_{device}"]}), flush=True)
        if device_name != "cpu":
            first = read_store(folder / f"images_{device_name}.zarr").images
            second = read_store(folder / "images_cpu.zarr").images
            largest = 0.0
            for start in range(0, n_samples, block):
                stop = min(n_samples, start + block)
                largest = max(largest, float(np.max(np.abs(first[start:stop] - second[start:stop]))))
            part["max_abs_diff_device_vs_cpu"] = largest
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return part


# ------------------------------------------------------------------ driver

def _package_threads(requested: int | None):
    """The CPU threads rnaimg gives torch for a training or attribution run (``device.cpu_threads``)."""
    import torch

    from rnaimg_core import device

    if not hasattr(device, "cpu_threads"):  # older trees: torch's own setting
        return torch.get_num_threads()
    return device.cpu_threads(requested) or torch.get_num_threads()


def _error(exc: BaseException) -> str:
    """The exception and the last lines of its traceback, for the JSON."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return f"{type(exc).__name__}: {exc}\n" + "".join(lines[-4:])[-1500:]


def _write(path: Path, results: dict) -> None:
    """Write the JSON under a temporary name and rename it, so a killed run leaves a whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=1, default=str) + "\n")
    temporary.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="device under test: cuda (default), cuda:N or cpu")
    parser.add_argument("--out", type=Path, required=True, help="results JSON to write")
    parser.add_argument("--small", action="store_true", help="small sizes and few epochs: a dry run")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of each transform (median)")
    parser.add_argument("--seeds", default="0,1", help="training seeds on the device (the CPU runs the first)")
    parser.add_argument("--attribution-samples", default="holdout", choices=("holdout", "all"),
                        help="demo cells to explain: the held-out cells (explain's default) or all 184")
    parser.add_argument("--bigrun-samples", type=int, default=None, help="samples of the big-run cohort")
    parser.add_argument("--bigrun-workers", type=int, default=None, help="Dask workers of the big run")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}")

    import torch

    torch.set_num_threads(os.cpu_count() or 1)  # the CPU side uses every core of the machine
    results: dict = {"benchmark": "bench_gpu", "device_argument": args.device, "small": args.small,
                     "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        results["environment"] = environment(args.device)
    except Exception as exc:
        results["environment"] = {"error": _error(exc)}
    _write(args.out, results)
    seeds = [int(s) for s in args.seeds.split(",")]
    sizes = [300, 600] if args.small else [2000, 10267]
    model_and_images = (None, None)
    for name in parts:
        started = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            if name == "transform":
                results[name] = bench_transform(args.device, sizes, 2 if args.small else args.repeats)
            elif name == "training":
                results[name], model_and_images = bench_training(args.device, seeds, args.small)
            elif name == "attribution":
                model, images = model_and_images
                if images is None:
                    images = demo_images()
                results[name] = bench_attribution(args.device, model, images, args.attribution_samples)
            elif name == "bigrun":
                results[name] = bench_bigrun(
                    args.device, args.bigrun_samples or (2000 if args.small else 20_000),
                    block=500 if args.small else 1000,
                    workers=args.bigrun_workers or (2 if args.small else min(8, os.cpu_count() or 1)))
        except Exception as exc:
            results[name] = {"error": _error(exc)}
            print(results[name]["error"], flush=True)
        results[name]["part_seconds"] = round(time.perf_counter() - started, 1)
        _write(args.out, results)
    results["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _write(args.out, results)
    print(json.dumps({k: v for k, v in results.items() if k != "environment"}, indent=1, default=str)[:6000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
