"""The shipped human gene annotation: gene table, Gene Ontology, identifier mapping.

Everything here reads the compact files in ``rnaimg_core/data/annotation``
(built by ``scripts/build_annotation.py`` from Bioconductor's org.Hs.eg.db and
GO.db, and HGNC's previous symbols; sources, dates and licences are in the
README there). Positions are GRCh38, 1-based, inclusive.

Tables are loaded once and cached; treat the returned DataFrames as read-only
(``.copy()`` before changing them).

Typical use::

    mapping = map_gene_ids(expression_columns)      # SYMBOL|ENTREZ, ENSG…, symbols
    genes = gene_table().set_index("entrez_id").reindex(mapping.entrez_ids)
    incidence, terms = go_incidence(mapping.entrez_ids, "BP")
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = [
    "DATA_DIR",
    "ONTOLOGIES",
    "ROUTES",
    "CHROMOSOMES",
    "NUCLEAR_CHROMOSOMES",
    "UNKNOWN_CHROMOSOME_RANK",
    "GeneMapping",
    "arm_sort_key",
    "chromosome_arms",
    "chromosome_sort_key",
    "gene_table",
    "go_annotations",
    "go_edges",
    "go_embedding",
    "go_embedding_objective",
    "go_incidence",
    "go_terms",
    "map_gene_ids",
]

DATA_DIR = Path(__file__).resolve().parent / "data" / "annotation"

ONTOLOGIES = ("BP", "MF", "CC")
"""Gene Ontology namespaces: biological process, molecular function, cellular component."""

RELATIONS = ("is_a", "part_of", "regulates", "negatively_regulates", "positively_regulates")

ROUTES = ("entrez", "tcga_entrez", "tcga_symbol", "ensembl", "ensembl_transcript", "refseq", "gene_map", "symbol",
          "previous_symbol", "alias", "unmapped")
"""How :func:`map_gene_ids` matched each id, in the order the routes are tried."""

TRANSCRIPT_ROUTES = ("ensembl_transcript", "refseq")
"""Routes whose ids name a transcript of a gene, not the gene: several of them may belong to one gene."""

ROUTE_TITLES = {
    "entrez": "NCBI Entrez id",
    "tcga_entrez": "TCGA id (SYMBOL|Entrez), by its Entrez part",
    "tcga_symbol": "TCGA id (SYMBOL|Entrez), by its symbol",
    "ensembl": "Ensembl gene id",
    "ensembl_transcript": "Ensembl transcript id (ENST), its gene",
    "refseq": "RefSeq transcript accession (NM_, NR_, XM_, XR_), its gene",
    "gene_map": "the feature-to-gene table given with the data",
    "symbol": "current HGNC symbol",
    "previous_symbol": "previous HGNC symbol of exactly one gene",
    "alias": "alias of exactly one gene",
    "unmapped": "not matched",
}
"""Each of :data:`ROUTES` in plain words, for reports and the dashboard."""

NUCLEAR_CHROMOSOMES = tuple(str(i) for i in range(1, 23)) + ("X", "Y")
"""Chromosomes 1-22, X, Y in karyotype order."""

CHROMOSOMES = NUCLEAR_CHROMOSOMES + ("MT",)
"""Karyotype order, then the mitochondrial genome: the one chromosome order of rnaimg."""

UNKNOWN_CHROMOSOME_RANK = 1000
"""Rank of a chromosome (or arm) outside :data:`CHROMOSOMES`: after every known one."""

# '1p36.33' -> ('1', 'p'); bands without an arm ('X', '13cen', '') do not match
_ARM_PATTERN = re.compile(r"^(?:chr)?(\d{1,2}|X|Y)([pq])")

_GENE_TEXT_COLUMNS = ("symbol", "ensembl_id", "chromosome", "strand", "cytoband", "gene_type", "name")


def _read_table(name: str, dtypes: dict[str, str], nullable: Sequence[str] = ()) -> pd.DataFrame:
    """Read one shipped gzip TSV; only the ``nullable`` columns turn empty fields into NA."""
    return pd.read_csv(
        DATA_DIR / name,
        sep="\t",
        dtype=dtypes,
        keep_default_na=False,  # symbols such as "NA" stay symbols
        na_values={column: [""] for column in nullable},
        quoting=csv.QUOTE_NONE,
        engine="c",
    )


# --------------------------------------------------------------------------- tables
@lru_cache(maxsize=1)
def gene_table() -> pd.DataFrame:
    """The human gene table, one row per Entrez gene.

    Returns
    -------
    pandas.DataFrame
        Columns ``entrez_id`` (int64), ``symbol``, ``ensembl_id`` (one Ensembl
        gene id or ''), ``chromosome`` ('1'–'22', 'X', 'Y', 'MT' or ''),
        ``start`` and ``end`` (nullable ``Int64``, 1-based inclusive GRCh38
        coordinates, ``<NA>`` without a position), ``strand`` ('+', '-' or ''),
        ``cytoband``, ``gene_type`` (NCBI type, e.g. 'protein-coding') and
        ``name``; a default RangeIndex; sorted by Entrez id. Cached: do not
        modify in place.
    """
    dtypes = {"entrez_id": "int64", "start": "Int64", "end": "Int64"}
    dtypes.update({column: "str" for column in _GENE_TEXT_COLUMNS})
    return _read_table("genes.tsv.gz", dtypes, nullable=("start", "end"))


@lru_cache(maxsize=4)
def go_annotations(ontology: str | None = None) -> pd.DataFrame:
    """Direct gene → GO term annotations (not propagated to ancestors).

    Parameters
    ----------
    ontology : {'BP', 'MF', 'CC'} or None
        Keep one ontology only; None keeps all three.

    Returns
    -------
    pandas.DataFrame
        Columns ``entrez_id`` (int64), ``go_id``, ``ontology``; distinct pairs,
        evidence codes dropped. Cached: do not modify in place.
    """
    if ontology is None:
        return _read_table("gene_go.tsv.gz", {"entrez_id": "int64", "go_id": "str", "ontology": "str"})
    _check_ontology(ontology)
    table = go_annotations(None)
    return table[table["ontology"] == ontology].reset_index(drop=True)


@lru_cache(maxsize=1)
def go_terms() -> pd.DataFrame:
    """All GO terms.

    Returns
    -------
    pandas.DataFrame
        Columns ``go_id``, ``ontology`` ('BP', 'MF', 'CC'), ``name``; sorted by
        ``go_id``. Cached: do not modify in place.
    """
    return _read_table("go_terms.tsv.gz", {"go_id": "str", "ontology": "str", "name": "str"})


@lru_cache(maxsize=1)
def go_edges() -> pd.DataFrame:
    """The GO graph as child → parent edges.

    Returns
    -------
    pandas.DataFrame
        Columns ``child``, ``parent`` (GO ids) and ``relation`` (``is_a``,
        ``part_of``, ``regulates``, ``negatively_regulates``,
        ``positively_regulates``). Edges never cross ontologies. Cached: do not
        modify in place.
    """
    return _read_table("go_edges.tsv.gz", {"child": "str", "parent": "str", "relation": "str"})


@lru_cache(maxsize=3)
def go_embedding(ontology: str) -> pd.DataFrame:
    """The shipped 2-D GO embedding of every annotated gene (``scripts/build_go_embedding.py``).

    Parameters
    ----------
    ontology : {'BP', 'MF', 'CC'}

    Returns
    -------
    pandas.DataFrame
        Columns ``entrez_id`` (int64, sorted), ``x``, ``y`` (float64): t-SNE of
        the genes' IDF-weighted GO term profiles with the default settings of
        the ``gene_ontology`` generator. Cached: do not modify in place.
    """
    _check_ontology(ontology)
    table = _go_embedding_table()
    return table[table["ontology"] == ontology].drop(columns="ontology").reset_index(drop=True)


def go_embedding_objective(ontology: str) -> float:
    """The t-SNE objective (Kullback-Leibler divergence) of :func:`go_embedding`'s map when it was built.

    Written beside it by ``scripts/build_go_embedding.py`` (``go_embedding_objective.json``);
    ``gene_ontology.check_shipped_embedding`` compares it with the objective for today's features.
    """
    _check_ontology(ontology)
    return float(json.loads((DATA_DIR / "go_embedding_objective.json").read_text(encoding="utf-8"))[ontology])


@lru_cache(maxsize=1)
def _go_embedding_table() -> pd.DataFrame:
    """All three ontologies' embeddings, read once (``go_embedding`` filters it)."""
    return _read_table("go_embedding.tsv.gz", {"ontology": "str", "entrez_id": "int64", "x": "float64",
                                               "y": "float64"})


