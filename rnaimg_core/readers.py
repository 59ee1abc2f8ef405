"""Files to :class:`~rnaimg_core.expression.Expression`: formats, orientation, sample sheets, size limits.

Reads CSV, TSV/TXT (optionally gzipped), Parquet and AnnData ``.h5ad`` files,
puts samples in rows, joins labels from a column or a sample sheet, and hands
the arrays to :func:`~rnaimg_core.expression.from_arrays` (or
:meth:`~rnaimg_core.expression.Expression.from_anndata`) for the checks. An
``.h5ad`` file is opened backed, so a sparse matrix is densified block by block
rather than whole. Every problem becomes an :class:`InputError` naming the file.

Sizes are bounded before allocation by :mod:`rnaimg_core.limits`: text is read
through a byte cap (gzip included) and parsed at most ``max_cells`` cells (each
row's id weighing :data:`ROW_ID_CELLS`), value columns straight to float32;
Parquet rows x columns and an ``.h5ad``'s declared ``X`` shape and dtype are
checked from the metadata. Orientation is decided by evidence (sample sheet ids,
label column, id column name, gene names; plain numbers count as Entrez ids only
as a last resort) and recorded in ``notes["orientation_reason"]``; weak evidence
raises :class:`OrientationUnclear` instead of guessing. R's ``write.table``
header (one field short) is recognised.

The big-run reader (:mod:`rnaimg_core.stores`) reads with the public helpers below
(:func:`check_input_file`, :func:`file_kind`, :func:`open_text`, :func:`read_header`,
:func:`read_rows`, :func:`header_names`, :func:`open_parquet`, :func:`guess_orientation`,
:func:`read_sample_sheet`), so both readers agree on every file: the same header rules, the
same orientation evidence, the same limits and messages.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
import re
import stat
import tempfile
import zlib
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, TextIO

import numpy as np
import pandas as pd

from rnaimg_core.errors import InputError
from rnaimg_core.limits import CappedReader, check, check_array, current_limits, how_to_raise
from rnaimg_core.expression import (
    LABEL_COLUMN_GUESSES,
    Expression,
    from_arrays,
    guess_label_column,
    join_labels,
    labels_from_column,
    mapped_fraction,
)

if TYPE_CHECKING:
    import anndata

    from rnaimg_core.gene_map import GeneMap

ORIENTATIONS = ("auto", "samples-as-rows", "genes-as-rows")
SAMPLE_ID_GUESSES = ("sample", "sample_id", "sampleid", "barcode", "id", "sample_barcode", "cell")
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".tab": "\t"}
SUPPORTED_TYPES = "CSV, TSV/TXT (optionally .gz), Parquet (.parquet) or AnnData (.h5ad)"
# A row's id is a Python string (copied while ids are checked): about 170 bytes while a table is read,
# the memory of 40 float32 values. Counting it in max_cells bounds long narrow tables too.
ROW_ID_CELLS = 40


def read_expression(
    path: str | os.PathLike,
    *,
    labels_path: str | os.PathLike | None = None,
    label_column: str | None = None,
    orientation: str = "auto",
    display_name: str | None = None,
    labels_display_name: str | None = None,
    gene_map: "GeneMap | str | os.PathLike | None" = None,
    collapse: str = "auto",
) -> Expression:
    """Read an expression matrix (and optionally a sample sheet) from files.

    Parameters
    ----------
    path : path to CSV, TSV/TXT (optionally ``.gz``), Parquet or ``.h5ad``.
    labels_path : optional sample sheet (CSV/TSV): a sample id column and a label column.
    label_column : the label column, in the matrix (an ``.h5ad``'s ``obs``) or in
        the sample sheet. If omitted, a column with a usual name (``cell_type``,
        ``tumor_type``, ``label`` ...) is used when there is exactly one.
    orientation : ``"auto"``, ``"samples-as-rows"`` or ``"genes-as-rows"``.
        ``auto`` picks the side whose ids match the gene annotation better.
        An ``.h5ad`` file is always cells (``obs``) x genes (``var``).
    display_name : the name to use in messages (an upload's original name).
    labels_display_name : the same for the sample sheet.
    gene_map : a feature-to-gene table (a path, read by :func:`rnaimg_core.gene_map.read_gene_map`,
        or a :class:`~rnaimg_core.gene_map.GeneMap`) for matrices naming probes; their features are
        collapsed to genes. Without one, transcript ids (``ENST…``, ``NM_…``) are collapsed to their
        genes through the shipped annotation (see :mod:`rnaimg_core.gene_map`).
    collapse : how several features of one gene are combined: one of
        :data:`rnaimg_core.gene_map.COLLAPSE_RULES`.

    Returns
    -------
    Expression

    Raises
    ------
    InputError
        For every problem with the input, with a message naming it; a size over the
        :mod:`rnaimg_core.limits` policy (``max_file_bytes`` for the file itself,
        ``max_decompressed_bytes``, ``max_cells`` ...) names the limit and how to raise it.
    """
    path = Path(path)
    name = display_name or path.name
    if orientation not in ORIENTATIONS:
        raise InputError(f"orientation must be one of {', '.join(ORIENTATIONS)}, not {orientation!r}.")
    check_input_file(path, name)
    kind = file_kind(name)
    sheet = read_sample_sheet(labels_path, labels_display_name, label_column)
    features = _gene_map_of(gene_map, collapse)
    geo = None
    if sheet is None and kind not in ("parquet", "h5ad"):  # a GEO series matrix names its samples' labels
        from rnaimg_core.archives import geo_label_sheet

        sheet, geo = geo_label_sheet(path, name, label_column, current_limits().max_decompressed_bytes)
    if kind == "h5ad":
        if features is not None:
            raise InputError(f"{name}: a gene map applies to table files (CSV, TSV, Parquet); name the genes of "
                             "an .h5ad in its var (var_names or a gene id column).")
        _check_h5ad(path, name)
        adata = _open_h5ad(path, name)
        try:
            return Expression.from_anndata(adata, label_key=label_column, labels=sheet, source=name)
        finally:
            adata.file.close()

    frame = _read_table(path, name, kind, values=True, label_column=label_column)
    notes: dict = {}
    if frame.attrs.get("r_header"):
        notes["header"] = "R write.table style: the header has no field above the row ids"
    from rnaimg_core.archives import firehose_quantity

    frame, two_rows = firehose_quantity(frame, name)
    if two_rows:
        notes["header"] = two_rows
    if geo is not None:
        notes["geo_samples"] = geo
    by_map = None
    if features is not None and orientation == "auto" and sheet is None:
        from rnaimg_core.gene_map import orientation_from_map

        by_map = orientation_from_map(frame, features)
    frame, orient_notes = _orient(frame, by_map[0] if by_map else orientation, label_column, name,
                                  None if sheet is None else pd.Index(sheet.index))
    if by_map:
        orient_notes["orientation_reason"] = by_map[1]
    notes.update(orient_notes)
    if sheet is not None:
        labels, keep, notes["label_join"] = join_labels(frame.index.astype(str).to_numpy(), sheet)
        label_in_frame = label_column
    else:
        labels, keep, label_notes = labels_from_column(frame, label_column, name)
        notes.update(label_notes)
        label_in_frame = label_notes.get("label_column")
    if keep.size < frame.shape[0]:
        frame = frame.iloc[keep]
    if label_in_frame is not None and label_in_frame in frame.columns:
        frame = frame.drop(columns=[label_in_frame])
    values = _numeric_values(frame, name)
    from rnaimg_core.gene_map import expression_from_features

    expr = expression_from_features(values, frame.index.astype(str), frame.columns.astype(str), labels,
                                    source=name, gene_map=features, collapse=collapse)
    expr.notes.update(notes)
    return expr


def _gene_map_of(gene_map, collapse: str):
    """The gene map as a :class:`~rnaimg_core.gene_map.GeneMap` (read from a path), or None."""
    from rnaimg_core.gene_map import COLLAPSE_RULES, GeneMap, read_gene_map

    if collapse not in COLLAPSE_RULES:
        raise InputError(f"collapse must be one of {', '.join(COLLAPSE_RULES)}, not {collapse!r}.")
    if gene_map is None or isinstance(gene_map, GeneMap):
        return gene_map
    return read_gene_map(gene_map)


def read_expression_bytes(data: bytes, filename: str, *, labels: bytes | None = None,
                          labels_filename: str | None = None, **kwargs) -> Expression:
    """Read an uploaded file given as bytes (see :func:`read_expression` for ``kwargs``).

    The data touch disk only in a private temporary folder that is removed
    before this returns.
    """
    with tempfile.TemporaryDirectory(prefix="rnaimg-upload-") as tmp:
        path = Path(tmp) / ("matrix" + _suffix_of(filename))
        path.write_bytes(data)
        labels_path = None
        if labels is not None:
            labels_path = Path(tmp) / ("labels" + _suffix_of(labels_filename or "labels.csv"))
            labels_path.write_bytes(labels)
        return read_expression(path, labels_path=labels_path, display_name=filename,
                               labels_display_name=labels_filename, **kwargs)


def _suffix_of(name: str) -> str:
    lower = name.lower()
    suffixes = Path(lower).suffixes
    if len(suffixes) >= 2 and suffixes[-1] == ".gz":
        return "".join(suffixes[-2:])
    return suffixes[-1] if suffixes else ""


def check_input_file(path: str | os.PathLike, name: str | None = None, what: str = "") -> int:
    """Raise an InputError unless ``path`` is a readable, non-empty regular file within ``max_file_bytes``.

    A folder, a FIFO or a device is named as such (not "not found"); returns the size in bytes.
    """
    path = Path(path)
    label = f"{what}{name or path.name}"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{label}: file not found.") from None
    except OSError as exc:
        raise InputError(f"{label} cannot be opened: {exc.strerror or exc}.") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{label} is a folder, not a file; give the file inside it.")
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode)
                or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise InputError(f"{label} is {kind}; rnaimg reads regular files only (a file is read more than once).")
    size = path.stat().st_size
    check("max_file_bytes", size, label)
    if size == 0:
        raise InputError(f"{label} is empty.")
    if not os.access(path, os.R_OK):
        raise InputError(f"{label} is not readable (permission denied).")
    return size


def file_kind(name: str) -> str:
    """The reader for a file name: a text suffix (``.csv``, ``.tsv``, ``.txt``, ``.tab``), ``"parquet"`` or
    ``"h5ad"``."""
    suffix = _suffix_of(name)
    base = suffix[:-3] if suffix.endswith(".gz") else suffix
    if base in TABLE_SUFFIXES:
        return base
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".h5ad":
        return "h5ad"
    raise InputError(f"{name}: unsupported file type {suffix or '(no extension)'!r}; use {SUPPORTED_TYPES}.")


def _read_table(path: Path, name: str, kind: str, *, values: bool = False,
                label_column: str | None = None) -> pd.DataFrame:
    """A table with ids in the index, columns named as written; sizes bounded by :mod:`rnaimg_core.limits`.

    With ``values`` (an expression matrix, not a sample sheet) a text table's value columns are
    parsed straight to float32 (see :func:`_read_text_table`); ``label_column`` is left as written.
    """
    if kind == "parquet":
        frame = _read_parquet(path, name)
    else:
        frame = _read_text_table(path, name, kind, values=values, label_column=label_column)
    if frame.shape[0] == 0 or frame.shape[1] < 1:
        raise InputError(f"{name} has no data rows or only one column; expected ids in the first column "
                         "and numeric values in the others.")
    ids = frame.index.to_series()
    if ids.isna().any() or (ids.astype(str).str.strip() == "").any():
        row = int(np.flatnonzero((ids.isna() | (ids.astype(str).str.strip() == "")).to_numpy())[0]) + 2
        raise InputError(f"{name}: row {row} has no id in the first column {frame.index.name!r}.")
    frame.index = frame.index.astype(str).str.strip()
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _read_text_table(path: Path, name: str, kind: str, *, values: bool = False,
                     label_column: str | None = None) -> pd.DataFrame:
    """CSV/TSV (optionally gzip) read through a byte cap; detects R's one-field-short header.

    With ``values`` every column but the ids and the label column (``label_column``, or one with a
    usual label name) is parsed straight to float32: half the memory of pandas' float64, which
    matters at TCGA size (see ``tests/README.md``). A table holding other text columns is read
    again with pandas' own types, so it gets the same messages as before.
    """
    _refuse_long_table(path, name, kind)
    if values:
        try:
            return _parse_text_table(path, name, kind, as_values=True, label_column=label_column)
        except ValueError as exc:  # pandas' "could not convert string to float": a text column
            if type(exc) is not ValueError:  # InputError, ParserError, UnicodeDecodeError: a real problem
                raise
    return _parse_text_table(path, name, kind)


def _value_dtypes(header: list[str], label_column: str | None) -> dict:
    """read_csv dtypes by position: ids as text, label columns as pandas reads them, the rest float32.

    The label column's position is not known before the rows are counted (R's header is one
    field short), so both readings of its position are left to pandas.
    """
    labels = {str(label_column).strip().lower()} if label_column else set(LABEL_COLUMN_GUESSES)
    free = {i + shift for i, field in enumerate(header) if field.strip().lower() in labels for shift in (0, 1)}
    dtypes: dict = {i: np.float32 for i in range(1, len(header) + 1) if i not in free}
    dtypes[0] = str
    return dtypes


def _parse_text_table(path: Path, name: str, kind: str, *, as_values: bool = False,
                      label_column: str | None = None) -> pd.DataFrame:
    """One pass of :func:`_read_text_table`; with ``as_values`` a text cell in a value column raises a plain
    ValueError (pandas' own), every other problem an InputError."""
    try:
        with open_text(path, name) as text:
            sep, header, geo_metadata = read_header(text, name, kind)
            # the id column as text: ids like '001' or '1e5' must not become numbers
            dtypes = _value_dtypes(header, label_column) if as_values else {0: str}
            body = read_rows(text, name, sep, header, dtypes,
                             comment="!" if geo_metadata else None)  # GEO's !series_matrix_table_end
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError, csv.Error) as exc:
        if isinstance(exc, InputError) or (as_values and type(exc) is ValueError):
            raise
        raise InputError(f"{name} could not be read as {kind.lstrip('.').upper()}: {_first_line(exc)}") from None
    id_name, names = header_names(header, body.shape[1], name)
    if body.shape[1] < 2:
        raise InputError(f"{name} has no data rows or only one column; expected ids in the first column "
                         "and numeric values in the others.")
    frame = body.iloc[:, 1:]
    frame.columns = names
    frame.index = pd.Index(body.iloc[:, 0], name=id_name or None)
    frame.attrs["r_header"] = body.shape[1] == len(header) + 1
    return frame


# ---------------------------------------------------------------- text tables, shared with the big-run reader
# (rnaimg_core.stores reads a table block by block with these, so both readers agree on every file)

HEADER_CHARS_PER_FIELD = 256  # a header line longer than max_columns x this is not a table's header
CHUNK_CELLS = 2_000_000       # cells parsed per chunk while a table is streamed (about 8 MB of float32)


@contextlib.contextmanager
def open_bytes(path: str | os.PathLike, name: str) -> Iterator[CappedReader]:
    """The bytes of a text table (gunzipped when it is gzip), through the ``max_decompressed_bytes`` cap."""
    path = Path(path)
    compressed = is_gzip(path)
    if name.lower().endswith(".gz") and not compressed:
        raise InputError(f"{name} could not be read: its name ends in .gz but it is not a gzip file.")
    with gzip.open(path, "rb") if compressed else open(path, "rb") as raw:
        yield CappedReader(raw, current_limits().max_decompressed_bytes, name)


@contextlib.contextmanager
def open_text(path: str | os.PathLike, name: str) -> Iterator[TextIO]:
    """The text of a CSV/TSV file (gzip-compressed or not), strict UTF-8, through the ``max_decompressed_bytes``
    cap; a damaged gzip stream becomes an InputError."""
    try:
        with open_bytes(path, name) as capped, \
                io.TextIOWrapper(io.BufferedReader(capped), encoding="utf-8", errors="strict", newline="") as text:
            yield text
    except pd.errors.EmptyDataError:
        raise InputError(f"{name} has no data rows or only one column; expected ids in the first column "
                         "and numeric values in the others.") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise InputError(f"{name} could not be read: the gzip stream is damaged or truncated "
                         f"({_first_line(exc)}).") from None


def read_header(text: TextIO, name: str, kind: str) -> tuple[str, list[str], bool]:
    """(separator, header fields, GEO metadata seen) of a table's header line, bounded by ``max_columns`` before
    it is split. A GEO series matrix's metadata lines (``!``, ``^``) before the table are skipped."""
    max_columns = current_limits().max_columns
    cap = max_columns * HEADER_CHARS_PER_FIELD
    geo_metadata = False
    while True:
        line = text.readline(cap + 1)
        if len(line) > cap and not line.endswith("\n"):
            raise InputError(f"{name}: a line is longer than {cap:,} characters without ending, too long for "
                             f"a header of at most max_columns = {max_columns:,} fields. Is this a table? "
                             + how_to_raise("max_columns"))
        if not line.startswith(("!", "^")):
            break
        geo_metadata = True  # a GEO series matrix: metadata lines before the table
    if not line.strip():
        raise InputError(f"{name} is empty." if not geo_metadata else
                         f"{name}: a GEO file with metadata lines but no table after them.")
    sep = TABLE_SUFFIXES[kind] if kind != ".txt" else sniff_separator(line)
    check("max_columns", line.count(sep) + 1, f"{name}: the header line's field count")
    header = next(csv.reader([line.rstrip("\r\n")], delimiter=sep))
    return sep, header, geo_metadata


def read_rows(text: TextIO, name: str, sep: str, header: list[str], dtypes: dict, *,
              usecols: list[int] | None = None, comment: str | None = None) -> pd.DataFrame:
    """The rows after the header, streamed in chunks whose cells are counted against ``max_cells`` as they
    come: a table (or a decompression bomb) larger than the limit is refused once the limit is passed,
    never after reading it all. Each row's id counts :data:`ROW_ID_CELLS` cells."""
    max_cells = current_limits().max_cells
    width = (len(header) if usecols is None else len(usecols)) + ROW_ID_CELLS
    chunk_rows = max(1, min(CHUNK_CELLS, max_cells) // width + 1)  # one chunk never passes the limit far
    chunks, n_rows = [], 0
    for chunk in pd.read_csv(text, sep=sep, header=None, index_col=None, dtype=dtypes, usecols=usecols,
                             skip_blank_lines=True, chunksize=chunk_rows, low_memory=True, comment=comment):
        n_rows += chunk.shape[0]
        if table_cells(n_rows, chunk.shape[1]) > max_cells:
            check("max_cells", table_cells(n_rows, chunk.shape[1]),
                  f"{name}: at least {table_size(n_rows, chunk.shape[1])}")
        chunks.append(chunk)
    if not chunks:
        raise pd.errors.EmptyDataError("no rows")
    return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)


COUNT_BLOCK_BYTES = 4 * 2**20  # bytes per block while the lines of a text table are counted
_SKIPPED_LINE = re.compile(rb"\n(?=[\n\r!])")  # a line break before a blank line or a GEO metadata line


def _refuse_long_table(path: str | os.PathLike, name: str, kind: str) -> None:
    """Refuse, before parsing, a text table whose lines alone pass ``max_cells``.

    Parsing counts cells as it goes (:func:`read_rows`) but runs at about 10 M cells a second: a 1.4 MB gzip
    bomb of 1.4 GB of text took 30 s of a server core before it was refused. Counting line breaks runs at
    the speed of decompression, so this pass refuses it in seconds, under the same ``max_cells`` and
    ``max_decompressed_bytes``. Blank lines and GEO metadata lines (``!``) are not counted, nor the header,
    so the count never exceeds the rows the parser would read. An uncompressed file too small to hold
    ``max_cells`` cells (a row needs at least a byte per field) is not read twice.
    """
    path = Path(path)
    limits = current_limits()
    try:
        with open_text(path, name) as text:
            _, header, _ = read_header(text, name, kind)
    except (InputError, UnicodeDecodeError, OSError, ValueError):
        return  # the parse says what is wrong, in its own words
    max_rows = limits.max_cells // (len(header) + ROW_ID_CELLS)  # R's header is one field short: fewer cells
    if not is_gzip(path) and path.stat().st_size // max(1, len(header)) <= max_rows:
        return
    rows, previous = -1, b"\n"  # the header line is not a row; a first line may be metadata
    try:
        with open_bytes(path, name) as stream:
            while block := stream.read(COUNT_BLOCK_BYTES):
                rows += block.count(b"\n") - len(_SKIPPED_LINE.findall(previous + block[:1])) \
                    - len(_SKIPPED_LINE.findall(block))
                previous = block[-1:]
                if rows > max_rows:
                    check("max_cells", table_cells(rows, len(header)),
                          f"{name}: at least {table_size(rows, len(header))}")
    except (EOFError, zlib.error, OSError):
        return  # a damaged stream: the parse names it


def header_names(header: list[str], n_fields: int, name: str) -> tuple[str, list[str]]:
    """(id column name, value column names) for rows of ``n_fields`` fields under ``header``.

    R's ``write.table`` writes no header field above the row names: its header is one field short
    (the id column's name is then ``""``).
    """
    if n_fields == len(header):
        id_name, names = header[0], list(header[1:])
    elif n_fields == len(header) + 1:
        id_name, names = "", list(header)
    else:
        raise InputError(f"{name}: the header has {len(header)} fields but the rows have {n_fields}.")
    if id_name and id_name.strip() in [n.strip() for n in names]:
        raise InputError(f"{name}: the id column name {id_name!r} appears again in the header; "
                         "each column needs its own name.")
    return id_name, names


def table_cells(n_rows: int, n_columns: int) -> int:
    """What a table of ``n_rows`` x ``n_columns`` (ids included) counts against ``max_cells``."""
    return int(n_rows) * (int(n_columns) + ROW_ID_CELLS)


def table_size(n_rows: int, n_columns: int) -> str:
    return f"{n_rows:,} rows x {n_columns:,} columns (a row's id counted as {ROW_ID_CELLS} cells)"


def open_parquet(path: str | os.PathLike, name: str):
    """A ``pyarrow.parquet.ParquetFile``, refused when its pandas metadata describes a multi-level header or
    index (read from the footer, before pandas would try to rebuild the levels)."""
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
        pandas_meta = handle.schema_arrow.pandas_metadata or {}
    except Exception as exc:  # pyarrow raises many types for a broken file
        raise InputError(f"{name} could not be read as PARQUET: {_first_line(exc)}") from None
    if not isinstance(pandas_meta, dict):
        pandas_meta = {}
    levels = pandas_meta.get("column_indexes") or []
    index_columns = pandas_meta.get("index_columns") or []
    if (isinstance(levels, list) and len(levels) > 1) or (isinstance(index_columns, list) and len(index_columns) > 1):
        raise InputError(_MULTI_LEVEL.format(name=name))
    return handle


_MULTI_LEVEL = ("{name} has a multi-level header or index; write it with one level "
                "(ids in the first column, one column per gene or sample).")


def _read_parquet(path: Path, name: str) -> pd.DataFrame:
    """A Parquet table, its rows x columns checked from the metadata before reading."""
    meta = open_parquet(path, name).metadata
    check("max_cells", table_cells(meta.num_rows, meta.num_columns),
          f"{name}: {table_size(meta.num_rows, meta.num_columns)}")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow and pandas raise many types for a broken file
        raise InputError(f"{name} could not be read as PARQUET: {_first_line(exc)}") from None
    if isinstance(frame.columns, pd.MultiIndex) or isinstance(frame.index, pd.MultiIndex):
        raise InputError(_MULTI_LEVEL.format(name=name))
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    first = frame.columns[0]
    if (frame.columns == first).sum() > 1:
        raise InputError(f"{name}: the id column name {first!r} appears more than once in the header.")
    return frame.set_index(first)


def is_gzip(path: str | os.PathLike) -> bool:
    """Whether the file starts with gzip's magic bytes (its name may say otherwise)."""
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def sniff_separator(header_line: str) -> str:
    """Tab or comma for a ``.txt`` table: whichever its header line holds more of."""
    return "\t" if header_line.count("\t") >= header_line.count(",") else ","


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_h5ad(path: Path, name: str) -> None:
    """Check the declared sizes and type of an ``.h5ad``'s ``X`` from the HDF5 metadata, before anndata reads it.

    A dense ``X`` is a dataset (shape and dtype in its header); a sparse one a group with a ``shape``
    attribute and ``data``/``indices``/``indptr`` datasets. The matrix is densified as float32, so
    ``n_obs x n_vars x 4`` bytes must fit ``max_array_bytes`` and ``n_obs x n_vars`` ``max_cells``.
    """
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            if "X" not in handle:
                raise InputError(f"{name}: the AnnData has no expression matrix (X).")
            matrix = handle["X"]
            if isinstance(matrix, h5py.Dataset):
                shape, dtype, stored = matrix.shape, matrix.dtype, []
            else:
                shape = tuple(int(s) for s in np.asarray(matrix.attrs.get("shape", ())).ravel())
                if "data" not in matrix or "indices" not in matrix:
                    raise InputError(f"{name}: X is neither a dense matrix nor a sparse matrix AnnData can read.")
                dtype = matrix["data"].dtype
                stored = [("data", matrix["data"]), ("indices", matrix["indices"])]
            if len(shape) != 2:
                raise InputError(f"{name}: X must be a 2-D cells x genes matrix, not shape {shape}.")
            if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
                raise InputError(f"{name}: X holds {dtype} values; expression values must be numbers.")
            what = f"{name}: X declares {shape[0]:,} x {shape[1]:,}"
            check("max_cells", shape[0] * shape[1], what)
            check_array(shape, np.float32, what)
            for part, dataset in stored:
                check_array(dataset.shape, dataset.dtype, f"{name}: X/{part} declares {dataset.shape}")
    except InputError:
        raise
    except Exception as exc:  # h5py raises many types for a broken file
        raise InputError(f"{name} could not be read as AnnData (.h5ad): {_first_line(exc)}") from None


def _open_h5ad(path: Path, name: str) -> "anndata.AnnData":
    """Open an AnnData file backed (h5py, no pickle): ``obs``/``var`` in memory, the matrix on disk."""
    try:
        import anndata
        return anndata.read_h5ad(path, backed="r")
    except Exception as exc:  # anndata raises many types for a broken file
        raise InputError(f"{name} could not be read as AnnData (.h5ad): {_first_line(exc)}") from None


ID_COLUMN_HINTS = {
    "samples-as-rows": ("sample", "sample_id", "sampleid", "samples", "barcode", "cell", "cell_id", "id"),
    "genes-as-rows": ("gene", "genes", "gene_id", "geneid", "gene_symbol", "symbol", "gene_name", "feature",
                      "ensembl", "ensembl_id", "probe", "probe_id", "id_ref", "hugo_symbol", "entrez_id"),
}


class OrientationUnclear(InputError):
    """The table could be read either way round and the evidence does not decide; ``readings`` names both."""

    readings = ORIENTATIONS[1:]


def _orient(frame: pd.DataFrame, orientation: str, label_column: str | None, name: str,
            sheet_ids: pd.Index | None = None) -> tuple[pd.DataFrame, dict]:
    """Put samples in rows; returns the frame and ``{"orientation", "reason"}``.

    ``auto`` weighs, in order: the sample sheet's ids (the side they are found on holds the samples),
    a label column in the header, the name of the id column (``gene``, ``sample`` ...), and which side's
    ids match genes of the annotation by name (symbols, Ensembl, SYMBOL|ENTREZ). Plain numbers count as
    Entrez ids only when nothing else decides and the other side has no numbers. Weak or contradictory
    evidence raises :class:`OrientationUnclear` naming both readings instead of guessing.
    """
    reason = "given"
    if orientation == "auto":
        orientation, reason = guess_orientation(frame.index, frame.columns, label_column, name, sheet_ids)
    if orientation == "genes-as-rows":
        non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if non_numeric:
            # A gene-as-rows table may carry a description column next to the ids; drop text columns
            # only when they are plainly annotation (every other column numeric).
            extra = [c for c in non_numeric if str(c).lower() in ("description", "gene_name", "symbol", "name")]
            frame = frame.drop(columns=extra)
        frame = frame.T
    return frame, {"orientation": orientation, "orientation_reason": reason}


def guess_orientation(row_ids: pd.Index, column_ids, label_column: str | None, name: str,
                      sheet_ids: pd.Index | None = None) -> tuple[str, str]:
    """``(orientation, reason)`` of a table from its ids alone (row ids with the id column's name as the
    index name, column ids): the evidence of :func:`_orient`, shared by the big-run reader.

    Raises
    ------
    OrientationUnclear
        When the evidence is weak or contradictory.
    """
    row_ids, column_ids = pd.Index(row_ids), pd.Index(column_ids)
    shape = (len(row_ids), len(column_ids))
    if sheet_ids is not None:
        in_rows = int(row_ids.isin(sheet_ids).sum())
        in_columns = int(column_ids.isin(sheet_ids).sum())
        if in_rows != in_columns:
            rows_win = in_rows > in_columns
            return ("samples-as-rows" if rows_win else "genes-as-rows",
                    f"{max(in_rows, in_columns)} sample-sheet ids are {'row' if rows_win else 'column'} ids "
                    f"(against {min(in_rows, in_columns)} {'column' if rows_win else 'row'} ids)")
    label_column = label_column or guess_label_column(list(column_ids))
    if label_column is not None and label_column in column_ids:
        return "samples-as-rows", f"the header holds the label column {label_column!r}"
    id_name = str(row_ids.name or "").strip().lower()
    for reading, hints in ID_COLUMN_HINTS.items():
        if id_name in hints and id_name != "id":
            return reading, f"the id column is named {row_ids.name!r}"
    by_rows, rows_numeric = _gene_evidence(row_ids)
    by_columns, columns_numeric = _gene_evidence(column_ids)
    if max(by_rows, by_columns) >= 0.5 and min(by_rows, by_columns) <= 0.2 * max(by_rows, by_columns):
        rows_win = by_rows > by_columns
        return ("genes-as-rows" if rows_win else "samples-as-rows",
                f"{100 * max(by_rows, by_columns):.0f} % of the {'row' if rows_win else 'column'} ids name genes, "
                f"against {100 * min(by_rows, by_columns):.0f} % of the {'column' if rows_win else 'row'} ids")
    if max(by_rows, by_columns) < 0.05 and rows_numeric != columns_numeric and max(rows_numeric, columns_numeric) > 0.9:
        # only plain numbers on one side, text on the other: the numbers may be Entrez ids; they must also be
        # the longer side (a table has more genes than samples far more often than not)
        rows_win = rows_numeric > columns_numeric
        longer = shape[0] > shape[1] if rows_win else shape[1] > shape[0]
        if longer and _entrez_fraction(row_ids if rows_win else column_ids) >= 0.9:
            return ("genes-as-rows" if rows_win else "samples-as-rows",
                    f"the {'row' if rows_win else 'column'} ids are Entrez gene ids (numbers) and the more numerous side")
    raise OrientationUnclear(
        f"{name}: cannot tell whether samples are rows or columns (row ids like "
        f"{', '.join(map(str, row_ids[:3]))}; column ids like {', '.join(map(str, column_ids[:3]))}). "
        "Choose the reading: 'samples-as-rows' or 'genes-as-rows' (command line: --orientation; "
        "dashboard: the Orientation choice on the Data page), or give a sample sheet.")


def _gene_evidence(ids, limit: int = 2000) -> tuple[float, float]:
    """(fraction of ids naming a gene by text, fraction of ids that are plain numbers) of the first ``limit``."""
    text = pd.Index(list(ids)[:limit]).astype(str).str.strip()
    if text.size == 0:
        return 0.0, 0.0
    from rnaimg_core.annotation import map_gene_ids

    numeric = np.asarray(text.str.fullmatch(r"[0-9]+"), dtype=bool)
    words = text[~numeric]
    if not words.size:
        return 0.0, float(numeric.mean())
    routes = np.asarray(map_gene_ids(list(words)).routes).astype(str)
    # an alias or previous-symbol match is weak evidence: short sample ids (S1, P2, AD1) are often
    # some gene's old symbol or alias
    weak = (routes == "alias") | (routes == "previous_symbol")
    weight = np.select([routes == "unmapped", weak], [0.0, 0.25], 1.0)
    return float(weight.sum() / text.size), float(numeric.mean())


def _entrez_fraction(ids, limit: int = 2000) -> float:
    return mapped_fraction(pd.Index(list(ids)[:limit]).astype(str), limit)


def _numeric_values(frame: pd.DataFrame, name: str) -> np.ndarray:
    """All cells as float32, or an error naming the first non-numeric cell."""
    if frame.shape[1] == 0:
        raise InputError(f"{name} has no numeric columns.")
    dated = [c for c, t in zip(frame.columns, frame.dtypes)
             if pd.api.types.is_datetime64_any_dtype(t) or pd.api.types.is_timedelta64_dtype(t)]
    if dated:
        raise InputError(f"{name}: column {dated[0]!r} holds dates or times, not expression values.")
    if all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes.unique()):
        return frame.to_numpy(dtype=np.float32)
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna().to_numpy() & frame.notna().to_numpy()
    if bad.any():
        if bad.all():
            raise InputError(f"{name} has no numeric columns (is the orientation or the separator right?).")
        row, col = np.argwhere(bad)[0]
        n_bad_cols = int(bad.any(axis=0).sum())
        raise InputError(
            f"{name}: non-numeric value {str(frame.iat[row, col])!r} at sample {frame.index[row]!r}, "
            f"column {frame.columns[col]!r} ({int(bad.sum())} such cells in {n_bad_cols} column(s)). "
            "If that column holds labels, name it as the label column."
        )
    return numeric.to_numpy(dtype=np.float32)


