"""Parameter-free spatial attention network (SA): ResNet + SA layers + deep supervision + PCB parts.

Wang, Fan, Wang, Jiao, Schiele, "Parameter-Free Spatial Attention Network for Person
Re-Identification", arXiv 1811.12150 (2019); official code ``HRanWang/Spatial-Re-Scaling``
``reid/models/reSAnet.py`` and ``reid/trainers_partloss_4stage.py`` (modules.md §3).

Architecture (paper Fig. 3, as the code builds it):

* backbone: ResNet with ``layer4`` at stride 1 (``last_stride=1``);
* **deep-supervision branches** (DS) on ``layer1``..``layer3``: ``x_l → SA → GAP → 1×1 conv C_l→256
  (no bias, one per stage) → [BN] → Linear(256 → num_classes)`` (the code's DS head; the paper
  only says "GAP followed by a fully-connected layer"; in eval mode it is one linear map after
  GAP, so the CAM below is exact);
* **PCB part branch** (Sun et al. 2018) on ``layer4``: six horizontal stripes, average pooled
  (B, C, 6, 1) → dropout 0.5 → **shared** 1×1 conv C→256 (no bias) → BN → [ReLU] → one
  Linear(256 → num_classes) per stripe; the mean of the six 256-d stripe features goes to a
  seventh, "global" classifier (the paper's ``L_main``). Brackets: see ``head`` below.

Classifier heads (``head``): the code's heads — DS ``conv → Linear`` with bias, part ``conv → BN →
ReLU → Linear`` with bias — were trained with SGD at lr 0.1. Under the zoo's shared Adam recipe
(lr 2e-3, P×K batches of 16 of 250 ids) they did not learn: in the first 3 epochs of the 256×128
run every part / global loss stayed at or *above* chance (5.6 > log 250 = 5.52, training accuracy
0.3 %), and a 60-step check on class prototypes reproduced it (loss 6.3 at step 20) — Adam turns
the small, consistent gradient on the biases of the classes absent from a batch into full-size
steps, and non-negative ReLU features let every absent class drift together. ``head="bnneck"``
(**default**) uses BoT's recipe for a classifier trained by Adam: a BN with frozen zero bias
before a bias-free linear layer (DS: ``conv → BN1d → Linear``; parts: ``conv → BN2d → Linear``,
no ReLU); in the same check its losses fall (part 4.3, DS 3.0 by step 60). ``head="code"``
keeps the official heads. Both keep the DS branches linear in eval mode, so the CAMs are exact.

The SA layer (paper Eq. 1, Fig. 4) has **zero parameters**: a channel reduction ``m(h, w)``,
normalised over the h·w positions to weights ``a(h, w)`` summing to 1, then ``F' = a ⊙ F``
(broadcast over channels). Paper and code disagree (modules.md §3.1); ``sa_mode`` selects:

* ``"l1_mean"`` (**default**, the official code): ``m = mean_c F``, ``a = m / Σ m`` (F is post-ReLU,
  so a ≥ 0). This is what produced the released numbers, and it gives a smooth "energy" map;
* ``"softmax_sum"`` (the paper's text): ``m = Σ_c F``, ``a = softmax(m)``. The channel *sum* of
  C ReLU channels is O(10²–10³) on a trained network, so this softmax is nearly one-hot — all
  the weight on one position — which is why we do not default to it;
* ``"softmax_mean"``: ``a = softmax(mean_c F)``, the paper's softmax at a usable temperature.

The code does *not* rescale ``F' = a ⊙ F`` by h·w, so its GAP is ``Σ a F / (h·w)``, h·w times
(2048× at layer1 for 256×128) smaller than plain GAP, and its DS branches start with almost no
gradient unless, as there, SGD at lr 0.1 on the new layers makes up for it. We default to
``sa_rescale=True``: ``F' = h·w · a ⊙ F``, whose GAP is the attention-weighted mean ``Σ a F`` (the
same scale as GAP; uniform ``a`` gives plain GAP back), which suits the zoo's shared Adam recipe;
``sa_rescale=False`` is the code's version.

Losses (modules.md §3.3): ten cross-entropies — 6 stripes, the global classifier, 3 DS branches.
The trainer computes the ID loss (label-smoothed CE) of ``logits`` = the global classifier and
the triplet loss of ``features``; :meth:`SANet.extra_losses` returns the other nine by name
(``part1``..``part6``, ``deep1``..``deep3``), plain CE as in the code. ``loss_weighting``:

* ``"code"`` (**default**): every term weight 1 — the official trainer back-propagates the plain
  sum of the ten losses (its 0.8/0.2 total is only logged);
* ``"paper"``: the paper's ``0.8·mean(parts) + 0.2·mean(global, DS1..3)``, multiplied by 20 so the
  global term keeps the trainer's weight 1: DS terms weight 1 each, each part term 16/6.

Test-time embedding (modules.md §3.4, paper Sec. 3.1 "the backbone will then be used as a feature
extractor"): the code's ``out0`` — the six stripe-pooled ``layer4`` vectors, **each L2-normalised**,
concatenated: ``D = 6·C`` (12 288 for ResNet-50, 768 for ResNet-18 at width 16). DS branches and
part classifiers are dropped at inference; only the parameter-free SA weights of the DS stages are
still computed in eval mode (C·h·w additions each) so that hooks and ``feature_maps`` see them.

Where we differ from the code: the DS pooling is a real GAP (the code hard-codes the kernel for
384×128), ``num_classes`` comes from the data (code: 751), the trainer's triplet loss also acts
on ``features`` (the zoo trains every model with the same recipe), SA before the part pooling (the
paper's "SA1", ablation only) is available as ``sa_stages`` containing ``"layer4"``.

Explanation API:

* SA weights: ``feature_maps(images)["sa1"]``..``["sa3"]`` (and ``"sa4"`` if enabled), (B, 1, h, w),
  summing to 1 over positions; a forward hook on ``get_layer(model, "sa2")`` (the
  :class:`SAWeights` module ``ds2.sa.weights``) sees the same tensor.
* CAM per DS stage (paper Fig. 1, 5, 6): :meth:`SANet.cam_weights` ``(stage) -> (num_classes, C_l)``
  applies to :meth:`SANet.cam_input` ``= s·a_l ⊙ F_l`` (s = h·w with ``sa_rescale``) (``F_l = feature_maps["layer{l}"]``; without SA
  on that branch just ``F_l``): ``CAM_c(h, w) = cam_weights[c] · cam_input[:, :, h, w]`` and, exactly,
  ``logit_c = mean_{h,w} CAM_c + bias_c`` (:meth:`SANet.stage_cam`, which the ``"cam"`` explainer
  uses). The PCB/global
  branch has a BN + ReLU after the conv, so it has no exact CAM; use Grad-CAM on ``layer4``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.models.base import (
    Capability,
    LayerInfo,
    ModelConfig,
    ModelConfigError,
    Pooling,
    ReIDModel,
    TrainOutput,
)
from workbench.models.heads import GlobalAvgPool
from workbench.models.registry import register_model
from workbench.models.resnet import (
    backbone_from_config,
    check_backbone_fields,
)

__all__ = [
    "SA_MODES",
    "DeepSupervisionBranch",
    "PartEmbedding",
    "PartPool",
    "SAConfig",
    "SANet",
    "SAWeights",
    "SpatialAttention",
    "spatial_attention_weights",
]

SA_MODES = ("l1_mean", "softmax_sum", "softmax_mean")
DS_STAGES = ("layer1", "layer2", "layer3")
SAMode = Literal["l1_mean", "softmax_sum", "softmax_mean"]


def spatial_attention_weights(x: Tensor, mode: str = "l1_mean", eps: float = 1e-12) -> Tensor:
    """SA weights of a (B, C, h, w) map: (B, 1, h, w), non-negative, summing to 1 over (h, w).

    ``mode`` is one of :data:`SA_MODES` (see the module docstring). Computed in fp32.
    """
    b, _, h, w = x.shape
    x = x.float()
    if mode == "l1_mean":
        m = x.mean(dim=1, keepdim=True)  # (B, 1, h, w), ≥ 0 after ReLU
        return m / m.sum(dim=(2, 3), keepdim=True).clamp_min(eps)
    if mode in ("softmax_sum", "softmax_mean"):
        m = x.sum(dim=1) if mode == "softmax_sum" else x.mean(dim=1)  # (B, h, w)
        return torch.softmax(m.reshape(b, h * w), dim=1).reshape(b, 1, h, w)
    raise ModelConfigError(f"sa_mode must be one of {', '.join(SA_MODES)}, got {mode!r}")


class SAWeights(nn.Module):
    """The SA weights ``a`` (B, 1, h, w) of a feature map — no parameters.

    A module of its own so that a forward hook on it (``get_layer(model, "sa2")``) sees ``a``.
    """

    def __init__(self, mode: str = "l1_mean") -> None:
        super().__init__()
        if mode not in SA_MODES:
            raise ModelConfigError(f"sa_mode must be one of {', '.join(SA_MODES)}, got {mode!r}")
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) → (B, 1, h, w) parameter-free attention weights (sum 1 over positions)."""
        return spatial_attention_weights(x, self.mode).to(x.dtype)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class SpatialAttention(nn.Module):
    """Parameter-free SA layer (paper Eq. 1): ``F' = s · a ⊙ F``, ``a = self.weights(F)``.

    ``s = h·w`` with ``rescale`` (our default), so that GAP of ``F'`` is the attention-weighted
    mean ``Σ a F`` and uniform weights give back ``F``; ``s = 1`` as in the code.
    """

    def __init__(self, mode: str = "l1_mean", rescale: bool = True) -> None:
        super().__init__()
        self.weights = SAWeights(mode)
        self.rescale = rescale

    def forward(self, x: Tensor) -> Tensor:
        """``s · a ⊙ x`` with a the SA weights (s = h·w with ``rescale``, else 1)."""
        scale = x.shape[2] * x.shape[3] if self.rescale else 1
        return (scale * self.weights(x)) * x  # (B, 1, h, w) * (B, C, h, w)

    def extra_repr(self) -> str:
        return f"rescale={self.rescale}"


