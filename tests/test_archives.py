"""Inputs as they come from real archives, read through the real readers and the command line.

Every matrix here is DERIVED from the real demo (184 oligodendroglioma cells, TPM-like values): its
profiles rescaled to the library sizes of TCGA RSEM expected counts (30-66 M), split over the real
transcripts (Ensembl, RefSeq) of each gene in the shipped annotation, or written as probes of an
Affymetrix-style platform with a GEO GPL table naming real Entrez ids and symbols. What a biologist
would check: the right genes are reached, depth is handled, every drop is counted.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from rnaimg_core.annotation import _transcript_links, gene_table
from rnaimg_core.cli import main
from rnaimg_core.errors import InputError
from rnaimg_core.gene_map import read_gene_map
from rnaimg_core.generators import get_generator
from rnaimg_core.layout import Layout
from rnaimg_core.limits import use_limits
from rnaimg_core.readers import read_expression

# ---------------------------------------------------------------- derived archives

@pytest.fixture(scope="module")
def demo_genes(demo_expression):
    """The demo's genes that map to an Entrez id, 400 of them (columns, Entrez ids)."""
    entrez = demo_expression.genes["entrez_id"].to_numpy()
    columns = np.flatnonzero(entrez > 0)[::20][:400]
    return columns, entrez[columns]


@pytest.fixture(scope="module")
def expected_counts(demo_expression):
    """RSEM-like expected counts (DERIVED from the demo): library sizes 30-66 M, about 91.5 % whole numbers."""
    rng = np.random.default_rng(7)
    library = rng.uniform(30e6, 66e6, demo_expression.n_samples)
    profile = demo_expression.values / demo_expression.values.sum(axis=1, keepdims=True)
    counts = np.round(profile * library[:, None])
    split = (rng.random(counts.shape) < 0.09) & (counts > 0)  # reads shared between genes: fractional estimates
    counts[split] += np.round(rng.random(int(split.sum())), 2)
    return counts


def _write_genes_as_rows(path, values, row_ids, sample_ids, id_name="gene_id"):
    frame = pd.DataFrame(values.T, index=pd.Index(row_ids, name=id_name), columns=sample_ids)
    frame.to_csv(path, sep="," if str(path).endswith(".csv") else "\t", float_format="%.6g")
    return path


def _sheet(path, expression):
    pd.DataFrame({"sample": expression.sample_ids, "cell_type": expression.labels}).to_csv(path, index=False)
    return path


def _cli(capsys, *args: str) -> tuple[int, dict | None, str]:
    code = main(list(args))
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    return code, (json.loads(lines[-1]) if code == 0 and lines else None), out.err


# ---------------------------------------------------------------- 1. depth

def test_rsem_expected_counts_get_depth_scaling_and_brightness_stops_tracking_library_size(
        tmp_path, demo_expression, expected_counts, capsys):
    path = _write_genes_as_rows(tmp_path / "rsem_expected_counts.tsv", expected_counts, demo_expression.gene_ids,
                                demo_expression.sample_ids)
    expr = read_expression(path, labels_path=_sheet(tmp_path / "sheet.csv", demo_expression))
    report = expr.report()
    assert report["looks_like_counts"] and "whole numbers" in report["depth_evidence"]
    assert 0.85 < float(report["depth_evidence"].split(" %")[0]) < 0.95 * 100  # the share it saw, in words
    fit = np.arange(0, expr.n_samples, 2)
    before = get_generator("chromosome")(depth="none").fit(expr, train_index=fit, quality=False)
    after = get_generator("chromosome")().fit(expr, train_index=fit, quality=False)
    assert after.normalization.depth_applied_ and after.normalization.depth_reason_.startswith("auto:")
    # the same cells sequenced 1.7 times deeper: the images must not change (without scaling, expressed genes brighten)
    deeper = expr.values * np.float32(1.7)
    for layout, changes in ((after, False), (before, True)):
        shift = np.abs(layout.transform(deeper, expr.gene_ids) - layout.transform(expr.values, expr.gene_ids))
        placed = shift.reshape(expr.n_samples, -1)[:, np.unique(layout.placement_pixel)]
        assert (placed.mean() > 0.05) if changes else (placed.max() < 1e-3), placed.mean()
    # the command line says what it did and why, and the override is honoured
    code, summary, err = _cli(capsys, "layout", "--input", str(path), "--generator", "chromosome",
                              "--out", str(tmp_path / "l.json.gz"), "--json")
    assert code == 0 and summary["normalization"]["depth_applied"] is True
    assert "Sequencing depth: they look like counts" in err and "whole numbers" in err
    code, summary, _ = _cli(capsys, "layout", "--input", str(path), "--generator", "chromosome", "--set",
                            "depth=none", "--out", str(tmp_path / "l2.json.gz"), "--json")
    assert code == 0 and summary["normalization"]["depth_applied"] is False
    assert summary["normalization"]["depth_reason"] == "chosen: depth=none"
    # Lyu & Haque's code takes values as given: on counts it says so, and depth=cpm is honoured
    code, summary, err = _cli(capsys, "layout", "--input", str(path), "--generator", "chromosome", "--set",
                              "preset=lyu_haque_code", "--out", str(tmp_path / "l3.json.gz"), "--json")
    assert code == 0 and summary["normalization"]["depth_applied"] is False
    assert "warning: These values look like counts" in err
    code, summary, err = _cli(capsys, "layout", "--input", str(path), "--generator", "chromosome", "--set",
                              "preset=lyu_haque_code", "--set", "depth=cpm", "--out", str(tmp_path / "l4.json.gz"),
                              "--json")
    assert code == 0 and summary["normalization"]["depth_applied"] is True and "warning: These values" not in err


