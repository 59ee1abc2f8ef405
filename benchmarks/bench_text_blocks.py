"""Reading a CSV cohort block by block (the big run's text reader), against pandas given a dtype per column.

``rnaimg convert --engine dask`` and ``open_cohort`` read a CSV/TSV table in blocks of samples through
``rnaimg_core.stores._TextTable.blocks``: ``pandas.read_csv`` with ``chunksize``, the value columns chosen by
``usecols``. Until session 9 it passed float32 as a dict with one entry per value column; pandas parses each
block markedly slower that way than with the same float32 given once. The peer here is that call, kept as it
was; the library's reader is measured through ``open_cohort(...).iter_blocks()``. Both read the same file,
one after the other, ``--repeats`` times; reported are the medians (CPU seconds of this process), values per
second and their ratio, and a check that both give the same numbers.

Two files: the embedded demo (REAL, 184 cells x 9,450 genes, written as CSV with its labels) and a
SYNTHETIC TCGA-like cohort (``--samples`` x 20,531 genes, log-normal values).

Usage::

    python benchmarks/bench_text_blocks.py --samples 500 --repeats 3 --json benchmarks/results_text_blocks.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnaimg_core.expression import load_demo  # noqa: E402
from rnaimg_core.stores import DEFAULT_BLOCK_SIZE, open_cohort  # noqa: E402


def write_demo(folder: Path) -> Path:
    expr = load_demo()
    frame = pd.DataFrame(expr.values, index=pd.Index(expr.sample_ids, name="sample"), columns=expr.gene_ids)
    frame.insert(0, "cell_type", expr.labels)
    path = folder / "demo.csv"
    frame.to_csv(path)
    return path


def write_synthetic(folder: Path, n_samples: int, n_genes: int = 20531) -> Path:
    rng = np.random.default_rng(0)
    path = folder / "synthetic.csv"
    genes = [f"GENE{i}|{i}" for i in range(n_genes)]
    with open(path, "w") as out:
        out.write("sample,cancer_type," + ",".join(genes) + "\n")
        for start in range(0, n_samples, 100):
            rows = min(100, n_samples - start)
            values = rng.lognormal(2.0, 1.5, size=(rows, n_genes)).astype(np.float32)
            for r in range(rows):
                out.write(f"S{start + r},T{(start + r) % 33}," + ",".join(f"{v:.3f}" for v in values[r]) + "\n")
    return path


def peer_blocks(path: Path, block_size: int) -> np.ndarray:
    """The reader before session 9: the same read_csv call, float32 as one dict entry per value column."""
    with open(path) as text:
        n_fields = text.readline().count(",") + 1
        positions = list(range(2, n_fields))
        reader = pd.read_csv(text, sep=",", header=None, index_col=None, usecols=positions,
                             dtype={p: np.float32 for p in positions}, skip_blank_lines=True,
                             chunksize=block_size, low_memory=True)
        return np.concatenate([frame.to_numpy(dtype=np.float32) for frame in reader])


def library_blocks(path: Path, block_size: int) -> np.ndarray:
    cohort = open_cohort(path, block_size=block_size)
    return np.concatenate([block for _, block in cohort.iter_blocks()])


def timed(read, path: Path, block_size: int) -> tuple[float, np.ndarray]:
    began = time.process_time()
    values = read(path, block_size)
    return time.process_time() - began, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=500, help="samples of the SYNTHETIC 20,531-gene cohort")
    parser.add_argument("--block-size", type=int, default=DEFAULT_BLOCK_SIZE)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {"demo (REAL, 184 x 9,450)": write_demo(folder),
                 f"SYNTHETIC ({args.samples:,} x 20,531)": write_synthetic(folder, args.samples)}
        for name, path in files.items():
            peer, ours = [], []
            for _ in range(args.repeats):
                seconds, peer_values = timed(peer_blocks, path, args.block_size)
                peer.append(seconds)
                seconds, our_values = timed(library_blocks, path, args.block_size)
                ours.append(seconds)
            assert np.array_equal(peer_values, our_values), "the two readers disagree"
            n_values = our_values.size
            row = {"file": name, "block_size": args.block_size, "values": n_values,
                   "peer_dtype_dict_s": statistics.median(peer), "library_s": statistics.median(ours),
                   "peer_values_per_s": n_values / statistics.median(peer),
                   "library_values_per_s": n_values / statistics.median(ours),
                   "speedup": statistics.median(peer) / statistics.median(ours), "repeats": args.repeats}
            results.append(row)
            print(f"{name}: pandas with a dtype dict {row['peer_dtype_dict_s']:.2f} s "
                  f"({row['peer_values_per_s'] / 1e6:.1f} M values/s), rnaimg's reader {row['library_s']:.2f} s "
                  f"({row['library_values_per_s'] / 1e6:.1f} M values/s): {row['speedup']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"machine": "2-core CI-like VM", "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
