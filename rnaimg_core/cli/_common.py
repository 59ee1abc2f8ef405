"""What every ``rnaimg`` command shares: logging, ``--json`` and the summary, input options, progress.

Progress and messages go to stderr; the summary goes to stdout, as ``key: value``
lines or, with ``--json``, as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Callable, Sequence

from rnaimg_core.errors import InputError
from rnaimg_core.expression import load_demo, load_synthetic
from rnaimg_core.gene_map import COLLAPSE_RULES, feature_mapping_lines
from rnaimg_core.layout import json_default
from rnaimg_core.limits import Limits, field_names, set_limits
from rnaimg_core.normalize import depth_message
from rnaimg_core.readers import ORIENTATIONS, read_expression


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


def number_type(kind: type, low: float | None = None, high: float | None = None, *,
                low_open: bool = False, high_open: bool = False) -> Callable[[str], Any]:
    """An argparse ``type=`` that parses ``kind`` and checks the range at parse time (NaN and inf refused).

    ``low_open``/``high_open`` exclude the bound itself (``(0, 1)`` for a fraction that cannot be 0 or 1).
    """
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole number' if kind is int else 'number'}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            lo = "" if low is None else f"{'above' if low_open else 'at least'} {low:g}"
            hi = "" if high is None else f"{'below' if high_open else 'at most'} {high:g}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {' and '.join(p for p in (lo, hi) if p)}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def parse_settings(pairs: Sequence[str] | None) -> dict[str, str]:
    """``--set KEY=VALUE`` pairs (generator parameters, as text) as a dict; a pair without ``=`` is an InputError."""
    settings = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise InputError(f"--set expects KEY=VALUE, got {pair!r}.")
        key, value = pair.split("=", 1)
        settings[key.strip()] = value
    return settings


def add_limit_option(parser: argparse.ArgumentParser) -> None:
    """``--limit NAME=VALUE`` (repeatable): raise or lower one limit of the resource policy for this command."""
    parser.add_argument("--limit", action="append", metavar="NAME=VALUE", default=[],
                        help=f"change a size limit for this run (repeatable); names: {', '.join(field_names())}")


def apply_limits(args: argparse.Namespace) -> None:
    """Make the defaults (with ``RNAIMG_*`` environment variables) plus ``--limit`` the active limits."""
    changes = {}
    for pair in getattr(args, "limit", None) or ():
        if "=" not in pair:
            raise InputError(f"--limit expects NAME=VALUE, got {pair!r}.")
        key, value = pair.split("=", 1)
        changes[key.strip()] = value.strip()
    # no --limit: back to the defaults and the environment (a previous in-process command may have set some)
    set_limits(Limits.from_env().replace(**changes) if changes else None)


def add_input_args(parser: argparse.ArgumentParser) -> None:
    """Options naming the expression input: a file (with a sample sheet), the demo or synthetic data."""
    parser.add_argument("--input", help="expression matrix (CSV, TSV, .gz, Parquet, .h5ad); default: the embedded demo")
    parser.add_argument("--labels", help="sample sheet (CSV/TSV) with a sample id column and a label column")
    parser.add_argument("--label-column", help="the label column, in the matrix or the sample sheet")
    parser.add_argument("--orientation", default=ORIENTATIONS[0], choices=ORIENTATIONS,
                        help="samples as rows or genes as rows (default: detect)")
    parser.add_argument("--gene-map", metavar="FILE",
                        help="feature-to-gene table for a matrix of probes (two columns: feature id, gene symbol / "
                             "Entrez / Ensembl id; or a GEO GPL platform table, ID with ENTREZ_GENE_ID or Gene Symbol)")
    parser.add_argument("--collapse", default=COLLAPSE_RULES[0], choices=COLLAPSE_RULES,
                        help="several features of one gene (probes, transcripts): max_mean keeps the one with the "
                             "highest mean, mean averages, sum adds; auto = max_mean for a gene map, sum for "
                             "transcript ids on a raw scale")
    parser.add_argument("--synthetic", metavar="N_SAMPLES", type=number_type(int, 4, 1_000_000),
                        help="use seeded SYNTHETIC TCGA-like data with this many samples instead of a file")
    add_limit_option(parser)


def read_input(args: argparse.Namespace):
    """The Expression named by :func:`add_input_args`' options, with its input reported on stderr."""
    apply_limits(args)  # every command reading input honours its --limit options (idempotent)
    if args.input and args.synthetic is not None:
        raise InputError("Give either --input or --synthetic, not both.")
    if getattr(args, "gene_map", None) and not args.input:
        raise InputError("--gene-map needs --input (a matrix whose rows or columns are the map's features).")
    if args.synthetic is not None:
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
                               orientation=args.orientation, gene_map=getattr(args, "gene_map", None),
                               collapse=getattr(args, "collapse", "auto"))
    _report_input(expr)
    note = expr.notes.get("gene_ids_note")
    if note:
        log(f"note: {note}")
    if expr.notes.get("orientation_reason"):
        log(f"orientation: {expr.notes['orientation']} ({expr.notes['orientation_reason']})")
    return expr


def _report_input(expr) -> None:
    features = expr.notes.get("feature_mapping")
    for line in feature_mapping_lines(features) if features else ():
        log(f"features: {line}")
    mapping = expr.notes.get("gene_mapping", {})
    log(f"{expr.n_samples} samples x {expr.n_genes} genes; {len(expr.classes)} classes; "
        f"genes mapped to annotation: {mapping.get('n_mapped')} ({mapping.get('by_route')})")
    if mapping.get("n_ambiguous_previous"):
        examples = "; ".join(f"{gene_id} ({' or '.join(candidates)})"
                             for gene_id, candidates in list(mapping["ambiguous_previous_examples"].items())[:3])
        log(f"genes: {mapping['n_ambiguous_previous']} id(s) are previous symbols of several genes and were "
            f"left unmapped rather than guessed, e.g. {examples}")
    log(f"values: {depth_message(expr.values)}")
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
