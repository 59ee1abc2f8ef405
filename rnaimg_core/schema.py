"""Shared checks for the project's own file schemas (layout, model): the format tag and its version."""

from __future__ import annotations

from typing import Any

from rnaimg_core.errors import InputError


def check_format(data: Any, expected: str, max_version: int, noun: str) -> int:
    """Check that ``data`` is a JSON object tagged ``format: expected`` with a readable version.

    Parameters
    ----------
    data : the parsed JSON
    expected : the format tag (``"rnaimg-layout"``, ``"rnaimg-model"``)
    max_version : the newest ``format_version`` this rnaimg reads
    noun : what the file holds, for messages (``"layout"``, ``"model"``)

    Returns
    -------
    int, the format version (1 when absent)

    Raises
    ------
    InputError
        For another type or tag, a version that is not a positive whole number, or a newer version.
    """
    if not isinstance(data, dict) or data.get("format") != expected:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise InputError(f"This is not an rnaimg {noun} file (format {found!r}, expected {expected!r}).")
    version = data.get("format_version", 1)
    if type(version) is not int or version < 1:
        raise InputError(f"The {noun} file is damaged: 'format_version' must be a positive whole number.")
    if version > max_version:
        raise InputError(f"This {noun} file has format version {version}; this rnaimg reads up to version "
                         f"{max_version}. Please upgrade rnaimg.")
    return version
