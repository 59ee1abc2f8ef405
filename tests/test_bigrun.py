"""Big runs: lazy cohorts, conversion on a real 2-worker Dask LocalCluster, Zarr stores, streamed training.

The cohort is SYNTHETIC (seeded TCGA-like, 2,000 samples x 1,024 genes) written as a sparse
``.h5ad``; the format tests use the real demo (184 cells, 1,500 of its genes) written as Parquet
and gzipped TSV.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import scipy.sparse as sp

from rnaimg_core.bigrun import WorkerFailed, cohort_statistics, convert_to_store, fit_cohort_layout
from rnaimg_core.errors import InputError
from rnaimg_core.expression import load_synthetic
from rnaimg_core.generators import get_generator
from rnaimg_core.stores import Cohort, open_cohort, read_store

pytestmark = pytest.mark.slow
BLOCK = 256


@pytest.fixture(scope="module")
def client():
    """A real LocalCluster: 2 worker processes of 1 thread; a task whose worker dies fails at once."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          memory_limit="1GiB") as cluster, Client(cluster) as dask_client:
            yield dask_client


@pytest.fixture(scope="module")
def cohort_files(tmp_path_factory):
    """(Expression, path of the same data as a sparse .h5ad, fitted layout) of the synthetic cohort."""
    expr = load_synthetic(n_samples=2000, n_genes=1024, n_classes=4, seed=3, n_modules=5)
    folder = tmp_path_factory.mktemp("cohort")
    adata = expr.to_anndata()
    adata.X = sp.csr_matrix(np.where(adata.X > np.median(adata.X), adata.X, 0).astype(np.float32))
    adata.write_h5ad(folder / "cohort.h5ad")
    expr.values = adata.X.toarray()
    layout = get_generator("chromosome")(seed=0).fit(expr, train_index=np.arange(2000)[np.arange(2000) % 5 > 0], quality=False)
    return expr, folder / "cohort.h5ad", layout


def test_store_is_bit_identical_to_the_memory_path_and_trains_and_explains(client, cohort_files, tmp_path):
    from rnaimg_core.cli import main

    expr, h5ad, layout = cohort_files
    cohort = open_cohort(h5ad, block_size=BLOCK)
    assert cohort.values.chunks[0][0] == BLOCK and sp.issparse(cohort.values.blocks[0].compute())
    records = []
    summary = convert_to_store(layout, cohort, tmp_path / "images.zarr", client=client, progress=records.append)
    store = read_store(tmp_path / "images.zarr")
    assert np.array_equal(store.images[:], layout.transform(expr.values, expr.gene_ids))
    assert store.sample_ids.tolist() == expr.sample_ids.tolist()
    assert store.labels.tolist() == expr.labels.tolist()
    assert store.layout.to_json() == layout.to_json()
    assert (store.split == "holdout").sum() == 400 == summary["n_holdout_samples"]
    assert records[-1]["samples_done"] == 2000 and len(records) == summary["n_blocks"] == 8
    assert {"samples_per_second", "seconds_left", "blocks_done"} <= records[0].keys()

    model_dir, table = tmp_path / "model", tmp_path / "genes.csv"
    assert main(["train", "--images", str(tmp_path / "images.zarr"), "--epochs", "1", "--n-models", "1",
                 "--batch-size", "128",
                 "--samples-per-epoch", "640", "--no-baseline", "--out", str(model_dir)]) == 0
    info = json.loads((model_dir / "model.json").read_text())
    assert info["settings"]["samples_per_epoch"] == 640
    assert any("streamed" in note for note in info["metrics"]["notes"])
    assert len(info["history"]) == 1 and info["metrics"]["n_test"] == 400  # every holdout sample scored
    assert main(["explain", "--model", str(model_dir), "--images", str(tmp_path / "images.zarr"),
                 "--method", "saliency", "--per-class", "5", "--top", "10", "--out", str(table)]) == 0
    assert table.read_text().count("\n") > 10


