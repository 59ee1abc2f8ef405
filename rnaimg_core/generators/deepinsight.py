"""DeepInsight (Sharma et al. 2019): a 2-D embedding of the genes, framed and scaled to the pixel grid.

Also the shared machinery of every embedding layout: a fast exact-kNN t-SNE
(openTSNE's FFT gradients on neighbours found by a torch matrix product), the
minimum-area bounding rectangle of the convex hull, and :func:`place_on_grid`,
which turns positions into placements with the chosen collision rule and
channel split.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from rnaimg_core.assignment import place_positions
from rnaimg_core.errors import InputError
from rnaimg_core.generators.base import (ASSIGNMENT_PARAM, CHANNEL_BY_PARAM, FitData, Generator, Param,
                                         Placement, image_size, size_params)

METHODS = ("tsne", "pca", "kpca", "umap")
METRICS = ("correlation", "euclidean", "cosine")
_KNN_CHUNK = 2048
_KPCA_FIT_GENES = 3000


# ---------------------------------------------------------------- features and embeddings

def gene_features(values: np.ndarray, metric: str, components: int, seed: int) -> np.ndarray:
    """Genes as points: profiles across samples, shaped so Euclidean distance realises ``metric``.

    Parameters
    ----------
    values : ndarray, shape (n_samples, n_genes), normalised training values
    metric : ``"correlation"`` (rows centred and unit-norm), ``"cosine"`` (unit-norm)
        or ``"euclidean"`` (as is)
    components : reduce to this many principal components first (0 = keep all samples)
    seed : seed of the randomised PCA

    Returns
    -------
    ndarray, shape (n_genes, d), float32
    """
    if metric not in METRICS:
        raise InputError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}.")
    features = np.asarray(values, dtype=np.float32).T.copy()
    if metric == "correlation":
        features -= features.mean(axis=1, keepdims=True)
    if metric in ("correlation", "cosine"):
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        features /= norms
    return reduce_dimensions(features, components, seed)


def reduce_dimensions(features: np.ndarray, components: int, seed: int) -> np.ndarray:
    """Project points on their first ``components`` principal axes, float32.

    Exact (eigendecomposition of the d x d covariance) when there are few
    columns, otherwise a seeded randomised SVD with two power iterations.
    """
    n, d = features.shape
    if not components or components >= min(n, d):
        return np.ascontiguousarray(features, dtype=np.float32)
    centred = np.asarray(features, dtype=np.float32) - features.mean(axis=0, dtype=np.float64).astype(np.float32)
    if d <= 4 * components + 20:
        covariance = (centred.T @ centred).astype(np.float64)
        _, vectors = np.linalg.eigh(covariance)
        axes = vectors[:, ::-1][:, :components].astype(np.float32)
    else:
        rng = np.random.default_rng(seed)
        sketch = centred @ rng.standard_normal((d, components + 10)).astype(np.float32)
        for _ in range(2):
            sketch, _ = np.linalg.qr(sketch)
            sketch, _ = np.linalg.qr(centred @ (centred.T @ sketch))
        basis, _ = np.linalg.qr(sketch)
        _, _, vt = np.linalg.svd(basis.T @ centred, full_matrices=False)
        axes = vt[:components].T.astype(np.float32)
    # fix each axis' sign so results do not depend on the solver
    projected = centred @ axes
    signs = np.sign(projected[np.abs(projected).argmax(axis=0), np.arange(components)])
    signs[signs == 0] = 1
    return np.ascontiguousarray(projected * signs, dtype=np.float32)


def exact_knn(features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours (self excluded) by chunked matrix products in torch.

    Returns
    -------
    indices : ndarray of int64, shape (n, k)
    distances : ndarray of float32, shape (n, k), Euclidean
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    n = x.shape[0]
    sq = (x * x).sum(dim=1)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, n, _KNN_CHUNK):
            stop = min(n, start + _KNN_CHUNK)
            d2 = sq[start:stop, None] - 2.0 * (x[start:stop] @ x.T) + sq[None, :]
            d2[torch.arange(stop - start), torch.arange(start, stop)] = float("inf")
            values, idx = torch.topk(d2, k, dim=1, largest=False, sorted=True)
            indices[start:stop] = idx.numpy()
            distances[start:stop] = values.clamp_min(0).sqrt().numpy()
    return indices, distances


def fast_tsne(features: np.ndarray, *, perplexity: float = 30.0, iterations: int = 500, seed: int = 0,
              n_jobs: int = -1, progress: Callable[[float, str], None] | None = None) -> np.ndarray:
    """t-SNE of the rows of ``features`` in 2-D: exact kNN affinities, openTSNE FFT gradients.

    Parameters
    ----------
    features : ndarray, shape (n, d)
    perplexity : effective number of neighbours (capped at (n - 1) / 3)
    iterations : total optimisation steps; the first quarter (at most 250) uses early exaggeration
    seed : seed of the optimisation
    n_jobs : threads (-1 = all cores)

    Returns
    -------
    ndarray, shape (n, 2), float64
    """
    from openTSNE import TSNEEmbedding, affinity, initialization
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    n = features.shape[0]
    if n < 4:
        return reduce_dimensions(features, 2, seed).astype(np.float64)
    perplexity = float(min(perplexity, (n - 1) / 3))
    k = int(min(n - 1, max(3, round(3 * perplexity))))
    neighbours, distances = exact_knn(features, k)
    if progress:
        progress(0.3, "t-SNE affinities")
    affinities = affinity.PerplexityBasedNN(knn_index=PrecomputedNeighbors(neighbours, distances),
                                            perplexity=perplexity, n_jobs=n_jobs, random_state=seed)
    init = initialization.pca(features, random_state=seed)
    embedding = TSNEEmbedding(init, affinities, negative_gradient_method="fft", n_jobs=n_jobs,
                              random_state=seed)
    exaggerated = min(250, max(1, iterations // 4))
    embedding = embedding.optimize(n_iter=exaggerated, exaggeration=12, momentum=0.5)
    if progress:
        progress(0.5, "t-SNE optimisation")
    embedding = embedding.optimize(n_iter=max(1, iterations - exaggerated), momentum=0.8)
    return np.asarray(embedding, dtype=np.float64)


def embed_genes(features: np.ndarray, method: str, *, perplexity: float = 30.0, neighbours: int = 15,
                iterations: int = 500, seed: int = 0, progress: Callable[[float, str], None] | None = None
                ) -> np.ndarray:
    """2-D coordinates of the genes (rows of ``features``) by ``method`` (tsne, pca, kpca, umap)."""
    if method == "tsne":
        return fast_tsne(features, perplexity=perplexity, iterations=iterations, seed=seed, progress=progress)
    if method == "pca":
        return reduce_dimensions(features, 2, seed).astype(np.float64)
    if method == "kpca":
        from sklearn.decomposition import KernelPCA

        # The kernel matrix grows with the square of the genes: fit on a sample, project all.
        rng = np.random.default_rng(seed)
        fit_rows = np.sort(rng.choice(features.shape[0], min(_KPCA_FIT_GENES, features.shape[0]), replace=False))
        kpca = KernelPCA(n_components=2, kernel="rbf", random_state=seed).fit(features[fit_rows])
        return kpca.transform(features).astype(np.float64)
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise InputError("method=umap needs the optional package umap-learn (pip install umap-learn); "
                             "tsne, pca and kpca work without it.") from None
        reducer = umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=seed)
        return np.asarray(reducer.fit_transform(features), dtype=np.float64)
    raise InputError(f"method must be one of {', '.join(METHODS)}, not {method!r}.")


# ---------------------------------------------------------------- framing

def minimum_area_rotation(coords: np.ndarray) -> np.ndarray:
    """Rotate points so the minimum-area bounding rectangle of their convex hull is axis-aligned.

    The rectangle's longer side ends up horizontal (columns). Degenerate inputs
    (fewer than three distinct points, collinear points) are returned centred.
    """
    coords = np.asarray(coords, dtype=np.float64)
    centred = coords - coords.mean(axis=0)
    try:
        from scipy.spatial import ConvexHull

        hull = centred[ConvexHull(centred).vertices]
    except Exception:  # qhull refuses flat or tiny point sets: nothing to rotate
        return centred
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    cos, sin = np.cos(angles), np.sin(angles)
    # hull points rotated by -angle, for every candidate angle at once
    x = hull[None, :, 0] * cos[:, None] + hull[None, :, 1] * sin[:, None]
    y = -hull[None, :, 0] * sin[:, None] + hull[None, :, 1] * cos[:, None]
    area = np.ptp(x, axis=1) * np.ptp(y, axis=1)
    best = int(np.argmin(area))
    c, s = cos[best], sin[best]
    rotated = np.column_stack((centred[:, 0] * c + centred[:, 1] * s, -centred[:, 0] * s + centred[:, 1] * c))
    if np.ptp(rotated[:, 1]) > np.ptp(rotated[:, 0]):
        rotated = rotated[:, ::-1].copy()
    return rotated


def to_pixel_positions(frame_coords: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale framed (x, y) coordinates to (row, column) positions in ``[0, H-1] x [0, W-1]``."""
    x, y = frame_coords[:, 0], frame_coords[:, 1]

    def scaled(v: np.ndarray, size: int) -> np.ndarray:
        span = np.ptp(v)
        return np.full(v.shape, (size - 1) / 2) if span == 0 else (v - v.min()) / span * (size - 1)

    return np.column_stack((scaled(y, height), scaled(x, width)))


