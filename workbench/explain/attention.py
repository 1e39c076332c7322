"""Attention maps read out of the models: the output of every ``attention``-kind layer.

RGA-SC's spatial attention per module (``attention1..4``, sigmoid maps in (0, 1); Zhang et al.
CVPR 2020, Fig. 2 of the supplementary), the parameter-free SA weights (Wang et al. 2019, softmax
over positions), or any attention module a model names in its ``layer_info``. No target: an
attention map does not depend on what is being explained, so a pair explanation shows each side's
own map (and the pair's distance).
"""

from __future__ import annotations

from workbench.explain.base import Explainer, register_explainer

__all__ = ["AttentionMap"]


@register_explainer("attention")
class AttentionMap(Explainer):
    """The layer's output as it is: (B, h, w) for one-channel maps, (B, k, h, w) otherwise."""

    layer_kinds = ("attention",)
    needs_target = False

    def compute(self, images, target):
        maps = self.activations(images)
        if maps.dim() == 4 and maps.shape[1] == 1:
            maps = maps[:, 0]
        return maps, None
