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

import cv2
import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from workbench.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from workbench.models.base import get_layer, get_layer_info
from workbench.viz.images import read_rgb
from workbench.viz.ranklist import ranked_gallery
from workbench.widgets._cache import LRUCache

__all__ = ["ImageStore", "ProgressLoader", "RankingData", "model_input_size"]


def model_input_size(model: nn.Module, default: tuple[int, int] = (256, 128)) -> tuple[int, int]:
    """(H, W) the model expects: its card's ``input_size``, else its config's, else ``default``."""
    card = getattr(model, "card", None) or {}
    size = card.get("input_size") or getattr(getattr(model, "config", None), "input_size", None)
    return tuple(int(s) for s in (size or default))  # type: ignore[return-value]


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
    """A query × gallery ranking and the tables it ranks (``path, pid, camid`` rows)."""

    query: pd.DataFrame
    gallery: pd.DataFrame
    distmat: np.ndarray  # (num_query, num_gallery)
    ap: np.ndarray  # (num_query,) average precision, NaN for queries without a true match
    #: pooled-layer feature maps kept from the extraction pass, fp16 on the CPU, or None
    query_maps: Tensor | None = None  # (num_query, C, h, w)
    gallery_maps: Tensor | None = None  # (num_gallery, C, h, w)
    maps_layer: str | None = None

    @classmethod
    def from_result(cls, result: Any) -> RankingData:
        """From a :class:`~workbench.evaluate.protocol.RankingResult`."""
        ap = result.metrics.get("ap")
        ap = np.full(len(result.query), np.nan) if ap is None else np.asarray(ap, float)
        return cls(
            result.query.reset_index(drop=True),
            result.gallery.reset_index(drop=True),
            np.asarray(result.distmat),
            ap,
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
        """Embed the split's query and gallery (one progress bar over both), rank, score.

        With ``keep_layer`` (a ``layer_info`` name) that layer's maps are kept from the same
        forward passes, in fp16, when all of them fit in ``keep_bytes``; the rank-list heat maps
        then need no network at all (:func:`~workbench.explain.gradcam.pair_gradcam`).
        """
        from workbench.evaluate.distance import compute_distance
        from workbench.evaluate.features import extract_features
        from workbench.evaluate.protocol import make_loader
        from workbench.evaluate.ranking import evaluate_ranking

        loaders = {
            p: make_loader(getattr(split, p), *size, batch_size) for p in ("query", "gallery")
        }
        total = sum(len(v) for v in loaders.values())
        offset = {"query": 0, "gallery": len(loaders["query"])}
        keep = keep_layer is not None and _maps_bytes(model, keep_layer, size, split) <= keep_bytes
        feats, kept = {}, {}
        for part, loader in loaders.items():
            if progress is not None:
                loader = ProgressLoader(
                    loader, lambda i, _n, o=offset[part]: progress(o + i, total)
                )
            store: list[Tensor] = []
            handle = (
                get_layer(model, keep_layer).register_forward_hook(
                    lambda _m, _i, out, store=store: store.append(out.to("cpu", torch.float16))
                )
                if keep
                else None
            )
            try:
                feats[part] = extract_features(model, loader, device=device, progress=False)
            finally:
                if handle is not None:
                    handle.remove()
            kept[part] = torch.cat(store) if store else None
        distmat = compute_distance(feats["query"].feats, feats["gallery"].feats, metric="cosine")
        distmat = distmat.cpu().numpy()
        q, g = split.query.reset_index(drop=True), split.gallery.reset_index(drop=True)
        metrics = evaluate_ranking(
            distmat, q.pid.to_numpy(), g.pid.to_numpy(), q.camid.to_numpy(), g.camid.to_numpy()
        )
        ap = np.asarray(metrics["ap"], float)
        layer = keep_layer if keep else None
        return cls(q, g, distmat, ap, kept.get("query"), kept.get("gallery"), layer)

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


def _maps_bytes(model: nn.Module, layer: str, size: tuple[int, int], split: Any) -> int:
    """fp16 bytes of ``layer``'s maps for every query and gallery image of ``split``."""
    row = get_layer_info(model, layer)
    if row.reduction is None:
        return 1 << 62  # a vector: nothing to keep for maps
    h, w = -(-size[0] // row.reduction), -(-size[1] // row.reduction)
    return 2 * row.channels * h * w * (len(split.query) + len(split.gallery))


class ImageStore:
    """Display pixels and model inputs of image files, each file read once (bounded cache)."""

    def __init__(self, size: tuple[int, int], max_bytes: int = 32 << 20) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.cache = LRUCache(max_bytes)
        self._mean = np.asarray(IMAGENET_MEAN, np.float32) * 255.0
        self._inv_std = 1.0 / (np.asarray(IMAGENET_STD, np.float32) * 255.0)

    def rgb(self, path: str | Path) -> np.ndarray:
        """(H, W, 3) uint8 RGB at the model's input size (what the maps are drawn on)."""
        key = str(path)
        image = self.cache.get(key)
        if image is None:
            image = read_rgb(key)
            h, w = self.size
            if image.shape[:2] != (h, w):
                image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
            self.cache.put(key, image)
        return image

    def tensor(self, paths: list[str]) -> Tensor:
        """(B, 3, H, W) ImageNet-normalised float32 batch (the test transform)."""
        batch = np.stack(
            [(self.rgb(p).astype(np.float32) - self._mean) * self._inv_std for p in paths]
        )
        return torch.from_numpy(batch.transpose(0, 3, 1, 2).copy())
