"""Attribute explanations of a distance with the AAM interpreter (Chen et al., ICCV 2021).

* :func:`explain_pair`: the target's distance between two images, the distilled distance,
  every attribute's contribution c^k = d^k / Σ_j d^j, the top-k attributes (with the
  ground-truth values where known) and their AAMs on both images (paper Fig. 4).

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

from workbench.models.base import eval_mode
from workbench.models.inputs import check_images
from workbench.models.interpreter import Interpreter, contributions, pairwise_distances

__all__ = [
    "AttributeExplanation",
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
    images = check_images(model, torch.stack([image_x, image_y]), where="image_x, image_y")
    with eval_mode(model), torch.no_grad():
        out = model.interpret(images)
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


def upsample_aams(aams: Tensor, size: tuple[int, int]) -> Tensor:
    """(…, h, w) AAMs bilinearly resized to the image size (AMD's visualisation step)."""
    shape = aams.shape
    flat = aams.reshape(-1, 1, *shape[-2:])
    up = F.interpolate(flat, size=size, mode="bilinear", align_corners=False)
    return up.reshape(*shape[:-2], *size)
