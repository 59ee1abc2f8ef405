"""Images of samples: the images file, and summaries of images (class means, colour range).

The images file written by ``rnaimg convert`` and read by ``rnaimg train`` is an ``.npz`` holding only plain arrays (read with ``allow_pickle=False``):

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
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

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

    @classmethod
    def from_expression(cls, layout: Layout, expression, split: np.ndarray | None = None, *,
                        device: str = "auto") -> "ImageSet":
        """Images of every sample of ``expression`` (an Expression or AnnData) through ``layout``.

        ``split`` marks samples ``"fit"``/``"holdout"`` (see :mod:`rnaimg_core.splits`);
        by default the samples the layout was fitted on are ``"fit"`` and the rest ``"holdout"``.
        """
        from rnaimg_core.expression import as_expression

        expression = as_expression(expression)
        if split is None:
            fitted = np.isin(expression.sample_ids, np.asarray(layout.fit_sample_ids, dtype=str))
            split = np.where(fitted | (len(layout.fit_sample_ids) == 0), "fit", "holdout")
        images = layout.transform(expression.values, expression.gene_ids, device=device)
        return cls(images, expression.sample_ids, expression.labels, np.asarray(split).astype(str), layout)

    def subset(self, index) -> "ImageSet":
        """The samples at ``index`` (indices or a boolean mask), with the same layout."""
        index = np.asarray(index)
        return ImageSet(self.images[index], self.sample_ids[index],
                        None if self.labels is None else self.labels[index], self.split[index], self.layout)


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


# ---------------------------------------------------------------- summaries of images

def class_mean_images(images: np.ndarray, labels) -> tuple[list[str], np.ndarray]:
    """Mean image per class.

    Parameters
    ----------
    images : ndarray, shape (n, C, H, W)
    labels : array-like of str, shape (n,)

    Returns
    -------
    classes : sorted class names
    means : ndarray, shape (n_classes, C, H, W), float32
    """
    classes, sums, counts = _class_sums(images, labels)
    means = sums / counts[:, None]
    return classes, means.reshape(len(classes), *images.shape[1:]).astype(np.float32)


def class_difference_images(images: np.ndarray, labels) -> tuple[list[str], np.ndarray]:
    """Each class's mean image minus the mean of all other samples.

    Takes and returns what :func:`class_mean_images` does: ``(classes, differences)``,
    differences of shape (n_classes, C, H, W).
    """
    classes, sums, counts = _class_sums(images, labels)
    means = sums / counts[:, None]
    rest = (sums.sum(axis=0) - sums) / np.maximum(1.0, counts.sum() - counts)[:, None]
    return classes, (means - rest).reshape(len(classes), *images.shape[1:]).astype(np.float32)


def _class_sums(images: np.ndarray, labels) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Sorted classes, per-class sums of the flattened images (float64) and sample counts."""
    classes, codes = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    flat = images.reshape(images.shape[0], -1).astype(np.float64)
    sums = np.zeros((classes.size, flat.shape[1]))
    np.add.at(sums, codes, flat)
    return classes.tolist(), sums, np.bincount(codes, minlength=classes.size).astype(np.float64)


def shared_range(images, *, symmetric: bool = False, percentile: float = 99.5) -> tuple[float, float]:
    """One colour range for several images: robust percentiles, or symmetric about 0.

    Parameters
    ----------
    images : sequence of arrays (any shapes) or one array
    symmetric : give ``(-b, b)`` with ``b`` the ``percentile`` of absolute values
    percentile : upper percentile (the lower one is ``100 - percentile``)

    Returns
    -------
    (low, high) : floats with ``low < high``
    """
    flat = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in images]) if len(images) else np.zeros(1)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return (-1.0, 1.0) if symmetric else (0.0, 1.0)
    if symmetric:
        bound = float(np.percentile(np.abs(flat), percentile)) or 1.0
        return -bound, bound
    lo, hi = np.percentile(flat, [100 - percentile, percentile])
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def samples_per_class(labels, per_class: int, classes: Sequence[str] | None = None, seed: int = 0) -> list[int]:
    """Indices of up to ``per_class`` samples of each class (seeded), grouped by class.

    Parameters
    ----------
    labels : array-like of str, shape (n,), or None for unlabelled data
    per_class : samples drawn per class
    classes : classes to draw from, in this order (default: all, sorted)
    seed : seeds the draw

    Returns
    -------
    list of int: sorted within each class; unlabelled data give the first ``4 * per_class`` samples.
    """
    if labels is None:
        return list(range(per_class * 4))
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels).astype(str)
    chosen: list[int] = []
    for name in (classes if classes is not None else sorted(set(labels.tolist()))):
        index = np.flatnonzero(labels == name)
        if index.size:
            chosen += sorted(rng.choice(index, size=min(per_class, index.size), replace=False).tolist())
    return chosen


PIXEL_GENE_ANNOTATION = ("chromosome", "start", "end", "strand", "cytoband", "route")


def pixel_genes_table(layout: Layout, channel: int, row: int, col: int, genes=None) -> pd.DataFrame:
    """All genes on one pixel with their annotation.

    Parameters
    ----------
    layout : fitted Layout
    channel, row, col : the pixel
    genes : optional gene table (``Expression.genes``) of the data the layout was
        fitted on, one row per layout gene; its annotation columns are added

    Returns
    -------
    DataFrame with gene_id, symbol (display name), entrez_id when known, and
    chromosome, start, end, strand, cytoband, route where ``genes`` has them.
    """
    index = layout.pixel_genes(channel, row, col)
    frame = pd.DataFrame({"gene_id": layout.gene_ids[index], "symbol": layout.display_names[index]})
    if layout.entrez_ids is not None:
        frame["entrez_id"] = np.asarray(layout.entrez_ids)[index]
    if genes is not None and len(genes) == layout.n_genes:
        columns = [c for c in PIXEL_GENE_ANNOTATION if c in genes.columns]
        frame = pd.concat([frame, genes.iloc[index][columns].reset_index(drop=True)], axis=1)
    return frame
