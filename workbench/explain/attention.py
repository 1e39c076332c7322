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
    """The layer's one-channel output as it is, (B, h, w)."""

    layer_kinds = ("attention",)
    needs_target = False

    @classmethod
    def candidate_layers(cls, model):
        """One-channel attention maps (RGA ``attention1..4``, SA ``sa1..``); the attended
        features (``att4``, ``ia3``) and relation maps have explainers of their own."""
        return [r for r in super().candidate_layers(model) if r.channels == 1]

    def compute(self, images, target):
        maps = self.activations(images)  # (B, 1, h, w)
        return maps[:, 0], None
