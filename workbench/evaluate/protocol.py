"""Evaluate a model on a split's query/gallery: features → distances → (re-ranking) → metrics.

One function used by the trainer, ``workbench eval``, the demo and the notebooks, so every number
the workbench prints is computed the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
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
    table, height: int, width: int, batch_size: int = 128, workers: int = 2
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
    metric: str = "cosine",
    flip: bool = False,
    rerank: bool = False,
    batch_size: int = 128,
    workers: int = 2,
    progress: bool = True,
) -> RankingResult:
    """Market-1501 protocol on ``split.query`` × ``split.gallery``.

    Distances are cosine on the eval-mode embedding by default (BoT: L2-normalised post-BNNeck
    feature, which ranks identically to squared Euclidean on normalised features).
    With ``rerank`` the k-reciprocal distance (k1=20, k2=6, λ=0.3) replaces it.
    """
    from workbench.evaluate.distance import compute_distance
    from workbench.evaluate.features import extract_features

    model.eval()
    feats = {}
    for part in ("query", "gallery"):
        loader = make_loader(getattr(split, part), height, width, batch_size, workers)
        feats[part] = extract_features(model, loader, device=device, flip=flip, progress=progress)
    qf, gf = feats["query"].feats, feats["gallery"].feats
    distmat = compute_distance(qf, gf, metric=metric).cpu().numpy()
    extra = {"rerank": False, "metric": metric, "qf": qf, "gf": gf}
    result = _rank(distmat, split.query, split.gallery, extra)
    return rerank_result(result) if rerank else result


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
