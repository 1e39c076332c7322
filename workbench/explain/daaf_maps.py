"""DAAF's holistic and partial attention maps (Chen et al. 2020, Sec. 4.2.3, eq. 5–8).

For every component ``x_n`` of the embedding, eq. 5–6 weight the feature maps element-wise by the
gradient ``F^n = ∂x_n/∂A`` (not its spatial mean, unlike Grad-CAM):
``L^n = (1/K) Σ_k |F^n_k ⊙ A^k|``. The holistic attention map (eq. 7) averages all components,
``L_HAM = (1/N) Σ_n L^n``; the partial map of channel group i (eq. 8) averages the components of
that group, ``L^i_PAM = (1/|S_i|) Σ_{n∈S_i} L^n`` (groups: contiguous slices of the embedding,
:func:`workbench.explain.targets.group_slices`). The maps are non-negative by construction (|·|).

The paper takes ``A`` at ResNet conv1 (``layer="stem"`` here; N backward passes, batched in
chunks). The default is the pooled layer (layer4), where ``∂x_n/∂A_k(i, j) = J_nk / hw`` with ``J``
the head's Jacobian, so ``L^n = Σ_k |J_nk| |A_k| / (K·hw)``: one small Jacobian and one matrix
product, exact. No code for these figures is public (modules.md §2.6): this follows the equations.
Both methods are generic: they explain any model's embedding, a DAAF one or not (Fig. 5 compares
BoT with and without the holistic branch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from workbench.explain.base import (
    Explainer,
    ExplainError,
    MapResult,
    capture_layer,
    register_explainer,
)
from workbench.explain.gradcam import pooled_head
from workbench.explain.targets import group_slices

__all__ = ["HolisticAttention", "PartialAttention", "component_maps"]


def component_maps(explainer: Explainer, images: Tensor, chunk: int = 64) -> Tensor:
    """``L^n`` of eq. 5 for every embedding component: (B, N, h, w), non-negative."""
    model, layer = explainer.model, explainer.layer
    pooled = pooled_head(model)
    if pooled is not None and pooled[0] == layer:  # closed form on the pooled layer
        maps = explainer.activations(images)  # (B, K, h, w)
        _, k, h, w = maps.shape
        with torch.enable_grad():
            g = maps.mean((2, 3)).requires_grad_(True)  # (B, K)
            emb = pooled[1](g)  # (B, N)
            eye = torch.eye(emb.shape[1], device=emb.device, dtype=emb.dtype)
            cot = eye[:, None, :].expand(-1, emb.shape[0], -1)  # (N, B, N)
            (jac,) = torch.autograd.grad(emb, g, cot, is_grads_batched=True)  # (N, B, K)
        return torch.einsum("nbk,bkhw->bnhw", jac.abs(), maps.abs()) / (k * h * w)
    leaf: dict[str, Tensor] = {}

    def keep(output: Tensor) -> Tensor:
        leaf["a"] = output.detach().requires_grad_(True)
        return leaf["a"]

    with torch.enable_grad(), capture_layer(model, layer, replace=keep):
        emb = model(images)  # (B, N)
        n = emb.shape[1]
        a = leaf["a"]
        out = []
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            cot = torch.zeros(stop - start, *emb.shape, device=emb.device, dtype=emb.dtype)
            cot[torch.arange(stop - start), :, torch.arange(start, stop)] = 1.0
            (grads,) = explainer._grad(
                emb, [a], grad_outputs=cot, is_grads_batched=True, retain_graph=True
            )
            out.append((grads * a.detach()).abs().mean(2))  # (c, B, h, w)
    return torch.cat(out).transpose(0, 1)  # (B, N, h, w)


@dataclass
class PartialConfig:
    """Attributes:
    groups: channel groups of the embedding (DAAF: 6, one per keypoint group).
    """

    groups: int = 6


@register_explainer("daaf_holistic")
class HolisticAttention(Explainer):
    """Holistic attention map, eq. 7: the mean of every component's gradient-weighted map."""

    layer_kinds = ("stage",)
    needs_target = False

    def compute(self, images: Tensor, target: Callable[..., Tensor] | None) -> MapResult:
        """(B, h, w): the mean over the embedding's components of their Grad-CAM maps."""
        return MapResult(component_maps(self, images).mean(1))


@register_explainer("daaf_partial")
class PartialAttention(Explainer):
    """Partial attention maps, eq. 8: one map per channel group, (B, groups, h, w)."""

    layer_kinds = ("stage",)
    needs_target = False
    config_class = PartialConfig

    def compute(self, images: Tensor, target: Callable[..., Tensor] | None) -> MapResult:
        """(B, groups, h, w): the mean component map of each channel group."""
        maps = component_maps(self, images)
        if self.config.groups > maps.shape[1]:
            raise ExplainError(
                f"daaf_partial: {self.config.groups} groups for a {maps.shape[1]}-d embedding"
            )
        parts = group_slices(maps.shape[1], self.config.groups)
        return MapResult(torch.stack([maps[:, s].mean(1) for s in parts], 1))

    def map_names(self) -> tuple[str, ...]:
        """``group i`` for each of the configured channel groups."""
        return tuple(f"group {i + 1}" for i in range(self.config.groups))
