"""The expression object: matrix, samples, labels and genes, checked once at the door.

Everything flows through one object, :class:`Expression`: the matrix
(samples x genes), sample ids, labels and a gene table aligned with the
columns. It is built from arrays (:func:`from_arrays`), from an AnnData
(:meth:`Expression.from_anndata`, or :func:`as_expression` for "either"), from
files (:mod:`rnaimg_core.readers`) or from the shipped data (:func:`load_demo`,
:func:`load_synthetic`). Every problem with the input becomes an
:class:`InputError` whose message names the problem and, where possible, the
row or column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd
import scipy.sparse

from rnaimg_core import annotation, demo, synthetic
from rnaimg_core.errors import InputError
from rnaimg_core.limits import check_array
from rnaimg_core.normalize import count_check, depth_message, guess_scale, scale_message

if TYPE_CHECKING:
    import anndata

    from rnaimg_core.annotation import GeneMapping

LABEL_COLUMN_GUESSES = (
    "label", "labels", "cell_type", "celltype", "tumor_type", "tumour_type", "cancer_type",
    "tumor", "tumour", "class", "type", "project", "project_id", "disease", "subtype",
)
# AnnData var columns that may hold gene ids when var_names do not (first usable one wins)
GENE_ID_COLUMNS = (
    "gene_ids", "gene_id", "gene_symbols", "gene_symbol", "symbol", "gene_name", "feature_name",
    "ensembl_id", "ensembl", "entrez_id",
)
_DENSE_CHUNK_BYTES = 64 * 2**20  # sparse input is densified this many bytes of output at a time

__all__ = [
    "Expression", "from_arrays", "as_expression", "annotate_genes", "load_demo", "load_synthetic",
    "to_frame", "is_anndata", "anndata_matrix", "dense_rows", "LABEL_COLUMN_GUESSES", "GENE_ID_COLUMNS",
]


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
    obs : DataFrame or None, per-sample columns of the input (an AnnData's
        ``obs``), one row per sample in ``sample_ids`` order
    var : DataFrame or None, per-gene columns of the input (an AnnData's
        ``var``), one row per gene; kept apart from ``genes``, the shipped
        annotation, so genome builds never mix
    """

    values: np.ndarray
    sample_ids: np.ndarray
    gene_ids: np.ndarray
    labels: np.ndarray | None
    genes: pd.DataFrame
    source: str = ""
    notes: dict = field(default_factory=dict)
    obs: pd.DataFrame | None = None
    var: pd.DataFrame | None = None

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
        depth = count_check(values)
        return {
            "source": self.source,
            "n_samples": self.n_samples,
            "n_genes": self.n_genes,
            "classes": self.class_counts(),
            "value_min": float(values.min()) if values.size else None,
            "value_max": float(values.max()) if values.size else None,
            "value_scale": guess_scale(values),
            "value_scale_message": scale_message(values),
            "looks_like_counts": depth.counts,
            "depth_evidence": depth.reason,
            "depth_message": depth_message(values),
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
            obs=None if self.obs is None else self.obs.iloc[samples],
            var=self.var,
        )

    @classmethod
    def from_anndata(
        cls,
        adata: "anndata.AnnData",
        label_key: str | None = None,
        layer: str | None = None,
        *,
        labels: pd.Series | None = None,
        source: str = "AnnData",
    ) -> "Expression":
        """Check an AnnData and wrap it as an :class:`Expression`.

        Parameters
        ----------
        adata : AnnData, cells or samples (``obs``) x genes (``var``); may be
            backed (``anndata.read_h5ad(path, backed="r")``): a sparse or on-disk
            matrix is densified block by block into one float32 array.
        label_key : the ``obs`` column holding the labels. If omitted, a column
            with a usual name (``cell_type``, ``label`` ...) is used when present.
            Samples without a label are dropped (reported in ``notes["label_join"]``).
        layer : take values from ``adata.layers[layer]`` instead of ``adata.X``.
        labels : a Series sample id -> label (a sample sheet); overrides ``label_key``.
        source : the name to use in messages and in :attr:`source`.

        Returns
        -------
        Expression
            ``sample_ids`` are ``obs_names``; ``gene_ids`` are ``var_names``
            unless these are AnnData's positional names ("0", "1", ...) or match
            no gene of the annotation, in which case the first ``var`` column
            named in :data:`GENE_ID_COLUMNS` that matches is used (noted in
            ``notes["gene_id_column"]``). ``obs`` and ``var`` are kept.

        Raises
        ------
        InputError
            For a missing layer or label column, and every check of :func:`from_arrays`.
        """
        matrix, gene_ids, gene_id_column = anndata_matrix(adata, layer, name=source)
        sample_ids = adata.obs_names.astype(str).to_numpy()
        if labels is not None:
            label_values, keep, report = join_labels(sample_ids, labels)
            notes = {"label_join": report}
        else:
            label_values, keep, notes = labels_from_column(adata.obs, label_key, source)
        positional = gene_id_column is None and is_positional(gene_ids)
        expr = from_arrays(dense_rows(matrix, keep), sample_ids[keep], gene_ids, label_values, source=source,
                           map_genes=not positional)
        if positional:
            expr.notes["gene_ids_note"] = ("The AnnData names its genes only by position (0, 1, ...); these are "
                                           "not matched to the annotation.")
        if gene_id_column is not None:
            expr.notes["gene_id_column"] = gene_id_column
        expr.notes["orientation"] = "samples-as-rows"
        expr.notes.update(notes)
        expr.obs = adata.obs.iloc[keep].copy()
        expr.var = adata.var.copy()
        return expr

    def to_anndata(self, *, split: Sequence[str] | None = None) -> "anndata.AnnData":
        """This expression as an AnnData (X float32, samples x genes).

        Parameters
        ----------
        split : optional per-sample ``"fit"``/``"holdout"`` marks (see
            :mod:`rnaimg_core.splits`), written to ``obs["split"]``.

        Returns
        -------
        AnnData
            ``obs``: the input's sample columns, plus ``label`` (and ``split``);
            ``var``: the gene table (entrez_id, route, symbol, chromosome, start,
            end, strand, cytoband) plus input gene columns of other names;
            ``uns["source"]``.
        """
        import anndata  # noqa: PLC0415 (lazy: anndata loads in ~1 s; only .h5ad paths need it)

        obs = pd.DataFrame(index=pd.Index(self.sample_ids)) if self.obs is None else self.obs.copy()
        obs.index = pd.Index(self.sample_ids)
        if self.labels is not None:
            obs["label"] = pd.Categorical(self.labels)
        if split is not None:
            obs["split"] = pd.Categorical(np.asarray(split).astype(str))
        var = self.genes.drop(columns=["gene_id"]).set_axis(pd.Index(self.gene_ids), axis=0)
        if self.var is not None:
            extra = [c for c in self.var.columns if c not in var.columns]
            var = var.join(self.var[extra].set_axis(var.index, axis=0))
        return anndata.AnnData(X=np.asarray(self.values, dtype=np.float32), obs=obs, var=var,
                               uns={"source": self.source})