def place_on_grid(genes: np.ndarray, positions_for: Callable[[int, int], np.ndarray], data: FitData,
                  params: dict, *, fixed_size: tuple[int, int] | None = None) -> Placement:
    """Placements of ``genes`` from their grid positions, with the collision rule and channel split.

    Parameters
    ----------
    genes : gene column indices to place
    positions_for : ``(height, width) -> (len(genes), 2)`` (row, column) positions
    data : the FitData (for channel groups)
    params : generator parameters: height, width, channels, channel_by, assignment
    fixed_size : grid size decided by the generator (a SOM's node grid), else from params

    Returns
    -------
    Placement
    """
    from rnaimg_core.generators.stack import channel_groups

    genes = np.asarray(genes, dtype=np.int64)
    if genes.size == 0:
        raise InputError("No genes left to place in the image.")
    n_channels = params["channels"]
    groups = channel_groups(data, genes, n_channels, params["channel_by"])
    largest = int(np.bincount(groups, minlength=n_channels).max())
    if fixed_size is not None:
        height, width = fixed_size
    elif params["height"] and params["width"] and params["assignment"] == "nearest":
        height, width = params["height"], params["width"]  # nearest may put several genes on one pixel
    else:
        height, width = image_size(params["height"], params["width"], largest)
    if params["assignment"] == "collision_free" and largest > height * width:
        raise InputError(f"A collision-free layout needs one pixel per gene: {largest} genes in one channel do "
                         f"not fit {height} x {width} pixels. Use a larger image, more channels or 0 for automatic.")
    positions = positions_for(height, width)
    pixel = np.empty(genes.size, dtype=np.int64)
    for channel in range(n_channels):
        members = np.flatnonzero(groups == channel)
        if members.size:
            cells = place_positions(positions[members], height, width, params["assignment"])
            pixel[members] = channel * height * width + cells
    return Placement(shape=(n_channels, height, width), gene=genes, pixel=pixel)


