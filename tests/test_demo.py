"""The shipped oligodendroglioma demo: shape, classes, scale and a safe cache."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rnaimg_core import demo

DEMO_FILE = Path(demo.__file__).parent / "data" / "demo" / "oligodendroglioma.npz"

EXPECTED_COUNTS = demo.DEMO_CLASS_COUNTS  # Tirosh et al. 2016 via infercnvpy 0.6.1 (see data/demo/README.md)


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return demo.load_demo_arrays()


def test_file_is_plain_arrays_without_pickle():
    with np.load(DEMO_FILE, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(demo.DEMO_KEYS)
        for key in archive.files:
            assert not archive[key].dtype.hasobject
    assert DEMO_FILE.stat().st_size < 4_000_000


def test_shapes_and_dtypes(arrays):
    assert arrays["values"].shape == (184, 9450)
    assert arrays["values"].dtype == np.float32
    for key, length in [("sample_ids", 184), ("gene_ids", 9450), ("labels", 184)]:
        assert arrays[key].shape == (length,)
        assert arrays[key].dtype.kind == "U"
    assert len(set(arrays["sample_ids"])) == 184
    assert len(set(arrays["gene_ids"])) == 9450


def test_six_cell_classes_with_published_counts(arrays):
    assert dict(Counter(arrays["labels"].tolist())) == EXPECTED_COUNTS


def test_values_are_tpm_like_not_logged(arrays):
    values = arrays["values"]
    assert values.min() >= 0
    assert values.max() > 1000  # logged data would stay below about 20
    assert 90_000 < np.median(values.sum(axis=1)) < 110_000
    assert 0.54 < (values == 0).mean() < 0.58


def test_marker_genes_mark_the_normal_cell_types(arrays):
    genes = arrays["gene_ids"].tolist()
    log_values = np.log2(arrays["values"].astype(np.float64) + 1)
    labels = arrays["labels"]

    def mean_in(gene: str, label: str) -> float:
        return float(log_values[labels == label, genes.index(gene)].mean())

    def mean_outside(gene: str, label: str) -> float:
        return float(log_values[labels != label, genes.index(gene)].mean())

    # PTPRC (CD45) marks immune cells, PLP1 myelinating oligodendrocytes.
    assert mean_in("PTPRC", "Microglia/Macrophage") > mean_outside("PTPRC", "Microglia/Macrophage") + 3
    oligodendrocytes = "Oligodendrocytes (non-malignant)"
    assert mean_in("PLP1", oligodendrocytes) > mean_outside("PLP1", oligodendrocytes) + 1


def test_cache_cannot_be_corrupted(arrays):
    with pytest.raises(ValueError):
        arrays["values"][0, 0] = -1.0
    arrays["labels"] = np.array(["changed"])
    fresh = demo.load_demo_arrays()
    assert fresh["labels"].shape == (184,)
    assert fresh["values"][0, 0] >= 0


def test_description_mentions_the_biology():
    assert "Tirosh" in demo.DEMO_NAME
    assert "1p" in demo.DEMO_DESCRIPTION and "19q" in demo.DEMO_DESCRIPTION
    assert "log2(x + 1)" in demo.DEMO_DESCRIPTION
