"""A query against its ranked gallery images: every pair of a rank list explained at once.

:func:`explain_ranklist` is what the ranking browser and the rank-list figures call. When the
method has an exact closed form on the pooled layer (Grad-CAM's, :func:`~workbench.explain.
gradcam.pair_gradcam`; the pair decomposition, :func:`~workbench.explain.decomposition.
decompose_maps`) and the caller holds that layer's maps (kept from the ranking's own extraction
pass), no network runs at all; otherwise the query is broadcast against the k gallery images in
one :func:`~workbench.explain.explain_pair`. Either way the result equals each pair explained on
its own, and its ``distance`` is the ranking distance.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from workbench.evaluate.distance import ranking_metric
from workbench.explain.base import (
    ExplainError,
    Explanation,
    PairExplanation,
    _pooling,
    explain_pair,
    get_explainer,
)
from workbench.explain.decomposition import decompose_maps
from workbench.explain.gradcam import pair_gradcam, pooled_head
from workbench.models.base import eval_mode

__all__ = ["closed_form_layer", "explain_ranklist"]


def closed_form_layer(
    method: str, model: nn.Module, layer: str | None = None, **params: Any
) -> str | None:
    """The pooled layer when ``method`` (at ``layer``, with ``params``) can be computed from
    cached maps of it; None when it needs the network."""
    pooling = _pooling(model)
    if pooling is None or layer not in (None, pooling.layer):
        return None
    if method == "decomposition":
        return pooling.layer
    if method == "gradcam" and params.get("fast", True) and pooled_head(model) is not None:
        return pooling.layer
    return None


def explain_ranklist(
    method: str,
    model: nn.Module,
    query: Tensor | None,
    gallery: Tensor | None,
    *,
    layer: str | None = None,
    maps: tuple[Tensor, Tensor] | None = None,
    **params: Any,
) -> PairExplanation:
    """Explain a query against each of its k gallery images (one map pair per rank).

    Args:
        method: a name from :func:`~workbench.explain.list_explainers`.
        model: the model that ranked them.
        query: (1, 3, H, W); gallery: (k, 3, H, W). They may be None when ``maps`` are given
            and the method has a closed form there (:func:`closed_form_layer`).
        layer: as :func:`~workbench.explain.explain_pair`.
        maps: cached ``(query_maps (1, C, h, w), gallery_maps (k, C, h, w))`` of the pooled
            layer (e.g. kept by :func:`~workbench.evaluate.protocol.evaluate_model` with
            ``keep_layer``); used only where they give the exact same result.
        **params: the method's parameters.

    Returns:
        A :class:`~workbench.explain.PairExplanation` of k pairs; with ``"decomposition"``
        its ``extras["decomposition"]`` holds the position-pair matrices.
    """
    pooled = closed_form_layer(method, model, layer, **params) if maps is not None else None
    if pooled is None:
        if query is None or gallery is None:
            raise ExplainError(
                f"{method} at layer {layer or 'default'} needs the images (no closed form on "
                f"cached maps)"
            )
        return explain_pair(method, model, query, gallery, layer=layer, **params)
    get_explainer(method)(model, pooled, **params)  # the same checks as explain_pair
    q_maps, g_maps = (m.float() for m in maps)
    metric = ranking_metric(model)
    size = (
        tuple(int(s) for s in query.shape[2:])
        if query is not None
        else tuple(int(s) for s in model.config.input_size)
    )
    with torch.no_grad(), eval_mode(model):  # the head's BatchNorm as ranked, mode restored
        if method == "decomposition":
            dec = decompose_maps(_pooling(model), q_maps, g_maps, metric, input_size=size)  # type: ignore[arg-type]
            q, g, distance, sim = dec.query_map, dec.gallery_map, dec.distance, dec.similarity
            extras: dict[str, Any] = {"decomposition": dec}
            what = "pair similarity " + (
                "cos(e_q, e_g)" if metric == "cosine" else "−‖e_q − e_g‖² (squared)"
            )
        else:
            q, g, distance = pair_gradcam(pooled_head(model)[1], q_maps, g_maps, metric)  # type: ignore[index]
            sim = 1 - distance if metric == "cosine" else -distance
            extras = {}
            what = "pair similarity " + ("cos(e_q, e_g)" if metric == "cosine" else "−‖e_q − e_g‖₂")

    def package(m: Tensor) -> Explanation:
        return Explanation(m.detach(), method, pooled, what, sim.detach(), size)  # type: ignore[arg-type]

    return PairExplanation(package(q), package(g), distance.detach(), metric, extras)
