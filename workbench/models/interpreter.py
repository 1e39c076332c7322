"""AAM interpreter: attribute-guided metric distillation of a frozen target ReID model.

Chen, Liu, Liu, Zhang, Zhang, Mei, "Explainable Person Re-Identification with Attribute-guided
Metric Distillation", ICCV 2021 (arXiv 2103.01451); official code ``SheldongChen/AMD.github.io``
``projects/InterpretationReID/.../meta_arch/irbaseline.py`` (``shared/reference/aam.md`` §1-2).
The paper body is not available; formulas follow the official code (aam.md §0).

Architecture (aam.md §1.2, Fig. 2), for a target built on ResNet stages
``[stem, layer1, layer2, layer3, layer4]`` (a BoT-style model: ``backbone`` ResNet, ``pool``,
``head`` BNNeck):

* the first ``N = shared_stages`` stages are the **target's own modules** (literally shared,
  frozen). The code's rule "SHARE_LAYER = N shares the stem + layer1..layer{N-1}" is exactly
  ``backbone.stages()[:N]``; N = 0 gives the interpreter a whole backbone of its own, N = 5 only
  an attribute head on the target's last map;
* the target's remaining stages give its last map ``F`` (B, C, h, w) (frozen);
* the interpreter's own copies of the remaining stages give ``G`` (B, C, h, w) (trainable);
* the attribute decomposition head (ADH) Conv3×3(C→hidden, no bias) → Conv1×1(hidden→M, no
  bias) → σ gives one positive attention map (AAM) per attribute, ``A`` (B, M, h, w), with
  σ(u) = exp(u) for u < 0 and sqrt(1 + u) for u ≥ 0 (continuous, positive, σ(0) = 1);
* each AAM masks ``F`` and the **target's own frozen head** (pool + BNNeck in eval mode) embeds
  it: ``z^k = head(pool(F ⊙ A^k))`` (B, M, D); ``d^k(x, y) = ||z_x^k − z_y^k||₂``;
* the target distance ``d = ||z_x − z_y||₂`` (its unmasked embedding) is distilled as the mean
  ``d̂ = (1/M) Σ_k d^k`` (code: ``dist_mat_real − dist_mat_fake.mean(-1)``); the contribution
  (share) of attribute ``k`` is ``c^k = d^k / Σ_j d^j`` (:func:`contributions`).

Where we differ from the official code (documented choices):

* own stages start as a **copy of the target's** stages (AMD: fresh ImageNet weights, which
  the workbench does not have); ``init_from_target=False`` gives a random start;
* the ADH's 1×1 conv starts at N(0, 0.01), so every AAM starts near σ(0) = 1 and every d^k near
  d (ADRE ≈ 0 at step 0); AMD uses PyTorch's default init;
* the side attribute classifier (``backbone_att``, "not necessary for explainable ReID") is
  left out; so is the no-op CE of the frozen target;
* the target is pooled by its own pooling (GAP for BoT; AMD's target uses GeM).

How an interpreter names its target (config fields, see :class:`InterpreterConfig`):
``target`` is the weights a new interpreter is built for (a shipped name such as
``"bot_r18w16_256"`` or a ``.safetensors``/``.json`` path, read with ``load_pretrained``);
construction resolves it into ``target_spec`` (the target's architecture, ``{"name",
"config"}``) and ``target_sha256``. An interpreter's own state dict holds the target's tensors
under ``target.*``, so a saved or exported interpreter is self-contained: rebuilding it from its
spec (``target_spec`` set) builds an empty target and loads everything from the one file; the
target weights file need not exist then (``build_model_from_spec`` clears ``pretrained``,
which, if set, names target weights to load into a spec-built target).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.data.schema import get_schema
from workbench.models.base import (
    Capability,
    LayerInfo,
    ModelConfig,
    ModelConfigError,
    ReIDModel,
    TrainOutput,
)
from workbench.models.registry import register_model

__all__ = [
    "AttributeDecompositionHead",
    "Interpreter",
    "InterpreterConfig",
    "InterpreterOutput",
    "attribute_prior_loss",
    "contributions",
    "default_attributes",
    "pairwise_distances",
    "positive_activation",
]

STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")


def default_attributes(schema: str = "market1501") -> tuple[str, ...]:
    """The schema's attributes without ``age`` (AMD drops it: M = 26 for Market, 23 for Duke)."""
    return tuple(a.name for a in get_schema(schema) if a.name != "age")


