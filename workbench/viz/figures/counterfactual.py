"""The counterfactual game in one picture: an original, each factor changed, and the maps of Δ."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from workbench.viz.figures import register_figure
from workbench.viz.figures.samples import device_of, input_size
from workbench.viz.figures.style import colour_bar, grid, heat_tile, image_tile
from workbench.viz.heatmap import Scale, shared_scale

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from workbench.data.split import Split
    from workbench.viz.figures import Models

__all__ = ["counterfactual_game_figure"]


_SHORT = {
    "gradcam@layer2": "Grad-CAM l2", "gradcam@layer3": "Grad-CAM l3",
    "gradcam@layer4": "Grad-CAM l4", "decomposition": "decomp.", "daaf_holistic": "DAAF hol.",
    "integrated_gradients": "IG", "occlusion": "occlusion",
}  # fmt: skip


def _rgb(image: torch.Tensor) -> np.ndarray:
    """A normalised (3, H, W) tensor back to (H, W, 3) uint8 for display."""
    from workbench.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    x = image.detach().cpu().permute(1, 2, 0).numpy() * np.asarray(IMAGENET_STD)
    return np.clip((x + np.asarray(IMAGENET_MEAN)) * 255.0, 0, 255).astype(np.uint8)


@register_figure(
    "counterfactual_game",
    paper="workbench",
    figure="counterfactual game",
    needs=["bot"],
    requires=["synthetic"],  # the counterfactuals are rendered from the dataset's own seed
    what="a query, each factor changed (and the change mask), and every method's map of "
    "Δ = s(x, g) − s(x', g) with its energy on the mask",
)
def counterfactual_game_figure(models: Models, split: Split, *, seed: int = 0) -> Figure:
    import cv2

    from workbench.data.synth.counterfactual import counterfactuals_of, jpeg_round_trip
    from workbench.evaluate.counterfactual import (
        DEFAULT_METHODS,
        choose_references,
        embed_images,
        explain_deltas,
        load_images,
        load_masks,
        orient_maps,
    )
    from workbench.evaluate.distance import ranking_metric
    from workbench.explain import get_explainer
    from workbench.explain.metrics import energy_in_mask

    model = models["bot"]
    if split.root is None:
        raise ValueError("counterfactual_game needs a synthetic dataset folder (split.root)")
    # the pairs `workbench synth --counterfactuals` writes, rendered in memory (nothing written)
    original, cfs = counterfactuals_of(split.root, seed % 4)

    def rgb(bgr: np.ndarray, quality: int) -> np.ndarray:
        return cv2.cvtColor(jpeg_round_trip(bgr, quality), cv2.COLOR_BGR2RGB)

    size, dev = input_size(model), device_of(model)
    metric = ranking_metric(model)
    methods = [m for m in DEFAULT_METHODS if get_explainer(m.method).supports(model)]
    ref = choose_references(model, split, [original], size, metric, dev).reference.iloc[0]
    x = load_images([str(Path(split.root) / original)], size).to(dev)
    x_cf = load_images([rgb(cf.counterfactual, cf.jpeg) for cf in cfs], size).to(dev)
    masks = load_masks([cf.mask for cf in cfs], size)
    e_g = embed_images(model, load_images([ref], size), dev)
    at = torch.zeros(len(cfs), dtype=torch.long)  # every pair edits the one original
    s_x, s_cf, maps = explain_deltas(model, methods, x, x_cf, e_g, at, metric)
    delta = s_x[0] - s_cf
    oriented = {m.name: orient_maps(m, maps[m.name], delta) for m in methods}
    fig, axes = grid(
        len(cfs),
        3 + len(methods),
        title=f"Counterfactual game ({getattr(model, 'model_name', 'model')}, {metric}): "
        f"maps of Δ = s(x, g) − s(x', g) on x; E = energy on the change",
    )
    x_rgb = _rgb(x[0])
    for i, cf in enumerate(cfs):
        change = "new plate" if cf.factor == "background" else f"{cf.old} → {cf.new}"
        if cf.factor == "shoes":  # colours as #rrggbb: too long for a tile
            change = "recoloured"
        head = f"x, s(x, g)={float(s_x[0]):.2f}\n" if i == 0 else ""
        image_tile(axes[i][0], x_rgb, f"{head}{cf.factor}")
        image_tile(axes[i][1], _rgb(x_cf[i]), f"{change}\nΔ={float(delta[i]):+.3f}")
        image_tile(axes[i][2], (masks[i].numpy()[..., None] * 255).repeat(3, 2), "changed")
    unit = Scale(0.0, 1.0)
    for j, spec in enumerate(methods):
        values = oriented[spec.name]
        energy = energy_in_mask(values, masks)
        values = values / shared_scale(values).vmax  # each method on its own 99.5th percentile
        for i in range(len(cfs)):
            label = f"{_SHORT.get(spec.name, spec.name)}\n" if i == 0 else ""
            title = f"{label}E={float(energy[i]):.2f}"
            heat_tile(axes[i][3 + j], x_rgb, values[i], unit, title)
    colour_bar(fig, axes, unit, "map × sign(Δ), ReLU, / the method's 99.5th percentile")
    return fig
