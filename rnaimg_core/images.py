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
from rnaimg_core.expression import as_expression
from rnaimg_core.layout import Layout
from rnaimg_core.limits import check, npz_headers
from rnaimg_core.outputs import atomic_output
from rnaimg_core.splits import FIT, HOLDOUT, layout_split


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
        expression = as_expression(expression)
        if split is None:
            split = layout_split(layout.fit_sample_ids, expression.sample_ids)
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
    with atomic_output(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED,
                                                      allowZip64=True) as archive:
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


IMAGES_MEMBERS = {"images", "sample_ids", "labels", "layout"}


def read_images(path: str | os.PathLike) -> ImageSet:
    """Read an images file written by :func:`write_images` (never unpickles), every member checked.

    The ``.npy`` headers are read first: object arrays and members over the ``max_array_bytes``
    limit are refused before anything is loaded. Then: images float32 (n, C, H, W) and finite;
    ``sample_ids``, ``labels`` and ``split`` one per image (split ``fit``/``holdout``), sample ids
    distinct; ``gene_ids`` (when present) the layout's genes; the layout valid and of the images' shape.

    Raises
    ------
    InputError
        Naming the first problem.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Images file {path} not found.")
    headers = npz_headers(path, path.name)
    missing = IMAGES_MEMBERS - set(headers)
    if missing:
        raise InputError(f"{path.name} is not an rnaimg images file (missing {', '.join(sorted(missing))}).")
    shape, dtype = headers["images"]
    if len(shape) != 4 or dtype != np.float32:
        raise InputError(f"{path.name}: images must be float32 (n, C, H, W), got {dtype} {shape}.")
    if shape[0] == 0:
        raise InputError(f"{path.name} holds no images (0 samples); convert at least one sample.")
    check("max_image_bytes", 4 * int(np.prod([float(d) for d in shape])), f"{path.name}: the images")
    for name in ("sample_ids", "labels", "split", "gene_ids", "layout"):
        if name in headers and headers[name][1].kind != "U":
            raise InputError(f"{path.name}: {name} must be text, not {headers[name][1]}.")
        if name in headers and name != "layout" and headers[name][0] != (shape[0],) and name != "gene_ids":
            raise InputError(f"{path.name}: {name} has shape {headers[name][0]} but there are {shape[0]} images; "
                             "the file is damaged.")
    try:
        with np.load(path, allow_pickle=False) as data:
            layout = Layout.from_json(str(data["layout"]))
            gene_ids = data["gene_ids"] if "gene_ids" in headers else None
            sample_ids = data["sample_ids"]
            labels = data["labels"]
            split = data["split"] if "split" in headers else np.full(shape[0], FIT)
            images = data["images"]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        if isinstance(exc, InputError):
            raise InputError(f"{path.name}: {exc}") from None
        raise InputError(f"{path.name} could not be read as an images file: {exc}") from None
    if tuple(images.shape[1:]) != layout.shape:
        raise InputError(f"{path.name}: images have shape {images.shape[1:]} but the layout says {layout.shape}.")
    if gene_ids is not None and not np.array_equal(gene_ids, layout.gene_ids):
        raise InputError(f"{path.name}: gene_ids differ from the layout's genes; the file is damaged.")
    if np.unique(sample_ids).size != sample_ids.size:
        raise InputError(f"{path.name}: sample ids repeat; the file is damaged.")
    odd = ~np.isin(split, [FIT, HOLDOUT])
    if odd.any():
        raise InputError(f"{path.name}: split must be {FIT!r} or {HOLDOUT!r}, found {str(split[odd][0])!r}.")
    finite = np.isfinite(images.reshape(images.shape[0], -1)).all(axis=1)
    if not finite.all():
        raise InputError(f"{path.name}: {int((~finite).sum())} image(s) hold NaN or infinite values, the first "
                         f"for sample {str(sample_ids[~finite][0])!r}.")
    labels = None if labels.size == 0 or np.all(labels == "") else labels
    if labels is not None and (labels == "").any():
        raise InputError(f"{path.name}: some images have a label and others none; the file is damaged.")
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