@dataclass
class InterpreterConfig(ModelConfig):
    """Configuration of :class:`Interpreter`.

    Attributes:
        target: weights of the target model for a *new* interpreter (shipped name or path);
            ``workbench.pretrained.build_model_with_target`` loads them and hands the model to
            the interpreter. Kept afterwards as the target's reference (model cards).
        target_spec: the target's architecture ``{"name": ..., "config": {...}}``; filled from
            ``target``'s card when the target is loaded. With it set (and no target model
            given) the target is built empty and its weights come from the interpreter's
            state dict.
        target_sha256: sha256 of the target weights file the interpreter was built from.
        shared_stages: N = 0..5 stages shared with the target (stem = 1, ..., layer4 = 5).
        schema: attribute schema of the training labels (``"market1501"``, ``"dukemtmc"``).
        attributes: the M attributes explained, names of ``schema`` (empty: all but age).
        adh_channels: hidden width of the attribute decomposition head (AMD: 256).
        init_from_target: own stages start as copies of the target's (else random).
        distill_weight: weight of the metric distillation loss (AMD 1).
        prior_weight: weight of the attribute prior loss (AMD ``LOSS.att`` 10).
        hinge_weight: weight of the per-attribute hinges inside the prior loss (AMD 10).
        colour_hinges: add the optional "both absent" colour hinges (aam.md §2.2 item 4).
        colour_threshold: their threshold t (AMD ``LOSS.threshold`` 0.3).
    """

    num_classes: int = 751
    ranking_metric: str = "euclidean"  # the distance it distils (AAM eq. 1)
    target: str | None = None
    target_spec: dict[str, Any] | None = None
    target_sha256: str | None = None
    shared_stages: int = 3
    schema: str = "market1501"
    attributes: tuple[str, ...] = ()
    adh_channels: int = 256
    init_from_target: bool = True
    distill_weight: float = 1.0
    prior_weight: float = 10.0
    hinge_weight: float = 10.0
    colour_hinges: bool = True
    colour_threshold: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        self.attributes = tuple(self.attributes) or default_attributes(self.schema)
        if not isinstance(self.shared_stages, int) or not 0 <= self.shared_stages <= 5:
            raise ModelConfigError(
                f"shared_stages must be an int from 0 to 5 (stem = 1 ... layer4 = 5), "
                f"got {self.shared_stages!r}"
            )
        names = [a.name for a in get_schema(self.schema)]  # KeyError names the known schemas
        unknown = [a for a in self.attributes if a not in names]
        if unknown or len(self.attributes) < 2:
            raise ModelConfigError(
                f"attributes {unknown or list(self.attributes)} are not >= 2 names of the "
                f"{self.schema!r} schema ({', '.join(names)})"
            )
        if self.target is None and self.target_spec is None:
            raise ModelConfigError(
                "an interpreter needs its target: pass target='NAME_OR_PATH' of the target's "
                "weights (e.g. --target weights/bot_r18w16_256.json), or target_spec"
            )
        if self.target_spec is not None and "name" not in self.target_spec:
            raise ModelConfigError(
                f"target_spec must be {{'name': ..., 'config': {{...}}}}, got {self.target_spec}"
            )
        if self.target is not None:
            self.target = str(self.target)

    @classmethod
    def tiny(cls, **overrides: Any) -> InterpreterConfig:
        """An interpreter of a random tiny BoT (64×32 input, 6 attributes)."""
        from workbench.models.bot import BoTConfig

        bot = BoTConfig.tiny()
        base: dict[str, Any] = {
            "num_classes": bot.num_classes,
            "input_size": bot.input_size,
            "target_spec": {"name": "bot", "config": bot.to_dict()},
            "attributes": ("hat", "backpack", "upred", "upblack", "downblue", "gender"),
            "adh_channels": 16,
        }
        return cls(**{**base, **overrides})

    @property
    def attribute_indices(self) -> list[int]:
        """Column of each explained attribute in the schema's attribute vector."""
        names = [a.name for a in get_schema(self.schema)]
        return [names.index(a) for a in self.attributes]


