"""PK identity samplers: batch structure, epoch coverage, determinism, distributed shares."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from workbench.data.sampler import DistributedIdentitySampler, RandomIdentitySampler

P, K = 4, 3


def make_pids(seed: int = 0, num_ids: int = 23) -> np.ndarray:
    """Shuffled dataset order; image counts 1..11 per id (some ids below K)."""
    rng = np.random.default_rng(seed)
    pids = np.repeat(np.arange(100, 100 + num_ids), rng.integers(1, 12, num_ids))
    return rng.permutation(pids)


def check_batch(batch: list[int], pids: np.ndarray) -> None:
    counts = Counter(pids[batch].tolist())
    assert len(batch) == P * K and len(counts) == P and set(counts.values()) == {K}
    for pid in counts:  # an id with >= K images never repeats an image inside its chunk
        idx = [i for i in batch if pids[i] == pid]
        if (pids == pid).sum() >= K:
            assert len(set(idx)) == K


@pytest.mark.parametrize("seed", range(5))
def test_batches_are_p_ids_by_k_images_and_len_is_exact(seed):
    pids = make_pids(seed)
    sampler = RandomIdentitySampler(pids, batch_size=P * K, num_instances=K, seed=seed)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    for batch in batches:
        check_batch(batch, pids)


@pytest.mark.parametrize("seed", range(5))
def test_epoch_uses_chunks_like_a_naive_count(seed):
    """Naive count: id with n images has max(1, n // K) chunks; the epoch stops when fewer than
    P ids have chunks left, so used = available except for at most P - 1 ids."""
    pids = make_pids(seed)
    sampler = RandomIdentitySampler(pids, batch_size=P * K, num_instances=K, seed=seed)
    used: Counter[int] = Counter()  # chunks of each id used in the epoch
    for batch in sampler:
        used.update({pid: n // K for pid, n in Counter(pids[batch].tolist()).items()})
    available = {int(p): max(1, int((pids == p).sum()) // K) for p in np.unique(pids)}
    leftover = {p for p in available if used[p] < available[p]}
    assert all(used[p] <= available[p] for p in available)
    assert len(leftover) < P
    assert len(sampler) * P == sum(used.values())
    assert set(available) - set(used) <= leftover  # every id appears unless left over at the end
    flat = [i for b in sampler for i in b if (pids == pids[i]).sum() >= K]
    assert len(flat) == len(set(flat))  # no image twice in an epoch (ids with >= K images)


def test_exactly_p_ids_gives_every_id_in_every_batch():
    pids = np.repeat(np.arange(P), 2 * K + 1)  # 2 chunks each (one image left over per id)
    sampler = RandomIdentitySampler(pids, batch_size=P * K, num_instances=K)
    batches = list(sampler)
    assert len(batches) == 2
    assert all(sorted(set(pids[b])) == list(range(P)) for b in batches)


def test_id_with_fewer_than_k_images_is_sampled_with_replacement():
    pids = np.array([0] + [1] * K + [2] * K + [3] * K)  # pid 0 has one image (index 0)
    sampler = RandomIdentitySampler(pids, batch_size=P * K, num_instances=K)
    (batch,) = list(sampler)
    assert batch.count(0) == K


def test_set_epoch_changes_order_reproducibly():
    pids = make_pids(1)
    a = RandomIdentitySampler(pids, batch_size=P * K, num_instances=K, seed=3)
    b = RandomIdentitySampler(pids, batch_size=P * K, num_instances=K, seed=3)
    epoch0 = list(a)
    a.set_epoch(1)
    epoch1 = list(a)
    assert epoch0 != epoch1
    b.set_epoch(1)
    assert list(b) == epoch1
    b.set_epoch(0)
    assert list(b) == epoch0
    c = RandomIdentitySampler(pids, batch_size=P * K, num_instances=K, seed=4)
    assert list(c) != epoch0


def test_argument_errors_say_what_to_change():
    with pytest.raises(ValueError, match="multiple of num_instances"):
        RandomIdentitySampler(make_pids(), batch_size=10, num_instances=4)
    with pytest.raises(ValueError, match="3 identities cannot fill"):
        RandomIdentitySampler([1, 1, 2, 2, 3, 3], batch_size=16, num_instances=4)


def test_works_as_dataloader_batch_sampler():
    pids = make_pids(2)
    sampler = RandomIdentitySampler(pids, batch_size=P * K, num_instances=K)
    loader = DataLoader(list(range(len(pids))), batch_sampler=sampler)
    batches = [b.tolist() for b in loader]
    assert batches == list(sampler) and len(loader) == len(sampler)


@pytest.mark.parametrize("replicas", [2, 3])
def test_distributed_shares_are_disjoint_equal_and_inside_the_plan(replicas):
    pids = make_pids(4, num_ids=40)
    ranks = [
        DistributedIdentitySampler(pids, P * K, K, num_replicas=replicas, rank=r, seed=7)
        for r in range(replicas)
    ]
    for s in ranks:
        s.set_epoch(2)
    plan = {tuple(b) for b in RandomIdentitySampler(pids, P * K, K, seed=7).plan(2).tolist()}
    shares = [[tuple(b) for b in s] for s in ranks]
    assert len({len(share) for share in shares}) == 1 and len(shares[0]) == len(ranks[0])
    assert len(shares[0]) == len(plan) // replicas
    union = [b for share in shares for b in share]
    assert len(set(union)) == len(union)  # disjoint
    assert set(union) <= plan
    for share in shares:
        for batch in share:
            check_batch(list(batch), pids)


def test_distributed_defaults_from_torch_distributed(tmp_path):
    pids = make_pids(5)
    single = DistributedIdentitySampler(pids, P * K, K)  # not initialised → 1 replica, rank 0
    assert (single.num_replicas, single.rank) == (1, 0)
    assert list(single) == list(RandomIdentitySampler(pids, P * K, K))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        s = DistributedIdentitySampler(pids, P * K, K)
        assert (s.num_replicas, s.rank) == (dist.get_world_size(), dist.get_rank())
    finally:
        dist.destroy_process_group()
    with pytest.raises(ValueError, match="rank"):
        DistributedIdentitySampler(pids, P * K, K, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="fewer than the"):
        DistributedIdentitySampler(pids, P * K, K, num_replicas=1000, rank=0)


def test_distributed_sampler_is_a_torch_sampler():
    assert isinstance(DistributedIdentitySampler(make_pids(), P * K, K), torch.utils.data.Sampler)
