"""The explanation pipeline, written once: results, the ``Explainer`` base class, the registry.

Every method is a small :class:`Explainer` subclass registered by name (``@register_explainer``)
that overrides one hook:

* gradient methods (Grad-CAM and its relatives) override :meth:`Explainer.combine`, which turns
  the layer's activations ``A`` (B, C, h, w) and the gradients ``∂score/∂A`` into maps;
* read-out methods (attention maps, CAM, relation maps) override :meth:`Explainer.compute`,
  which returns a :class:`MapResult` (maps, scores, names, extras) and keeps nothing on the
  explainer.

What a model can do is read from its declaration (``layer_info`` kinds and
``model.capabilities``, :mod:`workbench.models.base`), never probed.

The base class owns everything else: eval mode, the device, the forward hook on the chosen layer
(always removed, on success and on error), gradients **down to that layer only** (the hook hands
the rest of the network a fresh leaf, so ``torch.autograd.grad`` stops there and no parameter
gradient is computed), pair explanations, and packaging into :class:`Explanation`.

Maps keep the layer's own resolution and raw signed values on the model's device; ReLU, scaling
and colour are the renderer's choice (``workbench.viz``), so one colour scale can span a rank list.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.evaluate.distance import pair_similarity as _similarity
from workbench.evaluate.distance import ranking_metric, similarity_to_distance
from workbench.models.base import (
    LayerInfo,
    Pooling,
    eval_mode,
    get_layer,
    get_layer_info,
    pooling_of,
)
from workbench.models.inputs import check_images

__all__ = [
    "ExplainError",
    "Explainer",
    "Explanation",
    "MapResult",
    "PairExplanation",
    "Target",
    "UnknownExplainerError",
    "capture_layer",
    "explain",
    "explain_pair",
    "get_explainer",
    "list_explainers",
    "register_explainer",
]


class ExplainError(ValueError):
    """An explanation that cannot be made as asked (wrong layer kind, wrong shapes, ...)."""


class UnknownExplainerError(LookupError):
    """A method name that is not registered (the message lists the registered ones)."""


# -- results ------------------------------------------------------------------------------------
@dataclass
class Explanation:
    """Heat maps of a batch of images, as computed (no ReLU, no normalisation).

    Attributes:
        maps: (B, h, w), or (B, k, h, w) for methods that give k maps per image (channel groups,
            attributes, keypoints); at the layer's resolution, on the model's device.
        method: registry name of the explainer.
        layer: the ``layer_info`` name the maps live on (None for input-space methods).
        target: a description of what was explained (``repr`` of the target).
        scores: (B,) the explained score of each image (e.g. the pair similarity), or None.
        input_size: (H, W) of the explained images, for :meth:`resized`.
        names: labels of the k maps of a (B, k, h, w) result.
    """

    maps: Tensor
    method: str
    layer: str | None
    target: str
    scores: Tensor | None
    input_size: tuple[int, int]
    names: tuple[str, ...] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.maps.shape[0]

    def resized(self, size: tuple[int, int] | None = None) -> Tensor:
        """Maps bilinearly upsampled (``align_corners=False``) to ``size`` (default: the input)."""
        size = tuple(size or self.input_size)
        maps = self.maps
        flat = maps.unsqueeze(1) if maps.dim() == 3 else maps
        if tuple(flat.shape[-2:]) != size:
            flat = F.interpolate(flat.float(), size=size, mode="bilinear", align_corners=False)
        return flat[:, 0] if maps.dim() == 3 else flat

    def to(self, device: str | torch.device) -> Explanation:
        """The same explanation with its maps and scores on ``device``."""
        scores = None if self.scores is None else self.scores.to(device)
        return dataclasses.replace(self, maps=self.maps.to(device), scores=scores)

    def __getitem__(self, index: int | slice | Tensor) -> Explanation:
        """Rows of the batch (``exp[0]``, ``exp[2:5]``), as an Explanation."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        scores = None if self.scores is None else self.scores[index]
        return dataclasses.replace(self, maps=self.maps[index], scores=scores)


