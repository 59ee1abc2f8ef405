"""The transform engine: samples -> images through a Layout, on the CPU or a GPU.

:func:`transform_images` (called as :meth:`Layout.transform <rnaimg_core.layout.Layout.transform>`)
is an index gather plus a segment reduce over the layout's placements sorted by pixel: no Python
loop over samples or pixels. The layout's fitted normalisation folds into one multiply-add per
placement (:func:`plan_transform`), and the samples go through in chunks
(:func:`transform_chunk`) so memory stays bounded: on a CUDA GPU through torch, on the CPU one
single-threaded chunk per worker thread (the threads come from :mod:`rnaimg_core.device`); large
CPU transforms scatter with the compiled loop of :mod:`rnaimg_core._kernels`.

Every function takes the :class:`~rnaimg_core.layout.Layout` as its first argument and reads its
placements, normalisation and geometry; the engine never imports ``layout.py`` (the Layout calls it).
"""

from __future__ import annotations

import queue
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
import scipy.sparse
import torch

from rnaimg_core.device import choose_device, torch_threads
from rnaimg_core.errors import InputError
from rnaimg_core.expression import anndata_matrix, dense_rows, is_anndata
from rnaimg_core.limits import check_images, current_limits

_CHUNK_BYTES = 256 * 2**20  # per chunk of samples on a GPU
_CPU_CHUNK_BYTES = 2 * 2**20  # on the CPU: every pass over a chunk stays in cache
# CPU transforms from this many input values on use the compiled scatter kernel (rnaimg_core/_kernels.py;
# once it is loaded, every CPU transform does): its scatter is 1.6x faster than torch's index_add_ (the
# whole transform 1.3x on one core), but loading it costs about a second once per process, twenty times a
# 40 M-value transform, so small one-off transforms (the dashboard's demo: 1.7 M values) never load it
_KERNEL_MIN_VALUES = 8 * 2**20


