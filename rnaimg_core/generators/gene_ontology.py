"""Gene Ontology layout: genes that share GO annotation sit close together.

Two styles:

* ``embedding``: genes are described by their GO terms (one ontology,
  optionally propagated up the is_a / part_of graph), each term weighted by its
  rarity (inverse document frequency, so "biological_process" counts for
  nothing and a specific pathway for a lot). Cosine similarity of these vectors
  is embedded in 2-D (t-SNE or PCA after a truncated SVD), framed like
  DeepInsight and assigned to pixels. With ``universe="annotation"`` (default)
  the embedding is that of every annotated human gene, computed once by
  ``scripts/build_go_embedding.py`` and shipped, so a fit only looks up the
  user's genes (see :func:`annotation_embedding`).
* ``treemap``: nested rectangles, one per broad GO term and per child term
  inside it, sized by gene count (see :func:`treemap_blocks` for the rule).

Only the annotation shipped with rnaimg is used.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.sparse

from rnaimg_core import annotation
from rnaimg_core.assignment import place_positions
from rnaimg_core.errors import InputError
from rnaimg_core.generators._embedding import embed_genes, reduce_dimensions, tsne_affinities, tsne_objective
from rnaimg_core.generators._grid import (
    GRID_PARAMS,
    channel_groups,
    minimum_area_rotation,
    smallest_square,
    squarified_rectangles,
    to_pixel_positions,
)
from rnaimg_core.generators.base import FitData, Generator, Param, Placement
from rnaimg_core.layout import cell_pixels, flat_pixels

ONTOLOGIES = ("BP", "MF", "CC", "all")
UNANNOTATED = ("region", "drop")
EMBEDDINGS = ("tsne", "pca")
STYLES = ("embedding", "treemap")
UNIVERSES = ("annotation", "dataset")
UNANNOTATED_REGION = "no GO annotation"
ROOT_TERMS = {"BP": "GO:0008150", "MF": "GO:0003674", "CC": "GO:0005575"}
"""The root term of each ontology (biological_process, molecular_function, cellular_component)."""

PRECOMPUTED_SETTINGS = {"propagate": True, "min_term_genes": 2, "components": 50, "embedding": "tsne",
                        "perplexity": 30.0, "iterations": 500, "seed": 0}
"""Embedding settings of the shipped all-gene GO embedding (``go_embedding.tsv.gz``); they are the defaults."""

OBJECTIVE_TOLERANCE = 0.01
"""Relative difference allowed between a shipped map's t-SNE objective now and when it was built
(:func:`check_shipped_embedding`; the objective is an FFT estimate, the map rounded to 3 decimals)."""

PRECOMPUTED_DECIMALS = 3
"""Decimals the shipped coordinates keep (t-SNE coordinates span about 100 units)."""


def go_features(entrez_ids: np.ndarray, ontology: str, *, propagate: bool, min_term_genes: int,
                components: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """IDF-weighted GO term vectors of the annotated genes, reduced and unit-normalised.

    Returns
    -------
    annotated : ndarray of int64, row indices (into ``entrez_ids``) of genes with at least one kept term
    features : ndarray, shape (len(annotated), d), float32; Euclidean distance ~ cosine dissimilarity
    n_terms : number of GO terms used
    """
    incidence, _ = annotation.go_incidence(np.asarray(entrez_ids, dtype=np.int64), ontology=ontology,
                                           propagate=propagate)
    incidence = incidence.tocsc()
    term_size = np.asarray(incidence.sum(axis=0)).ravel()
    n_annotated_any = int(np.count_nonzero(incidence.getnnz(axis=1)))
    keep_terms = np.flatnonzero((term_size >= min_term_genes) & (term_size < n_annotated_any))
    incidence = incidence[:, keep_terms].tocsr()
    annotated = np.flatnonzero(incidence.getnnz(axis=1))
    if annotated.size == 0:
        return annotated, np.empty((0, 2), dtype=np.float32), 0
    idf = np.log(n_annotated_any / term_size[keep_terms]).astype(np.float32)
    weighted = incidence[annotated] @ scipy.sparse.diags(idf)
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    weighted = scipy.sparse.diags(1.0 / norms) @ weighted
    n_components = int(min(components, annotated.size - 1, keep_terms.size - 1))
    if n_components >= 2:
        from sklearn.decomposition import TruncatedSVD  # noqa: PLC0415 (lazy: scikit-learn loads in ~0.5 s; only some paths need it)

        reduced = TruncatedSVD(n_components=n_components, random_state=seed).fit_transform(weighted)
    else:
        reduced = weighted.toarray()
    reduced = reduced.astype(np.float32)
    lengths = np.linalg.norm(reduced, axis=1, keepdims=True)
    lengths[lengths == 0] = 1.0
    return annotated, reduced / lengths, int(keep_terms.size)


def go_universe(ontology: str) -> np.ndarray:
    """Entrez ids (sorted) of every gene in the shipped gene table with a direct annotation in ``ontology``."""
    annotated = np.unique(annotation.go_annotations(ontology)["entrez_id"].to_numpy(dtype=np.int64))
    return annotated[np.isin(annotated, annotation.gene_table()["entrez_id"].to_numpy())]


def universe_features(ontology: str, *, propagate: bool, min_term_genes: int, components: int,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`go_features` of every annotated gene (:func:`go_universe`): (their sorted Entrez ids, features)."""
    universe = go_universe(ontology)
    annotated, vectors, _ = go_features(universe, ontology, propagate=propagate, min_term_genes=min_term_genes,
                                        components=components, seed=seed)
    return universe[annotated], vectors


