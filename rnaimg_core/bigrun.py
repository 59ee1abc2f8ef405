"""Big runs on Dask: convert a cohort larger than memory, fit a layout on it.

:func:`convert_to_store` maps the layout's transform over the cohort's sample
blocks with ``dask.array`` (``map_blocks``: each task reads its block, transforms
it, writes its shard of the Zarr images store and flags the block done) on a
``distributed`` cluster: a ``LocalCluster`` sized to the machine by default, or any
running Dask deployment by its scheduler address. The layout is scattered once to
every worker; sparse blocks stay sparse until their task transforms them; on a
worker with a GPU the transform runs there (``device="auto"``). The store is marked
complete only after the last block; a rerun resumes the blocks not done. The
destination is checked before any work
(:func:`rnaimg_core.stores.check_store_destination`; the rule for outputs is in
:mod:`rnaimg_core.outputs`).

:func:`fit_cohort_layout` fits a layout on a stratified sample of the cohort and
computes the per-gene normalisation over all of the cohort's fit samples in one
streaming pass (Dask reductions), giving the same kind of layout file as
``rnaimg layout``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from rnaimg_core.errors import InputError
from rnaimg_core.expression import dense_rows
from rnaimg_core.layout import Layout
from rnaimg_core.normalize import PER_GENE_SCALES
from rnaimg_core.splits import FIT, HOLDOUT, holdout_rule, layout_split, stratified_sample
from rnaimg_core.stores import Cohort, check_store_destination, create_store, write_block

ENGINES = ("memory", "dask")
DEFAULT_FIT_SAMPLES = 5000  # a stratified sample this large places genes as well as the whole cohort would
Progress = Callable[[dict], None]


class WorkerFailed(InputError):
    """A block of a big run failed on a worker (the message names the block and why)."""


# ---------------------------------------------------------------- the cluster

@contextlib.contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None,
                threads_per_worker: int = 1, memory_limit: str | None = "auto") -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler`` when given, else a LocalCluster sized to the machine.

    Parameters
    ----------
    scheduler : address of a running scheduler (``tcp://host:8786``), or None
    n_workers : worker processes of the local cluster (default: one per CPU core)
    threads_per_worker : threads each (the transform is single-threaded per block)
    memory_limit : per-worker memory limit of the local cluster
    """
    from distributed import Client, LocalCluster  # noqa: PLC0415 (lazy: Dask loads only for big runs)

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError, TypeError) as exc:  # ValueError: an unknown address scheme
            text = str(exc).strip().splitlines()
            raise InputError(f"Could not reach the Dask scheduler at {scheduler!r}: "
                             f"{text[0] if text else type(exc).__name__}") from None
        with client:
            yield client
        return
    workers = n_workers or max(1, os.cpu_count() or 1)
    with _workers_ignore_ctrl_c():  # the worker processes start now and inherit an ignored SIGINT
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                               memory_limit=memory_limit, dashboard_address=None)
    with cluster, Client(cluster) as client:
        yield client


@contextlib.contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Start worker processes with SIGINT ignored: Ctrl-C in a terminal reaches the whole process group, and
    only this process should act on it (stop, close the cluster, leave the store to be resumed); workers that
    caught it would each print a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


# ---------------------------------------------------------------- conversion

def _convert_block(block, layout: Layout, path: str, gene_ids: np.ndarray | None, missing: str, device: str,
                   block_info=None) -> np.ndarray:
    """One task: transform one block of samples (dense or sparse) and write its shard; returns [n written]."""
    start = int(block_info[0]["array-location"][0][0]) if block_info else 0
    index = int(block_info[0]["chunk-location"][0]) if block_info else 0
    images = layout.transform(block, gene_ids, missing=missing, device=device)
    return np.array([write_block(path, start, images, index)], dtype=np.int64)


def _convert_given(block, start: int, index: int, layout: Layout, path: str, gene_ids, missing: str,
                   device: str) -> int:
    """The same task for a block read on the client (text tables, read in file order)."""
    images = layout.transform(block, gene_ids, missing=missing, device=device)
    return write_block(path, start, images, index)


