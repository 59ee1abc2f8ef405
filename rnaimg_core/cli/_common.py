"""What every ``rnaimg`` command shares: logging, ``--json`` and the summary, input options, progress.

Progress and messages go to stderr; the summary goes to stdout, as ``key: value``
lines or, with ``--json``, as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from rnaimg_core.errors import InputError
from rnaimg_core.layout import json_default


def log(message: str) -> None:
    """Print a progress or note line to stderr."""
    print(message, file=sys.stderr, flush=True)


def add_json_flag(parser: argparse.ArgumentParser, help: str = "print a JSON summary as the last line") -> None:
    """The ``--json`` switch every command has."""
    parser.add_argument("--json", action="store_true", help=help)


def emit(summary: dict, as_json: bool) -> None:
    """Print a command's summary: one JSON line, or ``key: value`` lines."""
    if as_json:
        print(json.dumps(summary, default=jsonable))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")


def jsonable(obj: Any) -> Any:
    """Numpy values as JSON; anything else (paths, ...) as its text: summaries must always print."""
    try:
        return json_default(obj)
    except TypeError:
        return str(obj)


def add_input_args(parser: argparse.ArgumentParser) -> None:
    """Options naming the expression input: a file (with a sample sheet), the demo or synthetic data."""
    from rnaimg_core.readers import ORIENTATIONS

    parser.add_argument("--input", help="expression matrix (CSV, TSV, .gz, Parquet, .h5ad); default: the embedded demo")
    parser.add_argument("--labels", help="sample sheet (CSV/TSV) with a sample id column and a label column")
    parser.add_argument("--label-column", help="the label column, in the matrix or the sample sheet")
    parser.add_argument("--orientation", default=ORIENTATIONS[0], choices=ORIENTATIONS,
                        help="samples as rows or genes as rows (default: detect)")
    parser.add_argument("--synthetic", metavar="N_SAMPLES", type=int,
                        help="use seeded SYNTHETIC TCGA-like data with this many samples instead of a file")


def read_input(args: argparse.Namespace):
    """The Expression named by :func:`add_input_args`' options, with its input reported on stderr."""
    from rnaimg_core.expression import load_demo, load_synthetic
    from rnaimg_core.readers import read_expression

    if args.input and args.synthetic:
        raise InputError("Give either --input or --synthetic, not both.")
    if args.synthetic:
        log(f"generating SYNTHETIC data: {args.synthetic} samples")
        expr = load_synthetic(n_samples=args.synthetic)
    elif not args.input:
        if args.labels:
            raise InputError("--labels needs --input (the demo carries its own labels).")
        log("no --input: using the embedded demo (oligodendroglioma, Tirosh et al. 2016)")
        expr = load_demo()
    else:
        log(f"reading {args.input}")
        expr = read_expression(args.input, labels_path=args.labels, label_column=args.label_column,
                               orientation=args.orientation)
    _report_input(expr)
    return expr


def _report_input(expr) -> None:
    mapping = expr.notes.get("gene_mapping", {})
    log(f"{expr.n_samples} samples x {expr.n_genes} genes; {len(expr.classes)} classes; "
        f"genes mapped to annotation: {mapping.get('n_mapped')} ({mapping.get('by_route')})")
    join = expr.notes.get("label_join")
    if join and (join.get("n_samples_without_label") or join.get("n_labels_without_sample")):
        log(f"labels: {join['n_samples_without_label']} sample(s) without a label were left out "
            f"(e.g. {join['samples_without_label'][:3]}); {join['n_labels_without_sample']} label(s) "
            f"name no sample (e.g. {join['labels_without_sample'][:3]})")


def progress_printer(label: str) -> Callable[[float, str], None]:
    """A ``progress(fraction, message)`` callback that logs every 10 %."""
    last = {"shown": -1}

    def show(fraction: float, message: str = "") -> None:
        percent = int(fraction * 100)
        if percent // 10 != last["shown"] // 10 or percent == 100:
            last["shown"] = percent
            log(f"{label}: {percent:3d}% {message}")

    return show
