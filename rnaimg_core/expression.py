"""Reading expression matrices: files, orientation, labels, gene mapping, checks.

Everything flows through one object, :class:`Expression`: the matrix
(samples x genes), sample ids, labels and a gene table aligned with the
columns. Every problem with the input becomes an :class:`InputError` whose
message names the problem and, where possible, the row or column.
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from rnaimg_core.errors import InputError
from rnaimg_core.normalize import SCALE_MESSAGES, guess_scale

DEFAULT_MAX_BYTES = 1024 * 1024 * 1024  # 1 GiB on disk; the dashboard sets its own, smaller limit
ORIENTATIONS = ("auto", "samples-as-rows", "genes-as-rows")
LABEL_COLUMN_GUESSES = (
    "label", "labels", "cell_type", "celltype", "tumor_type", "tumour_type", "cancer_type",
    "tumor", "tumour", "class", "type", "project", "project_id", "disease", "subtype",
)
SAMPLE_ID_GUESSES = ("sample", "sample_id", "sampleid", "barcode", "id", "sample_barcode", "cell")
_TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".tab": "\t"}
SUPPORTED_TYPES = "CSV, TSV/TXT (optionally .gz), Parquet (.parquet) or AnnData (.h5ad)"


@dataclass
class Expression:
    """An expression matrix with its samples, labels and genes.

    Attributes
    ----------
    values : ndarray, shape (n_samples, n_genes), float32
    sample_ids : ndarray of str, shape (n_samples,)
    gene_ids : ndarray of str, shape (n_genes,), as given in the input
    labels : ndarray of str, shape (n_samples,), or None when unlabelled
    genes : DataFrame, one row per gene column: gene_id, entrez_id (-1 when
        unmapped), route, symbol, chromosome, start, end, strand, cytoband
    source : str, where the data came from (file name, demo, synthetic)
    notes : dict, the input report (see :meth:`report`)
    """

    values: np.ndarray
    sample_ids: np.ndarray
    gene_ids: np.ndarray
    labels: np.ndarray | None
    genes: pd.DataFrame
    source: str = ""
    notes: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return self.values.shape[0]

    @property
    def n_genes(self) -> int:
        return self.values.shape[1]

    @property
    def classes(self) -> list[str]:
        return [] if self.labels is None else sorted(set(self.labels.tolist()))

    def class_counts(self) -> dict[str, int]:
        if self.labels is None:
            return {}
        names, counts = np.unique(self.labels, return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts)}

    def report(self) -> dict:
        """A JSON-serialisable summary: sizes, classes, gene mapping, value scale."""
        values = self.values
        return {
            "source": self.source,
            "n_samples": self.n_samples,
            "n_genes": self.n_genes,
            "classes": self.class_counts(),
            "value_min": float(values.min()) if values.size else None,
            "value_max": float(values.max()) if values.size else None,
            "value_scale": guess_scale(values),
            "value_scale_message": SCALE_MESSAGES[guess_scale(values)],
            **self.notes,
        }

    def subset(self, samples: np.ndarray | slice) -> "Expression":
        """The same genes for a subset of samples (index array, mask or slice)."""
        return Expression(
            values=self.values[samples],
            sample_ids=self.sample_ids[samples],
            gene_ids=self.gene_ids,
            labels=None if self.labels is None else self.labels[samples],
            genes=self.genes,
            source=self.source,
            notes=self.notes,
        )


# ---------------------------------------------------------------- gene table

def annotate_genes(gene_ids: Sequence[str]) -> tuple[pd.DataFrame, dict]:
    """Map gene ids to the shipped annotation.

    Returns
    -------
    genes : DataFrame aligned with ``gene_ids`` (gene_id, entrez_id, route,
        symbol, chromosome, start, end, strand, cytoband)
    mapping : dict, the mapping summary (counts by route, unmapped examples)
    """
    from rnaimg_core import annotation

    mapping = annotation.map_gene_ids(list(gene_ids))
    table = annotation.gene_table()
    genes = pd.DataFrame({"gene_id": np.asarray(gene_ids, dtype=str),
                          "entrez_id": mapping.entrez_ids.astype(np.int64),
                          "route": mapping.routes})
    cols = ["entrez_id", "symbol", "chromosome", "start", "end", "strand", "cytoband"]
    genes = genes.merge(table[cols], on="entrez_id", how="left", validate="many_to_one")
    genes["symbol"] = genes["symbol"].fillna(genes["gene_id"].map(_symbol_from_id))
    genes["chromosome"] = genes["chromosome"].fillna("")
    summary = mapping.summary()
    duplicates = mapping.duplicate_entrez()
    summary["n_duplicate_entrez"] = len(duplicates)
    summary["duplicate_entrez_examples"] = list(duplicates[:10])
    summary["n_with_position"] = int(genes["start"].notna().sum())
    return genes, summary


def _symbol_from_id(gene_id: str) -> str:
    """Best display name for an unmapped id: the symbol part of SYMBOL|ENTREZ."""
    head = str(gene_id).split("|", 1)[0]
    return head if head and head != "?" else str(gene_id)


# ---------------------------------------------------------------- building

def from_arrays(
    values: np.ndarray,
    sample_ids: Sequence[str],
    gene_ids: Sequence[str],
    labels: Sequence[str] | None = None,
    *,
    source: str = "",
    require_mapped_genes: bool = True,
    min_class_size: int = 2,
) -> Expression:
    """Check arrays and wrap them as an :class:`Expression` with a gene table.

    Raises
    ------
    InputError
        On NaN/inf, duplicate ids, single-sample classes, or (with
        ``require_mapped_genes``) gene ids that match nothing in the annotation.
    """
    values = np.asarray(values, dtype=np.float32)
    sample_ids = np.asarray(sample_ids).astype(str)
    gene_ids = np.asarray(gene_ids).astype(str)
    if values.ndim != 2 or values.shape != (len(sample_ids), len(gene_ids)):
        raise InputError(f"Matrix shape {values.shape} does not match {len(sample_ids)} samples x {len(gene_ids)} genes.")
    if values.shape[0] == 0:
        raise InputError("The matrix has no samples.")
    if values.shape[1] == 0:
        raise InputError("The matrix has no numeric gene columns.")
    _check_unique(sample_ids, "sample")
    _check_unique(gene_ids, "gene")
    _check_finite(values, sample_ids, gene_ids)
    if labels is not None:
        labels = np.asarray(labels).astype(str)
        _check_classes(labels, sample_ids, min_class_size)
    genes, mapping = annotate_genes(gene_ids)
    if require_mapped_genes and mapping["n_mapped"] == 0:
        examples = ", ".join(gene_ids[:5])
        raise InputError(
            f"None of the {len(gene_ids)} gene ids matched the human annotation (examples: {examples}). "
            "Use HGNC symbols, Entrez ids, Ensembl gene ids or TCGA 'SYMBOL|ENTREZ' ids; "
            "if genes are the rows, choose orientation 'genes-as-rows'."
        )
    return Expression(values, sample_ids, gene_ids, labels, genes, source=source,
                      notes={"gene_mapping": mapping})


def _check_unique(ids: np.ndarray, what: str) -> None:
    names, counts = np.unique(ids, return_counts=True)
    dup = names[counts > 1]
    if dup.size:
        shown = ", ".join(map(str, dup[:5]))
        raise InputError(f"{dup.size} duplicate {what} id(s), for example: {shown}. Each {what} must appear once.")


def _check_finite(values: np.ndarray, sample_ids: np.ndarray, gene_ids: np.ndarray) -> None:
    finite = np.isfinite(values)
    if finite.all():
        return
    bad = np.argwhere(~finite)
    row, col = bad[0]
    kind = "missing (NaN)" if np.isnan(values[row, col]) else "infinite"
    raise InputError(
        f"{len(bad)} missing or infinite value(s); the first is {kind} at sample "
        f"{str(sample_ids[row])!r}, gene {str(gene_ids[col])!r}. Fill or remove them before upload."
    )


def _check_classes(labels: np.ndarray, sample_ids: np.ndarray, min_class_size: int) -> None:
    names, counts = np.unique(labels, return_counts=True)
    if "" in names:
        raise InputError("Some samples have an empty label; remove them or give them a class.")
    small = names[counts < min_class_size]
    if small.size:
        shown = ", ".join(repr(str(s)) for s in small[:5])
        raise InputError(
            f"{small.size} class(es) have fewer than {min_class_size} samples: {shown}. "
            "A class needs at least two samples to be split into training and validation; remove or merge it."
        )


# ---------------------------------------------------------------- files

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
    label_column : the label column, in the matrix or in the sample sheet. If
        omitted, a column with a usual name (``cell_type``, ``tumor_type``,
        ``label`` ...) is used when there is exactly one.
    orientation : ``"auto"``, ``"samples-as-rows"`` or ``"genes-as-rows"``.
        ``auto`` picks the side whose ids match the gene annotation better.
    max_bytes : files larger than this are refused.
    display_name : the name to use in messages (an upload's original name).

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
        frame, obs = _read_h5ad(path, name)
        orientation = "samples-as-rows"
    else:
        frame = _read_table(path, name, kind)
        obs = None
    notes: dict = {}
    frame, obs, notes["orientation"] = _orient(frame, obs, orientation, label_column, name)
    sample_ids = frame.index.astype(str).to_numpy()

    labels = None
    if labels_path is not None:
        sheet = _read_sample_sheet(Path(labels_path), labels_display_name or Path(labels_path).name, label_column)
        labels, keep, notes["label_join"] = _join_labels(sample_ids, sheet)
        frame = frame.iloc[keep]
        if label_column is not None and label_column in frame.columns:
            frame = frame.drop(columns=[label_column])
    else:
        column = label_column or _guess_label_column(list(frame.columns) + ([] if obs is None else list(obs.columns)))
        if column is not None:
            if obs is not None and column in obs.columns:
                series = obs[column]
            elif column in frame.columns:
                series = frame.pop(column)
            else:
                raise InputError(f"{name}: label column {column!r} not found. Columns include: "
                                 f"{', '.join(map(str, list(frame.columns)[:8]))}.")
            missing = series.isna().to_numpy() | (series.astype(str).str.strip() == "").to_numpy()
            if missing.any():
                notes["label_join"] = {"n_samples_without_label": int(missing.sum()),
                                       "samples_without_label": frame.index[missing][:10].astype(str).tolist(),
                                       "n_labels_without_sample": 0, "labels_without_sample": []}
                frame = frame.loc[~missing]
                series = series[~missing]
            labels = series.astype(str).str.strip().to_numpy()
            notes["label_column"] = column
    if frame.shape[0] == 0:
        raise InputError(f"{name}: no samples left after joining labels.")
    values = _numeric_values(frame, name)
    expr = from_arrays(values, frame.index.astype(str), frame.columns.astype(str), labels, source=name)
    expr.notes.update(notes)
    return expr


def read_expression_bytes(data: bytes, filename: str, *, labels: bytes | None = None,
                          labels_filename: str | None = None, **kwargs) -> Expression:
    """Read an uploaded file given as bytes; the data touch disk only in a private
    temporary folder that is removed before this returns."""
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


def _read_h5ad(path: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read an AnnData file with h5py-backed anndata (no pickle involved)."""
    try:
        import anndata
        adata = anndata.read_h5ad(path)
    except Exception as exc:  # anndata raises many types for a broken file
        raise InputError(f"{name} could not be read as AnnData (.h5ad): {_first_line(exc)}") from None
    matrix = adata.X
    if matrix is None:
        raise InputError(f"{name}: the AnnData file has no expression matrix (X).")
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    frame = pd.DataFrame(np.asarray(matrix, dtype=np.float32),
                         index=adata.obs_names.astype(str), columns=adata.var_names.astype(str))
    obs = adata.obs.copy()
    obs.index = frame.index
    return frame, obs


