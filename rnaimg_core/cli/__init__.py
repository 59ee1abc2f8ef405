"""The ``rnaimg`` command line: one module per command group.

- :mod:`~rnaimg_core.cli.layouts`: ``generators``, ``layout``, ``convert``
- :mod:`~rnaimg_core.cli.model`: ``train``, ``explain``
- :mod:`~rnaimg_core.cli.compare`: ``compare`` (the layout check)

Every command prints progress to stderr; with ``--json`` the last line of
stdout is one JSON object summarising what it did. A problem with the input
prints its message and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from rnaimg_core.cli import compare, layouts, model
from rnaimg_core.cli._common import emit
from rnaimg_core.errors import InputError

EXIT_INPUT_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The ``rnaimg`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="rnaimg", description="Turn RNA-seq expression profiles into images for CNNs.")
    sub = parser.add_subparsers(dest="command", required=True)
    layouts.add_commands(sub)
    model.add_commands(sub)
    compare.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rnaimg`` with ``argv`` (default: the process arguments); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summary = args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:  # a size within limits raised by hand, yet beyond this machine
        print("error: out of memory: the request does not fit in this machine's memory; lower the sizes "
              "(or the limits raised with --limit / RNAIMG_*).", file=sys.stderr)
        return EXIT_INPUT_ERROR
    if summary is not None:
        emit(summary, getattr(args, "json", False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
