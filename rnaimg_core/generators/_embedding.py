"""Genes as points and their 2-D embeddings, shared by the embedding generators.

* :func:`gene_features`: genes as profiles across samples, shaped so Euclidean
  distance realises the chosen metric, reduced by :func:`reduce_dimensions`.
* :func:`exact_knn`: exact nearest neighbours by chunked torch matrix products.
* :func:`fast_tsne`: t-SNE on those neighbours with openTSNE's FFT gradients.
* :func:`tsne_objective`: the t-SNE objective of a finished map (a shipped map checked against
  the features the code computes now, in seconds).
* :func:`embed_genes`: 2-D coordinates by name (t-SNE, PCA, kernel PCA, UMAP).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
import torch

from rnaimg_core.device import one_blas_thread, torch_threads
from rnaimg_core.errors import InputError

METHODS = ("tsne", "pca", "kpca", "umap")
METRICS = ("correlation", "euclidean", "cosine")
_KNN_CHUNK = 2048
_KNN_SMALL_CHUNK = 256  # rows per single-threaded chunk: its distances (256 x n floats) stay in cache
_KPCA_FIT_GENES = 3000


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
    with one_blas_thread():
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


def exact_knn(features: np.ndarray, k: int, *, one_thread_per_chunk: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours (self excluded) by chunked matrix products in torch.

    Parameters
    ----------
    features : ndarray, shape (n, d)
    k : neighbours per point
    one_thread_per_chunk : run each chunk of rows on one thread, chunks spread over the cores
        (the result then does not depend on the number of cores, and no thread waits on another);
        otherwise torch's own threads share each chunk's product

    Returns
    -------
    indices : ndarray of int64, shape (n, k)
    distances : ndarray of float32, shape (n, k), Euclidean
    """
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    n = x.shape[0]
    sq = (x * x).sum(dim=1)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    chunk = _KNN_SMALL_CHUNK if one_thread_per_chunk else _KNN_CHUNK

    def run(start: int) -> None:
        stop = min(n, start + chunk)
        with torch.no_grad():
            # |x_i|^2 - 2 x_i.x_j + |x_j|^2 in place: the same floats as the three-term expression
            d2 = (x[start:stop] @ x.T).mul_(-2.0).add_(sq[start:stop, None]).add_(sq[None, :])
            d2[torch.arange(stop - start), torch.arange(start, stop)] = float("inf")
            values, idx = torch.topk(d2, k, dim=1, largest=False, sorted=True)
        indices[start:stop] = idx.numpy()
        distances[start:stop] = values.clamp_min(0).sqrt().numpy()

    starts = range(0, n, chunk)
    if not one_thread_per_chunk:
        for start in starts:
            run(start)
        return indices, distances
    threads = torch.get_num_threads()
    with torch_threads(1), ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rnaimg-knn") as pool:
        list(pool.map(run, starts))  # one single-threaded chunk per thread torch may use
    return indices, distances


