"""The contract every ReID model honours, written down once (DESIGN.md "Data contracts").

A model is an :class:`ReIDModel` (an ``nn.Module``) built from a typed :class:`ModelConfig`
dataclass, and registered by name in :mod:`workbench.models.registry`. It promises:

* ``forward(images)`` with ``images`` (B, 3, H, W), ImageNet-normalised:
    - eval mode: the embedding used for retrieval, (B, D) with ``D = model.embedding_dim``;
    - train mode: a :class:`TrainOutput` dict with at least ``logits`` (B, num_classes),
      ``features`` (B, F) — the pre-BNNeck global feature the triplet loss uses, ``F =
      model.feature_dim`` — and ``embedding`` (B, D), the post-BNNeck feature; models may add keys.
* ``feature_maps(images) -> dict[str, Tensor]`` naming every stage (``stem``, ``layer1`` ..
  ``layer4``), every attention module's output, the pooled ``global`` feature and the
  ``embedding`` (what ``forward`` returns in eval mode). It runs under the caller's grad mode, so
  explainers can differentiate through it.
* ``layer_info``: one :class:`LayerInfo` row per ``feature_maps`` key (like timm's
  ``feature_info``): channels, reduction (stride w.r.t. the input) and the module path whose
  forward output, in eval mode, *is* that feature map — so a forward hook on
  ``get_layer(model, name)`` sees exactly ``feature_maps(images)[name]``.
* ``config`` (the dataclass it was built from), ``num_classes``, ``embedding_dim``,
  ``feature_dim`` and the class attributes ``config_class`` and ``model_name`` (set by
  ``@register_model``).
* ``capabilities``: the :class:`Capability` values the model **declares** (identity logits, CAM
  weights, branch outputs, ...), each a promise of the methods listed on that value. Explainers,
  targets and apps read the declaration (:func:`capabilities_of`) and never probe with
  ``hasattr``. Each ``layer_info`` row also says whether its output may gain rows in a forward
  pass (``LayerInfo.batch_may_grow``).

``tests/models/test_conformance.py`` checks all of it for every registered model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "RANKING_METRICS",
    "Capability",
    "CheckpointMismatchError",
    "LayerInfo",
    "ModelConfig",
    "ModelConfigError",
    "Pooling",
    "ReIDModel",
    "TrainOutput",
    "UnknownLayerError",
    "capabilities_of",
    "compare_state_dicts",
    "eval_mode",
    "format_key_lists",
    "get_layer",
    "get_layer_info",
    "pooling_of",
    "tie_outputs",
]


class ModelConfigError(ValueError):
    """A model configuration with an unknown field or an invalid value."""


class UnknownLayerError(KeyError):
    """A layer name the model does not have (the message lists the valid ones)."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class CheckpointMismatchError(RuntimeError):
    """A state dict that does not fit the model (another architecture or configuration).

    Attributes ``missing``, ``unexpected`` and ``mismatched`` (``(key, file_shape, model_shape)``)
    hold the full lists; the message shows the first few of each and their counts.
    """

    def __init__(
        self,
        message: str,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    ) -> None:
        super().__init__(message)
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched


@dataclass(frozen=True)
class LayerInfo:
    """One named layer of a model: a row of ``model.layer_info``.

    Attributes:
        name: key in ``feature_maps()``, e.g. ``"layer3"``.
        channels: C of the (B, C, h, w) map, or D of a (B, D) vector.
        reduction: stride of the map w.r.t. the input image (``h = ceil(H / reduction)``);
            ``None`` for vectors.
        module: path for ``model.get_submodule``; that module's forward output in eval mode is
            ``feature_maps()[name]``.
        kind: what the layer is: ``"stage"`` (backbone stage), ``"attention"`` (an attention
            module's weights or attended features), ``"relation"`` (relation maps: channel
            ``p`` is the row ``S[p, :]`` of a position relation, IANet's SIA), or ``"vector"``
            (pooled feature / embedding).
        batch_may_grow: whether a forward hook on the layer may hand the rest of the network
            more rows than it got, each then run as an image of its own (a pair explanation
            repeats the query's activations there). False where the output is combined with
            another path of the same batch: attention weights and the features they weigh,
            relation maps, the AAM interpreter's own branch against its target's map.
    """

    name: str
    channels: int
    reduction: int | None
    module: str
    kind: Literal["stage", "attention", "relation", "vector"] = "stage"
    batch_may_grow: bool = True

    def prefixed(self, prefix: str) -> LayerInfo:
        """The same row with ``prefix.`` prepended to the module path (a backbone in a model)."""
        return dataclasses.replace(self, module=f"{prefix}.{self.module}")