@dataclass
class MapResult:
    """What :meth:`Explainer.compute` returns for a batch of B images.

    Attributes:
        maps: (B, h, w) or (B, k, h, w), raw, at the layer's resolution.
        scores: (B,) the explained score of each image, or None (read-outs).
        names: labels of the k maps (None: the explainer's :meth:`Explainer.map_names`).
        extras: method-specific results (e.g. the shuffle's ``score`` and ``grid``).
    """

    maps: Tensor
    scores: Tensor | None = None
    names: tuple[str, ...] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class PairExplanation:
    """Both sides of row-aligned (query, gallery) pairs, from one computation.

    ``query.maps[i]`` and ``gallery.maps[i]`` explain the similarity of pair ``i`` under the
    model's ranking metric; with a single query broadcast against B gallery images,
    ``query.maps`` holds one map of that query per gallery image. ``distance`` (B,) is the
    ranking distance of the pair (``metric``: 1 − cos for ``"cosine"``, ‖e_q − e_g‖₂ for
    ``"euclidean"``), the number :func:`workbench.evaluate.distance.compute_distance` ranked.
    ``extras`` holds method-specific results (the decomposition's position-pair matrix).
    """

    query: Explanation
    gallery: Explanation
    distance: Tensor
    metric: str = "cosine"
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.distance.shape[0]


class Target:
    """Base of the targets in :mod:`workbench.explain.targets` (dataclasses holding tensors).

    Explainers move a ``Target`` to the model's device (:meth:`to`) and give each image of a
    batch its own reference (:meth:`select`, used when captum repeats inputs); any other callable
    ``(embedding, model) -> (B,)`` is used as it is.
    """

    def to(self, device: str | torch.device) -> Target:
        """The target with its tensors on ``device``."""
        moved = {k: v.to(device) for k, v in vars(self).items() if isinstance(v, Tensor)}
        return dataclasses.replace(self, **moved) if moved else self  # type: ignore[type-var]

    def select(self, rows: Tensor) -> Target:
        """The target for the images ``rows`` of its batch (per-image references follow)."""
        per_image = {"reference": 2, "label": 1}  # field → its dim when given per image
        picked = {
            k: v[rows]
            for k, v in vars(self).items()
            if isinstance(v, Tensor) and per_image.get(k) == v.dim() and v.numel() > 1
        }
        return dataclasses.replace(self, **picked) if picked else self  # type: ignore[type-var]


# -- hooks --------------------------------------------------------------------------------------
@dataclass
class _Capture:
    output: Tensor | None = None
    calls: int = 0


@contextmanager
def capture_layer(
    model: nn.Module,
    layer: str,
    *,
    replace: Callable[[Tensor], Tensor] | None = None,
) -> Iterator[_Capture]:
    """Record the output of ``get_layer(model, layer)`` during a forward pass.

    Args:
        replace: maps the captured output to what the rest of the network receives (e.g. a
            fresh leaf that requires grad, or a batch with rows repeated). Its result is stored.

    The hook is removed when the block exits, whatever happens inside it. A layer module that
    runs twice in one forward pass is refused (its maps would be ambiguous).
    """
    module = get_layer(model, layer)
    cap = _Capture()

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> Any:
        if not isinstance(output, Tensor):
            raise ExplainError(
                f"layer {layer!r} ({type(_module).__name__}) returns a {type(output).__name__}, "
                f"not a tensor; choose another layer from model.layer_info"
            )
        cap.calls += 1
        if cap.calls > 1:
            raise ExplainError(
                f"layer {layer!r} runs more than once per forward pass; its maps are ambiguous"
            )
        out = replace(output) if replace is not None else output
        cap.output = out
        return out

    handle = module.register_forward_hook(hook)
    try:
        yield cap
        if cap.calls == 0:
            raise ExplainError(
                f"layer {layer!r} ({type(module).__name__}) did not run in the forward pass; "
                f"its layer_info module path does not produce a map in eval mode"
            )
    finally:
        handle.remove()


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def pair_similarity(
    query_emb: Tensor, gallery_emb: Tensor, metric: str = "cosine"
) -> tuple[Tensor, Tensor]:
    """``(score, distance)`` (B,) of row-aligned embeddings under the ranking ``metric``:
    cos(e_q, e_g) and 1 − cos, or −‖e_q − e_g‖₂ and ‖e_q − e_g‖₂."""
    score = _similarity(query_emb, gallery_emb, metric)
    return score, similarity_to_distance(score, metric)


