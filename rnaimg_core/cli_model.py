"""Model commands (train, explain) for the command line."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the model subcommands on the ``rnaimg`` parser."""
