"""Calibration and power of the layout check (``rnaimg compare``) on real cohorts.

Each run is one whole layout check (:func:`rnaimg_core.compare.check_layouts`) on a cohort
made from real data:

* ``null-shuffle``: the cohort's own labels shuffled (seeded): no gene carries the label, so
  no layout can help; every "arrangement helps" or "arrangement hurts" is a false claim.
* ``null-random``: real labels, and the checked layout is itself a random permutation
  (``random`` generator): its arrangement carries nothing beyond chance, so again every
  "helps"/"hurts" is false.
* ``planted-S``: labels shuffled to two balanced classes A/B, and a run of
  :data:`BLOCK` genes consecutive in genomic order raised by ``S`` standard deviations (of
  log2(1+x)) in class B: a local signal the chromosome layout carries and a gene-level
  model sees only weakly. The check must say "arrangement helps" for ``chromosome``.

Cohorts: ``demo`` (184 oligodendroglioma cells x 9,450 genes, shipped) and ``pbmc``
(150 cells of 10x PBMC 68k, 765 genes; benchmarks/data). Both REAL matrices; only the
labels (null, planted) and the planted rise are synthetic, as each row says.

Usage::

    python benchmarks/bench_layout_check.py --scenario null-shuffle --cohort demo --runs 100 --arms probe
    python benchmarks/bench_layout_check.py --scenario planted-0.3 --cohort demo --runs 10 --arms probe,cnn

Writes one JSON line per run to ``--out`` (appending) and prints the false-claim rate with its
Jeffreys interval (or the detection rate for planted runs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from rnaimg_core.compare import HELPS, HURTS, check_layouts  # noqa: E402
from rnaimg_core.expression import from_arrays, load_demo  # noqa: E402
from rnaimg_core.model import TrainSettings  # noqa: E402
from rnaimg_core.model.metrics import jeffreys_interval  # noqa: E402

BLOCK = 250


def base_cohort(name: str):
    if name == "demo":
        return load_demo()
    data = np.load(HERE / "data" / "pbmc68k_reduced.npz", allow_pickle=False)
    rng = np.random.default_rng(1000)
    wanted = {"CD14+ Monocyte": 60, "CD19+ B": 60, "CD56+ NK": 15, "CD8+ Cytotoxic T": 15}
    index = np.sort(np.concatenate([rng.choice(np.flatnonzero(data["labels"] == c), n, replace=False)
                                    for c, n in wanted.items()]))
    return from_arrays(data["values"][index], data["sample_ids"][index], data["gene_ids"], data["labels"][index],
                       source="pbmc68k_reduced")


def scenario_cohort(expr, scenario: str, run: int):
    """(expression, generators) of one run."""
    rng = np.random.default_rng(run)
    if scenario == "null-shuffle":
        return from_arrays(expr.values, expr.sample_ids, expr.gene_ids, rng.permutation(expr.labels),
                           source="labels shuffled"), ["chromosome", "deepmapper"]
    if scenario == "null-random":
        return expr, ["random"]
    strength = float(scenario.split("-", 1)[1])
    labels = np.where(rng.permutation(expr.n_samples) < expr.n_samples // 2, "A", "B")
    genes = expr.genes
    positioned = np.flatnonzero(genes["start"].notna().to_numpy())
    order = positioned[np.lexsort((genes["start"].to_numpy()[positioned],
                                   genes["chromosome"].astype(str).map(_chromosome_rank).to_numpy()[positioned]))]
    block_size = min(BLOCK, order.size // 4)
    first = int(rng.integers(0, order.size - block_size))
    block = order[first:first + block_size]
    values = np.array(expr.values, dtype=np.float32, copy=True)
    logged = np.log2(values[:, block] + 1) if values.min() >= 0 else values[:, block]
    shift = strength * logged.std(axis=0)
    raised = logged + np.where(labels == "B", 1.0, 0.0)[:, None] * shift[None, :]
    values[:, block] = (2 ** raised - 1) if values.min() >= 0 else raised
    return from_arrays(values, expr.sample_ids, expr.gene_ids, labels, source=f"planted {strength} SD"), \
        ["chromosome", "deepmapper"]


def _chromosome_rank(name: str) -> int:
    order = [str(i) for i in range(1, 23)] + ["X", "Y", "MT"]
    return order.index(name) if name in order else 99


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--cohort", default="demo", choices=["demo", "pbmc"])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--first-run", type=int, default=0)
    parser.add_argument("--arms", default="probe")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-hybrid", action="store_true")
    parser.add_argument("--out", default=str(HERE / "results_layout_check.jsonl"))
    args = parser.parse_args(argv)
    expr = base_cohort(args.cohort)
    settings = TrainSettings().replace(n_models=1, n_threads=1, device="cpu")
    claims, rows = 0, []
    for run in range(args.first_run, args.first_run + args.runs):
        cohort, generators = scenario_cohort(expr, args.scenario, run)
        started = time.perf_counter()
        check = check_layouts(cohort, generators, settings=settings, arms=tuple(args.arms.split(",")),
                              hybrid=not args.no_hybrid, power=False, structure=False, n_folds=args.folds,
                              n_repeats=args.repeats,
                              seed=run)
        verdicts = {name: check.generator_summary(name)["verdict"] for name in generators}
        arms = {name: {arm: answer["difference"] for arm, answer in
                       check.generator_summary(name)["arrangement"].items()} for name in generators}
        row = {"scenario": args.scenario, "cohort": args.cohort, "run": run, "arms": args.arms,
               "folds": args.folds, "repeats": args.repeats, "verdicts": verdicts, "differences": arms,
               "seconds": round(time.perf_counter() - started, 1)}
        rows.append(row)
        with open(args.out, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        if args.scenario.startswith("null"):
            claims += sum(v in (HELPS, HURTS) for v in verdicts.values())
        else:
            claims += verdicts.get("chromosome") == HELPS
        print(json.dumps(row), flush=True)
    tests = sum(len(r["verdicts"]) for r in rows) if args.scenario.startswith("null") else len(rows)
    low, high = jeffreys_interval(claims, tests)
    what = "false helps/hurts" if args.scenario.startswith("null") else "chromosome said helps"
    print(f"{args.scenario} on {args.cohort}: {what} in {claims} of {tests} "
          f"({claims / max(tests, 1):.3f}, 95 % Jeffreys {low:.3f}-{high:.3f}); median "
          f"{np.median([r['seconds'] for r in rows]):.1f} s per check")


if __name__ == "__main__":
    main()
