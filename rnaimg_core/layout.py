"""The Layout: which gene lands on which pixel, and how samples become images.

A layout is a list of *placements* (gene column -> flat pixel index in a
``(C, H, W)`` image), a rule for combining several genes on one pixel, and the
fitted per-gene :class:`~rnaimg_core.normalize.Normalization`. A gene may be
placed more than once (stacked multi-channel layouts) or not at all (dropped,
with the reason in ``notes``).

``transform`` turns samples into images through the engine of :mod:`rnaimg_core.transform`
(an index gather plus a segment reduce over placements sorted by pixel, on the CPU or a GPU).

File format (``*.json``, optionally ``*.json.gz``), version 1::

    {"format": "rnaimg-layout", "format_version": 1, "rnaimg_version": "...",
     "generator": "chromosome", "params": {...}, "seed": 0,
     "shape": [C, H, W], "reduce": "mean",
     "gene_ids": [...],            # the input columns the layout expects, in order
     "entrez_ids": [...],          # -1 where unmapped
     "symbols": [...],
     "placements": {"gene": [...], "pixel": [...]},   # gene index -> flat pixel c*H*W + r*W + col
     "normalization": {"log": "auto", "scale": "zscore", "log_applied": true,
                       "center": [...], "spread": [...],
                       "sample_genes": null},   # scale "sample_max": genes whose maximum scales a sample
     "quality": {...}, "notes": {...}, "regions": [...], "fit_sample_ids": [...]}
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import scipy.sparse as sp

from rnaimg_core._version import __version__
from rnaimg_core.errors import InputError
from rnaimg_core.limits import check, load_json
from rnaimg_core.normalize import SCALES, Normalization
from rnaimg_core.outputs import atomic_output
from rnaimg_core.schema import check_format
from rnaimg_core.transform import transform_images

FORMAT = "rnaimg-layout"
FORMAT_VERSION = 1
REDUCERS = ("mean", "max", "sum")
class PixelSegments(NamedTuple):
    """Placements grouped by pixel (see :attr:`Layout.segments`)."""

    order: np.ndarray
    pixels: np.ndarray
    starts: np.ndarray
    counts: np.ndarray


@dataclass
class Layout:
    """A fitted gene -> pixel map with its normalisation.

    Attributes
    ----------
    generator : str, the generator's registry name
    params : dict, the generator parameters used (JSON-serialisable)
    seed : int or None
    shape : (C, H, W)
    gene_ids : ndarray of str, shape (n_genes,), the input columns expected
    placement_gene : ndarray of int64, gene index of each placement
    placement_pixel : ndarray of int64, flat pixel index ``c*H*W + r*W + col``
    reduce : {"mean", "max", "sum"}, how several genes on one pixel combine
    normalization : fitted Normalization, one entry per gene in ``gene_ids``
    entrez_ids, symbols : per gene, for display and attribution tables
    quality : dict of layout quality figures
    notes : dict, what was dropped and why, and other generator remarks
    regions : list of dicts ``{"name", "channel", "rows": [r0, r1], "cols": [c0, c1]}``
        describing labelled areas (chromosomes, GO groups) for overlays
    """

    generator: str
    params: dict
    seed: int | None
    shape: tuple[int, int, int]
    gene_ids: np.ndarray
    placement_gene: np.ndarray
    placement_pixel: np.ndarray
    reduce: str
    normalization: Normalization
    entrez_ids: np.ndarray | None = None
    symbols: np.ndarray | None = None
    quality: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    regions: list = field(default_factory=list)
    fit_sample_ids: list = field(default_factory=list)
    rnaimg_version: str = ""

    def __post_init__(self) -> None:
        self.shape = tuple(int(s) for s in self.shape)
        self.gene_ids = np.asarray(self.gene_ids).astype(str)
        self.placement_gene = np.asarray(self.placement_gene, dtype=np.int64)
        self.placement_pixel = np.asarray(self.placement_pixel, dtype=np.int64)
        if self.reduce not in REDUCERS:
            raise InputError(f"reduce must be one of {', '.join(REDUCERS)}, not {self.reduce!r}.")
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise InputError(f"image shape must be (channels, height, width), got {self.shape}.")
        if self.placement_gene.shape != self.placement_pixel.shape:
            raise ValueError("placement_gene and placement_pixel differ in length")
        if self.placement_pixel.size and (self.placement_pixel.min() < 0 or self.placement_pixel.max() >= self.n_pixels):
            raise ValueError("a placement points outside the image")
        if self.placement_gene.size and (self.placement_gene.min() < 0 or self.placement_gene.max() >= len(self.gene_ids)):
            raise ValueError("a placement refers to a gene outside gene_ids")
        if not self.rnaimg_version:
            self.rnaimg_version = __version__

    # ------------------------------------------------------------ geometry

    @property
    def n_pixels(self) -> int:
        c, h, w = self.shape
        return c * h * w

    @property
    def n_genes(self) -> int:
        return len(self.gene_ids)

    @cached_property
    def segments(self) -> "PixelSegments":
        """Placements sorted by pixel: ``(order, pixels, starts, counts)``.

        ``order`` sorts the placements by flat pixel (stable); ``pixels`` are the
        occupied flat pixels, ascending; ``starts``/``counts`` delimit each pixel's run
        of placements in that order.
        """
        order = np.argsort(self.placement_pixel, kind="stable")
        pixels = self.placement_pixel[order]
        unique, starts, counts = np.unique(pixels, return_index=True, return_counts=True)
        return PixelSegments(order, unique, starts, counts)

    def flat_pixel(self, channel, row, col):
        """Flat pixel index ``c*H*W + r*W + col`` of (channel, row, col); arrays broadcast."""
        return flat_pixels(self.shape, channel, row, col)

    def coordinates(self, flat_pixels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(channel, row, col) arrays of flat pixel indices."""
        return pixel_coordinates(self.shape, flat_pixels)

    def placement_coordinates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(channel, row, col) of every placement, in placement order."""
        return self.coordinates(self.placement_pixel)

    @cached_property
    def display_names(self) -> np.ndarray:
        """Name to show for each gene: its symbol, or its input id when there is none."""
        return (self.gene_ids if self.symbols is None else np.asarray(self.symbols)).astype(str)

    @property
    def genes_per_pixel(self) -> np.ndarray:
        """Count of genes on each pixel, shape (C, H, W)."""
        counts = np.bincount(self.placement_pixel, minlength=self.n_pixels)
        return counts.reshape(self.shape)

    def placed_genes(self) -> np.ndarray:
        """Indices of genes placed at least once."""
        return np.unique(self.placement_gene)

    def pixel_genes(self, channel: int, row: int, col: int) -> np.ndarray:
        """Gene indices on one pixel, in placement order."""
        return self.placement_gene[self.placement_pixel == int(self.flat_pixel(channel, row, col))]

    def pixel_gene_lists(self) -> list[np.ndarray]:
        """For every flat pixel, the gene indices on it (empty arrays for empty pixels)."""
        order, unique, starts, counts = self.segments
        genes_sorted = self.placement_gene[order]
        out = [np.empty(0, dtype=np.int64)] * self.n_pixels
        for pix, start, count in zip(unique.tolist(), starts.tolist(), counts.tolist()):
            out[pix] = genes_sorted[start:start + count]
        return out

    def gene_coordinates(self, genes) -> list[tuple[int, int, int]]:
        """Sorted (channel, row, col) of every placement of the given gene indices."""
        hits = np.isin(self.placement_gene, np.asarray(genes, dtype=np.int64))
        channel, row, col = self.coordinates(self.placement_pixel[hits])
        return sorted(zip(channel.tolist(), row.tolist(), col.tolist()))

    def find_genes(self, query: str) -> np.ndarray:
        """Indices of genes whose symbol or input id is ``query`` (case-insensitive)."""
        query = query.strip().upper()
        if not query:
            return np.empty(0, dtype=np.int64)
        match = (np.char.upper(self.display_names) == query) | (np.char.upper(self.gene_ids) == query)
        return np.flatnonzero(match)

    def pixel_labels(self, max_names: int = 3, empty: str = "(no gene)") -> np.ndarray:
        """Text of every pixel: its genes' display names, abbreviated when there are many.

        Returns
        -------
        labels : ndarray of str (object), shape (C, H, W). A one-gene pixel reads
            ``"TP53"``; a crowded one ``"A, B, C … and 12 more (15 genes)"``; an
            empty one ``empty``.
        """
        names = self.display_names
        order, unique, starts, counts = self.segments
        genes = self.placement_gene[order]
        labels = np.full(self.n_pixels, empty, dtype=object)
        if unique.size == 0:
            return labels.reshape(self.shape)
        single = counts == 1
        labels[unique[single]] = names[genes[starts[single]]]
        # Only crowded pixels need a Python join; they are few in most layouts.
        for pixel, start, count in zip(unique[~single].tolist(), starts[~single].tolist(), counts[~single].tolist()):
            text = ", ".join(names[genes[start:start + min(count, max_names)]].tolist())
            if count > max_names:
                text += f" … and {count - max_names} more"
            labels[pixel] = f"{text} ({count} genes)"
        return labels.reshape(self.shape)

    def region_grid(self) -> np.ndarray:
        """Region name of every pixel (chromosome, GO group ...), "" outside regions; shape (C, H, W)."""
        c, h, w = self.shape
        names = np.full((c, h * w), "", dtype=object)
        for region in self.regions:
            ch = int(region.get("channel", 0))
            if "first" in region:
                names[ch, int(region["first"]):int(region["last"]) + 1] = region["name"]
            elif "rows" in region:
                (r0, r1), (c0, c1) = region["rows"], region["cols"]
                block = names[ch].reshape(h, w)
                block[int(r0):int(r1) + 1, int(c0):int(c1) + 1] = region["name"]
        return names.reshape(self.shape)

    def pixel_to_gene_scores(self, pixel_scores: np.ndarray, *, combine: str = "sum") -> np.ndarray:
        """Carry per-pixel scores (attributions) back to genes through the placements.

        Parameters
        ----------
        pixel_scores : ndarray, shape (n, C, H, W) or (C, H, W)
        combine : ``"sum"`` or ``"mean"`` over the pixels of a gene placed more than once

        Returns
        -------
        ndarray, shape (n, n_genes) (or (n_genes,) for one map), float32: each gene's
        pixel score; genes sharing a pixel all get its full score; NaN for genes the
        layout did not place.
        """
        pixel_scores = np.asarray(pixel_scores, dtype=np.float32)
        single = pixel_scores.ndim == 3
        if single:
            pixel_scores = pixel_scores[None]
        if tuple(pixel_scores.shape[1:]) != self.shape:
            raise InputError(f"Pixel scores have shape {pixel_scores.shape[1:]} but the layout is {self.shape}.")
        if combine not in ("sum", "mean"):
            raise InputError(f"combine must be 'sum' or 'mean', not {combine!r}.")
        flat = pixel_scores.reshape(pixel_scores.shape[0], -1)
        weights = np.ones(self.placement_gene.size, dtype=np.float32)
        per_gene = np.bincount(self.placement_gene, minlength=self.n_genes)
        if combine == "mean":
            weights /= per_gene[self.placement_gene]
        # (n, n_pixels) @ (n_pixels, n_genes) sparse: one gather-and-sum for all samples
        gather = sp.csr_matrix((weights, (self.placement_pixel, self.placement_gene)),
                               shape=(self.n_pixels, self.n_genes))
        scores = np.asarray((gather.T @ flat.T).T, dtype=np.float32)
        scores[:, per_gene == 0] = np.nan
        return scores[0] if single else scores

    def replace(self, **changes) -> "Layout":
        """A new Layout with ``changes`` applied (a Layout -> Layout operation's one constructor).

        Fields not named are carried over; ``quality`` is carried over only when
        neither placements nor shape change, since it describes them.
        """
        geometry = {"shape", "placement_gene", "placement_pixel", "gene_ids"}
        if geometry & changes.keys() and "quality" not in changes:
            changes["quality"] = {}
        return dataclasses.replace(self, **changes)

    def differences(self, other: "Layout") -> list[str]:
        """What would make ``other`` turn samples into different images than this layout, in words.

        Returns
        -------
        list of str, empty when the two make the same images: ``"image shape"``,
        ``"genes"`` (the input genes or their order), ``"pixels"`` (which gene sits on
        which pixel, in any placement order), ``"reduce rule"`` and ``"normalisation"``
        (log, library-size scaling, any gene's centre and spread, or per-sample max scaling and its genes).
        """
        differing = []
        if self.shape != other.shape:
            differing.append("image shape")
        if not np.array_equal(self.gene_ids, other.gene_ids):
            differing.append("genes")
        if not np.array_equal(self._sorted_placements(), other._sorted_placements()):
            differing.append("pixels")
        if self.reduce != other.reduce:
            differing.append("reduce rule")
        mine, theirs = self.normalization, other.normalization
        if (bool(mine.log_applied_) != bool(theirs.log_applied_)
                or bool(mine.depth_applied_) != bool(theirs.depth_applied_)
                or mine.center_.shape != theirs.center_.shape
                or not np.allclose(mine.center_, theirs.center_)
                or not np.allclose(mine.spread_, theirs.spread_)
                or (mine.scale == "sample_max") != (theirs.scale == "sample_max")
                or mine.floor != theirs.floor
                or not _same_genes(mine.sample_genes_, theirs.sample_genes_)):
            differing.append("normalisation")
        return differing

    def check_same_as(self, other: "Layout", *, what: str = "These images", whose: str = "this layout",
                      fix: str = "") -> None:
        """Refuse data made with ``other`` where this layout's are expected: an InputError naming what differs.

        Parameters
        ----------
        other : the layout the data came from
        what : the data, as the message's subject (``"images.npz"``)
        whose : this layout, as the message names it (``"the model's"``)
        fix : a sentence saying how to get matching data (default: convert with this layout)
        """
        differing = self.differences(other)
        if differing:
            fix = fix or f"Convert the data with {whose}."
            raise InputError(f"{what} came from another layout than {whose}: different "
                             f"{', '.join(differing)}. {fix}")

    def _sorted_placements(self) -> np.ndarray:
        """(pixel, gene) of every placement, sorted, shape (n, 2): the placements as a set."""
        pairs = np.column_stack((self.placement_pixel, self.placement_gene))
        return pairs[np.lexsort((self.placement_gene, self.placement_pixel))]

    # ------------------------------------------------------------ transform

    def align(self, gene_ids: Sequence[str], *, missing: str = "error") -> np.ndarray:
        """Column index in ``gene_ids`` for each layout gene (-1 where absent).

        ``missing="error"`` raises :class:`InputError` when a layout gene is absent;
        ``missing="fill"`` lets absent genes take the training centre (0 after scaling).
        """
        lookup = {g: i for i, g in enumerate(np.asarray(gene_ids).astype(str).tolist())}
        columns = np.fromiter((lookup.get(g, -1) for g in self.gene_ids.tolist()), dtype=np.int64,
                              count=self.n_genes)
        absent = columns < 0
        if absent.any() and missing == "error":
            placed_absent = np.intersect1d(np.flatnonzero(absent), self.placed_genes())
            if placed_absent.size:
                shown = ", ".join(self.gene_ids[placed_absent[:5]])
                raise InputError(
                    f"{placed_absent.size} gene(s) of the layout are missing from the input, for example {shown}. "
                    "Convert data with the same genes the layout was fitted on, or allow filling missing genes."
                )
        return columns

    def transform(self, values: np.ndarray, gene_ids: Sequence[str] | None = None, *, missing: str = "error",
                  device: str = "auto", out: np.ndarray | None = None,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Turn samples (n_samples, n_genes_in: ndarray, scipy sparse or AnnData) into images, shape
        (n_samples, C, H, W), float32: :func:`rnaimg_core.transform.transform_images`, whose docstring
        describes every parameter (gene ids, ``missing="error"``/``"fill"``, device, ``out``, progress).
        """
        return transform_images(self, values, gene_ids, missing=missing, device=device, out=out, progress=progress)

    # ------------------------------------------------------------ persistence

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "rnaimg_version": self.rnaimg_version,
            "generator": self.generator,
            "params": self.params,
            "seed": self.seed,
            "shape": list(self.shape),
            "reduce": self.reduce,
            "gene_ids": self.gene_ids.tolist(),
            "entrez_ids": None if self.entrez_ids is None else np.asarray(self.entrez_ids, dtype=np.int64).tolist(),
            "symbols": None if self.symbols is None else np.asarray(self.symbols).astype(str).tolist(),
            "placements": {"gene": self.placement_gene.tolist(), "pixel": self.placement_pixel.tolist()},
            "normalization": self.normalization.to_dict(),
            "quality": self.quality,
            "notes": self.notes,
            "regions": self.regions,
            "fit_sample_ids": list(self.fit_sample_ids),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), default=json_default)

    @classmethod
    def from_dict(cls, data: dict) -> "Layout":
        """A Layout from its file's JSON object, every field type- and range-checked (see :func:`check_layout_dict`)."""
        check_layout_dict(data)
        try:
            layout = cls(
                generator=data["generator"],
                params=data.get("params") or {},
                seed=data.get("seed"),
                shape=tuple(data["shape"]),
                gene_ids=np.asarray(data["gene_ids"], dtype=str),
                placement_gene=np.asarray(data["placements"]["gene"], dtype=np.int64),
                placement_pixel=np.asarray(data["placements"]["pixel"], dtype=np.int64),
                reduce=data["reduce"],
                normalization=Normalization.from_dict(data["normalization"]),
                entrez_ids=None if data.get("entrez_ids") is None else np.asarray(data["entrez_ids"], dtype=np.int64),
                symbols=None if data.get("symbols") is None else np.asarray(data["symbols"], dtype=str),
                quality=data.get("quality") or {},
                notes=data.get("notes") or {},
                regions=data.get("regions") or [],
                fit_sample_ids=data.get("fit_sample_ids") or [],
                rnaimg_version=data.get("rnaimg_version", ""),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, InputError):
                raise InputError(f"The layout file is damaged: {exc}") from None
            raise InputError(f"The layout file is damaged or incomplete ({type(exc).__name__}: {exc}).") from None
        norm = layout.normalization
        for name in ("center_", "spread_"):
            values = getattr(norm, name)
            if values is None or values.shape != (layout.n_genes,) or not np.isfinite(values).all():
                raise InputError(f"The layout file is damaged: normalization {name.rstrip('_')} must hold "
                                 f"{layout.n_genes} finite numbers, one per gene.")
        if (norm.spread_ <= 0).any():
            raise InputError("The layout file is damaged: normalization spread must be positive for every gene.")
        return layout

    @classmethod
    def from_json(cls, text: str | bytes) -> "Layout":
        """A Layout from JSON text (gzip-compressed or not), within the JSON size and depth limits."""
        return cls.from_dict(load_json(text, "The layout file"))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the layout as JSON (gzip-compressed when the name ends in ``.gz``), atomically.

        The text goes to a temporary name beside ``path`` and is renamed on success, so a
        failure never leaves a partial file under the final name.
        """
        path = Path(path)
        text = self.to_json().encode()
        if path.suffix == ".gz":
            text = gzip.compress(text, mtime=0)
        with atomic_output(path) as tmp:
            tmp.write_bytes(text)
        return path

    def summary(self) -> dict:
        """The figures the command line prints with ``--json``."""
        return {
            "generator": self.generator,
            "shape": list(self.shape),
            "reduce": self.reduce,
            **self.quality,
        }


def flat_pixels(shape: Sequence[int], channel, row, col) -> np.ndarray:
    """Flat pixel index ``c*H*W + r*W + col`` in an image of ``shape`` (C, H, W); arrays broadcast.

    The one formula of the pixel numbering, for placements before a Layout exists;
    :meth:`Layout.flat_pixel` is the same on a layout.
    """
    return cell_pixels(shape, channel, np.asarray(row) * shape[2] + np.asarray(col))


def cell_pixels(shape: Sequence[int], channel, cells) -> np.ndarray:
    """Flat pixel index of grid ``cells`` (row-major ``r*W + col`` within one channel) in ``channel``.

    For placements made one channel's grid at a time (row-major fills, grid
    assignments) and for moving a one-channel placement to another channel;
    arrays broadcast.
    """
    _, h, w = shape
    return np.asarray(channel) * (h * w) + np.asarray(cells)


def pixel_coordinates(shape: Sequence[int], flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(channel, row, col) int64 arrays of flat pixel indices in an image of ``shape`` (C, H, W)."""
    _, h, w = shape
    channel, rest = np.divmod(np.asarray(flat, dtype=np.int64), h * w)
    row, col = np.divmod(rest, w)
    return channel, row, col


