"""The server's one memory budget (:mod:`rnaimg_core.budget`) applied to the dashboard's heavy work.

Every session of a server shares one :func:`~rnaimg_core.budget.server_budget`. Here the
dashboard's jobs ask it for admission before they allocate, and what a session keeps stays
counted until it is freed:

- reading an upload (:func:`read_upload`): the parse's cells are bounded by the reservation
  (a thread-local ``max_cells``), so a decompression bomb is refused inside it; the data kept
  are then held for as long as the session keeps them;
- synthetic data (:func:`make_synthetic`), a layout fit (:func:`fitting`), a layout's images
  (:func:`drawing`), training and the layout check (:func:`admit_job`, released when the job's
  thread ends);
- size widgets (:func:`bounded_spec`): image height and width stop where drawing every sample
  would pass one request's share of the budget.

A job that does not fit waits up to :data:`WAIT_SECONDS` for others to finish (a queue), then is
refused with a :class:`~rnaimg_core.budget.BudgetExceeded` message (an InputError, shown by the page).
No Streamlit import: plain Python over the library, tested without a server.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import weakref
from typing import Any, Callable

from rnaimg_core import budget as rb
from rnaimg_core.errors import InputError
from rnaimg_core.expression import Expression
from rnaimg_core.limits import current_limits, thread_limits

WAIT_SECONDS = 20.0          # a job queues this long for memory before it is refused
MIN_UPLOAD_RESERVATION = 64 * 2**20
UPLOAD_BYTES_FACTOR = 40     # first reservation for an upload: 40 x its bytes (text parses to ~2-20 x);
                             # a file that needs more (gzip, narrow tables) is tried once with a full share


_counted: set[int] = set()  # ids of live objects whose bytes the budget already counts (data are unhashable)
_heap_frozen = False


# What the pages import on first use rather than at their top, so it is in memory before the freeze. Found by
# touring every page in a browser and listing the modules imported after the first run (1,570 of them, which
# made each collection scan 0.1 s of objects again): the first optimiser imports torch._dynamo (with sympy),
# the first attribution captum.attr (with matplotlib and IPython), the baseline and the probe scikit-learn's
# linear models, the Explain, Compare and Data pages the library modules below. (The dashboard's own modules,
# a few thousand objects, load with the first page.)
WARM_IMPORTS = (
    "rnaimg_core.archives", "rnaimg_core.attribution", "rnaimg_core.compare", "rnaimg_core.walkthrough",
    "torch._dynamo", "captum.attr", "sklearn.linear_model", "sklearn.svm", "openTSNE", "minisom",
)


def freeze_startup_objects() -> None:
    """Once per server process, at its first page run: import :data:`WARM_IMPORTS`, collect, then exempt
    what lives from the cyclic GC.

    Streamlit runs a full garbage collection after every page run (``runner.postScriptGC``), so cyclic
    garbage is freed before the next job asks the budget for memory. With the whole stack imported
    (torch, pandas, plotly, scikit-learn, captum: about 500,000 objects) each of those collections took
    0.1-0.2 s of a core here, holding the interpreter lock, at every rerun of every session. The objects
    alive at the first run are almost all modules, classes and caches that live as long as the server:
    ``gc.freeze`` moves them out of the collector's sight, and the collection after each run then scans
    only what later runs create. Importing first what the pages would import later (1.5-3 s once per
    server, on its first page load) keeps those modules out of the scans too; freezing before the page
    runs keeps the first session's own objects out of the frozen set. Reference counting still frees
    every object; only garbage cycles among the frozen objects would stay.
    """
    global _heap_frozen
    if _heap_frozen:
        return
    _heap_frozen = True
    gc.collect()  # garbage first: what is frozen is never collected
    gc.freeze()  # what is alive already: the collections the imports below set off skip it
    for name in WARM_IMPORTS:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()


def _mark_counted(owner: Any) -> None:
    _counted.add(id(owner))
    weakref.finalize(owner, _counted.discard, id(owner))


def budget() -> rb.MemoryBudget:
    """The server's budget."""
    return rb.server_budget()


def expression_bytes(expression: Expression) -> int:
    """What a session holds for its data: the matrix and its ids."""
    return rb.matrix_bytes(expression.n_samples, expression.n_genes)


def keep_data(expression: Expression) -> None:
    """Count data a session now holds (demo, restored data) until they are freed; never refused (they are
    already in memory), so a full budget makes new jobs wait instead."""
    if id(expression) in _counted:
        return
    budget().count(expression, expression_bytes(expression), f"the data {expression.source}")
    _mark_counted(expression)


