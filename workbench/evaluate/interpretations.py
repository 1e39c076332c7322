"""The AAM interpreter over a whole split table: one pass, everything the metrics need.

:func:`interpret_table` runs the interpreter over every image of a split table (target
embeddings, attribute distance components, AAMs) and, on synthetic data, reads the part masks and
area-averages them to the AAM grid as region masks. The X-mAP / ADRE / localisation scores
(:mod:`workbench.evaluate.explain_metrics`), the AAM study (:mod:`workbench.train.aam`) and the
figure recipes read its :class:`Interpretations`.

* :func:`average_aams`: average positive / negative AAM per attribute over a split
  (supplementary Fig. 2; code ``visiual_average_att``: each map binarised at its top-⅓ value,
  summed over the images with / without the attribute, min-max normalised).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
import torch
from torch import Tensor

from workbench.data.annotations import attribute_region_masks
from workbench.device import resolve_device
from workbench.models.base import eval_mode
from workbench.models.inputs import check_images
from workbench.models.interpreter import Interpreter

__all__ = ["Interpretations", "average_aams", "interpret_table"]


@dataclass
class Interpretations:
    """One interpreter pass over N images of a split table (row-aligned)."""

    target: Tensor  # (N, D) target embeddings
    components: Tensor  # (N, M, D) attribute embeddings
    aams: Tensor  # (N, M, h, w)
    pids: np.ndarray  # (N,)
    camids: np.ndarray  # (N,)
    region_masks: Tensor | None = None  # (N, R, h, w) area shares at the AAM grid
    region_names: list[str] | None = None


def _read_parts(paths: Sequence[str], height: int, width: int) -> Tensor:
    from workbench.data.dataset import read_image

    out = []
    for p in paths:
        parts = read_image(p, cv2.IMREAD_UNCHANGED)
        if parts.shape[:2] != (height, width):
            parts = cv2.resize(parts, (width, height), interpolation=cv2.INTER_NEAREST)
        out.append(torch.from_numpy(parts.astype(np.int64)))
    return torch.stack(out)  # (B, H, W)


def interpret_table(
    model: Interpreter,
    table: pd.DataFrame,
    height: int,
    width: int,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    masks: bool = True,
    progress: bool = False,
) -> Interpretations:
    """Run the interpreter over every image of ``table`` (eval mode, no gradients).

    With ``masks`` and a ``mask_path`` column (synthetic data) the part maps are read and
    area-averaged to the AAM grid as region masks (``annotations.attribute_region_masks``).
    """
    from tqdm.auto import tqdm

    from workbench.evaluate.protocol import make_loader

    use_masks = masks and "mask_path" in table.columns
    mask_paths = list(table["mask_path"]) if use_masks else []
    device = resolve_device(device)
    model.to(device)
    z, comps, aams, regions = [], [], [], []
    names: list[str] | None = None
    start = 0
    with eval_mode(model), torch.inference_mode():  # the model's own mode is restored
        for batch in tqdm(make_loader(table, height, width, batch_size), disable=not progress):
            images = check_images(model, batch["image"].to(device), where="table images")
            out = model.interpret(images)
            z.append(out.target_embedding.cpu())
            comps.append(out.components.cpu())
            aams.append(out.aams.cpu())
            if use_masks:
                b = images.shape[0]
                parts = _read_parts(mask_paths[start : start + b], height, width)
                r, names = attribute_region_masks(
                    parts, model.attribute_names, tuple(out.aams.shape[-2:])
                )
                regions.append(r)
            start += images.shape[0]
    return Interpretations(
        target=torch.cat(z),
        components=torch.cat(comps),
        aams=torch.cat(aams),
        pids=table["pid"].to_numpy(np.int64),
        camids=table["camid"].to_numpy(np.int64),
        region_masks=torch.cat(regions) if regions else None,
        region_names=names,
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
    labels = torch.as_tensor(np.array(labels))  # a copy: read-only inputs (pandas) are fine
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
