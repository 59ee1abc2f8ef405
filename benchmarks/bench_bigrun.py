"""Big run benchmark: a SYNTHETIC cohort on disk, converted on a 2-worker Dask LocalCluster.

What it measures (the big-run issue's judged figures):

1. writes a seeded SYNTHETIC cohort of ``--samples`` x 20,531 genes (TCGA-like gene ids,
   33 classes, log-normal expression) as an AnnData ``.zarr`` store chunked by
   ``--block`` samples, block by block (never whole in memory);
2. fits a 100x100 DeepInsight (PCA) layout on a 2,000-sample stratified sample
   (normalisation over the whole cohort, one streaming pass);
3. the in-memory path on the first ``--slice`` samples: read into memory, transform,
   write the ``.npz`` (what ``rnaimg convert`` does): samples/s;
4. the Dask path on the whole cohort: ``convert_to_store`` on ``LocalCluster(n_workers=2,
   threads_per_worker=1)``: samples/s and the peak memory of the whole run (this process +
   scheduler + workers: the process tree's summed PSS, sampled every 0.2 s);
5. checks the store equals the in-memory images on the slice bit for bit;
6. with ``--train-epochs N``: trains N epochs streamed from the store (on the whole store) and
   in memory on the slice, reporting samples/s and the peak memory of the streamed run.

Usage::

    python benchmarks/bench_bigrun.py --samples 100000            # the judged size (about 8 GB on disk)
    python benchmarks/bench_bigrun.py --samples 10000 --slice 10000  # a quick run

Results go to ``benchmarks/results_bigrun.json`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

N_GENES = 20531
N_CLASSES = 33


class PeakMemory:
    """Peak memory of this process and all its descendants (scheduler, nannies, workers, loaders).

    Each process counts its proportional set size (PSS, Linux): pages shared between processes
    (a forked DataLoader worker shares torch with its parent) are split between them rather than
    counted once per process, as summed RSS would. RSS where PSS is not available.
    """

    def __init__(self, interval: float = 0.2):
        import psutil

        self.root, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for proc in [self.root, *self.root.children(recursive=True)]:
            try:
                info = proc.memory_full_info()
                total += getattr(info, "pss", info.rss)
            except Exception:  # a process ended between listing and reading
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def gib(self) -> float:
        return round(self.peak / 2**30, 3)


def write_cohort(path: Path, n_samples: int, block: int, seed: int = 0) -> None:
    """A SYNTHETIC AnnData .zarr cohort written block by block: X float32 (n, 20531), obs label, var ids."""
    import anndata
    import pandas as pd
    import zarr
    from anndata.io import write_elem

    from rnaimg_core.expression import load_synthetic

    gene_ids = load_synthetic(n_samples=2 * N_CLASSES, n_genes=N_GENES, n_classes=N_CLASSES, seed=seed).gene_ids
    rng = np.random.default_rng(seed)
    base = rng.normal(2.0, 1.5, N_GENES).astype(np.float32)
    offsets = (rng.normal(0, 1.0, (N_CLASSES, N_GENES)) * (rng.random((N_CLASSES, N_GENES)) < 0.05)).astype(np.float32)
    labels = np.asarray([f"synthetic_{k:02d}" for k in rng.integers(0, N_CLASSES, n_samples)])
    group = zarr.open_group(str(path), mode="w")
    write_elem(group, "obs", pd.DataFrame({"label": pd.Categorical(labels)},
                                          index=pd.Index([f"S{i:07d}" for i in range(n_samples)])))
    write_elem(group, "var", pd.DataFrame(index=pd.Index(gene_ids)))
    x = group.create_array("X", shape=(n_samples, N_GENES), chunks=(block, N_GENES), dtype="float32",
                           compressors=None)
    x.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
    group.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
    codes = np.searchsorted(np.unique(labels), labels)
    for start in range(0, n_samples, block):
        stop = min(n_samples, start + block)
        noise = rng.standard_normal((stop - start, N_GENES), dtype=np.float32)
        # whole-number counts, like RNA-seq: log-normal means, rounded
        x[start:stop] = np.rint(np.exp(base + offsets[codes[start:stop]] + 0.5 * noise))
    del anndata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--slice", type=int, default=10_000, help="samples of the in-memory comparison")
    parser.add_argument("--block", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train-epochs", type=int, default=0, help="also train this many epochs (0: skip)")
    parser.add_argument("--folder", help="where the cohort and stores go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the folder")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results_bigrun.json")))
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from rnaimg_core.bigrun import convert_to_store, describe_progress, fit_cohort_layout
    from rnaimg_core.generators import get_generator
    from rnaimg_core.images import read_images, write_images
    from rnaimg_core.stores import open_cohort, read_store

    folder = Path(args.folder or tempfile.mkdtemp(prefix="rnaimg-bigrun-"))
    folder.mkdir(parents=True, exist_ok=True)
    cohort_path = folder / "cohort.zarr"
    result: dict = {"synthetic": True, "n_samples": args.samples, "n_genes": N_GENES, "slice": args.slice,
                    "block": args.block, "workers": args.workers}
    try:
        started = time.perf_counter()
        if not cohort_path.exists():
            write_cohort(cohort_path, args.samples, args.block)
        result["write_cohort_seconds"] = round(time.perf_counter() - started, 1)
        result["cohort_bytes_on_disk"] = sum(f.stat().st_size for f in cohort_path.rglob("*") if f.is_file())
        cohort = open_cohort(cohort_path, label_column="label", block_size=args.block)

        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          memory_limit="1.2GiB") as cluster, Client(cluster) as client:
            started = time.perf_counter()
            layout = fit_cohort_layout(get_generator("deepinsight")(method="pca", height=100, width=100,
                                                                     assignment="nearest", seed=0),
                                       cohort, sample_size=2000, client=client)
            result["fit_seconds"] = round(time.perf_counter() - started, 1)
            result["layout"] = {"generator": "deepinsight pca", "shape": list(layout.shape)}

            # in-memory path on the slice: read, transform, write the .npz
            slice_index = np.arange(min(args.slice, args.samples))
            started = time.perf_counter()
            values = cohort.rows(slice_index)
            images = layout.transform(values, cohort.gene_ids)
            write_images(folder / "slice.npz", images, cohort.sample_ids[slice_index], cohort.labels[slice_index],
                         layout)
            memory_seconds = time.perf_counter() - started
            del values, images
            result["memory_path"] = {"samples": int(slice_index.size), "seconds": round(memory_seconds, 2),
                                     "samples_per_second": round(slice_index.size / memory_seconds, 1)}

            store_path = folder / "images.zarr"
            with PeakMemory() as peak:
                summary = convert_to_store(layout, cohort, store_path, client=client, resume=False,
                                           progress=lambda r: print(describe_progress(r), flush=True)
                                           if r["blocks_done"] % 10 == 0 else None)
            result["dask_path"] = {"samples": args.samples, "seconds": summary["seconds"],
                                   "samples_per_second": summary["samples_per_second"],
                                   "peak_memory_gib_whole_run": peak.gib}
        result["throughput_ratio_memory_over_dask"] = round(
            result["memory_path"]["samples_per_second"] / result["dask_path"]["samples_per_second"], 3)

        store = read_store(store_path)
        reference = read_images(folder / "slice.npz").images
        same = all(np.array_equal(store.images[s:s + 1024], reference[s:s + 1024])
                   for s in range(0, reference.shape[0], 1024))
        result["bit_identical_on_slice"] = bool(same)
        del reference
        if args.train_epochs:
            result["training"] = train_figures(store, folder / "slice.npz", args.train_epochs)
    finally:
        if not args.keep and not args.folder:
            shutil.rmtree(folder, ignore_errors=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def train_figures(store, slice_npz: Path, epochs: int) -> dict:
    """Streamed training on the whole store beside in-memory training on the slice (samples/s, peak RSS)."""
    from rnaimg_core.images import read_images
    from rnaimg_core.model import train_model

    with PeakMemory() as peak:
        streamed = train_model(store, epochs=epochs, baseline=False, val_fraction=0.1)
    in_memory = train_model(read_images(slice_npz), epochs=epochs, baseline=False, val_fraction=0.1)
    return {"epochs": epochs,
            "streamed": {"samples": store.n_samples, "samples_per_second": round(streamed.samples_per_second, 1),
                         "peak_memory_gib_whole_run": peak.gib},
            "in_memory_slice": {"samples": int(in_memory.split["train"].__len__() + len(in_memory.split["val"])
                                               + len(in_memory.split["test"])),
                                "samples_per_second": round(in_memory.samples_per_second, 1)}}


if __name__ == "__main__":
    main()
