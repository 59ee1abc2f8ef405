"""Data shared by the tests, built once per session.

The fixtures hand every test the same objects: treat them as read-only and copy
before changing anything (``expr.values.copy()``, ``dataclasses.replace``).
Assertion helpers and the planted-data builders live in ``tests/helpers.py``.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from rnaimg_core.expression import Expression
    from rnaimg_core.images import ImageSet
    from rnaimg_core.layout import Layout

# Bytecode is cached for the run's processes (workers, CLI subprocesses, Streamlit servers, Dask workers) even
# where the environment says not to (PYTHONDONTWRITEBYTECODE=1 on this project's machines): each of them
# compiled the project afresh and each worker re-wrote every test module's asserts, about 5 s a worker.
# The caches land in __pycache__ folders (git-ignored). Set here, before pytest-xdist starts its workers.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
# One thread per process: the run's two workers (and the servers and subprocesses they start) already keep the
# machine's cores busy, and torch's and OpenBLAS's own threads on top only made them wait on each other:
# the model, attribution, layout and big-run files took 94 CPU s with one thread and 112 with two, 11 % less wall
# time (tests/README.md). A thread count set by whoever runs the suite is kept; tests of the thread policy
# set and clear the variable themselves.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The library loads inside the fixtures: the pytest-xdist controller, which runs no test, never imports torch.


def pytest_collection_modifyitems(items) -> None:
    """Mark the AppTest page tests (tests/app/) ``app``, so the edit loop can leave them out (tests/README.md),
    and run the long files first, a browser file after each other long file.

    The workers (pytest-xdist, ``--dist loadfile --no-loadscope-reorder`` in pyproject.toml) take files in this
    order as they come free. Files with ``slow`` or ``app`` tests take most of the time: started first, they
    do not leave one worker alone at the end (the two workers ended 3 s apart in a measured run). Browser and
    computing files alternate in the list, but a worker busy with a long browser file may still take the
    next browser file: the interleaving is a hint, not a guarantee.
    """
    for item in items:
        if "tests/app/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.app)
    files: dict[str, list] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::")[0], []).append(item)
    long = [f for f, its in files.items() if any(it.get_closest_marker(m) for it in its for m in ("slow", "app"))]
    browser = [f for f in long if any(it.get_closest_marker("browser") for it in files[f])]
    computing = [f for f in long if f not in browser]
    order = [f for pair in zip(computing, browser) for f in pair]
    order += computing[len(browser):] + browser[len(computing):]
    order += [f for f in files if f not in order]
    items[:] = [item for f in order for item in files[f]]


@pytest.fixture(scope="session")
def demo_expression() -> Expression:
    """The embedded demo: 184 oligodendroglioma cells x 9,450 genes, six classes."""
    from rnaimg_core.expression import load_demo

    return load_demo()


@pytest.fixture(scope="session")
def synthetic_small():
    """(Expression, modules) of rnaimg's small synthetic set: 300 samples x 2,000 genes, 10 modules of 30."""
    from rnaimg_core.expression import from_arrays
    from rnaimg_core.synthetic import make_synthetic_small

    data = make_synthetic_small(seed=0)
    expr = from_arrays(data.values, data.sample_ids, data.gene_ids, data.labels, source="synthetic small")
    return expr, data.modules


@pytest.fixture(scope="session")
def planted():
    """(Expression, driver symbols per class): 240 samples x 400 real genes, see ``make_planted``."""
    from tests.helpers import make_planted

    return make_planted()


@pytest.fixture(scope="session")
def planted_images(planted) -> ImageSet:
    """Chromosome-layout images of ``planted``, a stratified quarter held out of the fit."""
    from tests.helpers import make_planted_images

    return make_planted_images(planted[0])


@pytest.fixture(scope="session")
def go_expression(demo_expression) -> Expression:
    """The first 2,500 demo genes (fast t-SNE), with their real GO annotation."""
    from rnaimg_core.expression import from_arrays

    expr = demo_expression
    return from_arrays(expr.values[:, :2500], expr.sample_ids, expr.gene_ids[:2500], expr.labels)


@pytest.fixture(scope="session")
def go_layout(go_expression) -> Layout:
    """Collision-free Gene Ontology layout of ``go_expression``."""
    from rnaimg_core.generators import fit_layout

    return fit_layout(go_expression, "gene_ontology", {"assignment": "collision_free"})