def _pooling(model: nn.Module) -> Pooling | None:
    """The model's declared :class:`~workbench.models.base.Pooling` (None outside the contract)."""
    return pooling_of(model)


#: what a pair explanation explains, per ranking metric (the ``target`` of its Explanations)
PAIR_SCORES = {
    "cosine": "pair similarity cos(e_q, e_g)",
    "euclidean": "pair similarity −‖e_q − e_g‖₂",
}


# -- the base class -------------------------------------------------------------------------------
@dataclass
class ExplainerConfig:
    """Parameters of a method (none by default); widgets build their controls from the fields."""


class Explainer:
    """Base class of every explanation method; one subclass per file, registered by name.

    Class attributes:
        name: registry name (set by ``@register_explainer``).
        config_class: dataclass of the method's parameters (``explain(..., **params)``).
        layer_kinds: the ``LayerInfo.kind`` values the method accepts; ``None`` = no layer.
        needs_target: False for read-outs that do not depend on a score (attention maps).
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = ExplainerConfig
    layer_kinds: ClassVar[tuple[str, ...] | None] = ("stage", "attention")
    needs_target: ClassVar[bool] = True

    def __init__(self, model: nn.Module, layer: str | None = None, **params: Any) -> None:
        if not self.supports(model):
            raise ExplainError(self.unsupported_reason(model))
        self.model = model
        self.device = _device_of(model)
        try:
            self.config = self.config_class(**params)
        except TypeError as e:
            valid = [f.name for f in dataclasses.fields(self.config_class)]
            raise ExplainError(
                f"{self.name}: bad parameters {sorted(params)} ({e}); valid parameters: "
                f"{', '.join(valid) or 'none'}"
            ) from None
        self.layer = self.resolve_layer(model, layer)

    # -- what a method supports (classmethods: list_explainers calls them on the class) --------
    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        """Whether the method applies to ``model`` (default: it has a layer of an accepted kind)."""
        if cls.layer_kinds is None:
            return True
        return bool(cls.candidate_layers(model))

    @classmethod
    def unsupported_reason(cls, model: nn.Module) -> str:
        """Why :meth:`supports` is False for ``model`` (the error message of the constructor)."""
        kinds = ", ".join(cls.layer_kinds or ())
        return (
            f"{cls.name} does not apply to {type(model).__name__}: it has no layer of kind {kinds}"
        )

    @classmethod
    def candidate_layers(cls, model: nn.Module) -> list[LayerInfo]:
        """The model's layers this method can explain, in forward order."""
        rows = getattr(model, "layer_info", None) or []  # the contract's table (none: no layers)
        kinds = cls.layer_kinds or ()
        return [r for r in rows if r.kind in kinds and r.reduction is not None]  # spatial maps

    @classmethod
    def default_layer(cls, model: nn.Module) -> str | None:
        """The layer used when none is named: the map pooled into the embedding if the model
        declares it (``pooling``), else the last candidate."""
        if cls.layer_kinds is None:
            return None
        names = [r.name for r in cls.candidate_layers(model)]
        pooling = _pooling(model)
        if pooling is not None and pooling.layer in names:
            return pooling.layer
        return names[-1] if names else None

    def resolve_layer(self, model: nn.Module, layer: str | None) -> str | None:
        """``layer`` checked against :meth:`candidate_layers` (None: :meth:`default_layer`)."""
        if self.layer_kinds is None:
            if layer is not None:
                raise ExplainError(f"{self.name} takes no layer (it works on the input pixels)")
            return None
        if layer is None:
            return self.default_layer(model)
        row = get_layer_info(model, layer)  # unknown names fail listing the valid ones
        if row.name not in [r.name for r in self.candidate_layers(model)]:
            valid = ", ".join(r.name for r in self.candidate_layers(model))
            raise ExplainError(
                f"{self.name} cannot use layer {layer!r} (a {row.kind}); it needs a spatial map "
                f"of kind {', '.join(self.layer_kinds)}: {valid}"
            )
        return layer

    # -- the hooks a method overrides ---------------------------------------------------------
    def combine(self, activations: Tensor, gradients: Tensor) -> Tensor:
        """Gradient methods: (B, C, h, w) activations and ∂score/∂activations → maps."""
        raise NotImplementedError(f"{type(self).__name__} must override combine() or compute()")

    def compute(self, images: Tensor, target: Callable[..., Tensor] | None) -> MapResult:
        """The maps (and scores) of ``images`` for ``target``; the default runs the gradient
        pipeline (activations and gradients at ``self.layer``) and :meth:`combine`."""
        if target is None:
            raise ExplainError(f"{self.name} needs a target (see workbench.explain.targets)")
        activations, gradients, scores = self.gradients(images, target)
        return MapResult(self.combine(activations, gradients), scores)

    def pair_maps(self, query: Tensor, gallery: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(query_maps, gallery_maps, distance)`` of row-aligned pairs (query rows 1 or B).

        Default for gradient methods: one forward of the 1 + B (or 2B) images; at the layer the
        query's activations are repeated once per pair, so each copy receives the gradient of
        its own pair's similarity; one ``autograd.grad`` gives both sides. A model that mixes
        the layer's output with another branch of the same batch (the AAM interpreter combines
        its attention maps with the target's map; attention weights and the features they
        weigh) declares that its batch may not grow at that layer (``LayerInfo.batch_may_grow``);
        the query is then repeated at the input instead (2B images). Read-out methods that do
        not depend on the partner override this (or use :meth:`compute` on both sides).
        """
        n = gallery.shape[0]
        nq = query.shape[0]
        if not self.needs_target:  # read-outs: each side's maps do not depend on its partner
            return self.partner_free_pair_maps(query, gallery)
        leaves: dict[str, Tensor] = {}

        def split(output: Tensor) -> Tensor:
            q, g = output[:nq].detach(), output[nq:].detach()
            leaves["q"] = q.expand(n, *q.shape[1:]).clone().requires_grad_(True)
            leaves["g"] = g.requires_grad_(True)
            return torch.cat([leaves["q"], leaves["g"]])

        def run(images: Tensor) -> Tensor:
            with capture_layer(self.model, self.layer, replace=split):
                return self.model(images)

        if nq != n and not get_layer_info(self.model, self.layer).batch_may_grow:
            query, nq = query.expand(n, -1, -1, -1), n
        with torch.enable_grad():
            emb = run(torch.cat([query, gallery]))
            score, distance = pair_similarity(emb[:n], emb[n:], ranking_metric(self.model))
            grad_q, grad_g = self._grad(score.sum(), [leaves["q"], leaves["g"]])
        return (
            self.combine(leaves["q"].detach(), grad_q),
            self.combine(leaves["g"].detach(), grad_g),
            distance.detach(),
        )

    def partner_free_pair_maps(
        self, query: Tensor, gallery: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Pairs for methods whose maps ignore the partner: one pass over query + gallery."""
        n, nq = gallery.shape[0], query.shape[0]
        both = torch.cat([query, gallery])
        maps = self.compute(both, None).maps
        with torch.no_grad():
            emb = self.model(both)
        _, distance = pair_similarity(emb[:nq].expand(n, -1), emb[nq:], ranking_metric(self.model))
        return maps[:nq].expand(n, *maps.shape[1:]), maps[nq:], distance

    # -- shared machinery ------------------------------------------------------------------------
    def gradients(
        self, images: Tensor, target: Callable[..., Tensor]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Activations at ``self.layer``, ∂score/∂activations and the (B,) scores.

        One forward pass (no graph before the layer) and one ``autograd.grad`` down to the
        layer. Rows are independent in eval mode, so the gradient of the summed score gives
        every image its own gradient.
        """

        def leaf(output: Tensor) -> Tensor:
            return output.detach().requires_grad_(True)

        with torch.enable_grad(), capture_layer(self.model, self.layer, replace=leaf) as cap:
            scores = _score(target, self.model(images), self.model, images.shape[0])
            (grads,) = self._grad(scores.sum(), [cap.output])
        return cap.output.detach(), grads, scores.detach()

    def _grad(self, output: Tensor, inputs: list[Tensor], **kwargs: Any) -> tuple[Tensor, ...]:
        """``torch.autograd.grad`` to the layer's leaves, failing clearly when the embedding does
        not depend differentiably on the layer (a frozen part of the model run under no_grad)."""
        grads = None
        if output.requires_grad:
            grads = torch.autograd.grad(output, inputs, allow_unused=True, **kwargs)
        if grads is None or any(g is None for g in grads):
            working = ", ".join(r.name for r in self.candidate_layers(self.model))
            raise ExplainError(
                f"{self.name}: the embedding of {type(self.model).__name__} is computed without "
                f"gradients from layer {self.layer!r} (a frozen part run under no_grad, such as "
                f"an interpreter's shared target stages), so nothing can be differentiated "
                f"there; choose a later layer (candidates: {working})"
            )
        return grads

    def activations(self, images: Tensor) -> Tensor:
        """The layer's output for ``images`` (no graph)."""
        with torch.no_grad(), eval_mode(self.model), capture_layer(self.model, self.layer) as cap:
            self.model(images)
        return cap.output

    # -- public entry points -------------------------------------------------------------------
    def explain(self, images: Tensor, target: Callable[..., Tensor] | None = None) -> Explanation:
        """Maps of a (B, 3, H, W) batch for ``target`` (None for read-outs), packaged."""
        images = check_images(self.model, images).to(self.device)
        if target is not None and not callable(target):
            raise ExplainError(
                f"target must be a callable (embedding, model) -> (B,) scores, e.g. "
                f"workbench.explain.targets.EmbeddingSimilarity(reference); got {target!r}"
            )
        if isinstance(target, Target):
            target = target.to(self.device)
        with eval_mode(self.model):
            result = self.compute(images, target)
        return self._package(result.maps, result.scores, target, images, result)

    def explain_pair(self, query: Tensor, gallery: Tensor) -> PairExplanation:
        """Both sides of row-aligned pairs (or one query against B gallery images)."""
        query = check_images(self.model, query, where="query")
        gallery = check_images(self.model, gallery, where="gallery")
        n, nq = gallery.shape[0], query.shape[0]
        if nq not in (1, n):
            raise ExplainError(
                f"query has {nq} images and gallery {n}: pass row-aligned pairs (the same "
                f"count) or a single query (1, 3, H, W) to explain against every gallery image"
            )
        if query.shape[1:] != gallery.shape[1:]:
            raise ExplainError(
                f"query images are {tuple(query.shape[2:])} and gallery images "
                f"{tuple(gallery.shape[2:])}; resize both to the model's input size"
            )
        query, gallery = query.to(self.device), gallery.to(self.device)
        with eval_mode(self.model):
            q_maps, g_maps, distance = self.pair_maps(query, gallery)
        metric = ranking_metric(self.model)
        what = PAIR_SCORES[metric]
        score = 1 - distance if metric == "cosine" else -distance
        return PairExplanation(
            query=self._package(q_maps, score, what, query),
            gallery=self._package(g_maps, score, what, gallery),
            distance=distance,
            metric=metric,
        )

    def map_names(self) -> tuple[str, ...] | None:
        """Labels of the k maps of a (B, k, h, w) result (None for one map per image)."""
        return None

    def _package(
        self,
        maps: Tensor,
        scores: Tensor | None,
        target: Any,
        images: Tensor,
        result: MapResult | None = None,
    ) -> Explanation:
        names = result.names if result is not None else None
        return Explanation(
            maps=maps.detach(),
            method=self.name,
            layer=self.layer,
            target=target if isinstance(target, str) else repr(target),
            scores=None if scores is None else scores.detach(),
            input_size=(int(images.shape[2]), int(images.shape[3])),
            names=names or self.map_names(),
            extras=dict(result.extras) if result is not None else {},
        )


def _score(
    target: Callable[..., Tensor], embedding: Tensor, model: nn.Module, batch: int
) -> Tensor:
    scores = target(embedding, model)
    if not isinstance(scores, Tensor) or scores.shape != (batch,):
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ExplainError(
            f"target {target!r} must return one score per image, shape ({batch},), got {shape}"
        )
    return scores


# -- registry -------------------------------------------------------------------------------------
E = TypeVar("E", bound=type[Explainer])
_EXPLAINERS: dict[str, type[Explainer]] = {}


def register_explainer(name: str) -> Callable[[E], E]:
    """Class decorator: register an :class:`Explainer` subclass under ``name``."""

    def decorator(cls: E) -> E:
        if not (isinstance(cls, type) and issubclass(cls, Explainer)):
            raise TypeError(f"@register_explainer({name!r}) needs an Explainer subclass")
        if name in _EXPLAINERS:
            raise ValueError(f"explainer {name!r} is already registered by {_EXPLAINERS[name]}")
        cls.name = name
        _EXPLAINERS[name] = cls
        return cls

    return decorator


def get_explainer(name: str) -> type[Explainer]:
    """The class registered as ``name``; fails listing the registered names."""
    _load_all()
    try:
        return _EXPLAINERS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), _EXPLAINERS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownExplainerError(
            f"unknown explanation method {name!r}; registered: {', '.join(sorted(_EXPLAINERS))}.{hint}"
        ) from None


