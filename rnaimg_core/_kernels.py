"""Compiled CPU kernel of the transform engine (:mod:`rnaimg_core.transform`, numba).

Imported only by ``transform.py``, and only for transforms large enough to repay loading it
(see ``_KERNEL_MIN_VALUES`` there): importing numba and loading the cached machine code costs
about a second per process, compiling it the first time after installation about five.

The kernel is the scatter-add of the transform's direct path (every input column on one
pixel, several columns per pixel, mean or sum): ``out[r, pixel[j]] += values[r, j] * scale[j]``
in column order, from ``out[r] = shift``. Torch's ``index_add_`` along the pixel axis pays a
strided slice per column (about 0.7 ns per value here); this loop reads each column's pixel and
factor once for four samples and adds them in the same order, so the sums are bit-identical
to ``index_add_`` on the scaled values (no fused multiply-add, no reordering).
"""

from __future__ import annotations

import numba


def _jit(function):
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:  # no writable cache folder (read-only install and home): compile per process
        return numba.njit(nogil=True)(function)


@_jit
def scatter_rows(values, pixel, scale, shift, out, sums):  # pragma: no cover - compiled by numba
    """``out[r] = shift``, then ``out[r, pixel[j]] += values[r, j] * scale[j]`` for every column ``j``.

    Four samples at a time are summed into a pixel-major buffer, so each column costs one
    read of its pixel and factor and one cache line of sums (not four); the buffer is then
    copied out row by row.

    Parameters
    ----------
    values : float32 array, shape (n_rows, n_columns), C-contiguous
    pixel : int64 array, shape (n_columns,), the pixel of each column
    scale : float32 array, shape (n_columns,)
    shift : float32 array, shape (n_pixels,)
    out : float32 array, shape (n_rows, n_pixels), C-contiguous, written in place
    sums : float32 work array, shape (n_pixels, 4), C-contiguous (passed in: a fresh one per call
        page-faults in worker threads)
    """
    n_rows, n_columns = values.shape
    n_pixels = shift.shape[0]
    r = 0
    while r + 4 <= n_rows:
        for p in range(n_pixels):
            sums[p, 0] = shift[p]
            sums[p, 1] = shift[p]
            sums[p, 2] = shift[p]
            sums[p, 3] = shift[p]
        x0 = values[r]
        x1 = values[r + 1]
        x2 = values[r + 2]
        x3 = values[r + 3]
        for j in range(n_columns):
            p = pixel[j]
            s = scale[j]
            sums[p, 0] += x0[j] * s
            sums[p, 1] += x1[j] * s
            sums[p, 2] += x2[j] * s
            sums[p, 3] += x3[j] * s
        o0 = out[r]
        o1 = out[r + 1]
        o2 = out[r + 2]
        o3 = out[r + 3]
        for p in range(n_pixels):
            o0[p] = sums[p, 0]
            o1[p] = sums[p, 1]
            o2[p] = sums[p, 2]
            o3[p] = sums[p, 3]
        r += 4
    while r < n_rows:  # the last one to three samples
        x0 = values[r]
        o0 = out[r]
        o0[:] = shift
        for j in range(n_columns):
            o0[pixel[j]] += x0[j] * scale[j]
        r += 1
