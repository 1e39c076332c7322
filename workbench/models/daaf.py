"""DAAF: BoT plus two training-only attention branches (person mask, grouped keypoint heat maps).

Chen, Wang, Sun, Fan, Tang, "Deep Attention Aware Feature Learning for Person
Re-Identification", arXiv 2003.00517 (2020); code ``CYFFF/PAAM_on_reid-strong-baseline``
@ ``d92acd2`` = DAAF-BoT, ``modeling/baseline.py`` and ``layers/__init__.py`` (modules.md §2).

The re-ID network is :class:`~workbench.models.bot.BoT`, unchanged. Training adds (Fig. 2):

* **Holistic attention branch** (HAB, code "VAC", Sec. 3.1): the layer1 output of the shared
  backbone ("the first convolution block") goes through the branch's *own copy* of layer2–4
  (``hab.encoder``, deep-copied from the backbone at construction, so it starts from the same,
  possibly ImageNet, weights and has the same last stride), then four 2×2 stride-2
  deconvolutions and a 1×1 conv to one channel (``hab.decoder``, ``hab.head``): the predicted
  person mask at 16× the last map (256×128 for 256×128 input with last stride 1). Loss eq. 2 as
  coded: mean squared error against the binary person mask (eq. 3), ``lambda_mask`` = 20.
* **Partial attention branch** (PAB, code "PAC", Sec. 3.2): the layer4 map is split along
  channels into one group per keypoint group (6 groups of the 17 COCO keypoints by default,
  Fig. 4(c); ``floor(C / groups)`` channels each, the remainder unused, Sec. 3.3.3). One
  *shared* decoder (``pab.decoder``, same layout as HAB's) decodes every group; group ``g``'s
  own 1×1 conv (``pab.heads[g]``) maps it to its keypoints' heat maps. Loss eq. 4 as coded: MSE
  per group weighted by ``K_g / K`` (= the mean over all keypoint channels),
  ``lambda_keypoints`` = 65.

Both branches are dropped at inference: in eval mode ``forward`` runs exactly BoT's modules
(``backbone``, ``pool``, ``head``), so the embedding path has BoT's parameters and FLOPs
(``tests/models/test_daaf.py`` checks both and the embeddings). :meth:`DAAF.inference_model`
returns that BoT (sharing the weights), :meth:`DAAF.branch_outputs` runs the branches on demand
(Fig. 7 / 8 of the paper show exactly these outputs), and the pieces of the 1×1-conv shuffle
(Sec. 4.3.4, Fig. 9–10) are reachable: ``pab.split(layer4)`` → group features,
``pab.decode(group)`` → shared decoder, ``pab.heads[j]`` → group ``j``'s 1×1 conv, or
``pab.shuffle(layer4)`` for the whole i×j table.

Where we differ from the code (all configurable):

* Gaussian heat-map targets are built here from the batch keypoints (the paper's Sec. 3.2;
  the code reads pre-rendered CPN PNGs whose generation script is empty): one 2-D Gaussian per
  keypoint with ``v > 0``, peak 1, ``heatmap_sigma`` = 8 px at the input resolution (= σ 2 at
  1/4 resolution, the CPN/SimpleBaseline convention; the paper does not give σ). Keypoints with
  ``v = 0`` (not labelled / outside the image) get an all-zero map, as the code's empty PNGs
  do; ``ignore_invisible=True`` leaves them out of the loss instead.
* The flip swaps left/right keypoints (our transforms do it; the code flips the PNGs in place, a
  50 % label noise on L/R channels, modules.md §2.7).
* Group width ``floor(C / G)`` = 341 at C = 2048 (paper) vs the code's 340.
* The HAB decoder is initialised like the PAB one, N(0, 0.001) weights and zero bias — what the
  code's init lines intend (they re-initialise the PAB layers twice by mistake, §2.2).
* ``decoder_channels`` (64 in the paper and code) and ``decoder_steps`` (4) set the decoders'
  width and depth. At 64 × 4 the six full-resolution PAB decodings alone cost ~1.1 GMAC per
  256×128 image, 7.6× a width-16 ResNet-18, and a measured ~7× BoT's step time on this CPU, so
  the CPU card uses ``decoder_channels=16, decoder_steps=2``: two deconvolutions, predictions
  at 1/4 of the input (64×32, the usual heat-map resolution of CPN / SimpleBaseline), targets
  built on that grid (the Gaussians' σ stays 8 input pixels = 2 map pixels; the mask is
  area-averaged). That run trains at ~1.8× BoT's step time.
* The mask target is the synthetic/segmentation person mask (``parts > 0``), not an FCN output
  binarised at 100; area-averaged when the decoder output is smaller than the image.

Cost (``torch.utils.flop_counter``, FLOPs = 2 × multiply-adds, per 256×128 image; eval mode =
the inference model, train mode = with both branches):

    ================================  ==========  ==========  ===========  ===========
    configuration                     BoT params  DAAF all    eval GFLOPs  train GFLOPs
    ================================  ==========  ==========  ===========  ===========
    ResNet-50 w64, decoders 64 × 4    24,536,128  48,530,386  8.107 = BoT  18.00 (BoT 8.11)
    CPU card: ResNet-18 w16, 16 × 2      766,352   1,468,674  0.278 = BoT  0.492 (BoT 0.278)
    ================================  ==========  ==========  ===========  ===========

(with a 500-way classifier; HAB is 23.86 M / 0.70 M parameters — its encoder copy — and PAB 0.14 M /
2,689.) The eval-mode parameter counts, FLOPs and embeddings equal those of the BoT
(``inference_model()``), checked in ``tests/models/test_daaf.py``.

Data: the model asks the trainer for the sample fields ``mask`` and ``keypoints``
(``train_fields``); both move with the image through every transform. For real data add to the
split table (``workbench/data/dataset.py``) a ``mask_path`` column — a single-channel PNG of the
image's size whose non-zero pixels are the person (a part-label map as
``annotations.PART_LABELS`` or a plain 0/255 mask both work) — and a ``keypoints`` column: a
(17, 3) array per row in COCO order (``annotations.COCO_KEYPOINTS``), ``x, y`` in continuous
pixel coordinates of the stored image (pixel ``i`` spans ``[i, i+1)``), visibility 0/1/2 (0 =
not labelled). Laid out like the synthetic data, ``ROOT/masks/<folder>/<stem>.png`` and
``ROOT/keypoints/<folder>.csv`` (``name, nose_x, nose_y, nose_v, ...``, see
``annotations.write_keypoints``) are picked up automatically. Every training image needs both
(a batch cannot mix annotated and unannotated images); turn a branch off (``hab=False`` /
``pab=False``) to train without that annotation.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.data.annotations import COCO_KEYPOINTS
from workbench.models.base import Capability, ModelConfigError, TrainOutput, tie_outputs
from workbench.models.bot import BoT, BoTConfig
from workbench.models.registry import register_model

__all__ = [
    "DAAF",
    "KEYPOINT_GROUPINGS",
    "DAAFConfig",
    "HolisticAttentionBranch",
    "PartialAttentionBranch",
    "daaf_losses",
    "gaussian_heatmaps",
]

NUM_KEYPOINTS = len(COCO_KEYPOINTS)  # 17

#: named keypoint groupings (COCO indices). "coco6" is the paper's Fig. 4(c) and the code's
#: table (head; shoulders; elbows; wrists + hips; knees; ankles), "all" / "each" are Table 6's
#: 1- and 17-group rows. "coco4" is our own 4-part split (head; arms; hips + knees; ankles):
#: the text does not list Fig. 4(b)'s groups.
KEYPOINT_GROUPINGS: dict[str, tuple[tuple[int, ...], ...]] = {
    "coco6": ((0, 1, 2, 3, 4), (5, 6), (7, 8), (9, 10, 11, 12), (13, 14), (15, 16)),
    "coco4": ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9, 10), (11, 12, 13, 14), (15, 16)),
    "all": (tuple(range(NUM_KEYPOINTS)),),
    "each": tuple((k,) for k in range(NUM_KEYPOINTS)),
}


def _resolve_groups(groups: str | Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    if isinstance(groups, str):
        if groups not in KEYPOINT_GROUPINGS:
            raise ModelConfigError(
                f"keypoint_groups {groups!r} is not a named grouping; valid: "
                f"{', '.join(KEYPOINT_GROUPINGS)}, or a list of COCO index lists"
            )
        return KEYPOINT_GROUPINGS[groups]
    out = tuple(tuple(int(k) for k in g) for g in groups)
    flat = [k for g in out for k in g]
    if not out or any(not g for g in out):
        raise ModelConfigError(f"keypoint_groups must be non-empty lists, got {groups!r}")
    if any(not 0 <= k < NUM_KEYPOINTS for k in flat) or len(set(flat)) != len(flat):
        raise ModelConfigError(
            f"keypoint_groups {groups!r}: each COCO index 0..{NUM_KEYPOINTS - 1} at most once"
        )
    return out


@dataclass
class DAAFConfig(BoTConfig):
    """Configuration of :class:`DAAF`: BoT's fields plus the two branches.

    Attributes:
        hab: train the holistic attention branch (person mask).
        pab: train the partial attention branch (keypoint heat maps per channel group).
        keypoint_groups: a name in :data:`KEYPOINT_GROUPINGS` or a list of COCO index lists.
        group_channels: channels of layer4 per group; None = ``floor(C / groups)``.
        decoder_channels: width of the deconvolutions (64 in the paper).
        decoder_steps: number of 2×2 stride-2 deconvolutions (4 in the paper: back to the input
            size from a 16× smaller map); the prediction is ``2^steps`` × the layer4 map.
        decoder_relu: ReLU between the deconvolutions (TF/TriNet code); False = DAAF-BoT's
            purely linear decoder.
        decoder_init_std: N(0, std) init of the decoders and 1×1 convs; 0 = PyTorch default.
        heatmap_sigma: σ of the Gaussian targets in input pixels.
        ignore_invisible: leave keypoints with visibility 0 out of the loss (default: all-zero
            target, as the code).
        lambda_mask, lambda_keypoints: loss weights of HAB and PAB (DAAF-BoT: 20 and 65 on
            MSE means; the paper's 0.003 belongs to another reduction).
    """

    hab: bool = True
    pab: bool = True
    keypoint_groups: str | list[list[int]] = "coco6"
    group_channels: int | None = None
    decoder_channels: int = 64
    decoder_steps: int = 4
    decoder_relu: bool = False
    decoder_init_std: float = 0.001
    heatmap_sigma: float = 8.0
    ignore_invisible: bool = False
    lambda_mask: float = 20.0
    lambda_keypoints: float = 65.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.keypoint_groups, tuple):
            self.keypoint_groups = [list(g) for g in self.keypoint_groups]
        _resolve_groups(self.keypoint_groups)
        if not isinstance(self.decoder_channels, int) or self.decoder_channels < 1:
            raise ModelConfigError(
                f"decoder_channels must be a positive int, got {self.decoder_channels!r}"
            )
        if not isinstance(self.decoder_steps, int) or not 1 <= self.decoder_steps <= 6:
            raise ModelConfigError(f"decoder_steps must be 1..6, got {self.decoder_steps!r}")
        if self.heatmap_sigma <= 0:
            raise ModelConfigError(f"heatmap_sigma must be > 0, got {self.heatmap_sigma!r}")
        if self.group_channels is not None and self.group_channels < 1:
            raise ModelConfigError(f"group_channels must be >= 1, got {self.group_channels!r}")

    @classmethod
    def tiny(cls, **overrides: Any) -> DAAFConfig:
        """ResNet-18 width 16, 8 classes, 64×32 input, decoders of width 8."""
        base: dict[str, Any] = {
            "backbone": "resnet18",
            "width": 16,
            "num_classes": 8,
            "input_size": (64, 32),
            "decoder_channels": 8,
        }
        return cls(**{**base, **overrides})


def _decoder(in_channels: int, width: int, relu: bool, steps: int = 4) -> nn.Sequential:
    """``steps`` ConvTranspose2d(k=2, s=2): (B, in, h, w) → (B, width, h·2^steps, w·2^steps)."""
    layers: list[nn.Module] = []
    c = in_channels
    for i in range(steps):
        layers.append(nn.ConvTranspose2d(c, width, kernel_size=2, stride=2))
        if relu and i < steps - 1:
            layers.append(nn.ReLU())
        c = width
    return nn.Sequential(*layers)


def _init_normal(module: nn.Module, std: float) -> None:
    if std <= 0:
        return
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class HolisticAttentionBranch(nn.Module):
    """HAB: own copy of layer2–4 → 4 deconvs → 1×1 conv → (B, 1, 16h₄, 16w₄) mask prediction.

    ``encoder`` is a ``Sequential`` of the copied stages, ``decoder`` the deconvolutions,
    ``head`` the 1×1 conv. No sigmoid (regressed against the {0, 1} mask, as the code).
    """

    def __init__(
        self, stages: Sequence[nn.Module], channels: int, width: int, relu: bool, steps: int = 4
    ) -> None:
        super().__init__()
        self.encoder = nn.Sequential(*(copy.deepcopy(s) for s in stages))
        self.decoder = _decoder(channels, width, relu, steps)
        self.head = nn.Conv2d(width, 1, kernel_size=1)

    def forward(self, layer1: Tensor) -> Tensor:
        """(B, C1, H/4, W/4) layer1 features → (B, 1, H', W') person-mask logits."""
        return self.head(self.decoder(self.encoder(layer1)))  # (B, 1, H', W')


class PartialAttentionBranch(nn.Module):
    """PAB: channel groups of layer4 → one shared decoder → per-group 1×1 conv → heat maps.

    Attributes:
        groups: COCO keypoint indices of each group (``groups[g]`` are ``heads[g]``'s outputs).
        channel_slices: ``slice`` of layer4 channels feeding group ``g``.
        decoder: the shared deconvolutions (one set of weights for every group).
        heads: ``ModuleList`` of 1×1 convs, ``heads[g]``: width → ``len(groups[g])``.
        keypoint_order: COCO index of each output channel of :meth:`forward` (``groups``
            concatenated; the identity for "coco6", "all" and "each").
    """

    def __init__(
        self,
        in_channels: int,
        groups: Sequence[Sequence[int]],
        width: int,
        relu: bool,
        group_channels: int | None = None,
        steps: int = 4,
    ) -> None:
        super().__init__()
        self.groups = [tuple(g) for g in groups]
        n = len(self.groups)
        per = group_channels if group_channels is not None else in_channels // n
        if per < 1 or per * n > in_channels:
            raise ModelConfigError(
                f"PAB: {n} groups of {per} channels do not fit the {in_channels} channels of "
                f"layer4; use fewer keypoint_groups, a smaller group_channels or a wider backbone"
            )
        self.group_channels = per
        self.channel_slices = [slice(g * per, (g + 1) * per) for g in range(n)]
        self.keypoint_order = [k for g in self.groups for k in g]
        self.decoder = _decoder(per, width, relu, steps)
        self.heads = nn.ModuleList(nn.Conv2d(width, len(g), kernel_size=1) for g in self.groups)

    def split(self, layer4: Tensor) -> list[Tensor]:
        """The channel groups ``x_1 .. x_M`` of Sec. 3.2: each (B, group_channels, h, w)."""
        return [layer4[:, s] for s in self.channel_slices]

    def decode(self, group_features: Tensor) -> Tensor:
        """Shared decoder: (B, group_channels, h, w) → (B, width, 16h, 16w)."""
        return self.decoder(group_features)

    def forward(self, layer4: Tensor) -> Tensor:
        """(B, C, h, w) → (B, K, 16h, 16w) heat maps, channels in ``keypoint_order``."""
        b = layer4.shape[0]
        groups = torch.cat(self.split(layer4), dim=0)  # (G·B, c, h, w): one decoder call
        decoded = self.decode(groups).split(b, dim=0)  # G × (B, width, H', W')
        return torch.cat([head(d) for head, d in zip(self.heads, decoded, strict=True)], dim=1)

    def shuffle(self, layer4: Tensor) -> list[list[Tensor]]:
        """Fig. 9–10: ``out[i][j] = heads[j](decode(group i))``, (B, len(groups[j]), H', W')."""
        decoded = [self.decode(x) for x in self.split(layer4)]
        return [[head(d) for head in self.heads] for d in decoded]


def gaussian_heatmaps(
    keypoints: Tensor, size: tuple[int, int], image_size: tuple[int, int], sigma: float
) -> Tensor:
    """Gaussian targets: (B, K, 3) keypoints → (B, K, h, w) maps, peak 1, zero where ``v = 0``.

    ``keypoints`` are ``x, y, v`` in continuous pixel coordinates of an ``image_size`` = (H, W)
    image (pixel ``i`` spans ``[i, i+1)``). Map pixel ``(r, c)`` of an ``size`` = (h, w) map has
    its centre at ``((c + 0.5)·W/w, (r + 0.5)·H/h)`` in image pixels; its value is
    ``exp(-((cx - x)² + (cy - y)²) / (2σ²))`` with ``σ = sigma`` image pixels.
    """
    h, w = size
    big_h, big_w = image_size
    kp = keypoints.float()
    ys = (torch.arange(h, device=kp.device, dtype=kp.dtype) + 0.5) * (big_h / h)  # (h,)
    xs = (torch.arange(w, device=kp.device, dtype=kp.dtype) + 0.5) * (big_w / w)  # (w,)
    dy = (ys.view(1, 1, h, 1) - kp[..., 1, None, None]) ** 2  # (B, K, h, 1)
    dx = (xs.view(1, 1, 1, w) - kp[..., 0, None, None]) ** 2  # (B, K, 1, w)
    maps = torch.exp(-(dx + dy) / (2.0 * sigma**2))  # (B, K, h, w)
    visible = (kp[..., 2] > 0).to(maps.dtype)[..., None, None]
    return maps * visible


def daaf_losses(
    mask_pred: Tensor | None,
    heatmap_pred: Tensor | None,
    mask: Tensor | None,
    keypoints: Tensor | None,
    *,
    groups: Sequence[Sequence[int]],
    image_size: tuple[int, int],
    sigma: float,
    lambda_mask: float,
    lambda_keypoints: float,
    ignore_invisible: bool = False,
) -> dict[str, Tensor]:
    """Weighted HAB / PAB terms ``{"hab": λ_m·MSE(mask), "pab": λ_k·Σ_g K_g/K·MSE_g}``.

    ``mask``: (B, H, W) {0, 1}; ``keypoints``: (B, 17, 3); predictions (B, 1, h, w) and
    (B, K, h, w) with channels in the groups' order. A prediction of another size than the image
    is compared with the area-averaged mask and Gaussians on its own grid.
    """
    terms: dict[str, Tensor] = {}
    if mask_pred is not None and mask is not None:
        target = mask.to(mask_pred.dtype).unsqueeze(1)  # (B, 1, H, W)
        if target.shape[-2:] != mask_pred.shape[-2:]:
            target = F.interpolate(target, size=mask_pred.shape[-2:], mode="area")
        terms["hab"] = lambda_mask * F.mse_loss(mask_pred.float(), target.float())
    if heatmap_pred is not None and keypoints is not None:
        order = [k for g in groups for k in g]
        kp = keypoints[:, order]  # (B, K, 3) in the prediction's channel order
        target = gaussian_heatmaps(kp, tuple(heatmap_pred.shape[-2:]), image_size, sigma)
        sq = (heatmap_pred.float() - target) ** 2  # (B, K, h, w)
        if ignore_invisible:
            weight = (kp[..., 2] > 0).float()[..., None, None].expand_as(sq)
        else:
            weight = torch.ones_like(sq)
        total, start = sq.new_zeros(()), 0
        for g in groups:  # MSE per group, weighted K_g / K (DAAF-BoT KeyptLoss)
            stop = start + len(g)
            w = weight[:, start:stop]
            group_mse = (sq[:, start:stop] * w).sum() / w.sum().clamp_min(1.0)
            total = total + len(g) / len(order) * group_mse
            start = stop
        terms["pab"] = lambda_keypoints * total
    return terms


@register_model("daaf")
class DAAF(BoT):
    """BoT trained with DAAF's holistic and partial attention branches (Chen et al. 2020, Fig. 2).

    Eval mode: BoT's embedding, BoT's parameters and FLOPs (the branches do not run). Train mode:
    BoT's dict plus ``"mask"`` (B, 1, H', W') and ``"keypoints"`` (B, K, H', W') predictions,
    which :meth:`extra_losses` compares with the batch's ``mask`` and ``keypoints``.
    ``H' = 16·h₄`` — the input size for the usual last stride 1.
    """

    config_class = DAAFConfig

    def __init__(self, config: DAAFConfig) -> None:
        super().__init__(config)
        self.config: DAAFConfig = config
        self.keypoint_groups = _resolve_groups(config.keypoint_groups)
        dim = self.backbone.num_features
        width, relu = config.decoder_channels, config.decoder_relu
        self.hab: HolisticAttentionBranch | None = None
        self.pab: PartialAttentionBranch | None = None
        if config.hab:
            bb = self.backbone
            stages = [bb.layer2, bb.layer3, bb.layer4]
            self.hab = HolisticAttentionBranch(stages, dim, width, relu, config.decoder_steps)
            _init_normal(self.hab.decoder, config.decoder_init_std)
            _init_normal(self.hab.head, config.decoder_init_std)
        if config.pab:
            self.pab = PartialAttentionBranch(
                dim, self.keypoint_groups, width, relu, config.group_channels, config.decoder_steps
            )
            _init_normal(self.pab, config.decoder_init_std)
        fields = (("mask",) if config.hab else ()) + (("keypoints",) if config.pab else ())
        self.train_fields = fields  # type: ignore[misc]  # per instance: what the branches need
        branches = {Capability.BRANCH_OUTPUTS} if config.hab or config.pab else set()
        shuffle = {Capability.CONV_SHUFFLE} if config.pab else set()
        self.capabilities = BoT.capabilities | branches | shuffle  # per instance, as built

    # -- inference = BoT ---------------------------------------------------------------------
    def inference_model(self) -> BoT:
        """The BoT this model wraps, *sharing* ``backbone``, ``pool`` and ``head`` with it.

        Its parameters, FLOPs and embeddings are those of ``self`` in eval mode; use it to
        export a plain BoT checkpoint or to count inference cost.
        """
        fields = {f: getattr(self.config, f) for f in BoTConfig.field_names()}
        bot = BoT(BoTConfig(**{**fields, "pretrained": None}))
        bot.backbone, bot.pool, bot.head = self.backbone, self.pool, self.head
        return bot.train(self.training)

    def inference_parameters(self) -> int:
        """Parameters of the wrapped BoT (backbone + BNNeck head, ID classifier included).

        The branches (``hab``, ``pab``) are not counted: they never run in eval mode.
        """
        return sum(p.numel() for m in (self.backbone, self.head) for p in m.parameters())

    # -- training ----------------------------------------------------------------------------
    def forward(self, images: Tensor) -> Tensor | TrainOutput:
        """Eval: BoT's embedding; train: BoT's dict plus the branches' ``mask`` / ``keypoints``."""
        if not self.training:
            return super().forward(images)  # exactly BoT
        bb = self.backbone
        x1 = bb.layer1(bb.forward_stem(images))  # (B, C1, H/4, W/4)
        x4 = bb.layer4(bb.layer3(bb.layer2(x1)))  # (B, C, H/16, W/16)
        out: dict[str, Tensor] = dict(self.head(self.pool(x4)))  # type: ignore[arg-type]
        extra: list[Tensor] = []
        if self.hab is not None:
            out["mask"] = self.hab(x1)  # (B, 1, H', W')
            extra.append(out["mask"])
        if self.pab is not None:
            out["keypoints"] = self.pab(x4)  # (B, K, H', W')
            extra.append(out["keypoints"])
        if extra:
            out["features"] = tie_outputs(out["features"], *extra)
        return out  # type: ignore[return-value]

    def extra_losses(self, output: TrainOutput, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """``{"hab": 20·MSE(mask), "pab": 65·Σ_g K_g/K·MSE_g(Gaussians)}`` (weights from config)."""
        cfg = self.config
        size = tuple(batch["image"].shape[-2:]) if "image" in batch else cfg.input_size
        return daaf_losses(
            output.get("mask"),  # type: ignore[arg-type]
            output.get("keypoints"),  # type: ignore[arg-type]
            batch.get("mask"),
            batch.get("keypoints"),
            groups=self.keypoint_groups,
            image_size=size,  # type: ignore[arg-type]
            sigma=cfg.heatmap_sigma,
            lambda_mask=cfg.lambda_mask,
            lambda_keypoints=cfg.lambda_keypoints,
            ignore_invisible=cfg.ignore_invisible,
        )

    # -- the branches on demand (explainers) -------------------------------------------------
    @property
    def keypoint_order(self) -> list[int]:
        """COCO index of each ``branch_outputs()["keypoints"]`` channel (empty without PAB)."""
        return [] if self.pab is None else list(self.pab.keypoint_order)

    def conv_shuffle(self, layer4: Tensor) -> list[list[Tensor]]:
        """PAB's 1×1-conv shuffle (Fig. 9–10): ``[i][j] = conv_j(decode(group i of layer4))``,
        each (B, K_j, H', W'); declared as ``Capability.CONV_SHUFFLE`` when PAB is on."""
        if self.pab is None:
            raise ValueError("this DAAF model was built without its partial attention branch")
        return self.pab.shuffle(layer4)

    def branch_outputs(self, images: Tensor) -> dict[str, Tensor]:
        """Run the training branches in the current mode and grad mode (Fig. 7 / 8).

        Returns ``layer1`` (HAB input), ``layer4`` (PAB input), ``mask`` (B, 1, H', W') if HAB
        is on and ``keypoints`` (B, K, H', W') — channels in ``pab.keypoint_order`` — if PAB is
        on. Use ``model.eval()`` and ``torch.no_grad()`` for display.
        """
        bb = self.backbone
        x1 = bb.layer1(bb.forward_stem(images))
        x4 = bb.layer4(bb.layer3(bb.layer2(x1)))
        out = {"layer1": x1, "layer4": x4}
        if self.hab is not None:
            out["mask"] = self.hab(x1)
        if self.pab is not None:
            out["keypoints"] = self.pab(x4)
        return out