def _guess_label_column(columns: list) -> str | None:
    lowered = {str(c).lower(): str(c) for c in columns}
    hits = [lowered[g] for g in LABEL_COLUMN_GUESSES if g in lowered]
    return hits[0] if hits else None


def _mapped_fraction(ids: Sequence[str], limit: int = 2000) -> float:
    from rnaimg_core import annotation

    ids = [str(i) for i in list(ids)[:limit]]
    if not ids:
        return 0.0
    return annotation.map_gene_ids(ids).n_mapped / len(ids)


def _orient(frame: pd.DataFrame, obs: pd.DataFrame | None, orientation: str, label_column: str | None,
            name: str) -> tuple[pd.DataFrame, pd.DataFrame | None, str]:
    """Put samples in rows. ``auto`` compares how well header and first column match genes."""
    if orientation == "auto":
        label_column = label_column or _guess_label_column(list(frame.columns))
        if label_column is not None and label_column in frame.columns:
            orientation = "samples-as-rows"
        else:
            by_columns = _mapped_fraction(frame.columns)
            by_rows = _mapped_fraction(frame.index)
            orientation = "genes-as-rows" if by_rows > by_columns else "samples-as-rows"
    if orientation == "genes-as-rows":
        non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if non_numeric:
            # A gene-as-rows table may carry a description column next to the ids; drop text columns
            # only when they are plainly annotation (every other column numeric).
            extra = [c for c in non_numeric if str(c).lower() in ("description", "gene_name", "symbol", "name")]
            frame = frame.drop(columns=extra)
        frame = frame.T
    return frame, obs, orientation


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