def transform_images(
    layout,
    values: np.ndarray,
    gene_ids: Sequence[str] | None = None,
    *,
    missing: str = "error",
    device: str = "auto",
    out: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Turn samples into images.

    Parameters
    ----------
    layout : the Layout (placements, fitted normalisation, image shape)
    values : ndarray or scipy sparse matrix, shape (n_samples, n_genes_in), or AnnData
        Expression values on the scale the layout was fitted on (raw or log). A sparse
        matrix is densified one chunk of samples at a time; an AnnData gives its ``X``.
    gene_ids : column ids of ``values``; when omitted the columns must be the
        layout's ``gene_ids`` in order (an AnnData's gene ids are used, see
        :meth:`~rnaimg_core.expression.Expression.from_anndata`).
    missing : ``"error"`` or ``"fill"``, for layout genes absent from ``gene_ids``.
    device : ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"`` (see :mod:`rnaimg_core.device`).
    out : optional preallocated C-contiguous float32 array of shape (n_samples, C, H, W).
    progress : optional callback ``(samples_done, n_samples)``.

    Returns
    -------
    images : ndarray, shape (n_samples, C, H, W), float32
    """
    if is_anndata(values):
        values, anndata_gene_ids, _ = anndata_matrix(values)
        gene_ids = anndata_gene_ids if gene_ids is None else gene_ids
    sparse = scipy.sparse.issparse(values)
    values = values.tocsr() if sparse else np.asarray(values)
    if values.ndim != 2:
        raise InputError(f"expected a 2-D samples x genes matrix, got shape {values.shape}.")
    if gene_ids is None:
        if values.shape[1] != layout.n_genes:
            raise InputError(f"the matrix has {values.shape[1]} gene columns but the layout expects "
                             f"{layout.n_genes}; pass gene ids so columns can be matched.")
        columns = np.arange(layout.n_genes)
    else:
        columns = layout.align(gene_ids, missing=missing)
    n = values.shape[0]
    if out is None:
        check_images(n, layout.shape)
        out = np.empty((n, *layout.shape), dtype=np.float32)
    flat_out = torch.from_numpy(out.reshape(n, layout.n_pixels))
    dev = choose_device(device)
    if dev.type == "mps":  # the gather/scatter kernels are only tuned for CUDA and the CPU
        dev = torch.device("cpu")
    use_kernel = dev.type == "cpu" and (n * values.shape[1] >= _KERNEL_MIN_VALUES
                                        or "rnaimg_core._kernels" in sys.modules)
    plan = plan_transform(layout, columns, dev, n_inputs=values.shape[1], kernel=use_kernel)
    if layout.normalization.depth_applied_:
        # library size: each sample's sum over the layout's genes, as when the normalisation was fitted
        library = np.unique(columns[columns >= 0])
        plan["library"] = None if library.size == values.shape[1] else torch.as_tensor(library, device=dev)
        plan["depth"] = True
    plan["floor"] = layout.normalization.raw_floor()
    if layout.normalization.scale == "sample_max":
        # each sample divided by its largest sample gene (the placed genes) present in the input
        genes = layout.normalization.sample_genes_
        peak_cols = np.unique(columns if genes is None else columns[genes])
        peak_cols = peak_cols[peak_cols >= 0]
        plan["peak_cols"] = (None if peak_cols.size == values.shape[1]
                             else torch.as_tensor(peak_cols, device=dev))
        plan["sample_max"] = True
    source = values if sparse else np.ascontiguousarray(values, dtype=np.float32)
    rows = dense_rows if sparse else (lambda block: block)  # only sparse chunks need densifying

    chunk_bytes = _CPU_CHUNK_BYTES if dev.type == "cpu" else _CHUNK_BYTES
    # a chunk holds its inputs and its images: bound both (samples x pixels by the resource policy)
    step = max(1, min(chunk_bytes // max(1, 4 * plan["width"]),
                      current_limits().max_chunk_values // max(1, layout.n_pixels)))
    if plan.get("kernel") is not None and step > 4:
        step -= step % 4  # the kernel sums four samples at a time
    starts = range(0, n, step)
    if plan.get("kernel") is not None:
        # work arrays made once here, one set per worker thread: a fresh few-MB array per chunk
        # page-faulted in the worker threads (13,000 faults and 25-30 ms of system time per
        # 2,000 x 20,531 transform on two threads)
        plan["scratch"] = queue.SimpleQueue()
        for _ in range(max(1, min(torch.get_num_threads(), len(starts)))):
            plan["scratch"].put((torch.empty(step * plan["width"], dtype=torch.float32),
                                 np.empty((layout.n_pixels, 4), dtype=np.float32)))
    if dev.type == "cpu":
        def run(start: int) -> None:
            stop = min(n, start + step)
            transform_chunk(layout, _as_tensor(rows(source[start:stop])), plan, flat_out[start:stop])

        _run_chunks_on_cpu(run, starts, n, step, progress)
        return out
    for start in starts:
        stop = min(n, start + step)
        result = torch.empty((stop - start, layout.n_pixels), dtype=torch.float32, device=dev)
        transform_chunk(layout, _as_tensor(rows(source[start:stop])).to(dev), plan, result)
        flat_out[start:stop].copy_(result)
        if progress is not None:
            progress(stop, n)
    return out


def plan_transform(layout, columns: np.ndarray, device, n_inputs: int, kernel: bool = False) -> dict:
    """Gather indices and per-entry affine factors for ``transform``.

    Each image value is ``sum_i (log2(1 + x_i) * a_i + b_i)`` over the genes on the pixel, with
    ``a_i = w_i / spread_i`` and ``b_i = -w_i * center_i / spread_i`` (``w_i`` is 1/count for
    the mean, 1 otherwise), so the whole normalisation folds into one multiply-add.
    Absent genes (``missing="fill"``) get ``a = b = 0``: the training centre.
    ``kernel`` (CPU only): the direct path scatters with the compiled kernel of
    :mod:`rnaimg_core._kernels` where numba is importable (same sums, in the same order).
    """
    order, unique, starts, counts = layout.segments
    genes = layout.placement_gene[order]
    pixels = layout.placement_pixel[order]
    gene_cols = columns[genes]
    present = gene_cols >= 0
    spread = layout.normalization.spread_[genes].astype(np.float64)
    center = layout.normalization.center_[genes].astype(np.float64)
    weight = np.ones(genes.size)
    if layout.reduce == "mean":
        weight = 1.0 / np.repeat(counts, counts)
    scale = np.where(present, weight / spread, 0.0).astype(np.float32)
    shift = np.where(present, -weight * center / spread, 0.0).astype(np.float32)
    one_per_pixel = bool(counts.size == 0 or counts.max() == 1)
    if one_per_pixel:
        # gather straight into pixel order: every pixel takes one column (column 0 when empty, zeroed after)
        pix_cols = np.zeros(layout.n_pixels, dtype=np.int64)
        pix_scale = np.zeros(layout.n_pixels, dtype=np.float32)
        pix_shift = np.zeros(layout.n_pixels, dtype=np.float32)
        pix_cols[pixels] = np.where(present, gene_cols, 0)
        pix_scale[pixels] = scale
        pix_shift[pixels] = shift
        gene_cols, scale, shift = pix_cols, pix_scale, pix_shift

    def tensor(array):
        return torch.as_tensor(array, device=device)

    # Mean/sum where every input column is placed exactly once: scale the input columns in place
    # order and scatter-add them, with the shifts summed per pixel once (no gather pass).
    direct = (not one_per_pixel and layout.reduce != "max"
              and gene_cols.size == n_inputs and bool(present.all())
              and int(np.bincount(gene_cols, minlength=n_inputs).max(initial=0)) <= 1)  # no sort
    if direct:
        col_pixel = np.empty(n_inputs, dtype=np.int64)
        col_scale = np.empty(n_inputs, dtype=np.float32)
        col_pixel[gene_cols] = pixels
        col_scale[gene_cols] = scale
        pixel_shift = np.bincount(pixels, weights=shift.astype(np.float64), minlength=layout.n_pixels)
        return {"direct": True, "one_per_pixel": False, "width": int(n_inputs),
                "col_pixel": tensor(col_pixel), "col_scale": tensor(col_scale),
                "pixel_shift": tensor(pixel_shift.astype(np.float32)),
                "kernel": _scatter_kernel() if kernel else None}

    return {
        "direct": False,
        "identity": bool(np.all(scale == 1) and np.all(shift == 0)),
        "one_per_pixel": one_per_pixel,
        "width": int(gene_cols.size),
        "cols": tensor(np.where(gene_cols >= 0, gene_cols, 0)),
        "scale": tensor(scale),
        "shift": tensor(shift),
        "pixels": tensor(pixels),
        "empty": tensor(np.flatnonzero(np.bincount(unique, minlength=layout.n_pixels) == 0)),
    }


def transform_chunk(layout, chunk, plan: dict, result) -> None:
    """Fill ``result`` (rows, n_pixels) from ``chunk`` (rows, n_genes_in); torch, in place."""
    if plan.get("depth"):  # counts per million, one factor per sample (off: the fast path is untouched)
        sums = (chunk if plan["library"] is None else chunk.index_select(1, plan["library"])).sum(
            1, keepdim=True, dtype=torch.float64)
        chunk = chunk * (1e6 / sums.clamp_min(1.0)).to(chunk.dtype)
    if plan.get("floor") is not None:  # Lyu & Haque's code: log2(1 + x) <= floor becomes 0 (a copy, never in place)
        chunk = chunk.masked_fill(chunk <= plan["floor"], 0.0)
    _reduce_chunk(layout, chunk, plan, result)
    if plan.get("sample_max"):
        # Lyu & Haque: each sample divided by its largest (logged) sample gene; division, not a
        # reciprocal multiply, so that gene's pixel is exactly 1 and no pixel exceeds it
        genes = chunk if plan["peak_cols"] is None else chunk.index_select(1, plan["peak_cols"])
        if genes.shape[1]:
            peaks = genes.amax(1, keepdim=True).contiguous()
            if layout.normalization.log_applied_:
                peaks = _log2_1p(peaks)
            result.div_(peaks.masked_fill_(~(peaks > 0), 1.0))


def _reduce_chunk(layout, chunk, plan: dict, result) -> None:
    """The per-gene multiply-add and the pixel reduce of one chunk (see :meth:`_plan`)."""
    log = layout.normalization.log_applied_
    if plan["direct"]:
        if plan["kernel"] is not None:  # CPU: log2(1 + x) into a work array, then scale and scatter in one pass
            scratch = plan.get("scratch")
            work, sums = scratch.get() if scratch is not None else (None, np.empty((layout.n_pixels, 4), np.float32))
            try:
                logged = chunk
                if log:
                    logged = _log2_1p(chunk, out=None if work is None else work[:chunk.numel()].view(chunk.shape))
                plan["kernel"](logged.numpy(), plan["col_pixel"].numpy(), plan["col_scale"].numpy(),
                               plan["pixel_shift"].numpy(), result.numpy(), sums)
            finally:
                if scratch is not None:
                    scratch.put((work, sums))
            return
        scaled = _log2_1p(chunk, inplace=False) if log else chunk * plan["col_scale"]
        if log:
            scaled.mul_(plan["col_scale"])
        result.copy_(plan["pixel_shift"].expand_as(result))  # the shifts summed per pixel, then the genes
        result.index_add_(1, plan["col_pixel"], scaled)
        return
    if plan["one_per_pixel"]:
        torch.index_select(chunk, 1, plan["cols"], out=result)
        if log:
            _log2_1p(result)
        if not plan["identity"]:
            torch.addcmul(plan["shift"], result, plan["scale"], out=result)  # one pass: shift + x * scale
        if plan["empty"].numel():
            result.index_fill_(1, plan["empty"], 0.0)
        return
    gathered = chunk.index_select(1, plan["cols"])
    if log:
        _log2_1p(gathered)
    if not plan["identity"]:
        gathered.mul_(plan["scale"]).add_(plan["shift"])
    if layout.reduce == "max":
        index = plan["pixels"].unsqueeze(0).expand_as(gathered)
        result.zero_().scatter_reduce_(1, index, gathered, reduce="amax", include_self=False)
    else:
        result.zero_().index_add_(1, plan["pixels"], gathered)


def _run_chunks_on_cpu(run: Callable[[int], None], starts: range, n: int, step: int,
                       progress: Callable[[int, int], None] | None) -> None:
    """Run ``run(start)`` for every chunk, one single-threaded chunk per CPU thread torch may use.

    Each chunk is small enough to stay in cache through all its passes (gather, log,
    multiply-add, reduce). Torch's own intra-op threads would synchronise on every small
    op, which measured 2-4x slower here than one thread per chunk, so intra-op threads are
    set to 1 for the duration (:func:`~rnaimg_core.device.torch_threads`) and restored after.
    """
    workers = max(1, min(torch.get_num_threads(), len(starts)))
    with torch_threads(1):
        if workers == 1:
            for start in starts:
                run(start)
                if progress is not None:
                    progress(min(n, start + step), n)
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rnaimg-transform") as pool:
            for start, _ in zip(starts, pool.map(run, starts)):
                if progress is not None:
                    progress(min(n, start + step), n)


def _scatter_kernel() -> Callable | None:
    """The compiled scatter of the direct CPU path, or None where numba cannot be imported."""
    try:  # lazy: loading numba and the compiled code costs about a second (see _KERNEL_MIN_VALUES)
        from rnaimg_core._kernels import scatter_rows  # noqa: PLC0415
    except ImportError:  # numba missing or broken: torch's index_add_ gives the same sums, slower
        return None
    return scatter_rows


def _log2_1p(tensor, *, inplace: bool = True, out=None):
    """``log2(1 + x)`` of a contiguous float32 tensor, in place, into ``out`` (a contiguous float32
    tensor of the same shape) or into a new tensor, as float32.

    On the CPU numpy's vectorised float32 ``log2`` does the work: it measured 2.7x faster here
    than torch's ``log1p`` (the pass that dominated a transform) and computes exactly what
    :meth:`Normalization.log_transform <rnaimg_core.normalize.Normalization.log_transform>` does.
    """
    if tensor.device.type != "cpu":
        if out is not None:
            return torch.add(tensor, 1.0, out=out).log2_()
        out = tensor.add_(1.0) if inplace else tensor + 1.0
        return out.log2_()
    if out is None:
        out = tensor if inplace else torch.empty_like(tensor)
    array = out.numpy()
    np.add(tensor.numpy(), np.float32(1), out=array)
    np.log2(array, out=array)
    return out


def _as_tensor(array: np.ndarray):
    """A torch view of ``array``; read-only arrays (cached demo data) are only read here."""
    if array.flags.writeable:
        return torch.from_numpy(array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)
