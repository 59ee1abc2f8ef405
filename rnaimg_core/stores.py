"""Data larger than memory: lazy cohorts in, Zarr images stores out.

A :class:`Cohort` is an expression matrix that stays on disk: its values are a
``dask.array`` of samples x genes, chunked by blocks of samples (sparse blocks
stay sparse), beside the sample ids, labels and the gene table, which are small
and held in memory. :func:`open_cohort` opens

- AnnData ``.h5ad`` files and AnnData ``.zarr`` stores through AnnData's own lazy
  reader (``anndata.experimental.read_elem_lazy``): every block is read by the
  task that needs it;
- Parquet files (samples as rows, genes as columns) one row group per block;
- CSV/TSV files (optionally gzipped, samples as rows) one block of rows at a time,
  in order (a text file cannot be read from the middle): :meth:`Cohort.iter_blocks`.

Gene ids are mapped and sample sheets joined as for files read whole
(:func:`~rnaimg_core.expression.annotate_genes`, :func:`~rnaimg_core.expression.join_labels`),
on the header and the sample ids only.

An images store (a Zarr group, ``*.zarr``) is what :func:`rnaimg_core.bigrun.convert_to_store`
writes and :class:`ImagesStore` reads: the ``.npz`` images file's content, for data that
does not fit in memory. Its group attributes hold the same metadata as the ``.npz``::

    {"format": "rnaimg-images-store", "format_version": 1, "complete": true,
     "n_samples": n, "shape": [C, H, W], "block_size": 512,
     "sample_ids": [...], "labels": [...] or null, "split": ["fit" | "holdout", ...],
     "gene_ids": [...], "layout": "<the layout file's JSON text>"}

and its arrays are ``images`` (float32, (n, C, H, W); shards of ``block_size`` samples, one
per conversion task, holding chunks of a few samples so one sample is read without its
block) and ``done`` (bool, one per block: written by the task after its shard, so an
interrupted run resumes where it stopped). ``complete`` becomes true only when every
block is written: a store without it is never read as finished.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from rnaimg_core.errors import InputError
from rnaimg_core.images import ImageSet
from rnaimg_core.layout import Layout
from rnaimg_core.outputs import check_writable

STORE_FORMAT = "rnaimg-images-store"
STORE_FORMAT_VERSION = 1
DEFAULT_BLOCK_SIZE = 512        # samples per conversion task and per shard (100x100 images: 20 MB)
CHUNK_SAMPLES = 8               # samples per chunk inside a shard: random reads fetch 8, not 512


# ---------------------------------------------------------------- lazy cohorts

@dataclass
class Cohort:
    """An expression matrix on disk, read block by block.

    Attributes
    ----------
    values : dask.array, shape (n_samples, n_genes), chunked by samples (dense or
        scipy sparse blocks); None for text tables, which are read with :meth:`iter_blocks`
    sample_ids : ndarray of str, shape (n_samples,)
    gene_ids : ndarray of str, shape (n_genes,)
    labels : ndarray of str or None
    genes : the gene table of :func:`~rnaimg_core.expression.annotate_genes`
    source : the file name
    notes : the input report (gene mapping, label join)
    block_size : samples per block
    """

    values: Any
    sample_ids: np.ndarray
    gene_ids: np.ndarray
    labels: np.ndarray | None
    genes: pd.DataFrame
    source: str
    notes: dict = field(default_factory=dict)
    block_size: int = DEFAULT_BLOCK_SIZE
    text_reader: Any = None

    @property
    def n_samples(self) -> int:
        return int(self.sample_ids.size)

    @property
    def n_genes(self) -> int:
        return int(self.gene_ids.size)

    @property
    def block_starts(self) -> np.ndarray:
        """First sample of each block, and the end (length n_blocks + 1)."""
        if self.values is None:
            return np.append(np.arange(0, self.n_samples, self.block_size), self.n_samples)
        return np.concatenate([[0], np.cumsum(self.values.chunks[0])])

    def iter_blocks(self) -> Iterator[tuple[int, Any]]:
        """``(first_sample, block)`` for every block in order; blocks dense float32 or scipy sparse."""
        if self.values is None:
            yield from self.text_reader.blocks(self.block_size)
            return
        starts = self.block_starts
        for index, start in enumerate(starts[:-1]):
            yield int(start), self.values.blocks[index].compute(scheduler="synchronous")

    def rows(self, index: np.ndarray) -> np.ndarray:
        """Dense float32 rows at sorted ``index`` (a sample of the cohort, for fitting).

        Each block holding some of the rows is read where Dask runs it (on the cluster's
        workers when a ``distributed`` client is active) and only the picked rows come back.
        """
        import dask

        from rnaimg_core.expression import dense_rows

        index = np.asarray(index, dtype=np.int64)
        starts = self.block_starts
        block_of = np.searchsorted(starts, index, side="right") - 1
        hits = np.unique(block_of)
        picks = {int(b): index[block_of == b] - starts[b] for b in hits}
        if self.values is None:
            parts = [dense_rows(block, picks[b]) for b, (_, block) in enumerate(self.iter_blocks()) if b in picks]
        else:
            parts = dask.compute(*[dask.delayed(dense_rows)(self.values.blocks[b], picks[b]) for b in picks])
        if not parts:
            return np.empty((0, self.n_genes), dtype=np.float32)
        return np.concatenate(parts)

    def to_expression(self, index: np.ndarray):
        """The samples at sorted ``index`` as an in-memory :class:`~rnaimg_core.expression.Expression`."""
        from rnaimg_core.expression import from_arrays

        index = np.sort(np.asarray(index, dtype=np.int64))
        expr = from_arrays(self.rows(index), self.sample_ids[index], self.gene_ids,
                           None if self.labels is None else self.labels[index], source=self.source,
                           min_class_size=1)
        expr.notes.update(self.notes)
        return expr


def open_cohort(path: str | os.PathLike, *, labels_path: str | os.PathLike | None = None,
                label_column: str | None = None, block_size: int = DEFAULT_BLOCK_SIZE) -> Cohort:
    """Open an expression file too large for memory as a :class:`Cohort`.

    Parameters
    ----------
    path : ``.h5ad``, AnnData ``.zarr`` store, Parquet, or CSV/TSV (optionally ``.gz``), samples as rows
    labels_path : optional sample sheet (CSV/TSV): sample id column and label column
    label_column : the label column (in ``obs``, the table or the sample sheet); guessed when omitted
    block_size : samples per block (Parquet: its row groups are the blocks)

    Returns
    -------
    Cohort
    """
    from rnaimg_core.readers import _file_kind, _read_sample_sheet

    path = Path(path)
    name = path.name
    if block_size < 1:
        raise InputError("The block size must be at least one sample.")
    if not path.exists():
        raise InputError(f"{name}: file not found.")
    sheet = _read_sample_sheet(labels_path, None, label_column)
    if path.suffix == ".zarr" or path.suffix == ".h5ad":
        return _open_anndata(path, name, sheet, label_column, block_size)
    kind = _file_kind(name)
    if kind == "parquet":
        return _open_parquet(path, name, sheet, label_column)
    return _open_text(path, name, kind, sheet, label_column, block_size)


def _cohort(values, sample_ids, gene_ids, labels, keep, source, notes, block_size, text_reader=None) -> Cohort:
    """Apply the label join's ``keep`` and map the genes (the checks of from_arrays, on ids only)."""
    from rnaimg_core.expression import _check_unique, annotate_genes

    sample_ids = np.asarray(sample_ids).astype(str)
    gene_ids = np.asarray(gene_ids).astype(str)
    _check_unique(sample_ids, "sample")
    _check_unique(gene_ids, "gene")
    if keep is not None and keep.size < sample_ids.size:
        if values is None:
            raise InputError(f"{source}: every sample of a text table needs a label for a big run; "
                             f"{sample_ids.size - keep.size} have none.")
        values = values[keep]
        sample_ids = sample_ids[keep]
    genes, mapping = annotate_genes(gene_ids)
    notes = {**notes, "gene_mapping": mapping}
    return Cohort(values, sample_ids, gene_ids, labels, genes, source, notes, block_size, text_reader)