def read_upload(data: bytes, filename: str, *, reader: Callable[..., Expression] | None = None,
                **options: Any) -> Expression:
    """Read an upload within the budget; the data read stay counted while the session keeps them.

    The reservation bounds the parse: ``max_cells`` for this thread is the reservation over
    :data:`~rnaimg_core.budget.BYTES_PER_PARSED_CELL`. A first, small reservation (a multiple of the
    file's bytes) serves most files; one that needs more is read once more with a full request's share.
    ``options`` go to the reader (:func:`rnaimg_core.readers.read_expression_bytes`: ``labels``,
    ``labels_filename``, ``label_column``, ``orientation``, ``gene_map`` ...). Another ``reader`` (a gene map's,
    :func:`rnaimg_core.gene_map.read_gene_map_bytes`) is bounded the same way; its result is not kept counted.

    Raises
    ------
    InputError
        For the file's own problems, and when it does not fit the server's budget (naming both).
    """
    from rnaimg_core.readers import read_expression_bytes

    reader = reader or read_expression_bytes
    server = budget()
    cap = server.request_cap()
    size = len(data) + len(options.get("labels") or b"")
    first = min(cap, max(MIN_UPLOAD_RESERVATION, UPLOAD_BYTES_FACTOR * size))
    for reserved in dict.fromkeys((first, cap)):
        ticket = server.acquire(reserved, f"reading {filename}", wait=WAIT_SECONDS)
        cells = max(1, min(current_limits().max_cells, reserved // rb.BYTES_PER_PARSED_CELL))
        try:
            with thread_limits(max_cells=cells):
                expression = reader(data, filename, **options)
        except InputError as exc:
            ticket.release()
            if "max_cells" not in str(exc):
                raise
            if reserved < cap:
                continue  # more than the first guess: once more with a full share
            raise InputError(f"{exc} On this server one upload may read at most {cells:,} cells now (its share "
                             "of the memory budget max_server_bytes); subset the file or use the command line "
                             "(`rnaimg convert --engine dask` reads cohorts of any size).") from None
        except BaseException:
            ticket.release()
            raise
        if not isinstance(expression, Expression):  # another reader's result (a gene map): small once read
            ticket.release()
            return expression
        ticket.keep_for(expression, expression_bytes(expression), f"the data {filename}")
        _mark_counted(expression)
        return expression
    raise AssertionError("unreachable")  # the loop returns or raises


def make_synthetic(make: Callable[..., Expression], n_samples: int, n_genes: int, n_classes: int,
                   seed: int) -> Expression:
    """Synthetic data made within the budget (generation holds about three copies of the matrix)."""
    ticket = budget().acquire(3 * rb.matrix_bytes(n_samples, n_genes), "making synthetic data",
                              wait=WAIT_SECONDS)
    try:
        expression = make(n_samples, n_genes, n_classes, seed)
    except BaseException:
        ticket.release()
        raise
    ticket.keep_for(expression, expression_bytes(expression))
    _mark_counted(expression)
    return expression


def fitting(expression: Expression, shape: tuple | None, title: str):
    """A ``with`` block admitted for fitting a layout on ``expression`` (``shape``: the asked image size)."""
    return budget().reserve(rb.fit_bytes(expression.n_samples, expression.n_genes, shape), f"fitting {title}",
                            wait=WAIT_SECONDS)


def check_drawable(n_samples: int, shape: tuple) -> None:
    """Raise a BudgetExceeded when drawing ``n_samples`` images of ``shape`` could never be admitted."""
    need = rb.drawing_bytes(n_samples, shape)
    if need > budget().request_cap():
        c, h, w = (int(s) for s in shape)
        raise rb.BudgetExceeded(
            f"Images of {c} x {h} x {w} pixels for {n_samples:,} samples need about {need / 2**20:,.0f} MB to draw, "
            f"more than one request may take on this server ({budget().request_cap() / 2**20:,.0f} MB); "
            f"choose a side of at most {rb.largest_image_side(n_samples, c, budget())} pixels.")


def drawing(n_samples: int, shape: tuple, draw: Callable[[], Any]) -> Any:
    """``draw()`` (the images of every sample) admitted within the budget; the result stays counted while kept."""
    check_drawable(n_samples, shape)
    ticket = budget().acquire(rb.drawing_bytes(n_samples, shape), "drawing the images", wait=WAIT_SECONDS)
    try:
        images = draw()
    except BaseException:
        ticket.release()
        raise
    ticket.keep_for(images, rb.images_bytes(n_samples, shape))
    return images


def admit_job(nbytes: int, what: str) -> rb.Reservation:
    """A reservation for a job running in its own thread (training, the layout check): the job releases it."""
    return budget().acquire(nbytes, what, wait=WAIT_SECONDS)


def bounded_spec(spec, name: str, n_samples: int, channels: int):
    """A size widget's spec (``height``/``width``) with its maximum lowered to what the budget can draw."""
    if name not in ("height", "width") or spec.kind != "int":
        return spec
    side = rb.largest_image_side(n_samples, channels, budget())
    high = side if spec.max_value is None else min(int(spec.max_value), side)
    help_text = spec.help + (f" On this server, at most {high} for {n_samples:,} samples (its memory budget)."
                             if high < (spec.max_value or high + 1) else "")
    return dataclasses.replace(spec, max_value=high, help=help_text)