def test_tcga_firehose_rsem_genes_file_reads_its_expected_counts(tmp_path, demo_expression, demo_genes,
                                                                 expected_counts):
    """Firehose's RSEM_genes layout: each barcode three times (raw_count, scaled_estimate, transcript_id)."""
    columns, entrez = demo_genes
    symbols = demo_expression.genes["symbol"].to_numpy()[columns]
    ids = [f"{symbol}|{gene}" if k % 7 else f"?|{gene}" for k, (symbol, gene) in enumerate(zip(symbols, entrez))]
    counts = expected_counts[:, columns]
    barcodes = [f"TCGA-A6-{2670 + i}-01A-02R-0821-07" for i in range(demo_expression.n_samples)]
    path = tmp_path / "COAD.rnaseqv2__illuminahiseq_rnaseqv2__unc_edu__Level_3__RSEM_genes__data.data.txt"
    with open(path, "w") as handle:
        handle.write("Hybridization REF\t" + "\t".join(b for b in barcodes for _ in range(3)) + "\n")
        handle.write("gene_id\t" + "\t".join("raw_count\tscaled_estimate\ttranscript_id" for _ in barcodes) + "\n")
        for j, gene_id in enumerate(ids):
            cells = (f"{counts[i, j]:.2f}\t{counts[i, j] / 4e7:.6e}\tuc00{j}abc.{1 + j % 3}" for i in range(len(barcodes)))
            handle.write(gene_id + "\t" + "\t".join(cells) + "\n")
    expr = read_expression(path)
    assert "raw_count columns (RSEM expected counts) were read" in expr.notes["header"]
    assert list(expr.sample_ids) == barcodes and expr.values.shape == counts.shape
    np.testing.assert_allclose(expr.values, counts, atol=0.006)
    assert (expr.genes["entrez_id"].to_numpy() == entrez).all()  # '?|ENTREZ' too, by the Entrez part
    assert expr.report()["looks_like_counts"]
    normalized = tmp_path / "COAD.RSEM_genes_normalized__data.data.txt"
    with open(normalized, "w") as handle:
        handle.write("Hybridization REF\t" + "\t".join(barcodes) + "\n")
        handle.write("gene_id\t" + "\t".join("normalized_count" for _ in barcodes) + "\n")
        for j, gene_id in enumerate(ids):
            handle.write(gene_id + "\t" + "\t".join(f"{v:.4f}" for v in counts[:, j] / 30) + "\n")
    assert "normalized_count" in read_expression(normalized).notes["header"]


def test_demo_tpm_is_not_scaled_again_and_says_why(demo_expression):
    """TPM is depth-normalised already (each cell sums to about 100,000 here, at most 10^6 by definition)."""
    report = demo_expression.report()
    assert not report["looks_like_counts"]
    assert "already normalised for depth" in report["depth_evidence"]
    assert "no library-size scaling by default" in report["value_scale_message"]
    layout = get_generator("chromosome")().fit(demo_expression, quality=False)
    assert layout.normalization.depth_applied_ is False


