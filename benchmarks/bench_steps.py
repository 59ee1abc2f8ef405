"""Timing of single library steps that once carried time limits inside the tests.

Each step runs once untimed (to build lookups and warm caches), then
``--repeats`` times; the median seconds are printed beside the limit the tests
used to assert on an idle 2-core machine, so a slowdown shows up here rather
than as a flaky test.

Usage::

    python benchmarks/bench_steps.py --repeats 5 [--json benchmarks/results_steps.json]
"""

from __future__ import annotations

import argparse
import json
import platform

import numpy as np
from bench_layouts import _median_time  # this folder is on sys.path when run as a script

from rnaimg_core.annotation import gene_table, map_gene_ids
from rnaimg_core.assignment import assign_to_grid
from rnaimg_core.layout import Layout
from rnaimg_core.normalize import Normalization
from rnaimg_core.quality import neighbourhood_quality


def map_protein_coding_ids():
    """``map_gene_ids`` on every protein-coding gene as ``SYMBOL|entrez`` (about 20,600 ids)."""
    genes = gene_table()
    coding = genes[genes["gene_type"] == "protein-coding"]
    ids = (coding["symbol"] + "|" + coding["entrez_id"].astype(str)).tolist()
    return lambda: map_gene_ids(ids)


def quality_at_20531_genes():
    """``neighbourhood_quality`` of a random 1 x 144 x 144 layout, 500 samples x 20,531 genes."""
    n, side = 20_531, 144
    rng = np.random.default_rng(0)
    values = rng.standard_normal((500, n)).astype(np.float32)
    norm = Normalization(log="no", scale="none").fit(np.zeros((2, n), dtype=np.float32))
    layout = Layout(generator="bench", params={}, seed=0, shape=(1, side, side),
                    gene_ids=[f"g{i}" for i in range(n)], placement_gene=np.arange(n),
                    placement_pixel=rng.permutation(side * side)[:n], reduce="mean", normalization=norm)
    return lambda: neighbourhood_quality(layout, values)


def collision_free_20000_genes():
    """``assign_to_grid``: 20,000 uniform positions onto a 142 x 142 grid, one gene per pixel."""
    side = 142
    positions = np.random.default_rng(1).uniform(0, side - 1, size=(20_000, 2))
    return lambda: assign_to_grid(positions, side, side)


# (name, setup returning the timed step, the limit the tests asserted, in seconds)
STEPS = [
    ("map_gene_ids, 20,598 protein-coding ids", map_protein_coding_ids, 1.0),
    ("neighbourhood_quality, 500 x 20,531", quality_at_20531_genes, 10.0),
    ("assign_to_grid collision-free, 20,000 on 142 x 142", collision_free_20000_genes, 30.0),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    print(f"Machine: {platform.machine()}, {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}; median of {args.repeats}\n")
    print("| step | median s | former test limit s |\n|---|---:|---:|")
    results = []
    for name, setup, limit in STEPS:
        step = setup()
        step()  # warm-up: lookups, caches, thread pools
        seconds = _median_time(step, args.repeats)
        results.append({"step": name, "median_seconds": seconds, "repeats": args.repeats, "former_limit": limit})
        print(f"| {name} | {seconds:.3f} | {limit:g} |", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
