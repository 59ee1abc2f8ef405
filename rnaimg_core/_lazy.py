"""Public names of a package that load from their modules on first use (PEP 562), for ``__init__`` files."""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_names(namespace: dict, homes: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the package whose ``globals()`` is ``namespace``: each name of
    ``homes`` loads from the package's module ``homes[name]`` on first use.

    A loaded name is stored in ``namespace``, so later uses find it directly.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(homes))

    return __getattr__, __dir__
