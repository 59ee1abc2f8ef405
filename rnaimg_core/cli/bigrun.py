"""Big-run options of ``rnaimg layout`` and ``rnaimg convert``: ``--engine dask`` and its cluster.

``--engine memory`` (the default) reads the whole matrix, as always. ``--engine dask``
opens the input lazily (:func:`~rnaimg_core.stores.open_cohort`) and runs on a Dask
cluster: a LocalCluster sized to the machine (``--workers`` to choose), or the running
cluster at ``--scheduler ADDRESS``. ``convert`` then writes a Zarr images store
(``--out store.zarr``); ``layout`` fits on a stratified ``--sample-size`` of the fit samples
with the normalisation computed over all of them. As in memory, ``--limit`` applies and
the output is checked before the cohort is opened or a cluster started
(:mod:`rnaimg_core.outputs`).
"""

from __future__ import annotations

import argparse
import signal
import threading
import time

from rnaimg_core.bigrun import (
    DEFAULT_FIT_SAMPLES,
    ENGINES,
    convert_to_store,
    dask_client,
    describe_progress,
    fit_cohort_layout,
)
from rnaimg_core.cli._common import apply_limits, log, parse_settings, progress_printer
from rnaimg_core.errors import InputError
from rnaimg_core.generators import get_generator
from rnaimg_core.layout import load_layout
from rnaimg_core.outputs import check_writable
from rnaimg_core.stores import DEFAULT_BLOCK_SIZE, check_store_destination, is_store, open_cohort


def add_engine_args(parser: argparse.ArgumentParser, *, fitting: bool = False) -> None:
    """``--engine``, ``--scheduler``, ``--workers``, ``--block-size`` (and ``--sample-size`` for fitting)."""
    parser.add_argument("--engine", default=ENGINES[0], choices=ENGINES,
                        help="memory: read the whole matrix (default); dask: read it block by block on a Dask "
                             "cluster, for cohorts larger than memory" + ("" if fitting else
                                                                         " (writes a Zarr store: --out NAME.zarr)"))
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="with --engine dask: a running Dask scheduler (tcp://host:8786) instead of a local cluster")
    parser.add_argument("--workers", type=int, help="with --engine dask: local worker processes (default: one per core)")
    parser.add_argument("--block-size", type=int, default=DEFAULT_BLOCK_SIZE,
                        help=f"with --engine dask: samples per block (default {DEFAULT_BLOCK_SIZE})")
    if not fitting:
        parser.add_argument("--overwrite", action="store_true",
                            help="with --engine dask: start an existing images store afresh instead of resuming it "
                                 "(a store of another input, layout or settings is never resumed)")
    if fitting:
        parser.add_argument("--sample-size", type=int, default=DEFAULT_FIT_SAMPLES,
                            help=f"with --engine dask: fit samples the placement is learned from, stratified by "
                                 f"class (default {DEFAULT_FIT_SAMPLES}); the normalisation uses all of them")


def _cohort(args: argparse.Namespace):
    if not args.input:
        raise InputError("--engine dask needs --input (an .h5ad, AnnData .zarr, Parquet or CSV/TSV file).")
    if args.workers is not None and args.workers < 1:
        raise InputError("--workers must be at least 1.")
    if getattr(args, "gene_map", None):
        raise InputError("--gene-map works with the in-memory engine only; collapse the probes to genes first "
                         "(rnaimg convert without --engine dask reads the matrix with its gene map).")
    log(f"opening {args.input} lazily (blocks of {args.block_size} samples)")
    cohort = open_cohort(args.input, labels_path=args.labels, label_column=args.label_column,
                         block_size=args.block_size, orientation=getattr(args, "orientation", "auto"))
    log(f"{cohort.n_samples} samples x {cohort.n_genes} genes; genes mapped to annotation: "
        f"{cohort.notes['gene_mapping'].get('n_mapped')}")
    by_route = cohort.notes["gene_mapping"].get("by_route", {})
    n_transcripts = sum(by_route.get(route, 0) for route in ("ensembl_transcript", "refseq"))
    if n_transcripts:
        log(f"note: {n_transcripts:,} columns are transcript ids (ENST, RefSeq); --engine dask keeps each as its own "
            "column, mapped to its gene, where the in-memory engine adds a gene's transcripts into one column")
    return cohort


def _client(args: argparse.Namespace):
    log(f"Dask: scheduler {args.scheduler}" if args.scheduler else
        f"Dask: starting a local cluster ({args.workers or 'one per core'} workers)")
    return dask_client(args.scheduler, args.workers)


def cmd_convert_dask(args: argparse.Namespace) -> dict:
    """``rnaimg convert --engine dask``: a Zarr images store, block by block on a cluster."""
    apply_limits(args)
    if not is_store(args.out):
        raise InputError("--engine dask writes a Zarr images store: give --out a name ending in .zarr.")
    check_store_destination(args.out)
    layout = load_layout(args.layout)
    cohort = _cohort(args)
    missing = "fill" if args.fill_missing else "error"
    interrupted = threading.Event()

    def on_ctrl_c(signum, frame) -> None:
        interrupted.set()
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        with _client(args) as client:
            summary = convert_to_store(layout, cohort, args.out, client=client, missing=missing,
                                       resume=not args.overwrite,
                                       progress=lambda record: log(describe_progress(record)))
    except (KeyboardInterrupt, InputError) as exc:
        # Ctrl-C can land inside a read, which then fails as unreadable input: it is still an interruption
        if isinstance(exc, InputError) and not interrupted.is_set():
            raise
        log(f"stopped: {args.out} is left incomplete (never read as finished); run the same command again to "
            "resume from the blocks already written")
        raise KeyboardInterrupt from None
    finally:
        signal.signal(signal.SIGINT, previous)
    log(f"wrote {args.out} (complete)")
    return summary


def cmd_layout_dask(args: argparse.Namespace) -> dict:
    """``rnaimg layout --engine dask``: fit on a stratified sample, normalise over the whole cohort."""
    started = time.perf_counter()
    apply_limits(args)
    check_writable(args.out)
    if args.sample_size < 2:
        raise InputError("--sample-size must be at least 2.")
    cohort = _cohort(args)
    generator = get_generator(args.generator).from_strings(parse_settings(args.set))
    with _client(args) as client:
        layout = fit_cohort_layout(generator, cohort, sample_size=args.sample_size, holdout=args.holdout,
                                   client=client, progress=progress_printer(args.generator))
    out = layout.save(args.out)
    log(f"wrote {out}")
    return {"generator": layout.generator, "shape": list(layout.shape), "quality": layout.quality,
            **layout.notes["big_run"], "n_samples": cohort.n_samples, "layout": str(out),
            "seconds": round(time.perf_counter() - started, 3)}