def positive_activation(u: Tensor) -> Tensor:
    """AMD's mask activation: exp(u) for u < 0, sqrt(1 + u) for u ≥ 0 (continuous, > 0)."""
    return torch.where(u < 0, torch.exp(u.clamp(max=0)), torch.sqrt(1 + u.clamp(min=0)))


class AttributeDecompositionHead(nn.Module):
    """Conv3×3 (no bias) → Conv1×1 (no bias) → σ: (B, C, h, w) → M positive maps (B, M, h, w).

    No BN or ReLU between the convolutions, as in AMD's ``backbone_4``.
    """

    def __init__(self, in_channels: int, hidden: int, num_attributes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, hidden, 3, padding=1, bias=False)
        self.proj = nn.Conv2d(hidden, num_attributes, 1, bias=False)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.normal_(self.proj.weight, std=0.01)  # maps start near σ(0) = 1

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) → (B, M, h, w) positive attribute attention maps."""
        return positive_activation(self.proj(self.conv(x)))


@dataclass
class InterpreterOutput:
    """Everything one forward pass gives for B images (eval mode)."""

    target_embedding: Tensor  # (B, D) the target's own embedding
    components: Tensor  # (B, M, D) per-attribute embeddings z^k
    aams: Tensor  # (B, M, h, w) attribute attention maps


def pairwise_distances(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distances of every row of ``a`` (P, [M,] D) to every row of ``b`` (Q, [M,] D).

    Returns (P, Q) or (P, Q, M). Squared distances are clamped at 1e-12 before the square root,
    so the gradient stays finite at zero distance (AMD sets the diagonal to 1e-9).
    """
    if a.dim() == 2:
        a, b = a[:, None], b[:, None]
        squeeze = True
    else:
        squeeze = False
    a, b = a.transpose(0, 1), b.transpose(0, 1)  # (M, P, D), (M, Q, D)
    sq = (a * a).sum(-1)[:, :, None] + (b * b).sum(-1)[:, None, :] - 2 * a @ b.transpose(1, 2)
    d = sq.clamp(min=1e-12).sqrt().permute(1, 2, 0)  # (P, Q, M)
    return d[..., 0] if squeeze else d


def contributions(d_k: Tensor) -> Tensor:
    """Shares c^k = d^k / Σ_j d^j over the last dimension (rows sum to 1; uniform if all 0)."""
    total = d_k.sum(-1, keepdim=True)
    uniform = torch.full_like(d_k, 1.0 / d_k.shape[-1])
    return torch.where(total > 0, d_k / total.clamp(min=1e-12), uniform)


