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
    fingerprint : the input's identity (:func:`file_fingerprint` of the file and sample sheet, the reading
        options), stored in an images store so that only the same input is ever resumed; None when unknown
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
    fingerprint: dict | None = None  # what open_cohort read (file_fingerprint of input and sheet, options)

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
                label_column: str | None = None, block_size: int = DEFAULT_BLOCK_SIZE,
                orientation: str = "auto") -> Cohort:
    """Open an expression file too large for memory as a :class:`Cohort`.

    The file is checked and its header, ids and orientation read as :func:`~rnaimg_core.readers.read_expression`
    reads them (the same helpers: R's one-field-short header, sample sheets, ``max_file_bytes``,
    ``max_decompressed_bytes``, ``max_columns``). What this reader holds in memory is bounded by ``max_cells``:
    the ids (each counted as :data:`~rnaimg_core.readers.ROW_ID_CELLS` cells) and one block of samples.
    Blocks are read by samples, so a table must have samples as rows: a table whose genes are rows
    (given by ``orientation``, or found by the reader's evidence) is refused with the reason.

    Parameters
    ----------
    path : ``.h5ad``, AnnData ``.zarr`` store, Parquet, or CSV/TSV (optionally ``.gz``), samples as rows
    labels_path : optional sample sheet (CSV/TSV): sample id column and label column
    label_column : the label column (in ``obs``, the table or the sample sheet); guessed when omitted
    block_size : samples per block (Parquet: its row groups are the blocks)
    orientation : ``"auto"``, ``"samples-as-rows"`` or ``"genes-as-rows"`` (refused: see above)

    Returns
    -------
    Cohort
    """
    from rnaimg_core.readers import ORIENTATIONS, check_input_file, file_kind, read_sample_sheet

    path = Path(path)
    name = path.name
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise InputError("The block size must be at least one sample.")
    if orientation not in ORIENTATIONS:
        raise InputError(f"orientation must be one of {', '.join(ORIENTATIONS)}, not {orientation!r}.")
    if path.suffix == ".zarr":
        if not path.is_dir():
            raise InputError(f"{name}: AnnData .zarr store not found (a .zarr store is a folder).")
    else:
        check_input_file(path, name)
    sheet = read_sample_sheet(labels_path, None, label_column)
    fingerprint = {"input": file_fingerprint(path),
                   "sample_sheet": None if labels_path is None else file_fingerprint(labels_path),
                   "label_column": label_column, "orientation": orientation}
    if path.suffix == ".zarr" or path.suffix == ".h5ad":
        cohort = _open_anndata(path, name, sheet, label_column, block_size)
    elif file_kind(name) == "parquet":
        cohort = _open_parquet(path, name, sheet, label_column, orientation)
    else:
        cohort = _open_text(path, name, file_kind(name), sheet, label_column, block_size, orientation)
    cohort.fingerprint = fingerprint
    return cohort


FINGERPRINT_SAMPLES = 16          # evenly spaced pieces of a file hashed besides its head and tail
FINGERPRINT_PIECE = 64 * 1024     # bytes per piece (head and tail: 1 MiB each)


