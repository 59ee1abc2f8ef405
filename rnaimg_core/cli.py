"""The ``rnaimg`` command line: layout, convert, generators (train and explain in cli_model).

Every command prints progress to stderr; with ``--json`` the last line of
stdout is one JSON object summarising what it did. A problem with the input
prints its message and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable, Sequence

import numpy as np

from rnaimg_core.errors import InputError
from rnaimg_core.expression import holdout_split
from rnaimg_core.layout import json_default

EXIT_INPUT_ERROR = 2


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _emit(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, default=_jsonable))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")


def _jsonable(obj):
    """Numpy values as JSON; anything else (paths, ...) as its text: summaries must always print."""
    try:
        return json_default(obj)
    except TypeError:
        return str(obj)


def _add_input_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", help="expression matrix (CSV, TSV, .gz, Parquet, .h5ad); default: the embedded demo")
    parser.add_argument("--labels", help="sample sheet (CSV/TSV) with a sample id column and a label column")
    parser.add_argument("--label-column", help="the label column, in the matrix or the sample sheet")
    parser.add_argument("--orientation", default="auto", choices=("auto", "samples-as-rows", "genes-as-rows"),
                        help="samples as rows or genes as rows (default: detect)")
    parser.add_argument("--synthetic", metavar="N_SAMPLES", type=int,
                        help="use seeded SYNTHETIC TCGA-like data with this many samples instead of a file")


def _read_input(args: argparse.Namespace):
    from rnaimg_core.expression import load_demo, load_synthetic, read_expression

    if args.input and args.synthetic:
        raise InputError("Give either --input or --synthetic, not both.")
    if args.synthetic:
        _log(f"generating SYNTHETIC data: {args.synthetic} samples")
        return load_synthetic(n_samples=args.synthetic)
    if not args.input:
        if args.labels:
            raise InputError("--labels needs --input (the demo carries its own labels).")
        _log("no --input: using the embedded demo (oligodendroglioma, Tirosh et al. 2016)")
        return load_demo()
    _log(f"reading {args.input}")
    return read_expression(args.input, labels_path=args.labels, label_column=args.label_column,
                           orientation=args.orientation)


def _parse_settings(pairs: Sequence[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise InputError(f"--set expects KEY=VALUE, got {pair!r}.")
        key, value = pair.split("=", 1)
        settings[key.strip()] = value
    return settings


def _progress_printer(label: str) -> Callable[[float, str], None]:
    last = {"shown": -1}

    def show(fraction: float, message: str = "") -> None:
        percent = int(fraction * 100)
        if percent // 10 != last["shown"] // 10 or percent == 100:
            last["shown"] = percent
            _log(f"{label}: {percent:3d}% {message}")

    return show


# ---------------------------------------------------------------- commands

def cmd_generators(args: argparse.Namespace) -> dict | None:
    from rnaimg_core.generators import list_generators

    generators = list_generators()
    if args.json:
        print(json.dumps(generators, default=_jsonable))
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
    from rnaimg_core.generators import get_generator

    started = time.perf_counter()
    expr = _read_input(args)
    _report_input(expr)
    generator = get_generator(args.generator).from_strings(_parse_settings(args.set))
    train = np.flatnonzero(holdout_split(expr.labels, expr.n_samples, args.holdout, generator.params_["seed"]) == "fit")
    _log(f"fitting {args.generator} on {train.size} of {expr.n_samples} samples x {expr.n_genes} genes")
    layout = generator.fit(expr, train_index=train, progress=_progress_printer(args.generator))
    out = layout.save(args.out)
    _log(f"wrote {out}")
    mapping = expr.notes.get("gene_mapping", {})
    return {
        "generator": layout.generator,
        "shape": list(layout.shape),
        "n_genes_in": layout.quality["n_genes_in"],
        "n_genes_placed": layout.quality["n_genes_placed"],
        "n_pixels_used": layout.quality["n_pixels_used"],
        "max_genes_per_pixel": layout.quality["max_genes_per_pixel"],
        "quality": layout.quality,
        "n_fit_samples": int(train.size),
        "n_samples": expr.n_samples,
        "genes_mapped": mapping.get("n_mapped"),
        "genes_by_route": mapping.get("by_route"),
        "notes": layout.notes,
        "layout": str(out),
        "seconds": round(time.perf_counter() - started, 3),
    }


def cmd_convert(args: argparse.Namespace) -> dict:
    from rnaimg_core.images import stream_images
    from rnaimg_core.layout import load_layout

    started = time.perf_counter()
    layout = load_layout(args.layout)
    expr = _read_input(args)
    _report_input(expr)
    _log(f"converting {expr.n_samples} samples with layout {args.layout} -> {args.out}")
    missing = "fill" if args.fill_missing else "error"
    layout.align(expr.gene_ids, missing=missing)  # fail on missing genes before writing anything
    fit = set(layout.fit_sample_ids)
    split = np.where(np.isin(expr.sample_ids, list(fit)), "fit", "holdout") if fit else np.full(expr.n_samples, "fit")

    def chunks():
        for start in range(0, expr.n_samples, args.chunk_size):
            stop = min(expr.n_samples, start + args.chunk_size)
            yield layout.transform(expr.values[start:stop], expr.gene_ids, missing=missing)
            _log(f"convert: {stop}/{expr.n_samples} samples")

    out = stream_images(args.out, chunks(), expr.sample_ids, expr.labels, layout, split=split)
    return {
        "images": str(out),
        "n_samples": expr.n_samples,
        "shape": list(layout.shape),
        "n_fit_samples": int((split == "fit").sum()),
        "n_holdout_samples": int((split == "holdout").sum()),
        "labelled": expr.labels is not None,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _report_input(expr) -> None:
    mapping = expr.notes.get("gene_mapping", {})
    _log(f"{expr.n_samples} samples x {expr.n_genes} genes; {len(expr.classes)} classes; "
         f"genes mapped to annotation: {mapping.get('n_mapped')} ({mapping.get('by_route')})")
    join = expr.notes.get("label_join")
    if join and (join.get("n_samples_without_label") or join.get("n_labels_without_sample")):
        _log(f"labels: {join['n_samples_without_label']} sample(s) without a label were left out "
             f"(e.g. {join['samples_without_label'][:3]}); {join['n_labels_without_sample']} label(s) "
             f"name no sample (e.g. {join['labels_without_sample'][:3]})")


# ---------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnaimg", description="Turn RNA-seq expression profiles into images for CNNs.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generators", help="list the image generators and their parameters")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_generators)

    p = sub.add_parser("layout", help="fit a layout (gene -> pixel map) and save it")
    _add_input_args(p)
    p.add_argument("--generator", required=True, help="generator name (see 'rnaimg generators')")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="generator parameter, repeatable")
    p.add_argument("--holdout", type=float, default=0.0,
                   help="fraction of samples (stratified) kept out of fitting, for honest evaluation later")
    p.add_argument("--out", required=True, help="layout file to write (.json or .json.gz)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.set_defaults(func=cmd_layout)

    p = sub.add_parser("convert", help="turn samples into images with a saved layout")
    _add_input_args(p)
    p.add_argument("--layout", required=True, help="layout file written by 'rnaimg layout'")
    p.add_argument("--fill-missing", action="store_true",
                   help="let layout genes absent from the input take the training mean instead of failing")
    p.add_argument("--chunk-size", type=int, default=2048,
                   help="samples converted and written at a time (bounds memory; default 2048)")
    p.add_argument("--out", required=True, help="images file to write (.npz)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.set_defaults(func=cmd_convert)

    from rnaimg_core import cli_model

    cli_model.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summary = args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if summary is not None:
        _emit(summary, getattr(args, "json", False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
