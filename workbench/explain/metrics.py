"""Faithfulness of heat maps: against ground-truth masks, and against the model itself.

* :func:`energy_in_mask` — share of a map's positive energy inside a binary mask. Chance is the
  mask's area share (a map spread uniformly scores exactly that), so report both.
* :func:`pointing_game` — whether the map's maximum falls inside the mask (Zhang et al., ECCV
  2016, "Top-down neural attention by excitation backprop", without their 15-px tolerance).
* :func:`deletion_curve` / :func:`insertion_curve` — the pair distance while the query's pixels are
  removed (replaced by the baseline) or inserted in the map's order, most important first
  (Petsiuk et al., BMVC 2018, RISE, for classification scores; here the pair distance). A
  faithful similarity map raises the distance faster under deletion than a random order does.

Everything is batched torch on the maps' device; nothing converts to numpy.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from workbench.explain.base import ExplainError

__all__ = [
    "area_share",
    "curve_area",
    "deletion_curve",
    "energy_in_mask",
    "insertion_curve",
    "pointing_game",
]


def _check(maps: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    if maps.dim() != 3 or masks.shape != maps.shape:
        raise ExplainError(
            f"maps (B, h, w) and masks must have the same shape, got {tuple(maps.shape)} and "
            f"{tuple(masks.shape)}; upsample the maps first (Explanation.resized(mask size))"
        )
    _check_finite(maps)
    values = torch.unique(masks)
    if masks.dtype != torch.bool and len(values) > 2:
        raise ExplainError(
            f"masks must be binary (bool, or two values), got {len(values)} values "
            f"{values[:5].tolist()}…; a part-label map? compare it with the part's label first"
        )
    return maps.float(), masks.to(maps.device).bool()


def _check_finite(maps: Tensor) -> None:
    bad = ~torch.isfinite(maps)
    if bool(bad.any()):
        raise ExplainError(
            f"maps hold {int(bad.sum())} NaN/inf values (maps of NaN inputs?); they cannot be "
            f"scored"
        )


def energy_in_mask(maps: Tensor, masks: Tensor) -> Tensor:
    """(B,) share of ``relu(maps)`` inside ``masks`` (NaN for a map with no positive value)."""
    maps, masks = _check(maps, masks)
    pos = maps.clamp_min(0).flatten(1)
    total = pos.sum(1)
    inside = (pos * masks.flatten(1)).sum(1)
    return torch.where(total > 0, inside / total.clamp_min(1e-30), torch.nan)


def area_share(masks: Tensor) -> Tensor:
    """(B,) fraction of pixels inside each mask: the chance level of :func:`energy_in_mask`."""
    return masks.flatten(1).float().mean(1)


def pointing_game(maps: Tensor, masks: Tensor) -> Tensor:
    """(B,) bool: the map's maximum (first one in row-major order) lies inside the mask.

    A constant map (all zero, say) points nowhere: it is a miss, whatever its first pixel.
    """
    maps, masks = _check(maps, masks)
    flat = maps.flatten(1)
    top = flat.argmax(1)
    hit = masks.flatten(1).gather(1, top[:, None])[:, 0]
    flat_map = flat.amax(1) == flat.amin(1)
    return hit & ~flat_map


def _order(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Pixel indices (B, H·W) sorted by the upsampled map, largest first (ties: first index)."""
    up = F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)
    return torch.sort(up.flatten(1), dim=1, descending=True, stable=True).indices


def _curve(
    distance: Callable[[Tensor], Tensor],
    images: Tensor,
    maps: Tensor,
    steps: int,
    baseline: Tensor | float,
    insert: bool,
) -> Tensor:
    b, _, h, w = images.shape
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ExplainError(f"steps must be an int >= 1 (points of the curve - 1), got {steps!r}")
    if maps.dim() != 3 or maps.shape[0] != b:
        raise ExplainError(
            f"maps must be (B, h, w) with B = {b} images, got {tuple(maps.shape)}; pick one map "
            f"per image (a (B, k, h, w) explanation: maps[:, i])"
        )
    _check_finite(maps)
    order = _order(maps, (h, w))  # (B, HW)
    base = torch.as_tensor(baseline, dtype=images.dtype, device=images.device)
    base = base.expand_as(images) if base.dim() != 4 else base
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w, device=order.device).expand(b, -1))
    out = []
    for i in range(steps + 1):
        k = round(i * h * w / steps)
        chosen = (rank < k).view(b, 1, h, w)  # the k most important pixels
        shown = chosen if insert else ~chosen
        with torch.no_grad():
            out.append(distance(torch.where(shown, images, base)))
    return torch.stack(out, 1)  # (B, steps + 1)


def deletion_curve(
    distance: Callable[[Tensor], Tensor],
    images: Tensor,
    maps: Tensor,
    steps: int = 20,
    baseline: Tensor | float = 0.0,
) -> Tensor:
    """(B, steps + 1) distances as the top 0, 1/steps, …, 100 % pixels of ``maps`` are deleted.

    Args:
        distance: images (B, 3, H, W) → (B,) pair distance to each image's fixed partner.
        images: the explained side of each pair.
        maps: (B, h, w) their maps (any resolution; upsampled bilinearly for the order).
        baseline: what deleted pixels become (0 = the mean colour of normalised inputs).
    """
    return _curve(distance, images, maps, steps, baseline, insert=False)


def insertion_curve(
    distance: Callable[[Tensor], Tensor],
    images: Tensor,
    maps: Tensor,
    steps: int = 20,
    baseline: Tensor | float = 0.0,
) -> Tensor:
    """(B, steps + 1) distances as the top pixels of ``maps`` are put back onto the baseline."""
    return _curve(distance, images, maps, steps, baseline, insert=True)


def curve_area(curve: Tensor) -> Tensor:
    """(B,) trapezoidal area under each curve over [0, 1] (x = fraction of pixels)."""
    if curve.dim() != 2 or curve.shape[1] < 2:
        raise ExplainError(
            f"curves must be (B, steps + 1) with steps >= 1, got {tuple(curve.shape)}"
        )
    return torch.trapezoid(curve, dx=1.0 / (curve.shape[1] - 1), dim=1)