class DeepSupervisionBranch(nn.Module):
    """``x_l → [SA] → GAP → 1×1 conv C→dim (no bias) → Linear(dim → num_classes)``.

    ``forward(x)`` returns the logits; ``sa`` is a :class:`SpatialAttention` or None.
    """

    def __init__(
        self,
        in_channels: int,
        dim: int,
        num_classes: int,
        sa_mode: str | None,
        rescale: bool = True,
        neck: bool = True,
    ) -> None:
        super().__init__()
        sa = SpatialAttention(sa_mode, rescale) if sa_mode else None
        self.sa: SpatialAttention | None = sa
        self.pool = GlobalAvgPool()
        self.conv = nn.Conv2d(in_channels, dim, kernel_size=1, bias=False)
        self.bn: nn.BatchNorm1d | None = _neck_bn(dim) if neck else None
        self.classifier = nn.Linear(dim, num_classes, bias=not neck)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out")
        nn.init.normal_(self.classifier.weight, std=0.001)
        if self.classifier.bias is not None:
            nn.init.zeros_(self.classifier.bias)

    def cam_input(self, x: Tensor) -> Tensor:
        """The map the CAM weights apply to: ``s·a ⊙ x`` (or ``x`` without SA)."""
        return self.sa(x) if self.sa is not None else x

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) stage map → (B, num_classes) logits of the deep-supervision classifier."""
        v = self.pool(self.cam_input(x))  # (B, C)
        v = self.conv(v[:, :, None, None]).flatten(1)  # (B, dim)
        if self.bn is not None:
            v = self.bn(v)
        return self.classifier(v)  # (B, num_classes)

    def _bn_affine(self) -> tuple[Tensor, Tensor]:
        """Eval-mode BN as ``scale ⊙ v + shift`` (identity without a neck)."""
        if self.bn is None:
            dim = self.conv.out_channels
            one = self.conv.weight.new_ones(dim)
            return one, torch.zeros_like(one)
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return scale, bn.bias - bn.running_mean * scale

    def cam_weights(self) -> Tensor:
        """(num_classes, C): ``classifier · diag(BN scale) · conv`` — the eval branch is linear."""
        scale, _ = self._bn_affine()
        return self.classifier.weight @ (scale[:, None] * self.conv.weight.flatten(1))

    def cam_bias(self) -> Tensor:
        """(num_classes,): what the eval branch adds after the CAM mean (BN shift, fc bias)."""
        _, shift = self._bn_affine()
        bias = self.classifier.weight @ shift
        return bias + self.classifier.bias if self.classifier.bias is not None else bias


def _neck_bn(dim: int) -> nn.BatchNorm1d:
    """BoT's BNNeck BN: bias frozen at 0 (features stay zero-mean for a bias-free classifier)."""
    bn = nn.BatchNorm1d(dim)
    nn.init.zeros_(bn.bias)
    bn.bias.requires_grad_(False)
    return bn


