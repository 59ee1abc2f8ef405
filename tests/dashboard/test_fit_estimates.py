"""The fit-time estimate that decides whether a fit starts at once or asks "Fit now"."""

from __future__ import annotations

import pytest

from dashboard import glue

DEMO = (184, 9450)


@pytest.fixture(autouse=True)
def no_fits_measured(monkeypatch):
    monkeypatch.setattr(glue, "_measured", {})


def test_a_small_fits_overhead_is_not_stretched_to_demo_size():
    glue.record_fit("som", 60, 600, 0.5)  # a test's tiny fit: mostly fixed overhead
    assert glue.expected_seconds("som", *DEMO) == pytest.approx(glue.EXPECTED_DEMO_SECONDS["som"])
    assert glue.expected_seconds("som", *DEMO) < glue.CONFIRM_SECONDS  # the demo never asks "Fit now"
    assert glue.expected_seconds("som", 60, 600) == pytest.approx(0.5)  # the same size: what was measured


def test_fits_of_comparable_size_replace_the_table_per_generator():
    for seconds in (3.0, 4.0, 30.0):  # one slow outlier (a busy machine) does not decide alone
        glue.record_fit("deepinsight", *DEMO, seconds)
    assert glue.expected_seconds("deepinsight", *DEMO) == pytest.approx(4.0)
    assert glue.expected_seconds("deepinsight", 184 * 2, 9450) == pytest.approx(8.0)  # within a factor 2: scaled
    assert glue.expected_seconds("som", *DEMO) == pytest.approx(glue.EXPECTED_DEMO_SECONDS["som"])  # its own table
    big = glue.expected_seconds("deepinsight", 2000, 20531)  # 24x the demo: the table, scaled
    assert big == pytest.approx(glue.EXPECTED_DEMO_SECONDS["deepinsight"] * 2000 * 20531 / glue.DEMO_CELLS)


def test_only_the_last_fits_are_kept():
    for seconds in range(20):
        glue.record_fit("random", *DEMO, float(seconds))
    assert len(glue._measured["random"]) == glue.MAX_MEASURED
    assert glue.expected_seconds("random", *DEMO) == pytest.approx(15.5)  # median of 12..19