@lru_cache(maxsize=1)
def _aliases() -> pd.DataFrame:
    """Alias → Entrez pairs; every alias names exactly one gene and is nobody's symbol."""
    return _read_table("aliases.tsv.gz", {"alias_symbol": "str", "entrez_id": "int64"})


@lru_cache(maxsize=1)
def _previous_symbols() -> pd.DataFrame:
    """HGNC previous symbol → current gene pairs, one row per (symbol, HGNC gene).

    A symbol on several rows was used for several genes; ``entrez_id`` is
    ``<NA>`` where the gene table lacks the gene. No previous symbol here is
    anybody's official symbol.
    """
    return _read_table(
        "previous_symbols.tsv.gz",
        {"previous_symbol": "str", "hgnc_id": "int64", "hgnc_symbol": "str", "entrez_id": "Int64"},
        nullable=("entrez_id",),
    )


@lru_cache(maxsize=1)
def _transcript_links() -> dict[str, pd.Series]:
    """Transcript id (RefSeq accession or ENST, no version) → Entrez id, for ids naming exactly one gene.

    Transcripts linked to several genes (read-through transcripts) are left out: they stay unmapped.
    """
    out = {}
    for route, name, key in (("refseq", "refseq.tsv.gz", "accession"),
                             ("ensembl_transcript", "ensembl_transcripts.tsv.gz", "transcript_id")):
        pairs = _read_table(name, {key: "str", "entrez_id": "int64"})
        n_genes = pairs.groupby(key)["entrez_id"].transform("nunique")
        single = pairs[n_genes == 1].drop_duplicates(key)
        out[route] = pd.Series(single["entrez_id"].to_numpy(np.int64), index=pd.Index(single[key].to_numpy()))
    return out


