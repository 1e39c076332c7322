"""IANet (Hou et al. CVPR 2019) Fig. 8: SIA receptive fields of points on the body.

The points come from the synthetic ground truth, not from a hand: the head (nose, else the eyes'
or ears' mean), the torso (mean of shoulders and hips), a carried bag (centre of the backpack /
bag / handbag mask, when the person carries one), the legs (mean of the knees) and a shoe (the
visible ankle lowest in the image).
"""

from __future__ import annotations

import numpy as np

from workbench.viz.figures import register_figure
from workbench.viz.figures.samples import batch, device_of, input_size, load_samples, pick_rows
from workbench.viz.figures.style import colour_bar, grid, heat_tile, image_tile

__all__ = ["body_points", "ianet_fig8"]

POINTS = ("head", "torso", "bag", "legs", "shoe")


def body_points(keypoints: np.ndarray, parts: np.ndarray | None) -> dict[str, tuple[float, float]]:
    """``{name: (y, x) fractions}`` of the points of Fig. 8 that this image has."""
    h, w = parts.shape if parts is not None else (None, None)
    kp = np.asarray(keypoints, float)
    out: dict[str, tuple[float, float]] = {}

    def mean(idx):
        sel = [i for i in idx if kp[i, 2] > 0]
        return kp[sel, :2].mean(0) if sel else None

    candidates = {
        "head": mean([0]) if kp[0, 2] > 0 else mean([1, 2, 3, 4]),
        "torso": mean([5, 6, 11, 12]),
        "legs": mean([13, 14]),
    }
    ankles = [i for i in (15, 16) if kp[i, 2] > 0]
    candidates["shoe"] = kp[max(ankles, key=lambda i: kp[i, 1]), :2] if ankles else None
    if parts is not None:
        ys, xs = np.nonzero(np.isin(parts, (5, 6, 7)))  # backpack, bag, handbag
        candidates["bag"] = np.array([xs.mean(), ys.mean()]) if ys.size else None
    H = h or 1
    W = w or 1
    for name in POINTS:
        xy = candidates.get(name)
        if xy is not None:
            out[name] = (float(np.clip(xy[1] / H, 0, 1)), float(np.clip(xy[0] / W, 0, 1)))
    return out


@register_figure(
    "ianet_fig8", paper="IANet", figure="Fig. 8", needs=["ianet"],
    what="SIA receptive fields (relation-map rows) of head, torso, bag, legs and shoe points",
)  # fmt: skip
def ianet_fig8(models, split, *, seed=0, n=3):
    from workbench.explain import explain
    from workbench.explain.receptive_field import ReceptiveField

    model = models["ianet"]
    layers = [r.name for r in ReceptiveField.candidate_layers(model)]
    rows = pick_rows(split.query, 4 * n, seed)
    samples = [
        s for s in load_samples(split.query, rows, input_size(model)) if s.keypoints is not None
    ]
    samples = sorted(samples, key=lambda s: -len(body_points(s.keypoints, s.parts)))[:n]
    fig, axes = grid(
        n * len(layers), 1 + len(POINTS), title="IANet Fig. 8: receptive fields of SIA"
    )
    dev = device_of(model)
    for i, s in enumerate(samples):
        points = body_points(s.keypoints, s.parts)
        names = [p for p in POINTS if p in points]
        for k, layer in enumerate(layers):
            r = i * len(layers) + k
            exp = explain("receptive_field", model, batch([s], dev), layer=layer,
                          points=tuple(points[p] for p in names))  # fmt: skip
            from workbench.viz.heatmap import shared_scale

            scale = shared_scale(exp.maps)
            image_tile(axes[r][0], s.rgb, f"id {s.pid}, {layer}")
            h, w = s.rgb.shape[:2]
            for j, name in enumerate(names):
                col = 1 + POINTS.index(name)
                heat_tile(axes[r][col], s.rgb, exp.maps[0, j], scale, name if r == 0 else None)
                y, x = points[name]
                axes[r][col].scatter([x * w], [y * h], s=14, c="white", edgecolors="black", lw=0.6)
            colour_bar(fig, axes[r][1:], scale)
    return fig