#: the ranking metrics a model can declare (``ModelConfig.ranking_metric``)
RANKING_METRICS = ("cosine", "euclidean")


@dataclass(frozen=True)
class Pooling:
    """How a model's eval embedding is pooled from one spatial map: its declaration.

    The embedding is ``e = head(Σᵢ Pₖ(i) A(i))`` per part k of the concatenated embedding, where
    A (B, C, h, w) is the map of ``layer``, ``Pₖ`` are fixed pooling weights (the mean over the
    whole map, or over horizontal stripe k) and ``head`` is an **affine** map (N, C) → (N, D)
    (BNNeck in eval mode; ``None`` = identity). Because the head is affine and each part's
    weights sum to 1, the head's shift folds into every position: ``e = Σᵢ P(i) φ(i)`` with
    ``φ(i) = head(A(i))`` — exactly, which is what Grad-CAM's closed form and the pair
    decomposition (:mod:`workbench.explain.decomposition`) build on.

    Attributes:
        layer: ``layer_info`` name of the pooled map.
        head: the affine head after pooling, before any L2 normalisation (None: identity).
        parts: 1 (global average pooling) or K horizontal stripes (PCB; adaptive average
            pooling over rows, stripe-major in the embedding).
        normalize: the embedding is L2-normalised (each stripe on its own when ``parts > 1``).
    """

    layer: str
    head: Callable[[Tensor], Tensor] | None = None
    parts: int = 1
    normalize: bool = False

    def pooled(self, maps: Tensor) -> Tensor:
        """(B, C, h, w) → (B, K, C): the pooled feature of every part, before the head."""
        if self.parts == 1:
            return maps.mean(dim=(2, 3))[:, None]
        return F.adaptive_avg_pool2d(maps, (self.parts, 1)).flatten(2).transpose(1, 2)

    def embed(self, maps: Tensor) -> Tensor:
        """(B, C, h, w) → (B, D): the eval embedding, as the model computes it from ``maps``."""
        return self.from_pooled(self.pooled(maps))

    def from_pooled(self, pooled: Tensor) -> Tensor:
        """(B, K, C) pooled parts → (B, D) embedding: the head, normalisation, concatenation."""
        parts = self.apply_head(pooled)  # (B, K, D_k)
        if self.normalize:
            parts = F.normalize(parts, dim=2)
            if self.parts == 1:
                return parts[:, 0]
        return parts.flatten(1)

    def apply_head(self, x: Tensor) -> Tensor:
        """The affine head on (..., C) vectors (any leading shape)."""
        if self.head is None:
            return x
        lead = x.shape[:-1]
        return self.head(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)

    def weights(self, h: int, w: int, device: torch.device | None = None) -> Tensor:
        """(K, h, w) pooling weights Pₖ(i): each part's weights sum to 1 (adaptive pooling)."""
        out = torch.zeros(self.parts, h, w, device=device)
        for k in range(self.parts):  # torch's adaptive pooling bounds: floor / ceil
            start, end = (k * h) // self.parts, -(-((k + 1) * h) // self.parts)
            out[k, start:end] = 1.0 / ((end - start) * w)
        return out


