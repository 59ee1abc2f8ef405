"""Files to :class:`~rnaimg_core.expression.Expression`: formats, orientation, sample sheets, size limits.

Reads CSV, TSV/TXT (optionally gzipped), Parquet and AnnData ``.h5ad`` files,
puts samples in rows, joins labels from a column or a sample sheet, and hands
the arrays to :func:`~rnaimg_core.expression.from_arrays` (or
:meth:`~rnaimg_core.expression.Expression.from_anndata`) for the checks. An
``.h5ad`` file is opened backed, so a sparse matrix is densified block by block
rather than whole. Every problem becomes an :class:`InputError` naming the file.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rnaimg_core.errors import InputError
from rnaimg_core.expression import (
    Expression,
    from_arrays,
    guess_label_column,
    join_labels,
    labels_from_column,
    mapped_fraction,
)

if TYPE_CHECKING:
    import anndata

DEFAULT_MAX_BYTES = 1024 * 1024 * 1024  # 1 GiB on disk; the dashboard sets its own, smaller limit
ORIENTATIONS = ("auto", "samples-as-rows", "genes-as-rows")
SAMPLE_ID_GUESSES = ("sample", "sample_id", "sampleid", "barcode", "id", "sample_barcode", "cell")
_TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".tab": "\t"}
SUPPORTED_TYPES = "CSV, TSV/TXT (optionally .gz), Parquet (.parquet) or AnnData (.h5ad)"


def read_expression(
    path: str | os.PathLike,
    *,
    labels_path: str | os.PathLike | None = None,
    label_column: str | None = None,
    orientation: str = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
    display_name: str | None = None,
    labels_display_name: str | None = None,
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
    max_bytes : files larger than this are refused.
    display_name : the name to use in messages (an upload's original name).
    labels_display_name : the same for the sample sheet.

    Returns
    -------
    Expression

    Raises
    ------
    InputError
        For every problem with the input, with a message naming it.
    """
    path = Path(path)
    name = display_name or path.name
    if orientation not in ORIENTATIONS:
        raise InputError(f"orientation must be one of {', '.join(ORIENTATIONS)}, not {orientation!r}.")
    if not path.is_file():
        raise InputError(f"{name}: file not found.")
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(f"{name} is {size / 2**20:.1f} MB, over the limit of {max_bytes / 2**20:.0f} MB.")
    if size == 0:
        raise InputError(f"{name} is empty.")
    kind = _file_kind(name)
    if kind == "h5ad":
        adata = _open_h5ad(path, name)
        try:
            sheet = _read_sample_sheet(labels_path, labels_display_name, label_column)
            return Expression.from_anndata(adata, label_key=label_column, labels=sheet, source=name)
        finally:
            adata.file.close()

    frame = _read_table(path, name, kind)
    notes: dict = {}
    frame, notes["orientation"] = _orient(frame, orientation, label_column)
    sheet = _read_sample_sheet(labels_path, labels_display_name, label_column)
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
        frame.pop(label_in_frame)
    values = _numeric_values(frame, name)
    expr = from_arrays(values, frame.index.astype(str), frame.columns.astype(str), labels, source=name)
    expr.notes.update(notes)
    return expr


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


def _file_kind(name: str) -> str:
    suffix = _suffix_of(name)
    base = suffix[:-3] if suffix.endswith(".gz") else suffix
    if base in _TABLE_SUFFIXES:
        return base
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".h5ad":
        return "h5ad"
    raise InputError(f"{name}: unsupported file type {suffix or '(no extension)'!r}; use {SUPPORTED_TYPES}.")


def _read_table(path: Path, name: str, kind: str) -> pd.DataFrame:
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
            if not isinstance(frame.index, pd.RangeIndex):
                frame = frame.reset_index()
        else:
            sep = _TABLE_SUFFIXES[kind]
            if kind == ".txt":
                sep = _sniff_separator(path)
            frame = pd.read_csv(path, sep=sep, index_col=None, low_memory=False, compression="infer")
            # pandas renames a repeated header 'TP53' to 'TP53.1'; keep the names as written
            header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, compression="infer")
            if header.shape[1] == frame.shape[1]:
                frame.columns = header.iloc[0].fillna("").astype(str).tolist()
    except pd.errors.EmptyDataError:
        raise InputError(f"{name} is empty.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise InputError(f"{name} could not be read as {kind.lstrip('.').upper()}: {_first_line(exc)}") from None
    if frame.shape[0] == 0 or frame.shape[1] < 2:
        raise InputError(f"{name} has no data rows or only one column; expected ids in the first column "
                         "and numeric values in the others.")
    first = frame.columns[0]
    ids = frame[first]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0]) + 2
        raise InputError(f"{name}: row {row} has no id in the first column {first!r}.")
    frame = frame.set_index(first)
    frame.index = frame.index.astype(str).str.strip()
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _sniff_separator(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", errors="replace") as handle:
        head = handle.readline()
    return "\t" if head.count("\t") >= head.count(",") else ","


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _open_h5ad(path: Path, name: str) -> "anndata.AnnData":
    """Open an AnnData file backed (h5py, no pickle): ``obs``/``var`` in memory, the matrix on disk."""
    try:
        import anndata
        return anndata.read_h5ad(path, backed="r")
    except Exception as exc:  # anndata raises many types for a broken file
        raise InputError(f"{name} could not be read as AnnData (.h5ad): {_first_line(exc)}") from None


def _orient(frame: pd.DataFrame, orientation: str, label_column: str | None) -> tuple[pd.DataFrame, str]:
    """Put samples in rows. ``auto`` compares how well header and first column match genes."""
    if orientation == "auto":
        label_column = label_column or guess_label_column(list(frame.columns))
        if label_column is not None and label_column in frame.columns:
            orientation = "samples-as-rows"
        else:
            by_columns = mapped_fraction(frame.columns)
            by_rows = mapped_fraction(frame.index)
            orientation = "genes-as-rows" if by_rows > by_columns else "samples-as-rows"
    if orientation == "genes-as-rows":
        non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if non_numeric:
            # A gene-as-rows table may carry a description column next to the ids; drop text columns
            # only when they are plainly annotation (every other column numeric).
            extra = [c for c in non_numeric if str(c).lower() in ("description", "gene_name", "symbol", "name")]
            frame = frame.drop(columns=extra)
        frame = frame.T
    return frame, orientation


def _numeric_values(frame: pd.DataFrame, name: str) -> np.ndarray:
    """All cells as float32, or an error naming the first non-numeric cell."""
    if frame.shape[1] == 0:
        raise InputError(f"{name} has no numeric columns.")
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


def _read_sample_sheet(path: str | os.PathLike | None, name: str | None,
                       label_column: str | None) -> pd.Series | None:
    """A sample sheet as a Series: sample id -> label (None without a sheet)."""
    if path is None:
        return None
    path = Path(path)
    name = name or path.name
    if not path.is_file() or path.stat().st_size == 0:
        raise InputError(f"Sample sheet {name} is missing or empty.")
    kind = _file_kind(name)
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