def embed_universe(ontology: str, *, propagate: bool, min_term_genes: int, components: int, embedding: str,
                   perplexity: float, iterations: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """GO embedding of every annotated gene (:func:`go_universe`), computed now.

    Returns
    -------
    entrez_ids : ndarray of int64, the embedded genes (those with a kept term), sorted
    coords : ndarray, shape (len(entrez_ids), 2), float64
    """
    entrez, vectors = universe_features(ontology, propagate=propagate, min_term_genes=min_term_genes,
                                        components=components, seed=seed)
    return entrez, embed_genes(vectors, embedding, perplexity=perplexity, iterations=iterations, seed=seed)


def precomputed_features(ontology: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`universe_features` at :data:`PRECOMPUTED_SETTINGS`: what the shipped embedding of ``ontology`` embeds."""
    settings = PRECOMPUTED_SETTINGS
    return universe_features(ontology, propagate=settings["propagate"], min_term_genes=settings["min_term_genes"],
                             components=settings["components"], seed=settings["seed"])


def check_shipped_embedding(ontology: str, *, coords: np.ndarray | None = None) -> dict:
    """Whether the shipped embedding of ``ontology`` belongs to the annotation and code of this installation.

    Two things are checked, in seconds: the shipped genes are exactly the genes
    :func:`precomputed_features` embeds now, and the t-SNE objective of the shipped map for today's
    features (:func:`~rnaimg_core.generators._embedding.tsne_objective`) is the one recorded when it
    was built (``go_embedding_objective.json``, within :data:`OBJECTIVE_TOLERANCE`). Other
    features (a changed annotation, weighting or reduction), another perplexity or genes out of
    place change it by far more (``tests/test_generators_gene_ontology.py`` plants them). A rebuild
    (``scripts/build_go_embedding.py``) takes minutes and lands clusters elsewhere anyway: the
    t-SNE's global placement is chaotic.

    ``coords`` replaces the shipped coordinates (to show what the check finds).

    Returns
    -------
    dict with ``ontology``, ``same_genes``, ``n_genes``, ``objective`` (now), ``recorded`` and ``ok``
    """
    entrez, affinities = _todays_affinities(ontology)
    table = annotation.go_embedding(ontology)
    shipped = table["entrez_id"].to_numpy(np.int64)
    recorded = annotation.go_embedding_objective(ontology)
    result = {"ontology": ontology, "same_genes": bool(np.array_equal(entrez, shipped)), "n_genes": int(shipped.size),
              "recorded": recorded}
    if not result["same_genes"]:
        return result | {"objective": None, "ok": False}
    points = table[["x", "y"]].to_numpy(np.float64) if coords is None else coords
    objective = tsne_objective(points, affinities=affinities, seed=PRECOMPUTED_SETTINGS["seed"])
    return result | {"objective": objective, "ok": abs(objective / recorded - 1) < OBJECTIVE_TOLERANCE}


@lru_cache(maxsize=1)
def _todays_affinities(ontology: str):
    """(the genes :func:`precomputed_features` embeds now, the t-SNE affinities of their features), kept for
    the last ontology checked: a second map of it is checked in a second (about 20 MB for BP)."""
    entrez, vectors = precomputed_features(ontology)
    return entrez, tsne_affinities(vectors, perplexity=PRECOMPUTED_SETTINGS["perplexity"],
                                   seed=PRECOMPUTED_SETTINGS["seed"], n_jobs=1)


@lru_cache(maxsize=4)
def _universe_embedding(ontology: str, settings: tuple) -> tuple[np.ndarray, np.ndarray]:
    """:func:`embed_universe`, remembered per ontology and settings for the session."""
    return embed_universe(ontology, **dict(settings))


def annotation_embedding(ontology: str, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """The all-gene GO embedding for ``settings``: shipped when they are :data:`PRECOMPUTED_SETTINGS`.

    "Precomputed equals from scratch" means: with the default settings the
    shipped coordinates are :func:`embed_universe` of the same annotation,
    rounded to :data:`PRECOMPUTED_DECIMALS` decimals, so a fit that looks them
    up gives the layout one that embeds all annotated genes now would give, up
    to the t-SNE's chaotic global placement (:func:`check_shipped_embedding`
    ties the shipped maps to this installation's annotation and code). Other
    settings embed all annotated genes now, once per session.

    Returns
    -------
    entrez_ids : ndarray of int64, sorted
    coords : ndarray, shape (len(entrez_ids), 2), float64
    """
    if settings == PRECOMPUTED_SETTINGS:
        table = annotation.go_embedding(ontology)
        return table["entrez_id"].to_numpy(np.int64), table[["x", "y"]].to_numpy(np.float64)
    return _universe_embedding(ontology, tuple(sorted(settings.items())))


def _lookup_coordinates(entrez: np.ndarray, ontology: str, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``entrez`` found in the all-gene embedding and their coordinates."""
    universe, coords = annotation_embedding(ontology, settings)
    position = np.searchsorted(universe, entrez)
    position = np.minimum(position, max(universe.size - 1, 0))
    found = np.flatnonzero((universe.size > 0) & (universe[position] == entrez))
    return found, coords[position[found]]


# ---------------------------------------------------------------- treemap style

@lru_cache(maxsize=4)
def term_depths(ontology: str) -> pd.Series:
    """Shortest is_a distance of every term of ``ontology`` from its root (root = 0), indexed by GO id."""
    edges = annotation.go_edges()
    edges = edges[edges["relation"] == "is_a"]
    children: dict[str, list[str]] = {}
    for child, parent in zip(edges["child"].tolist(), edges["parent"].tolist()):
        children.setdefault(parent, []).append(child)
    depth = {ROOT_TERMS[ontology]: 0}
    frontier = [ROOT_TERMS[ontology]]
    while frontier:
        following = []
        for term in frontier:
            for child in children.get(term, ()):
                if child not in depth:
                    depth[child] = depth[term] + 1
                    following.append(child)
        frontier = following
    return pd.Series(depth, dtype=np.int64)


def _greedy_cover(incidence: scipy.sparse.csr_matrix, rows: np.ndarray, candidates: np.ndarray, max_blocks: int,
                  min_genes: int) -> list[tuple[int, np.ndarray]]:
    """Pick terms one at a time, each the candidate holding most genes of ``rows`` not yet taken.

    Returns ``(term column, its newly taken rows)`` per chosen term; a term
    holding fewer than ``min_genes`` untaken genes ends the choice.
    """
    untaken = np.zeros(incidence.shape[0], dtype=np.float32)
    untaken[rows] = 1.0
    chosen = []
    columns = incidence[:, candidates].tocsc()
    for _ in range(max_blocks):
        counts = columns.T @ untaken
        best = int(np.argmax(counts)) if counts.size else 0
        if not counts.size or counts[best] < min_genes:
            break
        members = columns[:, best].nonzero()[0]
        members = members[untaken[members] > 0]
        untaken[members] = 0.0
        chosen.append((int(candidates[best]), members))
    return chosen


def treemap_blocks(entrez: np.ndarray, ontology: str = "BP", *, blocks: int = 12, sub_blocks: int = 6,
                   max_fraction: float = 0.3, top_depth: int = 3, min_genes: int = 5) -> pd.DataFrame:
    """Each gene's block in the GO treemap: a broad term and a child term inside it.

    The rule, applied to the given genes with annotations propagated along
    is_a and part_of:

    1. *Broad terms*: among terms at most ``top_depth`` is_a steps below the
       ontology's root that hold at most ``max_fraction`` of the annotated
       genes (so catch-alls such as "cellular process" are skipped), take the
       one holding most genes, then the one holding most of the genes not yet
       taken, and so on (a greedy set cover), up to ``blocks`` terms, each
       holding at least ``min_genes`` new genes. A gene belongs to the first
       chosen term it is annotated with. Annotated genes left over form the
       block of the root term ("other biological process").
    2. *Child terms*: inside each broad block, the same greedy cover over the
       block's genes with the block term's descendants that hold at most half of
       the block, up to ``sub_blocks``. Genes in none stay in the broad term
       ("other ...").
    3. Genes without an annotation in ``ontology`` form the block
       :data:`UNANNOTATED_REGION`.

    Every gene's block term is therefore one of its own terms or an ancestor
    of one (the test checks this).

    Returns
    -------
    pandas.DataFrame
        One row per gene (same order as ``entrez``): ``top`` and ``block`` (GO ids;
        '' for unannotated genes), ``top_name`` and ``block_name``.
    """
    incidence, term_ids = annotation.go_incidence(np.asarray(entrez, dtype=np.int64), ontology)
    incidence = incidence.tocsr()
    names = annotation.go_terms().set_index("go_id")["name"]
    root = ROOT_TERMS[ontology]
    annotated = np.flatnonzero(incidence.getnnz(axis=1))
    sizes = np.asarray(incidence.sum(axis=0)).ravel()
    depth = term_depths(ontology).reindex(term_ids).to_numpy(dtype=float)
    broad = np.flatnonzero((depth >= 1) & (depth <= top_depth) & (sizes <= max_fraction * max(annotated.size, 1)))
    closure, closure_ids = annotation._ancestor_closure(ontology, ("is_a", "part_of"))
    in_closure = pd.Index(closure_ids).get_indexer(term_ids)

    top = np.full(len(entrez), "", dtype=object)
    block = np.full(len(entrez), "", dtype=object)
    top[annotated] = root
    block[annotated] = root
    for column, members in _greedy_cover(incidence, annotated, broad, blocks, min_genes):
        top[members] = block[members] = term_ids[column]
        # descendants of the broad term: terms whose ancestors include it
        descendant = np.asarray(closure[in_closure][:, in_closure[column]].todense()).ravel().astype(bool)
        descendant[column] = False
        inside = np.asarray(incidence[members].sum(axis=0)).ravel()
        candidates = np.flatnonzero(descendant & (inside <= 0.5 * members.size) & (inside > 0))
        for child, child_members in _greedy_cover(incidence, members, candidates, sub_blocks, min_genes):
            block[child_members] = term_ids[child]
    name_of = {"": UNANNOTATED_REGION, root: "other " + names.get(root, root).replace("_", " ")}
    top_name = [name_of.get(t) or names.get(t, t) for t in top]
    block_name = [("other " + names.get(b, b)) if b == t and b not in name_of else (name_of.get(b) or names.get(b, b))
                  for b, t in zip(block, top)]
    return pd.DataFrame({"top": top, "block": block, "top_name": top_name, "block_name": block_name})


def _treemap_placement(blocks: pd.DataFrame, symbols: np.ndarray, slack: float = 1.08
                       ) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray, list[dict]]:
    """Squarified two-level treemap: image shape, gene and pixel arrays, regions.

    The image starts as the smallest square with ``slack`` spare pixels and
    grows until every block, snapped to whole pixels, holds its genes.
    Inside a block genes fill the rectangle row by row, alphabetically by symbol.
    """
    top_keys = blocks["top_name"].to_numpy(dtype=object)
    block_keys = (blocks["top_name"] + "\x1f" + blocks["block_name"]).to_numpy(dtype=object)
    tops, top_index = np.unique(top_keys, return_inverse=True)
    n = len(blocks)
    side = smallest_square(int(np.ceil(n * slack)))
    for _ in range(200):
        rects = squarified_rectangles(np.bincount(top_index), 0, 0, side, side)
        genes, pixels, regions = [], [], []
        fits = True
        for t, name in enumerate(tops):
            r0, r1, c0, c1 = rects[t].tolist()
            members = np.flatnonzero(top_index == t)
            subs, sub_index = np.unique(block_keys[members], return_inverse=True)
            if (r1 - r0) * (c1 - c0) < members.size:
                fits = False
                break
            sub_rects = squarified_rectangles(np.bincount(sub_index), r0, c0, r1 - r0, c1 - c0)
            regions.append({"name": str(name), "channel": 0, "rows": [r0, r1 - 1], "cols": [c0, c1 - 1],
                            "go_id": str(blocks["top"].iloc[members[0]]), "level": 0})
            for s, key in enumerate(subs):
                in_block = members[sub_index == s]
                s0, s1, d0, d1 = sub_rects[s].tolist()
                block_width = d1 - d0
                if (s1 - s0) * block_width < in_block.size:
                    fits = False
                    break
                in_block = in_block[np.argsort(symbols[in_block], kind="stable")]
                row, col = np.divmod(np.arange(in_block.size), block_width)
                genes.append(in_block)
                pixels.append(flat_pixels((1, side, side), 0, s0 + row, d0 + col))
                if subs.size > 1:
                    regions.append({"name": key.split("\x1f")[1], "channel": 0, "rows": [s0, s1 - 1],
                                    "cols": [d0, d1 - 1], "go_id": str(blocks["block"].iloc[in_block[0]]),
                                    "level": 1})
            if not fits:
                break
        if fits:
            return (1, side, side), np.concatenate(genes), np.concatenate(pixels), regions
        side += max(1, side // 50)
    raise InputError("The GO treemap did not fit its blocks into an image; use the embedding style.")


class GeneOntologyGenerator(Generator):
    """Genes that share Gene Ontology terms placed close together (a 2-D embedding or a GO treemap).

    Parameters are keyword arguments, checked on construction and kept in ``params``:
    ``style`` (``embedding`` or ``treemap`` with ``blocks``/``sub_blocks``), the GO side
    (``universe``, ``ontology``, ``propagate``, ``min_term_genes``, ``unannotated``), the
    embedding (``embedding``, ``perplexity``, ``iterations``, ``components``), the grid
    (``height``, ``width``, ``channels``, ``channel_by``, ``assignment``), and the common
    ``log``, ``depth``, ``scale``, ``reduce``, ``seed``.
    """

    name = "gene_ontology"
    title = "Gene Ontology"
    description = ("Genes that share Gene Ontology terms sit close together: GO-term similarity (BP, MF or CC, "
                   "optionally propagated up the GO graph) embedded in 2-D and assigned to pixels, or (style "
                   "treemap) nested blocks named by broad GO terms and their children; genes without GO terms are "
                   "dropped or placed in a marked region.")
    reference = ("The Gene Ontology Consortium (2021). The Gene Ontology resource: enriching a GOld mine. Nucleic "
                 "Acids Research 49:D325-D334. Annotation: org.Hs.eg.db / GO.db (Bioconductor 3.16).")
    guide = """
**How it decides a gene's pixel.** Each gene is described by the GO terms it is annotated to in
the chosen ontology (biological process, molecular function or cellular component), by default
also every ancestor term along is_a and part_of. Rare, specific terms weigh more than broad ones.
Genes whose term sets are alike (for example the members of one pathway or complex) are put
close together by a 2-D embedding of these term profiles (t-SNE or PCA), framed and scaled to the
image like DeepInsight. The expression values play no part in the placement: the image shows
expression arranged by known biology.

**Instant by default.** The embedding depends only on the annotation, so it is computed once for
every annotated human gene (about 19,000 per ontology) and shipped; a fit looks your genes up in it
(*universe = annotation*). Changing *propagate*, *min_term_genes*, *components*, *embedding*,
*perplexity* or *iterations* embeds all annotated genes again (once per session; the shared map
is embedded with seed 0 whatever the layout's seed); *universe = dataset* embeds only your genes,
as before.

**Treemap style.** *style = treemap* draws nested rectangles instead: up to *blocks* broad terms
(at most three is_a steps below the ontology's root and holding at most 30 % of the annotated genes,
so catch-alls such as "cellular process" are skipped), chosen greedily: the term holding most genes,
then the one holding most of the genes left, and so on. Inside each, up to *sub_blocks* child terms
are chosen the same way among its descendants. Each gene sits in the first chosen term it is
annotated with (directly or through a descendant term); annotated genes no broad term takes go to
"other biological process", genes without GO terms to "no GO annotation". Blocks are sized by
gene count (squarified treemap); inside a block genes are in alphabetical order. Hover a pixel to
read its block's GO term.

**Genes without GO terms** are either dropped or written row by row into a marked band at the
bottom of the image (*unannotated*); the count is reported in the layout notes.

**What to tune.** *ontology* (*all* gives three channels, one per ontology); *propagate*;
*min_term_genes* (ignore terms shared by fewer genes); *embedding*, *perplexity*, *iterations*;
*height*/*width*; *assignment* (collision_free gives each gene its own pixel).
"""
    parameters = (
        Param("style", "embedding", "embedding: GO-similar genes close together (t-SNE or PCA); treemap: nested "
              "rectangles named by broad GO terms and their children, sized by gene count.", choices=STYLES),
        Param("universe", "annotation",
              "Embedding style: embed every annotated human gene once (shipped, instant for the default settings) "
              "and look the genes up, or embed only this dataset's genes now.", choices=UNIVERSES),
        Param("blocks", 12, "Treemap style: at most this many broad GO terms.", low=1, high=40),
        Param("sub_blocks", 6, "Treemap style: at most this many child terms inside each broad term.",
              low=0, high=40),
        Param("ontology", "BP", "GO namespace: BP, MF, CC, or all (one channel per namespace).", choices=ONTOLOGIES),
        Param("propagate", True, "Also count every ancestor term (is_a, part_of) of a gene's annotations."),
        Param("min_term_genes", 2, "Ignore GO terms annotating fewer genes than this.", low=1, high=10000),
        Param("unannotated", "region", "Genes without GO terms: a marked region at the bottom, or dropped.",
              choices=UNANNOTATED),
        Param("embedding", "tsne", "2-D embedding of the GO-term profiles.", choices=EMBEDDINGS),
        Param("perplexity", 30.0, "t-SNE perplexity.", low=2.0, high=500.0),
        Param("iterations", 500, "t-SNE optimisation steps.", low=50, high=5000),
        Param("components", 50, "Truncated-SVD components of the term profiles before embedding.",
              low=2, high=1000),
        *GRID_PARAMS,
    )

    def place(self, data: FitData) -> Placement:
        p = self.params
        if p["style"] == "treemap":
            return self._place_treemap(data)
        ontologies = ("BP", "MF", "CC") if p["ontology"] == "all" else (p["ontology"],)
        if p["ontology"] == "all" and p["channels"] > 1:
            raise InputError("ontology=all already gives one channel per ontology; leave channels at 1.")
        entrez = data.genes["entrez_id"].to_numpy(dtype=np.int64)
        n = data.n_genes
        # The all-gene embedding is one map of the annotation, embedded with seed 0: the layout seed does not
        # re-embed 19,000 genes (it still seeds universe="dataset").
        settings = {name: p[name] for name in PRECOMPUTED_SETTINGS if name != "seed"} | {"seed": 0}
        embedded = {}  # ontology -> (annotated rows, their 2-D coordinates or None, number of terms)
        for i, ontology in enumerate(ontologies):
            data.progress(0.05 + 0.8 * i / len(ontologies), f"GO {ontology} term profiles")
            if p["universe"] == "annotation":
                annotated, coords = _lookup_coordinates(entrez, ontology, settings)
                embedded[ontology] = (annotated, coords, None)
            else:
                annotated, vectors, n_terms = go_features(entrez, ontology, propagate=p["propagate"],
                                                          min_term_genes=p["min_term_genes"],
                                                          components=p["components"], seed=data.seed)
                embedded[ontology] = (annotated, vectors, n_terms)
        most_annotated = max(e[0].size for e in embedded.values())
        if most_annotated == 0:
            raise InputError("No gene has a Gene Ontology annotation in the shipped data; check the gene ids "
                             "(symbols, Entrez, Ensembl or SYMBOL|ENTREZ) or choose another layout.")
        height, width = self._size(n, {o: e[0].size for o, e in embedded.items()})
        shape = (len(ontologies), height, width)
        genes, pixels, regions = [], [], []
        notes: dict = {"ontology": p["ontology"], "propagate": p["propagate"], "unannotated": p["unannotated"],
                       "universe": p["universe"]}
        for channel, ontology in enumerate(ontologies):
            annotated, vectors, n_terms = embedded[ontology]
            unannotated = np.setdiff1d(np.arange(n), annotated)
            band = int(np.ceil(unannotated.size / width)) if p["unannotated"] == "region" else 0
            area_height = height - band
            if annotated.size:
                data.progress(0.1 + 0.8 * (channel + 0.5) / len(ontologies), f"embedding GO {ontology}")
                if n_terms is None:  # looked up in the all-gene embedding
                    coords = vectors
                elif annotated.size >= 4:
                    coords = embed_genes(vectors, p["embedding"], perplexity=p["perplexity"],
                                         iterations=p["iterations"], seed=data.seed)
                else:
                    coords = reduce_dimensions(vectors, 2, data.seed).astype(np.float64)
                positions = to_pixel_positions(minimum_area_rotation(coords), area_height, width)
                cells = place_positions(positions, area_height, width, p["assignment"])
                genes.append(annotated)
                pixels.append(cell_pixels(shape, channel, cells))
            if band:
                genes.append(unannotated)
                row, col = np.divmod(np.arange(unannotated.size), width)
                pixels.append(flat_pixels(shape, channel, area_height + row, col))
                regions.append({"name": UNANNOTATED_REGION, "channel": channel,
                                "rows": [area_height, height - 1], "cols": [0, width - 1]})
            regions.append({"name": f"GO {ontology}", "channel": channel,
                            "rows": [0, area_height - 1], "cols": [0, width - 1]})
            notes[f"{ontology}_n_annotated"] = int(annotated.size)
            notes[f"{ontology}_n_unannotated"] = int(unannotated.size)
            if n_terms is not None:
                notes[f"{ontology}_n_terms"] = n_terms
        notes["n_unannotated"] = int(n - most_annotated) if len(ontologies) > 1 else notes[f"{ontologies[0]}_n_unannotated"]
        if p["unannotated"] == "drop":
            notes["n_dropped_unannotated"] = notes["n_unannotated"]
        gene = np.concatenate(genes)
        pixel = np.concatenate(pixels)
        if p["channels"] > 1:  # one ontology, so every pixel is still a cell of channel 0
            groups = channel_groups(data, np.arange(n), p["channels"], p["channel_by"])
            shape = (p["channels"], height, width)
            pixel = cell_pixels(shape, groups[gene], pixel)
            regions = [{**r, "channel": g} for g in range(p["channels"]) for r in regions]
        return Placement(shape=shape, gene=gene, pixel=pixel, notes=notes, regions=regions)

    def _place_treemap(self, data: FitData) -> Placement:
        p = self.params
        if p["ontology"] == "all" or p["channels"] > 1:
            raise InputError("The GO treemap draws one ontology in one channel; choose BP, MF or CC and channels 1.")
        if p["height"] or p["width"]:
            raise InputError("The GO treemap sizes its image itself; leave height and width at 0.")
        data.progress(0.1, f"GO {p['ontology']} treemap blocks")
        blocks = treemap_blocks(data.genes["entrez_id"].to_numpy(dtype=np.int64), p["ontology"],
                                blocks=p["blocks"], sub_blocks=p["sub_blocks"])
        unannotated = blocks["top"].to_numpy() == ""
        if unannotated.all():
            raise InputError("No gene has a Gene Ontology annotation in the shipped data; check the gene ids "
                             "(symbols, Entrez, Ensembl or SYMBOL|ENTREZ) or choose another layout.")
        keep = np.arange(data.n_genes) if p["unannotated"] == "region" else np.flatnonzero(~unannotated)
        data.progress(0.6, "squarified treemap")
        symbols = data.genes["symbol"].astype(str).to_numpy()[keep]
        shape, gene, pixel, regions = _treemap_placement(blocks.iloc[keep].reset_index(drop=True), symbols)
        notes = {"style": "treemap", "ontology": p["ontology"], "unannotated": p["unannotated"],
                 "n_unannotated": int(unannotated.sum()),
                 "n_blocks": int(sum(r["level"] == 0 for r in regions)),
                 "n_sub_blocks": int(sum(r["level"] == 1 for r in regions))}
        if p["unannotated"] == "drop":
            notes["n_dropped_unannotated"] = notes["n_unannotated"]
        return Placement(shape=shape, gene=keep[gene], pixel=pixel, notes=notes, regions=regions)

    def _size(self, n_genes: int, n_annotated: dict[str, int]) -> tuple[int, int]:
        """Image size holding every ontology's annotated area plus its unannotated band."""
        p = self.params
        region = p["unannotated"] == "region"
        needed = n_genes if region else max(n_annotated.values())
        width = p["width"] or (int(np.ceil(needed / p["height"])) if p["height"] else smallest_square(needed))
        rows_needed = max(
            (int(np.ceil(k / width)) if p["assignment"] == "collision_free" else 1)
            + (int(np.ceil((n_genes - k) / width)) if region else 0)
            for k in n_annotated.values())
        height = p["height"] or max(rows_needed, int(np.ceil(needed / width)))
        if height < rows_needed:
            raise InputError(f"An image {height} pixels high cannot hold the GO layout ({rows_needed} rows needed "
                             f"at width {width}); use a larger image or 0 for automatic.")
        return height, width
