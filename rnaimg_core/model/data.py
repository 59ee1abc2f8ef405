"""Training from an images store: a PyTorch Dataset over Zarr, and the streamed training run.

:class:`StoreDataset` reads samples of an images store (``rnaimg convert --engine
dask``) on demand: a batch is one orthogonal Zarr read of its sorted samples, the
store is opened lazily in each DataLoader worker process, and any sampler works,
``torch.utils.data.distributed.DistributedSampler`` included.

:func:`train_streamed` is :func:`~rnaimg_core.model.train.train_model` for a store
(``train_model`` hands a store here): the same split rules (the store's holdout
samples are the test set), settings, early stopping and :class:`TrainResult`, with
every pass streamed through DataLoaders so memory holds a few batches, not the store.
The logistic-regression baseline is fitted on a stratified sample of at most
:data:`BASELINE_SAMPLES` train + validation samples (noted in the result); the
random-permutation control is not run on a store.
"""

from __future__ import annotations

import copy
import time
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from rnaimg_core import splits
from rnaimg_core.device import choose_device, describe_device
from rnaimg_core.errors import InputError
from rnaimg_core.model.metrics import classification_metrics
from rnaimg_core.model.network import SmallCNN
from rnaimg_core.model.trained import TrainedModel, TrainResult

BASELINE_SAMPLES = 4000  # train+validation samples the streamed baseline is fitted on (held in memory)


class StoreDataset(Dataset):
    """Samples of an images store as ``(image (C, H, W) float32 tensor, class index)``.

    Parameters
    ----------
    path : the store directory
    indices : store positions this dataset serves, in order (default: all)
    targets : class index of every store sample (default: -1, unlabelled)
    """

    def __init__(self, path, indices: Sequence[int] | None = None, targets: np.ndarray | None = None):
        from rnaimg_core.stores import read_store

        store = read_store(path)
        self.path = str(store.path)
        self.indices = np.arange(store.n_samples) if indices is None else np.asarray(indices, dtype=np.int64)
        self.targets = np.full(store.n_samples, -1, np.int64) if targets is None else np.asarray(targets, np.int64)
        self._images = None  # opened in each process that reads (DataLoader workers are separate processes)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_images": None}

    @property
    def images(self):
        if self._images is None:
            import zarr

            self._images = zarr.open_group(self.path, mode="r")["images"]
        return self._images

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int]:
        position = int(self.indices[item])
        return torch.from_numpy(np.asarray(self.images[position])), int(self.targets[position])

    def __getitems__(self, items: Sequence[int]) -> list[tuple[torch.Tensor, int]]:
        """A batch in one Zarr read of its sorted samples (the DataLoader's batched fetch)."""
        positions = self.indices[np.asarray(items, dtype=np.int64)]
        unique, inverse = np.unique(positions, return_inverse=True)
        block = torch.from_numpy(self.images.get_orthogonal_selection((unique,)))
        return [(block[k], int(self.targets[unique[k]])) for k in inverse]


def _loader(dataset: StoreDataset, batch_size: int, num_workers: int, sampler=None) -> DataLoader:
    # persistent workers: a worker process starts (and imports torch) once per run, not once per epoch
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      persistent_workers=num_workers > 0, drop_last=sampler is not None and len(dataset) % batch_size == 1)


