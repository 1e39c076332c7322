"""RGA-SC: relation-aware global attention after each ResNet stage, BoT-style BNNeck head.

Zhang, Lan, Zeng, Jin, Chen, "Relation-Aware Global Attention for Person Re-identification",
CVPR 2020 (arXiv 1904.02998) and its supplementary (Table 1: one attention module after each of
conv2_x .. conv5_x, 256×128 input, last stride 1); code ``microsoft/Relation-Aware-Global-
Attention-Networks`` @ ``cdc9965``, ``reid/models/models_utils/rga_modules.py`` and
``rga_branches.py`` (modules.md §1). We follow the code, which adds BatchNorms the paper's
equations leave out:

* **Spatial (RGA-S)**, nodes = the ``N = h·w`` positions. ``θ, φ``: 1×1 conv C→C/8 + BN + ReLU;
  affinity ``R = θᵀφ`` (N×N, no scaling, no softmax); relation vector of position i
  ``r_i = [R(i,:), R(:,i)]`` (2N values) embedded 2N→N/8 (``gg_spatial``); unary term: C→C/8
  embedding averaged over channels (``gx_spatial``); ``y_i = [unary; relation]`` (1 + N/8);
  ``W_spatial``: 1×1 conv → (1 + N/8)/8, BN, ReLU, 1×1 conv → 1, BN(1); map ``a = σ(·)``, (B, 1,
  h, w); ``x ← a ⊙ x``.
* **Channel (RGA-C)**, nodes = the C channels, each an N-vector, on the spatially re-weighted x
  (SC = spatial then channel, in one module): the same with N and C exchanged (``θ, φ``:
  N→N/8, relation 2C→C/8, unary N→N/8 averaged), map (B, C).

Because every relation embedding has ``N`` input channels, a module only works at the feature
size it was built for: the model is built for ``config.input_size`` and any other input size
fails with :class:`InputSizeError` naming the size it was built for.

Ablations (config): ``spatial`` / ``channel`` switches give RGA-S and RGA-C; ``relations=False``
is the supplementary's "RGA-SC w/o Rel." (Fig. 1): no affinity, the attention MLP sees only the
unary embedding — we keep its C/8 (N/8) channels instead of averaging them to one value, which
would leave the MLP a scalar input (the text does not say which); ``attention="cbam"`` replaces
each module by CBAM (Woo et al. ECCV 2018: channel MLP on avg- and max-pooled features, ratio
16, then a 7×7 conv + BN on the channel mean and max, each sigmoid-gated), the "CBAM" column of
the supplementary's Fig. 1. ``stages`` switches each of the four modules on or off.

Cost, measured with :func:`attention_costs` (``torch.utils.flop_counter``: FLOPs = 2 ×
multiply-adds of convolutions and matrix products; one 256×128 image, eval mode;
``benchmarks/bench_rga_cost.py`` prints these tables). ResNet-50, width 64, last stride 1
(the backbone alone: 23.51 M parameters, 8.107 GFLOPs):

    ======  ==========  ======  =======================  =======================
    module  params      GFLOPs  % of backbone FLOPs      feature map
    ======  ==========  ======  =======================  =======================
    att1    2,673,172   5.545   68.4 %                   64×32, C 256, N 2048
    att2      329,796   0.404    5.0 %                   32×16, C 512, N 512
    att3      668,908   0.693    8.6 %                   16×8, C 1024, N 128
    att4    2,642,220   4.900   60.4 %                   16×8, C 2048, N 128
    all     6,314,096   11.54  142.4 % (model 19.65 GF)  (+26.9 % parameters)
    ======  ==========  ======  =======================  =======================

Two embeddings dominate: att1's spatial relation embedding (2N = 4096 → 256 channels at 2048
positions, 4.3 GFLOPs whatever the backbone width) and att4's channel relation embedding (2C =
4096 → 256 at 2048 channel nodes, 4.3 GFLOPs). Ablations on ResNet-50, all four modules:
RGA-C (``spatial=False``) +75.5 % FLOPs, RGA-S (``channel=False``) +66.8 %, "w/o Rel." +6.9 %,
CBAM +0.04 % FLOPs / +0.70 M parameters.

CPU card: ResNet-18, width 16 (backbone 0.702 M parameters, 0.278 GFLOPs). att1 alone would
be 2.63 M parameters and 4.396 GFLOPs (16× the backbone; its 2048×2048 affinity and 4096×64×32
relation tensor take 16 MB and 32 MB of activations per image), so the card is trained with
``stages=(False, True, True, True)``: att2 165,580 parameters / 0.077 GFLOPs (+27.6 %), att3
13,048 / 0.003, att4 20,820 / 0.006 — 0.199 M parameters and +31 % FLOPs in all (0.364
GFLOPs). The full configuration builds and is tested (``tests/models/test_rga.py``).

Where we differ from the code: the stem keeps its ReLU (as :class:`~workbench.models.bot.BoT`);
embedding widths are clamped to at least 1 (the code's ``(1 + N/8) // 8`` is 0 for small maps);
the sigmoid runs on the (B, 1, h, w) map before broadcasting, not on the expanded tensor; the
feature sizes come from the input size and the stage strides instead of ``H // 4`` etc. (so
``last_stride=2`` also builds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from workbench.models.base import LayerInfo, ModelConfigError
from workbench.models.bot import BoTConfig
from workbench.models.heads import PooledBNNeckModel
from workbench.models.registry import register_model
from workbench.models.resnet import backbone_from_config

__all__ = [
    "RGA",
    "CBAMModule",
    "InputSizeError",
    "RGAConfig",
    "RGAModule",
    "attention_costs",
]


class InputSizeError(ValueError):
    """An input of another size than the one a fixed-size model was built for."""


def _embed(inp: int, out: int) -> nn.Sequential:
    """1×1 conv (no bias) → BN → ReLU: the code's embedding functions."""
    return nn.Sequential(nn.Conv2d(inp, out, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU())


def _attention_mlp(inp: int, down_ratio: int) -> nn.Sequential:
    """``W_spatial`` / ``W_channel``: 1×1 conv → inp/down, BN, ReLU, 1×1 conv → 1, BN(1)."""
    mid = max(1, inp // down_ratio)
    return nn.Sequential(
        nn.Conv2d(inp, mid, 1, bias=False),
        nn.BatchNorm2d(mid),
        nn.ReLU(),
        nn.Conv2d(mid, 1, 1, bias=False),
        nn.BatchNorm2d(1),
    )


class RGAModule(nn.Module):
    """One RGA module for (B, C, h, w) features of a fixed ``size = (h, w)``.

    Args:
        channels: C.
        size: (h, w) it is built for (the relation embeddings have ``2·h·w`` inputs).
        spatial, channel: use RGA-S, RGA-C (both: RGA-SC, spatial first).
        relations: use the relation features (False: "w/o Rel." ablation).
        cha_ratio, spa_ratio, down_ratio: the code's 8, 8, 8.
        name: used in error messages (``"att1"``).

    Submodules whose forward output is the attention map (hook them): ``spatial_map`` (B, 1, h,
    w) and ``channel_map`` (B, C), both after the sigmoid, in (0, 1).
    """

    def __init__(
        self,
        channels: int,
        size: tuple[int, int],
        *,
        spatial: bool = True,
        channel: bool = True,
        relations: bool = True,
        cha_ratio: int = 8,
        spa_ratio: int = 8,
        down_ratio: int = 8,
        name: str = "RGA module",
    ) -> None:
        super().__init__()
        if not (spatial or channel):
            raise ModelConfigError("an RGA module needs spatial=True or channel=True")
        self.channels, self.size, self.name = channels, tuple(size), name
        self.use_spatial, self.use_channel, self.relations = spatial, channel, relations
        n = size[0] * size[1]
        c_inter = max(1, channels // cha_ratio)
        n_inter = max(1, n // spa_ratio)
        self.c_inter, self.n_inter = c_inter, n_inter
        if spatial:
            self.gx_spatial = _embed(channels, c_inter)  # unary
            if relations:
                self.theta_spatial = _embed(channels, c_inter)
                self.phi_spatial = _embed(channels, c_inter)
                self.gg_spatial = _embed(2 * n, n_inter)  # relation vector 2N → N/8
                ys = 1 + n_inter
            else:
                ys = c_inter
            self.W_spatial = _attention_mlp(ys, down_ratio)
            self.spatial_map = nn.Sigmoid()
        if channel:
            self.gx_channel = _embed(n, n_inter)
            if relations:
                self.theta_channel = _embed(n, n_inter)
                self.phi_channel = _embed(n, n_inter)
                self.gg_channel = _embed(2 * channels, c_inter)  # 2C → C/8
                yc = 1 + c_inter
            else:
                yc = n_inter
            self.W_channel = _attention_mlp(yc, down_ratio)
            self.channel_map = nn.Sigmoid()

    def spatial_descriptor(self, x: Tensor) -> Tensor:
        """``y`` of every position: (B, 1 + N/8, h, w) (w/o relations: (B, C/8, h, w))."""
        b, _, h, w = x.shape
        unary = self.gx_spatial(x)  # (B, c', h, w)
        if not self.relations:
            return unary
        theta = self.theta_spatial(x).flatten(2).transpose(1, 2)  # (B, N, c')
        phi = self.phi_spatial(x).flatten(2)  # (B, c', N)
        g = torch.bmm(theta, phi)  # (B, N, N), g[i, j] = θ_i · φ_j
        g_in = g.transpose(1, 2).reshape(b, h * w, h, w)  # channel q at p: g[p, q]
        g_out = g.reshape(b, h * w, h, w)  # channel q at p: g[q, p]
        relation = self.gg_spatial(torch.cat((g_in, g_out), dim=1))  # (B, N/8, h, w)
        return torch.cat((unary.mean(dim=1, keepdim=True), relation), dim=1)

    def channel_descriptor(self, x: Tensor) -> Tensor:
        """``y`` of every channel: (B, 1 + C/8, C, 1) (w/o relations: (B, N/8, C, 1))."""
        xc = x.flatten(2).transpose(1, 2).unsqueeze(-1)  # (B, N, C, 1): N-dim node features
        unary = self.gx_channel(xc)  # (B, n', C, 1)
        if not self.relations:
            return unary
        theta = self.theta_channel(xc).squeeze(-1).transpose(1, 2)  # (B, C, n')
        phi = self.phi_channel(xc).squeeze(-1)  # (B, n', C)
        g = torch.bmm(theta, phi)  # (B, C, C)
        joint = torch.cat((g.transpose(1, 2).unsqueeze(-1), g.unsqueeze(-1)), dim=1)  # (B,2C,C,1)
        relation = self.gg_channel(joint)  # (B, c', C, 1)
        return torch.cat((unary.mean(dim=1, keepdim=True), relation), dim=1)

    sink: dict[str, Tensor] | None = None  # RGA.feature_maps collects the maps here

    def forward_maps(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """``(output, {"spatial": (B, 1, h, w), "channel": (B, C)})`` (the maps it uses)."""
        if tuple(x.shape[-2:]) != self.size:
            h, w = self.size
            raise InputSizeError(
                f"{self.name} was built for {h}×{w} feature maps, got "
                f"{x.shape[-2]}×{x.shape[-1]}; RGA relation modules have a fixed size"
            )
        maps: dict[str, Tensor] = {}
        if self.use_spatial:
            a = self.spatial_map(self.W_spatial(self.spatial_descriptor(x)))  # (B, 1, h, w)
            maps["spatial"] = a
            x = a * x
        if self.use_channel:
            b, c = x.shape[:2]
            ac = self.channel_map(self.W_channel(self.channel_descriptor(x)).reshape(b, c))
            maps["channel"] = ac  # (B, C)
            x = ac[:, :, None, None] * x
        return x, maps

    def forward(self, x: Tensor) -> Tensor:
        """The attended features; the attention maps go to the sink (hooks see them)."""
        out, maps = self.forward_maps(x)
        if self.sink is not None:
            self.sink.update(maps)
        return out


class CBAMModule(nn.Module):
    """CBAM (Woo et al. 2018): channel attention then spatial attention, sigmoid gates.

    Channel: shared MLP C→C/ratio→C on the average- and max-pooled feature, summed; spatial:
    ``[mean_c x, max_c x]`` → k×k conv (no bias) → BN(1). No relations, works at any size.
    ``channel_map`` (B, C) and ``spatial_map`` (B, 1, h, w) are the hookable maps.
    """

    def __init__(
        self,
        channels: int,
        *,
        spatial: bool = True,
        channel: bool = True,
        ratio: int = 16,
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        if not (spatial or channel):
            raise ModelConfigError("a CBAM module needs spatial=True or channel=True")
        self.use_spatial, self.use_channel = spatial, channel
        self.sink: dict[str, Tensor] | None = None
        if channel:
            mid = max(1, channels // ratio)
            self.mlp = nn.Sequential(nn.Linear(channels, mid), nn.ReLU(), nn.Linear(mid, channels))
            self.channel_map = nn.Sigmoid()
        if spatial:
            self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
            self.bn = nn.BatchNorm2d(1)
            self.spatial_map = nn.Sigmoid()

    def forward_maps(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The attended features and the gates used: ``channel`` (B, C), ``spatial`` (B, 1, h, w)."""
        maps: dict[str, Tensor] = {}
        if self.use_channel:
            ac = self.channel_map(self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3))))
            maps["channel"] = ac  # (B, C)
            x = ac[:, :, None, None] * x
        if self.use_spatial:
            pooled = torch.cat((x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)), 1)
            a = self.spatial_map(self.bn(self.conv(pooled)))  # (B, 1, h, w)
            maps["spatial"] = a
            x = a * x
        return x, maps

    def forward(self, x: Tensor) -> Tensor:
        """The attended features; the attention maps go to the sink (hooks see them)."""
        out, maps = self.forward_maps(x)
        if self.sink is not None:
            self.sink.update(maps)
        return out


@dataclass
class RGAConfig(BoTConfig):
    """Configuration of :class:`RGA`: BoT's backbone and head fields plus the attention.

    Attributes:
        attention: ``"rga"`` (the paper) or ``"cbam"`` (supplementary Fig. 1 comparison).
        spatial, channel: spatial / channel attention on (both = RGA-SC; one = RGA-S, RGA-C).
        relations: relation features (False = "RGA-SC w/o Rel.").
        stages: module after layer1..layer4 on/off (CPU cards drop the first: 4.4 GFLOPs).
        cha_ratio, spa_ratio, down_ratio: RGA's s1 (C/8, N/8) and s2 (MLP bottleneck), all 8.
        cbam_ratio, cbam_kernel: CBAM's channel reduction (16) and spatial kernel (7).
    """

    attention: Literal["rga", "cbam"] = "rga"
    spatial: bool = True
    channel: bool = True
    relations: bool = True
    stages: tuple[bool, bool, bool, bool] = (True, True, True, True)
    cha_ratio: int = 8
    spa_ratio: int = 8
    down_ratio: int = 8
    cbam_ratio: int = 16
    cbam_kernel: int = 7

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.stages, list):
            self.stages = tuple(self.stages)  # type: ignore[assignment]
        if len(self.stages) != 4 or not all(isinstance(s, bool) for s in self.stages):
            raise ModelConfigError(
                f"stages must be 4 booleans (module after layer1..layer4), got {self.stages!r}"
            )
        if self.attention not in ("rga", "cbam"):
            raise ModelConfigError(f"attention must be 'rga' or 'cbam', got {self.attention!r}")
        if not (self.spatial or self.channel):
            raise ModelConfigError("spatial and channel are both False: no attention left")
        for f in ("cha_ratio", "spa_ratio", "down_ratio", "cbam_ratio", "cbam_kernel"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                raise ModelConfigError(f"{f} must be a positive int, got {v!r}")

    @classmethod
    def tiny(cls, **overrides: Any) -> RGAConfig:
        """ResNet-18 width 16, 8 classes, 64×32 input, all four modules (~0.8 M parameters)."""
        base: dict[str, Any] = {
            "backbone": "resnet18",
            "width": 16,
            "num_classes": 8,
            "input_size": (64, 32),
        }
        return cls(**{**base, **overrides})


@register_model("rga")
class RGA(PooledBNNeckModel):
    """ResNet with an attention module after each stage, GAP, BNNeck (supplementary Table 1).

    Layer names: ``stem``, then per stage k ``layer{k}`` (the stage output, before its module)
    and, where module k exists, ``attention{k}`` (its spatial map, (B, 1, h, w) in (0, 1)),
    ``channel_attention{k}`` (its channel weights, (B, C)) and ``att{k}`` (the module output);
    then ``global`` and ``embedding``. Built for ``config.input_size``.

    Example:
        >>> model = RGA(RGAConfig.tiny()).eval()
        >>> model.feature_maps(torch.randn(2, 3, 64, 32))["attention4"].shape  # doctest: +SKIP
        torch.Size([2, 1, 4, 2])
    """

    config_class = RGAConfig

    def __init__(self, config: RGAConfig) -> None:
        super().__init__(config)
        self.config: RGAConfig = config
        self.backbone = backbone_from_config(config)
        height, width = config.input_size
        info = {row.name: row for row in self.backbone.stage_info}
        rows = [info["stem"].prefixed("backbone")]
        self.fixed_size = config.attention == "rga" and any(config.stages)
        self.attention_names: list[str] = []
        for k, enabled in enumerate(config.stages, start=1):
            stage = info[f"layer{k}"]
            rows.append(stage.prefixed("backbone"))
            if not enabled:
                continue
            red = stage.reduction or 1
            size = (math.ceil(height / red), math.ceil(width / red))
            module: RGAModule | CBAMModule
            if config.attention == "rga":
                module = RGAModule(
                    stage.channels,
                    size,
                    spatial=config.spatial,
                    channel=config.channel,
                    relations=config.relations,
                    cha_ratio=config.cha_ratio,
                    spa_ratio=config.spa_ratio,
                    down_ratio=config.down_ratio,
                    name=f"att{k} (after layer{k})",
                )
            else:
                module = CBAMModule(
                    stage.channels,
                    spatial=config.spatial,
                    channel=config.channel,
                    ratio=config.cbam_ratio,
                    kernel_size=config.cbam_kernel,
                )
            self.add_module(f"att{k}", module)
            self.attention_names.append(f"att{k}")
            maps = [
                LayerInfo(f"attention{k}", 1, red, f"att{k}.spatial_map", "attention", False),
                LayerInfo(
                    f"channel_attention{k}",
                    stage.channels,
                    None,
                    f"att{k}.channel_map",
                    "attention",
                    batch_may_grow=False,  # weights of the features they gate
                ),
            ]
            if config.attention == "cbam":
                maps.reverse()  # CBAM: channel gate first
            use = {"attention": config.spatial, "channel_attention": config.channel}
            rows += [m for m in maps if use[m.name.rstrip("1234")]]
            rows.append(LayerInfo(f"att{k}", stage.channels, red, f"att{k}", "attention"))
        self._init_attention()
        rows += self._build_head(self.backbone.num_features, config, neck=config.neck)
        if self.attention_module(4) is not None:
            self.pooled_layer = "att4"
        self.layer_info = rows

    def _init_attention(self) -> None:
        for name in self.attention_names:
            for m in self.get_submodule(name).modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    def attention_module(self, k: int) -> RGAModule | CBAMModule | None:
        """Module after layer ``k`` (1..4), or None where ``stages`` leaves it out."""
        return getattr(self, f"att{k}", None)

    def check_input(self, images: Tensor) -> None:
        """Fail clearly on an input of another size than ``config.input_size``."""
        if not self.fixed_size:
            return
        h, w = self.config.input_size
        if tuple(images.shape[-2:]) != (h, w):
            raise InputSizeError(
                f"this RGA model was built for {h}×{w} inputs (config.input_size), got "
                f"{images.shape[-2]}×{images.shape[-1]}: its relation modules have a fixed "
                f"size; resize the images to {h}×{w} or build the model with "
                f"input_size=({images.shape[-2]}, {images.shape[-1]})"
            )

    def _run(self, images: Tensor, maps: dict[str, Tensor] | None) -> Tensor:
        self.check_input(images)
        x = self.backbone.forward_stem(images)
        if maps is not None:
            maps["stem"] = x
        for k in range(1, 5):
            x = getattr(self.backbone, f"layer{k}")(x)
            if maps is not None:
                maps[f"layer{k}"] = x
            module = self.attention_module(k)
            if module is None:
                continue
            if maps is None:
                x = module(x)
                continue
            inner: dict[str, Tensor] = {}
            module.sink = inner  # called as a module, so forward hooks on att{k} fire
            try:
                x = module(x)
            finally:
                module.sink = None
            if maps is not None:
                order = ["channel", "spatial"] if isinstance(module, CBAMModule) else inner
                for key in order:
                    if key in inner:
                        name = "attention" if key == "spatial" else "channel_attention"
                        maps[f"{name}{k}"] = inner[key]
                maps[f"att{k}"] = x
        return x


def attention_costs(config: RGAConfig, batch: int = 1) -> list[dict[str, Any]]:
    """Parameters and FLOPs of each attention module and of the whole model, eval mode.

    Rows ``{"module", "params", "flops"}`` for ``backbone`` (stem + stages), ``att1``..
    ``att4`` (present ones), ``head`` and ``total``; FLOPs from
    :class:`torch.utils.flop_counter.FlopCounterMode` (2 per multiply-add; convolutions and
    matrix products only) for ``batch`` images of ``config.input_size``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model = RGA(config).eval()
    images = torch.zeros(batch, 3, *config.input_size)
    counter = FlopCounterMode(display=False, depth=None)
    with torch.no_grad(), counter:
        model(images)
    flops = counter.get_flop_counts()

    root = type(model).__name__

    def module_flops(path: str) -> int:
        key = f"{root}.{path}"
        if key in flops:  # the module itself was called
            return int(sum(flops[key].values()))
        # not called as a whole (the backbone runs stage by stage): sum its direct children
        depth = key.count(".") + 1
        return int(
            sum(
                sum(v.values())
                for k, v in flops.items()
                if k.startswith(key + ".") and k.count(".") == depth
            )
        )

    rows = []
    for name in ["backbone", *model.attention_names, "head"]:
        module = model.get_submodule(name)
        rows.append(
            {
                "module": name,
                "params": sum(p.numel() for p in module.parameters()),
                "flops": module_flops(name),
            }
        )
    rows.append(
        {
            "module": "total",
            "params": sum(p.numel() for p in model.parameters()),
            "flops": int(sum(sum(v.values()) for k, v in flops.items() if k == "Global")),
        }
    )
    return rows


def format_costs(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of :func:`attention_costs` rows, overhead relative to the backbone."""
    base = next(r for r in rows if r["module"] == "backbone")
    lines = ["| module | params | GFLOPs | % of backbone FLOPs |", "|---|---|---|---|"]
    for r in rows:
        pct = 100.0 * r["flops"] / max(base["flops"], 1)
        lines.append(f"| {r['module']} | {r['params']:,} | {r['flops'] / 1e9:.3f} | {pct:.1f} % |")
    return "\n".join(lines)