# ---------------------------------------------------------------- 3. transcripts (Salmon, RefSeq)

def _transcript_matrix(demo_expression, demo_genes, expected_counts, route: str, rng, versioned: bool):
    """Each demo gene's counts split over its real transcripts (Dirichlet shares); returns ids, values, truth."""
    links = _transcript_links()[route]
    by_gene = pd.Series(links.index.to_numpy(), index=links.to_numpy()).groupby(level=0).agg(list)
    columns, entrez = demo_genes
    ids, blocks, truth = [], [], {}
    for column, gene in zip(columns, entrez):
        transcripts = sorted(by_gene.get(gene, []))[:4]
        if not transcripts:
            continue
        shares = rng.dirichlet(np.ones(len(transcripts)), size=expected_counts.shape[0])
        blocks.append(expected_counts[:, [column]] * shares)
        ids += [f"{t}.{1 + k % 3}" if versioned else t for k, t in enumerate(transcripts)]
        truth[int(gene)] = expected_counts[:, column]
    return ids, np.hstack(blocks), truth


def test_salmon_transcripts_reach_their_genes_and_add_up(tmp_path, demo_expression, demo_genes, expected_counts,
                                                         capsys):
    rng = np.random.default_rng(1)
    ids, values, truth = _transcript_matrix(demo_expression, demo_genes, expected_counts, "ensembl_transcript", rng,
                                            versioned=True)
    ids += ["ENST99999999999.1", "ENSG00000141510.17"]  # a transcript the annotation lacks; a gene (TP53) row
    values = np.column_stack([values, np.ones(values.shape[0]), np.full(values.shape[0], 1e4)])
    path = _write_genes_as_rows(tmp_path / "salmon_numreads.tsv.gz", values, ids, demo_expression.sample_ids,
                                id_name="Name")
    expr = read_expression(path)
    mapping = expr.notes["feature_mapping"]
    assert mapping["kind"] == "transcripts" and mapping["collapse"] == "sum"
    assert mapping["features_by_route"] == {"ensembl_transcript": len(ids) - 2}
    # the gene row would be added to its own transcripts (counted twice): left out and said
    assert mapping["features_dropped"] == {"no gene in the annotation": 1, "a gene id among transcript ids": 1}
    assert mapping["n_genes"] == len(truth) and mapping["n_genes_from_several_features"] > 0.3 * len(truth)
    entrez = expr.genes["entrez_id"].to_numpy()
    assert set(entrez.tolist()) == set(truth)
    for gene in list(truth)[:50]:  # the gene's counts, summed back from its transcripts
        np.testing.assert_allclose(expr.values[:, entrez == gene][:, 0], truth[gene], rtol=1e-4, atol=0.01)
    symbols = gene_table().set_index("entrez_id")["symbol"]
    assert list(expr.gene_ids[:3]) == [symbols[e] for e in entrez[:3]]  # named by symbol
    assert expr.report()["looks_like_counts"] and "estimated counts" in expr.report()["depth_evidence"]
    # mean and max_mean on request; sum refused for logged values
    assert read_expression(path, collapse="mean").notes["feature_mapping"]["collapse"] == "mean"
    logged = _write_genes_as_rows(tmp_path / "salmon_log.tsv", np.log2(values + 1), ids, demo_expression.sample_ids)
    assert read_expression(logged).notes["feature_mapping"]["collapse"] == "max_mean"
    with pytest.raises(InputError, match="collapse=sum adds features"):
        read_expression(logged, collapse="sum")
    code, _, err = _cli(capsys, "layout", "--input", str(path), "--generator", "chromosome", "--out",
                        str(tmp_path / "s.json.gz"), "--json")
    assert code == 0 and "transcript ids reached" in err and "ensembl_transcript" in err


