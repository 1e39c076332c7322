"""Attention maps read out of the models: the output of every ``attention``-kind layer.

RGA-SC's spatial attention per module (``attention1..4``, sigmoid maps in (0, 1); Zhang et al.
CVPR 2020, Fig. 2 of the supplementary), the parameter-free SA weights (Wang et al. 2019, softmax
over positions), or any attention module a model names in its ``layer_info``. No target: an
attention map does not depend on what is being explained, so a pair explanation shows each side's
own map (and the pair's distance).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from workbench.explain.base import Explainer, MapResult, register_explainer
from workbench.models.base import LayerInfo

__all__ = ["AttentionMap"]


@register_explainer("attention")
class AttentionMap(Explainer):
    """The layer's one-channel output as it is, (B, h, w)."""

    layer_kinds = ("attention",)
    needs_target = False

    @classmethod
    def candidate_layers(cls, model: nn.Module) -> list[LayerInfo]:
        """One-channel attention maps (RGA ``attention1..4``, SA ``sa1..``); the attended
        features (``att4``, ``ia3``) and relation maps have explainers of their own."""
        return [r for r in super().candidate_layers(model) if r.channels == 1]

    def compute(self, images: Tensor, target: Callable[..., Tensor] | None) -> MapResult:
        """The layer's (B, 1, h, w) output as (B, h, w); no scores."""
        maps = self.activations(images)  # (B, 1, h, w)
        return MapResult(maps[:, 0])