def read_sample_sheet(path: str | os.PathLike | None, name: str | None,
                      label_column: str | None) -> pd.Series | None:
    """A sample sheet (CSV/TSV) as a Series: sample id -> label (None without a sheet); used by both readers."""
    if path is None:
        return None
    path = Path(path)
    name = name or path.name
    check_input_file(path, name, "Sample sheet ")
    kind = file_kind(name)
    if kind in ("parquet", "h5ad"):
        raise InputError(f"Sample sheet {name}: use a CSV or TSV file with a sample id column and a label column.")
    sheet = _read_table(path, name, kind).reset_index()
    cols = list(sheet.columns)
    id_col = next((c for c in cols if str(c).lower() in SAMPLE_ID_GUESSES), cols[0])
    if label_column is not None:
        if label_column not in cols:
            raise InputError(f"Sample sheet {name}: label column {label_column!r} not found; columns are "
                             f"{', '.join(map(str, cols))}.")
        lab_col = label_column
    else:
        others = [c for c in cols if c != id_col]
        lab_col = guess_label_column(others) or (others[0] if len(others) == 1 else None)
        if lab_col is None:
            raise InputError(f"Sample sheet {name}: cannot tell which column holds the labels; "
                             f"choose one of {', '.join(map(str, others))}.")
    ids = sheet[id_col].astype(str).str.strip()
    if ids.duplicated().any():
        raise InputError(f"Sample sheet {name}: sample id {ids[ids.duplicated()].iloc[0]!r} appears more than once.")
    labels = sheet[lab_col]
    keep = labels.notna() & (labels.astype(str).str.strip() != "")
    return pd.Series(labels[keep].astype(str).str.strip().to_numpy(), index=ids[keep].to_numpy(), name=str(lab_col))
