"""What training reads: PyTorch Datasets over images in memory or in a store, epoch draws, loaders.

One training loop (:func:`~rnaimg_core.model.train.train_model`) serves images held in
memory and images stores larger than memory; it reads both through the pieces here.

:class:`ArrayDataset` serves images held in memory (a tensor, on the CPU or the training
device). :class:`StoreDataset` reads samples of an images store (``rnaimg convert --engine
dask``) on demand: a batch is one orthogonal Zarr read of its sorted samples, the store
is opened lazily in each DataLoader worker process, and any sampler works,
``torch.utils.data.distributed.DistributedSampler`` included.

:class:`EpochSampler` decides which training samples an epoch sees: every one, reshuffled,
or (``TrainSettings.samples_per_epoch``) a fresh seeded draw of that many, stratified by
class, the usual way to train on stores too big to pass over every epoch.
:func:`batch_loader` turns a Dataset into batches; :func:`predict_logits` runs a network
over one, forward only.

Training from a store (:func:`~rnaimg_core.model.train.train_streamed`) streams every pass
through these DataLoaders, so memory holds a few batches, not the store.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, SequentialSampler

from rnaimg_core.stores import read_store

EVAL_BATCH = 256         # samples per forward-only batch (validation, test)


class ArrayDataset(Dataset):
    """Images held in memory as ``(image (C, H, W) float32 tensor, class index)`` samples.

    Parameters
    ----------
    images : tensor, shape (n, C, H, W), float32, on any device (batches stay there)
    targets : tensor, shape (n,), class index of every sample
    indices : positions this dataset serves, in order (default: all)
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, indices: Sequence[int] | None = None):
        self.images, self.targets = images, targets
        self.indices = torch.arange(images.shape[0]) if indices is None else torch.as_tensor(
            np.asarray(indices, dtype=np.int64))

    @classmethod
    def from_numpy(cls, images: np.ndarray, targets: np.ndarray, indices: Sequence[int] | None = None,
                   device: torch.device | None = None) -> "ArrayDataset":
        """Wrap arrays without copying them (moved to ``device`` when given)."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        tensor = torch.from_numpy(images if images.flags.writeable else images.copy())
        labels = torch.as_tensor(np.asarray(targets, dtype=np.int64))
        if device is not None:
            tensor, labels = tensor.to(device), labels.to(device)
        return cls(tensor, labels, indices)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of every image."""
        return tuple(int(s) for s in self.images.shape[1:])

    def __len__(self) -> int:
        return int(self.indices.numel())

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        position = self.indices[item]
        return self.images[position], self.targets[position]

    def __getitems__(self, items: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A batch in one gather (the DataLoader's batched fetch)."""
        positions = self.indices[torch.as_tensor(items, dtype=torch.long)].to(self.images.device)
        return list(zip(self.images[positions], self.targets[positions]))


class StoreDataset(Dataset):
    """Samples of an images store as ``(image (C, H, W) float32 tensor, class index)``.

    Parameters
    ----------
    path : the store directory
    indices : store positions this dataset serves, in order (default: all)
    targets : class index of every store sample (default: -1, unlabelled)
    """

    def __init__(self, path, indices: Sequence[int] | None = None, targets: np.ndarray | None = None):
        store = read_store(path)
        self.path = str(store.path)
        self.image_shape = tuple(int(s) for s in store.layout.shape)
        self.indices = np.arange(store.n_samples) if indices is None else np.asarray(indices, dtype=np.int64)
        self.targets = np.full(store.n_samples, -1, np.int64) if targets is None else np.asarray(targets, np.int64)
        self._images = None  # opened in each process that reads (DataLoader workers are separate processes)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_images": None}

    @property
    def images(self):
        if self._images is None:
            import zarr  # noqa: PLC0415 (lazy: Zarr loads only for stores)

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


class EpochSampler(Sampler[int]):
    """The training samples of each epoch: all of them reshuffled, or a stratified draw of a fixed number.

    Every ``iter()`` is one epoch. With ``samples_per_epoch`` None (or at least the number
    of samples) it yields every position in a fresh random order. Otherwise it yields
    ``samples_per_epoch`` positions drawn without replacement, stratified by class (each
    class gets its share of the draw, rounded by largest remainder), in random order; each
    epoch draws again, so over epochs the whole training split is seen.

    Parameters
    ----------
    targets : ndarray of int, shape (n,), class index of every training sample
    samples_per_epoch : samples per epoch, or None for every sample
    seed : seed of the draws and orders (the sequence over epochs is reproducible)
    """

    def __init__(self, targets: np.ndarray, samples_per_epoch: int | None = None, seed: int = 0):
        self.targets = np.asarray(targets, dtype=np.int64)
        n = self.targets.size
        self.epoch_size = n if samples_per_epoch is None else min(n, int(samples_per_epoch))
        counts = np.bincount(self.targets) if n else np.zeros(0, np.int64)
        self.quota = stratified_quota(counts, self.epoch_size)
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return self.epoch_size

    def __iter__(self):
        order = torch.randperm(self.targets.size, generator=self.generator).numpy()
        if self.epoch_size < self.targets.size:
            shuffled = self.targets[order]
            # rank of each position among the shuffled samples of its class: keep the first quota[class]
            by_class = np.argsort(shuffled, kind="stable")
            starts = np.concatenate([[0], np.cumsum(np.bincount(shuffled, minlength=self.quota.size))[:-1]])
            rank = np.empty_like(by_class)
            rank[by_class] = np.arange(by_class.size) - starts[shuffled[by_class]]
            order = order[rank < self.quota[shuffled]]
        return iter(order.tolist())


def stratified_quota(counts: np.ndarray, size: int) -> np.ndarray:
    """Samples to draw from each class so ``size`` in all follow the class shares (largest remainder).

    Parameters
    ----------
    counts : ndarray of int, samples available per class
    size : samples to draw in all, at most ``counts.sum()``

    Returns
    -------
    ndarray of int, per class, summing to ``size``, never above ``counts``
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0 or size >= total:
        return counts.copy()
    exact = counts * (size / total)
    quota = np.floor(exact).astype(np.int64)
    left = size - int(quota.sum())
    # the classes with the largest remainders get one more (ties: the lower class index)
    order = np.lexsort((np.arange(counts.size), -(exact - quota)))
    quota[order[:left]] += 1
    return quota


def batch_loader(dataset: Dataset, batch_size: int, *, sampler: Sampler | None = None,
                 num_workers: int = 0) -> DataLoader:
    """Batches of ``dataset``: in order, or in ``sampler``'s order for training.

    With a sampler (training), a trailing batch of one sample is dropped: batch norm
    needs two, and the next epoch draws again. Worker processes, when asked for, are
    persistent: each starts (and imports torch) once per loader, not once per epoch.
    """
    order = SequentialSampler(dataset) if sampler is None else sampler
    n = len(order)
    batches = BatchSampler(order, int(batch_size),
                           drop_last=sampler is not None and n > 1 and n % int(batch_size) == 1)
    # a private generator: the loader's worker seeds never draw from (and so never shift) torch's global RNG
    return DataLoader(dataset, batch_sampler=batches, num_workers=int(num_workers),
                      persistent_workers=num_workers > 0, generator=torch.Generator().manual_seed(0))


def predict_logits(network: nn.Module, loader: DataLoader, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (on the CPU) and targets of every sample the loader serves, in its order, forward only."""
    network.eval()
    logits, targets = [], []
    with torch.inference_mode():
        for images, target in loader:
            logits.append(network(images.to(dev, non_blocking=True)).cpu())
            targets.append(target.cpu())
    if not logits:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    return torch.cat(logits), torch.cat(targets)
