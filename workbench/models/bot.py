"""BoT, the strong ReID baseline: ResNet → GAP → BNNeck → ID classifier.

Luo, Gu, Liao, Lai, Jiang, "Bag of Tricks and A Strong Baseline for Deep Person
Re-identification", CVPR Workshops 2019 (arXiv 1903.07071); code ``michuanhaohao/
reid-strong-baseline`` ``modeling/baseline.py`` (modules.md §5.1). Tricks that live in the model:
last stride 1 (Sec. 3.4) and BNNeck (Sec. 3.5); the others (warmup, random erasing, label
smoothing, center loss) live in the trainer, the transforms and :mod:`workbench.train.losses`.

Where we differ from the official code (both configurable):

* the stem keeps torchvision's ReLU after ``bn1`` (the official backbone drops it,
  ``stem_relu=False`` restores that, modules.md §5.7);
* ``normalize_embedding`` L2-normalises the eval embedding inside the model; BoT does it in the
  evaluator (``TEST.FEAT_NORM='yes'``). Off by default: the evaluator decides the distance.

Options that imported FastReID / torchreid / BoT-IBN checkpoints need (:mod:`workbench.models.
importer`), all stored in the config so an export → ``load_pretrained`` round trip keeps them:
``stem_pool``, ``ibn``, ``nonlocal_blocks``, ``nonlocal_inter``, ``pixel_mean``/``pixel_std``
(backbone, see :mod:`workbench.models.resnet`), ``pool="gem"`` with ``gem_p``/``gem_learnable``
(FastReID SBS / AGW) and ``fc_dim`` (torchreid's ``resnet50_fc512``: Linear + BN + ReLU after the
pooling; its output is the global feature the head sees).

Not in the paper: ``part_loss`` > 0 adds a part-segmentation objective in training (a 1×1 conv on
layer4 predicts each position's part label, cross-entropy against the part masks), which the
workbench's pretraining uses to make layer4 tell the person from the background (issue 21,
``docs/pretraining.md``). It never runs in eval mode; 0 (the default) is the paper's BoT.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor, nn

from workbench.data.annotations import PART_LABELS
from workbench.models.base import (
    LayerInfo,
    ModelConfig,
    ModelConfigError,
    TrainOutput,
    tie_outputs,
)
from workbench.models.heads import BNNeck, FCNeck, GeM, GlobalAvgPool, PooledBNNeckModel
from workbench.models.registry import register_model
from workbench.models.resnet import (
    backbone_from_config,
    check_backbone_fields,
)

__all__ = ["BoT", "BoTConfig"]


@dataclass
class BoTConfig(ModelConfig):
    """Configuration of :class:`BoT` (defaults = the paper's ResNet-50 model on Market-1501).

    Attributes:
        backbone: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
        width: base width of the ResNet (64 = ImageNet; 16 or 32 for CPU models).
        last_stride: stride of layer4; 1 gives a 16×8 map for 256×128 input (BoT trick).
        neck: BNNeck (True) or BoT's ``MODEL.NECK='no'`` (classifier on the global feature).
        neck_feat: eval embedding ``"after"`` the BNNeck (BoT ``TEST.NECK_FEAT``) or ``"before"``.
        normalize_embedding: L2-normalise the eval embedding.
        stem_relu: ReLU after ``bn1`` (torchvision, default) or not (official BoT code).
        stem_pool: stem max-pool ``"pad"`` (torchvision) or ``"ceil"`` (FastReID since 2020-11).
        ibn: IBN-a in ``layer1``–``layer3`` (BoT/FastReID ``resnet50_ibn_a``).
        nonlocal_blocks: non-local blocks after the last n blocks of each stage (SBS/AGW R50:
            ``(0, 2, 3, 0)``).
        nonlocal_inter: inner channels of the non-local blocks, ``"one"`` (FastReID) or ``"half"``.
        pixel_mean, pixel_std: pixel statistics (0–1, RGB) the weights expect, if not ImageNet's;
            the model re-normalises its ImageNet-normalised input to them.
        pool: ``"avg"`` (GAP) or ``"gem"`` (generalised mean).
        gem_p: GeM exponent (initial value if learnable).
        gem_learnable: GeM ``p`` is a parameter (FastReID SBS) or fixed (AGW).
        fc_dim: 0, or the width of a Linear + BN + ReLU neck after pooling (torchreid fc512).
        part_loss: weight of the part-segmentation objective in training (not in the paper; 0 =
            off): a 1×1 conv on layer4 predicts the part label (``annotations.PART_LABELS``,
            background + 7 parts) of every position, trained with cross-entropy against each
            position's share of every label in the part masks (``parts`` field).
    """

    backbone: str = "resnet50"
    width: int = 64
    last_stride: int = 1
    neck: bool = True
    neck_feat: Literal["after", "before"] = "after"
    normalize_embedding: bool = False
    stem_relu: bool = True
    stem_pool: Literal["pad", "ceil"] = "pad"
    ibn: bool = False
    nonlocal_blocks: tuple[int, int, int, int] = (0, 0, 0, 0)
    nonlocal_inter: Literal["one", "half"] = "one"
    pixel_mean: tuple[float, float, float] | None = None
    pixel_std: tuple[float, float, float] | None = None
    pool: Literal["avg", "gem"] = "avg"
    gem_p: float = 3.0
    gem_learnable: bool = True
    fc_dim: int = 0
    part_loss: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_backbone_fields(self)
        if self.neck_feat not in ("after", "before"):
            raise ModelConfigError(f"neck_feat must be 'after' or 'before', got {self.neck_feat!r}")
        for name in ("nonlocal_blocks", "pixel_mean", "pixel_std"):  # JSON gives lists
            value = getattr(self, name)
            if isinstance(value, list):
                setattr(self, name, tuple(value))
        choices = {"stem_pool": ("pad", "ceil"), "nonlocal_inter": ("one", "half")}
        for name, valid in {**choices, "pool": ("avg", "gem")}.items():
            if getattr(self, name) not in valid:
                raise ModelConfigError(
                    f"{name} must be one of {', '.join(map(repr, valid))}, "
                    f"got {getattr(self, name)!r}"
                )
        blocks = self.nonlocal_blocks
        if len(blocks) != 4 or not all(isinstance(n, int) and n >= 0 for n in blocks):
            raise ModelConfigError(f"nonlocal_blocks needs 4 counts >= 0, got {blocks!r}")
        for name in ("pixel_mean", "pixel_std"):
            value = getattr(self, name)
            if value is not None and (len(value) != 3 or (name == "pixel_std" and min(value) <= 0)):
                raise ModelConfigError(f"{name} needs 3 values (RGB, 0-1 scale), got {value!r}")
        if not self.gem_p > 0:
            raise ModelConfigError(f"gem_p must be > 0, got {self.gem_p!r}")
        if not isinstance(self.fc_dim, int) or self.fc_dim < 0:
            raise ModelConfigError(f"fc_dim must be an int >= 0, got {self.fc_dim!r}")
        if isinstance(self.part_loss, bool) or not (
            isinstance(self.part_loss, int | float) and 0 <= self.part_loss < float("inf")
        ):
            raise ModelConfigError(f"part_loss must be a number >= 0, got {self.part_loss!r}")

    @classmethod
    def tiny(cls, **overrides: Any) -> BoTConfig:
        """ResNet-18 at width 16, 8 classes, 64×32 input: ~0.7 M parameters."""
        base: dict[str, Any] = {
            "backbone": "resnet18",
            "width": 16,
            "num_classes": 8,
            "input_size": (64, 32),
        }
        return cls(**{**base, **overrides})


@register_model("bot")
class BoT(PooledBNNeckModel):
    """BoT baseline (Luo et al. 2019, Fig. 5): ResNet, last stride 1, GAP, BNNeck.

    Train mode returns ``{"logits", "features" (pre-BN, for triplet/center), "embedding"}``;
    eval mode the (B, D) embedding (post-BN by default). ``D = width·8·expansion``: 2048 for
    ResNet-50, 512 for ResNet-18/34 at width 64.

    Example:
        >>> model = BoT(BoTConfig.tiny()).eval()
        >>> model(torch.randn(2, 3, 64, 32)).shape  # doctest: +SKIP
        torch.Size([2, 128])
    """

    config_class = BoTConfig

    def __init__(self, config: BoTConfig) -> None:
        super().__init__(config)
        self.backbone = backbone_from_config(config)
        dim = self.backbone.num_features
        self.pool: nn.Module = (
            GeM(config.gem_p, learnable=config.gem_learnable)
            if config.pool == "gem"
            else GlobalAvgPool()
        )
        vectors = [LayerInfo("global", dim, None, "pool", "vector")]
        self.fc: nn.Module | None = None
        if config.fc_dim:
            self.fc = FCNeck(dim, config.fc_dim)
            dim = config.fc_dim
            vectors.append(LayerInfo("fc", dim, None, "fc", "vector"))
        self.head = BNNeck(
            dim,
            config.num_classes,
            neck=config.neck,
            neck_feat=config.neck_feat,
            normalize=config.normalize_embedding,
        )
        self.embedding_dim = dim
        self.feature_dim = dim
        self.layer_info = [
            *(row.prefixed("backbone") for row in self.backbone.map_info),
            *vectors,
            LayerInfo("embedding", dim, None, "head", "vector"),
        ]
        self.part_head: nn.Conv2d | None = None
        if config.part_loss > 0:  # training only: part labels of layer4's positions
            self.part_head = nn.Conv2d(self.backbone.num_features, len(PART_LABELS), 1)
            self.train_fields = ("parts",)  # type: ignore[misc]  # per instance

    def _run(self, images: Tensor, maps: dict[str, Tensor] | None) -> Tensor:
        """The layer4 map (B, C, H/16, W/16) with last stride 1; every backbone map (stem,
        [nl*], layer1 .. layer4) into ``maps`` when it is a dict."""
        if maps is None:
            return self.backbone.forward_features(images)
        maps.update(self.backbone.named_maps(images))
        return maps["layer4"]

    def forward(self, images: Tensor) -> Tensor | TrainOutput:
        """Eval: the embedding; train: ``logits``, ``features``, ``embedding`` and, with
        ``part_loss``, ``parts`` (B, 8, h, w): the part-label logits of layer4's positions."""
        if not self.training or self.part_head is None:
            return super().forward(images)
        x = self._run(images, None)
        out: dict[str, Tensor] = dict(self.head(self._global(x)))  # type: ignore[arg-type]
        out["parts"] = self.part_head(x)
        out["features"] = tie_outputs(out["features"], out["parts"])
        return out  # type: ignore[return-value]

    def extra_losses(self, output: TrainOutput, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """``{"parts": part_loss · CE(parts, share of each label per position)}`` (or none)."""
        if self.part_head is None:
            return {}
        logits = output["parts"]  # type: ignore[typeddict-item]
        target = part_shares(batch["parts"], len(PART_LABELS), tuple(logits.shape[-2:]))
        return {"parts": self.config.part_loss * F.cross_entropy(logits.float(), target)}


def part_shares(parts: Tensor, labels: int, size: tuple[int, int]) -> Tensor:
    """(B, H, W) int part labels → (B, labels, h, w): each cell's share of every label.

    The area average of the one-hot maps (exact when H, W are multiples of h, w), so a cell on
    the person's outline is a soft target (e.g. 0.6 upper body, 0.4 background), not a vote.
    """
    if parts.dim() != 3:
        raise ValueError(f"parts: need (B, H, W) integer labels, got shape {tuple(parts.shape)}")
    if int(parts.min()) < 0 or int(parts.max()) >= labels:
        raise ValueError(
            f"parts: labels {int(parts.min())}..{int(parts.max())} outside 0..{labels - 1} "
            f"(annotations.PART_LABELS)"
        )
    onehot = F.one_hot(parts.long(), labels).permute(0, 3, 1, 2).float()  # (B, L, H, W)
    return F.adaptive_avg_pool2d(onehot, size)