def list_explainers(model: nn.Module | None = None) -> list[str]:
    """Registered method names, sorted; with a model, only the methods that apply to it."""
    _load_all()
    names = sorted(_EXPLAINERS)
    if model is None:
        return names
    return [n for n in names if _EXPLAINERS[n].supports(model)]


_REGISTERS = re.compile(r"^@register_explainer\(", re.MULTILINE)


def _load_all() -> None:
    """Import the modules of ``workbench.explain`` that register a method (a line starting with
    ``@register_explainer(``); targets, metrics and the attribute tables are not imported."""
    import importlib

    import workbench.explain as package

    for path in sorted(Path(package.__path__[0]).glob("[!_]*.py")):
        if _REGISTERS.search(path.read_text(encoding="utf-8")):
            importlib.import_module(f"{package.__name__}.{path.stem}")


def explain(
    method: str,
    model: nn.Module,
    images: Tensor,
    target: Callable[..., Tensor] | None = None,
    *,
    layer: str | None = None,
    **params: Any,
) -> Explanation:
    """Explain ``target`` (a callable ``(embedding, model) -> (B,)``) for a batch of images.

    Args:
        method: a name from :func:`list_explainers`.
        model: a model honouring the contract (``layer_info``, eval-mode embedding).
        images: (B, 3, H, W), normalised as the model expects.
        target: what to explain, from :mod:`workbench.explain.targets`; read-out methods
            (attention maps) take none.
        layer: a name from ``model.layer_info`` (default: the method's choice).
        **params: fields of the method's ``config_class``.

    Example:
        >>> exp = explain("gradcam", model, images, EmbeddingSimilarity(ref))  # doctest: +SKIP
        >>> exp.maps.shape  # (B, 16, 8) at layer4 of a 256×128 BoT  # doctest: +SKIP
    """
    return get_explainer(method)(model, layer, **params).explain(images, target)


def explain_pair(
    method: str,
    model: nn.Module,
    query: Tensor,
    gallery: Tensor,
    *,
    layer: str | None = None,
    **params: Any,
) -> PairExplanation:
    """Explain the ranking similarity of row-aligned (query, gallery) pairs, both sides.

    The similarity is the one the model ranks by (``model.ranking_metric``): cos(e_q, e_g) for
    cosine models, −‖e_q − e_g‖₂ for Euclidean ones; ``.distance`` is the ranking distance.
    ``query`` is (B, 3, H, W), or (1, 3, H, W) broadcast against the B gallery images (a query
    and its top-k); ``.query.maps`` then holds one map of the query per gallery image.
    """
    return get_explainer(method)(model, layer, **params).explain_pair(query, gallery)
