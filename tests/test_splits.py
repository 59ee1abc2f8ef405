"""One holdout rule: the same default share and seed in the dashboard, the CLI and big runs."""

from __future__ import annotations

import numpy as np
import pytest

from rnaimg_core.cli import main
from rnaimg_core.errors import InputError
from rnaimg_core.layout import load_layout
from rnaimg_core.splits import (
    FIT,
    HOLDOUT,
    HOLDOUT_FRACTION,
    default_holdout,
    holdout_rule,
    holdout_split,
    stratified_sample,
)


def test_the_default_holdout_is_a_stratified_fifth_drawn_with_one_seed(demo_expression):
    labels, n = demo_expression.labels, demo_expression.n_samples
    split = holdout_rule(labels, n)
    assert (split == HOLDOUT).sum() == int(np.ceil(HOLDOUT_FRACTION * n)) == 37
    assert set(labels[split == HOLDOUT]) == set(labels)  # every class is represented
    np.testing.assert_array_equal(split, default_holdout(labels, n))
    np.testing.assert_array_equal(split, holdout_split(labels, n))  # asked for, the same samples
    np.testing.assert_array_equal(holdout_rule(labels, n, 0.0), np.full(n, FIT))


def test_asked_for_fractions_must_be_possible_and_the_default_gives_way():
    labels = np.array(["a"] * 6 + ["b"])  # class b has one sample: no stratified split
    assert (holdout_rule(labels, 7) == FIT).all()  # the default holds nothing out
    assert (holdout_rule(None, 7) == FIT).all()
    with pytest.raises(InputError, match="stratified"):
        holdout_rule(labels, 7, 0.3)


def test_the_cli_holds_out_the_dashboards_samples_whatever_the_generator_seed(demo_expression, tmp_path):
    """``rnaimg layout`` without ``--holdout`` fits on the samples the dashboard fits on, for any seed."""
    dashboard_fit = set(demo_expression.sample_ids[default_holdout(demo_expression.labels,
                                                                   demo_expression.n_samples) == FIT])
    for seed in ("0", "7"):
        out = tmp_path / f"random-{seed}.json"
        assert main(["layout", "--generator", "random", "--set", f"seed={seed}", "--out", str(out)]) == 0
        assert set(load_layout(out).fit_sample_ids) == dashboard_fit


def test_a_stratified_sample_keeps_every_class():
    labels = np.repeat(["a", "b", "c"], [50, 30, 20])
    index = np.arange(100)
    sample = stratified_sample(labels, index, 40, seed=1)
    assert sample.size == 40 and np.all(np.diff(sample) > 0)
    assert dict(zip(*np.unique(labels[sample], return_counts=True))) == {"a": 20, "b": 12, "c": 8}
    np.testing.assert_array_equal(stratified_sample(labels, index, 200), index)  # smaller: all of it
