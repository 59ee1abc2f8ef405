"""The images file written by ``rnaimg convert`` and read by ``rnaimg train``.

An ``.npz`` holding only plain arrays (read with ``allow_pickle=False``):

- ``images``: float32, shape (n_samples, C, H, W)
- ``sample_ids``: str, shape (n_samples,)
- ``labels``: str, shape (n_samples,), empty strings when unlabelled
- ``split``: str, ``"fit"`` for samples the layout was fitted on, ``"holdout"`` for the others
- ``gene_ids``: str, the layout's genes
- ``layout``: 0-d str, the layout file's JSON text, so the pixel -> gene map travels with the images
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from rnaimg_core.errors import InputError
from rnaimg_core.layout import Layout


@dataclass
class ImageSet:
    """Images with their samples, labels, split and layout."""

    images: np.ndarray
    sample_ids: np.ndarray
    labels: np.ndarray | None
    split: np.ndarray
    layout: Layout

    @property
    def n_samples(self) -> int:
        return self.images.shape[0]


def write_images(path: str | os.PathLike, images: np.ndarray, sample_ids, labels, layout: Layout,
                 split=None) -> Path:
    """Write an images file from images already in memory, shape (n, C, H, W)."""
    step = 1024
    chunks = (images[i:i + step] for i in range(0, images.shape[0], step))
    return stream_images(path, chunks, sample_ids, labels, layout, split=split)


def stream_images(path: str | os.PathLike, chunks: Iterable[np.ndarray], sample_ids, labels, layout: Layout,
                  split=None) -> Path:
    """Write an images file from an iterator of image chunks, never holding all images at once.

    The ``images`` member is an ``.npy`` written header-first, then chunk by chunk, into the
    (uncompressed, zip64) ``.npz`` archive, so memory stays at one chunk.
    """
    path = Path(path)
    n = len(sample_ids)
    labels_arr = np.full(n, "", dtype="<U1") if labels is None else np.asarray(labels).astype(str)
    split_arr = np.full(n, "fit") if split is None else np.asarray(split).astype(str)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": (n, *layout.shape)}
    written = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("images.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_2_0(member, header)
            for chunk in chunks:
                chunk = np.ascontiguousarray(chunk, dtype=np.float32)
                if chunk.shape[1:] != layout.shape:
                    raise ValueError(f"chunk shape {chunk.shape[1:]} differs from the layout's {layout.shape}")
                member.write(chunk.tobytes())
                written += chunk.shape[0]
        if written != n:
            raise ValueError(f"{written} images written for {n} samples")
        small = {"sample_ids": np.asarray(sample_ids).astype(str), "labels": labels_arr, "split": split_arr,
                 "gene_ids": layout.gene_ids, "layout": np.array(layout.to_json())}
        for name, array in small.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    return path


def read_images(path: str | os.PathLike) -> ImageSet:
    """Read an images file written by :func:`write_images` (never unpickles)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Images file {path} not found.")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"images", "sample_ids", "labels", "layout"} - set(data.files)
            if missing:
                raise InputError(f"{path.name} is not an rnaimg images file (missing {', '.join(sorted(missing))}).")
            images = data["images"]
            sample_ids = data["sample_ids"]
            labels = data["labels"]
            split = data["split"] if "split" in data.files else np.full(images.shape[0], "fit")
            layout = Layout.from_json(str(data["layout"]))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InputError(f"{path.name} could not be read as an images file: {exc}") from None
    if images.ndim != 4 or images.dtype != np.float32:
        raise InputError(f"{path.name}: images must be float32 (n, C, H, W), got {images.dtype} {images.shape}.")
    if tuple(images.shape[1:]) != layout.shape:
        raise InputError(f"{path.name}: images have shape {images.shape[1:]} but the layout says {layout.shape}.")
    labels = None if labels.size == 0 or np.all(labels == "") else labels
    return ImageSet(images, sample_ids, labels, split, layout)