def _predict(network: nn.Module, loader: DataLoader, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets of every sample the loader serves, in its order."""
    network.eval()
    logits, targets = [], []
    with torch.inference_mode():
        for images, target in loader:
            logits.append(network(images.to(dev)).cpu())
            targets.append(target)
    if not logits:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    return torch.cat(logits), torch.cat(targets)


def train_streamed(store, settings, *, progress=None, should_stop=None, num_workers: int = 2) -> TrainResult:
    """Train the CNN on an images store without loading it (see :func:`~rnaimg_core.model.train.train_model`).

    Parameters
    ----------
    store : ImagesStore (:func:`~rnaimg_core.stores.read_store`)
    settings : TrainSettings
    progress, should_stop : as for ``train_model``
    num_workers : DataLoader worker processes reading the store

    Returns
    -------
    TrainResult; ``samples_per_second`` counts training samples streamed per second
    """
    from rnaimg_core.model.train import _class_weights, _scheduler, stop_requested, train_step

    started = time.perf_counter()
    if store.labels is None:
        raise InputError("This images store carries no labels; training needs a class for every sample.")
    class_names = sorted(set(store.labels.tolist()))
    if len(class_names) < 2:
        raise InputError(f"Training needs at least two classes; the store has only {class_names}.")
    y = np.searchsorted(class_names, store.labels)
    split = splits.train_val_test(store.labels, store.split, test_fraction=settings.test_fraction,
                                  val_fraction=settings.val_fraction, seed=settings.seed)
    notes = list(split.pop("notes")) + ["Trained from an images store, streamed in batches."]
    dev = choose_device(settings.device)
    data = {role: StoreDataset(store.path, split[role], y) for role in ("train", "val", "test")}
    batch_size = int(settings.batch_size)
    c, h, w = store.layout.shape
    n_classes = len(class_names)
    with torch.random.fork_rng():
        torch.manual_seed(int(settings.seed))
        network = SmallCNN(c, h, w, n_classes, **settings.full_architecture).to(dev)
        weights = (_class_weights(y[split["train"]], n_classes) if settings.class_weighting
                   else np.ones(n_classes, dtype=np.float32))
        criterion = nn.CrossEntropyLoss(weight=torch.as_tensor(weights, device=dev),
                                        label_smoothing=float(settings.label_smoothing))
        optimizer = torch.optim.AdamW(network.parameters(), lr=settings.learning_rate,
                                      weight_decay=settings.weight_decay)
        scheduler = _scheduler(optimizer, settings, split["train"].size, batch_size)
        sampler = RandomSampler(data["train"], generator=torch.Generator().manual_seed(int(settings.seed)))
        train_loader = _loader(data["train"], batch_size, num_workers, sampler)
        val_loader = _loader(data["val"], 256, 0)  # in order: contiguous chunks, read well by this process
        history, best, waited, stopped, seen = [], {"loss": np.inf, "epoch": 0, "state": None}, 0, "completed", 0
        fit_started = time.perf_counter()
        for epoch in range(1, int(settings.epochs) + 1):
            epoch_started = time.perf_counter()
            network.train()
            totals = np.zeros(3)  # summed loss, correct predictions, samples
            for images, targets in train_loader:
                targets = targets.to(dev)
                loss, logits = train_step(network, criterion, optimizer, scheduler, images.to(dev), targets)
                totals += (float(loss) * targets.numel(), int((logits.argmax(1) == targets).sum()), targets.numel())
                if stop_requested(should_stop):
                    stopped = "stop requested"
                    break
            seen += int(totals[2])
            mean_loss, accuracy = totals[:2] / max(1.0, totals[2])
            record = {"epoch": epoch, "n_epochs": int(settings.epochs), "train_loss": round(float(mean_loss), 6),
                      "train_accuracy": round(float(accuracy), 6), **_val_record(network, val_loader, criterion, dev),
                      "seconds": round(time.perf_counter() - epoch_started, 4)}
            history.append(record)
            monitored = record["val_loss"] if split["val"].size else -float(epoch)
            if monitored < best["loss"] - 1e-6 or best["state"] is None:
                best, waited = {"loss": monitored, "epoch": epoch, "state": copy.deepcopy(network.state_dict())}, 0
            else:
                waited += 1
            if progress is not None:
                progress(dict(record))
            if stopped != "completed":
                break
            if split["val"].size and waited >= int(settings.patience):
                stopped = "early stopping"
                break
        train_seconds = time.perf_counter() - fit_started
    network.load_state_dict(best["state"])
    logits, true = _predict(network, _loader(data["test"], 256, 0), dev)
    metrics, confusion, per_class = classification_metrics(true.numpy(), logits.argmax(1).numpy(), n_classes,
                                                           class_names)
    metrics["evaluated_on"] = split["test_source"]
    base = _streamed_baseline(store, y, split, class_names, settings.seed) if settings.baseline else None
    network.cpu().eval()
    split_ids = {role: store.sample_ids[split[role]].tolist() for role in ("train", "val", "test")}
    split_ids["test_source"] = split["test_source"]
    model = TrainedModel(network, class_names, store.layout, {})
    result = TrainResult(
        model=model, class_names=class_names, metrics=metrics, confusion=confusion, per_class=per_class,
        history=history, baseline=base, control=None, split=split_ids, device=describe_device(dev),
        seconds=time.perf_counter() - started, train_seconds=train_seconds,
        samples_per_second=seen / max(train_seconds, 1e-9), epochs_run=len(history), best_epoch=best["epoch"],
        stopped=stopped, settings=settings.record(), notes=notes)
    model.info = result.model_info()
    return result


def _val_record(network: nn.Module, loader: DataLoader, criterion: nn.Module, dev: torch.device) -> dict:
    logits, true = _predict(network, loader, dev)
    if true.numel() == 0:
        return {"val_loss": None, "val_accuracy": None, "val_balanced_accuracy": None}
    loss = float(criterion(logits.to(dev), true.to(dev)))
    predicted = logits.argmax(1).numpy()
    true = true.numpy()
    recalls = [np.mean(predicted[true == k] == k) for k in np.unique(true)]
    return {"val_loss": round(loss, 6), "val_accuracy": round(float(np.mean(predicted == true)), 6),
            "val_balanced_accuracy": round(float(np.mean(recalls)), 6)}


def _streamed_baseline(store, y: np.ndarray, split: dict, class_names: list[str], seed: int) -> dict:
    """Logistic regression on a stratified sample of train+val, scored on every test sample in batches."""
    from sklearn.linear_model import LogisticRegression

    from rnaimg_core.bigrun import stratified_sample

    started = time.perf_counter()
    fit_index = stratified_sample(store.labels, np.concatenate([split["train"], split["val"]]), BASELINE_SAMPLES, seed)
    flat = store.load(fit_index).images.reshape(fit_index.size, -1)
    used = np.any(flat != 0, axis=0)
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000, random_state=seed)
    model.fit(flat[:, used], y[fit_index])
    del flat
    test = split["test"]
    predicted = np.concatenate([
        model.predict(store.load(test[i:i + 1024]).images.reshape(-1, used.size)[:, used])
        for i in range(0, test.size, 1024)]) if test.size else np.empty(0, np.int64)
    metrics, confusion, per_class = classification_metrics(y[test], predicted, len(class_names), class_names)
    return {**metrics, "confusion": confusion.tolist(), "per_class": per_class,
            "model": f"LogisticRegression(C=1, L2, class_weight='balanced') on a stratified sample of "
                     f"{fit_index.size} train+validation samples",
            "features": f"{int(used.sum())} non-empty pixels of the flattened images",
            "seconds": round(time.perf_counter() - started, 3)}
