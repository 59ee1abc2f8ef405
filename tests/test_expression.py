"""Reading expression files: formats, orientation, labels, gene mapping and every bad input."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from rnaimg_core.errors import InputError
from rnaimg_core.readers import read_expression, read_expression_bytes

GENES = ["TP53", "ARID1A", "EGFR", "IDH1", "CIC", "FUBP1", "MYC", "PTEN"]


def small_frame(n_samples: int = 6, genes=GENES, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.gamma(2.0, 50.0, size=(n_samples, len(genes))).round(3),
                         index=[f"S{i}" for i in range(n_samples)], columns=genes)
    frame.index.name = "sample"
    return frame


def test_demo_is_real_and_labelled(demo_expression):
    assert demo_expression.values.shape == (184, 9450)
    assert demo_expression.class_counts()["malignant_93"] == 40
    report = demo_expression.report()
    assert report["value_scale"] == "raw"
    assert report["gene_mapping"]["n_mapped"] > 9300


def test_demo_mapping_report_counts_previous_symbols(demo_expression):
    mapping = demo_expression.notes["gene_mapping"]
    # 8,839 official symbols, 595 previous HGNC symbols (SEPT2, GBA, CD97, ...), 9 other aliases;
    # 7 left: 5 previous symbols of several genes and 2 ids with no match at all.
    assert mapping["by_route"] == {"symbol": 8839, "previous_symbol": 595, "alias": 9, "unmapped": 7}
    assert mapping["n_mapped"] == 9443
    assert mapping["n_ambiguous_previous"] == 5
    assert mapping["ambiguous_previous_examples"]["QARS"] == ["EPRS1", "QARS1"]
    genes = demo_expression.genes.set_index("gene_id")
    assert genes.loc["SEPT2", ["symbol", "chromosome"]].tolist() == ["SEPTIN2", "2"]
    assert genes.loc["GBA", "route"] == "previous_symbol" and genes.loc["GBA", "symbol"] == "GBA1"


def test_old_symbols_in_a_file_get_current_genes_and_a_report(tmp_path):
    frame = small_frame(genes=["SEPT2", "CD97", "QARS", "TP53", "EGFR", "MYC"])
    frame.insert(0, "label", list("AABBCC"))
    path = tmp_path / "old.csv"
    frame.to_csv(path)
    expr = read_expression(path, label_column="label")
    genes = expr.genes.set_index("gene_id")
    assert genes.loc[["SEPT2", "CD97", "TP53"], "entrez_id"].tolist() == [4735, 976, 7157]
    assert genes.loc[["SEPT2", "CD97"], "symbol"].tolist() == ["SEPTIN2", "ADGRE5"]
    assert genes.loc["QARS", "entrez_id"] == -1
    mapping = expr.notes["gene_mapping"]
    assert mapping["by_route"] == {"symbol": 3, "previous_symbol": 2, "unmapped": 1}
    assert mapping["ambiguous_previous_examples"] == {"QARS": ["EPRS1", "QARS1"]}


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".csv.gz", ".tsv.gz", ".txt", ".parquet"])
def test_formats_samples_as_rows_with_label_column(tmp_path, suffix):
    frame = small_frame()
    frame.insert(0, "tumor_type", ["A", "A", "B", "B", "C", "C"])
    path = tmp_path / f"m{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        sep = "," if ".csv" in suffix else "\t"
        frame.to_csv(path, sep=sep)
    expr = read_expression(path)
    assert expr.values.shape == (6, len(GENES))
    assert expr.labels.tolist() == ["A", "A", "B", "B", "C", "C"]
    assert expr.notes["label_column"] == "tumor_type"
    assert expr.notes["orientation"] == "samples-as-rows"
    np.testing.assert_allclose(expr.values, frame[GENES].to_numpy(), rtol=1e-6)


def test_h5ad_with_obs_labels(tmp_path):
    anndata = pytest.importorskip("anndata")
    frame = small_frame()
    adata = anndata.AnnData(frame.to_numpy(np.float32),
                            obs=pd.DataFrame({"cell_type": list("AABBCC")}, index=frame.index),
                            var=pd.DataFrame(index=GENES))
    path = tmp_path / "m.h5ad"
    adata.write_h5ad(path)
    expr = read_expression(path)
    assert expr.labels.tolist() == list("AABBCC")
    assert expr.gene_ids.tolist() == GENES


def test_tcga_genes_as_rows_with_sample_sheet(tmp_path):
    genes = ["TP53|7157", "?|100133144", "ARID1A|8289", "EGFR|1956", "OLDNAME|4609"]
    samples = ["TCGA-01", "TCGA-02", "TCGA-03", "TCGA-04", "TCGA-05"]
    matrix = pd.DataFrame(np.arange(25, dtype=float).reshape(5, 5) * 10, index=genes, columns=samples)
    matrix.index.name = "gene_id"
    path = tmp_path / "tcga.tsv.gz"
    matrix.to_csv(path, sep="\t")
    sheet = pd.DataFrame({"sample": samples[:4] + ["TCGA-99"], "cancer_type": ["BRCA", "BRCA", "LUAD", "LUAD", "GBM"]})
    sheet_path = tmp_path / "sheet.csv"
    sheet.to_csv(sheet_path, index=False)

    expr = read_expression(path, labels_path=sheet_path)
    assert expr.notes["orientation"] == "genes-as-rows"
    assert expr.sample_ids.tolist() == samples[:4]
    join = expr.notes["label_join"]
    assert join["n_samples_without_label"] == 1 and join["samples_without_label"] == ["TCGA-05"]
    assert join["labels_without_sample"] == ["TCGA-99"]
    genes_table = expr.genes.set_index("gene_id")
    assert genes_table.loc["TP53|7157", "entrez_id"] == 7157
    assert genes_table.loc["TP53|7157", "chromosome"] == "17"
    # an outdated symbol is still found through its Entrez part
    assert genes_table.loc["OLDNAME|4609", "symbol"] == "MYC"
    assert expr.notes["gene_mapping"]["by_route"]["tcga_entrez"] >= 4


def test_orientation_override(tmp_path):
    frame = small_frame()
    frame.insert(0, "label", list("AABBCC"))
    path = tmp_path / "m.csv"
    frame.to_csv(path)
    expr = read_expression(path, orientation="samples-as-rows", label_column="label")
    assert expr.n_samples == 6


def test_upload_bytes_leave_no_file(tmp_path):
    frame = small_frame()
    frame.insert(0, "label", list("AABBCC"))
    data = frame.to_csv().encode()
    expr = read_expression_bytes(data, "upload.csv")
    assert expr.source == "upload.csv"
    import tempfile
    from pathlib import Path
    assert not list(Path(tempfile.gettempdir()).glob("rnaimg-upload-*"))


# ------------------------------------------------------------- bad input

def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("empty.csv", "", "is empty"),
        ("header.csv", "sample,TP53,EGFR\n", "no data rows"),
        ("text.csv", "sample,label,note\nS1,A,x\nS2,A,y\n", "no numeric columns"),
        ("cell.csv", "sample,label,TP53,EGFR\nS1,A,1,2\nS2,A,oops,3\nS3,B,1,1\nS4,B,2,2\n", "'oops' at sample 'S2', column 'TP53'"),
        ("nan.csv", "sample,label,TP53,EGFR\nS1,A,1,2\nS2,A,,3\nS3,B,1,1\nS4,B,2,2\n", "missing (NaN) at sample 'S2', gene 'TP53'"),
        ("inf.csv", "sample,label,TP53,EGFR\nS1,A,1,inf\nS2,A,1,3\nS3,B,1,1\nS4,B,2,2\n", "infinite or beyond the range of 32-bit values (±3.4e+38) at sample 'S1', gene 'EGFR'"),
        ("dupgene.csv", "sample,label,TP53,TP53\nS1,A,1,2\nS2,A,1,3\nS3,B,1,1\nS4,B,2,2\n", "duplicate gene id"),
        ("dupsample.csv", "sample,label,TP53,EGFR\nS1,A,1,2\nS1,A,1,3\nS3,B,1,1\nS4,B,2,2\n", "duplicate sample id"),
        ("single.csv", "sample,label,TP53,EGFR\nS1,A,1,2\nS2,A,1,3\nS3,B,1,1\n", "fewer than 2 samples: 'B'"),
        ("data.xlsx", "whatever", "unsupported file type '.xlsx'"),
    ],
)
def test_bad_inputs_get_clear_messages(tmp_path, name, text, expected):
    path = write(tmp_path, name, text)
    with pytest.raises(InputError, match=None) as info:
        read_expression(path)
    assert expected in str(info.value), str(info.value)


def test_missing_label_column(tmp_path):
    path = write(tmp_path, "m.csv", "sample,TP53,EGFR\nS1,1,2\nS2,1,3\n")
    with pytest.raises(InputError, match="label column 'tumour' not found"):
        read_expression(path, label_column="tumour")


def test_size_limit(tmp_path):
    frame = small_frame(50)
    path = tmp_path / "big.csv"
    frame.to_csv(path)
    from rnaimg_core.limits import use_limits

    with use_limits(max_file_bytes=100), pytest.raises(
            InputError, match=r"big\.csv is .* over the limit max_file_bytes = .* RNAIMG_MAX_FILE_BYTES"):
        read_expression(path)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("sample,label\n" + "".join(f"{s},A\n" for s in frame.index) + "x,A\n" * path.stat().st_size)
    with use_limits(max_file_bytes=path.stat().st_size), pytest.raises(
            InputError, match="Sample sheet sheet.csv is .* max_file_bytes"):
        read_expression(path, labels_path=sheet)  # the sheet is bounded by the same limit


def test_sample_sheet_matching_nothing(tmp_path):
    path = tmp_path / "m.csv"
    small_frame().to_csv(path)
    sheet = write(tmp_path, "sheet.csv", "sample,type\nX1,A\nX2,B\n")
    with pytest.raises(InputError, match="No sample id of the matrix is in the sample sheet"):
        read_expression(path, labels_path=sheet)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "m.csv.gz"
    path.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(InputError, match="could not be read"):
        read_expression(path)


def test_gzip_roundtrip_values(tmp_path):
    frame = small_frame()
    frame.insert(0, "label", list("AABBCC"))
    path = tmp_path / "m.csv.gz"
    with gzip.open(path, "wt") as handle:
        frame.to_csv(handle)
    assert read_expression(path).n_genes == len(GENES)