class Capability(StrEnum):
    """What a model can do beyond the contract, declared in ``model.capabilities``.

    Each value promises methods (``tests/models/test_conformance.py`` calls them on every
    registered model that declares it):

    * ``IDENTITY_LOGITS``: ``classify(embedding (B, D)) -> (B, num_classes)`` ID logits.
    * ``CAM_WEIGHTS``: ``cam_layers`` (the stage names with a CAM classifier) and, per such
      stage, ``cam_weights(stage) -> (num_classes, C)``, ``cam_bias(stage) -> (num_classes,)``
      ``cam_input(stage, map) -> (B, C, h, w)`` and ``stage_cam(stage, map, classes, with_sa)
      -> (B, h, w)``, with ``mean(stage_cam) + bias`` the stage classifier's logits (CAM, Zhou
      et al. 2016).
    * ``BRANCH_OUTPUTS``: ``branch_outputs(images) -> {"layer1", "layer4", ["mask"],
      ["keypoints"]}`` (DAAF's training branches run on demand) and ``keypoint_order``.
    * ``CONV_SHUFFLE``: ``conv_shuffle(layer4) -> cells[i][j]`` (B, K_j, H', W'), every
      feature group ``i`` through every group's 1×1 conv ``j`` (DAAF Fig. 9–10).
    * ``ATTRIBUTE_LOGITS``: ``attribute_logits(embedding) -> (B, M)``.
    * ``ATTRIBUTE_INTERPRETER``: ``attribute_names`` (M names) and ``interpret(images)`` with
      ``target_embedding``, ``components`` (B, M, D) and ``aams`` (B, M, h, w) (AAM).
    """

    IDENTITY_LOGITS = "identity_logits"
    CAM_WEIGHTS = "cam_weights"
    BRANCH_OUTPUTS = "branch_outputs"
    CONV_SHUFFLE = "conv_shuffle"
    ATTRIBUTE_LOGITS = "attribute_logits"
    ATTRIBUTE_INTERPRETER = "attribute_interpreter"


class TrainOutput(TypedDict, total=False):
    """What a model returns in train mode (models may add keys)."""

    logits: Tensor  # (B, num_classes)
    features: Tensor  # (B, F) pre-BNNeck global feature, for triplet / center loss
    embedding: Tensor  # (B, D) post-BNNeck feature


@dataclass
class ModelConfig:
    """Fields every model configuration has; each model file subclasses it (``BoTConfig``).

    Attributes:
        num_classes: training identities (size of the ID classifier).
        input_size: (H, W) the model is meant for; informational for most models, required by
            those whose modules depend on it (RGA).
        pretrained: path of a torchvision ImageNet ResNet file loaded into the backbone at
            construction, or None for random initialisation. It is not needed to load a trained
            checkpoint (``build_model_from_spec`` clears it).
        ranking_metric: the distance the model's rankings use, ``"cosine"`` (1 − cos; BoT with
            ``TEST.FEAT_NORM``, FastReID, IANet) or ``"euclidean"`` (the AAM interpreter, which
            distils a Euclidean distance). Evaluation, the apps, the figures and every pair
            explanation use it (:func:`workbench.evaluate.distance.pair_distance`).
    """

    num_classes: int = 751
    input_size: tuple[int, int] = (256, 128)
    pretrained: str | None = None
    ranking_metric: str = "cosine"

    def __post_init__(self) -> None:
        if isinstance(self.input_size, list):  # JSON round trip gives lists
            self.input_size = tuple(self.input_size)  # type: ignore[assignment]
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ModelConfigError(f"num_classes must be a positive int, got {self.num_classes!r}")
        size = self.input_size
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ModelConfigError(f"input_size must be (height, width) ints, got {size!r}")
        if self.pretrained is not None:
            self.pretrained = str(self.pretrained)
        if self.ranking_metric not in RANKING_METRICS:
            raise ModelConfigError(
                f"ranking_metric must be one of {', '.join(RANKING_METRICS)}, "
                f"got {self.ranking_metric!r}"
            )

    @classmethod
    def tiny(cls, **overrides: Any) -> ModelConfig:
        """A small configuration that runs in well under a second on CPU (tests, demos)."""
        raise NotImplementedError(f"{cls.__name__} must implement tiny() (used by the tests)")

    @classmethod
    def field_names(cls) -> list[str]:
        """The config's field names, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``type(self)(**d)`` rebuilds the config."""
        return dataclasses.asdict(self)


