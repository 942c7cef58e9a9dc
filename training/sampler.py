"""Deterministic, resumable mini-batches from an in-memory dataset.

Each epoch visits the dataset in a permutation drawn from (seed, epoch); a batch is a window of
global positions in that endless sequence, and each item's augmentation draws from a generator
seeded by its position. The whole data stream is thus a pure function of (seed, images seen): a
resumed run gets exactly the batches an uninterrupted one would have, batch sizes may change
between iterations (Progressive GAN), and under DistributedDataParallel each rank takes its own
slice of every global batch.
"""

from __future__ import annotations

from typing import Protocol

import torch

from training.data import Batch, collate

_POSITION_SALT = 1_000_003


class ItemSource(Protocol):
    """What the sampler needs of a dataset (`training.data.PairedDataset`, `ImageDataset`)."""

    def __len__(self) -> int: ...

    def get(self, index: int, rng: torch.Generator) -> Batch: ...


class BatchStream:
    """Batches of `dataset` by global position in the seeded endless permutation."""

    def __init__(self, dataset: ItemSource, seed: int, *, rank: int = 0, world_size: int = 1):
        if len(dataset) == 0:
            raise ValueError("cannot sample from an empty dataset")
        self.dataset = dataset
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self._epoch = -1
        self._order = torch.empty(0, dtype=torch.long)

    def _index_at(self, position: int) -> int:
        epoch, offset = divmod(position, len(self.dataset))
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * _POSITION_SALT + epoch)
            self._order = torch.randperm(len(self.dataset), generator=g)  # (N,)
            self._epoch = epoch
        return int(self._order[offset])

    def global_batch(self, batch_size: int) -> int:
        """Images one iteration consumes across all ranks."""
        return batch_size * self.world_size

    def batch(self, images_seen: int, batch_size: int) -> Batch:
        """This rank's `batch_size` items starting after `images_seen` images, collated."""
        start = images_seen + self.rank * batch_size
        items = []
        for position in range(start, start + batch_size):
            rng = torch.Generator().manual_seed(self.seed + _POSITION_SALT * (position + 1))
            items.append(self.dataset.get(self._index_at(position), rng))
        return collate(items)
