"""IANet: Interaction-and-Aggregation blocks (SIA + CIA) in a last-stride-1 ResNet.

Hou, Ma, Chang, Gu, Shan, Chen, "Interaction-and-Aggregation Network for Person
Re-identification", CVPR 2019 (arXiv 1907.08435); the first author's code
``blue-blue272/ImgReID-IAnet`` ``models/IA.py`` (``IABlock2D``), ``models/IAResnet.py``
(modules.md §4). IA blocks follow stage 2 and stage 3 (``layer2``, ``layer3``), layer4 has stride 1,
and the head is BoT's GAP → BNNeck (as the code's GAP → BN1d → Linear; eval gives the BN feature).

**SIA** (paper Sec. 3.1) on a (B, C, H, W) map F, M = H·W positions, index ``p = y·W + x``:

* multi-context appearance relations, paper Eq. 1: for a K×K patch around each position,
  ``logit_K[i, j] = (1/K²) Σ_{k ∈ patch} p_{i,k}ᵀ p_{j,k} / √C`` — the K=1 dot products
  ``G[i+δ, j+δ]`` summed over the patch offsets δ (zero outside the map), so multi-context costs
  no extra multiplications (paper Sec. 4.3). K = 1, 2, 3; K = 2 uses the offsets {0, 1}² (the
  bottom-right patch). ``S_K = softmax_j(logit_K)``. Two scalings the paper does not have: 1/√C
  (the code's; without it a 512-channel map gives O(10²) logits and one-hot rows) and the patch
  mean 1/K² (with the plain sum a 3×3 patch has 9× larger logits);
* location relation, Eqs. 3–4: a Gaussian ``l_ij ∝ exp(−(x_j−x_i)²/2σ_x² − (y_j−y_i)²/2σ_y²)``,
  rows normalised; per-stage σ from the code: (σ_x, σ_y) = (10, 20) after layer2, (5, 10) after
  layer3 (for 32×16 and 16×8 maps, i.e. 256×128 input); a constant buffer;
* semantic relation, Eqs. 2 and 5: the K appearance maps and the location map fused by
  **element-wise product**, normalised over j.
* aggregation, Eq. 6: ``E = F Sᵀ``; block ``Y = BN(E) + F`` (Eq. 9), BN weight *and* bias zero at
  initialisation, so a fresh block is the identity.

How the product is normalised (``fusion``; modules.md §4.4):

* ``"product"`` (**default**): ``S ∝ (Π_K S_K)^{1/N} ⊙ S^L``, renormalised over j — the product
  of the N appearance maps (as a geometric mean, so N maps do not sharpen S N-fold) and the
  location map, computed in log space as ``softmax_j(mean_K logit_K + log S^L)``. The product
  then keeps the sharpness of its factors, so a row of S is a visible receptive field. Measured
  on the layer2/layer3 features of the shipped BoT card (8 synthetic test images, 256×128): the
  mean row entropy is 0.77 / 0.51 of uniform (perplexity 123 of 512 / 12 of 128 positions);
  the plain product of the three maps gives 0.21 / 0.04 (3.7 / 1.2 positions: nearly one-hot);
* ``"softmax"`` (the paper's Eqs. 2 and 5 read literally, and the code's ``softmax(L ⊙ A)``): a
  softmax of the product of probabilities. Every entry of that product is ≤ max(S^L) ≈ 0.004–0.015,
  so the second softmax is within ~1 % of uniform and SIA degenerates to a broadcast global
  average. Kept as an option for the comparison.

**CIA** (Sec. 3.2) on the SIA output Z: ``C = softmax_row(Z Zᵀ)`` (C×C, no scaling, as paper
Eq. 7 and code; computed in fp32), ``E = C Z``, ``out = BN(E) + Z`` (zero BN). The unscaled Gram
has O(10²) entries, so the rows are nearly one-hot on the channel itself (modules.md §4.4; on the
BoT card's features the row perplexity is 1.01 of 32 / 1.07 of 64 channels) and CIA acts as a
learned per-channel rescale; ``cia_scaled=True`` divides the Gram by √M (not in paper or code).

Explanation API (all per IA block ``n`` ∈ {2, 3}, i.e. after ``layer{n}``):

* ``feature_maps(images)["relation{n}"]`` — the semantic relation map S as a (B, M, H, W)
  tensor: **channel p is the relation-map row of query position p = y·W + x** (which positions
  p aggregates, its "receptive field"), already shaped as an H×W map. ``S = maps[...].flatten(2)``
  is the (B, M, M) matrix (rows sum to 1). A forward hook on ``get_layer(model, "relation2")``
  (module ``ia2.sia.relation``, a :class:`SpatialRelation`) sees the same tensor.
* ``feature_maps(images)["ia{n}"]`` — the IA block output (B, C, H, W).
* ``model.relation_maps(images)`` → ``{"relation2": (B, M, M), "channel2": (B, C, C), ...}``;
  the CIA channel map is also the output of module ``ia{n}.cia.relation`` (a
  :class:`ChannelRelation`), hookable.
* ``model.ia2.sia.relation.components(F)`` → the parts of S: ``location`` (M, M), ``appearance1``
  .. (B, M, M) per K, ``logits`` (pre-normalisation), ``semantic`` (= S).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from workbench.models.base import (
    LayerInfo,
    ModelConfig,
    ModelConfigError,
)
from workbench.models.heads import PooledBNNeckModel
from workbench.models.registry import register_model
from workbench.models.resnet import (
    backbone_from_config,
    check_backbone_fields,
)

__all__ = [
    "CIABlock",
    "ChannelRelation",
    "IABlock",
    "IANet",
    "IANetConfig",
    "SIABlock",
    "SpatialRelation",
    "context_logits",
    "location_relation",
    "relation_entropy",
]

FUSIONS = ("product", "softmax")
IA_STAGES = ("layer1", "layer2", "layer3", "layer4")
#: the code's (σ_x, σ_y) per stage for 256×128 input (32×16 after layer2, 16×8 after layer3)
DEFAULT_SIGMAS: dict[str, tuple[float, float]] = {
    "layer1": (20.0, 40.0),  # not in the code: the layer2 values scaled by the 2× larger map
    "layer2": (10.0, 20.0),
    "layer3": (5.0, 10.0),
    "layer4": (5.0, 10.0),
}


def location_log_relation(h: int, w: int, sigma_x: float, sigma_y: float) -> Tensor:
    """(M, M) ``−(x_j−x_i)²/2σ_x² − (y_j−y_i)²/2σ_y²``, M = h·w, index ``y·w + x`` (fp32)."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    x, y = xs.flatten().float(), ys.flatten().float()
    dx = x[None, :] - x[:, None]
    dy = y[None, :] - y[:, None]
    return -(dx**2) / (2 * sigma_x**2) - (dy**2) / (2 * sigma_y**2)


