"""Exact decomposition of a pair's ranking similarity into position pairs: what matched what.

Zhu, Yang & Chen, "Visual Explanation for Deep Metric Learning", IEEE TIP 2021 (code
``Jeff-Zilence/Explain_Metric_Learning``); Stylianou, Souvenir & Pless, "Visualizing Deep
Similarity Networks", WACV 2019 (the cosine case). Facts and formulas: ``reference/pairs.md``.

A model that declares its pooling (:class:`~workbench.models.base.Pooling`) computes its
embedding as ``e_k = Σᵢ Pₖ(i) φ(i)`` per part k, where ``φ(i) = head(A(i))`` is position i's
contribution (the affine head's shift folded into every position equally — nothing dropped,
unlike Zhu et al., who drop the BN shift) and ``Pₖ`` are the pooling weights (1/n for GAP, the
stripe's rows for PCB). Then, exactly:

* **cosine** (one part): ``cos(e_q, e_g) = Σᵢⱼ D[i, j]``,
  ``D[i, j] = P(i) P(j) φ_q(i)·φ_g(j) / (‖e_q‖ ‖e_g‖)``; stripes that are each L2-normalised
  decompose stripe by stripe, ``D = (1/K) Σₖ Pₖ(i) Pₖ(j) φ_q(i)·φ_g(j) / (‖e_qk‖ ‖e_gk‖)``;
* **Euclidean**: the plain distance has no exact bilinear form, so the similarity decomposed is
  the *squared* one, ``−‖e_q − e_g‖² = 2 e_q·e_g − ‖e_q‖² − ‖e_g‖²``: the cross term decomposes
  as above and each self term ``‖e_q‖² = Σᵢ P(i) φ_q(i)·e_q`` is a per-image map, spread over
  the partner's positions by its mean pooling weights so that the matrix still sums exactly.

The marginals ``query_map = Σⱼ D[:, j]`` and ``gallery_map = Σᵢ D[i, :]`` each add up to the
similarity: they are the "overall maps" of Zhu et al. (equal to Grad-CAM on the pooled layer up
to the shift term), and a row of D is their "point-specific" map
(:meth:`PairDecomposition.correspondence`). The contrast of two gallery images
(:func:`contrast`) is the difference of two query marginals: a map that adds up to the margin by
which one beat the other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from workbench.evaluate.distance import ranking_metric
from workbench.explain.base import (
    Explainer,
    ExplainError,
    Explanation,
    MapResult,
    PairExplanation,
    _pooling,
    capture_layer,
    eval_mode,
    register_explainer,
)
from workbench.models.base import LayerInfo, Pooling
from workbench.models.inputs import check_images

__all__ = [
    "Contrast",
    "Decomposition",
    "PairDecomposition",
    "contrast",
    "decompose_maps",
    "decompose_pair",
    "require_pooling",
]


@dataclass
class PairDecomposition:
    """A pair's similarity split over position pairs; row-aligned pairs (B of them).

    Attributes:
        matrix: (B, h_q, w_q, h_g, w_g); ``matrix[b].sum() == similarity[b]`` exactly.
        query_map: (B, h_q, w_q), ``matrix.sum((3, 4))``: each query position's share.
        gallery_map: (B, h_g, w_g), ``matrix.sum((1, 2))``: each gallery position's share.
        similarity: (B,) cos(e_q, e_g) (``"cosine"``) or −‖e_q − e_g‖² (``"euclidean"``,
            squared: see the module docstring).
        metric: the ranking metric decomposed.
        layer: the pooled layer the positions live on.
        input_size: (H, W) of the images (for resizing maps and placing points).
    """

    matrix: Tensor
    query_map: Tensor
    gallery_map: Tensor
    similarity: Tensor
    metric: str
    layer: str
    input_size: tuple[int, int]
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.matrix.shape[0]

    @property
    def distance(self) -> Tensor:
        """(B,) the ranking distance: 1 − cos, or √(‖e_q − e_g‖²) for Euclidean."""
        if self.metric == "cosine":
            return (1 - self.similarity).clamp(0, 2)
        return (-self.similarity).clamp_min(0).sqrt()

    def cells(self, points: Sequence[tuple[float, float]], side: str = "query") -> list[int]:
        """Flat position indices on ``side`` of (y, x) points given as fractions in [0, 1]."""
        h, w = self._grid(side)
        out = []
        for y, x in points:
            if not (0.0 <= y <= 1.0 and 0.0 <= x <= 1.0):
                raise ExplainError(f"points are (y, x) fractions in [0, 1], got ({y}, {x})")
            out.append(min(int(y * h), h - 1) * w + min(int(x * w), w - 1))
        return out

    def correspondence(self, points: Sequence[tuple[float, float]], side: str = "query") -> Tensor:
        """Where chosen points of one image match on the other: rows of D.

        Args:
            points: (y, x) fractions of the image height and width, in [0, 1].
            side: the image the points are on, ``"query"`` or ``"gallery"``.

        Returns:
            (B, P, h, w) on the *other* image's grid: ``[b, p]`` is D's row (or column) of
            point p's cell, which sums to that cell's value in ``query_map`` (``gallery_map``).
        """
        b, hq, wq, hg, wg = self.matrix.shape
        flat = self.matrix.reshape(b, hq * wq, hg * wg)
        index = torch.as_tensor(self.cells(points, side), device=flat.device)
        if side == "query":
            return flat[:, index].reshape(b, len(index), hg, wg)
        return flat[:, :, index].transpose(1, 2).reshape(b, len(index), hq, wq)

    def top_matches(self, k: int = 10) -> tuple[Tensor, Tensor, Tensor]:
        """The k strongest position pairs of each pair (QAConv's lines).

        Returns:
            ``(query_yx (B, k, 2), gallery_yx (B, k, 2), value (B, k))``: cell centres as (y, x)
            fractions, and each pair's entry of D, largest first.
        """
        b, hq, wq, hg, wg = self.matrix.shape
        k = max(1, min(int(k), hq * wq * hg * wg))
        value, index = self.matrix.reshape(b, -1).topk(k, dim=1)
        qi, gi = index // (hg * wg), index % (hg * wg)

        def centre(i: Tensor, h: int, w: int) -> Tensor:
            return torch.stack([((i // w) + 0.5) / h, ((i % w) + 0.5) / w], dim=-1)

        return centre(qi, hq, wq), centre(gi, hg, wg), value

    def to(self, device: str | torch.device) -> PairDecomposition:
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), Tensor)
        }
        return dataclasses.replace(self, **moved)

    def _grid(self, side: str) -> tuple[int, int]:
        if side not in ("query", "gallery"):
            raise ExplainError(f"side must be 'query' or 'gallery', got {side!r}")
        shape = self.matrix.shape
        return (shape[1], shape[2]) if side == "query" else (shape[3], shape[4])


@dataclass
class _Side:
    """Per-image quantities of one side: φ (B, n, d), pooled parts e (B, K, d), part scale s."""

    phi: Tensor
    parts: Tensor
    scale: Tensor  # (B, K): 1/‖e_k‖ (normalised stripes), 1/‖e‖ (normalised), or 1
    weights: Tensor  # (K, n) pooling weights
    grid: tuple[int, int]


def _side(pooling: Pooling, maps: Tensor) -> _Side:
    b, _, h, w = maps.shape
    phi = pooling.apply_head(maps.flatten(2).transpose(1, 2).float())  # (B, n, d)
    weights = pooling.weights(h, w, maps.device).reshape(pooling.parts, h * w)  # (K, n)
    parts = torch.einsum("kn,bnd->bkd", weights, phi)  # (B, K, d) = head(pooled part k)
    if pooling.normalize and pooling.parts > 1:
        scale = 1 / parts.norm(dim=2).clamp_min(1e-12)
    elif pooling.normalize:
        scale = (1 / parts.flatten(1).norm(dim=1).clamp_min(1e-12))[:, None].expand(b, 1)
    else:
        scale = torch.ones(b, pooling.parts, device=maps.device)
    return _Side(phi, parts, scale, weights, (h, w))


def require_pooling(model: nn.Module) -> Pooling:
    """The model's declared pooling, or an :class:`ExplainError` naming what it lacks."""
    pooling = _pooling(model)
    if pooling is None:
        raise ExplainError(
            f"{type(model).__name__} cannot be decomposed into position pairs: it declares no "
            f"affine pooling of its embedding (model.pooling() is None: GeM pooling, an FC + "
            f"ReLU neck, an SA layer inside the part pooling, or the AAM interpreter's "
            f"attribute decomposition). Explain the pair with a gradient method instead "
            f"(explain_pair('gradcam', ...))"
        )
    return pooling


def decompose_maps(
    pooling: Pooling,
    query_maps: Tensor,
    gallery_maps: Tensor,
    metric: str = "cosine",
    *,
    layer: str | None = None,
    input_size: tuple[int, int] | None = None,
) -> PairDecomposition:
    """Decompose pairs from maps of the pooled layer, without the network (cached maps).

    Args:
        pooling: the model's declaration (``model.pooling()``).
        query_maps: (1, C, h, w) one query broadcast, or (B, C, h, w) row-aligned queries.
        gallery_maps: (B, C, h, w).
        metric: ``"cosine"`` or ``"euclidean"`` (the model's ``ranking_metric``).
        layer, input_size: recorded on the result (default: ``pooling.layer``, the map size).
    """
    if metric not in ("cosine", "euclidean"):
        raise ExplainError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    n = gallery_maps.shape[0]
    if query_maps.shape[0] not in (1, n) or query_maps.shape[1] != gallery_maps.shape[1]:
        raise ExplainError(
            f"query maps {tuple(query_maps.shape)} do not pair with gallery maps "
            f"{tuple(gallery_maps.shape)}: give one query or one per gallery image, same C"
        )
    with torch.no_grad():  # arithmetic on maps: no graph through the head's parameters
        return _decompose(pooling, query_maps, gallery_maps, metric, layer, input_size)


def _decompose(
    pooling: Pooling,
    query_maps: Tensor,
    gallery_maps: Tensor,
    metric: str,
    layer: str | None,
    input_size: tuple[int, int] | None,
) -> PairDecomposition:
    n = gallery_maps.shape[0]
    q, g = _side(pooling, query_maps), _side(pooling, gallery_maps)
    gram = torch.einsum("bid,bjd->bij", q.phi.expand(n, -1, -1), g.phi)  # (B, n_q, n_g)
    q_parts, q_scale = q.parts.expand(n, -1, -1), q.scale.expand(n, -1)
    pair_w = torch.einsum("ki,kj->kij", q.weights, g.weights)  # (K, n_q, n_g)
    k = pooling.parts
    if metric == "cosine":
        if pooling.normalize and k > 1:  # the mean of the stripes' cosines
            coef = q_scale * g.scale / k  # (B, K)
        else:
            norms = q_parts.flatten(1).norm(dim=1) * g.parts.flatten(1).norm(dim=1)
            coef = (1 / norms.clamp_min(1e-12))[:, None].expand(n, k)
        matrix = torch.einsum("bk,kij->bij", coef, pair_w) * gram
    else:  # −‖ẽ_q − ẽ_g‖² with ẽ the embedding as the model outputs it
        cross = torch.einsum("bk,kij->bij", 2 * q_scale * g.scale, pair_w) * gram
        self_q = _self_term(q, n)  # (B, n_q) sums to ‖ẽ_q‖²
        self_g = _self_term(g, n)
        spread_q, spread_g = q.weights.mean(0), g.weights.mean(0)  # (n,), each sums to 1
        matrix = cross - self_q[:, :, None] * spread_g - spread_q[:, None] * self_g[:, None, :]
    hq, wq = q.grid
    hg, wg = g.grid
    matrix = matrix.reshape(n, hq, wq, hg, wg)
    size = input_size or (hq, wq)
    return PairDecomposition(
        matrix=matrix,
        query_map=matrix.sum((3, 4)),
        gallery_map=matrix.sum((1, 2)),
        similarity=matrix.sum((1, 2, 3, 4)),
        metric=metric,
        layer=layer or pooling.layer,
        input_size=(int(size[0]), int(size[1])),
    )


def _self_term(side: _Side, n: int) -> Tensor:
    """(B, n_pos): Σₖ sₖ² Pₖ(i) φ(i)·eₖ, which sums to ‖ẽ‖² (one image's own map)."""
    dots = torch.einsum("bnd,bkd->bkn", side.phi, side.parts)  # (B, K, n_pos)
    out = torch.einsum("bk,kn,bkn->bn", side.scale.pow(2), side.weights, dots)
    return out.expand(n, -1)


def _pooled_maps(model: nn.Module, layer: str, images: Tensor) -> Tensor:
    with torch.no_grad(), capture_layer(model, layer) as cap:
        model(images)
    return cap.output


def decompose_pair(
    model: nn.Module, query: Tensor, gallery: Tensor, *, metric: str | None = None
) -> PairDecomposition:
    """Decompose the ranking similarity of (query, gallery) pairs into position pairs.

    Args:
        model: a model that declares its pooling (BoT, DAAF, IANet, RGA-SC, SA, imported
            BoT / FastReID / torchreid models with average pooling); others fail naming why.
        query: (1, 3, H, W) broadcast against every gallery image, or (B, 3, H, W) row-aligned.
        gallery: (B, 3, H, W), normalised as the model expects.
        metric: ``"cosine"`` or ``"euclidean"``; default the model's ``ranking_metric``.

    One forward pass of the 1 + B (or 2B) images; the rest is arithmetic on the pooled maps.

    Example:
        >>> dec = decompose_pair(model, query, gallery)  # doctest: +SKIP
        >>> dec.matrix.sum((1, 2, 3, 4))  # == dec.similarity == cos(e_q, e_g)  # doctest: +SKIP
    """
    pooling = require_pooling(model)
    query, gallery = _check_pair(model, query, gallery)
    device = _device(model)
    images = torch.cat([query, gallery]).to(device)
    with eval_mode(model):
        maps = _pooled_maps(model, pooling.layer, images)
    nq = query.shape[0]
    return decompose_maps(
        pooling,
        maps[:nq],
        maps[nq:],
        metric or ranking_metric(model),
        input_size=(int(query.shape[2]), int(query.shape[3])),
    )


@dataclass
class Contrast:
    """Why is ``higher`` ranked above ``lower`` for this query?

    Attributes:
        query_map: (h, w) on the query; sums to ``margin`` when ``exact`` (the decomposition):
            each query position's part of s(q, g₁) − s(q, g₂).
        higher_map, lower_map: (h, w) each gallery image's own map of its similarity to q.
        margin: s(q, g₁) − s(q, g₂) in the similarity explained.
        similarity: (2,) s(q, g₁), s(q, g₂).
        metric: the ranking metric; method: ``"decomposition"`` or the gradient method used.
        exact: whether the maps add up exactly (the decomposition) or are a gradient map.
    """

    query_map: Tensor
    higher_map: Tensor
    lower_map: Tensor
    margin: Tensor
    similarity: Tensor
    metric: str
    method: str
    layer: str | None
    exact: bool


def contrast(
    model: nn.Module,
    query: Tensor,
    higher: Tensor,
    lower: Tensor,
    *,
    metric: str | None = None,
    method: str | None = None,
    layer: str | None = None,
) -> Contrast:
    """Explain why ``higher`` (g₁) ranks above ``lower`` (g₂) for ``query`` (each (1, 3, H, W)).

    With a declared pooling (default method ``"decomposition"``) the query map is exact:
    ``query_map = query_map(q, g₁) − query_map(q, g₂)`` adds up to s(q, g₁) − s(q, g₂). Otherwise
    (or with ``method="gradcam"``) it is Grad-CAM of the difference s(q, g₁) − s(q, g₂) as one
    scalar target (:class:`~workbench.explain.targets.SimilarityMargin`), and each gallery map
    is Grad-CAM of its own pair.
    """
    from workbench.explain.base import explain, explain_pair
    from workbench.explain.targets import SimilarityMargin

    query, higher, lower = (check_images(model, x, where=n) for n, x in
                            (("query", query), ("higher", higher), ("lower", lower)))  # fmt: skip
    for name, x in (("query", query), ("higher", higher), ("lower", lower)):
        if x.shape[0] != 1:
            raise ExplainError(f"contrast takes one image each; {name} has {x.shape[0]}")
    metric = metric or ranking_metric(model)
    method = method or ("decomposition" if _pooling(model) is not None else "gradcam")
    gallery = torch.cat([higher, lower])
    if method == "decomposition":
        dec = decompose_pair(model, query, gallery, metric=metric)
        return Contrast(
            query_map=dec.query_map[0] - dec.query_map[1],
            higher_map=dec.gallery_map[0],
            lower_map=dec.gallery_map[1],
            margin=dec.similarity[0] - dec.similarity[1],
            similarity=dec.similarity,
            metric=metric,
            method=method,
            layer=dec.layer,
            exact=True,
        )
    device = _device(model)
    with eval_mode(model), torch.no_grad():
        emb = model(torch.cat([query, gallery]).to(device))
    target = SimilarityMargin(emb[1], emb[2], metric)
    q = explain(method, model, query, target, layer=layer)
    pair = explain_pair(method, model, query, gallery, layer=layer)
    sim = target.similarities(emb[:1], model)[0]  # (2,)
    return Contrast(
        query_map=q.maps[0],
        higher_map=pair.gallery.maps[0],
        lower_map=pair.gallery.maps[1],
        margin=sim[0] - sim[1],
        similarity=sim,
        metric=metric,
        method=method,
        layer=q.layer,
        exact=False,
    )


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _check_pair(model: nn.Module, query: Tensor, gallery: Tensor) -> tuple[Tensor, Tensor]:
    query = check_images(model, query, where="query")  # the model's input contract
    gallery = check_images(model, gallery, where="gallery")
    if query.shape[0] not in (1, gallery.shape[0]):
        raise ExplainError(
            f"query has {query.shape[0]} images and gallery {gallery.shape[0]}: pass row-aligned "
            f"pairs or a single query"
        )
    if query.shape[1:] != gallery.shape[1:]:
        raise ExplainError(
            f"query images are {tuple(query.shape[2:])} and gallery images "
            f"{tuple(gallery.shape[2:])}; resize both to the model's input size"
        )
    return query, gallery


@register_explainer("decomposition")
class Decomposition(Explainer):
    """The exact position-pair decomposition as an explainer (pairs; one side against a
    reference embedding with :class:`~workbench.explain.targets.EmbeddingSimilarity`).

    Only the pooled layer applies; ``explain_pair`` carries the full matrix in
    ``PairExplanation.extras["decomposition"]``.
    """

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        return _pooling(model) is not None and bool(cls.candidate_layers(model))

    @classmethod
    def unsupported_reason(cls, model: nn.Module) -> str:
        try:
            require_pooling(model)
        except ExplainError as e:
            return str(e)
        return super().unsupported_reason(model)

    @classmethod
    def candidate_layers(cls, model: nn.Module) -> list[LayerInfo]:
        pooling = _pooling(model)
        rows = super().candidate_layers(model)
        return [r for r in rows if pooling is not None and r.name == pooling.layer]

    def compute(self, images: Tensor, target: Any) -> MapResult:
        """(B, h, w): each position's share of the similarity to the reference embedding."""
        from workbench.explain.targets import EmbeddingSimilarity

        if not isinstance(target, EmbeddingSimilarity):
            raise ExplainError(
                f"decomposition explains a similarity to a reference embedding "
                f"(EmbeddingSimilarity) or a pair (explain_pair); got {target!r}"
            )
        pooling = require_pooling(self.model)
        metric = target.metric or ranking_metric(self.model)
        maps = _pooled_maps(self.model, pooling.layer, images)
        ref = target.reference.detach().reshape(-1, target.reference.shape[-1]).to(maps.device)
        with torch.no_grad():
            side = _side(pooling, maps)
            one = _reference_map(pooling, side, ref.expand(images.shape[0], -1), metric)
        return MapResult(one.reshape(images.shape[0], *side.grid), one.sum(1))

    def explain_pair(self, query: Tensor, gallery: Tensor) -> PairExplanation:
        dec = decompose_pair(self.model, query, gallery)
        what = "pair similarity " + (
            "cos(e_q, e_g)" if dec.metric == "cosine" else "−‖e_q − e_g‖² (squared)"
        )

        def package(maps: Tensor, images: Tensor) -> Explanation:
            return self._package(maps, dec.similarity, what, images)

        return PairExplanation(
            query=package(dec.query_map, query),
            gallery=package(dec.gallery_map, gallery),
            distance=dec.distance,
            metric=dec.metric,
            extras={"decomposition": dec},
        )


def _reference_map(pooling: Pooling, side: _Side, ref: Tensor, metric: str) -> Tensor:
    """(B, n): each position's share of the similarity of the image to a fixed embedding."""
    b, k = ref.shape[0], pooling.parts
    ref_parts = ref.reshape(b, k, -1)  # (B, K, d)
    dots = torch.einsum("bnd,bkd->bkn", side.phi, ref_parts)  # φ(i)·r_k
    if metric == "cosine":
        if pooling.normalize and k > 1:
            coef = side.scale / (k * ref_parts.norm(dim=2).clamp_min(1e-12))
        else:
            norms = side.parts.flatten(1).norm(dim=1) * ref.norm(dim=1)
            coef = (1 / norms.clamp_min(1e-12))[:, None].expand(b, k)
        return torch.einsum("bk,kn,bkn->bn", coef, side.weights, dots)
    cross = torch.einsum("bk,kn,bkn->bn", 2 * side.scale, side.weights, dots)
    spread = side.weights.mean(0)
    return cross - _self_term(side, b) - spread[None] * ref.pow(2).sum(1, keepdim=True)