def convert_to_store(layout: Layout, cohort: Cohort, out: str | os.PathLike, *, client=None,
                     missing: str = "error", device: str = "auto", resume: bool = True,
                     progress: Progress | None = None, max_in_flight: int | None = None) -> dict:
    """Convert a cohort to a Zarr images store on a Dask cluster.

    Parameters
    ----------
    layout : fitted Layout
    cohort : the samples (:func:`~rnaimg_core.stores.open_cohort`)
    out : the store directory to write (``*.zarr``)
    client : a ``distributed.Client`` (default: a LocalCluster for this call, see :func:`dask_client`)
    missing : ``"error"`` or ``"fill"`` for layout genes absent from the cohort
    device : where workers transform (``"auto"``: their GPU when they have one)
    resume : keep the blocks an interrupted run finished, when the store is proven to hold the same
        conversion (input fingerprint, layout, settings, samples: :func:`rnaimg_core.stores.create_store`);
        a store of another conversion is then refused. False: start the store afresh
    progress : called after every block with ``{"block", "n_blocks", "samples_done", "n_samples",
        "samples_per_second", "seconds_left"}``
    max_in_flight : text tables only: blocks read ahead of the workers (bounds memory)

    Returns
    -------
    dict: the summary (samples, blocks, blocks resumed, seconds, samples per second)

    Raises
    ------
    InputError
        Before any work, when ``out`` cannot take the store
        (:func:`rnaimg_core.stores.check_store_destination`).
    WorkerFailed
        When a block fails (a worker died, or its data was bad): names the block and its
        samples; the store is left incomplete, to be resumed.
    """
    check_store_destination(out)
    if client is None:
        with dask_client() as own:
            return convert_to_store(layout, cohort, out, client=own, missing=missing, device=device,
                                    resume=resume, progress=progress, max_in_flight=max_in_flight)
    started = time.perf_counter()
    layout.align(cohort.gene_ids, missing=missing)  # fail on missing genes before writing anything
    split = layout_split(layout.fit_sample_ids, cohort.sample_ids)
    cohort = _regular_blocks(cohort)
    starts, block_size = cohort.block_starts, cohort.block_size
    path = str(Path(out))
    fingerprint = None if cohort.fingerprint is None else {
        **cohort.fingerprint, "layout_sha256": hashlib.sha256(layout.to_json().encode()).hexdigest(),
        "settings": {"missing": missing}}
    group, done = create_store(path, layout, cohort.sample_ids, cohort.labels, split,
                               block_size=block_size, resume=resume, fingerprint=fingerprint)
    layout_future = client.scatter(layout, broadcast=True, hash=False)  # deserialised once per worker
    args = (layout_future, path, cohort.gene_ids, missing, device)
    futures = _submit_blocks(client, cohort, done, args, max_in_flight)
    tracker = _Tracker(starts, done, progress)
    for future, block in futures:
        try:
            result = future.result()
        except Exception as exc:
            time.sleep(0.5)  # let the scheduler report every block that failed with it (a dead worker held several)
            failed = sorted({block} | {futures.block_of[f.key] for f in futures.submitted if f.status == "error"})
            client.cancel(futures.submitted)
            raise WorkerFailed(_failure_message(exc, failed, starts)) from None
        tracker.finished(block, int(np.sum(result)))
    group.attrs["complete"] = True
    seconds = time.perf_counter() - started
    return {"store": path, "n_samples": cohort.n_samples, "shape": list(layout.shape), "n_blocks": done.size,
            "blocks_resumed": tracker.resumed, "n_fit_samples": int((split == FIT).sum()),
            "n_holdout_samples": int((split == HOLDOUT).sum()), "labelled": cohort.labels is not None,
            "seconds": round(seconds, 3),
            "samples_per_second": round(tracker.converted / max(seconds, 1e-9), 1)}


def _regular_blocks(cohort: Cohort) -> Cohort:
    """The cohort with blocks of ``block_size`` samples (the last may be shorter): one store shard per task.

    Blocks come out uneven when a label join drops samples or Parquet row groups differ in size.
    """
    if cohort.values is None:
        return cohort
    sizes = np.asarray(cohort.values.chunks[0])
    if sizes.size and np.all(sizes[:-1] == sizes[0]) and sizes[-1] <= sizes[0]:
        return dataclasses.replace(cohort, block_size=int(sizes[0]))
    return dataclasses.replace(cohort, values=cohort.values.rechunk((cohort.block_size, -1)))