def test_refseq_counts_with_and_without_versions_reach_the_right_genes(tmp_path, demo_expression, demo_genes,
                                                                         expected_counts, capsys):
    rng = np.random.default_rng(2)
    ids, values, truth = _transcript_matrix(demo_expression, demo_genes, expected_counts, "refseq", rng,
                                            versioned=False)
    ids = [f"{t}.{k % 2 + 1}" if k % 2 else t for k, t in enumerate(ids)]  # half versioned, as real files mix
    values = np.round(values)
    path = _write_genes_as_rows(tmp_path / "refseq_counts.csv", values, ids, demo_expression.sample_ids,
                                id_name="refseq_id")
    code, summary, err = _cli(capsys, "layout", "--input", str(path), "--generator", "chromosome", "--out",
                              str(tmp_path / "r.json.gz"), "--json")
    assert code == 0 and summary["genes_by_route"] == {"refseq": len(truth)}
    assert f"{len(ids):,} of {len(ids):,} transcript ids reached {len(truth):,} genes" in err
    assert summary["normalization"]["depth_applied"] is True
    expr = read_expression(path)
    entrez = expr.genes["entrez_id"].to_numpy()
    assert set(entrez.tolist()) == set(truth) and (expr.genes["route"] == "refseq").all()
    gene = next(iter(truth))
    np.testing.assert_allclose(expr.values[:, entrez == gene][:, 0], truth[gene], atol=len(ids))


def test_tp53_transcripts_of_every_kind_map_to_tp53():
    from rnaimg_core.annotation import map_gene_ids

    mapping = map_gene_ids(["NM_000546.6", "NM_000546", "nm_000546", "ENST00000269305.9", "ENST00000269305",
                            "NP_000537", "XM_999999999"])
    assert mapping.entrez_ids.tolist() == [7157] * 5 + [-1, -1]
    assert mapping.routes.tolist() == ["refseq"] * 3 + ["ensembl_transcript"] * 2 + ["unmapped"] * 2


# ---------------------------------------------------------------- 2. microarray with a GEO platform table

@pytest.fixture(scope="module")
def microarray(tmp_path_factory, demo_expression, demo_genes):
    """A GEO series matrix of Affymetrix-style probes (DERIVED from the demo's log2 values) and its GPL table.

    Each gene has one to three probes (a bright one, dimmer cross-hybridising ones); one probe names two
    genes with GEO's ``///``, one has no gene (``---``), and control probes are absent from the table.
    """
    folder = tmp_path_factory.mktemp("geo")
    columns, entrez = demo_genes
    logged = np.log2(demo_expression.values + 1)
    symbols = demo_expression.genes["symbol"].to_numpy()
    rng = np.random.default_rng(3)
    probes, rows, gpl, best = [], [], [], {}
    for k, (column, gene) in enumerate(zip(columns, entrez)):
        n_probes = 1 + k % 3
        brightest = int(rng.integers(n_probes))
        for j in range(n_probes):
            probe = f"{200000 + 7 * k + j}_{'s_' if j == 1 else 'x_' if j == 2 else ''}at"
            signal = logged[:, column] + (4.0 if j == brightest else rng.uniform(0, 1))
            probes.append(probe)
            rows.append(signal + rng.normal(0, 0.05, signal.size))
            gpl.append((probe, "", symbols[column], str(gene)))
            if j == brightest:
                best[int(gene)] = rows[-1]
    extra = [("1552256_a_at", "HLA-DRB1 /// HLA-DRB4", "3123 /// 3126"), ("1552257_a_at", "---", "---")]
    for probe, symbol, gene in extra:
        probes.append(probe)
        rows.append(rng.uniform(3, 10, demo_expression.n_samples))
        gpl.append((probe, "", symbol, gene))
    probes.append("AFFX-BioB-5_at")
    rows.append(rng.uniform(3, 10, demo_expression.n_samples))
    series = folder / "GSE00000_series_matrix.txt.gz"
    with gzip.open(series, "wt") as handle:
        handle.write('!Series_title\t"DERIVED from the rnaimg demo: not a GEO series"\n')
        handle.write('!Series_platform_id\t"GPL570"\n')
        handle.write("!series_matrix_table_begin\n")
        handle.write('"ID_REF"\t' + "\t".join(f'"{s}"' for s in demo_expression.sample_ids) + "\n")
        for probe, row in zip(probes, rows):
            handle.write(f'"{probe}"\t' + "\t".join(f"{v:.4f}" for v in row) + "\n")
        handle.write("!series_matrix_table_end\n")
    platform = folder / "GPL570-55999.txt"
    with open(platform, "w") as handle:
        handle.write("#ID = Affymetrix Probe Set ID\n#Gene Symbol = A gene symbol, when one is available\n")
        handle.write("#ENTREZ_GENE_ID = Entrez Gene database UID\n")
        handle.write("ID\tGB_ACC\tGene Symbol\tENTREZ_GENE_ID\n")
        for row in gpl:
            handle.write("\t".join(row) + "\n")
    return series, platform, best, len(probes)


