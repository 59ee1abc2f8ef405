"""Model commands for the command line: ``rnaimg train`` and ``rnaimg explain``.

``train`` fits the small CNN on an images file (from ``rnaimg convert``) and
reports honest test metrics beside the logistic-regression baseline; ``explain``
attributes a saved model's decisions to genes and writes the top-genes table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rnaimg_core.errors import InputError


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> dict:
    """Train on an images file, save the model folder, return the summary."""
    from rnaimg_core.images import read_images
    from rnaimg_core.model import save_model, train_model

    images = read_images(args.images)
    _log(f"training on {images.n_samples} images of shape {tuple(images.images.shape[1:])} "
         f"({int((images.split == 'holdout').sum())} holdout samples)")

    def show(record: dict) -> None:
        val = "" if record["val_loss"] is None else (f", val loss {record['val_loss']:.4f}, "
                                                     f"val accuracy {record['val_accuracy']:.3f}")
        _log(f"epoch {record['epoch']}/{record['n_epochs']}: train loss {record['train_loss']:.4f}, "
             f"train accuracy {record['train_accuracy']:.3f}{val}")

    result = train_model(images, epochs=args.epochs, seed=args.seed, batch_size=args.batch_size,
                         learning_rate=args.learning_rate, patience=args.patience, device=args.device,
                         baseline=not args.no_baseline, random_control=args.control, progress=show)
    out = save_model(result, args.out)
    summary = result.summary()
    _log(f"device {summary['device']}; stopped: {summary['stopped']} (best epoch {summary['best_epoch']})")
    _log(f"CNN on {summary['n_test']} {summary['evaluated_on']}: accuracy {summary['accuracy']:.3f}, "
         f"balanced accuracy {summary['balanced_accuracy']:.3f}")
    if result.baseline is not None:
        _log(f"baseline (logistic regression on the flattened images): accuracy "
             f"{summary['baseline_accuracy']:.3f}, balanced accuracy {summary['baseline_balanced_accuracy']:.3f}")
    _log(f"wrote {out}")
    summary["model"] = str(out)
    return summary


def cmd_explain(args: argparse.Namespace) -> dict:
    """Attribute a saved model to genes and write the top-genes CSV."""
    from rnaimg_core.attribution import explain
    from rnaimg_core.images import ImageSet, read_images
    from rnaimg_core.model import load_model

    started = time.perf_counter()
    model = load_model(args.model)
    images = read_images(args.images)
    if args.split != "all":
        keep = images.split == args.split
        if not keep.any():
            raise InputError(f"No {args.split!r} samples in {args.images}.")
        images = ImageSet(images.images[keep], images.sample_ids[keep],
                          None if images.labels is None else images.labels[keep], images.split[keep], images.layout)
    classes = None if args.class_name is None else [args.class_name]
    _log(f"explaining {images.n_samples} samples with {args.method}")
    explanation = explain(model, images, method=args.method, classes=classes, absolute=args.absolute,
                          progress=lambda done, total: _log(f"attribution: {done}/{total} samples"))
    table = explanation.class_gene_table(args.class_name, top=args.top or None)
    out = Path(args.out)
    table.to_csv(out, index=False)
    for note in explanation.notes:
        _log(f"note: {note}")
    _log(f"wrote {len(table)} rows to {out}")
    summary = explanation.summary()
    summary.update({"csv": str(out), "n_rows": int(len(table)),
                    "n_rows_sharing_pixel": int((table["n_genes_on_pixel"] > 1).sum()),
                    "attribution_seconds": summary.pop("seconds"),
                    "seconds": round(time.perf_counter() - started, 3)})
    return summary


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the model subcommands (train, explain) on the ``rnaimg`` parser."""
    from rnaimg_core.attribution import ALIASES, METHODS

    p = sub.add_parser("train", help="train the small CNN on an images file, beside a logistic-regression baseline")
    p.add_argument("--images", required=True, help="images file written by 'rnaimg convert' (.npz)")
    p.add_argument("--epochs", type=int, default=120, help="maximum epochs (early stopping may end sooner)")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits, weights and batch order")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--patience", type=int, default=40, help="epochs without a lower validation loss before stopping")
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "mps", "cpu"),
                   help="auto: CUDA GPU when present, then Apple MPS, then CPU")
    p.add_argument("--no-baseline", action="store_true", help="skip the logistic-regression baseline")
    p.add_argument("--control", action="store_true",
                   help="also train the same CNN on randomly permuted pixels (a layout-free control)")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("explain", help="attribute a trained model's decisions to genes; write the top-genes CSV")
    p.add_argument("--model", required=True, help="model folder written by 'rnaimg train'")
    p.add_argument("--images", required=True, help="images file made with the model's layout (.npz)")
    p.add_argument("--method", default="integrated_gradients", choices=sorted({*METHODS, *ALIASES}),
                   help="attribution method (default integrated_gradients)")
    p.add_argument("--class", dest="class_name", help="explain one class only (default: every class)")
    p.add_argument("--split", default="all", choices=("all", "fit", "holdout"),
                   help="which samples of the images file to explain")
    p.add_argument("--top", type=int, default=100, help="genes per class in the table (0 = all placed genes)")
    p.add_argument("--absolute", action="store_true", help="rank by mean absolute attribution")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.set_defaults(func=cmd_explain)