def _labels(sample_ids: np.ndarray, obs: pd.DataFrame | None, sheet: pd.Series | None,
            label_column: str | None, name: str) -> tuple[np.ndarray | None, np.ndarray | None, dict]:
    from rnaimg_core.expression import join_labels, labels_from_column

    if sheet is not None:
        labels, keep, report = join_labels(sample_ids, sheet)
        return labels, keep, {"label_join": report}
    if obs is None:
        return None, None, {}
    return labels_from_column(obs, label_column, name)


def _open_anndata(path: Path, name: str, sheet, label_column, block_size: int) -> Cohort:
    """AnnData on disk (``.h5ad`` or ``.zarr``): ``obs``/``var`` read, ``X`` lazy."""
    import anndata
    from anndata.experimental import read_elem_lazy
    from anndata.io import read_elem

    from rnaimg_core.expression import _gene_id_column

    try:
        if path.suffix == ".zarr":
            import zarr
            handle = zarr.open_group(str(path), mode="r")
        else:
            import h5py
            handle = h5py.File(path, "r")
        if "X" not in handle:
            raise InputError(f"{name}: the AnnData has no expression matrix (X).")
        obs, var = read_elem(handle["obs"]), read_elem(handle["var"])
        n_genes = int(handle["X"].attrs["shape"][1]) if "shape" in handle["X"].attrs else handle["X"].shape[1]
        values = read_elem_lazy(handle["X"], chunks=(block_size, n_genes))
    except InputError:
        raise
    except Exception as exc:  # h5py, zarr and anndata raise many types for a broken file
        raise InputError(f"{name} could not be opened as AnnData: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    column = _gene_id_column(anndata.AnnData(obs=obs, var=var))
    gene_ids = var.index if column is None else var[column]
    sample_ids = obs.index.astype(str).to_numpy()
    labels, keep, notes = _labels(sample_ids, obs, sheet, label_column, name)
    if column is not None:
        notes["gene_id_column"] = column
    return _cohort(values, sample_ids, gene_ids, labels, keep, name, notes, block_size)


def _read_row_group(path: str, group: int, columns: list[str]) -> np.ndarray:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path).read_row_group(group, columns=columns)
    out = np.empty((table.num_rows, len(columns)), dtype=np.float32)
    for j, column in enumerate(table.columns):  # one column at a time: no float64 copy of the block
        out[:, j] = column.to_numpy(zero_copy_only=False)
    return out