class _Futures:
    """Block futures in completion order, submitted lazily for text tables (bounded read-ahead)."""

    def __init__(self, client, submitted: list, feed: Iterator | None, max_in_flight: int):
        from distributed import as_completed  # noqa: PLC0415 (lazy: Dask loads only for big runs)

        self.block_of = {f.key: b for f, b in submitted}
        self.submitted = [f for f, _ in submitted]
        self.queue = as_completed([f for f, _ in submitted])
        self.feed, self.max_in_flight, self.client = feed, max_in_flight, client
        self._top_up()

    def _top_up(self) -> None:
        while self.feed is not None and self.queue.count() < self.max_in_flight:
            item = next(self.feed, None)
            if item is None:
                self.feed = None
                return
            future, block = item
            self.block_of[future.key] = block
            self.submitted.append(future)
            self.queue.add(future)

    def __iter__(self):
        for future in self.queue:
            yield future, self.block_of[future.key]
            self._top_up()


def _submit_blocks(client, cohort: Cohort, done: np.ndarray, args: tuple, max_in_flight: int | None) -> _Futures:
    """One future per block not done: dask.array ``map_blocks`` tasks, or client-read text blocks."""
    in_flight = max_in_flight or 2 * max(1, len(client.scheduler_info().get("workers", {})) or 1)
    if cohort.values is None:
        def feed():
            for index, (start, block) in enumerate(cohort.iter_blocks()):
                if not done[index]:
                    yield client.submit(_convert_given, block, start, index, *args, pure=False), index
        return _Futures(client, [], feed(), in_flight)
    counts = cohort.values.map_blocks(_convert_block, *args, drop_axis=1, chunks=((1,) * done.size,),
                                      dtype=np.int64, meta=np.empty(0, dtype=np.int64))
    blocks = counts.to_delayed().ravel()
    todo = np.flatnonzero(~done)
    futures = client.compute([blocks[i] for i in todo])
    return _Futures(client, list(zip(futures, todo.tolist())), None, 0)


class _Tracker:
    """Samples done, rate and time left, reported after every block."""

    def __init__(self, starts: np.ndarray, done: np.ndarray, progress: Progress | None):
        sizes = np.diff(starts)
        self.n_samples, self.n_blocks = int(starts[-1]), done.size
        self.resumed = int(done.sum())
        self.samples_done = int(sizes[done].sum())
        self.converted, self.blocks_done = 0, self.resumed
        self.started, self.progress = time.perf_counter(), progress

    def finished(self, block: int, samples: int) -> None:
        self.converted += samples
        self.samples_done += samples
        self.blocks_done += 1
        if self.progress is None:
            return
        rate = self.converted / max(time.perf_counter() - self.started, 1e-9)
        self.progress({"block": int(block), "blocks_done": self.blocks_done, "n_blocks": self.n_blocks,
                       "samples_done": self.samples_done, "n_samples": self.n_samples,
                       "samples_per_second": round(rate, 1),
                       "seconds_left": round((self.n_samples - self.samples_done) / max(rate, 1e-9), 1)})


def _failure_message(exc: BaseException, blocks: list[int], starts: np.ndarray) -> str:
    where = ", ".join(f"block {b} (samples {int(starts[b])} to {int(starts[b + 1]) - 1})" for b in blocks)
    cause = type(exc).__name__
    if cause == "KilledWorker":
        cause = "the worker running it died (out of memory, or killed)"
    else:
        text = str(exc).strip().splitlines()
        cause = f"{cause}: {text[0]}" if text else cause
    return (f"Conversion failed at {where}: {cause}. The store is left incomplete; run the same command "
            "again to resume from the blocks already written.")


def describe_progress(record: dict) -> str:
    """One progress line: block, samples done, samples/s, time left."""
    left = record["seconds_left"]
    eta = f"{left / 60:.1f} min" if left >= 90 else f"{left:.0f} s"
    return (f"convert: block {record['blocks_done']}/{record['n_blocks']}, {record['samples_done']}/"
            f"{record['n_samples']} samples, {record['samples_per_second']:.0f} samples/s, about {eta} left")


# ---------------------------------------------------------------- fitting on a big cohort