def test_cli_convert_on_a_scheduler_address_then_a_dead_worker_names_the_block(client, cohort_files, tmp_path,
                                                                               capsys):
    import dask
    import dask.array as da

    from rnaimg_core.cli import main

    expr, h5ad, layout = cohort_files
    layout_file = layout.save(tmp_path / "layout.json")
    out = tmp_path / "cli.zarr"
    assert main(["convert", "--engine", "dask", "--scheduler", client.scheduler.address, "--input", str(h5ad),
                 "--layout", str(layout_file), "--block-size", "500", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n_samples"] == 2000
    assert np.array_equal(read_store(out).images[:50], layout.transform(expr.values[:50], expr.gene_ids))

    # a cohort whose block 5 kills the worker process reading it
    def read(block_index: int) -> np.ndarray:
        if block_index == 5:
            os._exit(1)
        return expr.values[block_index * BLOCK:(block_index + 1) * BLOCK]

    blocks = [da.from_delayed(dask.delayed(read)(b), shape=(min(BLOCK, 2000 - b * BLOCK), expr.n_genes),
                              dtype=np.float32) for b in range(8)]
    dying = Cohort(da.concatenate(blocks), expr.sample_ids, expr.gene_ids, expr.labels, expr.genes, "dying",
                   block_size=BLOCK, fingerprint=open_cohort(h5ad, block_size=BLOCK).fingerprint)  # the same file
    with pytest.raises(WorkerFailed, match=r"block 5 \(samples 1280 to 1535\).*died"):
        convert_to_store(layout, dying, tmp_path / "dying.zarr", client=client)
    with pytest.raises(InputError, match="incomplete"):
        read_store(tmp_path / "dying.zarr")
    client.wait_for_workers(2, timeout=30)  # the nanny restarts the dead worker

    healthy = open_cohort(h5ad, block_size=BLOCK)
    summary = convert_to_store(layout, healthy, tmp_path / "dying.zarr", client=client)
    assert summary["blocks_resumed"] >= 0 and summary["n_blocks"] == 8
    assert np.array_equal(read_store(tmp_path / "dying.zarr").images[:], read_store(out).images[:])


def test_streaming_statistics_and_cohort_fit_match_memory(client, cohort_files):
    expr, h5ad, _ = cohort_files
    cohort = open_cohort(h5ad, block_size=BLOCK)
    layout = fit_cohort_layout(get_generator("chromosome")(seed=0), cohort, sample_size=300, holdout=0.25,
                               client=client)
    fit = np.isin(expr.sample_ids, layout.fit_sample_ids)
    assert fit.sum() == 1500 and layout.notes["big_run"]["fit_sample_size"] == 300
    in_memory = layout.normalization.log_transform(expr.values[fit]).astype(np.float64)
    np.testing.assert_allclose(layout.normalization.center_, in_memory.mean(axis=0), rtol=1e-5, atol=1e-5)
    spread = in_memory.std(axis=0)
    np.testing.assert_allclose(layout.normalization.spread_, np.where(spread > 0, spread, 1), rtol=1e-4, atol=1e-5)
    stats = cohort_statistics(cohort, layout.normalization, fit)
    assert stats["n"] == 1500


def test_parquet_row_groups_and_gzipped_tsv_read_like_the_whole_file(demo_expression, client, tmp_path):
    import pandas as pd

    from rnaimg_core.expression import to_frame
    from rnaimg_core.readers import read_expression

    frame = to_frame(demo_expression).iloc[:, :1501]  # the label and 1,500 genes: a quick text file
    frame.to_parquet(tmp_path / "demo.parquet", row_group_size=50)
    values = frame.drop(columns=["label"])
    values.to_csv(tmp_path / "demo.tsv.gz", sep="\t")
    sheet = pd.DataFrame({"sample": demo_expression.sample_ids, "cell_type": demo_expression.labels})
    sheet.to_csv(tmp_path / "sheet.csv", index=False)
    whole = read_expression(tmp_path / "demo.tsv.gz", labels_path=tmp_path / "sheet.csv")
    layout = get_generator("chromosome")(seed=0).fit(whole, quality=False)
    for cohort in (open_cohort(tmp_path / "demo.parquet"),  # the label column is guessed, as for whole files
                   open_cohort(tmp_path / "demo.tsv.gz", labels_path=tmp_path / "sheet.csv", block_size=64)):
        assert cohort.gene_ids.tolist() == whole.gene_ids.tolist()
        assert cohort.sample_ids.tolist() == whole.sample_ids.tolist()
        assert np.array_equal(cohort.rows(np.arange(cohort.n_samples)), whole.values)
    store_path = tmp_path / "demo.zarr"
    convert_to_store(layout, cohort, store_path, client=client)  # the text table: blocks read on the client
    assert np.array_equal(read_store(store_path).images[:], layout.transform(whole.values, whole.gene_ids))
    assert read_store(store_path).labels.tolist() == whole.labels.tolist()


def _distributed_worker(rank: int, path: str, world: int, port: int, out: str) -> None:
    import torch
    import torch.distributed as dist
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    from rnaimg_core.model.data import StoreDataset

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    dataset = StoreDataset(path, targets=np.arange(read_store(path).n_samples))
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=0)
    seen = torch.cat([target for _, target in DataLoader(dataset, batch_size=7, sampler=sampler, num_workers=1)])
    gathered = [torch.zeros_like(seen) for _ in range(world)]
    dist.all_gather(gathered, seen)
    if rank == 0:
        np.save(out, torch.stack(gathered).numpy())
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def demo_store(demo_expression, client, tmp_path_factory):
    """The demo (184 cells, 6 classes) through the chromosome layout as an images store (no holdout)."""
    expr = demo_expression
    layout = get_generator("chromosome")(seed=0).fit(expr, quality=False)
    cohort = Cohort(_dask_array(expr.values, 50), expr.sample_ids, expr.gene_ids, expr.labels, expr.genes, "demo",
                    block_size=50)
    path = tmp_path_factory.mktemp("demo-store") / "demo.zarr"
    convert_to_store(layout, cohort, path, client=client)
    return path


def test_store_dataset_under_distributed_sampler_world_size_2(demo_store, tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.start_processes(_distributed_worker, args=(str(demo_store), 2, port, str(tmp_path / "seen.npy")),
                       nprocs=2, start_method="fork")
    seen = np.load(tmp_path / "seen.npy")
    assert seen.shape == (2, 92)
    assert np.array_equal(np.sort(seen.ravel()), np.arange(184))  # the two ranks split the store exactly


def test_epoch_sampler_draws_a_fresh_stratified_seeded_sample_each_epoch():
    from rnaimg_core.model.data import EpochSampler, stratified_quota

    targets = np.repeat([0, 1, 2], [60, 30, 10])
    sampler = EpochSampler(targets, 50, seed=4)
    epochs = [list(sampler) for _ in range(3)]
    for drawn in epochs:
        assert len(drawn) == len(set(drawn)) == len(sampler) == 50  # without replacement
        assert np.bincount(targets[drawn], minlength=3).tolist() == [30, 15, 5]  # the class shares of the split
    assert epochs[0] != epochs[1] != epochs[2]  # a fresh draw every epoch ...
    again = EpochSampler(targets, 50, seed=4)
    assert [list(again) for _ in range(3)] == epochs  # ... the same sequence for the same seed
    assert list(EpochSampler(targets, 50, seed=5)) != epochs[0]
    seen = set().union(*(set(sampler) for _ in range(20)))
    assert seen == set(range(100))  # over epochs the whole training split is used
    full = EpochSampler(targets, None, seed=4)
    assert len(full) == 100 and sorted(full) == list(range(100)) and list(full) != list(range(100))
    assert len(EpochSampler(targets, 10**6, seed=4)) == 100
    assert stratified_quota(np.array([5, 3, 1]), 4).tolist() == [2, 1, 1]  # largest remainder: 2.2, 1.3, 0.4
    assert stratified_quota(np.array([5, 3, 1]), 9).tolist() == [5, 3, 1]


def test_samples_per_epoch_one_loop_for_a_store_and_memory(demo_store, monkeypatch):
    """Streamed and in-memory training run the same loop: same batches, split, history and test score."""
    from rnaimg_core.model import TrainSettings, train_model
    from rnaimg_core.model import train as training

    store = read_store(demo_store)
    in_memory = store.load(np.arange(store.n_samples))
    batches: list[int] = []
    step = training.train_step
    monkeypatch.setattr(training, "train_step", lambda *args: batches.append(args[-1].numel()) or step(*args))
    settings = TrainSettings(epochs=2, batch_size=16, samples_per_epoch=40, n_models=1, baseline=False, n_threads=2)
    results = {}
    for name, images in (("memory", in_memory), ("store", store)):
        batches.clear()
        results[name] = train_model(images, settings)
        assert batches == [16, 16, 8] * 2, name  # 40 samples drawn per epoch, of 110 training samples
    memory, streamed = results["memory"], results["store"]
    assert len(memory.split["train"]) == 110 and memory.split == streamed.split
    assert any("40 of the 110 training samples" in note for note in streamed.notes)
    drop = ("seconds",)
    assert ([{k: v for k, v in r.items() if k not in drop} for r in memory.history]
            == [{k: v for k, v in r.items() if k not in drop} for r in streamed.history])
    assert memory.metrics == streamed.metrics and streamed.metrics["n_test"] == 46  # every test sample, forward only
    assert streamed.settings["samples_per_epoch"] == 40
    with pytest.raises(InputError, match="samples_per_epoch must be a whole number from 2"):
        settings.replace(samples_per_epoch=1)


def test_validation_is_capped_at_a_stratified_subsample():
    from rnaimg_core.splits import train_val_test

    labels = np.repeat(["a", "b"], [300, 100])
    whole = train_val_test(labels, None, val_fraction=0.5, seed=0)
    capped = train_val_test(labels, None, val_fraction=0.5, seed=0, max_val=40)
    assert whole["val"].size == 150 and capped["val"].size == 40
    assert np.unique(labels[capped["val"]], return_counts=True)[1].tolist() == [30, 10]
    assert np.array_equal(capped["test"], whole["test"])  # the test samples never change
    assert np.array_equal(np.sort(np.concatenate([capped["train"], capped["val"]])),
                          np.sort(np.concatenate([whole["train"], whole["val"]])))  # the rest train
    assert any("at most 40" in note for note in capped["notes"])


def _dask_array(values: np.ndarray, block: int):
    import dask.array as da

    return da.from_array(values, chunks=(block, values.shape[1]))
