"""Layout commands: ``rnaimg generators``, ``rnaimg layout`` (fit and save) and ``rnaimg convert`` (images)."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from rnaimg_core.cli._common import (
    add_input_args,
    add_json_flag,
    apply_limits,
    jsonable,
    log,
    number_type,
    parse_settings,
    progress_printer,
    read_input,
)
from rnaimg_core.cli.bigrun import add_engine_args, cmd_convert_dask, cmd_layout_dask
from rnaimg_core.errors import InputError
from rnaimg_core.generators import REGISTRY, get_generator, list_generators
from rnaimg_core.images import stream_images
from rnaimg_core.layout import load_layout
from rnaimg_core.limits import current_limits
from rnaimg_core.outputs import check_writable
from rnaimg_core.splits import FIT, HOLDOUT, HOLDOUT_FRACTION, holdout_rule, layout_split


def cmd_generators(args: argparse.Namespace) -> dict | None:
    """List the generators and their parameters (JSON, or readable text)."""
    generators = list_generators()
    if args.json:
        print(json.dumps(generators, default=jsonable))
        return None
    for gen in generators:
        print(f"{gen['name']}: {gen['title']}\n  {gen['description']}")
        for p in gen["parameters"]:
            extra = f" choices={p['choices']}" if "choices" in p else ""
            extra += f" min={p['min']}" if "min" in p else ""
            extra += f" max={p['max']}" if "max" in p else ""
            print(f"    {p['name']} ({p['type']}, default {p['default']!r}{extra}): {p['help']}")
        print()
    return None


def cmd_layout(args: argparse.Namespace) -> dict:
    """Fit a layout on the fit samples and save it; return the summary."""
    if getattr(args, "engine", "memory") == "dask":  # a cohort larger than memory: rnaimg_core/cli/bigrun.py
        return cmd_layout_dask(args)
    started = time.perf_counter()
    apply_limits(args)
    check_writable(args.out)
    generator = get_generator(args.generator).from_strings(parse_settings(args.set))
    expr = read_input(args)
    split = holdout_rule(expr.labels, expr.n_samples, args.holdout)
    train = np.flatnonzero(split == FIT)
    log(f"fitting {args.generator} on {train.size} of {expr.n_samples} samples x {expr.n_genes} genes")
    layout = generator.fit(expr, train_index=train, progress=progress_printer(args.generator))
    out = layout.save(args.out)
    log(f"wrote {out}")
    norm = layout.normalization
    log(f"normalisation: {'counts per million, ' if norm.depth_applied_ else ''}"
        f"{'log2(x+1), ' if norm.log_applied_ else ''}scale {norm.scale} (depth {norm.depth_reason_})")
    for key, text in layout.notes.items():
        if key.startswith("warning"):
            log(f"warning: {text}")
    mapping = expr.notes.get("gene_mapping", {})
    return {
        "generator": layout.generator,
        "shape": list(layout.shape),
        "n_genes_in": layout.quality["n_genes_in"],
        "n_genes_placed": layout.quality["n_genes_placed"],
        "n_pixels_used": layout.quality["n_pixels_used"],
        "max_genes_per_pixel": layout.quality["max_genes_per_pixel"],
        "quality": layout.quality,
        "normalization": {k: v for k, v in layout.normalization.to_dict().items() if k not in ("center", "spread")},
        "n_fit_samples": int(train.size),
        "n_samples": expr.n_samples,
        "genes_mapped": mapping.get("n_mapped"),
        "genes_by_route": mapping.get("by_route"),
        "notes": layout.notes,
        "layout": str(out),
        "seconds": round(time.perf_counter() - started, 3),
    }


def cmd_convert(args: argparse.Namespace) -> dict:
    """Turn samples into images with a saved layout, written chunk by chunk; return the summary."""
    if getattr(args, "engine", "memory") == "dask":  # a Zarr store converted on Dask: rnaimg_core/cli/bigrun.py
        return cmd_convert_dask(args)
    started = time.perf_counter()
    apply_limits(args)
    check_writable(args.out)
    layout = load_layout(args.layout)
    expr = read_input(args)
    log(f"converting {expr.n_samples} samples with layout {args.layout} -> {args.out}")
    missing = "fill" if args.fill_missing else "error"
    try:
        columns = layout.align(expr.gene_ids, missing=missing)  # fail on missing genes before writing anything
    except InputError as exc:
        fitted = layout.notes.get("features_to_genes", {})
        if fitted.get("kind") == "gene_map" and "feature_mapping" not in expr.notes:
            raise InputError(f"{exc} The layout was fitted on probes collapsed to genes through the gene map "
                             f"{fitted.get('gene_map')} ({fitted.get('collapse')}): give --gene-map (and --collapse) "
                             "again.") from None
        raise
    n_filled = int((columns < 0).sum())
    if n_filled == layout.n_genes:
        raise InputError(f"None of the layout's {layout.n_genes} genes is in the input; --fill-missing would "
                         "give every sample the same image.")
    if n_filled:
        log(f"note: {n_filled} of the layout's {layout.n_genes} genes ({100 * n_filled / layout.n_genes:.1f} %) are "
            "absent from the input and take the training mean (--fill-missing)")
    # --chunk-size counts samples; the resource policy bounds samples x pixels of one chunk too
    chunk = max(1, min(args.chunk_size, current_limits().max_chunk_values // layout.n_pixels))
    split = layout_split(layout.fit_sample_ids, expr.sample_ids)

    def chunks():
        for start in range(0, expr.n_samples, chunk):
            stop = min(expr.n_samples, start + chunk)
            yield layout.transform(expr.values[start:stop], expr.gene_ids, missing=missing)
            log(f"convert: {stop}/{expr.n_samples} samples")

    out = stream_images(args.out, chunks(), expr.sample_ids, expr.labels, layout, split=split)
    return {
        "images": str(out),
        "n_samples": expr.n_samples,
        "shape": list(layout.shape),
        "n_fit_samples": int((split == FIT).sum()),
        "n_holdout_samples": int((split == HOLDOUT).sum()),
        "labelled": expr.labels is not None,
        "n_layout_genes_filled": n_filled,
        "seconds": round(time.perf_counter() - started, 3),
    }


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the layout subcommands (generators, layout, convert) on the ``rnaimg`` parser."""
    p = sub.add_parser("generators", help="list the image generators and their parameters")
    add_json_flag(p, help="print a JSON list")
    p.set_defaults(func=cmd_generators)

    p = sub.add_parser("layout", help="fit a layout (gene -> pixel map) and save it")
    add_input_args(p)
    p.add_argument("--generator", required=True, help=f"generator name: {', '.join(REGISTRY)} "
                                                        "(see 'rnaimg generators')")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="generator parameter, repeatable")
    p.add_argument("--holdout", type=number_type(float, 0.0, 1.0, high_open=True), default=None,
                   help=f"fraction of samples (stratified) kept out of fitting, for honest evaluation later "
                        f"(default {HOLDOUT_FRACTION:g}, as the dashboard, the same samples whatever the "
                        f"generator; by default nothing is held out when a class is too small; 0: none)")
    p.add_argument("--out", required=True, help="layout file to write (.json or .json.gz)")
    add_engine_args(p, fitting=True)
    add_json_flag(p)
    p.set_defaults(func=cmd_layout)

    p = sub.add_parser("convert", help="turn samples into images with a saved layout")
    add_input_args(p)
    p.add_argument("--layout", required=True, help="layout file written by 'rnaimg layout'")
    p.add_argument("--fill-missing", action="store_true",
                   help="let layout genes absent from the input take the training mean instead of failing")
    p.add_argument("--chunk-size", type=number_type(int, 1, 10_000_000), default=2048,
                   help="samples converted and written at a time (bounds memory; default 2048)")
    p.add_argument("--out", required=True, help="images file to write (.npz; a .zarr store with --engine dask)")
    add_engine_args(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_convert)