class PartPool(nn.Module):
    """(B, C, h, w) → (B, P·C): P horizontal stripes, average pooled, stripe-major.

    Like torchreid's PCB, ``adaptive_avg_pool2d(x, (P, 1))``: at 256×128 the layer4 map has 16
    rows, so the six stripes are rows [0,3) [2,6) [5,8) [8,11) [10,14) [13,16) — neighbours share
    a row. The code's 384×128 input gives 24 rows, 4 per stripe, disjoint.
    """

    def __init__(self, parts: int) -> None:
        super().__init__()
        self.parts = parts

    def stripes(self, x: Tensor) -> Tensor:
        """(B, C, h, w) → (B, P, C). If P does not divide h, stripes overlap (adaptive pooling)."""
        return F.adaptive_avg_pool2d(x, (self.parts, 1)).flatten(2).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) → (B, P·C): the mean of each of P horizontal stripes."""
        return self.stripes(x).flatten(1)


class PartEmbedding(nn.Module):
    """Test feature: each stripe vector L2-normalised, (B, P·C) → (B, P·C) (code ``out0``)."""

    def __init__(self, parts: int) -> None:
        super().__init__()
        self.parts = parts

    def forward(self, v: Tensor) -> Tensor:
        """(B, P·C) → (B, P·C) with each stripe's vector L2-normalised."""
        b = v.shape[0]
        return F.normalize(v.reshape(b, self.parts, -1), dim=2).flatten(1)


