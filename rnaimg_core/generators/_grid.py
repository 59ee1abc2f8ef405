"""The pixel grid every generator fills: sizes, row-major fill, grid placement, channel groups.

* :func:`size_params`: the image-size parameters of every generator, bounded
  by the active limits; :data:`GRID_PARAMS`: those plus the channel-split and
  collision parameters of the generators that place genes by position.
* :func:`smallest_square`, :func:`image_size`: automatic image sizes.
* :func:`fill_row_major`: genes one per pixel, row by row (chromosome, DeepMapper).
* :func:`minimum_area_rotation`, :func:`to_pixel_positions`: frame 2-D gene
  coordinates and scale them to the grid (DeepInsight, GO).
* :func:`place_on_grid`: grid positions -> placements, with the collision rule
  (:mod:`rnaimg_core.assignment`) and the channel split of :func:`channel_groups`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from rnaimg_core.annotation import UNKNOWN_CHROMOSOME_RANK, arm_sort_key
from rnaimg_core.assignment import place_positions
from rnaimg_core.errors import InputError
from rnaimg_core.generators.base import FitData, Param, Placement
from rnaimg_core.layout import cell_pixels, pixel_coordinates

ASSIGNMENTS = ("nearest", "collision_free")
CHANNEL_SPLITS = ("arm", "variance")


def size_params(channels: str | None = "Number of image channels the genes are spread over.", *,
                height: str = "Image height in pixels (0 = automatic).",
                width: str = "Image width in pixels (0 = automatic).") -> tuple[Param, ...]:
    """The image-size parameters every generator shares: ``height``, ``width`` and ``channels``.

    Their upper bounds are the resource policy's ``max_height``, ``max_width`` and
    ``max_channels`` (:mod:`rnaimg_core.limits`), read whenever a generator's spec is
    asked for (:meth:`~rnaimg_core.generators.base.Param.bounded`).

    Parameters
    ----------
    channels : help line of ``channels``; None leaves the parameter out (a stack's channels are its layers)
    height, width : help lines of ``height`` and ``width``

    Returns
    -------
    tuple of Param
    """
    params = (Param("height", 0, height, low=0, limit="max_height"),
              Param("width", 0, width, low=0, limit="max_width"))
    if channels is None:
        return params
    return (*params, Param("channels", 1, channels, low=1, limit="max_channels"))


GRID_PARAMS: tuple[Param, ...] = (
    *size_params(),
    Param("channel_by", "arm",
          "With channels > 1, how genes are split over channels: groups of chromosome arms in genome order, "
          "or tiers of decreasing variance.",
          choices=CHANNEL_SPLITS),
    Param("assignment", "nearest",
          "nearest: each gene goes to the pixel nearest its position, several genes may share a pixel "
          "(combined by 'reduce'); collision_free: a linear assignment gives every gene its own pixel.",
          choices=ASSIGNMENTS),
)
"""The parameters :func:`place_on_grid` reads; every generator that places genes by position ends with them."""

ONE_PER_PIXEL_ASSIGNMENT_PARAM = Param(
    "assignment", "collision_free",
    "Always one gene per pixel here (accepted for a uniform interface; nearest gives the same result).",
    choices=ASSIGNMENTS)
"""The ``assignment`` of the row-major generators, which never put two genes on one pixel."""


# ---------------------------------------------------------------- sizes

def smallest_square(n: int) -> int:
    """Side of the smallest square image holding ``n`` pixels."""
    return int(np.ceil(np.sqrt(max(1, n))))


def image_size(requested_height: int, requested_width: int, n_items: int) -> tuple[int, int]:
    """Height and width: the requested ones, or (0 = auto) the smallest square for ``n_items``."""
    if requested_height and requested_width:
        if requested_height * requested_width < n_items:
            raise InputError(f"An image of {requested_height} x {requested_width} = "
                             f"{requested_height * requested_width} pixels cannot hold {n_items} genes one per pixel; "
                             "choose a larger size or 0 for automatic.")
        return requested_height, requested_width
    side = smallest_square(n_items)
    if requested_height:
        return requested_height, int(np.ceil(n_items / requested_height))
    if requested_width:
        return int(np.ceil(n_items / requested_width)), requested_width
    return side, side


def cell_positions(cells: np.ndarray, height: int, width: int) -> np.ndarray:
    """(row, column) positions, float64 shape (n, 2), of flat cells ``row * width + col`` of one grid."""
    _, row, col = pixel_coordinates((1, height, width), cells)
    return np.column_stack((row, col)).astype(np.float64)


def _check_genes(genes: np.ndarray) -> np.ndarray:
    genes = np.asarray(genes, dtype=np.int64)
    if genes.size == 0:
        raise InputError("No genes left to place in the image.")
    return genes


# ---------------------------------------------------------------- row-major fill

def fill_row_major(genes: np.ndarray, height: int, width: int, channels: int, *,
                   notes: dict | None = None, regions: list | None = None) -> Placement:
    """Place ``genes`` one per pixel, row by row, channel after channel.

    Parameters
    ----------
    genes : gene column indices, in the order they fill the image
    height, width : requested image size (0 = automatic)
    channels : channel ``c`` takes genes ``[c * k, (c + 1) * k)`` with ``k = ceil(len(genes) / channels)``

    Returns
    -------
    Placement
    """
    genes = _check_genes(genes)
    per_channel = int(np.ceil(genes.size / channels))
    h, w = image_size(height, width, per_channel)
    if h * w * channels < genes.size:
        raise InputError(f"{channels} channel(s) of {h} x {w} pixels cannot hold {genes.size} genes.")
    channel, offset = np.divmod(np.arange(genes.size), per_channel)
    pixel = cell_pixels((channels, h, w), channel, offset)
    return Placement(shape=(channels, h, w), gene=genes, pixel=pixel, notes=notes or {}, regions=regions or [])


# ---------------------------------------------------------------- framing 2-D coordinates

def minimum_area_rotation(coords: np.ndarray) -> np.ndarray:
    """Rotate points so the minimum-area bounding rectangle of their convex hull is axis-aligned.

    The rectangle's longer side ends up horizontal (columns). Degenerate inputs
    (fewer than three distinct points, collinear points) are returned centred.
    """
    coords = np.asarray(coords, dtype=np.float64)
    centred = coords - coords.mean(axis=0)
    try:
        from scipy.spatial import ConvexHull  # noqa: PLC0415 (lazy: scipy.spatial loads on first use)

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


# ---------------------------------------------------------------- channels and grid placement

def channel_groups(data: FitData, genes: np.ndarray, n_channels: int, by: str) -> np.ndarray:
    """Channel (0 .. n_channels-1) of each gene in ``genes``.

    Parameters
    ----------
    data : FitData
    genes : gene column indices
    n_channels : number of channels
    by : ``"arm"``: whole chromosome arms in genome order, cut into groups of
        about equal gene counts (genes without a position go to the last
        channel); ``"variance"``: tiers of decreasing variance over the training
        samples (channel 0 holds the most variable genes).

    Returns
    -------
    ndarray of int64, shape (len(genes),)
    """
    genes = np.asarray(genes, dtype=np.int64)
    if n_channels == 1:
        return np.zeros(genes.size, dtype=np.int64)
    if genes.size < n_channels:
        raise InputError(f"Cannot split {genes.size} genes over {n_channels} channels.")
    if by == "variance":
        variance = data.logged_values(genes).var(axis=0)
        rank = np.empty(genes.size, dtype=np.int64)
        rank[np.argsort(-variance, kind="stable")] = np.arange(genes.size)
        return rank * n_channels // genes.size
    if by == "arm":
        table = data.genes.iloc[genes]
        ranks = arm_sort_key(table["chromosome"], table["cytoband"])
        known = ranks < UNKNOWN_CHROMOSOME_RANK
        groups = np.full(genes.size, n_channels - 1, dtype=np.int64)
        if known.any():
            arms, counts = np.unique(ranks[known], return_counts=True)
            middle = np.cumsum(counts) - counts / 2  # each arm goes where its middle falls
            arm_group = np.minimum((middle / counts.sum() * n_channels).astype(np.int64), n_channels - 1)
            groups[known] = arm_group[np.searchsorted(arms, ranks[known])]
        return groups
    raise InputError(f"channel_by must be 'arm' or 'variance', not {by!r}.")


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
    genes = _check_genes(genes)
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
            pixel[members] = cell_pixels((n_channels, height, width), channel, cells)
    return Placement(shape=(n_channels, height, width), gene=genes, pixel=pixel)


# ---------------------------------------------------------------- treemaps

def squarified_rectangles(sizes: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """Squarified treemap (Bruls, Huizing & van Wijk 2000) of ``sizes`` in a box, snapped to whole pixels.

    Parameters
    ----------
    sizes : positive weights, one per rectangle (any order; the result keeps it)
    top, left, height, width : the box, in pixels

    Returns
    -------
    ndarray of int64, shape (len(sizes), 4)
        ``(row0, row1, col0, col1)`` per rectangle, half-open (``row1``/``col1``
        excluded). Rectangles tile the box; areas are proportional to ``sizes``
        up to rounding of the shared edges, so a rectangle can come out empty
        when its share is below a pixel row: callers check capacity.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    order = np.argsort(-sizes, kind="stable")
    areas = sizes[order] / sizes.sum() * height * width
    boxes = np.zeros((sizes.size, 4))  # float (y0, y1, x0, x1)
    y, x, h, w = float(top), float(left), float(height), float(width)

    def worst(row: list[float], side: float) -> float:
        total = sum(row)
        return max(max(side * side * r / (total * total), total * total / (side * side * r)) for r in row)

    i = 0
    while i < areas.size:
        side = min(h, w)
        row = [areas[i]]
        j = i + 1
        while j < areas.size and worst(row + [areas[j]], side) <= worst(row, side):
            row.append(areas[j])
            j += 1
        total = sum(row)
        if j == areas.size:  # the last row takes what is left, so the boxes tile exactly
            thickness = w if w >= h else h
        else:
            thickness = total / h if w >= h else total / w
        offsets = np.concatenate(([0.0], np.cumsum(row) / total))
        for k in range(len(row)):
            if w >= h:  # a column on the left, rectangles stacked top to bottom
                boxes[order[i + k]] = (y + h * offsets[k], y + h * offsets[k + 1], x, x + thickness)
            else:  # a row on top, rectangles side by side
                boxes[order[i + k]] = (y, y + thickness, x + w * offsets[k], x + w * offsets[k + 1])
        if w >= h:
            x, w = x + thickness, w - thickness
        else:
            y, h = y + thickness, h - thickness
        i = j
    return np.round(boxes).astype(np.int64)
