"""Gene search on the image pages: every name typed gets a sentence saying what it is and where."""

from __future__ import annotations

import pytest

from dashboard.genes import close_names, genes_to_follow, search_gene
from rnaimg_core import fit_layout, load_demo
from rnaimg_core.annotation import look_up_gene


@pytest.fixture(scope="module")
def layout():
    return fit_layout(load_demo(), "chromosome")


def test_look_up_gene_follows_the_routes_of_the_data_reader():
    assert (look_up_gene("MLL").symbol, look_up_gene("MLL").route) == ("KMT2A", "previous_symbol")
    assert (look_up_gene(" her2 ").symbol, look_up_gene(" her2 ").route) == ("ERBB2", "alias")
    assert look_up_gene("7157").symbol == "TP53"
    several = look_up_gene("QARS")  # the old symbol of two genes: named, never guessed
    assert not several.known and several.candidates == ("EPRS1", "QARS1")
    assert not look_up_gene("NOT_A_GENE_1").known


@pytest.mark.parametrize("typed, found, words", [
    ("EGFR", True, "**EGFR** sits at channel 0, row"),
    ("egfr", True, "sits at channel 0"),
    ("p53", True, "**p53** is an alias of **TP53** (NCBI Gene 7157); these data hold it as **TP53**: it sits at"),
    ("ERBB2", False, "**ERBB2** (NCBI Gene 2064) is not in these data."),
    ("HER2", False, "**HER2** is an alias of **ERBB2** (NCBI Gene 2064), which these data do not hold."),
    ("QARS", False, "is in these data, but this layout places it on no pixel"),  # an unmapped id of the demo
    ("NOT_A_GENE_1", False, "**NOT\\_A\\_GENE\\_1** is not in these data, and the shipped gene annotation knows no gene"),
])
def test_every_search_says_what_the_name_is(layout, typed, found, words):
    result = search_gene(layout, typed)
    assert bool(result.pixels) == found
    assert words in result.message, result.message
    if found:
        c, r, col = result.pixels[0]
        assert layout.genes_per_pixel[c, r, col] >= 1


def test_a_misspelt_name_gets_the_names_spelt_alike(layout):
    assert "EGFR" in close_names(layout, "egrf")
    result = search_gene(layout, "EGRF")
    assert not result.pixels and "Spelt alike in these data:" in result.message and "EGFR" in result.message
    assert "Spelt alike" not in search_gene(layout, "XQZWVK").message  # nothing close: nothing offered


def test_a_line_of_names_gives_the_placed_genes_to_follow(layout):
    followed = genes_to_follow(layout, "egfr, p53;HER2  NOT_A_GENE_1 EGFR")
    assert followed.names == ["EGFR", "TP53"]  # the data's names, each once, in the order typed
    assert len(followed.renamed) == 1 and "alias of **TP53**" in followed.renamed[0]
    assert len(followed.missing) == 2 and "which these data do not hold" in followed.missing[0]
    assert genes_to_follow(layout, " , ").names == []
    ten = list(dict.fromkeys(layout.display_names[layout.placed_genes()].astype(str)))[:10]
    many = genes_to_follow(layout, ",".join(ten), limit=8)
    assert many.names == ten[:8] and sum("Only 8 genes" in m for m in many.missing) == 2
