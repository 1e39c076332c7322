"""The byte-bounded LRU cache, against a hand-worked sequence."""

from __future__ import annotations

import numpy as np
import torch

from workbench.widgets._cache import LRUCache, nbytes


def test_nbytes_counts_tensors_arrays_bytes_and_containers():
    assert nbytes(torch.zeros(4, 2)) == 32
    assert nbytes(np.zeros(3, np.float16)) == 6
    assert nbytes((b"abc", {"x": torch.zeros(2, dtype=torch.float64)})) == 3 + 16
    assert nbytes(1.5) == 0


def test_least_recently_used_entries_go_first_past_the_byte_bound():
    cache = LRUCache(max_bytes=100)
    for key in "abc":
        cache.put(key, b"x" * 40)  # 40 bytes each: c pushes a out
    assert list(cache._data) == ["b", "c"] and cache.bytes == 80 and cache.evictions == 1
    assert cache.get("b") is not None  # b is now the most recent
    cache.put("d", b"x" * 40)
    assert "c" not in cache and list(cache._data) == ["b", "d"]
    cache.put("huge", b"x" * 101)  # larger than the whole budget: not kept, nothing dropped
    assert "huge" not in cache and len(cache) == 2
    cache.put("b", b"x" * 10)  # replacing an entry re-counts its size
    assert cache.bytes == 50
    calls = []
    assert cache.get_or_compute("e", lambda: calls.append(1) or b"y") == b"y"
    assert cache.get_or_compute("e", lambda: calls.append(1) or b"z") == b"y" and calls == [1]
    assert cache.hits == 2 and "1 hits" not in repr(cache)


def test_few_threads_restores_the_setting():
    from workbench.widgets._controls import few_threads, interactive

    before = torch.get_num_threads()
    with few_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with interactive(torch.device("meta")):  # not a CPU: left alone
        assert torch.get_num_threads() == before