def _block_moments(block, normalization, rows: np.ndarray) -> np.ndarray:
    """Per-gene (count, mean, M2, min, max) of the normalisation's log step over a block's ``rows``."""
    values = normalization.log_transform(dense_rows(block, rows)).astype(np.float64)
    n = values.shape[0]
    if n == 0:
        g = values.shape[1]
        return np.stack([np.zeros(g), np.zeros(g), np.zeros(g), np.full(g, np.inf), np.full(g, -np.inf)])[None]
    mean = values.mean(axis=0)
    return np.stack([np.full(values.shape[1], n), mean, ((values - mean) ** 2).sum(axis=0),
                     values.min(axis=0), values.max(axis=0)])[None]


def cohort_statistics(cohort: Cohort, normalization, fit_mask: np.ndarray, *, client=None) -> dict:
    """Per-gene mean, standard deviation, min and max of the log step over the fit samples, in one pass.

    Each block gives its count, mean and sum of squared deviations (computed on its
    worker, as a ``dask.array`` reduction over blocks); they are combined exactly
    (Chan et al.), so the result matches a two-pass computation over all samples.
    """
    starts = cohort.block_starts
    rows_of = [np.flatnonzero(fit_mask[s:e]) for s, e in zip(starts[:-1], starts[1:])]
    if cohort.values is None:
        parts = [_block_moments(block, normalization, rows_of[i]) for i, (_, block) in enumerate(cohort.iter_blocks())]
        moments = np.concatenate(parts)
    else:
        import dask.array as da  # noqa: PLC0415 (lazy: Dask loads only for big runs)

        blocks = [da.from_delayed(_delayed_moments(cohort.values.blocks[i], normalization, rows_of[i]),
                                  shape=(1, 5, cohort.n_genes), dtype=np.float64) for i in range(len(rows_of))]
        stacked = da.concatenate(blocks, axis=0)
        moments = client.compute(stacked).result() if client is not None else stacked.compute()
    count, mean, m2, low, high = (moments[:, k] for k in range(5))
    total = count.sum(axis=0)
    grand = (count * mean).sum(axis=0) / np.maximum(total, 1)
    m2_total = m2.sum(axis=0) + (count * (mean - grand) ** 2).sum(axis=0)
    return {"n": int(total[0]) if total.size else 0, "mean": grand, "std": np.sqrt(m2_total / np.maximum(total, 1)),
            "min": low.min(axis=0), "max": high.max(axis=0)}


def _delayed_moments(block, normalization, rows):
    import dask  # noqa: PLC0415 (lazy: Dask loads only for big runs)

    return dask.delayed(_block_moments)(block, normalization, rows)


def fit_cohort_layout(generator, cohort: Cohort, *, sample_size: int = DEFAULT_FIT_SAMPLES,
                      holdout: float | None = None,
                      client=None, progress=None) -> Layout:
    """Fit a layout on a stratified sample of a big cohort, normalised over the whole cohort.

    Parameters
    ----------
    generator : a configured generator (``get_generator(name)(...)``)
    cohort : the samples (:func:`~rnaimg_core.stores.open_cohort`)
    sample_size : fit samples the placement is learned from (stratified by class)
    holdout : stratified fraction of the cohort kept out of fitting (marked ``"holdout"`` when converted);
        None: the project's default (:func:`~rnaimg_core.splits.holdout_rule`)
    client : a ``distributed.Client`` for the statistics pass (default: Dask's local scheduler)
    progress : passed to the generator's ``fit``

    Returns
    -------
    Layout: placements from the sample; normalisation centre and spread from every fit
    sample of the cohort; ``fit_sample_ids`` all fit samples, so conversion marks the rest holdout.
    """
    seed = int(generator.params["seed"])
    split = holdout_rule(cohort.labels, cohort.n_samples, holdout)
    fit_index = np.flatnonzero(split == FIT)
    sample = stratified_sample(cohort.labels, fit_index, sample_size, seed)
    layout = generator.fit(cohort.to_expression(sample), progress=progress)
    normalization = layout.normalization
    if normalization.scale in PER_GENE_SCALES:  # per-sample max scaling learns nothing over the cohort
        stats = cohort_statistics(cohort, normalization, split == FIT, client=client)
        normalization.set_statistics(mean=stats["mean"], std=stats["std"], minimum=stats["min"],
                                     maximum=stats["max"])
    notes = {**layout.notes, "big_run": {"fit_sample_size": int(sample.size), "n_fit_samples": int(fit_index.size),
                                         "normalisation": "computed over every fit sample of the cohort"}}
    return layout.replace(normalization=normalization, notes=notes,
                          fit_sample_ids=cohort.sample_ids[fit_index].tolist())