def attribute_prior_loss(
    shares: Tensor,
    exclusive: Tensor,
    hinge_weight: float = 10.0,
    colour_groups: tuple[list[int], ...] = (),
    both_absent: Tensor | None = None,
    colour_threshold: float = 0.3,
) -> dict[str, Tensor]:
    """AMD's attribute prior loss (code ``bool_similarity``, aam.md §2.2), averaged over pairs.

    Args:
        shares: (P, M) contributions c^k of P pairs (rows sum to 1).
        exclusive: (P, M) bool/0-1, e^k = 1 where the two identities differ in attribute k.
        hinge_weight: weight of the per-attribute hinges (AMD 10).
        colour_groups: index lists of colour attributes (Market: the 8 upper, the 9 lower).
        both_absent: (P, M) bool, attribute k is "no" for both persons (colour hinges).
        colour_threshold: t, an absent colour may take at most t × the mean share of the
            group's colours that are present.

    Returns:
        ``{"total_share": L_Σe + L_Σc, "hinges": L_e + L_c (unweighted), "colour": ...}``
        (each a scalar; the prior loss is ``total_share + hinge_weight·hinges + colour``).

    With N = Σ_k e^k, r = sqrt(N/M), a = (M−N)·r + 0.004, b = N·(1−r) + 0.001 and
    λ = ½·log(a/b) (N clamped to [0, M − 0.1]): exclusive attributes get the lower bound
    e^{−λ}·r/N, common ones the upper bound e^{λ}·(1−r)/(M−N) (both ≈ the geometric mean of
    the fair shares; for N = 0 the common bound is 2/M).
    """
    e = exclusive.to(shares.dtype)
    m = shares.shape[-1]
    n = e.sum(-1)  # (P,)
    r = torch.sqrt(n / m)
    ex_share = (shares * e).sum(-1)
    loss_total = F.relu(r - ex_share) + F.relu((shares * (1 - e)).sum(-1) - (1 - r))
    n_c = n.clamp(0, m - 0.1)
    lam = 0.5 * torch.log(((m - n_c) * r + 0.004) / (n_c * (1 - r) + 0.001))
    lower = torch.exp(-lam) * r / n_c.clamp(min=1e-6)  # (P,)
    upper = torch.exp(lam) * (1 - r) / (m - n_c)
    hinge_e = F.relu(e * lower[:, None] - shares * e).sum(-1)
    hinge_c = F.relu((1 - e) * shares - upper[:, None] * (1 - e)).sum(-1)
    out = {"total_share": loss_total.mean(), "hinges": (hinge_e + hinge_c).mean()}
    if colour_groups and both_absent is not None:
        colour = shares.new_zeros(())
        absent = both_absent.to(shares.dtype)
        for group in colour_groups:
            s, a = shares[:, group], absent[:, group]  # (P, G)
            present = (1 - a).sum(-1)  # (P,)
            mean_present = (s * (1 - a)).sum(-1) / present.clamp(min=1)
            term = F.relu(s * a - colour_threshold * mean_present[:, None]) * a
            colour = colour + (term.sum(-1) * (present > 0)).mean()
        out["colour"] = colour
    return out


def _check_target(target: nn.Module) -> None:
    from workbench.models.resnet import ResNet

    missing = [
        n
        for n in ("backbone", "pool", "head")
        if not isinstance(getattr(target, n, None), nn.Module)
    ]
    if missing or not isinstance(target.backbone, ResNet) or not hasattr(target.head, "embed"):
        raise ModelConfigError(
            f"the interpreter needs a target built on ResNet stages: a model with a ResNet "
            f"`backbone`, a `pool` and a `head` with `embed()` (BoT-style, "
            f"{type(target).__name__} lacks {missing or ['a ResNet backbone / head.embed']}); "
            f"wrap other models so that embedding = head.embed(pool(backbone map))"
        )


