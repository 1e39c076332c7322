"""DAAF's training branches run at inference: the predicted person mask and keypoint heat maps.

The holistic attention branch decodes a person mask from layer1 features; the partial attention
branch decodes each channel group of layer4 into its keypoints' heat maps (Chen et al. 2020,
Fig. 7–8). Both are dropped from the inference model, but ``model.branch_outputs`` still runs
them. Returns (B, 1 + K, H', W'): the mask logit first, then the K keypoint maps in COCO order,
at the decoder's resolution (16× the layer4 map). No target: the branches do not depend on a
partner image.
"""

from __future__ import annotations

import torch

from workbench.data.annotations import COCO_KEYPOINTS
from workbench.explain.base import Explainer, ExplainError, register_explainer

__all__ = ["DAAFBranches"]


@register_explainer("daaf_branches")
class DAAFBranches(Explainer):
    """Predicted person mask + keypoint heat maps of a DAAF model."""

    layer_kinds = None
    needs_target = False

    @classmethod
    def supports(cls, model):
        return callable(getattr(model, "branch_outputs", None))

    @classmethod
    def unsupported_reason(cls, model):
        return f"daaf_branches needs a DAAF model; {type(model).__name__} has no branches"

    def compute(self, images, target):
        with torch.no_grad():
            out = self.model.branch_outputs(images)
        maps = []
        if "mask" in out:
            maps.append(out["mask"])
        if "keypoints" in out:
            kp = out["keypoints"]
            order = torch.as_tensor(self.model.pab.keypoint_order, device=kp.device)
            coco = torch.zeros(kp.shape[0], len(COCO_KEYPOINTS), *kp.shape[2:], device=kp.device)
            coco[:, order] = kp  # back to COCO order
            maps.append(coco)
        if not maps:
            raise ExplainError("this DAAF model was built without either branch")
        self._names = (("mask",) if "mask" in out else ()) + (
            COCO_KEYPOINTS if "keypoints" in out else ()
        )
        return torch.cat(maps, 1), None

    def map_names(self):
        return getattr(self, "_names", None)
