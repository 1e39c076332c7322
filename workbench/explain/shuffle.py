"""DAAF's 1×1-conv shuffle (Chen et al. 2020, Sec. 4.3.4, Fig. 9–10), with a number for it.

The partial attention branch decodes channel group ``i`` of layer4 with a shared decoder and
predicts its keypoints with group ``i``'s 1×1 conv. The shuffle combines **every** group's
features ``i`` with **every** group's conv ``j`` at inference: cell ``(i, j) = conv_j(decode(x_i))``.
If the outputs are "mainly determined by the input feature maps" (the paper's finding), the
channels are decoupled by body part; if they follow the convs, the part knowledge sits in the
convs instead.

Each cell is reduced to one map, the maximum over its conv's output channels (where that group's
keypoints are predicted). The **feature-following score** of an image is

    F = mean_{i ≠ j} [ corr(M_ij, M_ii) − corr(M_ij, M_jj) ]

with ``corr`` the Pearson correlation over pixels: how much more an off-diagonal output looks like
the matched output of its *features* (same row) than like that of its *conv* (same column).
F ∈ [−2, 2]; F > 0: outputs follow the features (the paper's claim); F < 0: they follow the convs;
F ≈ 0: neither. ``Explanation.maps`` is (B, G·G, H', W') in row-major (features i, conv j) order;
``extras["score"]`` holds F per image and ``extras["grid"]`` the (G, G) layout.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from workbench.explain.base import Explainer, MapResult, register_explainer
from workbench.models.base import Capability, capabilities_of

__all__ = ["ConvShuffle", "feature_following_score"]


def _corr(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation of (B, N) rows."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


def feature_following_score(grid: Tensor) -> Tensor:
    """F (module docstring) of a (B, G, G, H, W) grid of cell maps → (B,)."""
    g = grid.shape[1]
    flat = grid.flatten(3)  # (B, G, G, HW)
    terms = [
        _corr(flat[:, i, j], flat[:, i, i]) - _corr(flat[:, i, j], flat[:, j, j])
        for i in range(g)
        for j in range(g)
        if i != j
    ]
    return torch.stack(terms, 1).mean(1)


@register_explainer("shuffle")
class ConvShuffle(Explainer):
    """Every feature group × every group's 1×1 conv of a DAAF partial attention branch."""

    layer_kinds = None
    needs_target = False

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        """Models that declare ``Capability.CONV_SHUFFLE`` (DAAF with its partial branch)."""
        return Capability.CONV_SHUFFLE in capabilities_of(model)

    @classmethod
    def unsupported_reason(cls, model: nn.Module) -> str:
        """Names the DAAF partial attention branch the method needs."""
        return f"shuffle needs a DAAF model with its partial attention branch; {type(model).__name__} has none"

    def compute(self, images: Tensor, target: Callable[..., Tensor] | None) -> MapResult:
        """(B, G·G, H', W') cell maps, F per image as scores, the grid layout in extras."""
        with torch.no_grad():
            layer4 = self.model.branch_outputs(images)["layer4"]
            cells = self.model.conv_shuffle(layer4)  # [i][j]: (B, K_j, H', W')
            g = len(cells)
            grid = torch.stack(
                [torch.stack([cells[i][j].amax(1) for j in range(g)], 1) for i in range(g)], 1
            )  # (B, G, G, H', W')
        score = feature_following_score(grid)
        names = tuple(f"features {i + 1} × conv {j + 1}" for i in range(g) for j in range(g))
        return MapResult(grid.flatten(1, 2), score, names, {"grid": (g, g), "score": score})

    def map_names(self) -> tuple[str, ...]:
        """``features i × conv j`` in row-major order, one per PAB channel group pair."""
        g = len(self.model.keypoint_groups)
        return tuple(f"features {i + 1} × conv {j + 1}" for i in range(g) for j in range(g))
