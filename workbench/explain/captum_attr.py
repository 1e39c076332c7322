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
        self._cls = getattr(attr, self.config.algorithm, None)
        if not isinstance(self._cls, type):
            names = sorted(n for n in dir(attr) if n[0].isupper() and "Attribution" not in n)
            raise ExplainError(
                f"captum.attr has no algorithm {self.config.algorithm!r}; e.g. {', '.join(names[:12])}"
            )

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