def location_relation(h: int, w: int, sigma_x: float, sigma_y: float) -> Tensor:
    """(M, M) row-normalised Gaussian location relation S^L (paper Eqs. 3–4)."""
    return torch.softmax(location_log_relation(h, w, sigma_x, sigma_y), dim=1)


def context_logits(gram: Tensor, h: int, w: int, k: int) -> Tensor:
    """Multi-context appearance logits from the K=1 Gram (B, M, M): Σ over K×K patch offsets.

    ``out[i, j] = Σ_δ gram[i+δ, j+δ]`` with δ = (dy, dx) ∈ patch offsets (``-(k//2) ..``, i.e.
    {-1, 0, 1} for K=3, {0, 1} for K=2), terms outside the map zero (zero-padded patches).
    """
    if k == 1:
        return gram
    b = gram.shape[0]
    g = gram.reshape(b, h, w, h, w)
    lo = -((k - 1) // 2)  # K=2: 0; K=3: -1
    offsets = range(lo, lo + k)
    out = torch.zeros_like(g)
    for dy in offsets:
        for dx in offsets:
            # out[yi, xi, yj, xj] += g[yi+dy, xi+dx, yj+dy, xj+dx] where both in range
            ys_o, ys_i = _shift(h, dy)
            xs_o, xs_i = _shift(w, dx)
            out[:, ys_o, xs_o, ys_o, xs_o] += g[:, ys_i, xs_i, ys_i, xs_i]
    return out.reshape(b, h * w, h * w)


def _shift(n: int, d: int) -> tuple[slice, slice]:
    """Slices (out, in) with ``in = out + d`` inside ``range(n)``."""
    if d >= 0:
        return slice(0, n - d), slice(d, n)
    return slice(-d, n), slice(0, n + d)


def relation_entropy(rows: Tensor) -> Tensor:
    """Mean entropy (nats) of the rows of a (…, M) row-stochastic tensor, fp64."""
    p = rows.double().clamp_min(1e-300)
    return -(p * p.log()).sum(-1).mean()


class SpatialRelation(nn.Module):
    """The SIA semantic relation map; ``forward(F) -> (B, M, H, W)`` (channel p = row p of S).

    No parameters. The location log-relation ``log_location`` (M, M) is a buffer built for the
    (h, w) given at construction; another map size fails with a message.
    """

    def __init__(
        self,
        channels: int,
        size: tuple[int, int],
        sigma: tuple[float, float],
        contexts: tuple[int, ...] = (1, 2, 3),
        fusion: str = "product",
        use_location: bool = True,
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ModelConfigError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        self.channels = channels
        self.size = tuple(size)
        self.sigma = tuple(sigma)
        self.contexts = tuple(contexts)
        self.fusion = fusion
        self.use_location = use_location
        h, w = self.size
        self.register_buffer(
            "log_location", location_log_relation(h, w, *self.sigma), persistent=False
        )

    def _check(self, x: Tensor) -> None:
        if tuple(x.shape[2:]) != self.size:
            raise ValueError(
                f"IANet SIA block built for a {self.size[0]}×{self.size[1]} map (its Gaussian "
                f"location relation is fixed), got {x.shape[2]}×{x.shape[3]}; build the model "
                f"with input_size matching the images"
            )

    def components(self, x: Tensor) -> dict[str, Tensor]:
        """Every intermediate map of S for a (B, C, H, W) input (fp32; (B, M, M) unless noted)."""
        self._check(x)
        _, c, h, w = x.shape
        f = x.float().flatten(2)  # (B, C, M)
        gram = torch.bmm(f.transpose(1, 2), f) / math.sqrt(c)  # (B, M, M)
        out: dict[str, Tensor] = {}
        loc = self.log_location  # (M, M)
        out["location"] = torch.softmax(loc, dim=1)
        logits = torch.zeros_like(gram)
        probs = []
        for k in self.contexts:
            lk = context_logits(gram, h, w, k) / (k * k)  # mean over the K×K patch
            out[f"appearance{k}"] = torch.softmax(lk, dim=2)
            probs.append(out[f"appearance{k}"])
            logits = logits + lk / len(self.contexts)  # geometric mean of the S_K
        if self.fusion == "product":
            if self.use_location:
                logits = logits + loc
            out["logits"] = logits
            out["semantic"] = torch.softmax(logits, dim=2)
        else:  # literal: S^A = softmax(Π S_K), S = softmax(S^A ⊙ S^L)
            prod = probs[0]
            for p in probs[1:]:
                prod = prod * p
            appearance = torch.softmax(prod, dim=2) if len(probs) > 1 else prod
            fused = appearance * out["location"] if self.use_location else appearance
            out["logits"] = fused
            out["semantic"] = torch.softmax(fused, dim=2)
        return out

    def offset_weights(self) -> dict[tuple[int, int], float]:
        """Weight of each patch offset δ in ``mean_K logit_K`` (``"product"`` fusion)."""
        weights: dict[tuple[int, int], float] = {}
        for k in self.contexts:
            lo = -((k - 1) // 2)
            for dy in range(lo, lo + k):
                for dx in range(lo, lo + k):
                    weights[(dy, dx)] = weights.get((dy, dx), 0.0) + 1 / (
                        k * k * len(self.contexts)
                    )
        return weights

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) → (B, M, h, w) relation rows: channel p is S[p, :] over the M = h·w positions."""
        b, _, h, w = x.shape
        if self.fusion != "product":
            s = self.components(x)["semantic"]  # (B, M, M)
            return s.reshape(b, h * w, h, w).to(x.dtype)
        # fast paths, same S as components(): one weighted sum over the patch offsets, no
        # per-K softmax (13 → 9 offsets and 3 fewer (B, M, M) softmaxes for K = 1, 2, 3)
        self._check(x)
        if torch.is_grad_enabled() and x.requires_grad:
            logits = self._offset_logits_stacked(x)
        else:
            logits = self._offset_logits_shifted(x)
        if self.use_location:
            logits = logits + self.log_location
        return torch.softmax(logits, dim=2).reshape(b, h * w, h, w).to(x.dtype)

    def _offset_logits_shifted(self, x: Tensor) -> Tensor:
        """``Σ_δ w_δ gram[i+δ, j+δ]`` as 9 shifted adds of the (B, M, M) Gram (inference).

        Its FLOPs are the one C-channel Gram; its in-place slice adds are slow to differentiate.
        """
        b, c, h, w = x.shape
        f = x.float().flatten(2)  # (B, C, M)
        g = (torch.bmm(f.transpose(1, 2), f) / math.sqrt(c)).reshape(b, h, w, h, w)
        logits = torch.zeros_like(g)
        for (dy, dx), weight in self.offset_weights().items():
            ys_o, ys_i = _shift(h, dy)
            xs_o, xs_i = _shift(w, dx)
            logits[:, ys_o, xs_o, ys_o, xs_o] += weight * g[:, ys_i, xs_i, ys_i, xs_i]
        return logits.reshape(b, h * w, h * w)

    def _offset_logits_stacked(self, x: Tensor) -> Tensor:
        """The same logits as one Gram of offset-stacked features (training).

        ``Σ_δ w_δ Σ_c F[c, i+δ] F[c, j+δ] = Gᵀ G`` with ``G = concat_δ √w_δ · shift_δ(F)``
        (zero-padded shifts, so out-of-map terms vanish as in :func:`context_logits`). A
        (B, 9C, M) bmm whose backward is two bmms; the shifted adds' backward (copies and fills
        of (B, M, M) tensors) was 60 % of an IANet training step.
        """
        _, c, h, w = x.shape
        weights = self.offset_weights()
        pad = max(max(abs(dy), abs(dx)) for dy, dx in weights)
        fp = nn.functional.pad(x.float(), (pad, pad, pad, pad))
        stacked = torch.cat(
            [
                math.sqrt(weight) * fp[:, :, pad + dy : pad + dy + h, pad + dx : pad + dx + w]
                for (dy, dx), weight in weights.items()
            ],
            dim=1,
        ).flatten(2)  # (B, 9C, M)
        return torch.bmm(stacked.transpose(1, 2), stacked) / math.sqrt(c)

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, sigma={self.sigma}, contexts={self.contexts}, "
            f"fusion={self.fusion!r}, use_location={self.use_location}"
        )


def _zero_bn(channels: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels)
    nn.init.zeros_(bn.weight)
    nn.init.zeros_(bn.bias)
    return bn


class SIABlock(nn.Module):
    """``Y = BN(F Sᵀ) + F`` (paper Eqs. 6, 9), S from :class:`SpatialRelation` ``relation``."""

    def __init__(self, relation: SpatialRelation) -> None:
        super().__init__()
        self.relation = relation
        self.bn = _zero_bn(relation.channels)

    def forward(self, x: Tensor) -> Tensor:
        """x + BN(F Sᵀ): every position aggregates the features of its relation row."""
        b, c, h, w = x.shape
        s = self.relation(x).flatten(2).float()  # (B, M, M)
        e = torch.bmm(x.float().flatten(2), s.transpose(1, 2))  # (B, C, M) = F Sᵀ
        return self.bn(e.reshape(b, c, h, w).to(x.dtype)) + x


class ChannelRelation(nn.Module):
    """CIA channel relation ``softmax_row(Z Zᵀ / s)``: (B, C, H, W) → (B, C, C), fp32.

    ``s = 1`` (paper Eq. 7 and the code, ``scaled=False``) or ``s = √M`` (``scaled=True``). No
    parameters.
    """

    def __init__(self, scaled: bool = False) -> None:
        super().__init__()
        self.scaled = scaled

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) → (B, C, C) softmax-normalised channel Gram matrix."""
        z = x.float().flatten(2)  # (B, C, M)
        gram = torch.bmm(z, z.transpose(1, 2))  # (B, C, C)
        if self.scaled:
            gram = gram / math.sqrt(z.shape[2])
        return torch.softmax(gram, dim=2)

    def extra_repr(self) -> str:
        return f"scaled={self.scaled}"


class CIABlock(nn.Module):
    """``out = BN(C Z) + Z`` (paper Eqs. 7–9), C from :class:`ChannelRelation` ``relation``."""

    def __init__(self, channels: int, scaled: bool = False) -> None:
        super().__init__()
        self.relation = ChannelRelation(scaled)
        self.bn = _zero_bn(channels)

    def forward(self, x: Tensor) -> Tensor:
        """x + BN(R F): every channel aggregates the channels it relates to."""
        b, c, h, w = x.shape
        rel = self.relation(x)  # (B, C, C)
        e = torch.bmm(rel, x.float().flatten(2))  # (B, C, M)
        return self.bn(e.reshape(b, c, h, w).to(x.dtype)) + x


class IABlock(nn.Module):
    """SIA then (optionally) CIA (paper Fig. 6a)."""

    def __init__(self, sia: SIABlock, cia: CIABlock | None) -> None:
        super().__init__()
        self.sia = sia
        self.cia = cia

    def forward(self, x: Tensor) -> Tensor:
        """SIA, then CIA when the block has one."""
        y = self.sia(x)
        return self.cia(y) if self.cia is not None else y


@dataclass
class IANetConfig(ModelConfig):
    """Configuration of :class:`IANet` (defaults = the paper's ResNet-50 at 256×128).

    Attributes:
        backbone, width, last_stride, stem_relu, neck_feat, normalize_embedding: as BoT.
        ia_stages: stages followed by an IA block (paper and code: layer2, layer3).
        sigmas: per stage (σ_x, σ_y) of the location Gaussian, in feature-map cells; missing
            stages take :data:`DEFAULT_SIGMAS` (the code's values for 256×128 input).
        contexts: patch sizes K of the multi-context appearance relation (paper: 1, 2, 3).
        fusion: ``"product"`` (renormalised product, default) or ``"softmax"`` (literal double
            softmax, near uniform; modules.md §4.4).
        use_location: include the location relation (paper: yes).
        use_cia: add the CIA block after each SIA block (paper: yes).
        cia_scaled: divide the CIA Gram by √M (not in the paper or code, whose unscaled Gram
            makes every channel row nearly one-hot on itself: measured perplexity ≈ 1.0).
    """

    backbone: str = "resnet50"
    width: int = 64
    last_stride: int = 1
    stem_relu: bool = True
    neck_feat: Literal["after", "before"] = "after"
    normalize_embedding: bool = False
    ia_stages: tuple[str, ...] = ("layer2", "layer3")
    sigmas: dict[str, tuple[float, float]] = field(default_factory=dict)
    contexts: tuple[int, ...] = (1, 2, 3)
    fusion: Literal["product", "softmax"] = "product"
    use_location: bool = True
    use_cia: bool = True
    cia_scaled: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.ia_stages, (list, str)):
            stages = [self.ia_stages] if isinstance(self.ia_stages, str) else self.ia_stages
            self.ia_stages = tuple(stages)
        self.contexts = tuple(int(k) for k in self.contexts)
        self.sigmas = {str(k): (float(v[0]), float(v[1])) for k, v in dict(self.sigmas).items()}
        check_backbone_fields(self)
        bad = [s for s in (*self.ia_stages, *self.sigmas) if s not in IA_STAGES]
        if bad:
            raise ModelConfigError(f"unknown stage(s) {bad}; valid: {', '.join(IA_STAGES)}")
        if not self.contexts or any(k < 1 for k in self.contexts):
            raise ModelConfigError(f"contexts must be patch sizes ≥ 1, got {self.contexts!r}")
        if self.fusion not in FUSIONS:
            raise ModelConfigError(
                f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}"
            )
        if self.neck_feat not in ("after", "before"):
            raise ModelConfigError(f"neck_feat must be 'after' or 'before', got {self.neck_feat!r}")

    def sigma(self, stage: str) -> tuple[float, float]:
        """The (σ_y, σ_x) of the location relation at ``stage`` (configured or default)."""
        return self.sigmas.get(stage, DEFAULT_SIGMAS[stage])

    @classmethod
    def tiny(cls, **overrides: Any) -> IANetConfig:
        """ResNet-18 at width 16, 8 classes, 64×32 input (8×4 and 4×2 IA maps)."""
        base: dict[str, Any] = {
            "backbone": "resnet18",
            "width": 16,
            "num_classes": 8,
            "input_size": (64, 32),
            "sigmas": {"layer2": (2.0, 4.0), "layer3": (1.0, 2.0)},
        }
        return cls(**{**base, **overrides})


