"""DAAF's training branches run at inference: the predicted person mask and keypoint heat maps.

The holistic attention branch decodes a person mask from layer1 features; the partial attention
branch decodes each channel group of layer4 into its keypoints' heat maps (Chen et al. 2020,
Fig. 7–8). Both are dropped from the inference model, but ``model.branch_outputs`` still runs
them. Returns (B, 1 + K, H', W'): the mask logit first, then the K keypoint maps in COCO order,
at the decoder's resolution (16× the layer4 map). No target: the branches do not depend on a
partner image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from workbench.data.annotations import COCO_KEYPOINTS
from workbench.explain.base import Explainer, ExplainError, MapResult, register_explainer
from workbench.models.base import Capability, capabilities_of

__all__ = ["DAAFBranches"]


@register_explainer("daaf_branches")
class DAAFBranches(Explainer):
    """Predicted person mask + keypoint heat maps of a DAAF model."""

    layer_kinds = None
    needs_target = False

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        """Models that declare ``Capability.BRANCH_OUTPUTS`` (DAAF with a branch)."""
        return Capability.BRANCH_OUTPUTS in capabilities_of(model)

    @classmethod
    def unsupported_reason(cls, model: nn.Module) -> str:
        """Names the DAAF branches the method needs."""
        return f"daaf_branches needs a DAAF model; {type(model).__name__} has no branches"

    def compute(self, images: Tensor, target: Callable[..., Tensor] | None) -> MapResult:
        """(B, 1 + K, H', W'): the mask logit (with HAB), then K keypoint maps in COCO order."""
        with torch.no_grad():
            out = self.model.branch_outputs(images)
        maps = []
        if "mask" in out:
            maps.append(out["mask"])
        if "keypoints" in out:
            kp = out["keypoints"]
            order = torch.as_tensor(self.model.keypoint_order, device=kp.device)
            coco = torch.zeros(kp.shape[0], len(COCO_KEYPOINTS), *kp.shape[2:], device=kp.device)
            coco[:, order] = kp  # back to COCO order
            maps.append(coco)
        if not maps:
            raise ExplainError("this DAAF model was built without either branch")
        return MapResult(torch.cat(maps, 1), None, self._names(mask="mask" in out))

    def map_names(self) -> tuple[str, ...]:
        """``mask`` (with HAB), then the 17 COCO keypoints (with PAB)."""
        return self._names(mask=self.model.hab is not None)

    def _names(self, mask: bool) -> tuple[str, ...]:
        keypoints = COCO_KEYPOINTS if self.model.keypoint_order else ()
        return (("mask",) if mask else ()) + keypoints
