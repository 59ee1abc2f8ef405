"""How one sample becomes an image: the numbers of each step are what the layout computes."""

from __future__ import annotations

import numpy as np
import pytest

from rnaimg_core import fit_layout, load_demo
from rnaimg_core.errors import InputError
from rnaimg_core.walkthrough import gene_steps


def test_each_genes_steps_lead_to_its_pixel_in_the_image():
    expr = load_demo()
    layout = fit_layout(expr, "chromosome")
    steps = gene_steps(layout, expr, "MGH54_P2_C12", ["EGFR", "apoe", "NOT_A_GENE_1"])
    assert steps["symbol"].tolist() == ["EGFR", "APOE"]  # case-insensitive; an unknown name is left out
    assert steps["chromosome"].tolist() == ["7", "19"]
    column = int(np.flatnonzero(expr.gene_ids == "APOE")[0])
    apoe = steps.iloc[1]
    assert apoe["measured"] == pytest.approx(float(expr.values[0, column]))
    assert apoe["per_sample"] == pytest.approx(np.log2(apoe["measured"] + 1), rel=1e-5)  # the demo is logged here
    assert apoe["normalised"] == pytest.approx((apoe["per_sample"] - apoe["centre"]) / apoe["spread"], rel=1e-5)
    image = layout.transform(expr.values[:1], expr.gene_ids)[0]
    for _, gene in steps.iterrows():
        assert gene["pixel_value"] == pytest.approx(float(image[gene["channel"], gene["row"], gene["col"]]))
        if gene["genes_on_pixel"] == 1:
            assert gene["pixel_value"] == pytest.approx(gene["normalised"], rel=1e-5)
    with pytest.raises(InputError, match="not in the data"):
        gene_steps(layout, expr, "no such sample", ["EGFR"])