@dataclass
class SAConfig(ModelConfig):
    """Configuration of :class:`SANet` (defaults = the official code's ResNet-50 model).

    Attributes:
        backbone, width, last_stride, stem_relu: the ResNet (as :class:`BoTConfig`); the code
            uses ResNet-50 with layer4 at stride 1.
        sa_mode: SA normalisation, one of :data:`SA_MODES`; ``"l1_mean"`` = official code.
        sa_rescale: multiply ``a ⊙ F`` by h·w (GAP becomes the attention-weighted mean); the
            code does not (False).
        sa_stages: branches with an SA layer: any of ``layer1``..``layer3`` (the DS branches,
            all on in the paper's main model) and ``layer4`` (SA before the part pooling, the
            paper's ablation-only "SA1").
        deep_supervision: add the DS branches on layer1..3 (paper: on).
        parts: PCB stripes (6); they overlap by a row when they do not divide the map height.
        dim: channels of the DS 1×1 convs and of the shared part conv (256).
        dropout: before the shared part conv (code 0.5).
        loss_weighting: ``"code"`` (plain sum of the ten CE losses) or ``"paper"`` (0.8/0.2).
        head: ``"bnneck"`` (default) or ``"code"``, the classifier heads (see the module doc).
    """

    backbone: str = "resnet50"
    width: int = 64
    last_stride: int = 1
    stem_relu: bool = True
    sa_mode: SAMode = "l1_mean"
    sa_rescale: bool = True
    sa_stages: tuple[str, ...] = DS_STAGES
    deep_supervision: bool = True
    parts: int = 6
    dim: int = 256
    dropout: float = 0.5
    loss_weighting: Literal["code", "paper"] = "code"
    head: Literal["bnneck", "code"] = "bnneck"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.sa_stages, (list, str)):
            stages = [self.sa_stages] if isinstance(self.sa_stages, str) else self.sa_stages
            self.sa_stages = tuple(stages)
        check_backbone_fields(self)
        if self.sa_mode not in SA_MODES:
            raise ModelConfigError(
                f"sa_mode must be one of {', '.join(SA_MODES)}, got {self.sa_mode!r}"
            )
        valid = (*DS_STAGES, "layer4")
        bad = [s for s in self.sa_stages if s not in valid]
        if bad:
            raise ModelConfigError(f"sa_stages: unknown {bad}; valid: {', '.join(valid)}")
        if not self.deep_supervision and any(s in DS_STAGES for s in self.sa_stages):
            raise ModelConfigError(
                "sa_stages names a DS branch but deep_supervision is off; drop layer1..3 from "
                "sa_stages or turn deep_supervision on"
            )
        if self.parts < 1 or self.dim < 1 or not 0 <= self.dropout < 1:
            raise ModelConfigError(
                f"need parts ≥ 1, dim ≥ 1, 0 ≤ dropout < 1; got {self.parts}, {self.dim}, "
                f"{self.dropout}"
            )
        if self.head not in ("bnneck", "code"):
            raise ModelConfigError(f"head must be 'bnneck' or 'code', got {self.head!r}")
        if self.loss_weighting not in ("code", "paper"):
            raise ModelConfigError(
                f"loss_weighting must be 'code' or 'paper', got {self.loss_weighting!r}"
            )

    @classmethod
    def tiny(cls, **overrides: Any) -> SAConfig:
        """ResNet-18 at width 16, 8 classes, 96×32 input (a 6-row layer4 map), dim 32."""
        base: dict[str, Any] = {
            "backbone": "resnet18",
            "width": 16,
            "num_classes": 8,
            "input_size": (96, 32),
            "dim": 32,
        }
        return cls(**{**base, **overrides})


