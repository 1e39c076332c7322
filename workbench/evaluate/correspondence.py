"""Correspondence accuracy on the synthetic ground truth: does a point match the same body part?

For same-identity cross-camera pairs, a point is placed on each body part of the query (the
centroid of its part mask: head, upper body, lower body, shoes); its correspondence map on the
gallery image is its row of the exact pair decomposition
(:meth:`~workbench.explain.decomposition.PairDecomposition.correspondence`). The point is a
**hit** when the map's argmax cell lands on the same part of the gallery image (the cell's centre
pixel carries that part label). The **chance** level is what a uniform map would get: the share
of the gallery's cells that lie on the part (the argmax of a flat map is any cell).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = ["BODY_PARTS", "correspondence_accuracy"]

#: the parts a point is placed on (``data.annotations.PART_LABELS`` values)
BODY_PARTS = {"head": 1, "upper body": 2, "lower body": 3, "shoes": 4}


def _pairs(split: Any, count: int, seed: int) -> list[tuple[int, int]]:
    q, g = split.query, split.gallery
    q_pid, q_cam = q.pid.to_numpy(), q.camid.to_numpy()
    g_pid, g_cam = g.pid.to_numpy(), g.camid.to_numpy()
    match = (g_pid[None] == q_pid[:, None]) & (g_cam[None] != q_cam[:, None])
    rows = np.flatnonzero(match.any(1))
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(rows, size=min(count, len(rows)), replace=False))
    return [(int(r), int(rng.choice(np.flatnonzero(match[r])))) for r in rows]


def correspondence_accuracy(
    model: nn.Module,
    split: Any,
    pairs: int = 48,
    seed: int = 0,
    input_size: tuple[int, int] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Per body part: points placed, hits of the correspondence argmax, and chance.

    Args:
        model: a model that declares its pooling (the decomposition is exact for it).
        split: a split whose images have part masks (the synthetic data).
        pairs: same-identity cross-camera (query, gallery) pairs drawn with ``seed``.

    Returns:
        One row per part: ``part, points, accuracy`` (share of hits) and ``chance``.
    """
    from workbench.data.dataset import ReIDDataset
    from workbench.data.transforms import build_transforms
    from workbench.explain.decomposition import decompose_pair

    h, w = input_size or tuple(model.config.input_size)
    transform = build_transforms(h, w, train=False)
    queries, gallery = (ReIDDataset(t, transform) for t in (split.query, split.gallery))
    device = next(model.parameters()).device
    hits = {p: [] for p in BODY_PARTS}
    chance = {p: [] for p in BODY_PARTS}
    chosen = _pairs(split, pairs, seed)
    for qi, gi in tqdm(chosen, desc="correspondence", disable=not progress):
        qs, gs = queries[qi], gallery[gi]
        if "parts" not in qs or "parts" not in gs:
            raise ValueError(
                "correspondence accuracy needs part masks (the synthetic data has them); "
                f"{qs['path']} has none"
            )
        q_parts, g_parts = qs["parts"].numpy(), gs["parts"].numpy()
        points, names = [], []
        for name, label in BODY_PARTS.items():
            ys, xs = np.nonzero(q_parts == label)
            if len(ys) and (g_parts == label).any():
                points.append(((ys.mean() + 0.5) / h, (xs.mean() + 0.5) / w))
                names.append(name)
        if not points:
            continue
        with torch.no_grad():
            dec = decompose_pair(model, qs["image"][None].to(device), gs["image"][None].to(device))
        maps = dec.correspondence(points, side="query")[0].cpu()  # (P, h_g, w_g)
        gh, gw = maps.shape[1:]
        centres = g_parts[((np.arange(gh) + 0.5) * h / gh).astype(int)][
            :, ((np.arange(gw) + 0.5) * w / gw).astype(int)
        ]  # (h_g, w_g) part label at each cell's centre
        for p, name in enumerate(names):
            best = int(maps[p].flatten().argmax())
            label = BODY_PARTS[name]
            hits[name].append(centres.flatten()[best] == label)
            chance[name].append(float((centres == label).mean()))
    rows = [
        {
            "part": name,
            "points": len(hits[name]),
            "accuracy": float(np.mean(hits[name])) if hits[name] else float("nan"),
            "chance": float(np.mean(chance[name])) if chance[name] else float("nan"),
        }
        for name in BODY_PARTS
    ]
    return pd.DataFrame(rows)
