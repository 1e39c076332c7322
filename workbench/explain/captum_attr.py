"""Any captum attribution on the workbench's targets and pairs, returned as an ``Explanation``.

Captum (Kokhlikyan et al. 2020) explains a scalar per example; the workbench supplies the scalar:
``target(model(x))`` for :func:`~workbench.explain.explain`, and for pairs the similarity
−‖e_q − e_g‖₂ of each side with its partner's embedding held fixed — the partial derivative of
the joint pair score, so both sides explain the same number. Pixel methods (``Saliency``,
``IntegratedGradients``, ``Occlusion``, ``InputXGradient``, …) give (B, H, W) maps (attributions
summed over colour channels, signed); ``Layer*`` methods (``LayerGradCam``, ``LayerConductance``,
…) take a layer from ``layer_info`` and give maps at its resolution, summed over channels.
captum is imported only when the method runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from workbench.evaluate.distance import ranking_metric
from workbench.explain.base import (
    Explainer,
    ExplainError,
    MapResult,
    Target,
    _score,
    pair_similarity,
    register_explainer,
)
from workbench.explain.targets import EmbeddingSimilarity
from workbench.models.base import get_layer

__all__ = ["CaptumAttribution", "CaptumConfig"]


@dataclass
class CaptumConfig:
    """Attributes:
    algorithm: a class name of ``captum.attr`` (``"IntegratedGradients"``, ``"LayerGradCam"``).
    attribute_kwargs: keyword arguments of its ``attribute`` (``n_steps``, ``sliding_window_shapes``…).
    """

    algorithm: str = "IntegratedGradients"
    attribute_kwargs: dict[str, Any] = field(default_factory=dict)


@register_explainer("captum")
class CaptumAttribution(Explainer):
    """A captum attribution algorithm behind the workbench's interface."""

    config_class = CaptumConfig

    def __init__(self, model: nn.Module, layer: str | None = None, **params: Any) -> None:
        algorithm = params.get("algorithm", CaptumConfig.algorithm)
        self._layered = str(algorithm).startswith("Layer")
        super().__init__(model, layer, **params)
        try:
            import captum.attr as attr
        except ImportError as e:  # pragma: no cover - captum is a dev/explain extra
            raise ExplainError("the captum method needs captum: pip install captum") from e
        self._cls = getattr(attr, str(self.config.algorithm), None)
        names = _algorithms(attr)
        if self.config.algorithm not in names:
            raise ExplainError(
                f"captum.attr has no algorithm {self.config.algorithm!r} (an attribution "
                f"algorithm that takes a forward function); choose one of {', '.join(names)}"
            )
        _check_kwargs(self._cls, self.config.algorithm, self.config.attribute_kwargs)

    def resolve_layer(self, model: nn.Module, layer: str | None) -> str | None:
        """A layer for ``Layer*`` algorithms; none (input pixels) for the others."""
        if self._layered:
            return super().resolve_layer(model, layer)
        if layer is not None:
            raise ExplainError(
                f"{self.config.algorithm} attributes input pixels and takes no layer; "
                f"use a Layer* algorithm (e.g. LayerGradCam) for layer maps"
            )
        return None

    def _attribute(self, images: Tensor, forward, rows: Tensor) -> Tensor:
        if self._layered:
            algo = self._cls(forward, get_layer(self.model, self.layer))
        else:
            algo = self._cls(forward)
        with torch.enable_grad():
            try:
                attr = algo.attribute(
                    images, additional_forward_args=(rows,), **self.config.attribute_kwargs
                )
            except RuntimeError as e:
                if "not have been used in the graph" not in str(e):
                    raise
                raise ExplainError(
                    f"captum {self.config.algorithm}: the embedding of {type(self.model).__name__} "
                    f"does not depend differentiably on layer {self.layer!r} (a frozen part run "
                    f"under no_grad); choose a later layer"
                ) from None
        if isinstance(attr, tuple):
            attr = attr[0]
        return attr.detach().sum(1)  # (B, H, W) or (B, h, w)

    def compute(self, images: Tensor, target: Callable[..., Tensor] | None) -> MapResult:
        """Captum's attribution of the target's score, summed over channels."""
        if target is None:
            raise ExplainError("captum needs a target (see workbench.explain.targets)")

        def forward(x: Tensor, rows: Tensor) -> Tensor:
            # captum repeats inputs (IntegratedGradients' steps, Occlusion's windows) and the
            # extra ``rows`` argument alike: per-image references follow their image
            chosen = target.select(rows.long()) if isinstance(target, Target) else target
            return _score(chosen, self.model(x), self.model, x.shape[0])

        rows = torch.arange(images.shape[0], device=images.device)
        with torch.no_grad():
            scores = forward(images, rows)
        return MapResult(self._attribute(images, forward, rows), scores)

    def pair_maps(self, query: Tensor, gallery: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Each side attributed against its partner's embedding (two captum runs)."""
        n = gallery.shape[0]
        with torch.no_grad():
            emb_q = self.model(query).expand(n, -1)
            emb_g = self.model(gallery)
        metric = ranking_metric(self.model)
        _, distance = pair_similarity(emb_q, emb_g, metric)
        emb_g_target = EmbeddingSimilarity(emb_g, metric)
        q_maps = self.compute(query.expand(n, -1, -1, -1), emb_g_target).maps
        g_maps = self.compute(gallery, EmbeddingSimilarity(emb_q, metric)).maps
        return q_maps, g_maps, distance


#: captum classes that wrap another algorithm or need a neuron selector, not a forward function
_NOT_FORWARD = ("NoiseTunnel", "Neuron")
#: ``attribute`` arguments the adapter sets itself
_ADAPTER_ARGS = ("self", "inputs", "additional_forward_args", "target")
#: counts that captum checks with ``assert`` (a raw AssertionError) or not at all
_POSITIVE = ("n_steps", "n_samples", "internal_batch_size", "perturbations_per_eval")


def _algorithms(attr: Any) -> list[str]:
    """Names of ``captum.attr`` attribution algorithms the adapter can run."""
    base = attr.Attribution
    return sorted(
        n
        for n in dir(attr)
        if isinstance(getattr(attr, n), type)
        and issubclass(getattr(attr, n), base)
        and "Attribution" not in n
        and not n.startswith(_NOT_FORWARD)
    )


def _check_kwargs(cls: type, algorithm: str, kwargs: Any) -> None:
    """``attribute_kwargs`` must be keyword arguments of ``cls.attribute``, counts >= 1."""
    if not isinstance(kwargs, dict):
        raise ExplainError(
            f"attribute_kwargs must be a dict of keyword arguments of {algorithm}.attribute, got "
            f"{type(kwargs).__name__}"
        )
    allowed = [p for p in inspect.signature(cls.attribute).parameters if p not in _ADAPTER_ARGS]
    unknown = sorted(k for k in kwargs if k not in allowed)
    if unknown:
        taken = [k for k in unknown if k in _ADAPTER_ARGS]
        why = f" ({', '.join(taken)} is set by the workbench)" if taken else ""
        raise ExplainError(
            f"{algorithm}.attribute takes no argument {', '.join(map(repr, unknown))}{why}; "
            f"it takes {', '.join(allowed)}"
        )
    for name in _POSITIVE:
        value = kwargs.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ExplainError(f"{algorithm}: {name} must be an int >= 1, got {value!r}")