@register_model("sa")
class SANet(ReIDModel):
    """Parameter-free spatial attention network (Wang et al. 2019, Fig. 3); see the module doc.

    Train mode returns ``{"logits"`` (global classifier), ``"features"`` (B, P·C stripe-pooled
    layer4, for the triplet loss), ``"embedding"`` (B, P·C test feature), ``"part_logits"`` (list
    of P (B, K)), ``"deep_logits"`` (dict ``layer1``.. → (B, K))}``; eval mode the embedding.
    """

    config_class = SAConfig

    def __init__(self, config: SAConfig) -> None:
        super().__init__(config)
        self.backbone = backbone_from_config(config)
        info = {row.name: row for row in self.backbone.stage_info}
        k = config.num_classes
        neck = config.head == "bnneck"
        self.deep = nn.ModuleDict()
        if config.deep_supervision:
            for stage in DS_STAGES:
                mode = config.sa_mode if stage in config.sa_stages else None
                self.deep[stage] = DeepSupervisionBranch(
                    info[stage].channels, config.dim, k, mode, config.sa_rescale, neck
                )
        #: stages with an exact CAM (the deep-supervision classifiers); Capability.CAM_WEIGHTS
        self.cam_layers: tuple[str, ...] = tuple(self.deep)
        if self.cam_layers:
            self.capabilities = frozenset({Capability.CAM_WEIGHTS})
        c = self.backbone.num_features
        self.sa4 = (
            SpatialAttention(config.sa_mode, config.sa_rescale)
            if "layer4" in config.sa_stages
            else None
        )
        self.pool = PartPool(config.parts)
        self.head = PartEmbedding(config.parts)
        self.dropout = nn.Dropout(config.dropout)
        bn = nn.BatchNorm2d(config.dim)
        if neck:  # BNNeck-style: zero-mean part features (bias frozen), no ReLU
            nn.init.zeros_(bn.bias)
            bn.bias.requires_grad_(False)
        self.part_conv = nn.Sequential(
            nn.Conv2d(c, config.dim, kernel_size=1, bias=False),
            bn,
            nn.Identity() if neck else nn.ReLU(),
        )
        nn.init.kaiming_normal_(self.part_conv[0].weight, mode="fan_out")
        self.part_classifiers = nn.ModuleList(
            nn.Linear(config.dim, k, bias=not neck) for _ in range(config.parts)
        )
        self.global_classifier = nn.Linear(config.dim, k, bias=not neck)
        for fc in (*self.part_classifiers, self.global_classifier):
            nn.init.normal_(fc.weight, std=0.001)
            if fc.bias is not None:
                nn.init.zeros_(fc.bias)

        self.embedding_dim = config.parts * c
        self.feature_dim = config.parts * c
        rows: list[LayerInfo] = []
        for row in self.backbone.stage_info:
            rows.append(row.prefixed("backbone"))
            stage = row.name
            if stage in self.deep and self.deep[stage].sa is not None:
                n = stage[-1]
                module = f"deep.{stage}.sa.weights"  # weights of the map they rescale
                rows.append(LayerInfo(f"sa{n}", 1, row.reduction, module, "attention", False))
            if stage == "layer4" and self.sa4 is not None:
                rows.append(LayerInfo("sa4", 1, row.reduction, "sa4.weights", "attention", False))
        rows += [
            LayerInfo("global", self.feature_dim, None, "pool", "vector"),
            LayerInfo("embedding", self.embedding_dim, None, "head", "vector"),
        ]
        self.layer_info = rows

    # -- forward ----------------------------------------------------------------------------
    def _backbone(self, images: Tensor, maps: dict[str, Tensor] | None) -> tuple[Tensor, dict]:
        """Run the stages; returns layer4 and the DS stage inputs. Fills ``maps`` if given."""
        x = images
        stage_out: dict[str, Tensor] = {}
        for name, stage in self.backbone.stages():
            x = stage(x)
            stage_out[name] = x
            if maps is not None:
                maps[name] = x
            if name in self.deep and self.deep[name].sa is not None and not self.training:
                # eval: only the (parameter-free) SA weights, so hooks / feature_maps see them
                a = self.deep[name].sa.weights(x)
                if maps is not None:
                    maps[f"sa{name[-1]}"] = a
        if self.sa4 is not None:
            if maps is not None:
                maps["sa4"] = self.sa4.weights(x)
            x = self.sa4(x)
        return x, stage_out

    def forward(self, images: Tensor) -> Tensor | TrainOutput:
        """Eval: the (B, P·C) part embedding; train: the dict with part and deep logits."""
        x, stage_out = self._backbone(images, None)
        features = self.pool(x)  # (B, P·C)
        embedding = self.head(features)  # (B, P·C), each stripe L2-normalised
        if not self.training:
            return embedding
        b, p = features.shape[0], self.config.parts
        stripes = features.reshape(b, p, -1).transpose(1, 2)[..., None]  # (B, C, P, 1)
        parts = self.part_conv(self.dropout(stripes)).squeeze(3)  # (B, dim, P)
        part_logits = [fc(parts[:, :, i]) for i, fc in enumerate(self.part_classifiers)]
        logits = self.global_classifier(parts.mean(dim=2))  # (B, K)
        deep_logits = {name: branch(stage_out[name]) for name, branch in self.deep.items()}
        return {
            "logits": logits,
            "features": features,
            "embedding": embedding,
            "part_logits": part_logits,
            "deep_logits": deep_logits,
        }

    def feature_maps(self, images: Tensor) -> dict[str, Tensor]:
        """Stages, SA weights, ``global`` and ``embedding`` by ``layer_info`` name."""
        maps: dict[str, Tensor] = {}
        training = self.training
        self.training = False  # the SA weights are computed in the eval path
        try:
            x, _ = self._backbone(images, maps)
        finally:
            self.training = training
        maps["global"] = self.pool(x)
        maps["embedding"] = self.head(maps["global"])
        return maps

    def pooling(self) -> Pooling | None:
        """layer4 → P stripes (adaptive average pooling) → each stripe L2-normalised.

        None with an SA layer before the part pooling (``sa_stages`` with ``layer4``): its
        weights rescale positions inside the pooling, which this declaration does not cover.
        """
        if self.sa4 is not None:
            return None
        return Pooling("layer4", None, parts=self.config.parts, normalize=True)

    # -- losses -----------------------------------------------------------------------------
    def extra_losses(self, output: TrainOutput, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """``part1``..``partP`` and ``deep1``..``deep3`` cross-entropies, weighted (see doc)."""
        labels = batch["label"]
        parts = output["part_logits"]  # type: ignore[typeddict-item]
        deep = output["deep_logits"]  # type: ignore[typeddict-item]
        part_w = 1.0 if self.config.loss_weighting == "code" else 16.0 / len(parts)
        terms = {
            f"part{i + 1}": part_w * F.cross_entropy(logit.float(), labels)
            for i, logit in enumerate(parts)
        }
        for name, logit in deep.items():
            terms[f"deep{name[-1]}"] = F.cross_entropy(logit.float(), labels)
        return terms

    # -- CAM --------------------------------------------------------------------------------
    def _branch(self, stage: str | int) -> DeepSupervisionBranch:
        name = f"layer{stage}" if isinstance(stage, int) else stage
        if name not in self.deep:
            have = ", ".join(self.deep) or "none (deep_supervision is off)"
            raise KeyError(
                f"SA model has no CAM for {name!r}: exact CAMs exist for the deep-supervision "
                f"stages ({have}); the layer4/PCB branch has BN + ReLU after its conv — use "
                f"Grad-CAM on layer4 instead"
            )
        return self.deep[name]

    def cam_weights(self, stage: str | int) -> Tensor:
        """(num_classes, C_l) CAM weights of DS stage ``stage`` (``2`` or ``"layer2"``).

        ``classifier · diag(BN scale) · conv`` (eval-mode BN); apply them to :meth:`cam_input`.
        """
        return self._branch(stage).cam_weights()

    def cam_bias(self, stage: str | int) -> Tensor:
        """(num_classes,) what the DS stage adds to the CAM mean (BN shift through the fc)."""
        return self._branch(stage).cam_bias()

    def cam_input(self, stage: str | int, stage_map: Tensor) -> Tensor:
        """The map the CAM weights apply to: ``a ⊙ F_l`` for ``stage_map = F_l`` (B, C_l, h, w)."""
        return self._branch(stage).cam_input(stage_map)

    def stage_cam(
        self, stage: str | int, stage_map: Tensor, classes: Tensor, with_sa: bool = True
    ) -> Tensor:
        """(B, h, w) CAM of DS stage ``stage`` for ``classes`` (B,), from its map F_l.

        ``W[c] · (a ⊙ F_l)`` per position (``with_sa=False``: ``W[c] · F_l``, the paper's
        "without SA" panels). With SA it is exact: ``CAM.mean((1, 2)) + cam_bias[classes]``
        equals the DS branch's logits.
        """
        branch = self._branch(stage)
        source = branch.cam_input(stage_map) if with_sa else stage_map  # (B, C, h, w)
        return torch.einsum("bchw,bc->bhw", source, branch.cam_weights()[classes])

    def class_activation_map(self, images: Tensor, stage: str | int, classes: Tensor) -> Tensor:
        """(B, h, w) CAM of DS stage ``stage`` of ``images`` for ``classes`` (:meth:`stage_cam`)."""
        name = f"layer{stage}" if isinstance(stage, int) else stage
        return self.stage_cam(stage, self.feature_maps(images)[name], classes)
