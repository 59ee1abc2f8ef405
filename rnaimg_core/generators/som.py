"""Self-organising map layout: genes go to the best-matching node of an H x W map.

Two engines train the same map:

* ``batch`` (default): Kohonen's batch SOM, vectorised in numpy. Each
  iteration finds every gene's best-matching node at once (one matrix
  product), then sets every node to the neighbourhood-weighted mean of the
  genes (a separable Gaussian filter on a rectangular grid). 20,000 genes x
  2,000 samples train in seconds.
* ``minisom``: MiniSom's online training (one gene per step), the reference
  implementation; fine for a few thousand genes, slow beyond.

The ``portrait`` variant follows oposSOM's expression portraits: every pixel is
its node's *metagene*, the mean of the genes mapped to the node and its
neighbours, so the image is a smooth map without empty pixels.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
import scipy.sparse
import torch

from rnaimg_core.device import one_blas_thread, torch_threads
from rnaimg_core.errors import InputError
from rnaimg_core.generators._embedding import METRICS, gene_features
from rnaimg_core.generators._grid import GRID_PARAMS, cell_positions, place_on_grid, smallest_square
from rnaimg_core.generators.base import FitData, Generator, Param, Placement
from rnaimg_core.layout import flat_pixels, pixel_coordinates

TOPOLOGIES = ("rectangular", "hexagonal")
ENGINES = ("batch", "minisom")
VARIANTS = ("genes", "portrait")
_BMU_CHUNK = 256  # rows per distance block: 256 x nodes floats stay in cache
_KERNEL_CHUNK = 1024
_CACHED_KERNEL_NODES = 4096


def node_coordinates(height: int, width: int, topology: str) -> np.ndarray:
    """(row, column) coordinates of the map's nodes in the plane, row-major, shape (H*W, 2).

    Hexagonal maps shift odd rows by half a node and space rows by sqrt(3)/2,
    as MiniSom does.
    """
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    if topology == "hexagonal":
        cols = cols + 0.5 * (rows % 2)
        rows = rows * (np.sqrt(3) / 2)
    return np.column_stack((rows.ravel(), cols.ravel()))


def pca_initial_weights(features: np.ndarray, height: int, width: int) -> np.ndarray:
    """Node weights spanning the plane of the first two principal axes (as MiniSom's ``pca_init``)."""
    mean = features.mean(axis=0)
    centred = features - mean
    sample = centred[:: max(1, features.shape[0] // 5000)]
    with one_blas_thread():
        _, s, vt = np.linalg.svd(sample, full_matrices=False)
    spread = s[:2] / np.sqrt(max(1, sample.shape[0]))
    a = np.linspace(-1, 1, height)[:, None, None] * spread[0] * vt[0]
    b = np.linspace(-1, 1, width)[None, :, None] * spread[1] * vt[1] if vt.shape[0] > 1 else 0.0
    return (mean + a + b).reshape(height * width, -1).astype(np.float32)


def best_matching_nodes(features: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each row's nearest node and the squared distance to it.

    ``|x|^2 - 2 x.w + |w|^2`` in cache-sized chunks of rows: one fused multiply-add (torch ``addmm``)
    and one ``argmin`` pass per chunk (the SOM's cost: measured 2x less CPU than separate numpy passes),
    one single-threaded chunk per core.
    """
    w_sq = torch.from_numpy((weights.astype(np.float64) ** 2).sum(axis=1).astype(np.float32))[None, :]
    x_sq = (features.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    w_t = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32)).T
    bmu = np.empty(features.shape[0], dtype=np.int64)
    dist = np.empty(features.shape[0], dtype=np.float32)

    def run(start: int) -> None:
        stop = min(features.shape[0], start + _BMU_CHUNK)
        with torch.no_grad():
            scores = torch.addmm(w_sq, x[start:stop], w_t, alpha=-2.0).numpy()
        # numpy's vectorised argmin (first minimum on ties, as torch's min): 20x faster here than
        # torch's min(dim=1) with indices, which took as long as the product itself
        idx = scores.argmin(axis=1)
        bmu[start:stop] = idx
        dist[start:stop] = np.maximum(scores[np.arange(stop - start), idx] + x_sq[start:stop], 0)

    workers = torch.get_num_threads()
    # torch on one thread: the SOM's products are small (a chunk of genes against the nodes), and threads
    # synchronising on every one cost more than they gain
    with torch_threads(1), ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rnaimg-som") as pool:
        list(pool.map(run, range(0, features.shape[0], _BMU_CHUNK)))
    return bmu, dist


def _smooth(values: np.ndarray, height: int, width: int, sigma: float, squared_distances: np.ndarray | None,
            coords: np.ndarray | None) -> np.ndarray:
    """Gaussian neighbourhood sum over nodes: ``K @ values`` with ``K[i, j] = exp(-d_ij^2 / 2 sigma^2)``."""
    if coords is None:  # rectangular grid: the kernel is separable into rows and columns
        def kernel(n: int):
            idx = np.arange(n, dtype=np.float64)
            return torch.from_numpy(np.exp(-((idx[:, None] - idx[None, :]) ** 2) / (2 * sigma ** 2)).astype(np.float32))

        with torch_threads(1):
            cube = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).reshape(height, -1)
            cube = (kernel(height) @ cube).reshape(height, width, -1)  # along columns of the map
            cube = torch.matmul(kernel(width), cube)  # along rows: (W, W) @ (H, W, d), per map row
            return cube.reshape(height * width, -1).numpy()
    if squared_distances is not None:
        return np.exp(squared_distances * np.float32(-1 / (2 * sigma ** 2))) @ values
    out = np.empty_like(values)
    for start in range(0, coords.shape[0], _KERNEL_CHUNK):
        block = coords[start:start + _KERNEL_CHUNK]
        d2 = ((block[:, None, :] - coords[None, :, :]) ** 2).sum(axis=2)
        out[start:start + _KERNEL_CHUNK] = np.exp(-d2 / (2 * sigma ** 2)).astype(np.float32) @ values
    return out


def train_batch_som(features: np.ndarray, height: int, width: int, *, sigma: float, sigma_end: float,
                    learning_rate: float, iterations: int, topology: str = "rectangular",
                    progress: Callable[[float, str], None] | None = None) -> np.ndarray:
    """Batch SOM: node weights, shape (H*W, d), trained on the rows of ``features``.

    Parameters
    ----------
    features : ndarray, shape (n, d), float32
    height, width : map size
    sigma, sigma_end : Gaussian neighbourhood radius (in nodes) at the first and
        last iteration, decaying geometrically between them
    learning_rate : step from the current weights towards each batch estimate
        (1 = classic batch SOM), decaying as ``lr / (1 + t / (T / 2))``
    iterations : passes over all genes
    topology : ``"rectangular"`` or ``"hexagonal"``
    """
    features = np.ascontiguousarray(features, dtype=np.float32)
    n, d = features.shape
    n_nodes = height * width
    weights = pca_initial_weights(features, height, width)
    coords = None if topology == "rectangular" else node_coordinates(height, width, topology)
    squared_distances = None
    if coords is not None and n_nodes <= _CACHED_KERNEL_NODES:
        squared_distances = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(axis=2).astype(np.float32)
    rows = np.arange(n)
    for t in range(iterations):
        fraction = t / max(1, iterations - 1)
        sigma_t = sigma * (sigma_end / sigma) ** fraction
        lr_t = learning_rate / (1 + t / (iterations / 2))
        bmu, _ = best_matching_nodes(features, weights)
        assign = scipy.sparse.csr_matrix((np.ones(n, dtype=np.float32), (bmu, rows)), shape=(n_nodes, n))
        sums = np.asarray(assign @ features, dtype=np.float32)
        counts = np.bincount(bmu, minlength=n_nodes).astype(np.float32)[:, None]
        # numerator and denominator share one neighbourhood filtering pass
        smoothed = _smooth(np.hstack((sums, counts)), height, width, sigma_t, squared_distances, coords)
        numerator, denominator = smoothed[:, :d], smoothed[:, d:]
        covered = denominator[:, 0] > 1e-12
        target = weights.copy()
        target[covered] = numerator[covered] / denominator[covered]
        weights += lr_t * (target - weights)
        if progress is not None:
            progress(0.2 + 0.6 * (t + 1) / iterations, f"SOM iteration {t + 1}/{iterations}")
    return weights


def train_minisom(features: np.ndarray, height: int, width: int, *, sigma: float, learning_rate: float,
                  iterations: int, topology: str, seed: int) -> np.ndarray:
    """MiniSom online SOM (PCA-initialised, ``iterations`` passes of random single-gene steps)."""
    from minisom import MiniSom  # noqa: PLC0415 (lazy: optional at start-up: only the SOM generator needs it)

    som = MiniSom(height, width, features.shape[1], sigma=sigma, learning_rate=learning_rate,
                  neighborhood_function="gaussian", topology=topology, random_seed=seed)
    som.pca_weights_init(features)
    som.train_random(features, iterations * features.shape[0])
    return som.get_weights().reshape(height * width, -1).astype(np.float32)


def quantization_error(features: np.ndarray, weights: np.ndarray) -> float:
    """Mean distance of each row to its best-matching node."""
    return float(np.sqrt(best_matching_nodes(np.asarray(features, dtype=np.float32), weights)[1]).mean())


class SOMGenerator(Generator):
    """Genes on the best-matching node of a self-organising map of their profiles (Kohonen; oposSOM).

    Parameters are keyword arguments, checked on construction and kept in ``params``:
    ``variant`` (genes, or an oposSOM-style ``portrait`` with ``portrait_radius``), the map's
    training (``sigma``, ``sigma_end``, ``learning_rate``, ``iterations``, ``topology``,
    ``engine``), the gene features (``components``, ``metric``), the grid (``height``,
    ``width``, ``channels``, ``channel_by``, ``assignment``), and the common ``log``,
    ``depth``, ``scale``, ``reduce``, ``seed``.
    """

    name = "som"
    title = "Self-organising map"
    description = ("Genes are mapped by their expression profiles onto a self-organising map of H x W nodes; "
                   "each gene goes to its best-matching node, and a pixel combines its genes (or, as an "
                   "oposSOM-style portrait, shows its node's metagene).")
    reference = ("Kohonen T (1982). Self-organized formation of topologically correct feature maps. Biological "
                 "Cybernetics 43:59-69. Wirth H, Löffler M, von Bergen M, Binder H (2011). Expression cartography "
                 "of human tissues using self organizing maps. BMC Bioinformatics 12:306 (oposSOM).")
    guide = """
**How it decides a gene's pixel.** A grid of H x W nodes, each holding a prototype expression
profile, is trained so that neighbouring nodes hold similar profiles. Each gene then goes to the node
whose profile is closest to its own (its best-matching node), so co-expressed genes share a pixel or
sit on neighbouring pixels, and the whole map is ordered: similar regions are adjacent. With
*variant = portrait* each pixel shows its node's *metagene* (mean of the genes of the node and of the
nodes within *portrait_radius*), as in oposSOM's expression portraits: a smooth image with no empty
pixel. With *assignment = collision_free* (needs at least as many nodes as genes) every gene gets its
own pixel, as near its best-matching node as possible.

**What to tune.** *height*/*width* (0 = automatic: about four genes per node, or one per node when
collision-free); *sigma* (starting neighbourhood radius in nodes, 0 = a quarter of the map side) and
*sigma_end*; *learning_rate* (1 = classic batch SOM); *iterations*; *topology* (rectangular or
hexagonal); *components* (principal components of the gene profiles used for training, for speed);
*engine* (batch is fast; minisom is the reference, slow for many genes). The default of 20 batch
iterations (30 before) gave the same neighbourhood preservation on the demo (0.262 against 0.253)
with a 1.2 % larger quantisation error and 63 instead of 57 of 2,401 nodes without genes, in two
thirds of the time (`benchmarks/README.md`).

**What to look for.** Modules of co-expressed genes collect in spots; samples of one class light up
the same spots (oposSOM calls them "overexpression spots").
"""
    parameters = (
        Param("variant", "genes", "genes: pixel = mean of its genes; portrait: pixel = its node's metagene.",
              choices=VARIANTS),
        Param("portrait_radius", 1, "Portrait: nodes within this many steps also feed a node's metagene.",
              low=0, high=10),
        Param("sigma", 0.0, "Starting neighbourhood radius in nodes (0 = a quarter of the map's longer side).",
              low=0.0, high=1000.0),
        Param("sigma_end", 0.7, "Final neighbourhood radius in nodes (batch engine).", low=0.1, high=100.0),
        Param("learning_rate", 1.0, "Step towards each batch estimate (batch) or initial rate (minisom).",
              low=0.001, high=1.0),
        Param("iterations", 20, "Training passes over all genes.", low=1, high=1000),
        Param("topology", "rectangular", "Node arrangement.", choices=TOPOLOGIES),
        Param("engine", "batch", "batch: vectorised numpy batch SOM; minisom: MiniSom online training.",
              choices=ENGINES),
        Param("components", 50, "Principal components of the gene profiles used for training (0 = all).",
              low=0, high=1000),
        Param("metric", "correlation", "Distance between gene profiles.", choices=METRICS),
        *GRID_PARAMS,
    )

    def map_size(self, n_genes: int) -> tuple[int, int]:
        """Map height and width for ``n_genes`` (the requested size, or automatic)."""
        p = self.params
        per_node = 1 if p["assignment"] == "collision_free" else 4
        side = smallest_square(int(np.ceil(n_genes / per_node)))
        height = p["height"] or (int(np.ceil(n_genes / per_node / p["width"])) if p["width"] else side)
        width = p["width"] or (int(np.ceil(n_genes / per_node / height)) if p["height"] else side)
        return max(2, height), max(2, width)

    def place(self, data: FitData) -> Placement:
        p = self.params
        if p["variant"] == "portrait" and p["assignment"] == "collision_free":
            raise InputError("The SOM portrait shows node metagenes, where genes overlap by design; "
                             "use assignment=nearest with variant=portrait.")
        if data.n_genes < 2:
            raise InputError(f"A self-organising map arranges genes by their similarity and needs at least 2 genes; "
                             f"the data have {data.n_genes}. Use another generator (deepmapper, random) for so few.")
        features = gene_features(data.values, p["metric"], p["components"], data.seed)
        height, width = self.map_size(data.n_genes // max(1, p["channels"]) if p["channels"] > 1 else data.n_genes)
        sigma = p["sigma"] or max(1.0, max(height, width) / 4)
        data.progress(0.2, f"training a {height} x {width} SOM on {features.shape[0]} genes")
        if p["engine"] == "batch":
            weights = train_batch_som(features, height, width, sigma=sigma, sigma_end=min(p["sigma_end"], sigma),
                                      learning_rate=p["learning_rate"], iterations=p["iterations"],
                                      topology=p["topology"], progress=data.progress)
        else:
            weights = train_minisom(features, height, width, sigma=sigma, learning_rate=p["learning_rate"],
                                    iterations=p["iterations"], topology=p["topology"], seed=data.seed)
        bmu, squared_distance = best_matching_nodes(features, weights)
        qe = float(np.sqrt(squared_distance).mean())
        bmu_rc = cell_positions(bmu, height, width)
        genes = np.arange(data.n_genes)
        placement = place_on_grid(genes, lambda h, w: bmu_rc, data, p, fixed_size=(height, width))
        if p["variant"] == "portrait":
            placement = _portrait(placement, p["portrait_radius"])
        placement.notes = {"engine": p["engine"], "map": [height, width], "sigma_start": sigma,
                           "quantization_error": round(qe, 6), "variant": p["variant"],
                           "nodes_without_genes": int(height * width - np.unique(bmu).size)}
        return placement


def _portrait(placement: Placement, radius: int) -> Placement:
    """Place every gene on all pixels within ``radius`` (Chebyshev) of its node, same channel."""
    _, h, w = placement.shape
    channel, row, col = pixel_coordinates(placement.shape, placement.pixel)
    genes, pixels = [], []
    for dr in range(-radius, radius + 1):
        for dc in range(-radius, radius + 1):
            r2, c2 = row + dr, col + dc
            inside = (r2 >= 0) & (r2 < h) & (c2 >= 0) & (c2 < w)
            genes.append(placement.gene[inside])
            pixels.append(flat_pixels(placement.shape, channel[inside], r2[inside], c2[inside]))
    return Placement(shape=placement.shape, gene=np.concatenate(genes), pixel=np.concatenate(pixels))
