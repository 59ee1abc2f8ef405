"""``rnaimg compare``: does a layout help? Each layout against its own permutation, by models that must use the image.

Runs :func:`rnaimg_core.compare.check_layouts` on an expression input (the demo
by default): progress per fold on stderr, the verdict paragraphs and the plain
explanation, and with ``--json`` the whole result
(:meth:`~rnaimg_core.compare.LayoutCheck.to_dict`) as the last line of stdout.
Training options come from :class:`~rnaimg_core.model.TrainSettings`; generator
settings from ``--set GENERATOR.NAME=VALUE`` (e.g. ``--set chromosome.preset=lyu_haque``).
"""

from __future__ import annotations

import argparse

from rnaimg_core.cli._common import add_input_args, add_json_flag, apply_limits, log, number_type, read_input
from rnaimg_core.cli.model import add_train_options
from rnaimg_core.compare import ARMS, QUICK, check_layouts, check_settings
from rnaimg_core.errors import InputError
from rnaimg_core.generators import get_generator
from rnaimg_core.model import TrainSettings
from rnaimg_core.outputs import check_writable

DEFAULT_TIME_BUDGET = 600.0  # seconds: on 2 CPU cores about 8 demo folds of two generators
# the TrainSettings fields ``rnaimg compare`` exposes (the check trains its own controls and baseline)
COMPARE_TRAIN_OPTIONS = {"epochs": "--epochs", "seed": "--seed", "batch_size": "--batch-size",
                         "learning_rate": "--learning-rate", "patience": "--patience", "device": "--device",
                         "n_models": "--n-models", "n_threads": "--threads"}


def cmd_compare(args: argparse.Namespace) -> dict:
    """Run the layout check and return its table as a dict."""
    apply_limits(args)
    if args.out:
        check_writable(args.out)
    params = generator_settings(args.set)
    for name, given in params.items():  # a typo fails here, before the data are read
        get_generator(name).from_strings(given)
    expr = read_input(args)
    generators = None if not args.generators else [name.strip() for name in args.generators.split(",")
                                                   if name.strip()]
    if generators is not None and not generators:
        raise InputError("--generators needs at least one generator name.")
    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    n_folds, n_repeats = args.folds, args.repeats
    if args.quick:
        n_folds, n_repeats = QUICK["n_folds"], QUICK["n_repeats"]
    chosen = {name: getattr(args, name) for name in COMPARE_TRAIN_OPTIONS}
    if args.quick and chosen["epochs"] == TrainSettings().epochs:  # a typed --epochs wins over --quick
        chosen["epochs"] = QUICK["epochs"]
    settings = TrainSettings().replace(**chosen)
    budget = args.time_budget or None
    log(f"layout check: {n_folds}-fold x {n_repeats} repeat(s), {settings.epochs} epochs per CNN, "
        f"time budget {'none' if budget is None else f'{budget:g} s'}")

    def show(record: dict) -> None:
        log(f"fold {record['folds_done']}/{record['folds_planned']} · {record['message']} · "
            f"{record['elapsed']:.0f} s spent, about {record['eta']:.0f} s left")

    check = check_layouts(expr, generators, settings=settings, arms=arms, hybrid=not args.no_hybrid,
                          power=not args.no_power, params=params, n_folds=n_folds, n_repeats=n_repeats,
                          time_budget=budget, seed=args.seed, progress=show)
    for note in check.notes:
        log(f"note: {note}")
    log(check.folds_line())
    for line in check.verdict_lines():
        log(line)
    log(check.explanation())
    if args.out:
        check.to_csv(args.out)
        log(f"wrote {args.out}")
    out = check.to_dict()
    if not args.json:  # the key: value form prints one line per key: keep it readable
        return {"verdicts": {name: s["verdict"] for name, s in out["generators"].items()},
                "folds": out["folds_line"], "seconds": out["seconds"],
                **({"csv": args.out} if args.out else {})}
    if args.out:
        out["csv"] = args.out
    return out


def generator_settings(pairs) -> dict[str, dict[str, str]]:
    """``GENERATOR.NAME=VALUE`` pairs as ``{generator: {name: text}}`` (checked by each generator)."""
    out: dict[str, dict[str, str]] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        generator, dot, name = key.strip().partition(".")
        if not sep or not dot or not generator or not name.strip():
            raise InputError(f"--set expects GENERATOR.NAME=VALUE (e.g. chromosome.preset=lyu_haque), got {pair!r}.")
        out.setdefault(generator, {})[name.strip()] = value
    return out


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``rnaimg compare`` on the ``rnaimg`` parser."""
    p = sub.add_parser("compare", help="does a layout help? each layout against its own permutation by models that "
                                       "must use the image (pooled probe, image-only CNN), with power; the hybrid CNN "
                                       "against a logistic-regression baseline; on the same repeated folds")
    add_input_args(p)
    p.add_argument("--generators", help="comma-separated generator names (default: every generator that applies "
                                        "to the data, controls excepted)")
    p.add_argument("--folds", type=number_type(int, 2, 50), default=5,
                   help="stratified folds per repeat (default %(default)s; fewer when the smallest class is small)")
    p.add_argument("--repeats", type=number_type(int, 1, 100), default=3, help="repeats of the folds "
                   "(default %(default)s)")
    p.add_argument("--time-budget", type=number_type(float, 0), default=DEFAULT_TIME_BUDGET, metavar="SECONDS",
                   help="stop starting folds when this is spent (at least 2 folds run; 0 = no limit; "
                        "default %(default)g)")
    p.add_argument("--set", action="append", metavar="GENERATOR.NAME=VALUE",
                   help="a generator setting, e.g. chromosome.preset=lyu_haque (repeatable)")
    p.add_argument("--arms", default=",".join(ARMS),
                   help="models that answer the arrangement question: probe (pooled probe, seconds), cnn "
                        "(image-only CNN); default %(default)s")
    p.add_argument("--no-hybrid", action="store_true",
                   help="skip the best-predictor rows (hybrid CNN and flat baseline)")
    p.add_argument("--no-power", action="store_true",
                   help="skip the power measurement (planted signals) behind every 'no evidence'")
    p.add_argument("--quick", action="store_true",
                   help=f"a first look: {QUICK['n_folds']} folds, {QUICK['n_repeats']} repeat, "
                        f"{QUICK['epochs']} epochs")
    add_train_options(p, COMPARE_TRAIN_OPTIONS)
    # the check's own default: one network per fit (see rnaimg_core.compare.CHECK_SETTINGS)
    p.set_defaults(n_models=check_settings().n_models)
    p.add_argument("--out", help="also write the table as CSV")
    add_json_flag(p, help="print the table as JSON on the last line")
    p.set_defaults(func=cmd_compare)