class ReIDModel(nn.Module):
    """Base class of every registered ReID model; see the module docstring for the contract."""

    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    model_name: ClassVar[str] = ""  # set by @register_model
    #: sample fields the model's extra training losses read (``"mask"``, ``"keypoints"``,
    #: ``"attributes"``); the trainer loads them only when a model asks.
    train_fields: ClassVar[tuple[str, ...]] = ()
    #: whether the trainer's ID + triplet losses on ``logits`` / ``features`` apply; False for
    #: models trained on their ``extra_losses`` only (the AAM interpreter distils a frozen
    #: target and has no identity objective of its own).
    reid_losses: ClassVar[bool] = True
    #: whether the model is built around another trained model, given to its constructor as
    #: ``target=`` (the AAM interpreter); ``workbench.pretrained.build_model_with_target``
    #: loads that model from the weights the config's ``target`` field names.
    takes_target: ClassVar[bool] = False
    #: what the model declares it can do (:class:`Capability`); an instance may narrow it in
    #: ``__init__`` when its configuration leaves a part out (DAAF without branches).
    capabilities: frozenset[Capability] = frozenset()

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config
        self.num_classes: int = config.num_classes
        self.embedding_dim: int = 0  # D of forward() in eval mode; subclasses set it
        self.feature_dim: int = 0  # F of the "features" output in train mode
        self.layer_info: list[LayerInfo] = []

    def forward(self, images: Tensor) -> Tensor | TrainOutput:  # pragma: no cover - abstract
        """Eval: the (B, D) embedding; train: a :class:`TrainOutput` dict."""
        raise NotImplementedError

    def feature_maps(self, images: Tensor) -> dict[str, Tensor]:  # pragma: no cover - abstract
        """Every ``layer_info`` map of ``images`` by name (runs under the caller's grad mode)."""
        raise NotImplementedError

    def extra_losses(self, output: TrainOutput, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Model-specific loss terms, already weighted, added to the ID + triplet loss.

        The trainer calls this after ``forward`` in train mode with the collated batch (its
        ``image``, ``label`` and the fields named in ``train_fields``, on the model's device)
        and logs every term by name (e.g. DAAF's ``hab``/``pab``, SA's ``deep1``..``deep3``).
        Every parameterised computation belongs in ``forward`` (its outputs go into the train
        dict), so that DistributedDataParallel sees it; this method only compares those outputs
        with the batch's targets. The default has none.
        """
        return {}

    def pooling(self) -> Pooling | None:
        """How the eval embedding is pooled from one map (:class:`Pooling`), or None.

        A declaration: explainers take exact closed forms on that layer (Grad-CAM's gradient is
        constant over space there; pairs decompose into position pairs). ``None`` (the default)
        means "not an affine map of pooled positions" (GeM, an FC + ReLU neck, the interpreter).
        """
        return None

    @property
    def ranking_metric(self) -> str:
        """The metric the model's rankings use (its config's ``ranking_metric``)."""
        return self.config.ranking_metric

    def layer_names(self) -> list[str]:
        """Names accepted by :func:`get_layer`, in forward order."""
        return [row.name for row in self.layer_info]

    def extra_repr(self) -> str:
        return f"model_name={self.model_name!r}"


def pooling_of(model: nn.Module) -> Pooling | None:
    """A model's declared :class:`Pooling` (None for modules outside the contract)."""
    return model.pooling() if isinstance(model, ReIDModel) else None


def capabilities_of(model: nn.Module) -> frozenset[Capability]:
    """The capabilities ``model`` declares: a ReIDModel's ``capabilities``; a module outside the
    contract declares them with the same class attribute (none if it has no such attribute)."""
    if isinstance(model, ReIDModel):
        return model.capabilities
    declared = next(
        (vars(c)["capabilities"] for c in type(model).__mro__ if "capabilities" in vars(c)), ()
    )
    return frozenset(Capability(c) for c in declared)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode, restoring the train/eval state it had (every module's).

    Every function of the workbench that needs eval mode uses this, so a model handed over in
    train mode (mid-training, a notebook) comes back in train mode.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def get_layer_info(model: nn.Module, name: str) -> LayerInfo:
    """The ``layer_info`` row called ``name``; fails listing the names the model has."""
    rows = getattr(model, "layer_info", None)
    if rows is None:
        raise TypeError(f"{type(model).__name__} has no layer_info table (not a ReIDModel?)")
    for row in rows:
        if row.name == name:
            return row
    names = ", ".join(row.name for row in rows)
    raise UnknownLayerError(
        f"{type(model).__name__} has no layer {name!r}; valid names: {names}"
    ) from None


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule whose output (eval mode) is ``feature_maps(images)[name]``.

    Example:
        >>> handle = get_layer(model, "layer4").register_forward_hook(hook)  # doctest: +SKIP
    """
    return model.get_submodule(get_layer_info(model, name).module)


def compare_state_dicts(
    model_state: Mapping[str, Tensor], state: Mapping[str, Any]
) -> tuple[list[str], list[str], list[tuple[str, tuple[int, ...], tuple[int, ...]]]]:
    """Keys ``state`` lacks, keys it has in excess, and ``(key, state_shape, model_shape)``."""
    missing = [k for k in model_state if k not in state]
    unexpected = [k for k in state if k not in model_state]
    mismatched = []
    for k, v in state.items():
        if k in model_state:
            if not isinstance(v, torch.Tensor):
                mismatched.append((k, (), tuple(model_state[k].shape)))
            elif v.shape != model_state[k].shape:
                mismatched.append((k, tuple(v.shape), tuple(model_state[k].shape)))
    return missing, unexpected, mismatched


def format_key_lists(
    missing: list[str],
    unexpected: list[str],
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    limit: int = 10,
) -> str:
    """Human-readable lines for a :class:`CheckpointMismatchError` message."""

    def head(items: list[str]) -> str:
        more = f", ... (+{len(items) - limit} more)" if len(items) > limit else ""
        return ", ".join(items[:limit]) + more

    lines = []
    if missing:
        lines.append(f"  missing from the file ({len(missing)}): {head(missing)}")
    if unexpected:
        lines.append(f"  unexpected in the file ({len(unexpected)}): {head(unexpected)}")
    if mismatched:
        shapes = [f"{k} file {list(a)} vs model {list(b)}" for k, a, b in mismatched]
        lines.append(f"  shape mismatches ({len(mismatched)}): {head(shapes)}")
    return "\n".join(lines)


class _Tie(torch.autograd.Function):
    """Identity on ``main``; the extra tensors get a zero gradient (see :func:`tie_outputs`)."""

    @staticmethod
    def forward(ctx: Any, main: Tensor, *extra: Tensor) -> Tensor:  # type: ignore[override]
        ctx.shapes = [(t.shape, t.dtype, t.device) for t in extra]
        return main.view_as(main)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, ...]:  # type: ignore[override]
        zeros = [torch.zeros(s, dtype=d, device=dev) for s, d, dev in ctx.shapes]
        return (grad, *zeros)


def tie_outputs(main: Tensor, *extra: Tensor) -> Tensor:
    """``main`` unchanged, with ``extra`` tensors on its autograd path (zero gradient to them).

    Puts a training branch's outputs (DAAF's HAB/PAB, BoT's part head) on the path of the train
    dict's ``features``, so every parameter receives a gradient (zero from this path) even from a
    loss that ignores the branch: what the registry conformance test and an unused-parameter-free
    DistributedDataParallel expect. The branch's own loss comes from ``extra_losses``.
    """
    return _Tie.apply(main, *extra)
