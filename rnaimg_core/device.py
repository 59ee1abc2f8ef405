"""Where tensors run: one device vocabulary for transform, training and attribution.

``"auto"`` picks a CUDA GPU when present, then Apple MPS, then the CPU. An
explicit request for a device that is not there is an :class:`InputError`, not a
silent fallback, so a big run never quietly lands on the CPU.
"""

from __future__ import annotations

import torch

from rnaimg_core.errors import InputError

DEVICES = ("auto", "cuda", "mps", "cpu")


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
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
