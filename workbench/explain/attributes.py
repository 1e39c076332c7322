"""Attribute explanations of a distance with the AAM interpreter (Chen et al., ICCV 2021).

* :func:`explain_pair`: the target's distance between two images, the distilled distance,
  every attribute's contribution c^k = d^k / Σ_j d^j, the top-k attributes (with the
  ground-truth values where known) and their AAMs on both images (paper Fig. 4).
* :func:`average_aams`: average positive / negative AAM per attribute over a split
  (supplementary Fig. 2; code ``visiual_average_att``: each map binarised at its top-⅓ value,
  summed over the images with / without the attribute, min-max normalised).

Everything returns tensors and DataFrames; drawing lives in ``workbench.viz``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from workbench.models.interpreter import Interpreter, contributions, pairwise_distances

__all__ = [
    "AttributeExplanation",
    "average_aams",
    "explain_pair",
]


@dataclass
class AttributeExplanation:
    """Why the target puts two images at its distance, attribute by attribute.

    Attributes:
        distance: the target's distance d (its own embeddings, Euclidean).
        distilled: the interpreter's d̂ = mean_k d^k.
        table: one row per attribute, largest contribution first: ``attribute``,
            ``contribution`` (c^k, sums to 1), ``component`` (D_k = d^k / M, sums to d̂),
            ``distance`` (d^k) and, where known, ``value_x``, ``value_y``, ``exclusive``.
        top: the names of the top-k attributes.
        aams_x, aams_y: (k, h, w) AAMs of the top-k attributes on each image.
        images: (2, 3, H, W) the explained inputs.
    """

    distance: float
    distilled: float
    table: pd.DataFrame
    top: list[str]
    aams_x: Tensor
    aams_y: Tensor
    images: Tensor


def explain_pair(
    model: Interpreter,
    image_x: Tensor,
    image_y: Tensor,
    k: int = 3,
    attributes_x: Sequence[int] | np.ndarray | None = None,
    attributes_y: Sequence[int] | np.ndarray | None = None,
) -> AttributeExplanation:
    """Explain the target distance between two (3, H, W) normalised images.

    ``attributes_x`` / ``attributes_y``: ground-truth vectors in the interpreter's schema
    (e.g. a sample's ``attributes`` field), shown per attribute when given.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model.interpret(torch.stack([image_x, image_y]))
    finally:
        model.train(was_training)
    z, comps = out.target_embedding, out.components  # (2, D), (2, M, D)
    d = float(pairwise_distances(z[:1], z[1:])[0, 0])
    d_k = pairwise_distances(comps[:1], comps[1:])[0, 0]  # (M,)
    shares = contributions(d_k)
    m = len(model.attribute_names)
    table = pd.DataFrame(
        {
            "attribute": model.attribute_names,
            "contribution": shares.numpy(),
            "component": (d_k / m).numpy(),
            "distance": d_k.numpy(),
        }
    )
    if attributes_x is not None and attributes_y is not None:
        cols = model.config.attribute_indices
        ax = np.asarray(attributes_x)[cols]
        ay = np.asarray(attributes_y)[cols]
        table["value_x"], table["value_y"] = ax, ay
        table["exclusive"] = ax != ay
    table = table.sort_values("contribution", ascending=False, kind="stable")
    top_idx = table.index[:k].tolist()
    return AttributeExplanation(
        distance=d,
        distilled=float(d_k.mean()),
        table=table.reset_index(drop=True),
        top=[model.attribute_names[i] for i in top_idx],
        aams_x=out.aams[0, top_idx],
        aams_y=out.aams[1, top_idx],
        images=torch.stack([image_x, image_y]),
    )


def average_aams(aams: Tensor, labels: np.ndarray | Tensor, top_fraction: float = 1 / 3) -> Tensor:
    """Average positive and negative AAM per attribute (supplementary Fig. 2).

    Args:
        aams: (N, M, h, w) AAMs of N images.
        labels: (N, M) 0/1 ground truth of the M attributes (-1 = unknown, skipped).
        top_fraction: each map is binarised at its top-``top_fraction`` value (AMD: ⅓).

    Returns:
        (M, 2, h, w): ``[:, 0]`` over images with the attribute (positive), ``[:, 1]`` over
        those without; each summed binary map min-max normalised to [0, 1] (zeros when no
        image qualifies or the sum is constant).
    """
    n, m, h, w = aams.shape
    labels = torch.as_tensor(np.asarray(labels))
    if labels.shape != (n, m):
        raise ValueError(f"labels {tuple(labels.shape)} must be (N, M) = ({n}, {m})")
    flat = aams.reshape(n, m, h * w)
    k = max(1, round(top_fraction * h * w))
    threshold = flat.topk(k, dim=-1).values[..., -1:]  # (N, M, 1) the k-th largest value
    binary = (flat >= threshold).float()  # (N, M, h·w)
    out = torch.zeros(m, 2, h * w)
    for j, value in enumerate((1, 0)):
        sel = (labels == value).float()  # (N, M)
        out[:, j] = (binary * sel[..., None]).sum(0)
    lo = out.amin(-1, keepdim=True)
    hi = out.amax(-1, keepdim=True)
    out = torch.where(hi > lo, (out - lo) / (hi - lo).clamp(min=1e-12), torch.zeros_like(out))
    return out.reshape(m, 2, h, w)


def upsample_aams(aams: Tensor, size: tuple[int, int]) -> Tensor:
    """(…, h, w) AAMs bilinearly resized to the image size (AMD's visualisation step)."""
    shape = aams.shape
    flat = aams.reshape(-1, 1, *shape[-2:])
    up = F.interpolate(flat, size=size, mode="bilinear", align_corners=False)
    return up.reshape(*shape[:-2], *size)
