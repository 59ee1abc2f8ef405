"""One memory budget for a server that many people share.

:mod:`rnaimg_core.limits` bounds each request; this module bounds them together. A
:class:`MemoryBudget` of ``max_server_bytes`` (a limit like the others: ``.streamlit/rnaimg.toml``,
``RNAIMG_MAX_SERVER_BYTES``) is the whole server process: what the process held when the budget
was made (Python, Streamlit, torch, the demo: its ``base``) plus every admitted piece of work.

- A heavy job (reading an upload, making synthetic data, fitting a layout, drawing a layout's
  images, training, the layout check) asks :meth:`MemoryBudget.reserve` / :meth:`~MemoryBudget.acquire`
  for its estimated peak before it allocates. It is admitted when that fits beside the others,
  waits (a queue, up to ``wait`` seconds) while other jobs finish, and is refused with a
  :class:`BudgetExceeded` message when the budget stays used up. One request never takes more
  than ``1 / REQUEST_SHARE`` of the budget, so one session cannot starve the others.
- What a session keeps after the job (its data, the images drawn for a layout) stays counted:
  :meth:`Reservation.keep_for` turns the job's reservation into a hold on the kept object, released
  when that object is freed (the session closed, the cache entry dropped).

The estimates (``*_bytes`` functions) are upper bounds of peak memory per unit, from measurements
noted beside each constant. Widget ranges come from the budget too: :func:`largest_image_side`.
Nothing here imports Streamlit; ``dashboard/`` applies it.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import weakref
from typing import Any, Iterator

from rnaimg_core.errors import InputError
from rnaimg_core.limits import current_limits, how_to_raise

REQUEST_SHARE = 2            # one request may take at most half of what the budget leaves to work
# Reading a text table streams it in chunks with cells counted as they come (readers.read_rows): a
# 250 M-cell gzip bomb was refused at 1.35 GB peak resident (about 5 bytes a cell); a valid table is
# concatenated at the end (float32 twice, plus ids): 10 bytes a cell bounds both.
BYTES_PER_PARSED_CELL = 10
# A fit holds the values, their normalised copy and gene features (about 3 float32 copies of the matrix)
# plus its placement grids (8 bytes a pixel); drawing images holds the output and one chunk beside it.
FIT_COPIES = 4
IMAGE_COPIES = 2             # images of all samples while drawn: the result plus the transform's chunk
# Per pixel of a layout, whatever the samples: its hover text peaked at 178 bytes a pixel while built (a 512 x 512
# deepmapper layout of the demo, traced), kept at 62; the rest is an allowance for the class images and figures.
PIXEL_OVERHEAD = 400
TRAINING_COPIES = 4          # images, their tensor copy, batches and gradients; plus TORCH_OVERHEAD
TORCH_OVERHEAD = 300 * 2**20
_MiB = 2**20


class BudgetExceeded(InputError):
    """The server's memory budget cannot admit a job now (or ever, for one this large)."""


class Reservation:
    """Bytes admitted against a :class:`MemoryBudget`; :meth:`release` (idempotent) gives them back."""

    def __init__(self, budget: "MemoryBudget", nbytes: int, what: str):
        self.budget, self.nbytes, self.what = budget, int(nbytes), what
        self._released = False
        self.kept = False  # kept by keep_for: released when its owner is freed, not at the end of a block
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self.budget._give_back(self.nbytes)

    def keep_for(self, owner: Any, nbytes: int, what: str | None = None) -> "Reservation":
        """Shrink to ``nbytes`` (what the job keeps) and hold them until ``owner`` is garbage-collected."""
        nbytes = max(0, int(nbytes))
        with self._lock:
            if self._released:
                raise RuntimeError("keep_for on a released reservation")
            spare, self.nbytes = max(0, self.nbytes - nbytes), min(self.nbytes, nbytes)
        if spare:
            self.budget._give_back(spare)
        if what:
            self.what = what
        self.kept = True
        weakref.finalize(owner, self.release)
        return self

    def __enter__(self) -> "Reservation":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class MemoryBudget:
    """A process-wide memory budget with admission.

    Parameters
    ----------
    total_bytes : the whole process may use this much (``max_server_bytes``)
    base_bytes : what the process held when the budget was made (not available to work)
    """

    def __init__(self, total_bytes: int, base_bytes: int = 0):
        self.total, self.base = int(total_bytes), max(0, int(base_bytes))
        self._used = 0
        self._changed = threading.Condition()

    @property
    def capacity(self) -> int:
        """Bytes the budget leaves to work: total minus base."""
        return max(0, self.total - self.base)

    @property
    def used(self) -> int:
        return self._used

    def available(self) -> int:
        return max(0, self.capacity - self._used)

    def request_cap(self) -> int:
        """The most one request may take: ``1 / REQUEST_SHARE`` of the capacity."""
        return self.capacity // REQUEST_SHARE

    def acquire(self, nbytes: int, what: str, *, wait: float = 0.0) -> Reservation:
        """Admit ``nbytes`` for ``what`` (waiting up to ``wait`` seconds for others to finish), or raise
        :class:`BudgetExceeded` naming the job, its size and the budget."""
        nbytes = max(0, int(nbytes))
        if nbytes > self.request_cap():
            raise BudgetExceeded(
                f"{_capital(what)} needs about {_mb(nbytes)}, more than one request may take on this server "
                f"({_mb(self.request_cap())}: 1/{REQUEST_SHARE} of the memory budget left to work, "
                f"max_server_bytes = {_mb(self.total)} less {_mb(self.base)} the server itself holds). "
                "Choose fewer samples, genes or a smaller image size, or use the command line. "
                + how_to_raise("max_server_bytes"))
        deadline = time.monotonic() + max(0.0, float(wait))
        with self._changed:
            while self._used + nbytes > self.capacity:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BudgetExceeded(
                        f"The server is busy: {what} needs about {_mb(nbytes)}, and the work of this and other "
                        f"sessions holds {_mb(self._used)} of the {_mb(self.capacity)} the memory budget leaves "
                        "to work. Try again in a minute (or free your own: the Data page can delete this "
                        "session's data).")
                self._changed.wait(left)
            self._used += nbytes
        return Reservation(self, nbytes, what)

    @contextlib.contextmanager
    def reserve(self, nbytes: int, what: str, *, wait: float = 0.0) -> Iterator[Reservation]:
        """:meth:`acquire` for the length of a ``with`` block (released on exit unless kept with
        :meth:`Reservation.keep_for`)."""
        ticket = self.acquire(nbytes, what, wait=wait)
        try:
            yield ticket
        except BaseException:
            ticket.release()
            raise
        if not ticket.kept:
            ticket.release()

    def count(self, owner: Any, nbytes: int, what: str) -> Reservation:
        """Count ``nbytes`` already in memory (never refused: they exist) until ``owner`` is garbage-collected;
        a budget pushed over its capacity makes the next jobs wait or be refused."""
        with self._changed:
            self._used += max(0, int(nbytes))
        return Reservation(self, nbytes, what).keep_for(owner, nbytes)

    def hold(self, owner: Any, nbytes: int, what: str) -> Reservation:
        """Admit ``nbytes`` now (no wait) and keep them until ``owner`` is garbage-collected."""
        return self.acquire(nbytes, what).keep_for(owner, nbytes)

    def _give_back(self, nbytes: int) -> None:
        with self._changed:
            self._used = max(0, self._used - int(nbytes))
            self._changed.notify_all()