def load_layout(path: str | os.PathLike) -> Layout:
    """Read a layout file written by :meth:`Layout.save` (JSON, optionally gzip), its size bounded first."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Layout file {path} not found.")
    check("max_json_bytes", path.stat().st_size, f"Layout file {path.name}")
    try:
        return Layout.from_json(path.read_bytes())
    except InputError as exc:
        raise InputError(f"{path.name}: {exc}") from None


def check_layout_dict(data) -> None:
    """Check a layout file's JSON object field by field; raises InputError naming the first bad field.

    Checked: format and version, generator (text), params/quality/notes (objects), seed (whole number
    or null), shape (three whole numbers within the image-size limits), reduce, gene_ids (distinct
    texts), entrez_ids/symbols (one per gene), placements (whole numbers inside the image and the
    gene list, equal lengths), normalization (an object with a known scale; sample_genes, when given,
    distinct gene indices), regions (objects), fit_sample_ids (texts).
    """
    def bad(field_name: str, wanted: str) -> InputError:
        return InputError(f"The layout file is damaged: {field_name!r} must be {wanted}.")

    def whole_numbers(values, field_name: str, low: int, high: int) -> None:
        if not isinstance(values, list) or not all(type(v) is int for v in values):
            raise bad(field_name, "a list of whole numbers")
        if values and (min(values) < low or max(values) > high):
            raise bad(field_name, f"whole numbers from {low} to {high}")

    def texts(values, field_name: str, length: int | None = None) -> None:
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise bad(field_name, "a list of texts")
        if length is not None and len(values) != length:
            raise bad(field_name, f"a list of {length} texts, one per gene")

    check_format(data, FORMAT, FORMAT_VERSION, "layout")
    missing = [k for k in ("generator", "shape", "reduce", "gene_ids", "placements", "normalization") if k not in data]
    if missing:
        raise InputError(f"The layout file is incomplete: it has no {', '.join(repr(m) for m in missing)}.")
    if not isinstance(data["generator"], str):
        raise bad("generator", "a text")
    for key in ("params", "quality", "notes", "normalization"):
        if (data.get(key) is not None or key == "normalization") and not isinstance(data[key], dict):
            raise bad(key, "an object")
    if data.get("seed") is not None and type(data["seed"]) is not int:
        raise bad("seed", "a whole number or null")
    shape = data["shape"]
    if not isinstance(shape, list) or len(shape) != 3 or not all(type(v) is int and v >= 1 for v in shape):
        raise bad("shape", "three whole numbers of at least 1 (channels, height, width)")
    for value, limit in zip(shape, ("max_channels", "max_height", "max_width")):
        check(limit, value, f"The layout's image {limit[4:]}")
    if data["reduce"] not in REDUCERS:
        raise bad("reduce", f"one of {', '.join(REDUCERS)}")
    texts(data["gene_ids"], "gene_ids")
    n_genes = len(data["gene_ids"])
    if len(set(data["gene_ids"])) != n_genes:
        raise bad("gene_ids", "distinct gene ids")
    if data.get("entrez_ids") is not None:
        whole_numbers(data["entrez_ids"], "entrez_ids", -1, 2**62)
        if len(data["entrez_ids"]) != n_genes:
            raise bad("entrez_ids", f"a list of {n_genes} whole numbers, one per gene")
    if data.get("symbols") is not None:
        texts(data["symbols"], "symbols", n_genes)
    placements = data["placements"]
    if not isinstance(placements, dict) or "gene" not in placements or "pixel" not in placements:
        raise bad("placements", "an object with 'gene' and 'pixel' lists")
    c, h, w = shape
    whole_numbers(placements["gene"], "placements.gene", 0, max(0, n_genes - 1))
    whole_numbers(placements["pixel"], "placements.pixel", 0, c * h * w - 1)
    if len(placements["gene"]) != len(placements["pixel"]):
        raise bad("placements", "'gene' and 'pixel' lists of equal length")
    if data.get("regions") is not None and (not isinstance(data["regions"], list)
                                            or not all(isinstance(r, dict) for r in data["regions"])):
        raise bad("regions", "a list of objects")
    if data.get("fit_sample_ids") is not None:
        texts(data["fit_sample_ids"], "fit_sample_ids")
    if data.get("rnaimg_version") is not None and not isinstance(data["rnaimg_version"], str):
        raise bad("rnaimg_version", "a text")
    norm = data["normalization"]
    for key in ("center", "spread"):
        values = norm.get(key)
        if not isinstance(values, list) or len(values) != n_genes or not all(
                type(v) in (int, float) for v in values):
            raise bad(f"normalization.{key}", f"a list of {n_genes} numbers, one per gene")
    if not isinstance(norm.get("log_applied"), bool):
        raise bad("normalization.log_applied", "true or false")
    if norm.get("scale") not in SCALES:
        raise bad("normalization.scale", f"one of {', '.join(SCALES)}")
    if norm.get("sample_genes") is not None:
        whole_numbers(norm["sample_genes"], "normalization.sample_genes", 0, max(0, n_genes - 1))
        if len(set(norm["sample_genes"])) != len(norm["sample_genes"]):
            raise bad("normalization.sample_genes", "distinct gene indices")


def json_default(obj):
    """``json.dumps(default=...)`` for numpy scalars and arrays (shared by layout and model files)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _same_genes(mine: np.ndarray | None, theirs: np.ndarray | None) -> bool:
    """Whether two optional gene-index sets (``Normalization.sample_genes_``) are the same; None is every gene."""
    if mine is None or theirs is None:
        return mine is None and theirs is None
    return np.array_equal(np.unique(mine), np.unique(theirs))


def basic_quality(layout: Layout) -> dict:
    """Counts every layout reports: genes placed, pixels used, genes per pixel."""
    per_pixel = layout.genes_per_pixel.ravel()
    used = per_pixel > 0
    placed = layout.placed_genes().size
    return {
        "n_genes_in": layout.n_genes,
        "n_genes_placed": int(placed),
        "fraction_placed": round(placed / max(1, layout.n_genes), 6),
        "n_pixels": layout.n_pixels,
        "n_pixels_used": int(used.sum()),
        "fraction_pixels_used": round(float(used.mean()), 6),
        "max_genes_per_pixel": int(per_pixel.max()) if per_pixel.size else 0,
        "mean_genes_per_pixel": round(float(per_pixel[used].mean()), 6) if used.any() else 0.0,
    }
