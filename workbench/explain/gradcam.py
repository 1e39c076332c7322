"""Grad-CAM (Selvaraju et al., ICCV 2017, eq. 1–2) on any layer, for any target, plus a fast path.

``maps = Σ_c α_c · A_c`` with ``α_c = (1/hw) Σ_ij ∂score/∂A_c(i, j)`` — exactly eq. 1–2 without the
ReLU of eq. 2 (ReLU and scaling belong to the renderer), so the maps are signed and comparable
across images. Equal to captum's ``LayerGradCam(..., relu_attributions=False)``.

**Fast path.** When the layer is the map that is global-average-pooled into the embedding
(``model.pooling()`` declares it; BoT: ``layer4`` → GAP → BNNeck), ``∂score/∂A_c(i, j) =
∂score/∂g_c / hw`` is constant over space, so α needs only the gradient with respect to the pooled
vector ``g`` — a backward through the head on (B, C) vectors — and the maps are one matrix
product with the (cached) feature maps. It is exact (tests check it against autograd);
``explain`` and ``explain_pair`` take it automatically, ``fast=False`` turns it off.
:func:`pair_gradcam` exposes it on feature maps the caller has cached (a query against its top-k
in a rank list).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from workbench.evaluate.distance import ranking_metric
from workbench.explain.base import (
    Explainer,
    MapResult,
    _pooling,
    _score,
    pair_similarity,
    register_explainer,
)

__all__ = ["GradCAM", "GradCAMConfig", "pair_gradcam", "pooled_head"]


@dataclass
class GradCAMConfig:
    """Attributes:
    fast: use the closed form on the pooled layer where it is exact (same maps, ~10× faster).
    """

    fast: bool = True


def pair_gradcam(
    head: Callable[[Tensor], Tensor],
    query_maps: Tensor,
    gallery_maps: Tensor,
    metric: str = "cosine",
) -> tuple[Tensor, Tensor, Tensor]:
    """Grad-CAM of the pair similarity from pooled-layer feature maps, without the network.

    Args:
        head: pooled feature (N, C) → embedding (N, D), e.g. :func:`pooled_head` of the model.
        query_maps: (1, C, h, w) one query (broadcast) or (B, C, h, w) row-aligned queries.
        gallery_maps: (B, C, h, w).
        metric: the ranking metric whose similarity is explained (``model.ranking_metric``).

    Returns:
        ``(query_maps (B, h, w), gallery_maps (B, h, w), distance (B,))``, the distance in
        ``metric``.
    """
    n, hw = gallery_maps.shape[0], gallery_maps.shape[2] * gallery_maps.shape[3]
    with torch.enable_grad():
        g_q = query_maps.mean((2, 3)).expand(n, -1).clone().requires_grad_(True)  # (B, C)
        g_g = gallery_maps.mean((2, 3)).requires_grad_(True)  # (B, C)
        score, distance = pair_similarity(head(g_q), head(g_g), metric)
        d_q, d_g = torch.autograd.grad(score.sum(), [g_q, g_g])
    alpha_q, alpha_g = d_q / hw, d_g / hw  # (B, C): α_c = mean_ij ∂s/∂A_c(i, j)
    if query_maps.shape[0] == 1:  # one query: all B maps in one matrix product
        q = torch.einsum("bc,chw->bhw", alpha_q, query_maps[0])
    else:
        q = torch.einsum("bc,bchw->bhw", alpha_q, query_maps)
    g = torch.einsum("bc,bchw->bhw", alpha_g, gallery_maps)
    return q, g, distance.detach()


@register_explainer("gradcam")
class GradCAM(Explainer):
    """Grad-CAM on any spatial layer (stages, attention outputs) for any target."""

    config_class = GradCAMConfig

    def combine(self, activations: Tensor, gradients: Tensor) -> Tensor:
        """Grad-CAM eq. 1–2 without the ReLU: channel weights = the gradients' spatial mean."""
        alpha = gradients.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1), eq. 1
        return (alpha * activations).sum(1)  # (B, h, w), eq. 2 without ReLU

    def fast_head(self) -> Callable[[Tensor], Tensor] | None:
        """The pooled feature → embedding head when the closed form is exact here, else None."""
        head = pooled_head(self.model)
        if self.config.fast and head is not None and head[0] == self.layer:
            return head[1]
        return None

    def compute(self, images: Tensor, target: Callable[..., Tensor] | None) -> MapResult:
        """The gradient pipeline, or its exact closed form on the pooled layer (``fast``)."""
        head = self.fast_head()
        if head is None or target is None:
            return super().compute(images, target)
        maps = self.activations(images)  # (B, C, h, w), no graph
        with torch.enable_grad():
            pooled = maps.mean((2, 3)).requires_grad_(True)  # (B, C)
            scores = _score(target, head(pooled), self.model, images.shape[0])
            (d_pooled,) = torch.autograd.grad(scores.sum(), pooled)
        alpha = d_pooled / (maps.shape[2] * maps.shape[3])
        return MapResult(torch.einsum("bc,bchw->bhw", alpha, maps), scores.detach())

    def pair_maps(self, query: Tensor, gallery: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Both sides in closed form on the pooled layer (``pair_gradcam``), else the base's."""
        head = self.fast_head()
        if head is None:
            return super().pair_maps(query, gallery)
        maps = self.activations(torch.cat([query, gallery]))
        nq = query.shape[0]
        return pair_gradcam(head, maps[:nq], maps[nq:], ranking_metric(self.model))


def pooled_head(model: nn.Module) -> tuple[str, Callable[[Tensor], Tensor]] | None:
    """``(layer, head)`` when the model declares global average pooling of ``layer`` into its
    embedding (:class:`~workbench.models.base.Pooling` with one part): ``head`` maps the pooled
    (N, C) feature to the (N, D) embedding. None otherwise (no closed form)."""
    pooling = _pooling(model)
    if pooling is None or pooling.parts != 1:
        return None
    return pooling.layer, lambda g: pooling.from_pooled(g[:, None])
