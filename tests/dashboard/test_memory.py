"""The server's heap at its first page run: what the pages will import is loaded and frozen, garbage made later is
still collected."""

from __future__ import annotations

import gc
import sys
import weakref

from dashboard.memory import WARM_IMPORTS, freeze_startup_objects


class Node:
    """An object that can sit in a reference cycle (only the cyclic collector frees it)."""

    def __init__(self):
        self.other = None


def test_startup_objects_are_frozen_once_and_later_cycles_are_still_collected():
    freeze_startup_objects()  # the first call freezes (unless an AppTest of app.py in this process did)
    frozen = gc.get_freeze_count()
    assert frozen > 1000  # modules, classes, caches: the collection after each run no longer scans them
    assert all(name in sys.modules for name in WARM_IMPORTS)  # what pages import on first use, frozen with them
    freeze_startup_objects()  # once per process: a later run freezes nothing more (its garbage stays collectable)
    assert gc.get_freeze_count() == frozen
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle made after the freeze, as a page run makes them
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None