def as_expression(data: Any, *, label_key: str | None = None, layer: str | None = None) -> Expression:
    """Accept an :class:`Expression` as is, or convert an AnnData.

    Parameters
    ----------
    data : Expression or AnnData
    label_key, layer : for an AnnData, see :meth:`Expression.from_anndata`.

    Raises
    ------
    InputError
        For any other type.
    """
    if isinstance(data, Expression):
        return data
    if is_anndata(data):
        return Expression.from_anndata(data, label_key=label_key, layer=layer)
    raise InputError(f"Expected an Expression or an AnnData, got {type(data).__name__}; "
                     "read files with rnaimg_core.readers.read_expression.")


def is_anndata(data: Any) -> bool:
    """Whether ``data`` is an AnnData object (without importing anndata for other types)."""
    if type(data).__module__.split(".")[0] != "anndata":
        return False
    import anndata  # noqa: PLC0415 (lazy: anndata loads in ~1 s; only .h5ad paths need it)

    return isinstance(data, anndata.AnnData)


def anndata_matrix(adata: "anndata.AnnData", layer: str | None = None, *,
                   name: str = "AnnData") -> tuple[Any, np.ndarray, str | None]:
    """The matrix of an AnnData and its gene ids, chosen by the rule of :meth:`Expression.from_anndata`.

    Returns
    -------
    matrix : ``X`` or ``layers[layer]`` as stored (dense, sparse or backed)
    gene_ids : ndarray of str, shape (n_vars,)
    gene_id_column : the ``var`` column the ids come from, or None for ``var_names``
    """
    if layer is None:
        matrix = adata.X
        if matrix is None:
            raise InputError(f"{name}: the AnnData has no expression matrix (X).")
    elif layer not in adata.layers:
        raise InputError(f"{name}: layer {layer!r} not found; layers are: "
                         f"{', '.join(map(str, adata.layers.keys())) or '(none)'}.")
    else:
        matrix = adata.layers[layer]
    column = gene_id_column(adata)
    ids = adata.var_names if column is None else adata.var[column]
    return matrix, ids.astype(str).to_numpy(), column


def gene_id_column(adata: "anndata.AnnData") -> str | None:
    """None when ``var_names`` are usable gene ids, else the first ``var`` column that is."""
    names = adata.var_names.astype(str)
    if not is_positional(names) and mapped_fraction(names) > 0:
        return None
    by_lower = {str(c).lower(): c for c in adata.var.columns}
    for key in GENE_ID_COLUMNS:
        if key in by_lower and mapped_fraction(adata.var[by_lower[key]].astype(str)) > 0:
            return by_lower[key]
    return None


