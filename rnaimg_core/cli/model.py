"""Model commands: ``rnaimg train`` and ``rnaimg explain``.

``train`` fits the small CNN on an images file (from ``rnaimg convert``) and
reports honest test metrics beside the logistic-regression baseline; its
options, defaults and help come from :class:`~rnaimg_core.model.TrainSettings`.
``explain`` attributes a saved model's decisions to genes and writes the
top-genes table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rnaimg_core.attribution import METHOD_NAMES, explain
from rnaimg_core.cli._common import add_json_flag, add_limit_option, apply_limits, log, number_type
from rnaimg_core.errors import InputError
from rnaimg_core.model import TrainSettings, load_model, save_model, train_model
from rnaimg_core.outputs import atomic_output, check_writable
from rnaimg_core.splits import FIT, HOLDOUT
from rnaimg_core.stores import open_images

# The TrainSettings fields ``rnaimg train`` exposes, and their option names. A True-by-default
# switch is turned off by its option (help given here, since it says what the option does).
TRAIN_OPTIONS = {
    "epochs": "--epochs",
    "seed": "--seed",
    "batch_size": "--batch-size",
    "learning_rate": "--learning-rate",
    "patience": "--patience",
    "device": "--device",
    "baseline": ("--no-baseline", "skip the logistic-regression baseline"),
    "random_control": "--control",
    "samples_per_epoch": "--samples-per-epoch",
    "n_models": "--n-models",
    "n_threads": "--threads",
}
_TYPES = {"int": int, "float": float, "str": str}


def add_train_options(parser: argparse.ArgumentParser, options: dict | None = None) -> None:
    """One option per exposed TrainSettings field (default: :data:`TRAIN_OPTIONS`), from its spec."""
    described = {spec["name"]: spec for spec in TrainSettings.describe()}
    for name, option in (TRAIN_OPTIONS if options is None else options).items():
        spec = described[name]
        if spec["type"] == "bool":
            flag, help_text = option if isinstance(option, tuple) else (option, spec["help"])
            parser.add_argument(flag, dest=name, action="store_false" if spec["default"] else "store_true",
                                help=help_text)
            continue
        bounds = "" if spec["bounds"] is None else f"; {spec['bounds'][0]} to {spec['bounds'][1]}"
        kind = _TYPES[spec["type"].removesuffix(" | None")]
        parse = kind if spec["bounds"] is None else number_type(kind, *spec["bounds"])
        parser.add_argument(option, dest=name, type=parse, default=spec["default"],
                            choices=spec["choices"], help=f"{spec['help']} (default %(default)s{bounds})")




def cmd_train(args: argparse.Namespace) -> dict:
    """Train on an images file, save the model folder, return the summary."""
    apply_limits(args)
    check_writable(args.out, folder=True)
    settings = TrainSettings().replace(**{name: getattr(args, name) for name in TRAIN_OPTIONS})
    images = open_images(args.images)  # a .zarr store stays on disk and is streamed
    if images.labels is None:
        raise InputError(f"{args.images} has no labels; training needs a class per sample.")
    log(f"training on {images.n_samples} images of shape {tuple(images.images.shape[1:])} "
        f"({int((images.split == HOLDOUT).sum())} holdout samples)")

    def show(record: dict) -> None:
        val = "" if record["val_loss"] is None else (f", val loss {record['val_loss']:.4f}, "
                                                     f"val accuracy {record['val_accuracy']:.3f}")
        log(f"epoch {record['epoch']}/{record['n_epochs']}: train loss {record['train_loss']:.4f}, "
            f"train accuracy {record['train_accuracy']:.3f}{val}")

    result = train_model(images, settings, progress=show)
    out = save_model(result, args.out)
    summary = result.summary()
    log(f"device {summary['device']}; stopped: {summary['stopped']} (best epoch {summary['best_epoch']})")
    log(f"CNN on {summary['n_test']} {summary['evaluated_on']}: accuracy {summary['accuracy']:.3f}, "
        f"balanced accuracy {summary['balanced_accuracy']:.3f}")
    if result.baseline is not None:
        log(f"baseline (logistic regression on the flattened images): accuracy "
            f"{summary['baseline_accuracy']:.3f}, balanced accuracy {summary['baseline_balanced_accuracy']:.3f}")
    log(f"wrote {out}")
    summary["model"] = str(out)
    return summary


def cmd_explain(args: argparse.Namespace) -> dict:
    """Attribute a saved model to genes and write the top-genes CSV."""
    started = time.perf_counter()
    apply_limits(args)
    check_writable(args.out)
    model = load_model(args.model)
    images = open_images(args.images, per_class=args.per_class)  # a store: a per-class sample
    if model.layout is not None:  # before subsetting, naming the file (explain() checks again)
        model.layout.check_same_as(images.layout, what=str(args.images), whose="the model's layout",
                                   fix="Convert the data with the model's layout (layout.json.gz in the model folder).")
    if args.split not in ("all", "auto"):
        keep = images.split == args.split
        if not keep.any():
            raise InputError(f"No {args.split!r} samples in {args.images}.")
        images = images.subset(keep)
    classes = None if args.class_name is None else [args.class_name]
    log(f"explaining with {args.method} (samples: {args.split})")
    explanation = explain(model, images, method=args.method, classes=classes, absolute=args.absolute,
                          samples="all" if args.split == "all" else None,
                          progress=lambda done, total: log(f"attribution: {done}/{total} samples"))
    table = explanation.class_gene_table(args.class_name, top=args.top or None)
    out = Path(args.out)
    with atomic_output(out) as tmp:
        table.to_csv(tmp, index=False)
    for note in explanation.notes:
        log(f"note: {note}")
    log(f"wrote {len(table)} rows to {out}")
    summary = explanation.summary()
    summary.update({"csv": str(out), "n_rows": int(len(table)),
                    "n_rows_sharing_pixel": int((table["n_genes_on_pixel"] > 1).sum()),
                    "attribution_seconds": summary.pop("seconds"),
                    "seconds": round(time.perf_counter() - started, 3)})
    return summary


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the model subcommands (train, explain) on the ``rnaimg`` parser."""
    p = sub.add_parser("train", help="train the small CNN on an images file, beside a logistic-regression baseline")
    p.add_argument("--images", required=True, help="images file written by 'rnaimg convert' (.npz, or a .zarr "
                                                    "store, streamed)")
    add_train_options(p)
    p.add_argument("--out", required=True, help="model folder to write")
    add_limit_option(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("explain", help="attribute a trained model's decisions to genes; write the top-genes CSV")
    p.add_argument("--model", required=True, help="model folder written by 'rnaimg train'")
    p.add_argument("--images", required=True, help="images file made with the model's layout (.npz or .zarr)")
    p.add_argument("--per-class", type=int, default=500,
                   help="from a .zarr images store: samples of each class explained (default 500)")
    p.add_argument("--method", default="integrated_gradients", choices=sorted(METHOD_NAMES),
                   help="attribution method (default integrated_gradients)")
    p.add_argument("--class", dest="class_name", help="explain one class only (default: every class)")
    p.add_argument("--split", default="auto", choices=("auto", "all", FIT, HOLDOUT),
                   help="which samples of the images file to explain (auto: the holdout samples when there are "
                        "any, else all)")
    p.add_argument("--top", type=number_type(int, 0, 10_000_000), default=100, help="genes per class in the table (0 = all placed genes)")
    p.add_argument("--absolute", action="store_true", help="rank by mean absolute attribution")
    p.add_argument("--out", required=True, help="CSV file to write")
    add_limit_option(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_explain)
