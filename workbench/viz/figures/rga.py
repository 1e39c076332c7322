"""RGA-SC (Zhang et al. CVPR 2020) supplementary figures: attention per module, CBAM comparison."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.viz.figures import register_figure
from workbench.viz.figures.samples import batch, device_of, input_size, load_samples, pick_rows
from workbench.viz.figures.style import colour_bar, grid, heat_tile, image_tile
from workbench.viz.heatmap import Scale

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from workbench.data.split import Split
    from workbench.viz.figures import Models

__all__ = ["rga_supp_fig1", "rga_supp_fig2"]

UNIT = Scale(0.0, 1.0)  # sigmoid attention: one fixed [0, 1] scale makes modules comparable


def _attention(model, x, layer):
    from workbench.explain import explain

    return explain("attention", model, x, layer=layer).maps


@register_figure(
    "rga_supp_fig2", paper="RGA-SC", figure="supp. Fig. 2", needs=["rga"],
    what="spatial attention maps attention1–4 of RGA-SC (sigmoid, fixed [0, 1] scale)",
)  # fmt: skip
def rga_supp_fig2(models: Models, split: Split, *, seed: int = 0, n: int = 4) -> Figure:
    from workbench.explain.attention import AttentionMap

    model = models["rga"]
    layers = [r.name for r in AttentionMap.candidate_layers(model)]
    samples = load_samples(split.query, pick_rows(split.query, n, seed), input_size(model))
    x = batch(samples, device_of(model))
    fig, axes = grid(n, 1 + len(layers), title="RGA-SC supp. Fig. 2: spatial attention per module")
    for k, layer in enumerate(layers):
        maps = _attention(model, x, layer)
        for i, s in enumerate(samples):
            heat_tile(axes[i][k + 1], s.rgb, maps[i], UNIT, layer if i == 0 else None)
    for i, s in enumerate(samples):
        image_tile(axes[i][0], s.rgb, f"id {s.pid}")
    colour_bar(fig, axes, UNIT, "attention")
    return fig


@register_figure(
    "rga_supp_fig1", paper="RGA-SC", figure="supp. Fig. 1", needs=["rga_cbam", "rga_norel", "rga"],
    what="attention4 of a CBAM-style module, RGA-SC without relations, and RGA-SC",
)  # fmt: skip
def rga_supp_fig1(models: Models, split: Split, *, seed: int = 0, n: int = 4) -> Figure:
    roles = (("rga_cbam", "CBAM"), ("rga_norel", "RGA-SC w/o Rel."), ("rga", "RGA-SC"))
    samples = load_samples(split.query, pick_rows(split.query, n, seed), input_size(models["rga"]))
    fig, axes = grid(n, 4, title="RGA-SC supp. Fig. 1: spatial attention after layer4")
    for k, (role, label) in enumerate(roles):
        maps = _attention(models[role], batch(samples, device_of(models[role])), "attention4")
        for i, s in enumerate(samples):
            heat_tile(axes[i][k + 1], s.rgb, maps[i], UNIT, label if i == 0 else None)
    for i, s in enumerate(samples):
        image_tile(axes[i][0], s.rgb, f"id {s.pid}")
    colour_bar(fig, axes, UNIT, "attention")
    return fig
