"""Class activation maps per stage through the SA network's deep-supervision classifiers.

CAM (Zhou et al., CVPR 2016, eq. 2): for a classifier on GAP features, ``M_c(i, j) = Σ_k w_ck
f_k(i, j)``, and its spatial mean plus the bias is the class logit. The parameter-free SA network
(Wang et al. 2019, Fig. 1/5) visualises exactly this per deep-supervision stage: its branches are
``SA → GAP → 1×1 conv → linear``, one linear map after GAP, so the CAM of stage l is
``W_l · (a ⊙ F_l)`` with ``W_l`` = ``model.cam_weights(l)`` (modules.md §3.5), computed once, by
``model.stage_cam`` (``Capability.CAM_WEIGHTS``).

``with_sa=False`` applies the same weights to the stage's map *before* the SA re-weighting, the
paper's "without SA" panels (Fig. 1). The class is the branch's own top prediction unless
``classes`` names one (a training identity label). Maps are raw CAM values (signed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from workbench.explain.base import Explainer, ExplainError, MapResult, register_explainer
from workbench.models.base import Capability, LayerInfo, capabilities_of

__all__ = ["StageCAM", "StageCAMConfig"]


@dataclass
class StageCAMConfig:
    """Attributes:
    with_sa: the CAM of the SA-weighted map ``a ⊙ F`` (True) or of ``F`` itself (False).
    classes: training label to explain (None: the branch's top class for each image).
    """

    with_sa: bool = True
    classes: int | None = None


@register_explainer("cam")
class StageCAM(Explainer):
    """CAM of a deep-supervision stage (``layer1``..``layer3`` of ``sa``)."""

    config_class = StageCAMConfig
    layer_kinds = ("stage",)
    needs_target = False

    @classmethod
    def candidate_layers(cls, model: nn.Module) -> list[LayerInfo]:
        """The stages the model declares CAM weights for (``Capability.CAM_WEIGHTS``)."""
        if Capability.CAM_WEIGHTS not in capabilities_of(model):
            return []
        return [r for r in super().candidate_layers(model) if r.name in model.cam_layers]

    @classmethod
    def unsupported_reason(cls, model: nn.Module) -> str:
        """Points to Grad-CAM for models without deep-supervision classifiers."""
        return (
            f"cam needs a model with deep-supervision classifiers (cam_weights), such as 'sa'; "
            f"{type(model).__name__} has none — use gradcam"
        )

    def compute(self, images: Tensor, target: Callable[..., Tensor] | None) -> MapResult:
        """(B, h, w) CAM of the stage's class (top or ``classes``); scores: that logit."""
        model, stage = self.model, self.layer
        feats = self.activations(images)  # (B, C, h, w) = F_l
        with torch.no_grad():
            sa_map = model.cam_input(stage, feats)  # a ⊙ F_l (as the branch sees it)
            weights = model.cam_weights(stage)  # (num_classes, C)
            logits = sa_map.mean((2, 3)) @ weights.T + model.cam_bias(stage)  # (B, classes)
            if self.config.classes is None:
                classes = logits.argmax(1)
            else:
                if not 0 <= self.config.classes < weights.shape[0]:
                    raise ExplainError(
                        f"classes must be a training label in 0..{weights.shape[0] - 1}, "
                        f"got {self.config.classes}"
                    )
                classes = torch.full_like(logits[:, 0], self.config.classes, dtype=torch.long)
            maps = model.stage_cam(stage, feats, classes, with_sa=self.config.with_sa)
        return MapResult(maps, logits.gather(1, classes[:, None])[:, 0])
