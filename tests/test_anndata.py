"""AnnData at the door: Expression <-> AnnData, sparse matrices and .h5ad files, on the real demo."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from rnaimg_core import expression
from rnaimg_core.errors import InputError
from rnaimg_core.expression import Expression, as_expression, dense_rows
from rnaimg_core.generators import get_generator
from rnaimg_core.readers import read_expression


@pytest.fixture(scope="module")
def small(demo_expression) -> Expression:
    """Every fourth demo cell on the first 600 genes: all six classes, quick to fit."""
    demo = demo_expression
    rows = np.arange(0, demo.n_samples, 4)
    return expression.from_arrays(demo.values[rows, :600], demo.sample_ids[rows], demo.gene_ids[:600],
                                  demo.labels[rows], source="demo subset")


def assert_same_expression(got: Expression, want: Expression) -> None:
    np.testing.assert_array_equal(got.values, want.values)
    assert got.values.dtype == np.float32
    assert got.sample_ids.tolist() == want.sample_ids.tolist()
    assert got.gene_ids.tolist() == want.gene_ids.tolist()
    assert (got.labels is None) == (want.labels is None)
    if want.labels is not None:
        assert got.labels.tolist() == want.labels.tolist()


def test_demo_round_trip(demo_expression):
    split = np.where(np.arange(demo_expression.n_samples) % 5 == 0, "holdout", "fit")
    adata = demo_expression.to_anndata(split=split)
    assert adata.shape == (184, 9450) and adata.X.dtype == np.float32
    assert adata.obs["label"].value_counts()["malignant_93"] == 40
    assert (adata.obs["split"] == "holdout").sum() == 37
    # var carries the shipped GRCh38 gene table, aligned with the genes
    assert adata.var.loc["TP53", "chromosome"] == "17" and adata.var.loc["TP53", "entrez_id"] == 7157
    assert adata.var["symbol"].tolist() == demo_expression.genes["symbol"].tolist()

    back = Expression.from_anndata(adata)
    assert_same_expression(back, demo_expression)
    assert back.notes["label_column"] == "label"
    assert back.obs["split"].tolist() == split.tolist()
    assert_same_expression(Expression.from_anndata(back.to_anndata()), demo_expression)


def test_round_trip_through_an_h5ad_file(tmp_path, small):
    path = tmp_path / "small.h5ad"
    small.to_anndata().write_h5ad(path)
    assert_same_expression(Expression.from_anndata(anndata.read_h5ad(path)), small)


def tiny_anndata() -> anndata.AnnData:
    genes = ["TP53", "EGFR", "MYC", "PTEN", "CIC"]
    counts = np.arange(30, dtype=np.float32).reshape(6, 5)
    obs = pd.DataFrame({"tumour": ["A", "A", "B", "B", "C", "C"],
                        "cell_type": pd.Categorical(["x", "x", "y", "y", None, "y"]),
                        "batch": [1, 1, 2, 2, 3, 3]},
                       index=[f"cell{i}" for i in range(6)])
    adata = anndata.AnnData(np.log2(counts + 1), obs=obs, var=pd.DataFrame(index=genes))
    adata.layers["counts"] = counts
    return adata


def test_label_key_and_layer():
    adata = tiny_anndata()
    expr = Expression.from_anndata(adata, label_key="tumour", layer="counts")
    assert expr.labels.tolist() == list("AABBCC")
    np.testing.assert_array_equal(expr.values, adata.layers["counts"])
    assert expr.obs["batch"].tolist() == [1, 1, 2, 2, 3, 3]


def test_guessed_label_column_drops_unlabelled_cells():
    expr = Expression.from_anndata(tiny_anndata())
    assert expr.notes["label_column"] == "cell_type"
    assert expr.sample_ids.tolist() == ["cell0", "cell1", "cell2", "cell3", "cell5"]
    assert expr.notes["label_join"]["samples_without_label"] == ["cell4"]
    np.testing.assert_allclose(expr.values[-1], np.log2(np.arange(25, 30) + 1), rtol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"label_key": "tissue"}, "label column 'tissue' not found. Columns include: tumour, cell_type, batch"),
    ({"layer": "spliced"}, "layer 'spliced' not found; layers are: counts"),
])
def test_missing_label_key_or_layer(kwargs, message):
    with pytest.raises(InputError) as info:
        Expression.from_anndata(tiny_anndata(), **kwargs)
    assert message in str(info.value)


def test_positional_var_names_fall_back_to_a_gene_column():
    adata = tiny_anndata()
    adata.var["gene_symbols"] = adata.var_names.to_numpy()
    adata.var_names = [str(i) for i in range(adata.n_vars)]
    expr = Expression.from_anndata(adata, label_key="tumour")
    assert expr.gene_ids.tolist() == ["TP53", "EGFR", "MYC", "PTEN", "CIC"]
    assert expr.notes["gene_id_column"] == "gene_symbols"
    assert expr.genes["entrez_id"].iloc[0] == 7157


def test_as_expression(small):
    assert as_expression(small) is small
    assert_same_expression(as_expression(small.to_anndata()), small)
    assert as_expression(tiny_anndata(), label_key="tumour").labels.tolist() == list("AABBCC")
    with pytest.raises(InputError, match="Expected an Expression or an AnnData, got ndarray"):
        as_expression(small.values)


def test_generator_fits_an_anndata(small):
    from_expression = get_generator("deepmapper")().fit(small)
    from_anndata = get_generator("deepmapper")().fit(small.to_anndata())
    assert from_anndata.gene_ids.tolist() == from_expression.gene_ids.tolist()
    np.testing.assert_array_equal(from_anndata.placement_pixel, from_expression.placement_pixel)
    np.testing.assert_array_equal(from_anndata.transform(small.values), from_expression.transform(small.values))


def test_transform_of_sparse_and_anndata_equals_dense(small):
    layout = get_generator("deepmapper")().fit(small)
    values = small.values.copy()
    values[values < 50] = 0  # a realistic single-cell sparsity
    dense = layout.transform(values, device="cpu")
    sparse = scipy.sparse.csr_matrix(values)
    np.testing.assert_array_equal(layout.transform(sparse, device="cpu"), dense)
    np.testing.assert_array_equal(layout.transform(sparse.tocsc(), small.gene_ids, device="cpu"), dense)
    # an AnnData brings its own gene ids: shuffled columns are matched by name
    order = np.random.default_rng(0).permutation(small.n_genes)
    adata = anndata.AnnData(sparse[:, order], var=pd.DataFrame(index=small.gene_ids[order]))
    np.testing.assert_allclose(layout.transform(adata, device="cpu"), dense, rtol=1e-6)


def test_dense_rows_picks_rows_block_by_block(monkeypatch):
    matrix = scipy.sparse.random(50, 7, density=0.3, format="csr", random_state=0, dtype=np.float64)
    monkeypatch.setattr(expression, "_DENSE_CHUNK_BYTES", 4 * 7 * 3)  # three rows per block
    rows = np.array([0, 1, 2, 9, 10, 31, 49])
    got = dense_rows(matrix, rows)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, matrix.toarray()[rows].astype(np.float32))
    np.testing.assert_array_equal(dense_rows(matrix.toarray()), matrix.toarray().astype(np.float32))


def test_sparse_h5ad_file_reads_like_the_dense_one(tmp_path, small, monkeypatch):
    values = small.values.copy()
    values[values < 50] = 0
    obs = pd.DataFrame({"cell_type": small.labels}, index=small.sample_ids)
    obs.iloc[3, 0] = None  # one unlabelled cell, dropped in both
    var = pd.DataFrame(index=small.gene_ids)
    anndata.AnnData(values, obs=obs, var=var).write_h5ad(tmp_path / "dense.h5ad")
    anndata.AnnData(scipy.sparse.csr_matrix(values), obs=obs, var=var).write_h5ad(tmp_path / "sparse.h5ad")
    dense = read_expression(tmp_path / "dense.h5ad")
    monkeypatch.setattr(expression, "_DENSE_CHUNK_BYTES", 4 * small.n_genes * 5)  # five cells per block
    sparse = read_expression(tmp_path / "sparse.h5ad")
    assert_same_expression(sparse, dense)
    assert sparse.n_samples == small.n_samples - 1
    assert sparse.notes == dense.notes
    assert sparse.notes["label_join"]["samples_without_label"] == [small.sample_ids[3]]
