"""DAAF (Chen et al. 2020) figures: holistic and partial maps, HAB/PAB outputs, the 1×1-conv shuffle.

Maps follow the paper's eq. 5–8 (``daaf_holistic`` / ``daaf_partial``) and Grad-CAM where the
caption says so; each panel group shares one colour scale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from workbench.models.base import Capability, capabilities_of
from workbench.viz.contact_sheet import draw_keypoints, overlay_parts
from workbench.viz.figures import register_figure
from workbench.viz.figures.samples import batch, device_of, input_size, load_samples, pick_rows
from workbench.viz.figures.style import colour_bar, grid, heat_tile, image_tile
from workbench.viz.heatmap import Scale, shared_scale

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from workbench.data.split import Split
    from workbench.viz.figures import Models

__all__ = ["daaf_fig1", "daaf_fig5", "daaf_fig6", "daaf_fig9", "daaf_fig78"]


def _samples(model, split, n, seed):
    size = input_size(model)
    return load_samples(split.query, pick_rows(split.query, n, seed), size)


@register_figure(
    "daaf_fig1", paper="DAAF", figure="Fig. 1", needs=["daaf"],
    what="images, holistic attention maps (eq. 7) and partial maps (eq. 8, strongest group)",
)  # fmt: skip
def daaf_fig1(models: Models, split: Split, *, seed: int = 0, n: int = 6) -> Figure:
    from workbench.explain import explain

    model = models["daaf"]
    samples = _samples(model, split, n, seed)
    x = batch(samples, device_of(model))
    holistic = explain("daaf_holistic", model, x).maps
    partial = explain("daaf_partial", model, x, groups=6).maps.amax(1)
    fig, axes = grid(3, len(samples), title="DAAF Fig. 1: (a) images (b) holistic (c) partial")
    for row, maps in ((1, holistic), (2, partial)):
        scale = shared_scale(maps)
        for j, s in enumerate(samples):
            heat_tile(axes[row][j], s.rgb, maps[j], scale)
        colour_bar(fig, axes[row], scale)
    for j, s in enumerate(samples):
        image_tile(axes[0][j], s.rgb, f"id {s.pid}")
    return fig


@register_figure(
    "daaf_fig5", paper="DAAF", figure="Fig. 5", needs=["bot", "daaf"],
    what="holistic maps at conv1 (stem) without (BoT) and with the holistic attention branch",
)  # fmt: skip
def daaf_fig5(models: Models, split: Split, *, seed: int = 0, n: int = 4) -> Figure:
    from workbench.explain import explain

    samples = _samples(models["daaf"], split, n, seed)
    maps = {}
    for role in ("bot", "daaf"):
        x = batch(samples, device_of(models[role]))
        maps[role] = explain("daaf_holistic", models[role], x, layer="stem").maps
    scale = shared_scale([maps["bot"], maps["daaf"]])
    fig, axes = grid(n, 3, title="DAAF Fig. 5: holistic map at conv1, w/o and w/ HAB")
    for i, s in enumerate(samples):
        image_tile(axes[i][0], s.rgb, "image" if i == 0 else None)
        heat_tile(axes[i][1], s.rgb, maps["bot"][i], scale, "BoT (w/o HAB)" if i == 0 else None)
        heat_tile(axes[i][2], s.rgb, maps["daaf"][i], scale, "DAAF (w/ HAB)" if i == 0 else None)
    colour_bar(fig, axes, scale)
    return fig


@register_figure(
    "daaf_fig6", paper="DAAF", figure="Fig. 6", needs=["daaf"],
    what="the six channel-group partial attention maps (eq. 8) per image",
)  # fmt: skip
def daaf_fig6(models: Models, split: Split, *, seed: int = 0, n: int = 3) -> Figure:
    from workbench.explain import explain

    model = models["daaf"]
    samples = _samples(model, split, n, seed)
    exp = explain("daaf_partial", model, batch(samples, device_of(model)), groups=6)
    scale = shared_scale(exp.maps)
    names = [",\n".join(g) for g in _group_names(model)]  # two lines: the tiles are narrow
    fig, axes = grid(n, 7, title="DAAF Fig. 6: partial attention maps of the six groups")
    for i, s in enumerate(samples):
        image_tile(axes[i][0], s.rgb, "image" if i == 0 else None)
        for g in range(6):
            title = (names[g] if g < len(names) else f"group {g + 1}") if i == 0 else None
            heat_tile(axes[i][g + 1], s.rgb, exp.maps[i, g], scale, title)
    colour_bar(fig, axes, scale)
    return fig


def _group_names(model) -> list[list[str]]:
    from workbench.data.annotations import COCO_KEYPOINTS

    if Capability.CONV_SHUFFLE not in capabilities_of(model):  # declared iff PAB is built
        return []
    short = {k: k.replace("left_", "l.").replace("right_", "r.") for k in COCO_KEYPOINTS}
    return [[short[COCO_KEYPOINTS[k]] for k in g][:2] for g in model.keypoint_groups]


@register_figure(
    "daaf_fig78", paper="DAAF", figure="Fig. 7–8", needs=["daaf"], uses=["masks", "keypoints"],
    what="HAB mask and PAB keypoint outputs at inference beside the ground-truth mask and "
    "keypoints (where the dataset has them)",
)  # fmt: skip
def daaf_fig78(models: Models, split: Split, *, seed: int = 0, n: int = 4) -> Figure:
    """Columns: GT parts (if the images have masks), HAB mask (if the model has the holistic
    branch), GT keypoints (if annotated), PAB. A dataset without an annotation loses its column,
    and the title says so, rather than showing a blank ground-truth panel."""
    from workbench.explain import explain

    model = models["daaf"]
    samples = _samples(model, split, n, seed)
    exp = explain("daaf_branches", model, batch(samples, device_of(model)))
    has_mask = exp.names[0] == "mask"
    mask = torch.sigmoid(exp.maps[:, 0]) if has_mask else None
    keypoints = exp.maps[:, 1:] if has_mask else exp.maps
    gt_parts = any(s.parts is not None for s in samples)
    gt_points = any(s.keypoints is not None for s in samples)
    columns = [c for c, on in (("parts", gt_parts), ("mask", has_mask), ("points", gt_points),
                               ("pab", True)) if on]  # fmt: skip
    lacking = [w for w, on in (("masks", gt_parts), ("keypoints", gt_points)) if not on]
    title = "DAAF Fig. 7–8: branch outputs"
    if len(lacking) == 2:
        title += "\n(no ground truth: the data has no masks or keypoints)"
    else:
        title += " vs ground truth" + (f"\n(the data has no {lacking[0]})" if lacking else "")
    fig, axes = grid(n, len(columns), tile=(1.15, 1.8), title=title)
    col = {c: j for j, c in enumerate(columns)}
    unit = Scale(0.0, 1.0)
    kp_scale = shared_scale(keypoints.amax(1))
    for i, s in enumerate(samples):
        first = i == 0
        if gt_parts and s.parts is not None:
            image_tile(axes[i][col["parts"]], overlay_parts(s.rgb, s.parts),
                       "GT parts" if first else None)  # fmt: skip
        elif gt_parts:
            image_tile(axes[i][col["parts"]], s.rgb, "no GT parts")
        if mask is not None:
            heat_tile(axes[i][col["mask"]], s.rgb, mask[i], unit,
                      "HAB mask\n(probability)" if first else None)  # fmt: skip
        if gt_points:
            has = s.keypoints is not None
            image_tile(axes[i][col["points"]], s.rgb,
                       ("GT keypoints" if first else None) if has else "no GT keypoints")  # fmt: skip
            if has:
                draw_keypoints(axes[i][col["points"]], s.keypoints)
        heat_tile(axes[i][col["pab"]], s.rgb, keypoints[i].amax(0), kp_scale,
                  "PAB\n(max over keypoints)" if first else None)  # fmt: skip
    if mask is not None:
        colour_bar(fig, [axes[i][col["mask"]] for i in range(n)], unit)
    colour_bar(fig, [axes[i][col["pab"]] for i in range(n)], kp_scale)
    return fig


@register_figure(
    "daaf_fig9", paper="DAAF", figure="Fig. 9", needs=["daaf"],
    what="1×1-conv shuffle grid (features i × conv j) with the feature-following score",
)  # fmt: skip
def daaf_fig9(models: Models, split: Split, *, seed: int = 0) -> Figure:
    from workbench.explain import explain

    model = models["daaf"]
    sample = _samples(model, split, 1, seed)[0]
    exp = explain("shuffle", model, batch([sample], device_of(model)))
    g = exp.extras["grid"][0]
    score = float(exp.extras["score"][0])
    maps = exp.maps[0].view(g, g, *exp.maps.shape[2:])
    fig, axes = grid(g, g, tile=(0.75, 1.5), title=(
        f"DAAF Fig. 9: rows = feature group, columns = 1×1 conv; feature-following score "
        f"F = {score:+.2f} (> 0: outputs follow the features)"
    ))  # fmt: skip
    for i in range(g):
        scale = shared_scale(maps[i])  # one scale per row: a row shares its features
        for j in range(g):
            title = f"conv {j + 1}" if i == 0 else None
            heat_tile(
                axes[i][j], sample.rgb, maps[i, j], scale, title, (40, 170, 60) if i == j else None
            )
        axes[i][0].set_ylabel(f"features {i + 1}")
        colour_bar(fig, axes[i], scale)
    return fig
