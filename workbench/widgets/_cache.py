"""A least-recently-used cache bounded by the bytes it holds, so revisiting a pair is instant.

Entries are explanations (maps moved to the CPU at the layer's resolution) and rendered images
(PNG/JPEG bytes); :func:`nbytes` sizes them. The bound is on memory, not on a count: when the
total would pass ``max_bytes`` the least recently used entries are dropped first. One entry
larger than the whole budget is simply not kept.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import torch

__all__ = ["LRUCache", "nbytes"]


def nbytes(value: Any) -> int:
    """Bytes held by ``value``: tensors, arrays, bytes, and containers / dataclasses of them."""
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.nelement()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(nbytes(v) for v in value)
    if dataclasses.is_dataclass(value):
        return sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    return 0


class LRUCache:
    """``get`` / ``put`` / ``get_or_compute`` with an LRU eviction bounded by ``max_bytes``.

    Attributes ``hits``, ``misses``, ``evictions`` and ``bytes`` say how it is doing.
    """

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._data: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def get(self, key: Hashable, default: Any = None) -> Any:
        if key not in self._data:
            self.misses += 1
            return default
        self.hits += 1
        self._data.move_to_end(key)
        return self._data[key][0]

    def put(self, key: Hashable, value: Any) -> None:
        size = nbytes(value)
        if key in self._data:
            self.bytes -= self._data.pop(key)[1]
        if size > self.max_bytes:
            return
        self._data[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, dropped) = self._data.popitem(last=False)
            self.bytes -= dropped
            self.evictions += 1

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        if key in self._data:
            return self.get(key)
        self.misses += 1
        value = compute()
        self.put(key, value)
        return value

    def clear(self) -> None:
        self._data.clear()
        self.bytes = 0

    def __repr__(self) -> str:
        return (
            f"LRUCache({len(self)} entries, {self.bytes / 2**20:.1f} of {self.max_bytes / 2**20:.0f} MiB, "
            f"{self.hits} hits, {self.misses} misses, {self.evictions} evictions)"
        )
