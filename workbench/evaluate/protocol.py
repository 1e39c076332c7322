"""Evaluate a model on a split's query/gallery: features → distances → (re-ranking) → metrics.

One function used by the trainer, ``workbench eval``, the demo and the notebooks, so every number
the workbench prints is computed the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from workbench.data.split import Split


@dataclass
class RankingResult:
    """Metrics plus what a figure needs: the distance matrix and the query/gallery tables."""

    metrics: dict[str, Any]
    distmat: np.ndarray  # (num_query, num_gallery)
    query: Any  # pandas DataFrame
    gallery: Any
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """The headline numbers in percent: rank-1/5/10, mAP, mINP."""
        m = self.metrics
        cmc = m["cmc"]
        return {
            "rank1": 100 * float(cmc[0]),
            "rank5": 100 * float(cmc[min(4, len(cmc) - 1)]),
            "rank10": 100 * float(cmc[min(9, len(cmc) - 1)]),
            "mAP": 100 * float(m["mAP"]),
            "mINP": 100 * float(m["mINP"]),
        }

    def camera_gap(self) -> dict[str, float]:
        """Same-camera vs cross-camera rank-1 of this ranking (see :func:`camera_gap`)."""
        q, g = self.query, self.gallery
        return camera_gap(
            self.distmat, q.pid.to_numpy(), g.pid.to_numpy(), q.camid.to_numpy(), g.camid.to_numpy()
        )

    def headline(self) -> dict[str, float]:
        """:meth:`summary` and :meth:`camera_gap` together: what cards and logs record."""
        return {**self.summary(), **self.camera_gap()}


def make_loader(
    table: pd.DataFrame, height: int, width: int, batch_size: int = 128, workers: int = 2
) -> Iterable[dict[str, Any]]:
    """Test-time batches (resize + normalise) of one table: threads decode at reduced size.

    See :class:`workbench.data.batch_loader.BatchImageLoader`; ``workers`` = decoding threads.
    """
    from workbench.data.batch_loader import BatchImageLoader

    return BatchImageLoader(table, height, width, batch_size, threads=max(1, workers))


def evaluate_model(
    model: nn.Module,
    split: Split,
    height: int,
    width: int,
    device: str | torch.device = "auto",
    metric: str | None = None,
    flip: bool = False,
    rerank: bool = False,
    batch_size: int = 128,
    workers: int = 2,
    progress: bool | Callable[[int, int], None] = True,
    keep_layer: str | None = None,
    keep_bytes: int = 256 << 20,
) -> RankingResult:
    """Market-1501 protocol on ``split.query`` × ``split.gallery``: **the** ranking of a model.

    Evaluation, the apps, the figures and ``workbench explain`` all rank through this function,
    so every distance the workbench shows is the one that ranked the pair.

    Args:
        metric: the distance; default the model's ``ranking_metric`` (cosine for BoT-family
            models — BoT with ``TEST.FEAT_NORM``, FastReID, IANet rank so —, Euclidean for the
            AAM interpreter).
        rerank: the k-reciprocal distance (k1=20, k2=6, λ=0.3) replaces it.
        progress: a tqdm bar (True), none (False), or ``callback(done, total)`` called after
            every batch of the query and gallery passes together (the apps' progress bar).
        keep_layer: a ``layer_info`` name whose maps are kept from the same forward passes, in
            fp16 on the CPU, when all of them fit in ``keep_bytes``: ``result.extra["maps"]``
            is then ``(query_maps, gallery_maps)`` and ``extra["maps_layer"]`` the layer (rank
            lists explain from them without the network, :func:`~workbench.explain.ranklist.
            explain_ranklist`).
    """
    from workbench.data.split import warn_split
    from workbench.evaluate.distance import compute_distance, ranking_metric
    from workbench.evaluate.features import extract_features
    from workbench.models.inputs import check_input_size

    check_input_size(model, (height, width), where="evaluate_model(height, width)")
    warn_split(split)
    metric = metric or ranking_metric(model)
    loaders = {p: make_loader(getattr(split, p), height, width, batch_size, workers) for p in PARTS}
    if callable(progress):
        total = sum(len(v) for v in loaders.values())
        offset = {"query": 0, "gallery": len(loaders["query"])}
        loaders = {
            p: _Progress(loader, lambda i, o=offset[p]: progress(o + i, total))
            for p, loader in loaders.items()
        }
    keep = (
        keep_layer is not None
        and _maps_bytes(model, keep_layer, (height, width), split) <= keep_bytes
    )
    feats, kept = {}, {}
    for part, loader in loaders.items():
        store: list[torch.Tensor] = []
        handle = None
        if keep:
            from workbench.models.base import get_layer

            handle = get_layer(model, keep_layer).register_forward_hook(
                lambda _m, _i, out, store=store: store.append(out.to("cpu", torch.float16))
            )
        try:
            feats[part] = extract_features(
                model, loader, device=device, flip=flip, progress=progress is True
            )
        finally:
            if handle is not None:
                handle.remove()
        kept[part] = torch.cat(store) if store else None
    qf, gf = feats["query"].feats, feats["gallery"].feats
    distmat = compute_distance(qf, gf, metric=metric).cpu().numpy()
    extra: dict[str, Any] = {"rerank": False, "metric": metric, "qf": qf, "gf": gf}
    if keep and not flip:  # flipped features are averages: no single map explains them
        extra["maps"], extra["maps_layer"] = (kept["query"], kept["gallery"]), keep_layer
    result = _rank(distmat, split.query, split.gallery, extra)
    return rerank_result(result) if rerank else result


PARTS = ("query", "gallery")


class _Progress:
    """A sized loader that calls ``update(done)`` after every batch."""

    def __init__(self, loader: Any, update: Callable[[int], None]) -> None:
        self.loader, self.update = loader, update

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Any:
        self.update(0)
        for i, batch in enumerate(self.loader, 1):
            yield batch
            self.update(i)


def _maps_bytes(model: nn.Module, layer: str, size: tuple[int, int], split: Split) -> int:
    """fp16 bytes of ``layer``'s maps for every query and gallery image of ``split``."""
    from workbench.models.base import get_layer_info

    row = get_layer_info(model, layer)
    if row.reduction is None:
        return 1 << 62  # a vector: nothing to keep for maps
    h, w = -(-size[0] // row.reduction), -(-size[1] // row.reduction)
    return 2 * row.channels * h * w * (len(split.query) + len(split.gallery))


def rerank_result(
    result: RankingResult, k1: int = 20, k2: int = 6, lambda_value: float = 0.3
) -> RankingResult:
    """The same evaluation with k-reciprocal re-ranking (Zhong et al. 2017), reusing features."""
    from workbench.evaluate.distance import compute_distance
    from workbench.evaluate.rerank import re_ranking

    qf, gf, metric = result.extra["qf"], result.extra["gf"], result.extra["metric"]
    q_q = compute_distance(qf, qf, metric=metric).cpu().numpy()
    g_g = compute_distance(gf, gf, metric=metric).cpu().numpy()
    distmat = re_ranking(result.distmat, q_q, g_g, k1=k1, k2=k2, lambda_value=lambda_value)
    return _rank(distmat, result.query, result.gallery, {**result.extra, "rerank": True})


def _rank(distmat: np.ndarray, q, g, extra: dict[str, Any]) -> RankingResult:
    from workbench.evaluate.ranking import evaluate_ranking

    metrics = evaluate_ranking(
        distmat, q.pid.to_numpy(), g.pid.to_numpy(), q.camid.to_numpy(), g.camid.to_numpy()
    )
    return RankingResult(metrics, distmat, q, g, extra)


def camera_gap(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
) -> dict[str, float]:
    """Rank-1 (%) when the true matches are only same-camera vs only cross-camera images.

    Negatives (other identities, distractors) come from every camera in both cases; junk
    (pid −1) is ignored. A query counts only if it has a match of the kind measured. The gap
    ``same - cross`` says how much harder the camera change makes matching.
    """
    valid_g = g_pids != -1
    d = np.where(valid_g[None, :], distmat, np.inf)
    same_pid = q_pids[:, None] == g_pids[None, :]
    same_cam = q_camids[:, None] == g_camids[None, :]
    out = {}
    for kind, pos in (("same_camera", same_pid & same_cam), ("cross_camera", same_pid & ~same_cam)):
        pos = pos & valid_g[None, :]
        keep = ~same_pid | pos  # drop the other kind of positives
        has = pos.any(1)
        best = np.argmin(np.where(keep, d, np.inf), axis=1)
        hit = pos[np.arange(len(best)), best]
        out[f"rank1_{kind}"] = 100.0 * float(hit[has].mean()) if has.any() else float("nan")
        out[f"queries_{kind}"] = int(has.sum())
    out["gap"] = out["rank1_same_camera"] - out["rank1_cross_camera"]
    return out