def test_microarray_probes_reach_genes_through_the_gpl_table(tmp_path, demo_expression, microarray, capsys):
    series, platform, best, n_probes = microarray
    sheet = _sheet(tmp_path / "sheet.csv", demo_expression)
    expr = read_expression(series, labels_path=sheet, gene_map=platform)
    report = expr.notes["feature_mapping"]
    assert report["gene_map_gene_column"] == "ENTREZ_GENE_ID" and report["gene_map_id_column"] == "ID"
    assert report["n_features"] == n_probes and report["n_genes"] == len(best)
    assert report["features_by_route"] == {"gene_map: entrez": n_probes - 3}
    assert report["features_dropped"] == {"names several genes": 1, "no gene in the gene map": 1,
                                          "not in the gene map": 1}
    assert report["dropped_examples"]["names several genes"] == ["1552256_a_at"]
    assert report["collapse"] == "max_mean"
    entrez = expr.genes["entrez_id"].to_numpy()
    assert set(entrez.tolist()) == set(best) and (expr.genes["route"] == "gene_map").all()
    for gene in list(best)[:60]:  # the brightest probe of each gene is the one kept
        np.testing.assert_allclose(expr.values[:, entrez == gene][:, 0], best[gene], atol=1e-3)
    assert not expr.report()["looks_like_counts"] and expr.classes  # log2 intensities: no depth scaling
    # the mean instead, on request
    mean = read_expression(series, labels_path=sheet, gene_map=platform, collapse="mean")
    assert mean.notes["feature_mapping"]["collapse"] == "mean"
    assert not np.allclose(mean.values, expr.values)
    # the command line reads the same, reports every route, and chromosome layouts now work
    code, summary, err = _cli(capsys, "layout", "--input", str(series), "--labels", str(sheet), "--gene-map",
                              str(platform), "--generator", "chromosome", "--out", str(tmp_path / "m.json.gz"),
                              "--json")
    assert code == 0 and summary["n_genes_placed"] > 0.9 * len(best)
    assert "names several genes (e.g. 1552256_a_at)" in err and "gene_map: entrez" in err
    assert summary["notes"]["features_to_genes"] == {"kind": "gene_map", "gene_map": platform.name,
                                                     "collapse": "max_mean"}
    # new samples through the same table; forgetting it names the table to give again
    code, summary, _ = _cli(capsys, "convert", "--input", str(series), "--labels", str(sheet), "--gene-map",
                            str(platform), "--layout", str(tmp_path / "m.json.gz"), "--out", str(tmp_path / "m.npz"),
                            "--json")
    assert code == 0 and summary["n_samples"] == demo_expression.n_samples
    code, _, err = _cli(capsys, "convert", "--input", str(series), "--layout", str(tmp_path / "m.json.gz"),
                        "--out", str(tmp_path / "m2.npz"))
    assert code == 2 and f"through the gene map {platform.name} (max_mean): give --gene-map" in err