def _read_sample_sheet(path: Path, name: str, label_column: str | None) -> pd.Series:
    """A sample sheet as a Series: sample id -> label."""
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
        lab_col = _guess_label_column(others) or (others[0] if len(others) == 1 else None)
        if lab_col is None:
            raise InputError(f"Sample sheet {name}: cannot tell which column holds the labels; "
                             f"choose one of {', '.join(map(str, others))}.")
    ids = sheet[id_col].astype(str).str.strip()
    if ids.duplicated().any():
        raise InputError(f"Sample sheet {name}: sample id {ids[ids.duplicated()].iloc[0]!r} appears more than once.")
    labels = sheet[lab_col]
    keep = labels.notna() & (labels.astype(str).str.strip() != "")
    return pd.Series(labels[keep].astype(str).str.strip().to_numpy(), index=ids[keep].to_numpy(), name=str(lab_col))


def _join_labels(sample_ids: np.ndarray, sheet: pd.Series) -> tuple[np.ndarray, np.ndarray, dict]:
    in_sheet = pd.Index(sheet.index)
    has_label = in_sheet.get_indexer(sample_ids) >= 0
    if not has_label.any():
        raise InputError(
            f"No sample id of the matrix is in the sample sheet (matrix: {', '.join(sample_ids[:3])}; "
            f"sheet: {', '.join(map(str, sheet.index[:3]))}). Check the id column and the orientation."
        )
    orphan_labels = sorted(set(sheet.index) - set(sample_ids))
    keep = np.flatnonzero(has_label)
    labels = sheet.reindex(sample_ids[keep]).to_numpy().astype(str)
    report = {
        "label_column": sheet.name,
        "n_samples_without_label": int((~has_label).sum()),
        "samples_without_label": sample_ids[~has_label][:10].tolist(),
        "n_labels_without_sample": len(orphan_labels),
        "labels_without_sample": orphan_labels[:10],
    }
    return labels, keep, report