@lru_cache(maxsize=1)
def _ensembl_links() -> pd.DataFrame:
    """All Ensembl gene id ↔ Entrez id pairs."""
    return _read_table("ensembl.tsv.gz", {"ensembl_id": "str", "entrez_id": "int64"})


# --------------------------------------------------------------------------- chromosomes
def chromosome_sort_key(chromosome: pd.Series) -> np.ndarray:
    """Rank chromosome names in karyotype order.

    Parameters
    ----------
    chromosome : pandas.Series
        Chromosome names such as '1', '17', 'X', 'MT'. A 'chr' prefix and 'M'
        for the mitochondrion are accepted.

    Returns
    -------
    numpy.ndarray
        int64 ranks: '1'–'22' → 1–22, 'X' → 23, 'Y' → 24, 'MT' → 25, anything
        else (including '' and missing) → 1000.
    """
    names = pd.Series(chromosome, dtype=object).fillna("").astype(str).str.strip()
    names = names.str.replace(r"^chr", "", regex=True, case=False).str.upper().replace("M", "MT")
    ranks = {name: rank for rank, name in enumerate(CHROMOSOMES, start=1)}
    return names.map(ranks).fillna(UNKNOWN_CHROMOSOME_RANK).to_numpy(dtype=np.int64)


def chromosome_arms(cytobands: Sequence[str] | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Chromosome and arm named by each cytoband.

    Parameters
    ----------
    cytobands : sequence of str
        Cytogenetic bands such as '1p36.33' or '19q13.43' (a 'chr' prefix is accepted).

    Returns
    -------
    chromosomes : ndarray of str, e.g. '1'; '' where the band names no arm
    arms : ndarray of str, 'p' or 'q'; '' where the band names no arm ('X', '13cen', missing)
    """
    bands = pd.Series(cytobands, dtype=object).fillna("").astype(str)
    parsed = bands.str.extract(_ARM_PATTERN).fillna("")
    return parsed[0].to_numpy(dtype=str), parsed[1].to_numpy(dtype=str)


def arm_sort_key(chromosome: Sequence[str] | pd.Series, cytoband: Sequence[str] | pd.Series) -> np.ndarray:
    """Rank chromosome arms in genome order: 1p, 1q, 2p, ... Yq, MT.

    Parameters
    ----------
    chromosome : sequence of str, each gene's chromosome (see :func:`chromosome_sort_key`)
    cytoband : sequence of str, each gene's cytoband; a band without a q arm counts as p

    Returns
    -------
    ndarray of int64
        ``2 * chromosome rank + (arm == 'q')``: 1p=2, 1q=3, ..., Yq=49, MT=50;
        :data:`UNKNOWN_CHROMOSOME_RANK` for genes on no known chromosome.
    """
    rank = chromosome_sort_key(chromosome)
    q_arm = chromosome_arms(cytoband)[1] == "q"
    return np.where(rank < UNKNOWN_CHROMOSOME_RANK, 2 * rank + q_arm, UNKNOWN_CHROMOSOME_RANK).astype(np.int64)


# --------------------------------------------------------------------------- Gene Ontology
def _check_ontology(ontology: str) -> None:
    if ontology not in ONTOLOGIES:
        raise ValueError(f"ontology must be one of {ONTOLOGIES}, not {ontology!r}")


@lru_cache(maxsize=8)
def _ancestor_closure(ontology: str, relations: tuple[str, ...]) -> tuple[sp.csr_matrix, np.ndarray]:
    """Reflexive-transitive closure of the GO graph of one ontology.

    Returns
    -------
    closure : scipy.sparse.csr_matrix
        (n_terms, n_terms) bool; ``closure[i, j]`` is True when term j is term i
        or one of its ancestors along ``relations``.
    term_ids : numpy.ndarray
        GO ids of the rows/columns, sorted.
    """
    terms = go_terms()
    term_ids = np.sort(terms.loc[terms["ontology"] == ontology, "go_id"].to_numpy(dtype=object))
    position = pd.Index(term_ids)
    edges = go_edges()
    edges = edges[edges["relation"].isin(relations)]
    child = position.get_indexer(edges["child"])
    parent = position.get_indexer(edges["parent"])
    keep = (child >= 0) & (parent >= 0)
    n_terms = len(term_ids)
    step = sp.csr_matrix(
        (np.ones(keep.sum(), dtype=bool), (child[keep], parent[keep])), shape=(n_terms, n_terms)
    )
    closure = sp.identity(n_terms, dtype=bool, format="csr")
    frontier = closure
    # Walk up one level per iteration; GO is a DAG about 20 levels deep.
    while frontier.nnz:
        reached = (frontier @ step).astype(bool)
        frontier = (reached > closure).tocsr()  # newly reached pairs only
        closure = (closure + frontier).tocsr()
    return closure, term_ids


def go_incidence(
    entrez_ids: np.ndarray,
    ontology: str = "BP",
    propagate: bool = True,
    relations: tuple[str, ...] = ("is_a", "part_of"),
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Gene × GO term incidence matrix, optionally including every ancestor term.

    Parameters
    ----------
    entrez_ids : numpy.ndarray
        Entrez ids giving the rows, in this order. Ids without annotation
        (including -1 for unmapped genes) give all-zero rows; repeated ids give
        identical rows.
    ontology : {'BP', 'MF', 'CC'}
        Which GO namespace.
    propagate : bool
        If True, a gene annotated to a term is also annotated to all its
        ancestors (the GO "true path" rule) along ``relations``.
    relations : tuple of str
        Edge types followed when propagating; any of ``is_a``, ``part_of``,
        ``regulates``, ``negatively_regulates``, ``positively_regulates``.

    Returns
    -------
    incidence : scipy.sparse.csr_matrix
        (n_genes, n_terms) float32 of 0/1.
    term_ids : numpy.ndarray
        GO ids of the columns, sorted; only terms annotating at least one of
        the given genes are kept.
    """
    _check_ontology(ontology)
    relations = tuple(sorted(set(relations)))
    unknown = set(relations) - set(RELATIONS)
    if unknown:
        raise ValueError(f"unknown GO relations {sorted(unknown)}; choose from {RELATIONS}")

    closure, term_ids = _ancestor_closure(ontology, relations if propagate else ())
    rows = pd.DataFrame({"entrez_id": np.asarray(entrez_ids, dtype=np.int64)})
    rows["row"] = np.arange(len(rows))
    pairs = rows.merge(go_annotations(ontology), on="entrez_id")
    columns = pd.Index(term_ids).get_indexer(pairs["go_id"])
    known = columns >= 0  # annotations to terms obsolete in GO.db are ignored
    direct = sp.csr_matrix(
        (np.ones(known.sum(), dtype=np.float32), (pairs["row"].to_numpy()[known], columns[known])),
        shape=(len(rows), len(term_ids)),
    )
    incidence = (direct @ closure.astype(np.float32)).tocsr() if propagate else direct
    incidence.sum_duplicates()
    incidence.data[:] = 1.0
    used = np.flatnonzero(np.asarray(incidence.getnnz(axis=0)))
    return incidence[:, used].astype(np.float32).tocsr(), term_ids[used]


# --------------------------------------------------------------------------- id mapping
@dataclass(frozen=True)
class GeneMapping:
    """Result of :func:`map_gene_ids`: one Entrez id and one route per input id.

    Attributes
    ----------
    ids : numpy.ndarray
        The input ids, as given (object array).
    entrez_ids : numpy.ndarray
        int64, aligned with ``ids``; -1 where unmapped.
    routes : numpy.ndarray
        str per id, one of :data:`ROUTES`: 'entrez' (plain Entrez id),
        'tcga_entrez' (``SYMBOL|ENTREZ`` joined on the Entrez part),
        'tcga_symbol' (``SYMBOL|ENTREZ`` whose Entrez part is unknown, joined
        by its symbol), 'ensembl' (``ENSG…``, version stripped), 'ensembl_transcript',
        'refseq', 'gene_map' (a feature table given with the data), 'symbol',
        'previous_symbol' (a previous official HGNC symbol of exactly one
        gene), 'alias' or 'unmapped'.
    """

    ids: np.ndarray
    entrez_ids: np.ndarray
    routes: np.ndarray

    @property
    def n_ids(self) -> int:
        """Number of input ids."""
        return len(self.ids)

    @property
    def mapped(self) -> np.ndarray:
        """Boolean mask of the ids that found a gene."""
        return self.entrez_ids >= 0

    @property
    def n_mapped(self) -> int:
        """Number of ids that found a gene."""
        return int(self.mapped.sum())

    def counts_by_route(self) -> dict[str, int]:
        """Number of ids per route, in :data:`ROUTES` order, routes with no id left out."""
        counts = pd.Series(self.routes).value_counts()
        return {route: int(counts[route]) for route in ROUTES if route in counts.index}

    def unmapped_ids(self, limit: int | None = None) -> list[str]:
        """Input ids that found no gene, in input order (at most ``limit``)."""
        unmapped = self.ids[~self.mapped][:limit]
        return [str(gene_id) for gene_id in unmapped]

    def duplicate_entrez(self) -> list[str]:
        """Input ids that share their Entrez id with another input id, in input order.

        Both ids stay mapped; callers decide whether to average, keep one or
        warn.
        """
        mapped = self.mapped
        shared = pd.Series(self.entrez_ids[mapped]).duplicated(keep=False).to_numpy()
        return [str(gene_id) for gene_id in self.ids[mapped][shared]]

    def ambiguous_previous_symbols(self, limit: int | None = None) -> dict[str, list[str]]:
        """Unmapped ids that are a previous symbol of several genes, with those genes' symbols today.

        Such ids are left unmapped rather than guessed (``QARS`` was the symbol
        of both ``QARS1`` and ``EPRS1``); the candidates let a user rename the
        column by hand. The symbol part of ``SYMBOL|ENTREZ`` ids is looked up.

        Parameters
        ----------
        limit : int, optional
            Report at most this many ids, in input order.

        Returns
        -------
        dict
            Input id → current HGNC symbols of the genes it was a symbol of, sorted.
        """
        unmapped = self.ids[~self.mapped]
        keys = (pd.Series(unmapped, dtype=object).fillna("").astype(str).str.strip()
                .str.rsplit("|", n=1).str[0].str.strip().str.upper())
        candidates = _ambiguous_previous()
        position = candidates.index.get_indexer(keys.to_numpy())
        hit = np.flatnonzero(position >= 0)[:limit]
        return {str(unmapped[i]): list(candidates.iloc[position[i]]) for i in hit}

    def to_frame(self) -> pd.DataFrame:
        """The mapping as a table with columns ``id``, ``entrez_id``, ``route``."""
        return pd.DataFrame({"id": self.ids, "entrez_id": self.entrez_ids, "route": self.routes})

    def summary(self) -> dict:
        """JSON-serialisable overview.

        Returns
        -------
        dict
            ``n_ids``, ``n_mapped``, ``by_route`` (:meth:`counts_by_route`),
            ``n_duplicate_ids`` (ids sharing an Entrez id with another),
            ``unmapped_examples`` (up to 10 unmapped ids),
            ``n_ambiguous_previous`` (unmapped ids that are a previous symbol
            of several genes) and ``ambiguous_previous_examples`` (up to 10 of
            them, each with its candidates, see :meth:`ambiguous_previous_symbols`).
        """
        ambiguous = self.ambiguous_previous_symbols()
        return {
            "n_ids": self.n_ids,
            "n_mapped": self.n_mapped,
            "by_route": self.counts_by_route(),
            "n_duplicate_ids": len(self.duplicate_entrez()),
            "unmapped_examples": self.unmapped_ids(limit=10),
            "n_ambiguous_previous": len(ambiguous),
            "ambiguous_previous_examples": dict(list(ambiguous.items())[:10]),
        }


@lru_cache(maxsize=1)
def _preference_rank() -> pd.Series:
    """Entrez id → rank; lower is preferred when one key names several genes.

    Protein-coding genes first, then genes with a position, then lower Entrez ids.
    """
    genes = gene_table()
    order = np.lexsort((
        genes["entrez_id"].to_numpy(),
        genes["start"].isna().to_numpy(),
        (genes["gene_type"] != "protein-coding").to_numpy(),
    ))
    rank = np.empty(len(genes), dtype=np.int64)
    rank[order] = np.arange(len(genes))
    return pd.Series(rank, index=genes["entrez_id"].to_numpy())


def _resolve(keys: pd.Series, entrez_ids: pd.Series) -> pd.Series:
    """Unique key → Entrez id table; a key naming several genes keeps the preferred one."""
    pairs = pd.DataFrame({"key": keys.to_numpy(), "entrez_id": entrez_ids.to_numpy()})
    pairs["rank"] = pairs["entrez_id"].map(_preference_rank())
    pairs = pairs.sort_values(["rank", "entrez_id"]).drop_duplicates("key")
    return pd.Series(pairs["entrez_id"].to_numpy(np.int64), index=pd.Index(pairs["key"].to_numpy()))


def _one_gene(keys: pd.Series, hgnc_ids: pd.Series, entrez_ids: pd.Series) -> pd.Series:
    """Key → Entrez id for the keys that name exactly one gene, and one the gene table has."""
    pairs = pd.DataFrame({"key": keys.to_numpy(), "hgnc_id": hgnc_ids.to_numpy(),
                          "entrez_id": entrez_ids.to_numpy()})
    n_genes = pairs.groupby("key")["hgnc_id"].transform("nunique")
    pairs = pairs[(n_genes == 1) & pairs["entrez_id"].notna()].drop_duplicates("key")
    return pd.Series(pairs["entrez_id"].to_numpy(np.int64), index=pd.Index(pairs["key"].to_numpy()))


@lru_cache(maxsize=1)
def _ambiguous_previous() -> pd.Series:
    """Upper-case previous symbol → tuple of current HGNC symbols, for symbols of several genes."""
    previous = _previous_symbols()
    keys = previous["previous_symbol"].str.upper()
    n_genes = previous.groupby(keys)["hgnc_id"].transform("nunique")
    several = previous[n_genes > 1]
    return several.groupby(keys[n_genes > 1])["hgnc_symbol"].agg(lambda symbols: tuple(sorted(set(symbols))))


@lru_cache(maxsize=1)
def _lookups() -> dict[str, pd.Series]:
    """Unique-key lookup tables (key → Entrez id) for every mapping route."""
    genes = gene_table()
    previous = _previous_symbols()
    aliases = _aliases()
    upper_alias = aliases["alias_symbol"].str.upper()
    # A case-insensitive alias is only trusted when it still names one gene.
    alias_genes = aliases.groupby(upper_alias)["entrez_id"].nunique()
    unique_upper = upper_alias.isin(alias_genes.index[alias_genes == 1])
    links = _ensembl_links()
    return {
        "entrez": pd.Series(genes["entrez_id"].to_numpy(), index=pd.Index(genes["entrez_id"].to_numpy())),
        "symbol": _resolve(genes["symbol"], genes["entrez_id"]),
        "symbol_upper": _resolve(genes["symbol"].str.upper(), genes["entrez_id"]),
        # a previous symbol is only trusted when it names one gene, in exact case and in any case
        "previous": _one_gene(previous["previous_symbol"], previous["hgnc_id"], previous["entrez_id"]),
        "previous_upper": _one_gene(previous["previous_symbol"].str.upper(), previous["hgnc_id"],
                                    previous["entrez_id"]),
        "alias": pd.Series(aliases["entrez_id"].to_numpy(), index=pd.Index(aliases["alias_symbol"].to_numpy())),
        "alias_upper": _resolve(upper_alias[unique_upper], aliases["entrez_id"][unique_upper]),
        "ensembl": _resolve(links["ensembl_id"], links["entrez_id"]),
    }


def _lookup(table: pd.Series, keys: np.ndarray) -> np.ndarray:
    """Entrez id for each key (int64), -1 where the key is not in ``table``."""
    if len(keys) == 0:
        return np.empty(0, dtype=np.int64)
    position = table.index.get_indexer(keys)
    return np.where(position >= 0, table.to_numpy()[position], -1).astype(np.int64)


def _map_symbols(symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map symbols: official symbol, then previous symbol, then alias; each in exact case, then any case.

    Returns
    -------
    entrez_ids : numpy.ndarray
        int64, -1 where nothing matched.
    routes : numpy.ndarray
        object, 'symbol', 'previous_symbol', 'alias' or 'unmapped' per symbol.
    """
    lookups = _lookups()
    symbols = np.asarray(symbols, dtype=object)
    upper = np.array([symbol.upper() for symbol in symbols], dtype=object)
    entrez = np.full(len(symbols), -1, dtype=np.int64)
    routes = np.full(len(symbols), "unmapped", dtype=object)
    steps = (("symbol", symbols, "symbol"), ("symbol_upper", upper, "symbol"),
             ("previous", symbols, "previous_symbol"), ("previous_upper", upper, "previous_symbol"),
             ("alias", symbols, "alias"), ("alias_upper", upper, "alias"))
    for table, keys, route in steps:
        todo = np.flatnonzero(entrez < 0)
        if len(todo) == 0:
            break
        found = _lookup(lookups[table], keys[todo])
        hit = found >= 0
        entrez[todo[hit]] = found[hit]
        routes[todo[hit]] = route
    return entrez, routes


def map_gene_ids(ids: Sequence[str]) -> GeneMapping:
    """Map expression-matrix gene ids to Entrez ids.

    Each id is tried along these routes, first hit wins (surrounding
    whitespace is ignored):

    1. a plain integer that is a known Entrez id → 'entrez';
    2. TCGA legacy ``SYMBOL|ENTREZ`` (``?`` for no symbol): the Entrez part if
       known → 'tcga_entrez', otherwise the symbol part as in step 4 →
       'tcga_symbol';
    3. an Ensembl gene id ``ENSG…``, version (``.17``) and ``_PAR_Y`` suffix
       stripped → 'ensembl'; an Ensembl transcript id ``ENST…`` (version stripped)
       → its gene, 'ensembl_transcript'; a RefSeq RNA accession ``NM_``/``NR_``/
       ``XM_``/``XR_`` (version stripped) → its gene, 'refseq' (a transcript
       linked to several genes stays unmapped; collapsing several transcripts of
       one gene is :mod:`rnaimg_core.gene_map`'s work);
    4. an official symbol (exact case, then any case) → 'symbol', else a
       previous official symbol in HGNC's records (exact case, then any case)
       → 'previous_symbol', else a synonym from NCBI Gene's alias list, which
       mixes previous symbols with loose aliases (exact case, then any case)
       → 'alias'.

    Symbols or Ensembl ids naming several genes resolve to a protein-coding
    gene, then one with a position, then the lowest Entrez id; previous
    symbols and aliases naming several genes are never used (see
    :meth:`GeneMapping.ambiguous_previous_symbols`).

    Parameters
    ----------
    ids : sequence of str
        Gene ids as they appear in the expression matrix.

    Returns
    -------
    GeneMapping
        Entrez id (-1 if unmapped) and route per input id. Several ids may map
        to the same Entrez id; see :meth:`GeneMapping.duplicate_entrez`.
    """
    original = np.empty(len(ids), dtype=object)
    original[:] = list(ids)
    text = pd.Series(original, dtype=object).fillna("").astype(str).str.strip()
    n_ids = len(text)
    entrez = np.full(n_ids, -1, dtype=np.int64)
    routes = np.full(n_ids, "unmapped", dtype=object)
    lookups = _lookups()

    def assign(mask: np.ndarray, found: np.ndarray, route: str | np.ndarray) -> None:
        where = np.flatnonzero(mask)
        hit = found >= 0
        entrez[where[hit]] = found[hit]
        routes[where[hit]] = route[hit] if isinstance(route, np.ndarray) else route

    # 1. plain Entrez ids
    is_number = text.str.fullmatch(r"\d{1,18}").to_numpy(dtype=bool)
    assign(is_number, _lookup(lookups["entrez"], text[is_number].astype(np.int64).to_numpy()), "entrez")

    # 2. TCGA SYMBOL|ENTREZ
    is_tcga = text.str.contains("|", regex=False).to_numpy(dtype=bool) & ~is_number
    parts = text[is_tcga].str.rsplit("|", n=1, expand=True).reindex(columns=[0, 1]).fillna("").astype(str)
    tcga_symbol, tcga_number = parts[0].str.strip(), parts[1].str.strip()
    numeric = tcga_number.str.fullmatch(r"\d{1,18}").to_numpy(dtype=bool)
    by_number = np.full(len(parts), -1, dtype=np.int64)
    by_number[numeric] = _lookup(lookups["entrez"], tcga_number[numeric].astype(np.int64).to_numpy())
    assign(is_tcga, by_number, "tcga_entrez")
    retry = is_tcga & (entrez < 0)  # the same rows as by_number < 0, in order
    retry_symbols = tcga_symbol[by_number < 0]
    usable = ~retry_symbols.isin(["", "?"]).to_numpy()
    by_symbol = np.full(len(retry_symbols), -1, dtype=np.int64)
    by_symbol[usable] = _map_symbols(retry_symbols[usable].to_numpy())[0]
    assign(retry, by_symbol, "tcga_symbol")

    # 3. Ensembl gene ids
    rest = ~is_number & ~is_tcga
    ensembl = text.str.upper().str.extract(r"^(ENSG\d+)(?:\.\d+)?(?:_PAR_[XY])?$", expand=False)
    is_ensembl = rest & ensembl.notna().to_numpy()
    assign(is_ensembl, _lookup(lookups["ensembl"], ensembl[is_ensembl].to_numpy()), "ensembl")

    # 3b. transcripts: Ensembl (ENST…) and RefSeq RNA accessions (NM_, NR_, XM_, XR_), version stripped
    upper = text.str.upper()
    transcript = upper.str.extract(r"^(ENST\d+)(?:\.\d+)?(?:_PAR_[XY])?$", expand=False)
    is_transcript = rest & ~is_ensembl & transcript.notna().to_numpy()
    refseq = upper.str.extract(r"^([NX][MR]_\d+)(?:\.\d+)?$", expand=False)
    is_refseq = rest & ~is_ensembl & ~is_transcript & refseq.notna().to_numpy()
    if is_transcript.any() or is_refseq.any():
        links = _transcript_links()
        assign(is_transcript, _lookup(links["ensembl_transcript"], transcript[is_transcript].to_numpy()),
               "ensembl_transcript")
        assign(is_refseq, _lookup(links["refseq"], refseq[is_refseq].to_numpy()), "refseq")

    # 4. symbols, then previous symbols, then aliases
    is_symbol = rest & ~is_ensembl & ~is_transcript & ~is_refseq & (text != "").to_numpy()
    found, symbol_routes = _map_symbols(text[is_symbol].to_numpy())
    assign(is_symbol, found, symbol_routes)

    return GeneMapping(ids=original, entrez_ids=entrez, routes=routes)


@dataclass(frozen=True)
class GeneName:
    """What the shipped annotation knows of one gene name typed by a user (:func:`look_up_gene`).

    Attributes
    ----------
    query : the name as typed (surrounding whitespace removed)
    entrez_id : the gene it names, -1 when none (unknown, or a previous symbol of several genes)
    symbol : that gene's current HGNC symbol, "" when none
    route : how the name matched, one of :data:`ROUTES` (``"symbol"``, ``"previous_symbol"``, ``"alias"`` ...)
    candidates : current symbols of the genes the name was a previous symbol of, when it names several
        (then ``entrez_id`` is -1: the name is not guessed)
    """

    query: str
    entrez_id: int
    symbol: str
    route: str
    candidates: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        """Whether the name names exactly one gene."""
        return self.entrez_id >= 0


def look_up_gene(query: str) -> GeneName:
    """Look a gene name or id up as :func:`map_gene_ids` reads the ids of a matrix (symbol, previous
    symbol, alias, Entrez or Ensembl id), with the candidates of a previous symbol of several genes.

    ``look_up_gene("QARS")`` names no gene (it was the symbol of ``EPRS1`` and ``QARS1``: both
    candidates); ``look_up_gene("MLL")`` finds ``KMT2A`` by its previous symbol.
    """
    text = str(query).strip()
    mapping = map_gene_ids([text])
    entrez = int(mapping.entrez_ids[0])
    symbol = ""
    if entrez >= 0:
        genes = gene_table()
        row = np.searchsorted(genes["entrez_id"].to_numpy(), entrez)  # the table is sorted by Entrez id
        if row < len(genes) and int(genes["entrez_id"].iat[row]) == entrez:
            symbol = str(genes["symbol"].iat[row])
    candidates = tuple(mapping.ambiguous_previous_symbols().get(text, ())) if entrez < 0 else ()
    return GeneName(text, entrez, symbol, str(mapping.routes[0]), candidates)