def _open_parquet(path: Path, name: str, sheet, label_column) -> Cohort:
    """Parquet, samples as rows: one block per row group; ids and labels read as two columns."""
    import dask
    import dask.array as da
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises many types for a broken file
        raise InputError(f"{name} could not be read as PARQUET: {exc}") from None
    from rnaimg_core.expression import guess_label_column

    columns = handle.schema_arrow.names
    # a table written by pandas keeps its (named) index as a column listed in the pandas metadata
    index_columns = [c for c in (handle.schema_arrow.pandas_metadata or {}).get("index_columns", [])
                     if isinstance(c, str)]
    id_column = index_columns[0] if index_columns else columns[0]
    label_in_table = label_column if label_column in columns else (
        None if label_column else guess_label_column([c for c in columns if c != id_column]))
    first_columns = [id_column] + ([label_in_table] if label_in_table else [])
    table = handle.read(columns=first_columns)
    head = pd.DataFrame({c: table.column(c).to_numpy(zero_copy_only=False) for c in first_columns})
    gene_columns = [c for c in columns if c not in first_columns and not c.startswith("__index_level")]
    sample_ids = head[id_column].astype(str).to_numpy()
    labels, keep, notes = _labels(sample_ids, head.set_index(id_column) if label_in_table else None,
                                  sheet, label_in_table, name)
    meta = handle.metadata
    blocks = [da.from_delayed(dask.delayed(_read_row_group)(str(path), g, gene_columns),
                              shape=(meta.row_group(g).num_rows, len(gene_columns)), dtype=np.float32)
              for g in range(meta.num_row_groups)]
    values = da.concatenate(blocks, axis=0)
    return _cohort(values, sample_ids, gene_columns, labels, keep, name, notes,
                   int(max(values.chunks[0])))


