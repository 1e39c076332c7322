"""Pooling and the BNNeck head shared by BoT, RGA, DAAF and other ResNet-based ReID models.

BNNeck: Luo et al. 2019, "Bag of Tricks and A Strong Baseline for Deep Person
Re-identification" (CVPRW, arXiv 1903.07071), Sec. 3.5 / Fig. 5, as implemented in
``michuanhaohao/reid-strong-baseline`` ``modeling/baseline.py``: global feature → BatchNorm1d with
its bias frozen at 0 ("no shift") → bias-free linear ID classifier initialised N(0, 0.001). The
triplet loss uses the feature *before* the BN, the ID loss the logits of the feature *after* it.
RGA-SC's head is the same pattern (modules.md §1.4).

GeM: Radenović, Tolias, Chum, "Fine-tuning CNN Image Retrieval with No Human Annotation" (TPAMI
2018, arXiv 1711.02512), eq. 2: ``f_c = (mean_{h,w} max(x, ε)^p)^{1/p}``; FastReID's
``GeneralizedMeanPoolingP`` (learnable ``p``, initialised at 3, SBS configs) and
``GeneralizedMeanPooling`` (fixed ``p = 3``, AGW configs), ``ε = 1e-6``.

FCNeck: torchreid's ``resnet50_fc512`` (``torchreid/models/resnet.py`` ``_construct_fc_layer``):
Linear → BatchNorm1d → ReLU after the pooling, whose output is the embedding.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.models.base import Capability, LayerInfo, Pooling, ReIDModel, TrainOutput

__all__ = ["BNNeck", "FCNeck", "GeM", "GlobalAvgPool", "PooledBNNeckModel"]


class GlobalAvgPool(nn.Module):
    """Global average pooling that flattens: (B, C, h, w) → (B, C).

    A module (not ``x.mean`` inline) so that a forward hook on it sees the pooled feature.
    """

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) → (B, C) spatial mean."""
        return x.mean(dim=(2, 3))


class GeM(nn.Module):
    """Generalised-mean pooling that flattens: (B, C, h, w) → (B, C).

    Args:
        p: the exponent (3 in FastReID; 1 = average pooling, → ∞ = max pooling).
        learnable: ``p`` is a parameter (saved as ``p``, shape (1,), FastReID's
            ``heads.pool_layer.p``) or a fixed number that is not in the state dict.
        eps: inputs are clamped at ``eps`` before the power.
    """

    def __init__(self, p: float = 3.0, learnable: bool = True, eps: float = 1e-6) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"GeM needs p > 0, got {p!r}")
        self.eps = eps
        self.learnable = learnable
        self.p: nn.Parameter | float
        if learnable:
            self.p = nn.Parameter(torch.full((1,), float(p)))
        else:
            self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) → (B, C) generalised mean (mean of x^p)^(1/p), x clamped at eps."""
        p = self.p
        return x.clamp(min=self.eps).pow(p).mean(dim=(2, 3)).pow(1.0 / p)

    def extra_repr(self) -> str:
        return f"learnable={self.learnable}" + ("" if self.learnable else f", p={self.p}")


class FCNeck(nn.Sequential):
    """Linear → BatchNorm1d → ReLU, (B, D_in) → (B, D_out): torchreid's ``fc`` (names ``0``, ``1``).

    Initialised as torchreid does: weights N(0, 0.01), biases 0, BN weight 1.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__(nn.Linear(in_dim, out_dim), nn.BatchNorm1d(out_dim), nn.ReLU())
        nn.init.normal_(self[0].weight, std=0.01)
        nn.init.zeros_(self[0].bias)


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
        out = self.affine(global_feat)
        return F.normalize(out, dim=1) if self.normalize else out

    def affine(self, global_feat: Tensor) -> Tensor:
        """The embedding before any L2 normalisation: the BN (affine in eval mode) or nothing."""
        return self.bn(global_feat) if self.neck_feat == "after" else global_feat

    def classify(self, embedding: Tensor) -> Tensor:
        """ID logits (B, num_classes) of test-time embeddings (eval mode)."""
        if self.normalize:
            raise ValueError("classify: an L2-normalised embedding cannot be mapped back to logits")
        if self.neck_feat == "before":
            embedding = self.bn(embedding)
        return self.classifier(embedding)

    def forward(self, global_feat: Tensor) -> Tensor | TrainOutput:
        """Eval: the (B, D) embedding; train: ``logits``, ``features`` (pre-BN), ``embedding``."""
        if not self.training:
            return self.embed(global_feat)
        feat = self.bn(global_feat)  # (B, D), batch statistics
        return {"logits": self.classifier(feat), "features": global_feat, "embedding": feat}


