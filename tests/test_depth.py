"""Library-size normalisation of raw counts: detected, stored with the layout, applied by the transform."""

from __future__ import annotations

import numpy as np
import pytest

from rnaimg_core.expression import from_arrays
from rnaimg_core.generators import get_generator
from rnaimg_core.layout import Layout
from rnaimg_core.normalize import Normalization, looks_like_counts


@pytest.fixture(scope="module")
def raw_counts(demo_expression):
    """The real demo cells as raw counts: each cell's profile times its own random library size, rounded."""
    rng = np.random.default_rng(0)
    library = rng.lognormal(np.log(1e6), 0.7, demo_expression.n_samples)
    profile = demo_expression.values / demo_expression.values.sum(axis=1, keepdims=True)
    counts = np.round(profile * library[:, None]).astype(np.float32)
    return from_arrays(counts, demo_expression.sample_ids, demo_expression.gene_ids, demo_expression.labels)


def _brightness_library_r(layout: Layout, expression) -> float:
    images = layout.transform(expression.values, expression.gene_ids)
    brightness = images.reshape(len(images), -1)[:, np.unique(layout.placement_pixel)].mean(axis=1)
    return float(np.corrcoef(brightness, np.log(expression.values.sum(axis=1)))[0, 1])


def test_raw_counts_get_library_size_normalisation_and_brightness_stops_tracking_depth(raw_counts,
                                                                                       demo_expression):
    assert looks_like_counts(raw_counts.values) and not looks_like_counts(demo_expression.values)
    assert "counts per million" in raw_counts.report()["value_scale_message"]
    fit = np.arange(0, raw_counts.n_samples, 2)
    before = get_generator("chromosome")(depth="none").fit(raw_counts, train_index=fit, quality=False)
    after = get_generator("chromosome")().fit(raw_counts, train_index=fit, quality=False)
    assert not before.normalization.depth_applied_ and after.normalization.depth_applied_
    assert abs(_brightness_library_r(before, raw_counts)) > 0.4
    assert abs(_brightness_library_r(after, raw_counts)) < 0.15
    # the file says what was done, and a reloaded layout transforms the same
    again = Layout.from_json(after.to_json())
    assert again.normalization.to_dict()["depth_applied"] is True
    np.testing.assert_allclose(again.transform(raw_counts.values[:4], raw_counts.gene_ids),
                               after.transform(raw_counts.values[:4], raw_counts.gene_ids), atol=1e-5)


def test_transform_matches_the_normalisation_with_shuffled_and_extra_columns(raw_counts):
    layout = get_generator("chromosome")().fit(raw_counts, quality=False)
    values = raw_counts.values[:6]
    expected = layout.normalization.apply(values)  # CPM, log2(x+1), per-gene z-score
    images = layout.transform(values, raw_counts.gene_ids).reshape(6, -1)
    np.testing.assert_allclose(images[:, layout.placement_pixel], expected[:, layout.placement_gene], atol=2e-5)
    # extra input genes do not count toward the library size; column order does not matter
    order = np.random.default_rng(1).permutation(raw_counts.n_genes)
    extra = np.column_stack([values[:, order], np.full((6, 1), 1e7, dtype=np.float32)])
    ids = np.append(raw_counts.gene_ids[order], "NOT_A_GENE")
    np.testing.assert_allclose(layout.transform(extra, ids).reshape(6, -1), images, atol=2e-5)


def test_old_layout_files_without_depth_read_as_no_depth_normalisation():
    norm = Normalization(log="yes", scale="zscore").fit(np.abs(np.random.default_rng(0).normal(size=(5, 3))))
    data = norm.to_dict()
    for key in ("depth", "depth_applied", "depth_method"):
        data.pop(key)
    assert Normalization.from_dict(data).depth_applied_ is False
