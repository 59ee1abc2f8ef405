"""Where tensors run: one device vocabulary for transform, training and attribution.

``"auto"`` picks a CUDA GPU when present, then Apple MPS, then the CPU. An
explicit request for a device that is not there is an :class:`InputError`, not a
silent fallback, so a big run never quietly lands on the CPU.

How many CPU threads torch uses for training, attribution and the layout check is decided
here too (:func:`cpu_threads`, :func:`torch_threads`): a run's own setting, else
``RNAIMG_THREADS``, else ``OMP_NUM_THREADS`` as torch read it, else one thread on machines
with at most 4 cores and ``min(8, cores // 2)`` above. torch's own default (one thread per
core) made this package's small convolutions 3-10 times slower on a shared 2-core machine
(benchmarks/README.md, "CPU threads"). Numpy's BLAS for a fit's small linear algebra runs on
one thread (:func:`one_blas_thread`).
"""

from __future__ import annotations

import contextlib
import os

import torch

from rnaimg_core.errors import InputError

DEVICES = ("auto", "cuda", "mps", "cpu")
THREADS_ENV = "RNAIMG_THREADS"  # CPU threads for torch when a run does not set them (an environment override)
MAX_AUTO_THREADS = 8


def choose_device(requested: str = "auto") -> torch.device:
    """The device to compute on.

    Parameters
    ----------
    requested : {"auto", "cuda", "mps", "cpu"} (``"cuda:1"`` picks a GPU by index)

    Returns
    -------
    torch.device

    Raises
    ------
    InputError
        When a device is requested explicitly but is not available.
    """
    requested = str(requested).lower()
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if requested == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if requested.startswith("cuda"):
        if not cuda:
            raise InputError("device 'cuda' was requested but no CUDA GPU is available; use 'auto' or 'cpu'.")
        return torch.device(requested)
    if requested == "mps":
        if not mps:
            raise InputError("device 'mps' was requested but Apple MPS is not available; use 'auto' or 'cpu'.")
        return torch.device("mps")
    raise InputError(f"device must be one of {', '.join(DEVICES)}, not {requested!r}.")


def describe_device(device: torch.device) -> str:
    """A human-readable name: ``'cuda (NVIDIA H100 ...)'``, ``'mps'``, ``'cpu (2 threads)'``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'s' if threads != 1 else ''})"
    return device.type


def auto_threads(cores: int | None = None) -> int:
    """The default number of CPU threads for torch: 1 up to 4 cores, else ``min(8, cores // 2)``.

    On a machine whose cores other jobs share, torch's one thread per core loses far more
    waiting for busy cores than it gains: 15 demo epochs of one network took 55.6 s with 2
    threads and 5.1 s with 1 on a busy 2-core machine. On an idle 16-core machine 8 threads
    ran them in 0.84 s against 0.69 s with 16 and 2.05 s with 1, leaving half the cores to
    other work (benchmarks/README.md, "CPU threads").
    """
    if cores is None:  # the cores this process may run on (a container's share where the OS says so)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cores = int(cores)
    return 1 if cores <= 4 else min(MAX_AUTO_THREADS, cores // 2)


def cpu_threads(requested: int | None = None) -> int | None:
    """The CPU threads torch should use for a run; None leaves torch's setting alone.

    Parameters
    ----------
    requested : the run's own setting (``TrainSettings.n_threads``, ``--threads``); wins when given

    Returns
    -------
    ``requested``; else the whole number in ``RNAIMG_THREADS``; else None when ``OMP_NUM_THREADS``
    is set (torch already follows it); else :func:`auto_threads`

    Raises
    ------
    InputError
        When ``RNAIMG_THREADS`` is not a whole number from 1 to 1024.
    """
    if requested:
        return int(requested)
    text = os.environ.get(THREADS_ENV, "").strip()
    if text:
        if not text.isdigit() or not 1 <= int(text) <= 1024:
            raise InputError(f"{THREADS_ENV} must be a whole number from 1 to 1024, not {text!r}.")
        return int(text)
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return None
    return auto_threads()


@contextlib.contextmanager
def torch_threads(requested: int | None = None):
    """torch's CPU threads set to :func:`cpu_threads` (``requested``) inside the block, restored after."""
    previous = torch.get_num_threads()
    n_threads = cpu_threads(requested)
    if n_threads and n_threads != previous:
        torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        if n_threads and n_threads != previous:
            torch.set_num_threads(previous)


@contextlib.contextmanager
def one_blas_thread():
    """Numpy's BLAS and LAPACK on one thread for the duration (restored after).

    A fit's linear algebra is small (a d x d covariance, a thin SVD): with OpenBLAS's own threads
    it took 10-20x the CPU on this project's busy 2-core machine (gene features of the demo:
    0.45 s of CPU against 0.02 s; the SOM's starting plane 0.12-0.22 s against 0.02 s), and one
    thread makes the result independent of the number of cores. The limit is process-wide while
    it lasts (threadpoolctl), so concurrent fits in a dashboard share it.
    """
    from threadpoolctl import threadpool_limits  # noqa: PLC0415 (lazy: threadpoolctl loads on first fit)

    with threadpool_limits(limits=1, user_api="blas"):
        yield
