"""Gene search on the image pages: a name typed by a user → the layout's genes, their pixels, a sentence.

A name the data hold is found at once; any other name is looked up in the shipped annotation
(:func:`rnaimg_core.annotation.look_up_gene`: previous symbols, aliases, Entrez and Ensembl ids), so
"HER2" finds the data's ERBB2 and "MLL" says it is KMT2A today, and a name nobody knows says so.
No streamlit import here: plain Python, tested without a server.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import numpy as np

from rnaimg_core.annotation import look_up_gene
from rnaimg_core.layout import Layout

ROUTE_WORDS = {"symbol": "the symbol of", "previous_symbol": "a previous symbol of", "alias": "an alias of",
               "entrez": "the NCBI Gene id of", "ensembl": "the Ensembl id of",
               "tcga_entrez": "the TCGA id of", "tcga_symbol": "the TCGA id of"}
MAX_PLACES = 5
MAX_SUGGESTIONS = 5
GENE_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass
class GeneSearch:
    """What a search found: the layout's genes (indices), their pixels (channel, row, col) and a sentence."""

    genes: np.ndarray
    pixels: list = field(default_factory=list)
    message: str = ""


def _md(text: str) -> str:
    """``text`` safe inside Markdown (gene names may hold ``_`` or ``*``)."""
    return re.sub(r"([\\`*_{}\[\]<>#+!|~$])", r"\\\1", str(text))


def _places(pixels: list) -> str:
    where = "; ".join(f"channel {c}, row {r}, col {col}" for c, r, col in pixels[:MAX_PLACES])
    return where + (f" and {len(pixels) - MAX_PLACES} more pixels" if len(pixels) > MAX_PLACES else "")


def search_gene(layout: Layout, query: str) -> GeneSearch:
    """Find ``query`` (a symbol or id of the data, or another name of a gene) in ``layout``.

    Returns
    -------
    GeneSearch: the genes found (empty when the data do not hold the gene), their pixels (empty when none
    is placed) and one sentence saying where they are, under which name the data hold the gene, or that
    the data do not hold it (and whether the annotation knows it under another symbol).
    """
    query = str(query).strip()
    shown = f"**{_md(query)}**"
    genes = layout.find_genes(query)
    known_as = ""
    if genes.size == 0:
        name = look_up_gene(query)
        entrez = np.asarray(layout.entrez_ids if layout.entrez_ids is not None else [], dtype=np.int64)
        if name.known:
            genes = np.flatnonzero(entrez == name.entrez_id) if entrez.size else genes
            if name.symbol.upper() == query.upper():  # the current symbol, in other case or as the data lack it
                about = f"{shown} (NCBI Gene {name.entrez_id})"
                missing = f"{about} is not in these data."
            else:
                about = f"{shown} is {ROUTE_WORDS.get(name.route, 'a name of')} **{_md(name.symbol)}** " \
                        f"(NCBI Gene {name.entrez_id})"
                missing = f"{about}, which these data do not hold."
            if genes.size == 0:
                return GeneSearch(genes, [], missing)
        elif name.candidates:
            genes = np.unique(np.concatenate([layout.find_genes(c) for c in name.candidates]))
            about = f"{shown} was the symbol of several genes ({', '.join(map(_md, name.candidates))}), so it " \
                    "names none of them for sure"
            if genes.size == 0:
                return GeneSearch(genes, [], f"{about}; these data hold none of them.")
        else:
            alike = close_names(layout, query)
            return GeneSearch(genes, [], f"{shown} is not in these data, and the shipped gene annotation knows no "
                                         "gene by that name (symbol, previous symbol, alias, Entrez or Ensembl id)."
                                         + (f" Spelt alike in these data: {', '.join(map(_md, alike))}."
                                            if alike else ""))
        held = sorted({str(layout.display_names[g]) for g in genes})
        known_as = f"{about}; these data hold it as **{', '.join(map(_md, held))}**"
    pixels = layout.gene_coordinates(genes)
    if not pixels:
        return GeneSearch(genes, [], (known_as or f"{shown} is in these data") + ", but this layout places it "
                                      "on no pixel (see the layout's notes).")
    return GeneSearch(genes, pixels, (known_as + ": it" if known_as else shown) + f" sits at {_places(pixels)}.")


def close_names(layout: Layout, query: str, n: int = MAX_SUGGESTIONS) -> list[str]:
    """Names of placed genes spelt like ``query`` (a typo: "EGRF" gives EGR3, EGR2, EGR1, EGFR), closest first.

    difflib's ratio of at least 0.7, case-insensitive; about 30 ms over 9,450 names.
    """
    names = {str(name).upper(): str(name) for name in layout.display_names[layout.placed_genes()]}
    return [names[m] for m in difflib.get_close_matches(str(query).strip().upper(), list(names), n=n, cutoff=0.7)]


@dataclass
class GeneList:
    """Genes typed as one line (Classroom): the placed names to follow, and a sentence for each name that is
    not followed as typed (another name of a gene, not in the data, not placed, over the limit)."""

    names: list[str]
    renamed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def genes_to_follow(layout: Layout, text: str, limit: int = 8) -> GeneList:
    """The placed genes a line of names (``"TP53, HER2 egfr"``: commas, semicolons or spaces) asks for.

    Each name goes through :func:`search_gene` (so aliases, previous symbols and ids find the data's gene);
    the data's own name of each gene found is kept, once, in the order typed, at most ``limit`` of them.
    """
    result = GeneList([])
    placed = layout.placed_genes()
    for typed in (t for t in GENE_SEPARATORS.split(str(text)) if t):
        found = search_gene(layout, typed)
        if not found.pixels:
            result.missing.append(found.message)
            continue
        names = [str(name) for name in layout.display_names[found.genes[np.isin(found.genes, placed)]]]
        new = [name for name in dict.fromkeys(names) if name not in result.names]
        if len(result.names) + len(new) > limit:
            result.missing.append(f"Only {limit} genes are followed at once; **{_md(typed)}** is left out.")
            continue
        result.names += new
        if {name.upper() for name in names} != {typed.upper()}:  # found under another name
            result.renamed.append(found.message)
    return result