def _mb(nbytes: int) -> str:
    return f"{nbytes / _MiB:,.0f} MB"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------- the server's one budget

_server: MemoryBudget | None = None
_server_lock = threading.Lock()


def resident_bytes() -> int:
    """This process's resident memory now (Linux ``/proc``; 0 where unknown)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


def server_budget() -> MemoryBudget:
    """The process-wide budget: ``max_server_bytes`` of the active limits, its base the resident memory when
    first asked (the dashboard asks when its first page starts, after its imports)."""
    global _server
    with _server_lock:
        if _server is None:
            _server = MemoryBudget(current_limits().max_server_bytes, resident_bytes())
        return _server


def reset_server_budget(budget: MemoryBudget | None = None) -> None:
    """Replace the process-wide budget (tests; None: made again on next use)."""
    global _server
    with _server_lock:
        _server = budget


# ---------------------------------------------------------------- estimates and widget ranges

def matrix_bytes(n_samples: int, n_genes: int) -> int:
    """A float32 samples x genes matrix with its ids."""
    from rnaimg_core.readers import ROW_ID_CELLS

    return 4 * int(n_samples) * (int(n_genes) + ROW_ID_CELLS)


def images_bytes(n_samples: int, shape: tuple) -> int:
    """``n_samples`` float32 images of ``shape`` (C, H, W)."""
    return 4 * int(n_samples) * math.prod(int(s) for s in shape)


def fit_bytes(n_samples: int, n_genes: int, shape: tuple | None = None) -> int:
    """Peak of fitting a layout: :data:`FIT_COPIES` copies of the matrix and the placement grids."""
    grid = 8 * math.prod(int(s) for s in shape) if shape else 0
    return FIT_COPIES * matrix_bytes(n_samples, n_genes) + grid


def drawing_bytes(n_samples: int, shape: tuple) -> int:
    """Peak of drawing every sample's image under a layout and showing it (hover text, class images, figures);
    kept afterwards: :func:`images_bytes`."""
    return IMAGE_COPIES * images_bytes(n_samples, shape) + PIXEL_OVERHEAD * math.prod(int(s) for s in shape)


def training_bytes(n_samples: int, shape: tuple) -> int:
    """Peak of training a CNN on ``n_samples`` images of ``shape``."""
    return TRAINING_COPIES * images_bytes(n_samples, shape) + TORCH_OVERHEAD


COMPARE_IMAGE_SHAPE = (4, 128, 128)  # larger than any layout the check fits at its default sizes


def layout_check_bytes(n_samples: int, n_genes: int) -> int:
    """Peak of the layout check (its folds run one after another: one fit and one training at a time)."""
    return fit_bytes(n_samples, n_genes) + training_bytes(n_samples, COMPARE_IMAGE_SHAPE)


def upload_cell_allowance(budget: MemoryBudget) -> int:
    """How many cells one upload may parse: ``max_cells``, or fewer when a request's share of the budget
    (:meth:`MemoryBudget.request_cap`) holds fewer at :data:`BYTES_PER_PARSED_CELL`."""
    return max(1, min(current_limits().max_cells, budget.request_cap() // BYTES_PER_PARSED_CELL))


def largest_image_side(n_samples: int, channels: int, budget: MemoryBudget) -> int:
    """The largest square image side (pixels) whose drawing for ``n_samples`` samples fits one request,
    never more than ``max_height``/``max_width``: the bound of the dashboard's size widgets."""
    limits = current_limits()
    per_pixel = (IMAGE_COPIES * 4 * max(1, int(n_samples)) + PIXEL_OVERHEAD) * max(1, int(channels))
    side = int(math.isqrt(max(0, budget.request_cap() // per_pixel)))
    return max(1, min(side, limits.max_height, limits.max_width))
