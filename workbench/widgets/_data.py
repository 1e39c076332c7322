"""What the apps share: a ranking (distances, per-query AP), image pixels, cached feature maps.

Plain Python, no widgets: :class:`RankingData` is built from a ``RankingResult`` (what
``evaluate_model`` returns) or computed from a model and a split with a progress callback;
:class:`ImageStore` reads each file once (display RGB and the normalised model input come from
the same pixels) and keeps them in a bounded cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from workbench.data.batch_loader import decode_at, decode_flag
from workbench.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from workbench.models.inputs import input_contract
from workbench.viz.ranklist import ranked_gallery
from workbench.widgets._cache import LRUCache

__all__ = ["ImageStore", "ProgressLoader", "RankingData", "model_input_size"]


def model_input_size(model: nn.Module, default: tuple[int, int] = (256, 128)) -> tuple[int, int]:
    """(H, W) the model expects: its card's ``input_size``, else its config's, else ``default``."""
    return input_contract(model).input_size or default


class ProgressLoader:
    """Wrap a sized loader of batches; call ``update(done, total)`` after every batch."""

    def __init__(self, loader: Iterable[Any], update: Callable[[int, int], None]) -> None:
        self.loader, self.update = loader, update

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        total = len(self)
        self.update(0, total)
        for i, batch in enumerate(self.loader, 1):
            yield batch
            self.update(i, total)


@dataclass
class RankingData:
    """A query × gallery ranking and the tables it ranks (``path, pid, camid`` rows).

    Made by :func:`~workbench.evaluate.protocol.evaluate_model`, the one ranking path: its
    ``distmat`` holds the model's ranking distance (``metric``), which every tile shows.
    """

    query: pd.DataFrame
    gallery: pd.DataFrame
    distmat: np.ndarray  # (num_query, num_gallery)
    ap: np.ndarray  # (num_query,) average precision, NaN for queries without a true match
    #: pooled-layer feature maps kept from the extraction pass, fp16 on the CPU, or None
    query_maps: Tensor | None = None  # (num_query, C, h, w)
    gallery_maps: Tensor | None = None  # (num_gallery, C, h, w)
    maps_layer: str | None = None
    metric: str = "cosine"

    @classmethod
    def from_result(cls, result: Any) -> RankingData:
        """From a :class:`~workbench.evaluate.protocol.RankingResult`."""
        ap = result.metrics.get("ap")
        ap = np.full(len(result.query), np.nan) if ap is None else np.asarray(ap, float)
        maps = result.extra.get("maps") or (None, None)
        metric = result.extra.get("metric", "cosine")
        if result.extra.get("rerank"):
            metric = f"re-ranked {metric}"
        return cls(
            result.query.reset_index(drop=True),
            result.gallery.reset_index(drop=True),
            np.asarray(result.distmat),
            ap,
            maps[0],
            maps[1],
            result.extra.get("maps_layer"),
            metric,
        )

    @classmethod
    def compute(
        cls,
        model: nn.Module,
        split: Any,
        size: tuple[int, int],
        device: torch.device | str = "cpu",
        progress: Callable[[int, int], None] | None = None,
        batch_size: int = 64,
        keep_layer: str | None = None,
        keep_bytes: int = 256 << 20,
    ) -> RankingData:
        """Rank the split with :func:`~workbench.evaluate.protocol.evaluate_model` (one progress
        callback over query and gallery), keeping ``keep_layer``'s maps when they fit."""
        from workbench.evaluate.protocol import evaluate_model

        result = evaluate_model(
            model,
            split,
            *size,
            device=device,
            batch_size=batch_size,
            progress=progress if progress is not None else False,
            keep_layer=keep_layer,
            keep_bytes=keep_bytes,
        )
        return cls.from_result(result)

    def __post_init__(self) -> None:
        nq, ng = len(self.query), len(self.gallery)
        if self.distmat.shape != (nq, ng) or len(self.ap) != nq:
            raise ValueError(
                f"ranking is not aligned: distmat {self.distmat.shape}, {nq} queries, "
                f"{ng} gallery images, {len(self.ap)} AP values"
            )
        if nq == 0 or ng == 0:
            raise ValueError("the ranking has no queries or no gallery images")
        self._q = (self.query.pid.to_numpy(), self.query.camid.to_numpy())
        self._g = (self.gallery.pid.to_numpy(), self.gallery.camid.to_numpy())
        valid = np.flatnonzero(~np.isnan(self.ap))
        self.worst_first = valid[np.argsort(self.ap[valid], kind="stable")]  # query indices

    def topk(self, query: int, k: int) -> np.ndarray:
        """Gallery indices of the ``k`` nearest valid gallery images (protocol exclusions)."""
        return ranked_gallery(
            self.distmat, self._q[0], self._g[0], self._q[1], self._g[1], query, k
        )

    def queries_of(self, pid: int) -> np.ndarray:
        """Query indices of identity ``pid`` (empty when the split has none)."""
        return np.flatnonzero(self._q[0] == int(pid))


class ImageStore:
    """Display pixels and model inputs of image files, each file read once (bounded cache)."""

    def __init__(self, size: tuple[int, int], max_bytes: int = 32 << 20) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.cache = LRUCache(max_bytes)
        self._flag: int | None = None
        self._mean = np.asarray(IMAGENET_MEAN, np.float32) * 255.0
        self._inv_std = 1.0 / (np.asarray(IMAGENET_STD, np.float32) * 255.0)

    def rgb(self, path: str | Path) -> np.ndarray:
        """(H, W, 3) uint8 RGB at the model's input size (what the maps are drawn on).

        Decoded exactly as the ranking's loader decodes it (reduced JPEG decoding where the file
        is at least twice the input size, then bilinear), so an explained pair is the pair the
        ranking saw, to the pixel, and its distance is the ranking's.
        """
        key = str(path)
        image = self.cache.get(key)
        if image is None:
            if self._flag is None:  # one rule for the whole store, as the loader has
                self._flag = decode_flag(key, self.size)
            image = decode_at(key, self.size, self._flag)
            self.cache.put(key, image)
        return image

    def tensor(self, paths: list[str]) -> Tensor:
        """(B, 3, H, W) ImageNet-normalised float32 batch (the test transform)."""
        batch = np.stack(
            [(self.rgb(p).astype(np.float32) - self._mean) * self._inv_std for p in paths]
        )
        return torch.from_numpy(batch.transpose(0, 3, 1, 2).copy())