# ---------------------------------------------------------------- generator

class DeepInsightGenerator(Generator):
    name = "deepinsight"
    title = "DeepInsight (2-D gene embedding)"
    summary = ("Genes embedded in 2-D by their expression profiles (t-SNE, PCA, kernel PCA or UMAP), framed by "
               "the minimum-area rectangle of the convex hull and scaled to the pixel grid.")
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

**What to tune.** *method*; *perplexity* (t-SNE: about how many neighbours each gene keeps, 5-50)
or *neighbours* (UMAP); *metric* (correlation groups co-expressed genes); *iterations* (t-SNE);
*components* (PCA reduction before the embedding, for speed); *height*/*width* (0 = smallest square
that fits every gene; DeepInsight often uses a fixed size such as 100 x 100 with nearest);
*channels* and *channel_by* to split genes over channels.

**What to look for.** Co-expressed genes (pathways, modules, cell-type markers) form blobs; the
layout quality shows how strongly neighbouring pixels are co-expressed compared with random pairs.
"""
    params = (
        Param("method", "tsne", "2-D embedding of the genes.", choices=METHODS),
        Param("perplexity", 30.0, "t-SNE perplexity: roughly the number of close neighbours per gene.",
              low=2.0, high=500.0),
        Param("neighbours", 15, "UMAP number of neighbours.", low=2, high=500),
        Param("metric", "correlation", "Distance between gene profiles.", choices=METRICS),
        Param("iterations", 500, "t-SNE optimisation steps (the first quarter with early exaggeration).",
              low=50, high=5000),
        Param("components", 50, "Principal components of the gene profiles kept before embedding (0 = all).",
              low=0, high=1000),
        *size_params(),
        CHANNEL_BY_PARAM,
        ASSIGNMENT_PARAM,
    )

    def place(self, data: FitData) -> Placement:
        p = self.params_
        features = gene_features(data.values, p["metric"], p["components"], data.seed)
        data.progress(0.1, f"embedding {features.shape[0]} genes ({p['method']})")
        coords = embed_genes(features, p["method"], perplexity=p["perplexity"], neighbours=p["neighbours"],
                             iterations=p["iterations"], seed=data.seed, progress=data.progress)
        framed = minimum_area_rotation(coords)
        data.progress(0.85, "assigning pixels")
        placement = place_on_grid(np.arange(data.n_genes), lambda h, w: to_pixel_positions(framed, h, w),
                                  data, p)
        placement.notes = {"method": p["method"], "metric": p["metric"],
                           "embedding_dimensions_in": int(features.shape[1])}
        return placement


__all__ = ["DeepInsightGenerator", "embed_genes", "exact_knn", "fast_tsne", "gene_features",
           "minimum_area_rotation", "place_on_grid", "to_pixel_positions"]