def file_fingerprint(path: str | os.PathLike) -> dict:
    """A file's (or an AnnData ``.zarr`` folder's) identity without reading all of it.

    Size, modification time and a SHA-256 of its first and last MiB and of :data:`FINGERPRINT_SAMPLES`
    pieces spread over it (a folder: of every file's relative path, size and modification time). Any
    rewrite changes the time; a copy keeps size and content but not the time, and is treated as another
    input (resuming is only ever done on proof of sameness).
    """
    import hashlib

    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        size = mtime = 0
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            info = item.stat()
            size, mtime = size + info.st_size, max(mtime, info.st_mtime_ns)
            digest.update(f"{item.relative_to(path)}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
        return {"size": size, "mtime_ns": mtime, "sha256_sampled": digest.hexdigest()}
    info = path.stat()
    size = info.st_size
    head = 2**20
    offsets = [0] + [int(size * k / (FINGERPRINT_SAMPLES + 1)) for k in range(1, FINGERPRINT_SAMPLES + 1)] \
        + [max(0, size - head)]
    with open(path, "rb") as handle:
        for k, offset in enumerate(offsets):
            handle.seek(offset)
            digest.update(handle.read(head if k in (0, len(offsets) - 1) else FINGERPRINT_PIECE))
    return {"size": size, "mtime_ns": info.st_mtime_ns, "sha256_sampled": digest.hexdigest()}


def _check_block(block_size: int, n_samples: int, n_genes: int, name: str) -> None:
    """What a big run holds in memory: every id (``ROW_ID_CELLS`` cells each) and one block of values."""
    from rnaimg_core.limits import check
    from rnaimg_core.readers import ROW_ID_CELLS

    check("max_cells", int(n_samples) * ROW_ID_CELLS, f"{name}: the ids of {int(n_samples):,} samples "
                                                       f"(each counted as {ROW_ID_CELLS} cells)")
    rows = min(int(block_size), int(n_samples))
    check("max_cells", rows * (int(n_genes) + ROW_ID_CELLS),
          f"{name}: one block of {rows:,} samples x {int(n_genes):,} genes (choose a smaller --block-size, or)")


def _samples_as_rows(sample_ids, gene_ids, id_name: str, label_column: str | None, sheet, orientation: str,
                     name: str) -> str:
    """The reason the table has samples as rows (the memory reader's evidence); genes as rows is refused."""
    from rnaimg_core.readers import guess_orientation

    if orientation == "auto":
        orientation, reason = guess_orientation(pd.Index(sample_ids, name=id_name or None), pd.Index(gene_ids),
                                                label_column, name, None if sheet is None else pd.Index(sheet.index))
    else:
        reason = "given"
    if orientation == "genes-as-rows":
        why = "as given by --orientation" if reason == "given" else f"because {reason}"
        raise InputError(f"{name} has genes as rows ({why}); a big run reads samples block by block, so it needs "
                         "samples as rows. Transpose the table (or write it as Parquet or .h5ad with samples as "
                         "rows), or read it whole with --engine memory.")
    return reason


def _cohort(values, sample_ids, gene_ids, labels, keep, source, notes, block_size, text_reader=None) -> Cohort:
    """Apply the label join's ``keep`` and map the genes (the checks of from_arrays, on ids only)."""
    from rnaimg_core.expression import annotate_genes, check_unique

    sample_ids = np.asarray(sample_ids).astype(str)
    gene_ids = np.asarray(gene_ids).astype(str)
    if sample_ids.size == 0:
        raise InputError(f"{source} holds no samples.")
    if gene_ids.size == 0:
        raise InputError(f"{source} holds no gene columns.")
    check_unique(sample_ids, "sample")
    check_unique(gene_ids, "gene")
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

    from rnaimg_core.expression import gene_id_column

    try:
        if path.suffix == ".zarr":
            import zarr
            handle = zarr.open_group(str(path), mode="r")
        else:
            import h5py
            handle = h5py.File(path, "r")
        if "X" not in handle:
            raise InputError(f"{name}: the AnnData has no expression matrix (X).")
        if "obs" not in handle or "var" not in handle:
            raise InputError(f"{name}: the AnnData has no obs or var table.")
        shape = tuple(int(s) for s in np.asarray(handle["X"].attrs["shape"]).ravel()) \
            if "shape" in handle["X"].attrs else tuple(handle["X"].shape)
        if len(shape) != 2:
            raise InputError(f"{name}: X must be a 2-D cells x genes matrix, not shape {shape}.")
        _check_block(block_size, shape[0], shape[1], name)
        obs, var = read_elem(handle["obs"]), read_elem(handle["var"])
        values = read_elem_lazy(handle["X"], chunks=(block_size, shape[1]))
    except InputError:
        raise
    except Exception as exc:  # h5py, zarr and anndata raise many types for a broken file
        raise InputError(f"{name} could not be opened as AnnData: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    if not (np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.bool_)):
        raise InputError(f"{name}: X holds {values.dtype} values; expression values must be numbers.")
    column = gene_id_column(anndata.AnnData(obs=obs, var=var))
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
        try:
            out[:, j] = column.to_numpy(zero_copy_only=False)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{Path(path).name}: column {columns[j]!r} is not numeric ({exc}).") from None
    return out


def _open_parquet(path: Path, name: str, sheet, label_column, orientation: str) -> Cohort:
    """Parquet, samples as rows: one block per row group; ids and labels read as two columns."""
    import dask
    import dask.array as da
    import pyarrow as pa

    from rnaimg_core.expression import guess_label_column
    from rnaimg_core.readers import open_parquet

    handle = open_parquet(path, name)
    schema = handle.schema_arrow
    columns = schema.names
    # a table written by pandas keeps its (named) index as a column listed in the pandas metadata
    index_columns = [c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)]
    id_column = index_columns[0] if index_columns else columns[0]
    label_in_table = label_column if label_column in columns else (
        None if label_column else guess_label_column([c for c in columns if c != id_column]))
    first_columns = [id_column] + ([label_in_table] if label_in_table else [])
    gene_columns = [c for c in columns if c not in first_columns and not c.startswith("__index_level")]
    odd = [c for c in gene_columns if not (pa.types.is_integer(schema.field(c).type)
                                           or pa.types.is_floating(schema.field(c).type)
                                           or pa.types.is_boolean(schema.field(c).type))]
    if odd:
        raise InputError(f"{name}: column {odd[0]!r} holds {schema.field(odd[0]).type} values, not numbers "
                         f"({len(odd)} such column(s)). If it holds labels, name it as the label column.")
    meta = handle.metadata
    largest = max((meta.row_group(g).num_rows for g in range(meta.num_row_groups)), default=0)
    _check_block(largest, meta.num_rows, len(gene_columns), name)
    try:
        table = handle.read(columns=first_columns)
    except Exception as exc:  # pyarrow raises many types for a broken file
        raise InputError(f"{name} could not be read as PARQUET: {exc}") from None
    head = pd.DataFrame({c: table.column(c).to_numpy(zero_copy_only=False) for c in first_columns})
    sample_ids = head[id_column].astype(str).to_numpy()
    reason = _samples_as_rows(sample_ids, gene_columns + ([label_in_table] if label_in_table else []),
                              id_column, label_in_table, sheet, orientation, name)
    labels, keep, notes = _labels(sample_ids, head.set_index(id_column) if label_in_table else None,
                                  sheet, label_in_table, name)
    notes.update(orientation="samples-as-rows", orientation_reason=reason)
    blocks = [da.from_delayed(dask.delayed(_read_row_group)(str(path), g, gene_columns),
                              shape=(meta.row_group(g).num_rows, len(gene_columns)), dtype=np.float32)
              for g in range(meta.num_row_groups)]
    values = da.concatenate(blocks, axis=0)
    return _cohort(values, sample_ids, gene_columns, labels, keep, name, notes,
                   int(max(values.chunks[0])))


@dataclass
class _TextTable:
    """A CSV/TSV (optionally gzipped) table, samples as rows, read in blocks of rows in file order with the
    memory reader's helpers (:mod:`rnaimg_core.readers`: byte cap, header, float32 parse)."""

    path: str
    name: str
    kind: str
    value_positions: tuple[int, ...]
    gene_ids: tuple[str, ...]

    def blocks(self, block_size: int) -> Iterator[tuple[int, np.ndarray]]:
        from rnaimg_core.readers import open_text, read_header

        start = 0
        with open_text(self.path, self.name) as text:
            sep, _, geo = read_header(text, self.name, self.kind)
            # one dtype for every column read (usecols holds only value columns): pandas parsed a block of a
            # 9,450-gene table 2.3x slower when given the same float32 as a dict of one entry per column
            reader = pd.read_csv(text, sep=sep, header=None, index_col=None, usecols=list(self.value_positions),
                                 dtype=np.float32, skip_blank_lines=True, chunksize=block_size, low_memory=True,
                                 comment="!" if geo else None)
            while True:
                try:
                    frame = next(reader)
                except StopIteration:
                    return
                except (ValueError, pd.errors.ParserError) as exc:
                    if isinstance(exc, InputError):
                        raise
                    raise InputError(f"{self.name}: rows from sample {start + 1} on could not be read as "
                                     f"numbers ({str(exc).splitlines()[0]}).") from None
                values = frame.to_numpy(dtype=np.float32)
                yield start, values
                start += values.shape[0]


def _open_text(path: Path, name: str, kind: str, sheet, label_column, block_size: int, orientation: str) -> Cohort:
    """CSV/TSV: header and the first (id) column read now (through the memory reader's byte cap, header and
    cell checks), values later block by block."""
    import csv

    from rnaimg_core.expression import guess_label_column
    from rnaimg_core.readers import header_names, open_text, read_header, read_rows

    with open_text(path, name) as text:
        sep, header, geo = read_header(text, name, kind)
        first_line = text.readline()
    if not first_line.strip():
        raise InputError(f"{name} has no data rows; expected ids in the first column and values in the others.")
    n_fields = len(next(csv.reader([first_line.rstrip("\r\n")], delimiter=sep)))
    id_name, names = header_names(header, n_fields, name)
    label_in_table = label_column if label_column in names else (
        None if label_column else guess_label_column(names))
    label_position = names.index(label_in_table) + 1 if label_in_table else None
    usecols = [0] + ([label_position] if label_position else [])
    with open_text(path, name) as text:
        read_header(text, name, kind)
        first = read_rows(text, name, sep, header, {p: str for p in usecols}, usecols=usecols,
                          comment="!" if geo else None)
    if first.shape[1] != len(usecols):
        raise InputError(f"{name}: the rows have fewer fields than the header names.")
    sample_ids = first.iloc[:, 0].astype(str).str.strip().to_numpy()
    gene_ids = [g for g in names if g != label_in_table]
    _check_block(block_size, sample_ids.size, len(gene_ids), name)
    reason = _samples_as_rows(sample_ids, names, id_name, label_in_table, sheet, orientation, name)
    obs = None
    if label_in_table:
        obs = pd.DataFrame({label_in_table: first.iloc[:, 1].to_numpy()}, index=sample_ids)
    labels, keep, notes = _labels(sample_ids, obs, sheet, label_in_table, name)
    notes.update(orientation="samples-as-rows", orientation_reason=reason)
    if n_fields == len(header) + 1:
        notes["header"] = "R write.table style: the header has no field above the row ids"
    positions = tuple(i + 1 for i, g in enumerate(names) if g != label_in_table)
    reader = _TextTable(str(path), name, kind, positions, tuple(gene_ids))
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
                 block_size: int = DEFAULT_BLOCK_SIZE, resume: bool = True,
                 fingerprint: dict | None = None) -> tuple[Any, np.ndarray]:
    """Open an images store for writing; returns ``(zarr group, done flags per block)``.

    An existing store is resumed (its finished blocks kept) only when ``resume`` and it is proven to hold
    the same conversion: the same ``fingerprint`` (input file and sample sheet, reading options, layout
    SHA-256, settings; see :func:`rnaimg_core.bigrun.convert_to_store`), samples, labels, split, block size
    and image shape. Any difference raises an InputError naming it (``resume=False``, the command line's
    ``--overwrite``, starts the store afresh instead). A directory that is not an rnaimg store is never removed.
    """
    import zarr

    path = Path(path)
    n = len(sample_ids)
    attrs = {"format": STORE_FORMAT, "format_version": STORE_FORMAT_VERSION, "complete": False,
             "n_samples": n, "shape": list(layout.shape), "block_size": int(block_size),
             "sample_ids": np.asarray(sample_ids).astype(str).tolist(),
             "labels": None if labels is None else np.asarray(labels).astype(str).tolist(),
             "split": np.asarray(split).astype(str).tolist(), "gene_ids": layout.gene_ids.tolist(),
             "layout": layout.to_json(), "fingerprint": fingerprint}
    n_blocks = -(-n // block_size)
    check_store_destination(path)
    old = _existing_attrs(path) if path.exists() else None
    if old is not None:
        if resume:
            differences = store_differences(old, attrs)
            if differences:
                raise InputError(f"{path} holds another conversion: {'; '.join(differences)}. It is not resumed, "
                                 "so old images never mix with new ones: give another --out, or start it afresh "
                                 "with --overwrite.")
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


def store_differences(old: dict, new: dict) -> list[str]:
    """Why an existing store's attributes ``old`` are not the conversion ``new`` (empty: the same), in words."""
    found = []
    if old.get("format_version") != new["format_version"]:
        found.append(f"format version {old.get('format_version')!r}, not {new['format_version']}")
    before, now = old.get("fingerprint") or {}, new.get("fingerprint") or {}
    if not before.get("input") or not now.get("input"):
        found.append("its input is not known to be the same (no fingerprint)")
    else:
        for key, words in (("input", "the input file changed (size, modification time or content)"),
                           ("sample_sheet", "the sample sheet changed"),
                           ("label_column", "the label column differs"), ("orientation", "the orientation differs"),
                           ("layout_sha256", "the layout differs"), ("settings", "the conversion settings differ")):
            if before.get(key) != now.get(key):
                detail = ""
                if key == "settings":
                    detail = f" ({before.get(key)} before, {now.get(key)} now)"
                found.append(words + detail)
    for key, words in (("sample_ids", "the sample ids differ"), ("labels", "the labels differ"),
                       ("split", "the fit/holdout split differs"), ("block_size", "the block size differs"),
                       ("shape", "the image shape differs"), ("layout", "the layout differs")):
        if old.get(key) != new.get(key) and words not in found:
            found.append(words)
    return found


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


def _first_not_finite(images: np.ndarray) -> int | None:
    finite = np.isfinite(images.reshape(images.shape[0], -1)).all(axis=1)
    return None if finite.all() else int(np.flatnonzero(~finite)[0])


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

    def _check_finite(self, images: np.ndarray, index: np.ndarray) -> None:
        bad = _first_not_finite(images)
        if bad is not None:
            raise InputError(f"{self.path.name}: the image of sample {str(self.sample_ids[index[bad]])!r} holds NaN "
                             "or infinite values; the store is damaged.")

    def check_finite(self, index=None) -> None:
        """Raise an InputError when an image at ``index`` (default: all) holds NaN or infinity; read shard by shard."""
        index = np.arange(self.n_samples) if index is None else np.sort(np.asarray(index, dtype=np.int64))
        step = max(1, int(self.images.shards[0]) if getattr(self.images, "shards", None) else DEFAULT_BLOCK_SIZE)
        for first in range(0, index.size, step):
            part = index[first:first + step]
            self._check_finite(self.images.get_orthogonal_selection((part,)), part)

    def load(self, index) -> ImageSet:
        """The samples at ``index`` (sorted indices or a mask) as an in-memory ImageSet."""
        index = np.asarray(index)
        index = np.flatnonzero(index) if index.dtype == bool else np.sort(index.astype(np.int64))
        images = self.images.get_orthogonal_selection((index,)) if index.size else np.empty(
            (0, *self.layout.shape), np.float32)
        self._check_finite(images, index)
        return ImageSet(images, self.sample_ids[index], None if self.labels is None else self.labels[index],
                        self.split[index], self.layout)


def read_store(path: str | os.PathLike) -> ImagesStore:
    """Open a complete images store written by :func:`~rnaimg_core.bigrun.convert_to_store`, every field checked.

    Raises
    ------
    InputError
        Naming the first problem: not a store, incomplete, another format version, ids, labels or split not
        one per image (or split not ``fit``/``holdout``), repeated ids, a missing or misshapen ``images``
        array, blocks not written, a layout of another shape. NaN images are found where they are read
        (:meth:`ImagesStore.load`, :meth:`ImagesStore.check_finite`).
    """
    import zarr

    from rnaimg_core.splits import FIT, HOLDOUT

    path = Path(path)
    if not path.is_dir():
        raise InputError(f"Images store {path} not found.")
    attrs = _existing_attrs(path)
    if attrs is None:
        raise InputError(f"{path.name} is not an rnaimg images store.")
    name = path.name
    version = attrs.get("format_version")
    if version != STORE_FORMAT_VERSION or isinstance(version, bool):
        raise InputError(f"{name} is images store format version {version!r}; this rnaimg reads version "
                         f"{STORE_FORMAT_VERSION}. Convert the data again with this version.")
    if attrs.get("complete") is not True:
        raise InputError(f"{name} is incomplete (its conversion did not finish); run the convert "
                         "command again to resume it.")
    n = attrs.get("n_samples")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"{name}: n_samples must be a positive whole number, not {n!r}; the store is damaged.")
    texts = {}
    for key in ("sample_ids", "labels", "split"):
        value = attrs.get(key)
        if key == "labels" and value is None:
            texts[key] = None
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{name}: {key} must be a list of text; the store is damaged.")
        if len(value) != n:
            raise InputError(f"{name}: {key} has {len(value):,} entries for {n:,} images; the store is damaged.")
        texts[key] = np.asarray(value, dtype=str)
    sample_ids, labels, split = texts["sample_ids"], texts["labels"], texts["split"]
    if np.unique(sample_ids).size != n:
        raise InputError(f"{name}: sample ids repeat; the store is damaged.")
    odd = ~np.isin(split, [FIT, HOLDOUT])
    if odd.any():
        raise InputError(f"{name}: split must be {FIT!r} or {HOLDOUT!r}, found {str(split[odd][0])!r}; "
                         "the store is damaged.")
    if not isinstance(attrs.get("layout"), str):
        raise InputError(f"{name}: the layout is missing; the store is damaged.")
    try:
        layout = Layout.from_json(attrs["layout"])
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from None
    try:
        group = zarr.open_group(str(path), mode="r")
        images, done = group["images"], group["done"]
    except (KeyError, Exception) as exc:  # zarr raises several types for a missing or broken array
        raise InputError(f"{name}: the images array is missing or unreadable ({type(exc).__name__}); "
                         "the store is damaged.") from None
    if tuple(images.shape) != (n, *layout.shape) or images.dtype != np.float32:
        raise InputError(f"{name}: images are {images.dtype} {tuple(images.shape)}, expected float32 "
                         f"{(n, *layout.shape)}; the store is damaged.")
    if not np.asarray(done[:], dtype=bool).all():
        raise InputError(f"{name} is marked complete but some blocks were never written; run the convert "
                         "command again (with --overwrite) to rewrite it.")
    if labels is not None and np.all(labels == ""):
        labels = None
    elif labels is not None and (labels == "").any():
        raise InputError(f"{name}: some images have a label and others none; the store is damaged.")
    return ImagesStore(path, images, sample_ids, labels, split, layout)


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
