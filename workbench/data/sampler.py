"""PK identity samplers: batches of P identities × K images each (for batch-hard triplet loss).

``RandomIdentitySampler`` follows BoT's sampler (Luo et al. 2019, ``data/samplers/triplet_sampler.py``):
per epoch, every identity's images are shuffled (an identity with fewer than K images is drawn
K times with replacement) and cut into chunks of K (a trailing partial chunk is dropped); then,
while at least P identities still have chunks, P distinct identities are drawn uniformly and one
chunk of each forms a batch. Differences from BoT:
- it is a **batch sampler** (yields lists of P·K indices): use
  ``DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)``, no ``batch_size``;
- the epoch plan comes from ``numpy.random.default_rng([seed, epoch])`` (``set_epoch``), so it is
  reproducible and ``len()`` is exact (BoT's ``__len__`` is an estimate fixed after iteration).

``DistributedIdentitySampler`` is the DistributedDataParallel version: every rank builds the same
plan and takes every ``num_replicas``-th batch, so each rank's batch is itself P×K (batch-hard
triplet mining stays per rank) and all ranks run the same number of steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


class RandomIdentitySampler(Sampler[list[int]]):
    """Batches of ``batch_size // num_instances`` distinct identities × ``num_instances`` images.

    Args:
        pids: identity of every dataset index (``ReIDDataset.pids`` or ``table.pid``).
        batch_size: P·K images per batch.
        num_instances: K images per identity.
        seed: non-negative int; with the epoch it determines the plan.
    """

    def __init__(
        self,
        pids: Sequence[int] | np.ndarray,
        batch_size: int = 64,
        num_instances: int = 4,
        seed: int = 0,
    ) -> None:
        if num_instances < 1 or batch_size < 1 or batch_size % num_instances:
            raise ValueError(
                f"batch_size ({batch_size}) must be a positive multiple of num_instances "
                f"({num_instances}): a batch is P identities × K images"
            )
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.batch_size, self.num_instances, self.seed = batch_size, num_instances, seed
        self.num_pids_per_batch = batch_size // num_instances
        pids = np.asarray(pids, dtype=np.int64).reshape(-1)
        self.pid_indices: dict[int, np.ndarray] = {
            int(p): np.flatnonzero(pids == p) for p in np.unique(pids)
        }  # sorted pids → their dataset indices
        if len(self.pid_indices) < self.num_pids_per_batch:
            raise ValueError(
                f"{len(self.pid_indices)} identities cannot fill one batch of "
                f"P = {batch_size} // {num_instances} = {self.num_pids_per_batch} distinct "
                f"identities; lower batch_size or raise num_instances"
            )
        self.epoch = 0
        self._cache: tuple[int, np.ndarray] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose plan the next ``iter()`` / ``len()`` uses."""
        self.epoch = int(epoch)

    def plan(self, epoch: int | None = None) -> np.ndarray:
        """All batches of an epoch as a (num_batches, P·K) int64 array of dataset indices."""
        epoch = self.epoch if epoch is None else int(epoch)
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, self._build_plan(epoch))
        return self._cache[1]

    def _build_plan(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch])
        k, p = self.num_instances, self.num_pids_per_batch
        chunks: dict[int, list[np.ndarray]] = {}
        for pid, idxs in self.pid_indices.items():
            if len(idxs) < k:
                idxs = rng.choice(idxs, size=k, replace=True)
            idxs = rng.permutation(idxs)
            n = len(idxs) // k
            chunks[pid] = [idxs[i * k : (i + 1) * k] for i in range(n)]  # n chunks of K
        available = list(chunks)
        batches: list[np.ndarray] = []
        while len(available) >= p:
            chosen = rng.choice(len(available), size=p, replace=False)
            picked = [available[i] for i in chosen]
            batches.append(np.concatenate([chunks[pid].pop() for pid in picked]))
            available = [pid for pid in available if chunks[pid]]
        return np.stack(batches) if batches else np.empty((0, k * p), np.int64)

    def _batches(self) -> np.ndarray:
        return self.plan()

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._batches():
            yield batch.tolist()

    def __len__(self) -> int:
        return len(self._batches())


class DistributedIdentitySampler(RandomIdentitySampler):
    """PK batches for DistributedDataParallel: rank ``r`` takes batches ``r, r + R, r + 2R, ...``
    of the shared plan, truncated to a multiple of ``R = num_replicas`` (equal step counts).

    ``batch_size`` is the per-rank (per-GPU) batch. ``num_replicas`` / ``rank`` default to
    ``torch.distributed`` when it is initialised, else to 1 / 0 (single process). Call
    ``set_epoch(epoch)`` on every rank with the same epoch.
    """

    def __init__(
        self,
        pids: Sequence[int] | np.ndarray,
        batch_size: int = 64,
        num_instances: int = 4,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(pids, batch_size, num_instances, seed)
        dist = torch.distributed
        initialised = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if initialised else 1
        if rank is None:
            rank = dist.get_rank() if initialised else 0
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"need num_replicas >= 1 and 0 <= rank < num_replicas, got {num_replicas}, {rank}"
            )
        self.num_replicas, self.rank = num_replicas, rank
        if len(self.plan()) < num_replicas:
            raise ValueError(
                f"an epoch holds only {len(self.plan())} PK batches, fewer than the "
                f"{num_replicas} ranks; lower batch_size or use fewer processes"
            )

    def _batches(self) -> np.ndarray:
        full = self.plan()
        steps = len(full) // self.num_replicas
        return full[: steps * self.num_replicas][self.rank :: self.num_replicas]