def test_a_series_matrix_gives_its_labels_from_the_sample_characteristics(tmp_path, demo_expression):
    """GEO's !Sample_characteristics_ch1 lines ('cell type: Microglia/Macrophage') label the samples."""
    columns = demo_expression.genes["entrez_id"].to_numpy() > 0
    gsm = [f"GSM{1000000 + i}" for i in range(demo_expression.n_samples)]
    labels = demo_expression.labels.copy()
    labels[5] = ""  # a sample without a value is left out and counted
    series = tmp_path / "GSE00001_series_matrix.txt"
    with open(series, "w") as handle:
        handle.write('!Series_title\t"DERIVED from the rnaimg demo"\n')
        handle.write("!Sample_title\t" + "\t".join(f'"cell {i}"' for i in range(len(gsm))) + "\n")
        handle.write("!Sample_geo_accession\t" + "\t".join(f'"{g}"' for g in gsm) + "\n")
        handle.write("!Sample_characteristics_ch1\t" + "\t".join(f'"cell type: {v}"' if v else '""'
                                                                for v in labels) + "\n")
        handle.write("!Sample_characteristics_ch1\t" + "\t".join('"tissue: brain"' for _ in gsm) + "\n")
        handle.write("!series_matrix_table_begin\n")
        handle.write('"ID_REF"\t' + "\t".join(f'"{g}"' for g in gsm) + "\n")
        symbols = demo_expression.gene_ids[columns][:50]
        for symbol, row in zip(symbols, np.log2(demo_expression.values[:, columns][:, :50].T + 1)):
            handle.write(f'"{symbol}"\t' + "\t".join(f"{v:.3f}" for v in row) + "\n")
        handle.write("!series_matrix_table_end\n")
    expr = read_expression(series)
    assert expr.notes["geo_samples"]["label_column"] == "cell type"
    assert expr.n_samples == len(gsm) - 1 and expr.notes["label_join"]["n_samples_without_label"] == 1
    np.testing.assert_array_equal(expr.labels, np.delete(labels, 5))
    assert list(expr.notes["geo_samples"]["columns"]) == ["title", "cell type", "tissue"]
    assert set(read_expression(series, label_column="tissue").labels) == {"brain"}
    with pytest.raises(InputError, match="describes its samples by 'title', 'cell type', 'tissue'"):
        read_expression(series, label_column="subtype")


def test_a_two_column_symbol_map_and_a_soft_platform_block(tmp_path, demo_expression, microarray):
    series, platform, best, _ = microarray
    table = pd.read_csv(platform, sep="\t", comment="#", dtype=str, keep_default_na=False)
    two = tmp_path / "probe_to_symbol.csv"
    table[["ID", "Gene Symbol"]].rename(columns={"ID": "probe", "Gene Symbol": "symbol"}).to_csv(two, index=False)
    by_symbol = read_expression(series, gene_map=two)
    assert by_symbol.notes["feature_mapping"]["gene_map_gene_column"] == "symbol"
    assert set(by_symbol.genes["entrez_id"]) <= set(best) | {-1}
    assert by_symbol.notes["feature_mapping"]["n_genes"] >= 0.95 * len(best)
    soft = tmp_path / "GPL570_family.soft"
    with open(soft, "w") as handle:
        handle.write("^PLATFORM = GPL570\n!Platform_title = DERIVED test platform\n#ID = probe\n")
        handle.write("!platform_table_begin\n")
        table.to_csv(handle, sep="\t", index=False)
        handle.write("!platform_table_end\n")
    gene_map = read_gene_map(soft)
    assert gene_map.gene_column == "ENTREZ_GENE_ID" and gene_map.n_features == len(table)