class PooledBNNeckModel(ReIDModel):
    """A model whose last map becomes the embedding by pooling and a :class:`BNNeck` (BoT,
    RGA-SC, IANet), with an optional FC neck between them (BoT's ``fc_dim``).

    Subclasses build their blocks, call :meth:`_build_head` (or set ``pool``, ``fc`` and
    ``head`` themselves) and define ``_run(images, maps)``: the last map, with every named
    intermediate map put into ``maps`` when it is a dict. This class gives them ``forward``,
    ``feature_maps``, ``classify`` and ``pooling``.
    """

    pooled_layer: str = "layer4"  # the map ``_run`` returns (declared by ``pooling``)
    capabilities = frozenset({Capability.IDENTITY_LOGITS})

    def _build_head(self, dim: int, config: Any, **neck: Any) -> list[LayerInfo]:
        """Make ``pool`` and ``head`` on ``dim`` channels (no FC neck); the rows they add."""
        self.pool: nn.Module = GlobalAvgPool()
        self.fc: nn.Module | None = None
        self.head = BNNeck(
            dim,
            config.num_classes,
            neck_feat=config.neck_feat,
            normalize=config.normalize_embedding,
            **neck,
        )
        self.embedding_dim = dim
        self.feature_dim = dim
        return [
            LayerInfo("global", dim, None, "pool", "vector"),
            LayerInfo("embedding", dim, None, "head", "vector"),
        ]

    def _run(self, images: Tensor, maps: dict[str, Tensor] | None) -> Tensor:
        raise NotImplementedError  # pragma: no cover - abstract

    def _global(self, x: Tensor) -> Tensor:
        """(B, C, h, w) last map → (B, D) feature the head sees (pooled, then fc if any)."""
        g = self.pool(x)
        return g if self.fc is None else self.fc(g)

    def forward(self, images: Tensor) -> Tensor | TrainOutput:
        """The BNNeck of the pooled ``_run`` map: eval embedding or train dict."""
        return self.head(self._global(self._run(images, None)))

    def pooling(self) -> Pooling | None:
        """The embedding is the BNNeck of GAP(``pooled_layer``), optionally L2-normalised: an
        affine map of pooled positions. None with GeM or an FC + ReLU neck (not affine)."""
        if not isinstance(self.pool, GlobalAvgPool) or self.fc is not None:
            return None
        return Pooling(self.pooled_layer, self.head.affine, normalize=self.head.normalize)

    def classify(self, embedding: Tensor) -> Tensor:
        """ID logits of eval embeddings (the ``IdentityLogit`` target)."""
        return self.head.classify(embedding)

    def feature_maps(self, images: Tensor) -> dict[str, Tensor]:
        """The maps ``_run`` names, ``global`` (and ``fc``) and ``embedding``."""
        maps: dict[str, Tensor] = {}
        x = self._run(images, maps)
        maps["global"] = g = self.pool(x)  # (B, C)
        if self.fc is not None:
            maps["fc"] = g = self.fc(g)  # (B, fc_dim)
        maps["embedding"] = self.head.embed(g)  # (B, D)
        return maps