class _Unregistered:
    """Holds a module without registering it (the target's head is reached, not owned, twice)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module


class ComponentPool(nn.Module):
    """``pool(F ⊙ A^k)`` for every attribute: (B, C, h, w), (B, M, h, w) → (B, M·C) flattened.

    A module so that a hook sees the ``global`` feature map (the masked pooled features).
    """

    def __init__(self, pool: nn.Module) -> None:
        super().__init__()
        self._pool = _Unregistered(pool)

    def forward(self, fmap: Tensor, aams: Tensor) -> Tensor:
        """(B, C, h, w) map and (B, M, h, w) AAMs → (B, M·C): the map pooled under each AAM."""
        from workbench.models.heads import GlobalAvgPool

        b, c, h, w = fmap.shape
        m = aams.shape[1]
        if isinstance(self._pool.module, GlobalAvgPool):  # GAP is linear: no (B, M, C, h, w)
            pooled = torch.einsum("bchw,bmhw->bmc", fmap, aams) / (h * w)
            return pooled.reshape(b, m * c)
        masked = fmap[:, None] * aams[:, :, None]  # (B, M, C, h, w)
        pooled = self._pool.module(masked.reshape(b * m, c, h, w))  # (B·M, C)
        return pooled.reshape(b, m * c)


class ComponentEmbedding(nn.Module):
    """The target's frozen ``head.embed`` on every attribute's pooled feature: → (B, M·D)."""

    def __init__(self, head: nn.Module, num_attributes: int) -> None:
        super().__init__()
        self._head = _Unregistered(head)
        self.m = num_attributes

    def forward(self, pooled: Tensor) -> Tensor:
        """(B, M·C) pooled features → (B, M·D): the target's head on each attribute's feature."""
        b = pooled.shape[0]
        z = self._head.module.embed(pooled.reshape(b * self.m, -1))  # (B·M, D)
        return z.reshape(b, -1)


@register_model("interpreter")
class Interpreter(ReIDModel):
    """AAM interpreter of a frozen target (see the module docstring).

    Eval mode returns the (B, M·D) concatenated attribute embeddings (``components``
    flattened); the distilled distance is **not** the Euclidean distance of that vector but
    the mean of the per-attribute distances (:meth:`distances`). ``interpret(images)`` gives
    the target embedding, the components and the AAMs in one pass.

    Train mode returns ``logits`` (the frozen target's classifier on its own embedding; no
    gradient), ``features`` (B, M·C) masked pooled features, ``embedding`` (B, M·D),
    ``components`` (B, M, D), ``target_embedding`` (B, D) and ``aams`` (B, M, h, w); the
    losses are in :meth:`extra_losses`. The trainer's ID/triplet losses do not apply
    (``reid_losses = False``). The target stays frozen and in eval mode whatever ``train()``
    says, so its weights and BN statistics never change.
    """

    config_class = InterpreterConfig
    #: built around another model, given as ``Interpreter(config, target=model)``: the config's
    #: ``target`` names weights that ``workbench.pretrained.build_model_with_target`` loads
    takes_target: ClassVar[bool] = True
    capabilities = frozenset({Capability.ATTRIBUTE_INTERPRETER})
    train_fields: ClassVar[tuple[str, ...]] = ("attributes",)
    reid_losses: ClassVar[bool] = False

    def __init__(self, config: InterpreterConfig, target: ReIDModel | None = None) -> None:
        if target is not None and config.target_spec is None:  # the caller's config stays as is
            from workbench.models.registry import model_spec

            config = dataclasses.replace(config, target_spec=model_spec(target))
        super().__init__(config)
        self.target = self._build_target(config, target)
        _check_target(self.target)
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.target.eval()
        backbone = self.target.backbone
        n = config.shared_stages
        own = {}
        for name in STAGES[n:]:
            if name == "stem":
                stem = nn.Sequential(backbone.conv1, backbone.bn1, backbone.relu, backbone.maxpool)
                own[name] = copy.deepcopy(stem)
            else:
                own[name] = copy.deepcopy(getattr(backbone, name))
        self.branch = nn.ModuleDict(own)
        if not config.init_from_target:
            for mod in self.branch.modules():
                if isinstance(mod, nn.Conv2d):
                    nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(mod, nn.BatchNorm2d):
                    mod.reset_parameters()
                    mod.reset_running_stats()
        for p in self.branch.parameters():
            p.requires_grad_(True)
        info = {row.name: row for row in backbone.stage_info}
        channels = info["layer4"].channels
        m = len(config.attributes)
        self.adh = AttributeDecompositionHead(channels, config.adh_channels, m)
        self.component_pool = ComponentPool(self.target.pool)
        self.component_embedding = ComponentEmbedding(self.target.head, m)
        self.num_attributes = m
        self.attribute_names = list(config.attributes)
        d = self.target.embedding_dim
        self.target_dim = d
        self.embedding_dim = m * d
        self.feature_dim = m * channels
        self.num_classes = config.num_classes
        # the own branch, the target's map and the AAMs meet in one batch: none of them may grow
        own = {s: s in self.branch for s in STAGES}
        red = info["layer4"].reduction
        self.layer_info = [
            dataclasses_replace(info[s], module=self._stage_module(s), batch_may_grow=not own[s])
            for s in STAGES
        ] + [
            LayerInfo("target_map", channels, red, "target.backbone.layer4", batch_may_grow=False),
            LayerInfo("aam", m, red, "adh", "attention", batch_may_grow=False),
            LayerInfo("global", m * channels, None, "component_pool", "vector"),
            LayerInfo("embedding", m * d, None, "component_embedding", "vector"),
        ]
        attr_names = [a.name for a in get_schema(config.schema)]
        self._columns = [attr_names.index(a) for a in config.attributes]
        groups = []
        for prefix in ("up", "down"):
            group = [i for i, a in enumerate(config.attributes) if _is_colour(a, prefix)]
            if len(group) > 1:
                groups.append(group)
        self._colour_groups = tuple(groups)

    # -- construction ---------------------------------------------------------------------
    @staticmethod
    def _build_target(config: InterpreterConfig, target: ReIDModel | None) -> ReIDModel:
        """The given target (a new interpreter), or an empty one built from ``target_spec``
        whose weights come with the interpreter's own state dict."""
        from workbench.models.registry import build_model_from_spec

        if target is not None:
            return target
        if config.target_spec is None:
            raise ModelConfigError(
                f"the interpreter of target {config.target!r} needs that target model: build it "
                f"with workbench.pretrained.build_model_with_target('interpreter', ...), which "
                f"loads the target's weights, or pass Interpreter(config, target=model)"
            )
        return build_model_from_spec(config.target_spec)

    def _stage_module(self, stage: str) -> str:
        if stage in self.branch:
            return f"branch.{stage}" + (".3" if stage == "stem" else "")
        return f"target.backbone.{'maxpool' if stage == 'stem' else stage}"

    def train(self, mode: bool = True) -> Interpreter:
        """Set the mode of the interpreter's own parts; the frozen target stays in eval mode."""
        super().train(mode)
        self.target.eval()  # frozen: BN statistics never update
        return self

    # -- forward --------------------------------------------------------------------------
    def _maps(self, images: Tensor) -> dict[str, Tensor]:
        """Stage outputs of the interpreter path + the target's last map and the AAMs."""
        backbone = self.target.backbone
        n = self.config.shared_stages
        maps: dict[str, Tensor] = {}
        x = images
        with torch.no_grad():  # shared stages are frozen: nothing to differentiate
            for name, stage in backbone.stages()[:n]:
                x = stage(x)
                maps[name] = x
            f = x
            for _, stage in backbone.stages()[n:]:
                f = stage(f)
        g = x
        for name in STAGES[n:]:
            g = self.branch[name](g)
            maps[name] = g
        maps["target_map"] = f  # (B, C, h, w)
        maps["aam"] = self.adh(g)  # (B, M, h, w)
        return maps

    def _outputs(self, images: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        maps = self._maps(images)
        pooled = self.component_pool(maps["target_map"], maps["aam"])  # (B, M·C)
        comps = self.component_embedding(pooled)  # (B, M·D)
        maps["global"], maps["embedding"] = pooled, comps
        return maps, pooled, comps

    def target_embedding(self, fmap: Tensor) -> Tensor:
        """The target's own embedding of its last map (B, C, h, w) → (B, D), frozen."""
        with torch.no_grad():
            return self.target.head.embed(self.target.pool(fmap))

    def forward(self, images: Tensor) -> Tensor | TrainOutput:
        """Eval: the (B, M·D) attribute embeddings; train: the dict of the class docstring."""
        maps, pooled, comps = self._outputs(images)
        if not self.training:
            return comps
        b = images.shape[0]
        z = self.target_embedding(maps["target_map"])
        head = self.target.head
        with torch.no_grad():
            logits = head.classifier(head.bn(self.target.pool(maps["target_map"])))
        return {
            "logits": logits,
            "features": pooled,
            "embedding": comps,
            "components": comps.reshape(b, self.num_attributes, -1),
            "target_embedding": z,
            "aams": maps["aam"],
        }  # type: ignore[return-value]

    def feature_maps(self, images: Tensor) -> dict[str, Tensor]:
        """Every ``layer_info`` map (shared and own stages, ``target_map``, ``aam``, vectors)."""
        maps, _, _ = self._outputs(images)
        return {row.name: maps[row.name] for row in self.layer_info}

    def interpret(self, images: Tensor) -> InterpreterOutput:
        """Target embedding (B, D), attribute embeddings (B, M, D) and AAMs (B, M, h, w)."""
        maps, _, comps = self._outputs(images)
        b = images.shape[0]
        return InterpreterOutput(
            target_embedding=self.target_embedding(maps["target_map"]),
            components=comps.reshape(b, self.num_attributes, -1),
            aams=maps["aam"],
        )

    def split_embedding(self, embedding: Tensor) -> Tensor:
        """(B, M·D) eval embedding → (B, M, D) attribute embeddings."""
        return embedding.reshape(embedding.shape[0], self.num_attributes, -1)

    @staticmethod
    def distances(components_x: Tensor, components_y: Tensor) -> tuple[Tensor, Tensor]:
        """Per-attribute distances d^k (P, Q, M) and the distilled distance d̂ = mean_k (P, Q)."""
        d_k = pairwise_distances(components_x, components_y)
        return d_k, d_k.mean(-1)

    # -- losses ---------------------------------------------------------------------------
    def pair_targets(self, attributes: Tensor) -> tuple[Tensor, Tensor]:
        """(B, A) schema attribute vectors → e (B, B, M) exclusive, both-absent (B, B, M).

        Unannotated values (-1) count as "no" (aam.md §4.2: treat as unknown or "no").
        """
        schema_len = len(get_schema(self.config.schema))
        if attributes.dim() != 2 or attributes.shape[1] != schema_len:
            raise ValueError(
                f"attributes of shape {tuple(attributes.shape)} do not follow the "
                f"{self.config.schema!r} schema ({schema_len} attributes); train on data with "
                f"that attribute file or set the interpreter's schema (--model-config "
                f'\'{{"schema": "dukemtmc"}}\' for DukeMTMC-reID)'
            )
        a = attributes[:, self._columns].clamp(min=0)  # (B, M) 0/1
        exclusive = a[:, None, :] != a[None, :, :]
        absent = (a[:, None, :] == 0) & (a[None, :, :] == 0)
        return exclusive, absent

    def extra_losses(self, output: TrainOutput, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Metric distillation + attribute prior over all ordered pairs p ≠ q of the batch.

        ``distill`` = w·mean |d − (1/M) Σ_k d^k| (L1, target d detached; AMD uses all n×n
        pairs with a 1e-9 diagonal, we skip the diagonal); ``prior`` = w·(L_Σe + L_Σc +
        hinge_weight·(L_e + L_c) + colour) (:func:`attribute_prior_loss`).
        """
        if "attributes" not in batch:
            raise ValueError("the interpreter trains on attribute labels: the batch has none")
        cfg = self.config
        comps, z = output["components"], output["target_embedding"]  # type: ignore[typeddict-item]
        b = comps.shape[0]
        off = ~torch.eye(b, dtype=torch.bool, device=comps.device)
        d = pairwise_distances(z, z).detach()[off]  # (P,)
        d_k = pairwise_distances(comps, comps)[off]  # (P, M)
        d_hat = d_k.mean(-1)
        distill = (d - d_hat).abs().mean()
        exclusive, absent = self.pair_targets(torch.as_tensor(batch["attributes"]).to(comps.device))
        prior = attribute_prior_loss(
            contributions(d_k),
            exclusive[off],
            colour_groups=self._colour_groups if cfg.colour_hinges else (),
            both_absent=absent[off],
            colour_threshold=cfg.colour_threshold,
        )
        prior_total = prior["total_share"] + cfg.hinge_weight * prior["hinges"]
        prior_total = prior_total + prior.get("colour", prior_total.new_zeros(()))
        return {"distill": cfg.distill_weight * distill, "prior": cfg.prior_weight * prior_total}


def _is_colour(name: str, prefix: str) -> bool:
    from workbench.data.schema import (
        DUKE_LOWER_COLOURS,
        DUKE_UPPER_COLOURS,
        MARKET_LOWER_COLOURS,
        MARKET_UPPER_COLOURS,
    )

    colours = (
        set(MARKET_UPPER_COLOURS) | set(DUKE_UPPER_COLOURS)
        if prefix == "up"
        else set(MARKET_LOWER_COLOURS) | set(DUKE_LOWER_COLOURS)
    )
    return name.startswith(prefix) and name[len(prefix) :] in colours


def dataclasses_replace(row: LayerInfo, **changes: Any) -> LayerInfo:
    import dataclasses

    return dataclasses.replace(row, **changes)
