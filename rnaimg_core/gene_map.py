"""Features to genes: microarray probes through a platform table, transcripts through the annotation.

Many archives do not name genes in their rows. A microarray matrix names its
probes (``1007_s_at``, ``ILMN_1343291``, ``A_23_P100001``) and needs the
platform's feature-to-gene table (a GEO GPL table, or any two-column file);
Salmon, kallisto and RSEM isoform tables name transcripts (``ENST…``,
``NM_…``), several per gene. This module turns either into one column per gene:

1. **Map each feature to a gene.** With a gene map (:func:`read_gene_map`), a
   feature takes the gene its row names (an Entrez id, a symbol or an Ensembl
   gene id, matched by :func:`~rnaimg_core.annotation.map_gene_ids`); a row
   naming several genes (GEO's ``///``, or ``;`` / ``,``) is dropped, since its
   signal cannot be given to one of them. Without a gene map, transcript ids
   are matched by the shipped annotation (routes ``ensembl_transcript`` and
   ``refseq``). Features that reach no gene are dropped and counted.
2. **Collapse several features of one gene** (:data:`COLLAPSE_RULES`):
   ``max_mean`` keeps the feature with the highest mean over all samples
   (WGCNA's ``collapseRows`` "MaxMean", the usual choice for probes: redundant
   probes of one gene, the brightest is the most reliable), ``mean`` averages
   them, ``sum`` adds them (tximport's rule: a gene's count or TPM is the sum
   over its transcripts). ``auto`` is ``max_mean`` for a gene map and ``sum``
   for transcripts when the values are on a raw scale (non-negative with
   values above 50; summing logged values would be wrong, so logged
   transcripts take ``max_mean``). The choice of feature uses no labels.

The result is an :class:`~rnaimg_core.expression.Expression` whose gene ids are
the genes' symbols (``SYMBOL|ENTREZ`` where two genes share a symbol) and whose
``notes["feature_mapping"]`` reports every count: features per route, dropped
features by reason, genes made from several features and the rule.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rnaimg_core.errors import InputError
from rnaimg_core.limits import CappedReader, check, current_limits

COLLAPSE_RULES = ("auto", "max_mean", "mean", "sum")
COLLAPSE_WORDS = {
    "max_mean": "the feature with the highest mean over the samples is kept (WGCNA collapseRows MaxMean)",
    "mean": "the features are averaged",
    "sum": "the features are added (tximport: a gene's count or TPM is the sum over its transcripts)",
}
# GEO platform tables and usual two-column files: the feature id column, then the gene columns by preference
# (an Entrez id is exact; a symbol may be outdated; an Ensembl gene id is exact too)
ID_COLUMNS = ("id", "id_ref", "probe_id", "probeid", "probe", "probeset_id", "probeset", "probe_set_id",
              "feature_id", "feature", "spot_id", "reporter", "name")
GENE_COLUMNS = ("entrez_gene_id", "entrez_id", "entrezid", "entrez_gene", "entrez", "gene_id", "geneid", "gene",
                "ensembl_gene_id", "ensembl_id", "ensembl", "gene_symbol", "symbol", "hgnc_symbol",
                "ilmn_gene", "gene_name", "orf")
SEVERAL_GENES = re.compile(r"\s*(?:///|//|;|,)\s*")
TRANSCRIPT_SHARE = 0.5  # transcript ids must be at least this share of the mapped ids to collapse by gene
ROW_ID_CELLS = 40  # as in rnaimg_core.readers: a row's id weighs this many cells against max_cells


@dataclass(frozen=True)
class GeneMap:
    """A feature → gene table (one gene text per feature, as written: may name several genes).

    Attributes
    ----------
    features : ndarray of str, the feature ids (unique)
    genes : ndarray of str, each feature's gene field ('' when the table gives none)
    source : the file's name
    id_column, gene_column : the columns read (a GPL table has many)
    """

    features: np.ndarray
    genes: np.ndarray
    source: str
    id_column: str
    gene_column: str

    @property
    def n_features(self) -> int:
        return int(self.features.size)

    def lookup(self, feature_ids) -> np.ndarray:
        """The gene field of each feature id; None where the table has no such feature (object array)."""
        index = pd.Index(self.features)
        position = index.get_indexer(np.asarray(feature_ids, dtype=str))
        out = np.full(position.size, None, dtype=object)
        out[position >= 0] = self.genes[position[position >= 0]]
        return out


def read_gene_map(path: str | os.PathLike, *, display_name: str | None = None,
                  gene_column: str | None = None) -> GeneMap:
    """Read a feature-to-gene table: two columns, or a GEO platform (GPL) table.

    Parameters
    ----------
    path : CSV or TSV (optionally gzip). Lines starting with ``#`` (a GPL full table's column
        notes) are skipped; a SOFT file's ``!platform_table_begin`` … ``!platform_table_end`` block
        is read.
    display_name : the name to use in messages (an upload's original name).
    gene_column : the column naming the gene; by default an Entrez id column (``ENTREZ_GENE_ID``,
        ``GENE`` …), else an Ensembl gene id column, else a symbol column (``Gene Symbol``,
        ``GENE_SYMBOL`` …), else the second column of a two-column file.

    Raises
    ------
    InputError
        For a missing or unreadable file, a size over the :mod:`rnaimg_core.limits` policy
        (``max_file_bytes``, ``max_decompressed_bytes``, ``max_cells``, ``max_columns``), no usable
        columns, or repeated feature ids naming different genes.
    """
    path = Path(path)
    name = display_name or path.name
    if not path.is_file():
        raise InputError(f"Gene map {name}: file not found.")
    size = path.stat().st_size
    check("max_file_bytes", size, f"Gene map {name}")
    if size == 0:
        raise InputError(f"Gene map {name} is empty.")
    limits = current_limits()
    with open(path, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    raw = gzip.open(path, "rb") if compressed else open(path, "rb")
    capped = io.BufferedReader(CappedReader(raw, limits.max_decompressed_bytes, f"Gene map {name}"))
    try:
        with raw, io.TextIOWrapper(capped, encoding="utf-8", errors="replace", newline="") as text:
            header = _header_line(text, name)
            sep = "," if name.lower().removesuffix(".gz").endswith(".csv") else _separator(header)
            fields = [f.strip().strip('"') for f in next(csv.reader([header.rstrip("\r\n")], delimiter=sep))]
            check("max_columns", len(fields), f"Gene map {name}: the header line's field count")
            id_col, gene_col = _columns(fields, gene_column, name)
            row_cap = limits.max_cells // (len(fields) + ROW_ID_CELLS) + 1
            table = pd.read_csv(text, sep=sep, header=None, names=fields, usecols=[id_col, gene_col], dtype=str,
                                keep_default_na=False, na_filter=False, nrows=row_cap, skip_blank_lines=True,
                                engine="c")
    except InputError:
        raise
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise InputError(f"Gene map {name} could not be read: the gzip stream is damaged ({exc}).") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"Gene map {name} could not be read: {first}") from None
    check("max_cells", len(table) * (len(fields) + ROW_ID_CELLS), f"Gene map {name}: {len(table):,} rows")
    ids = table[id_col].astype(str).str.strip().str.strip('"')
    genes = table[gene_col].astype(str).str.strip().str.strip('"')
    keep = (ids != "") & ~ids.str.startswith("!") & ~ids.str.startswith("#")  # SOFT's table end marker
    ids, genes = ids[keep], genes[keep]
    genes = genes.where(~genes.isin(["---", "-", "NA", "N/A", "null", "NULL", "nan"]), "")
    genes = genes.str.replace(r"^(\d+)\.0$", r"\1", regex=True)  # Entrez ids written as numbers by a spreadsheet
    pairs = pd.DataFrame({"id": ids.to_numpy(), "gene": genes.to_numpy()}).drop_duplicates()
    repeated = pairs["id"].duplicated(keep=False)
    if repeated.any():
        example = pairs.loc[repeated, "id"].iloc[0]
        raise InputError(f"Gene map {name}: feature {example!r} is listed with different genes "
                         f"({', '.join(pairs.loc[pairs['id'] == example, 'gene'].head(3))}); give one row per feature.")
    if pairs.empty:
        raise InputError(f"Gene map {name} has no rows under its header.")
    return GeneMap(pairs["id"].to_numpy(dtype=str), pairs["gene"].to_numpy(dtype=str), name, id_col, gene_col)


def read_gene_map_bytes(data: bytes, filename: str, **kwargs) -> GeneMap:
    """:func:`read_gene_map` for an upload given as bytes (a private temporary file, removed at once)."""
    import tempfile

    check("max_file_bytes", len(data), f"Gene map {filename}")
    with tempfile.TemporaryDirectory(prefix="rnaimg-genemap-") as tmp:
        path = Path(tmp) / ("genemap.gz" if data[:2] == b"\x1f\x8b" else "genemap.txt")
        path.write_bytes(data)
        return read_gene_map(path, display_name=filename, **kwargs)


def _header_line(text, name: str) -> str:
    """The table's header line: skip ``#`` notes, GEO's ``!``/``^`` metadata and blank lines."""
    in_soft_table = False
    for line in text:
        stripped = line.strip()
        if stripped.lower().startswith("!platform_table_begin") or stripped.lower().startswith("!sample_table_begin"):
            in_soft_table = True
            continue
        if not stripped or (not in_soft_table and stripped[0] in "#!^"):
            continue
        return line
    raise InputError(f"Gene map {name} has no header line (only comments or metadata).")


def _separator(header: str) -> str:
    return "\t" if header.count("\t") >= header.count(",") else ","


def _key(column: str) -> str:
    return re.sub(r"[\s\-]+", "_", column.strip().lower())


def _columns(fields: list[str], gene_column: str | None, name: str) -> tuple[str, str]:
    """(feature id column, gene column) of a gene map's header."""
    if len(fields) < 2:
        raise InputError(f"Gene map {name}: expected a feature id column and a gene column; the header has "
                         f"{len(fields)} field(s).")
    if len(set(fields)) < len(fields):
        repeated = next(f for f in fields if fields.count(f) > 1)
        raise InputError(f"Gene map {name}: the column {repeated!r} appears more than once in the header.")
    keys = {_key(f): f for f in fields}
    id_col = next((keys[k] for k in ID_COLUMNS if k in keys), fields[0])
    if gene_column is not None:
        if gene_column not in fields:
            raise InputError(f"Gene map {name}: gene column {gene_column!r} not found; columns are "
                             f"{', '.join(fields[:12])}.")
        return id_col, gene_column
    others = [f for f in fields if f != id_col]
    if len(others) == 1:
        return id_col, others[0]
    gene_col = next((keys[k] for k in GENE_COLUMNS if k in keys and keys[k] != id_col), None)
    if gene_col is None:
        raise InputError(f"Gene map {name}: cannot tell which column names the gene (an Entrez id, symbol or "
                         f"Ensembl column such as ENTREZ_GENE_ID or Gene Symbol); columns are "
                         f"{', '.join(fields[:12])}. Give a two-column file: feature id, gene.")
    return id_col, gene_col


# ---------------------------------------------------------------- features to genes

@dataclass
class Collapsed:
    """Features collapsed to genes: the gene matrix, ids and mapping, and the report."""

    values: np.ndarray
    gene_ids: np.ndarray
    entrez_ids: np.ndarray
    routes: np.ndarray
    report: dict


def features_to_genes(values: np.ndarray, feature_ids, *, gene_map: GeneMap | None = None,
                      collapse: str = "auto", name: str = "the matrix") -> Collapsed | None:
    """Collapse feature columns to one column per gene (see the module docstring), or None when there is
    nothing to do (no gene map, and the columns are not mostly transcript ids).

    Parameters
    ----------
    values : ndarray (n_samples, n_features)
    feature_ids : the column ids
    gene_map : a table from :func:`read_gene_map`; None maps transcript ids through the annotation.
    collapse : one of :data:`COLLAPSE_RULES`.

    Raises
    ------
    InputError
        For an unknown rule, or when no feature reaches a gene (naming the ids on both sides).
    """
    from rnaimg_core.annotation import TRANSCRIPT_ROUTES, map_gene_ids
    from rnaimg_core.normalize import guess_scale

    if collapse not in COLLAPSE_RULES:
        raise InputError(f"collapse must be one of {', '.join(COLLAPSE_RULES)}, not {collapse!r}.")
    feature_ids = np.asarray(feature_ids).astype(str)
    n_features = feature_ids.size
    reasons = np.full(n_features, "", dtype=object)  # why a feature was dropped ('' = kept)
    if gene_map is None:
        mapping = map_gene_ids(list(feature_ids))
        transcript = np.isin(mapping.routes.astype(str), TRANSCRIPT_ROUTES)
        if not transcript.any() or transcript.sum() < TRANSCRIPT_SHARE * max(1, mapping.n_mapped):
            return None
        entrez, routes = mapping.entrez_ids.copy(), mapping.routes.astype(str)
        reasons[entrez < 0] = "no gene in the annotation"
        # a gene id among transcript ids would be added to its own transcripts: counted twice
        reasons[(entrez >= 0) & ~transcript] = "a gene id among transcript ids"
        entrez[(entrez >= 0) & ~transcript] = -1
        kind = "transcripts"
        by_route = {k: int(v) for k, v in pd.Series(routes[entrez >= 0]).value_counts().items()}
    else:
        fields = gene_map.lookup(feature_ids)
        absent = np.array([f is None for f in fields])
        text = np.array(["" if f is None else str(f) for f in fields], dtype=object)
        several = np.array([bool(SEVERAL_GENES.search(t)) for t in text])
        blank = (text == "") & ~absent
        reasons[absent] = "not in the gene map"
        reasons[blank] = "no gene in the gene map"
        reasons[several] = "names several genes"
        asked = np.flatnonzero(reasons == "")
        target = map_gene_ids(list(text[asked]))
        entrez = np.full(n_features, -1, dtype=np.int64)
        entrez[asked] = target.entrez_ids
        target_routes = target.routes.astype(str)
        reasons[asked[target.entrez_ids < 0]] = "gene not in the annotation"
        routes = np.full(n_features, "unmapped", dtype=object)
        routes[asked[target.entrez_ids >= 0]] = "gene_map"
        kind = "gene_map"
        mapped_routes = target_routes[target.entrez_ids >= 0]
        by_route = {f"gene_map: {k}": int(v) for k, v in pd.Series(mapped_routes).value_counts().items()}
    kept = np.flatnonzero(entrez >= 0)
    dropped = {reason: int(count) for reason, count in pd.Series(reasons[reasons != ""]).value_counts().items()}
    if kept.size == 0:
        where = f"the gene map {gene_map.source}" if gene_map is not None else "the shipped annotation"
        hint = ("" if gene_map is None else f" (gene map ids like {', '.join(gene_map.features[:3])}; gene column "
                f"{gene_map.gene_column!r})")
        raise InputError(f"{name}: none of the {n_features:,} features (like {', '.join(feature_ids[:3])}) reaches "
                         f"a gene through {where}{hint}. Check that the gene map belongs to this platform and the "
                         "orientation.")
    rule = collapse
    raw_scale = guess_scale(values) == "raw"
    if rule == "auto":
        rule = "sum" if kind == "transcripts" and raw_scale else "max_mean"
    if rule == "sum" and not raw_scale:
        raise InputError(f"{name}: collapse=sum adds features, which is right for counts or TPM but not for "
                         "logged or centred values (these look logged or centred); choose max_mean or mean.")
    gene_of_feature, genes = pd.factorize(entrez[kept])  # genes in the order of their first feature
    genes = np.asarray(genes, dtype=np.int64)
    gene_values = _collapse(values, kept, gene_of_feature, genes.size, rule)
    n_per_gene = np.bincount(gene_of_feature, minlength=genes.size)
    gene_routes = np.empty(genes.size, dtype=object)
    gene_routes[gene_of_feature] = np.asarray(routes, dtype=object)[kept]  # one route per gene (any of its features)
    gene_ids = _gene_names(genes)
    examples = {reason: feature_ids[reasons == reason][:5].tolist() for reason in dropped}
    report = {
        "kind": kind,
        "n_features": int(n_features),
        "n_features_used": int(kept.size),
        "features_by_route": by_route,
        "features_dropped": dropped,
        "dropped_examples": examples,
        "n_genes": int(genes.size),
        "n_genes_from_several_features": int((n_per_gene > 1).sum()),
        "max_features_per_gene": int(n_per_gene.max()),
        "collapse": rule,
        "collapse_rule": COLLAPSE_WORDS[rule],
        "collapse_reason": _collapse_reason(collapse, rule, kind, raw_scale),
    }
    if gene_map is not None:
        report.update(gene_map=gene_map.source, gene_map_id_column=gene_map.id_column,
                      gene_map_gene_column=gene_map.gene_column, gene_map_rows=gene_map.n_features)
    return Collapsed(gene_values, gene_ids, genes, gene_routes.astype(str), report)


def _collapse_reason(asked: str, rule: str, kind: str, raw_scale: bool) -> str:
    if asked != "auto":
        return "chosen"
    if kind == "gene_map":
        return "auto: probes of one gene measure it redundantly; the brightest is the most reliable"
    if rule == "sum":
        return "auto: transcripts are parts of their gene; raw-scale values add up"
    return "auto: transcripts of logged or centred values cannot be added; the highest mean is kept"


_COLLAPSE_BLOCK_BYTES = 64 * 2**20  # a sum or mean reads this many bytes of feature values at a time


def _collapse(values: np.ndarray, kept: np.ndarray, gene_of_feature: np.ndarray, n_genes: int,
              rule: str) -> np.ndarray:
    """(n_samples, n_genes) float32 from the ``kept`` feature columns by ``rule``, without a copy of the
    feature matrix (a sum or mean goes through blocks of samples)."""
    import scipy.sparse as sp

    if rule == "max_mean":
        means = values.mean(axis=0, dtype=np.float64)[kept]  # per column, no copy of the matrix
        # per gene the feature with the highest mean; ties go to the first feature in file order
        order = np.lexsort((np.arange(kept.size), -means, gene_of_feature))
        first = np.ones(order.size, dtype=bool)
        first[1:] = gene_of_feature[order][1:] != gene_of_feature[order][:-1]
        chosen = kept[order[first]]  # in gene order, since the sort is by gene first
        return np.ascontiguousarray(values[:, chosen], dtype=np.float32)
    weights = np.ones(kept.size, dtype=np.float32)
    if rule == "mean":
        weights /= np.bincount(gene_of_feature, minlength=n_genes)[gene_of_feature].astype(np.float32)
    matrix = sp.csr_matrix((weights, (kept, gene_of_feature)), shape=(values.shape[1], n_genes))
    out = np.empty((values.shape[0], n_genes), dtype=np.float32)
    step = max(1, _COLLAPSE_BLOCK_BYTES // max(1, 4 * values.shape[1]))
    for start in range(0, values.shape[0], step):
        block = np.asarray(values[start:start + step], dtype=np.float32)
        out[start:start + step] = np.asarray(matrix.T @ block.T).T  # sparse (genes x features) times the block
    return out


def _gene_names(entrez_ids: np.ndarray) -> np.ndarray:
    """Display ids of collapsed genes: the symbol, or ``SYMBOL|ENTREZ`` where symbols repeat."""
    from rnaimg_core.annotation import gene_table

    table = gene_table()
    symbols = pd.Series(table["symbol"].to_numpy(), index=table["entrez_id"].to_numpy()).reindex(entrez_ids)
    symbols = symbols.fillna("?").astype(str).to_numpy()
    repeated = pd.Series(symbols).duplicated(keep=False).to_numpy()
    return np.where(repeated, np.char.add(np.char.add(symbols.astype(str), "|"), entrez_ids.astype(str)), symbols)


def orientation_from_map(frame: pd.DataFrame, gene_map: GeneMap, limit: int = 2000) -> tuple[str, str] | None:
    """(orientation, reason) when the gene map's feature ids are clearly on one side of ``frame``, else None."""
    known = pd.Index(gene_map.features)
    in_rows = int(pd.Index(frame.index[:limit].astype(str)).isin(known).sum())
    in_columns = int(pd.Index(pd.Index(frame.columns[:limit]).astype(str)).isin(known).sum())
    if max(in_rows, in_columns) == 0 or min(in_rows, in_columns) > 0.2 * max(in_rows, in_columns):
        return None
    rows_win = in_rows > in_columns
    return ("genes-as-rows" if rows_win else "samples-as-rows",
            (f"{max(in_rows, in_columns):,} of the first {limit:,} {'row' if rows_win else 'column'} ids are "
             f"features of the gene map {gene_map.source}"))


def expression_from_features(values: np.ndarray, sample_ids, feature_ids, labels=None, *, source: str = "",
                             gene_map: GeneMap | None = None, collapse: str = "auto"):
    """An :class:`~rnaimg_core.expression.Expression` with one column per gene when the features need it
    (a gene map, or transcript ids), else the features as given; ``notes["feature_mapping"]`` reports it."""
    from rnaimg_core.annotation import GeneMapping
    from rnaimg_core.expression import check_unique, from_arrays

    check_unique(np.asarray(feature_ids).astype(str), "gene")  # before features of one gene are combined
    collapsed = features_to_genes(values, feature_ids, gene_map=gene_map, collapse=collapse, name=source)
    if collapsed is None:
        return from_arrays(values, sample_ids, feature_ids, labels, source=source)
    mapping = GeneMapping(ids=collapsed.gene_ids.astype(object), entrez_ids=collapsed.entrez_ids.astype(np.int64),
                          routes=collapsed.routes.astype(object))
    expr = from_arrays(collapsed.values, sample_ids, collapsed.gene_ids, labels, source=source, mapping=mapping)
    expr.notes["feature_mapping"] = collapsed.report
    return expr


def feature_mapping_lines(report: dict) -> list[str]:
    """The feature → gene report in plain sentences (CLI and Data page)."""
    kind = "probe/feature" if report["kind"] == "gene_map" else "transcript"
    source = f" through the gene map {report['gene_map']} (column {report['gene_map_gene_column']!r})" \
        if report["kind"] == "gene_map" else " through the shipped annotation"
    lines = [f"{report['n_features_used']:,} of {report['n_features']:,} {kind} ids reached "
             f"{report['n_genes']:,} genes{source}; by route: "
             + ", ".join(f"{k} {v:,}" for k, v in report["features_by_route"].items()) + "."]
    if report["features_dropped"]:
        lines.append("Dropped: " + "; ".join(
            f"{v:,} {k} (e.g. {', '.join(report['dropped_examples'].get(k, [])[:3])})"
            for k, v in report["features_dropped"].items()) + ".")
    lines.append(f"{report['n_genes_from_several_features']:,} genes had several features (up to "
                 f"{report['max_features_per_gene']}): {report['collapse_rule']} [{report['collapse_reason']}].")
    return lines
