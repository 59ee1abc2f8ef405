"""DeepInsight (Sharma et al. 2019): a 2-D embedding of the genes, framed and scaled to the pixel grid."""

from __future__ import annotations

import numpy as np

from rnaimg_core.generators._embedding import METHODS, METRICS, embed_genes, gene_features
from rnaimg_core.generators._grid import GRID_PARAMS, minimum_area_rotation, place_on_grid, to_pixel_positions
from rnaimg_core.generators.base import FitData, Generator, Param, Placement


class DeepInsightGenerator(Generator):
    """Genes embedded in 2-D by their expression profiles and framed onto the pixel grid (Sharma et al. 2019).

    Parameters are keyword arguments, checked on construction and kept in ``params``:
    ``method`` (t-SNE, PCA, kernel PCA or UMAP) with ``perplexity``, ``neighbours``,
    ``metric``, ``iterations`` and ``components``, the grid (``height``, ``width``,
    ``channels``, ``channel_by``, ``assignment``), and the common ``log``, ``depth``,
    ``scale``, ``reduce``, ``seed``.
    """

    name = "deepinsight"
    title = "DeepInsight (2-D gene embedding)"
    description = ("Genes embedded in 2-D by their expression profiles (t-SNE, PCA, kernel PCA or UMAP), framed "
                   "by the minimum-area rectangle of the convex hull and scaled to the pixel grid.")
    reference = ("Sharma A, Vans E, Shigemizu D, Boroevich KA, Tsunoda T (2019). DeepInsight: a methodology to "
                 "transform a non-image data to an image for convolution neural network architecture. "
                 "Scientific Reports 9:11399. doi:10.1038/s41598-019-47765-6")
    guide = """
**How it decides a gene's pixel.** Each gene is a point: its profile across the training samples.
Genes with similar profiles (by default, high correlation) are put close together by a 2-D
embedding: t-SNE (default), PCA, kernel PCA or UMAP. The cloud of points is rotated so that the
smallest rectangle around its convex hull is axis-aligned, then stretched to the image. With
*assignment = nearest* (DeepInsight's rule) a gene goes to the pixel under it and genes on one pixel
are combined by *reduce*; with *collision_free* a linear assignment moves genes to distinct nearby
pixels so no gene is averaged away.

**Defaults, and how they differ from the paper.** DeepInsight's own code puts a gene on the pixel
nearest its point on a fixed grid (for example 100 x 100), so genes in a dense part of the map share
a pixel and are averaged away while much of the image stays empty (on a 3,899-gene cohort, 84 % of
genes shared a pixel and 55 % of pixels were empty). Here the default image is the smallest square
with a pixel per gene and *assignment = collision_free*, so every gene keeps its own pixel and
almost no pixel is empty; choose *nearest* and a fixed size for the paper's rule. The t-SNE runs
250 steps from a PCA start on exact neighbours, on one thread, with 2 FFT interpolation points
per interval (openTSNE's default is 3): on the demo 250 steps kept the neighbourhood preservation
of 500 in half the time, and fewer steps lost some (200: 0.103 against 0.111 on held-out cells);
one thread took half the CPU of two for the same map (which then does not depend on the number of
cores); 2 interpolation points cut the t-SNE's CPU by a quarter, and FFT grid intervals of 2
embedding units (openTSNE's default is 1) by a further 12 %, each with the same preservation within
noise (`benchmarks/README.md`).

**What to tune.** *method*; *perplexity* (t-SNE: about how many neighbours each gene keeps, 5-50)
or *neighbours* (UMAP); *metric* (correlation groups co-expressed genes); *iterations* (t-SNE);
*components* (PCA reduction before the embedding, for speed); *height*/*width* (0 = smallest square
that fits every gene; DeepInsight often uses a fixed size such as 100 x 100 with nearest);
*channels* and *channel_by* to split genes over channels.

**What to look for.** Co-expressed genes (pathways, modules, cell-type markers) form blobs; the
layout quality shows how strongly neighbouring pixels are co-expressed compared with random pairs.
"""
    parameters = (
        Param("method", "tsne", "2-D embedding of the genes.", choices=METHODS),
        Param("perplexity", 30.0, "t-SNE perplexity: roughly the number of close neighbours per gene.",
              low=2.0, high=500.0),
        Param("neighbours", 15, "UMAP number of neighbours.", low=2, high=500),
        Param("metric", "correlation", "Distance between gene profiles.", choices=METRICS),
        Param("iterations", 250, "t-SNE optimisation steps (the first quarter with early exaggeration).",
              low=50, high=5000),
        Param("components", 50, "Principal components of the gene profiles kept before embedding (0 = all).",
              low=0, high=1000),
        *(Param("assignment", "collision_free", p.help, choices=p.choices) if p.name == "assignment" else p
          for p in GRID_PARAMS),
    )

    def place(self, data: FitData) -> Placement:
        p = self.params
        features = gene_features(data.values, p["metric"], p["components"], data.seed)
        data.progress(0.1, f"embedding {features.shape[0]} genes ({p['method']})")
        # one thread: openTSNE's parallel gradient took 1.6-2x the CPU for little or no gain on 2 cores,
        # and the map then does not depend on the number of cores; 2 interpolation points: a quarter
        # less CPU, and a grid interval of 2 embedding units: a further 12 %, each with the same
        # neighbourhood preservation within noise (benchmarks/bench_tsne_settings.py)
        coords = embed_genes(features, p["method"], perplexity=p["perplexity"], neighbours=p["neighbours"],
                             iterations=p["iterations"], seed=data.seed, n_jobs=1, interpolation_points=2,
                             ints_in_interval=2, progress=data.progress)
        framed = minimum_area_rotation(coords)
        data.progress(0.85, "assigning pixels")
        placement = place_on_grid(np.arange(data.n_genes), lambda h, w: to_pixel_positions(framed, h, w),
                                  data, p)
        placement.notes = {"method": p["method"], "metric": p["metric"],
                           "embedding_dimensions_in": int(features.shape[1])}
        return placement
