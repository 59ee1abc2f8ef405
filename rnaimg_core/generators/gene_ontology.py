"""Gene Ontology layout: genes that share GO annotation sit close together.

Genes are described by their GO terms (one ontology, optionally propagated up
the is_a / part_of graph), each term weighted by its rarity (inverse document
frequency, so "biological_process" counts for nothing and a specific pathway
for a lot). Cosine similarity of these vectors is embedded in 2-D (t-SNE or
PCA after a truncated SVD), framed like DeepInsight and assigned to pixels.
Only the annotation shipped with rnaimg is used.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from rnaimg_core.assignment import place_positions
from rnaimg_core.errors import InputError
from rnaimg_core.generators._embedding import embed_genes, reduce_dimensions
from rnaimg_core.generators._grid import (GRID_PARAMS, channel_groups, minimum_area_rotation, smallest_square,
                                          to_pixel_positions)
from rnaimg_core.generators.base import FitData, Generator, Param, Placement

ONTOLOGIES = ("BP", "MF", "CC", "all")
UNANNOTATED = ("region", "drop")
EMBEDDINGS = ("tsne", "pca")
UNANNOTATED_REGION = "no GO annotation"


def go_features(entrez_ids: np.ndarray, ontology: str, *, propagate: bool, min_term_genes: int,
                components: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """IDF-weighted GO term vectors of the annotated genes, reduced and unit-normalised.

    Returns
    -------
    annotated : ndarray of int64, row indices (into ``entrez_ids``) of genes with at least one kept term
    features : ndarray, shape (len(annotated), d), float32; Euclidean distance ~ cosine dissimilarity
    n_terms : number of GO terms used
    """
    from rnaimg_core import annotation

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
        from sklearn.decomposition import TruncatedSVD

        reduced = TruncatedSVD(n_components=n_components, random_state=seed).fit_transform(weighted)
    else:
        reduced = weighted.toarray()
    reduced = reduced.astype(np.float32)
    lengths = np.linalg.norm(reduced, axis=1, keepdims=True)
    lengths[lengths == 0] = 1.0
    return annotated, reduced / lengths, int(keep_terms.size)


class GeneOntologyGenerator(Generator):
    name = "gene_ontology"
    title = "Gene Ontology"
    description = ("Genes that share Gene Ontology terms sit close together: GO-term similarity (BP, MF or CC, "
                   "optionally propagated up the GO graph) embedded in 2-D and assigned to pixels; genes without "
                   "GO terms are dropped or placed in a marked region.")
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

**Genes without GO terms** are either dropped or written row by row into a marked band at the
bottom of the image (*unannotated*); the count is reported in the layout notes.

**What to tune.** *ontology* (*all* gives three channels, one per ontology); *propagate*;
*min_term_genes* (ignore terms shared by fewer genes); *embedding*, *perplexity*, *iterations*;
*height*/*width*; *assignment* (collision_free gives each gene its own pixel).
"""
    parameters = (
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
        ontologies = ("BP", "MF", "CC") if p["ontology"] == "all" else (p["ontology"],)
        if p["ontology"] == "all" and p["channels"] > 1:
            raise InputError("ontology=all already gives one channel per ontology; leave channels at 1.")
        entrez = data.genes["entrez_id"].to_numpy(dtype=np.int64)
        n = data.n_genes
        features = {}
        for i, ontology in enumerate(ontologies):
            data.progress(0.05 + 0.8 * i / len(ontologies), f"GO {ontology} term profiles")
            features[ontology] = go_features(entrez, ontology, propagate=p["propagate"],
                                             min_term_genes=p["min_term_genes"], components=p["components"],
                                             seed=data.seed)
        most_annotated = max(f[0].size for f in features.values())
        if most_annotated == 0:
            raise InputError("No gene has a Gene Ontology annotation in the shipped data; check the gene ids "
                             "(symbols, Entrez, Ensembl or SYMBOL|ENTREZ) or choose another layout.")
        height, width = self._size(n, {o: f[0].size for o, f in features.items()})
        genes, pixels, regions = [], [], []
        notes: dict = {"ontology": p["ontology"], "propagate": p["propagate"], "unannotated": p["unannotated"]}
        for channel, ontology in enumerate(ontologies):
            annotated, vectors, n_terms = features[ontology]
            unannotated = np.setdiff1d(np.arange(n), annotated)
            band = int(np.ceil(unannotated.size / width)) if p["unannotated"] == "region" else 0
            area_height = height - band
            if annotated.size:
                data.progress(0.1 + 0.8 * (channel + 0.5) / len(ontologies), f"embedding GO {ontology}")
                if annotated.size >= 4:
                    coords = embed_genes(vectors, p["embedding"], perplexity=p["perplexity"],
                                         iterations=p["iterations"], seed=data.seed)
                else:
                    coords = reduce_dimensions(vectors, 2, data.seed).astype(np.float64)
                positions = to_pixel_positions(minimum_area_rotation(coords), area_height, width)
                cells = place_positions(positions, area_height, width, p["assignment"])
                genes.append(annotated)
                pixels.append(channel * height * width + cells)
            if band:
                genes.append(unannotated)
                pixels.append(channel * height * width + area_height * width + np.arange(unannotated.size))
                regions.append({"name": UNANNOTATED_REGION, "channel": channel,
                                "rows": [area_height, height - 1], "cols": [0, width - 1]})
            regions.append({"name": f"GO {ontology}", "channel": channel,
                            "rows": [0, area_height - 1], "cols": [0, width - 1]})
            notes[f"{ontology}_n_annotated"] = int(annotated.size)
            notes[f"{ontology}_n_unannotated"] = int(unannotated.size)
            notes[f"{ontology}_n_terms"] = n_terms
        notes["n_unannotated"] = int(n - most_annotated) if len(ontologies) > 1 else notes[f"{ontologies[0]}_n_unannotated"]
        if p["unannotated"] == "drop":
            notes["n_dropped_unannotated"] = notes["n_unannotated"]
        gene = np.concatenate(genes)
        pixel = np.concatenate(pixels)
        shape = (len(ontologies), height, width)
        if p["channels"] > 1:
            groups = channel_groups(data, np.arange(n), p["channels"], p["channel_by"])
            pixel = groups[gene] * height * width + pixel
            shape = (p["channels"], height, width)
            regions = [{**r, "channel": g} for g in range(p["channels"]) for r in regions]
        return Placement(shape=shape, gene=gene, pixel=pixel, notes=notes, regions=regions)

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