def fast_tsne(features: np.ndarray, *, perplexity: float = 30.0, iterations: int = 500, seed: int = 0,
              n_jobs: int = -1, gradient: str = "fft", interpolation_points: int = 3, ints_in_interval: int = 1,
              progress: Callable[[float, str], None] | None = None) -> np.ndarray:
    """t-SNE of the rows of ``features`` in 2-D: exact kNN affinities, openTSNE FFT gradients.

    Parameters
    ----------
    features : ndarray, shape (n, d)
    perplexity : effective number of neighbours (capped at (n - 1) / 3)
    iterations : total optimisation steps; the first quarter (at most 250) uses early exaggeration
    seed : seed of the optimisation
    n_jobs : threads of the gradient (-1 = all cores; then torch's own threads also share the
        neighbour search, as before; otherwise the search runs one single-threaded chunk per core)
    gradient : ``"fft"`` (interpolation; cost grows linearly, best for many points) or ``"bh"`` (Barnes-Hut)
    interpolation_points : FFT gradient: interpolation points per grid interval (openTSNE's default 3;
        2 is about a third cheaper per step)
    ints_in_interval : FFT gradient: side of a grid interval in embedding units (openTSNE's default 1;
        2 halves the number of intervals along each axis, down to openTSNE's minimum of 50)

    Returns
    -------
    ndarray, shape (n, 2), float64
    """
    from openTSNE import TSNEEmbedding, initialization  # noqa: PLC0415 (lazy: openTSNE loads on first use (t-SNE only))

    n = features.shape[0]
    if n < 4:
        return reduce_dimensions(features, 2, seed).astype(np.float64)
    affinities = tsne_affinities(features, perplexity=perplexity, seed=seed, n_jobs=n_jobs)
    if progress:
        progress(0.3, "t-SNE affinities")
    init = initialization.pca(features, random_state=seed)
    fft_options = ({"n_interpolation_points": interpolation_points, "ints_in_interval": ints_in_interval}
                   if gradient == "fft" else {})
    embedding = TSNEEmbedding(init, affinities, negative_gradient_method=gradient, n_jobs=n_jobs,
                              random_state=seed, **fft_options)
    exaggerated = min(250, max(1, iterations // 4))
    embedding = embedding.optimize(n_iter=exaggerated, exaggeration=12, momentum=0.5)
    if progress:
        progress(0.5, "t-SNE optimisation")
    embedding = embedding.optimize(n_iter=max(1, iterations - exaggerated), momentum=0.8)
    return np.asarray(embedding, dtype=np.float64)


def tsne_affinities(features: np.ndarray, *, perplexity: float, seed: int, n_jobs: int = -1):
    """openTSNE's perplexity-based affinities of the rows of ``features`` on their exact nearest neighbours.

    ``perplexity`` is capped at (n - 1) / 3; ``n_jobs`` as in :func:`fast_tsne`. Needs at least 4 rows.
    """
    from openTSNE import affinity  # noqa: PLC0415 (lazy: openTSNE loads on first use (t-SNE only))
    from openTSNE.nearest_neighbors import PrecomputedNeighbors  # noqa: PLC0415 (lazy: openTSNE loads on first use (t-SNE only))

    n = features.shape[0]
    perplexity = float(min(perplexity, (n - 1) / 3))
    k = int(min(n - 1, max(3, round(3 * perplexity))))
    neighbours, distances = exact_knn(features, k, one_thread_per_chunk=n_jobs != -1)
    return affinity.PerplexityBasedNN(knn_index=PrecomputedNeighbors(neighbours, distances),
                                      perplexity=perplexity, n_jobs=n_jobs, random_state=seed)


def tsne_objective(coords: np.ndarray, features: np.ndarray | None = None, *, affinities=None,
                   perplexity: float = 30.0, seed: int = 0, n_jobs: int = 1) -> float:
    """The t-SNE objective of the map ``coords`` for ``features``: the Kullback-Leibler divergence between
    the affinities of ``features`` (:func:`tsne_affinities`) and those of the map (FFT estimate).

    A map keeps the value it was built with as long as the features it was built from do not change:
    it tells a stale map from a current one in seconds, without embedding anew. ``affinities`` (of
    :func:`tsne_affinities`) replaces ``features`` to check several maps against the same features.
    """
    from openTSNE import TSNEEmbedding  # noqa: PLC0415 (lazy: openTSNE loads on first use (t-SNE only))

    if (features is None) == (affinities is None):
        raise TypeError("tsne_objective takes the features or their affinities, one of the two")
    coords = np.asarray(coords, dtype=np.float64)
    n_rows = affinities.P.shape[0] if affinities is not None else features.shape[0]
    if coords.shape != (n_rows, 2) or n_rows < 4:
        raise InputError(f"A t-SNE map needs one 2-D point per feature row (at least 4); got a map of shape "
                         f"{coords.shape} for {n_rows} rows.")
    if affinities is None:
        affinities = tsne_affinities(features, perplexity=perplexity, seed=seed, n_jobs=n_jobs)
    # one step: openTSNE evaluates the objective at the map it starts from (the affinities are only read)
    step = TSNEEmbedding(coords.copy(), affinities, negative_gradient_method="fft", n_jobs=n_jobs,
                         random_state=seed).optimize(n_iter=1, momentum=0.8)
    return float(step.kl_divergence)


MIN_GENES = {"umap": 4, "kpca": 2}  # fewer and UMAP's spectral start or KernelPCA fail inside the library


def embed_genes(features: np.ndarray, method: str, *, perplexity: float = 30.0, neighbours: int = 15,
                iterations: int = 500, seed: int = 0, n_jobs: int = -1, interpolation_points: int = 3,
                ints_in_interval: int = 1, progress: Callable[[float, str], None] | None = None) -> np.ndarray:
    """2-D coordinates of the genes (rows of ``features``) by ``method`` (tsne, pca, kpca, umap).

    ``n_jobs``, ``interpolation_points`` and ``ints_in_interval`` are the t-SNE's threads (-1 = every
    core) and FFT grid settings (see :func:`fast_tsne`).

    Raises
    ------
    InputError
        For fewer genes than ``method`` can embed (:data:`MIN_GENES`).
    """
    needed = MIN_GENES.get(method, 1)
    if features.shape[0] < needed:
        raise InputError(f"The {method} embedding needs at least {needed} genes; the data have {features.shape[0]}. "
                         "Choose method pca or tsne, or give more genes.")
    if method == "tsne":
        return fast_tsne(features, perplexity=perplexity, iterations=iterations, seed=seed, n_jobs=n_jobs,
                         interpolation_points=interpolation_points, ints_in_interval=ints_in_interval,
                         progress=progress)
    if method == "pca":
        return reduce_dimensions(features, 2, seed).astype(np.float64)
    if method == "kpca":
        from sklearn.decomposition import KernelPCA  # noqa: PLC0415 (lazy: scikit-learn loads in ~0.5 s; only some paths need it)

        # The kernel matrix grows with the square of the genes: fit on a sample, project all.
        rng = np.random.default_rng(seed)
        fit_rows = np.sort(rng.choice(features.shape[0], min(_KPCA_FIT_GENES, features.shape[0]), replace=False))
        kpca = KernelPCA(n_components=2, kernel="rbf", random_state=seed).fit(features[fit_rows])
        return kpca.transform(features).astype(np.float64)
    if method == "umap":
        import umap  # umap-learn; imported here because numba's start-up costs seconds  # noqa: PLC0415 (lazy: numba's start-up costs seconds)

        reducer = umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=seed)
        return np.asarray(reducer.fit_transform(features), dtype=np.float64)
    raise InputError(f"method must be one of {', '.join(METHODS)}, not {method!r}.")