@dataclass
class _TextTable:
    """A CSV/TSV (optionally gzipped) table, samples as rows, read in blocks of rows in file order."""

    path: str
    sep: str
    drop_columns: tuple[str, ...]

    def blocks(self, block_size: int) -> Iterator[tuple[int, np.ndarray]]:
        start = 0
        for frame in pd.read_csv(self.path, sep=self.sep, index_col=0, chunksize=block_size,
                                 dtype={0: str}):
            values = frame.drop(columns=list(self.drop_columns)).to_numpy(dtype=np.float32)
            yield start, values
            start += values.shape[0]


def _open_text(path: Path, name: str, kind: str, sheet, label_column, block_size: int) -> Cohort:
    """CSV/TSV: header and the first (id) column read now, values later block by block."""
    import gzip

    from rnaimg_core.readers import _TABLE_SUFFIXES, _is_gzip, _sniff_separator

    with (gzip.open if _is_gzip(path) else open)(path, "rt") as handle:
        header_line = handle.readline()
    sep = _TABLE_SUFFIXES[kind] if kind != ".txt" else _sniff_separator(header_line)
    header = header_line.rstrip("\r\n").split(sep)
    label_in_table = label_column if label_column in header[1:] else None
    first = pd.read_csv(path, sep=sep, usecols=[0] + ([header.index(label_in_table)] if label_in_table else []),
                        dtype=str)
    sample_ids = first.iloc[:, 0].astype(str).to_numpy()
    labels, keep, notes = _labels(sample_ids, first.set_index(first.columns[0]) if label_in_table else None,
                                  sheet, label_in_table, name)
    gene_ids = [g for g in header[1:] if g != label_in_table]
    reader = _TextTable(str(path), sep, (label_in_table,) if label_in_table else ())
    return _cohort(None, sample_ids, gene_ids, labels, keep, name, notes, block_size, reader)


# ---------------------------------------------------------------- images stores

def is_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a Zarr images store (a directory ending in ``.zarr``)."""
    return Path(path).suffix == ".zarr"


def check_store_destination(out: str | os.PathLike) -> Path:
    """Raise an InputError unless an images store can be written at ``out``; call it before any work.

    ``out`` must end in ``.zarr``, be a folder that can be created or written
    (:func:`rnaimg_core.outputs.check_writable`), and, when it exists, be empty or an rnaimg images
    store (resumed or replaced by :func:`convert_to_store`), never another folder.

    Returns
    -------
    Path
    """
    path = Path(out)
    if not is_store(path):
        raise InputError(f"Cannot write {path}: an images store is a folder whose name ends in .zarr.")
    check_writable(path, folder=True)
    if path.is_dir() and any(path.iterdir()) and _existing_attrs(path) is None:
        raise InputError(f"{path} exists and is not an rnaimg images store; choose another --out.")
    return path


def create_store(path: str | os.PathLike, layout: Layout, sample_ids, labels, split, *,
                 block_size: int = DEFAULT_BLOCK_SIZE, resume: bool = True) -> tuple[Any, np.ndarray]:
    """Open an images store for writing; returns ``(zarr group, done flags per block)``.

    An existing complete or partial store of the same layout and samples is resumed
    (its finished blocks kept) when ``resume``; otherwise it is removed and started
    clean. A directory that is not an rnaimg store is never removed.
    """
    import zarr

    path = Path(path)
    n = len(sample_ids)
    attrs = {"format": STORE_FORMAT, "format_version": STORE_FORMAT_VERSION, "complete": False,
             "n_samples": n, "shape": list(layout.shape), "block_size": int(block_size),
             "sample_ids": np.asarray(sample_ids).astype(str).tolist(),
             "labels": None if labels is None else np.asarray(labels).astype(str).tolist(),
             "split": np.asarray(split).astype(str).tolist(), "gene_ids": layout.gene_ids.tolist(),
             "layout": layout.to_json()}
    n_blocks = -(-n // block_size)
    check_store_destination(path)
    old = _existing_attrs(path) if path.exists() else None
    if old is not None:
        same = all(old.get(k) == attrs[k] for k in ("sample_ids", "layout", "block_size", "split"))
        if resume and same:
            group = zarr.open_group(str(path), mode="r+")
            group.attrs["complete"] = False
            return group, np.asarray(group["done"][:], dtype=bool)
        shutil.rmtree(path)
    group = zarr.open_group(str(path), mode="w")
    group.create_array("images", shape=(n, *layout.shape), dtype="float32", fill_value=0.0, compressors=None,
                       chunks=(math.gcd(CHUNK_SAMPLES, block_size), *layout.shape),  # must divide the shard
                       shards=(block_size, *layout.shape))
    group.create_array("done", shape=(n_blocks,), chunks=(1,), dtype=bool, fill_value=False)
    group.attrs.update(attrs)
    return group, np.zeros(n_blocks, dtype=bool)


def _existing_attrs(path: Path) -> dict | None:
    import zarr

    try:
        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception:  # not a Zarr group at all
        return None
    return attrs if attrs.get("format") == STORE_FORMAT else None


def write_block(path: str, start: int, images: np.ndarray, block: int) -> int:
    """Write one block's images at ``start`` and flag the block done; returns the samples written."""
    import zarr

    group = zarr.open_group(path, mode="r+")
    group["images"][start:start + images.shape[0]] = images
    group["done"][block] = True
    return int(images.shape[0])


