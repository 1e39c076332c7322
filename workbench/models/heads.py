"""Pooling and the BNNeck head shared by BoT, RGA, DAAF and other ResNet-based ReID models.

BNNeck: Luo et al. 2019, "Bag of Tricks and A Strong Baseline for Deep Person
Re-identification" (CVPRW, arXiv 1903.07071), Sec. 3.5 / Fig. 5, as implemented in
``michuanhaohao/reid-strong-baseline`` ``modeling/baseline.py``: global feature → BatchNorm1d with
its bias frozen at 0 ("no shift") → bias-free linear ID classifier initialised N(0, 0.001). The
triplet loss uses the feature *before* the BN, the ID loss the logits of the feature *after* it.
RGA-SC's head is the same pattern (modules.md §1.4).
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from workbench.models.base import TrainOutput

__all__ = ["BNNeck", "GlobalAvgPool"]


class GlobalAvgPool(nn.Module):
    """Global average pooling that flattens: (B, C, h, w) → (B, C).

    A module (not ``x.mean`` inline) so that a forward hook on it sees the pooled feature.
    """

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3))


class BNNeck(nn.Module):
    """BNNeck head: BatchNorm1d (bias frozen) + bias-free linear classifier.

    Args:
        in_dim: D of the global feature.
        num_classes: training identities.
        neck: False gives BoT's ``MODEL.NECK='no'``: no BN, a linear classifier with bias on the
            global feature. (BoT leaves that classifier at PyTorch's default init; we use
            N(0, 0.001) for both variants.)
        neck_feat: test-time embedding: ``"after"`` the BN (BoT ``TEST.NECK_FEAT='after'``, the
            default) or ``"before"`` it.
        normalize: L2-normalise the test-time embedding (BoT's ``TEST.FEAT_NORM='yes'`` does this
            in the evaluator; here it is optional so Euclidean and cosine rankings agree).

    Forward: in train mode a :class:`TrainOutput` (``features`` pre-BN, ``embedding`` post-BN,
    ``logits``); in eval mode the (B, D) embedding, as :meth:`embed`.
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        *,
        neck: bool = True,
        neck_feat: Literal["after", "before"] = "after",
        normalize: bool = False,
    ) -> None:
        super().__init__()
        if neck_feat not in ("after", "before"):
            raise ValueError(f"neck_feat must be 'after' or 'before', got {neck_feat!r}")
        self.neck_feat = neck_feat
        self.normalize = normalize
        self.bn: nn.Module
        if neck:
            bn = nn.BatchNorm1d(in_dim)
            nn.init.ones_(bn.weight)
            nn.init.zeros_(bn.bias)
            bn.bias.requires_grad_(False)  # "no shift" (BoT)
            self.bn = bn
        else:
            self.bn = nn.Identity()
        self.classifier = nn.Linear(in_dim, num_classes, bias=not neck)
        nn.init.normal_(self.classifier.weight, std=0.001)
        if self.classifier.bias is not None:
            nn.init.zeros_(self.classifier.bias)

    def embed(self, global_feat: Tensor) -> Tensor:
        """Test-time embedding (B, D) of the (B, D) global feature, BN in its current mode."""
        out = self.bn(global_feat) if self.neck_feat == "after" else global_feat
        return F.normalize(out, dim=1) if self.normalize else out

    def classify(self, embedding: Tensor) -> Tensor:
        """ID logits (B, num_classes) of test-time embeddings (eval mode)."""
        if self.normalize:
            raise ValueError("classify: an L2-normalised embedding cannot be mapped back to logits")
        if self.neck_feat == "before":
            embedding = self.bn(embedding)
        return self.classifier(embedding)

    def forward(self, global_feat: Tensor) -> Tensor | TrainOutput:
        if not self.training:
            return self.embed(global_feat)
        feat = self.bn(global_feat)  # (B, D), batch statistics
        return {"logits": self.classifier(feat), "features": global_feat, "embedding": feat}
