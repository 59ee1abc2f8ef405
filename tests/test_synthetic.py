"""Synthetic TCGA-like data: seeded, labelled synthetic, real genes, planted structure."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rnaimg_core.annotation import gene_table
from rnaimg_core.errors import InputError
from rnaimg_core.synthetic import SyntheticData, make_synthetic, make_synthetic_small


@pytest.fixture(scope="module")
def small() -> SyntheticData:
    return make_synthetic_small(seed=0)


@pytest.fixture(scope="module")
def log_values(small) -> np.ndarray:
    return np.log2(small.values.astype(np.float64) + 1)


def entrez_ids(gene_ids: np.ndarray) -> np.ndarray:
    return np.array([int(gene_id.split("|")[1]) for gene_id in gene_ids])


def test_shapes_and_dtypes(small):
    assert small.values.shape == (300, 2000)
    assert small.values.dtype == np.float32
    assert small.sample_ids.shape == small.labels.shape == (300,)
    assert small.gene_ids.shape == (2000,)
    for ids in (small.sample_ids, small.gene_ids, small.labels):
        assert ids.dtype.kind == "U"
    assert len(set(small.sample_ids)) == 300
    assert len(set(small.gene_ids)) == 2000
    assert np.isfinite(small.values).all() and small.values.min() >= 0
    assert (small.values == 0).any()  # low-expressed genes give zeros, as in real data


def test_same_seed_same_data_other_seed_other_data(small):
    again = make_synthetic_small(seed=0)
    np.testing.assert_array_equal(again.values, small.values)
    np.testing.assert_array_equal(again.gene_ids, small.gene_ids)
    np.testing.assert_array_equal(again.labels, small.labels)
    assert again.chromosome_arm_effects.equals(small.chromosome_arm_effects)
    other = make_synthetic_small(seed=1)
    assert not np.array_equal(other.values, small.values)
    assert set(other.gene_ids) != set(small.gene_ids)


def test_always_labelled_synthetic(small):
    assert small.sample_ids[0] == "synthetic-000001"
    assert all(sample_id.startswith("synthetic-") for sample_id in small.sample_ids)
    assert sorted(set(small.labels)) == [f"SYN0{c}" for c in range(1, 7)]
    assert small.description.startswith("SYNTHETIC")
    assert "log2(x + 1)" in small.description
    with pytest.raises(dataclasses.FrozenInstanceError):
        small.labels = np.array(["real"])  # type: ignore[misc]


def test_genes_are_real_annotated_genes_in_tcga_form(small):
    table = gene_table()
    symbol_of = dict(zip(table["entrez_id"], table["symbol"], strict=True))
    ids = entrez_ids(small.gene_ids)
    assert set(ids) <= set(symbol_of)
    symbols = [gene_id.split("|")[0] for gene_id in small.gene_ids]
    withheld = sum(symbol == "?" for symbol in symbols)
    assert 5 <= withheld <= 50  # about 1 %
    assert all(symbol in ("?", symbol_of[e]) for symbol, e in zip(symbols, ids, strict=True))
    assert list(small.gene_ids) == sorted(small.gene_ids)  # TCGA column order
    placed = table.set_index("entrez_id").loc[ids]
    assert placed["start"].notna().mean() > 0.97
    assert (placed["gene_type"] == "protein-coding").mean() > 0.85


def test_every_class_has_ten_samples_and_sizes_differ(small):
    _, counts = np.unique(small.labels, return_counts=True)
    assert counts.min() >= 10
    assert counts.max() > 2 * counts.min()


def test_driver_genes_are_higher_in_their_class_only(small, log_values):
    assert set(small.driver_genes) == set(small.labels)
    for label, columns in small.driver_genes.items():
        assert columns.size == 10
        in_class = small.labels == label
        gap = log_values[in_class][:, columns].mean(axis=0) - log_values[~in_class][:, columns].mean(axis=0)
        # Each gene is raised in most, not all, of the class's samples, over a noisy
        # background: ask for a clear mean shift and nearly every gene going up.
        assert gap.mean() > 0.3
        assert (gap > 0).mean() >= 0.9


def test_module_genes_correlate_more_than_random_pairs(small, log_values):
    def mean_correlation(columns: np.ndarray) -> float:
        corr = np.corrcoef(log_values[:, columns], rowvar=False)
        return float(np.nanmean(corr[np.triu_indices(columns.size, 1)]))

    assert len(small.modules) == 10
    within = [mean_correlation(columns) for columns in small.modules.values()]
    rng = np.random.default_rng(0)
    varying = np.flatnonzero(log_values.std(axis=0) > 0)  # a few genes are zero everywhere
    random_sets = [mean_correlation(rng.choice(varying, 30, replace=False)) for _ in range(10)]
    assert min(within) > 0.3
    assert min(within) > max(random_sets) + 0.2


def test_copy_number_events_shift_whole_regions(small, log_values):
    effects = small.chromosome_arm_effects
    assert {"label", "chromosome", "arm", "start", "end", "n_genes", "kind", "log2_change"} <= set(effects)
    assert set(effects["label"]) == set(small.labels)
    assert set(effects["kind"]) <= {"gain", "loss"}
    # The strongest event of a class moves its region's mean expression the right way.
    table = gene_table().set_index("entrez_id")
    genes = table.loc[entrez_ids(small.gene_ids)]
    chromosome = genes["chromosome"].to_numpy()
    start = genes["start"].to_numpy(dtype=np.float64, na_value=np.nan)
    event = effects.loc[effects["log2_change"].abs().idxmax()]
    region = (chromosome == event["chromosome"]) & (start >= event["start"]) & (start <= event["end"])
    assert region.sum() >= event["n_genes"]
    in_class = small.labels == event["label"]
    shift = log_values[in_class][:, region].mean() - log_values[~in_class][:, region].mean()
    assert np.sign(shift) == np.sign(event["log2_change"])


def test_parameters_are_checked():
    with pytest.raises(InputError, match="n_genes"):
        make_synthetic(n_samples=50, n_genes=100, n_classes=5, n_modules=10, module_size=20)
    with pytest.raises(InputError, match="n_classes"):
        make_synthetic(n_samples=3, n_genes=500, n_classes=5, n_modules=2, module_size=10)


def test_other_sizes_and_dtype():
    data = make_synthetic(n_samples=40, n_genes=600, n_classes=3, n_modules=4, module_size=10,
                          n_driver_genes=5, seed=3, dtype=np.float64)
    assert data.values.shape == (40, 600) and data.values.dtype == np.float64
    assert sorted(set(data.labels)) == ["SYN01", "SYN02", "SYN03"]