@register_model("ianet")
class IANet(PooledBNNeckModel):
    """IANet (Hou et al. 2019, Fig. 6b): ResNet with IA blocks after stages 2 and 3, BNNeck head.

    Train mode returns ``{"logits", "features" (pre-BN), "embedding"}``; eval mode the (B, D)
    embedding. See the module docstring for the relation-map API.
    """

    config_class = IANetConfig

    def __init__(self, config: IANetConfig) -> None:
        super().__init__(config)
        self.backbone = backbone_from_config(config)
        h, w = config.input_size
        rows: list[LayerInfo] = []
        self.ia_names: dict[str, str] = {}  # stage -> "ia2"
        for row in self.backbone.stage_info:
            rows.append(row.prefixed("backbone"))
            if row.name not in config.ia_stages:
                continue
            n = row.name[-1]
            r = row.reduction or 1
            size = (math.ceil(h / r), math.ceil(w / r))
            relation = SpatialRelation(
                row.channels,
                size,
                config.sigma(row.name),
                config.contexts,
                config.fusion,
                config.use_location,
            )
            cia = CIABlock(row.channels, config.cia_scaled) if config.use_cia else None
            block = IABlock(SIABlock(relation), cia)
            self.add_module(f"ia{n}", block)
            self.ia_names[row.name] = f"ia{n}"
            m = size[0] * size[1]
            relation = LayerInfo(f"relation{n}", m, r, f"ia{n}.sia.relation", "relation", False)
            rows.append(relation)  # rows S[p, :] applied to the block's own features
            rows.append(LayerInfo(f"ia{n}", row.channels, r, f"ia{n}", "attention"))
        self.layer_info = rows + self._build_head(self.backbone.num_features, config)

    def ia_blocks(self) -> dict[str, IABlock]:
        """``{"ia2": block, "ia3": block}``."""
        return {name: getattr(self, name) for name in self.ia_names.values()}

    def _run(self, images: Tensor, maps: dict[str, Tensor] | None) -> Tensor:
        x = images
        for name, stage in self.backbone.stages():
            x = stage(x)
            if maps is not None:
                maps[name] = x
            if name in self.ia_names:
                block: IABlock = getattr(self, self.ia_names[name])
                if maps is not None:
                    n = name[-1]
                    maps[f"relation{n}"] = block.sia.relation(x)
                x = block(x)
                if maps is not None:
                    maps[f"ia{name[-1]}"] = x
        return x

    def relation_maps(self, images: Tensor) -> dict[str, Tensor]:
        """``{"relation2": S (B, M, M), "channel2": CIA map (B, C, C), ...}`` for the IA blocks.

        Row p of ``relation{n}`` is the receptive field of position ``p = y·W + x``; the CIA map
        is computed on the SIA block's output, as in the forward pass.
        """
        out: dict[str, Tensor] = {}
        x = images
        for name, stage in self.backbone.stages():
            x = stage(x)
            if name in self.ia_names:
                block: IABlock = getattr(self, self.ia_names[name])
                n = name[-1]
                out[f"relation{n}"] = block.sia.relation(x).flatten(2)
                y = block.sia(x)
                if block.cia is not None:
                    out[f"channel{n}"] = block.cia.relation(y)
                    y = block.cia(y)
                x = y
        return out