def is_positional(ids: Sequence[str]) -> bool:
    """Whether ids are AnnData's positional names "0", "1", ... (row numbers, never gene ids)."""
    ids = np.asarray(ids).astype(str)
    return bool(ids.size) and np.array_equal(ids, np.arange(ids.size).astype(str))


def dense_rows(matrix: Any, rows: np.ndarray | None = None) -> np.ndarray:
    """Rows of a dense, scipy sparse or on-disk matrix as one float32 array.

    The output is preallocated and filled one block of input rows at a time, so a
    sparse or backed matrix is never densified whole (nor in float64).

    Parameters
    ----------
    matrix : 2-D array-like supporting ``matrix[start:stop]`` (ndarray, scipy
        sparse, h5py dataset, AnnData backed matrix)
    rows : increasing row indices to keep; all rows when omitted.

    Returns
    -------
    ndarray, shape (len(rows), n_columns), float32
    """
    n_rows, n_cols = matrix.shape
    rows = np.arange(n_rows) if rows is None else np.asarray(rows, dtype=np.int64)
    check_array((rows.size, n_cols), np.float32, f"A dense {rows.size:,} x {n_cols:,} matrix")
    if isinstance(matrix, np.ndarray) and rows.size == n_rows:
        return np.asarray(matrix, dtype=np.float32)
    out = np.empty((rows.size, n_cols), dtype=np.float32)
    step = max(1, _DENSE_CHUNK_BYTES // max(1, 4 * n_cols))
    done = 0
    for start in range(0, n_rows, step):
        stop = min(n_rows, start + step)
        picked = rows[done:np.searchsorted(rows, stop)] - start
        if picked.size:
            block = matrix[start:stop]
            block = block.toarray() if scipy.sparse.issparse(block) else np.asarray(block)
            out[done:done + picked.size] = block[picked]
            done += picked.size
    return out


# ---------------------------------------------------------------- labels

def guess_label_column(columns: list) -> str | None:
    """The first column with a usual label name (see :data:`LABEL_COLUMN_GUESSES`), if any."""
    lowered = {str(c).lower(): str(c) for c in columns}
    hits = [lowered[g] for g in LABEL_COLUMN_GUESSES if g in lowered]
    return hits[0] if hits else None


def labels_from_column(table: pd.DataFrame, column: str | None, name: str) -> tuple[np.ndarray | None, np.ndarray, dict]:
    """Labels from a column of a per-sample table; samples without a label are dropped.

    Parameters
    ----------
    table : one row per sample, index = sample ids
    column : the label column; guessed from the column names when None.
    name : the input's name, for messages.

    Returns
    -------
    labels : ndarray of str, or None when no label column is given or guessed
    keep : ndarray of int, the rows kept (all rows when unlabelled)
    notes : dict with ``label_join`` (when samples were dropped) and ``label_column``
    """
    column = column or guess_label_column(list(table.columns))
    if column is None:
        return None, np.arange(len(table)), {}
    if column not in table.columns:
        raise InputError(f"{name}: label column {column!r} not found. Columns include: "
                         f"{', '.join(map(str, list(table.columns)[:8]))}.")
    series = table[column]
    if isinstance(series, pd.DataFrame):
        raise InputError(f"{name}: the label column {column!r} appears more than once in the header.")
    text = series.astype(str).str.strip()
    missing = series.isna().to_numpy() | (text == "").to_numpy()
    notes: dict = {}
    if missing.any():
        notes["label_join"] = {"n_samples_without_label": int(missing.sum()),
                               "samples_without_label": table.index[missing][:10].astype(str).tolist(),
                               "n_labels_without_sample": 0, "labels_without_sample": []}
    notes["label_column"] = column
    keep = np.flatnonzero(~missing)
    if keep.size == 0:
        raise InputError(f"{name}: no samples left after joining labels.")
    return text.to_numpy()[keep], keep, notes


def join_labels(sample_ids: np.ndarray, sheet: pd.Series) -> tuple[np.ndarray, np.ndarray, dict]:
    """Labels of a sample sheet (Series sample id -> label) for the matrix's samples.

    Returns
    -------
    labels : ndarray of str, for the kept samples
    keep : ndarray of int, the matrix rows that have a label
    report : dict, samples without label and labels without sample
    """
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


# ---------------------------------------------------------------- gene table

def annotate_genes(gene_ids: Sequence[str], mapping: "GeneMapping | None" = None) -> tuple[pd.DataFrame, dict]:
    """Map gene ids to the shipped annotation (or take ``mapping``, one Entrez id and route per id, as made).

    Returns
    -------
    genes : DataFrame aligned with ``gene_ids`` (gene_id, entrez_id, route,
        symbol, chromosome, start, end, strand, cytoband)
    mapping : dict, the mapping summary (counts by route, unmapped examples)
    """
    if mapping is None:
        mapping = annotation.map_gene_ids(list(gene_ids))
    elif mapping.n_ids != len(gene_ids):
        raise ValueError("the mapping must hold one Entrez id and route per gene id")
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


def mapped_fraction(ids: Sequence[str], limit: int = 2000) -> float:
    """Fraction of the first ``limit`` ids that match a gene of the shipped annotation."""
    ids = [str(i) for i in list(ids)[:limit]]
    if not ids:
        return 0.0
    return annotation.map_gene_ids(ids).n_mapped / len(ids)


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
    require_mapped_genes: bool = False,
    min_class_size: int = 2,
    map_genes: bool = True,
    mapping: "GeneMapping | None" = None,
) -> Expression:
    """Check arrays and wrap them as an :class:`Expression` with a gene table.

    Gene ids that match nothing in the annotation (microarray probes, custom ids) are
    accepted: the annotation-free generators (deepmapper, deepinsight, som, random)
    need none, and only chromosome and Gene Ontology refuse such data, naming the ids
    they need. ``notes["gene_ids_note"]`` says so.

    Parameters
    ----------
    require_mapped_genes : refuse gene ids that match nothing in the annotation.
    map_genes : False leaves every gene unmapped (ids known not to be gene ids).
    mapping : the genes' Entrez ids and routes when already known (features collapsed to genes by
        :mod:`rnaimg_core.gene_map`); otherwise the ids are mapped here.

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
    check_unique(sample_ids, "sample")
    check_unique(gene_ids, "gene")
    _check_finite(values, sample_ids, gene_ids)
    if labels is not None:
        labels = np.asarray(labels).astype(str)
        _check_classes(labels, sample_ids, min_class_size)
    genes, mapping = annotate_genes(gene_ids if map_genes else np.full(gene_ids.size, "?"),
                                    mapping if map_genes else None)
    if not map_genes:
        genes["gene_id"] = gene_ids
        genes["symbol"] = gene_ids
    if require_mapped_genes and mapping["n_mapped"] == 0:
        examples = ", ".join(gene_ids[:5])
        raise InputError(
            f"None of the {len(gene_ids)} gene ids matched the human annotation (examples: {examples}). "
            "Use HGNC symbols, Entrez ids, Ensembl gene ids or TCGA 'SYMBOL|ENTREZ' ids; "
            "if genes are the rows, choose orientation 'genes-as-rows'."
        )
    notes: dict = {"gene_mapping": mapping}
    if mapping["n_mapped"] == 0:
        notes["gene_ids_note"] = (
            f"None of the {len(gene_ids)} gene ids matched the human annotation (examples: "
            f"{', '.join(gene_ids[:3])}). The deepmapper, deepinsight, som and random layouts work without it; "
            "chromosome and Gene Ontology layouts need HGNC symbols, Entrez ids, Ensembl gene or transcript ids, "
            "RefSeq accessions or TCGA 'SYMBOL|ENTREZ' ids. Microarray probe ids reach genes through the "
            "platform's table: --gene-map on the command line, the Gene map upload on the Data page.")
    return Expression(values, sample_ids, gene_ids, labels, genes, source=source, notes=notes)


def check_unique(ids: np.ndarray, what: str) -> None:
    """Raise an InputError naming repeated ids (``what``: "sample" or "gene"); shared with the big-run reader."""
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
    # values are held as float32: a finite number beyond its range (1e308) arrives here as infinity too
    kind = ("missing (NaN)" if np.isnan(values[row, col]) else
            f"infinite or beyond the range of 32-bit values (±{float(np.finfo(np.float32).max):.1e})")
    raise InputError(
        f"{len(bad)} missing, infinite or out-of-range value(s); the first is {kind} at sample "
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


# ---------------------------------------------------------------- shipped data

def load_demo() -> Expression:
    """The embedded real demo: oligodendroglioma single cells (Tirosh et al. 2016)."""
    arrays = demo.load_demo_arrays()
    expr = from_arrays(arrays["values"], arrays["sample_ids"], arrays["gene_ids"], arrays["labels"],
                       source=f"demo: {demo.DEMO_NAME}")
    expr.notes["orientation"] = "samples-as-rows"
    return expr


def load_synthetic(n_samples: int = 600, n_genes: int = 20531, n_classes: int = 33, seed: int = 0,
                   **kwargs) -> Expression:
    """Seeded synthetic TCGA-like data, labelled synthetic in its source and class names."""
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