class ImagesStore(ImageSet):
    """A finished Zarr images store, read lazily: an ImageSet whose ``images`` stay on disk.

    Attributes
    ----------
    images : zarr.Array, shape (n_samples, C, H, W), float32, read on indexing
    sample_ids, labels, split, layout : as for ImageSet, held in memory
    path : the store directory
    """

    streamed = True  # train_model streams it (rnaimg_core.model.data) rather than loading ``images``

    def __init__(self, path: Path, images, sample_ids: np.ndarray, labels: np.ndarray | None, split: np.ndarray,
                 layout: Layout):
        super().__init__(images, sample_ids, labels, split, layout)
        self.path = Path(path)

    def load(self, index) -> ImageSet:
        """The samples at ``index`` (sorted indices or a mask) as an in-memory ImageSet."""
        index = np.asarray(index)
        index = np.flatnonzero(index) if index.dtype == bool else np.sort(index.astype(np.int64))
        images = self.images.get_orthogonal_selection((index,)) if index.size else np.empty(
            (0, *self.layout.shape), np.float32)
        return ImageSet(images, self.sample_ids[index], None if self.labels is None else self.labels[index],
                        self.split[index], self.layout)


def read_store(path: str | os.PathLike) -> ImagesStore:
    """Open a complete images store written by :func:`~rnaimg_core.bigrun.convert_to_store`."""
    import zarr

    path = Path(path)
    if not path.is_dir():
        raise InputError(f"Images store {path} not found.")
    attrs = _existing_attrs(path)
    if attrs is None:
        raise InputError(f"{path.name} is not an rnaimg images store.")
    if not attrs.get("complete"):
        raise InputError(f"{path.name} is incomplete (its conversion did not finish); run the convert "
                         "command again to resume it.")
    layout = Layout.from_json(attrs["layout"])
    images = zarr.open_group(str(path), mode="r")["images"]
    labels = None if attrs.get("labels") is None else np.asarray(attrs["labels"], dtype=str)
    if labels is not None and np.all(labels == ""):
        labels = None
    return ImagesStore(path, images, np.asarray(attrs["sample_ids"], dtype=str), labels,
                       np.asarray(attrs["split"], dtype=str), layout)


def open_images(path: str | os.PathLike, *, per_class: int | None = None, seed: int = 0):
    """An images file (``.npz``, read whole) or a store (``.zarr``, lazy).

    With ``per_class``, a store gives an in-memory ImageSet of up to that many
    samples of each class (seeded) instead: enough to explain a model, never the whole store.
    """
    from rnaimg_core.images import read_images, samples_per_class

    if not is_store(path):
        return read_images(path)
    store = read_store(path)
    if per_class is None:
        return store
    return store.load(np.sort(samples_per_class(store.labels, per_class, seed=seed)))