def test_bad_gene_maps_say_what_is_wrong(tmp_path, microarray, capsys):
    series, platform, _, _ = microarray
    no_gene = tmp_path / "no_gene.tsv"
    no_gene.write_text("ID\tGB_ACC\tSPOT_ID\n1_at\tX1\tA\n")
    with pytest.raises(InputError, match="cannot tell which column names the gene"):
        read_gene_map(no_gene)
    clash = tmp_path / "clash.csv"
    clash.write_text("probe,gene\n1_at,TP53\n1_at,EGFR\n")
    with pytest.raises(InputError, match="listed with different genes"):
        read_gene_map(clash)
    wrong = tmp_path / "other_platform.csv"
    wrong.write_text("probe,gene\nILMN_1,TP53\nILMN_2,EGFR\n")
    with pytest.raises(InputError, match="none of the .* reaches a gene"):
        read_expression(series, gene_map=wrong, orientation="genes-as-rows")
    with use_limits(max_file_bytes=1000), pytest.raises(InputError, match="max_file_bytes"):
        read_gene_map(platform)
    with use_limits(max_cells=2000), pytest.raises(InputError, match="max_cells"):
        read_gene_map(platform)
    bomb = tmp_path / "GPL_bomb.txt.gz"  # 0.1 MB of gzip, 20 MB of text
    with gzip.open(bomb, "wt") as handle:
        handle.write("ID\tGene Symbol\n" + "1_at\tTP53" + " " * 20_000_000 + "\n")
    with use_limits(max_decompressed_bytes=2**20), pytest.raises(InputError, match="max_decompressed_bytes"):
        read_gene_map(bomb)
    code = main(["layout", "--input", str(series), "--gene-map", str(no_gene), "--generator", "random",
                 "--out", str(tmp_path / "x.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "cannot tell which column names the gene" in err[-1]


# ---------------------------------------------------------------- 4. Lyu & Haque's released code

def _their_code(values: np.ndarray, chromosomes: np.ndarray, fit: np.ndarray) -> tuple[np.ndarray, int]:
    """preprocessing_th1.py's arithmetic, written from their description: annotation genes, log2(1+x), <= 1 to 0,
    stable sort on the chromosome text, VarianceThreshold(6) (here on the fit samples), 102 x 102, / max."""
    features = np.log2(1.0 + values.astype(np.float64))
    features[features <= 1] = 0
    known = [k for k in range(values.shape[1]) if chromosomes[k] in
             [str(i) for i in range(1, 23)] + ["X", "Y", "MT"]]
    order = [known[i] for i, _ in sorted(enumerate(chromosomes[known]), key=lambda pair: pair[1])]
    selected = features[:, order]
    selected = selected[:, selected[fit].var(axis=0) > 6]
    images = np.zeros((values.shape[0], 102 * 102))
    images[:, :selected.shape[1]] = selected / selected.max(axis=1, keepdims=True)
    return images, selected.shape[1]


def test_lyu_haque_code_preset_reproduces_their_released_code(tmp_path, demo_expression):
    expr = demo_expression
    fit = np.arange(0, expr.n_samples, 3)
    layout = get_generator("chromosome")(preset="lyu_haque_code").fit(expr, train_index=fit, quality=False)
    expected, n_genes = _their_code(expr.values, expr.genes["chromosome"].astype(str).to_numpy(), fit)
    images = Layout.from_json(layout.to_json()).transform(expr.values, expr.gene_ids)  # new samples, after a reload
    np.testing.assert_allclose(images.reshape(expr.n_samples, -1), expected, atol=1e-5)
    assert layout.placement_gene.size == n_genes and layout.shape == (1, 102, 102)
    assert [r["name"] for r in layout.regions][:4] == ["chr1", "chr10", "chr11", "chr12"]  # text order
    chromosome = expr.genes["chromosome"].to_numpy()[layout.placement_gene]
    assert all(np.all(np.diff(layout.placement_gene[chromosome == c]) > 0) for c in set(chromosome))  # input order
    notes = layout.notes
    assert notes["n_dropped_low_variance"] > 0 and "training samples only" in notes["variance_filter_fitted_on"]
    assert "n_dropped_no_position" not in notes and notes["n_dropped_no_chromosome"] < 20
    assert "warning" in notes and "absolute" in notes["warning"]  # 9,450 cells' genes: few pass a TCGA threshold
    assert layout.params["log"] == "yes" and layout.params["depth"] == "none"
    assert layout.normalization.to_dict()["floor"] == 1.0
    # the paper's variant, and the old name of it
    paper = get_generator("chromosome")(preset="lyu_haque").fit(expr, train_index=fit, quality=False)
    assert paper.params["preset"] == "lyu_haque_paper" and paper.normalization.floor is None


def test_paper_preset_files_low_variance_genes_under_their_own_note(demo_expression):
    """Issue 19: on a 3,899-gene cohort low-variance genes were counted as 'without a chromosome position'."""
    columns = np.sort(np.random.default_rng(0).choice(demo_expression.n_genes, 3899, replace=False))
    from rnaimg_core.expression import from_arrays

    expr = from_arrays(demo_expression.values[:, columns], demo_expression.sample_ids,
                       demo_expression.gene_ids[columns], demo_expression.labels)
    layout = get_generator("chromosome")(preset="lyu_haque_paper").fit(expr, quality=False)
    no_position = int((expr.genes["start"].isna() | ~expr.genes["chromosome"].isin(
        [str(i) for i in range(1, 23)] + ["X", "Y"])).sum())
    assert layout.notes["n_dropped_no_position"] == no_position
    assert layout.notes["n_dropped_low_variance"] == expr.n_genes - no_position - layout.placement_gene.size
    # every region's pixels hold genes of that chromosome
    grid = layout.region_grid().reshape(-1)
    names = "chr" + expr.genes["chromosome"].to_numpy()[layout.placement_gene]
    assert np.array_equal(grid[layout.placement_pixel], names)
