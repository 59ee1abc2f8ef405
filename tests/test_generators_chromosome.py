"""Chromosome generator: mitochondrial genes with include_mt (shipped chrM positions) and the Lyu & Haque preset."""

from __future__ import annotations

import numpy as np

from rnaimg_core import annotation
from rnaimg_core.expression import from_arrays
from rnaimg_core.generators import fit_layout
from rnaimg_core.layout import load_layout
from tests.helpers import pixel_rc

MT_SYMBOLS = ["MT-ND1", "MT-CO1", "MT-ATP6", "MT-CYB", "MT-ND6", "MT-RNR2"]


def _with_mitochondrial_genes(demo_expression):
    """The first 300 demo genes plus six HGNC-named mitochondrial genes (real demo values reused)."""
    values = demo_expression.values[:, :300 + len(MT_SYMBOLS)]
    gene_ids = list(demo_expression.gene_ids[:300]) + MT_SYMBOLS
    return from_arrays(values, demo_expression.sample_ids, np.array(gene_ids, dtype=object),
                       demo_expression.labels)


def test_mitochondrial_symbols_map_to_chrM_with_positions():
    mapping = annotation.map_gene_ids(MT_SYMBOLS + ["mt-co1"])
    assert mapping.n_mapped == len(MT_SYMBOLS) + 1
    table = annotation.gene_table().set_index("entrez_id")
    genes = table.loc[mapping.entrez_ids]
    assert (genes["chromosome"] == "MT").all()
    assert genes["start"].notna().all()
    genes = table
    # MT-CO1 (COX1, Entrez 4512) sits at 5,904-7,445 of the rCRS, plus strand; MT-ND6 is on the minus strand
    co1 = genes.loc[4512]
    assert (co1["symbol"], co1["start"], co1["end"], co1["strand"]) == ("COX1", 5904, 7445, "+")
    assert genes.loc[4541, "strand"] == "-"
    assert (annotation.gene_table()["chromosome"] == "MT").sum() == 37
    assert annotation.gene_table().query("chromosome == 'MT'")["start"].notna().all()


def test_include_mt_places_mitochondrial_genes_after_y_in_genome_order(demo_expression):
    expr = _with_mitochondrial_genes(demo_expression)
    without = fit_layout(expr, "chromosome", quality=False)
    with_mt = fit_layout(expr, "chromosome", {"include_mt": True}, quality=False)
    mt_columns = np.arange(300, 300 + len(MT_SYMBOLS))
    assert not np.isin(mt_columns, without.placed_genes()).any()
    assert np.isin(mt_columns, with_mt.placed_genes()).all()
    _, row, col = pixel_rc(with_mt)
    flat = row * with_mt.shape[2] + col
    nuclear = np.setdiff1d(with_mt.placed_genes(), mt_columns)
    assert flat[mt_columns].min() > flat[nuclear].max()  # after every nuclear gene
    # in chrM order: ND1 3307, CO1 5904, ATP6 8527, ND6 14149, CYB 14747; RNR2 1671 first
    order = np.array(MT_SYMBOLS)[np.argsort(flat[mt_columns])]
    assert order.tolist() == ["MT-RNR2", "MT-ND1", "MT-CO1", "MT-ATP6", "MT-ND6", "MT-CYB"]
    assert any(r["name"] == "chrMT" for r in with_mt.regions)


def test_lyu_haque_preset_uses_their_image_and_variance_filter(demo_expression):
    layout = fit_layout(demo_expression, "chromosome", {"preset": "lyu_haque_paper"}, quality=False)
    assert layout.shape == (1, 102, 102)
    dropped = layout.notes["n_dropped_low_variance"]
    assert 0 < dropped < demo_expression.n_genes
    placed = layout.placed_genes()
    logged = np.log2(1 + demo_expression.values[:, placed])  # the demo is TPM-like: log applies
    assert logged.var(axis=0).min() >= 1.2
    default = fit_layout(demo_expression, "chromosome", quality=False)
    assert placed.size + dropped == default.placed_genes().size


def test_lyu_haque_preset_scales_each_sample_by_its_maximum(tmp_path, demo_expression):
    """Their values: log2(1+x), then each sample divided by its largest placed gene, so every image lies
    in [0, 1] with its brightest pixel exactly 1; the Data page's scale (here zscore) does not override it."""
    expr = demo_expression
    train = np.arange(0, expr.n_samples, 2)
    layout = fit_layout(expr, "chromosome", {"preset": "lyu_haque_paper", "scale": "zscore"}, train_index=train)
    assert layout.params["scale"] == "sample_max" and layout.normalization.scale == "sample_max"
    placed = layout.placed_genes()
    assert np.array_equal(layout.normalization.sample_genes_, placed)
    images = layout.transform(expr.values)
    assert images.min() >= 0 and images.max() <= 1
    logged = np.log2(1 + expr.values[:, placed].astype(np.float32))
    expressed = logged.max(axis=1) > 0
    assert expressed.sum() > 150
    assert np.all(images.reshape(expr.n_samples, -1).max(axis=1)[expressed] == 1.0)
    # pixel values are the genes' log2(1+x) over the sample's largest, held-out samples included
    flat = images.reshape(expr.n_samples, -1)[:, layout.placement_pixel]
    scaled = logged / np.where(expressed, logged.max(axis=1), 1)[:, None]
    want = scaled[:, np.searchsorted(placed, layout.placement_gene)]  # placed is sorted: column of each placement
    np.testing.assert_allclose(flat, want, rtol=1e-6, atol=1e-7)
    # the layout file keeps the scaling: save and load give bit-identical images
    loaded = load_layout(layout.save(tmp_path / "lyu_haque.layout.json.gz"))
    assert loaded.normalization.scale == "sample_max"
    assert np.array_equal(loaded.normalization.sample_genes_, placed)
    assert np.array_equal(loaded.transform(expr.values, expr.gene_ids), images)
    default = fit_layout(expr, "chromosome", train_index=train, quality=False)
    assert default.normalization.scale == "zscore" and default.transform(expr.values).min() < 0