# ---------------------------------------------------------------- splits

def holdout_split(labels: np.ndarray | None, n_samples: int, fraction: float, seed: int = 0) -> np.ndarray:
    """Mark a stratified ``fraction`` of samples as held out.

    Held-out samples are kept out of everything that is fitted (layout, normalisation,
    network) and used only to report honest accuracy.

    Returns
    -------
    ndarray of str, shape (n_samples,): ``"fit"`` or ``"holdout"``
    """
    split = np.full(n_samples, "fit", dtype="<U7")
    if fraction <= 0:
        return split
    if not 0 < fraction < 1:
        raise InputError("The held-out fraction must be between 0 and 1.")
    from sklearn.model_selection import train_test_split

    try:
        _, held = train_test_split(np.arange(n_samples), test_size=fraction, random_state=seed, stratify=labels)
    except ValueError as exc:
        raise InputError(f"Cannot hold out {fraction:.0%} of the samples stratified by class: {exc}") from None
    split[held] = "holdout"
    return split


# ---------------------------------------------------------------- shipped data

def load_demo() -> Expression:
    """The embedded real demo: oligodendroglioma single cells (Tirosh et al. 2016)."""
    from rnaimg_core import demo

    arrays = demo.load_demo_arrays()
    expr = from_arrays(arrays["values"], arrays["sample_ids"], arrays["gene_ids"], arrays["labels"],
                       source=f"demo: {demo.DEMO_NAME}")
    expr.notes["orientation"] = "samples-as-rows"
    return expr


def load_synthetic(n_samples: int = 600, n_genes: int = 20531, n_classes: int = 33, seed: int = 0,
                   **kwargs) -> Expression:
    """Seeded synthetic TCGA-like data, labelled synthetic in its source and class names."""
    from rnaimg_core import synthetic

    data = synthetic.make_synthetic(n_samples=n_samples, n_genes=n_genes, n_classes=n_classes,
                                    seed=seed, **kwargs)
    expr = from_arrays(data.values, data.sample_ids, data.gene_ids, data.labels,
                       source=f"synthetic (seed {seed}, {n_samples} x {n_genes}, {n_classes} classes)")
    expr.notes["orientation"] = "samples-as-rows"
    expr.notes["synthetic"] = data.description
    return expr


def to_frame(expr: Expression) -> pd.DataFrame:
    """Samples x genes DataFrame with a ``label`` column first (for export)."""
    frame = pd.DataFrame(expr.values, index=pd.Index(expr.sample_ids, name="sample_id"), columns=expr.gene_ids)
    if expr.labels is not None:
        frame.insert(0, "label", expr.labels)
    return frame


def write_csv_bytes(expr: Expression) -> bytes:
    buffer = io.StringIO()
    to_frame(expr).to_csv(buffer)
    return buffer.getvalue().encode()
