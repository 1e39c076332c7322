"""IANet (Hou et al. CVPR 2019) Fig. 8: SIA receptive fields of points on the body.

The points come from the synthetic ground truth, not from a hand: the head (nose, else the eyes'
or ears' mean), the torso (mean of shoulders and hips), a carried bag (centre of the backpack /
bag / handbag mask, when the person carries one), the legs (mean of the knees) and a shoe (the
visible ankle lowest in the image).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from workbench.viz.figures import register_figure
from workbench.viz.figures.samples import batch, device_of, input_size, load_samples, pick_rows
from workbench.viz.figures.style import colour_bar, grid, heat_tile, image_tile

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

    from workbench.data.split import Split
    from workbench.viz.figures import Models

__all__ = ["CHANNEL_PARTS", "body_points", "ianet_fig8", "part_channels"]

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


#: the CIA channels shown: for each of these regions, the channel of the CIA output whose
#: positive response puts the largest share inside that region's part mask (Fig. 8 shows the
#: belt/bag, shoe and one more channel of the paper's model, picked by hand)
CHANNEL_PARTS: dict[str, tuple[int, ...]] = {"head": (1,), "bag": (5, 6, 7), "shoes": (4,)}


def part_channels(maps: torch.Tensor | np.ndarray, parts: list[np.ndarray]) -> dict[str, int]:
    """``{region: channel}``: per region of :data:`CHANNEL_PARTS`, the channel of ``maps``
    ((N, C, h, w), any sign) with the largest mean share of its ReLU mass inside the region.

    ``parts``: the N part-label maps at image size (box-downsampled to (h, w)). Regions absent
    from every image are left out; each region gets a different channel.
    """
    import torch
    import torch.nn.functional as F

    maps = maps.float().clamp_min(0)
    labels = torch.from_numpy(np.stack(parts)).long()
    h, w = maps.shape[-2:]
    mass = maps.sum((2, 3)).clamp_min(1e-12)  # (N, C)
    out: dict[str, int] = {}
    for region, ids in CHANNEL_PARTS.items():
        inside = torch.isin(labels, torch.tensor(ids)).float()[:, None]  # (N, 1, H, W)
        share_map = F.adaptive_avg_pool2d(inside, (h, w))  # fraction of each cell in the region
        present = share_map.flatten(1).sum(1) > 0
        if not present.any():
            continue
        share = (maps * share_map).sum((2, 3)) / mass  # (N, C)
        score = share[present].mean(0)
        score[list(out.values())] = -1.0
        out[region] = int(score.argmax())
    return out


@register_figure(
    "ianet_fig8", paper="IANet", figure="Fig. 8", needs=["ianet"],
    what="SIA receptive fields (relation-map rows) of head, torso, bag, legs and shoe points, "
    "and CIA output channels of the head, bag and shoes",
)  # fmt: skip
def ianet_fig8(models: Models, split: Split, *, seed: int = 0, n: int = 3) -> Figure:
    import torch

    from workbench.explain import explain
    from workbench.explain.receptive_field import ReceptiveField
    from workbench.viz.heatmap import Scale, shared_scale

    model = models["ianet"]
    layers = [r.name for r in ReceptiveField.candidate_layers(model)]
    rows = pick_rows(split.query, 4 * n, seed)
    samples = [
        s for s in load_samples(split.query, rows, input_size(model)) if s.keypoints is not None
    ]
    samples = sorted(samples, key=lambda s: -len(body_points(s.keypoints, s.parts)))[:n]
    dev = device_of(model)
    with torch.no_grad():
        fmaps = model.feature_maps(batch(samples, dev))
    has_parts = all(s.parts is not None for s in samples)
    channels = {
        layer: part_channels(fmaps[f"ia{layer[-1]}"].cpu(), [s.parts for s in samples])
        if has_parts else {}
        for layer in layers
    }  # fmt: skip
    n_channels = max((len(c) for c in channels.values()), default=0)
    first_channel = 2 + len(POINTS)  # after a blank column that holds the rows' colour bars
    fig, axes = grid(
        n * len(layers), first_channel + n_channels,
        title="IANet Fig. 8: receptive fields of SIA (points from the keypoints and masks), "
        "then CIA output channels (the one most inside each part)",
    )  # fmt: skip
    unit = Scale(0.0, 1.0)
    channel_axes = []
    for i, s in enumerate(samples):
        points = body_points(s.keypoints, s.parts)
        names = [p for p in POINTS if p in points]
        for k, layer in enumerate(layers):
            r = i * len(layers) + k
            exp = explain("receptive_field", model, batch([s], dev), layer=layer,
                          points=tuple(points[p] for p in names))  # fmt: skip
            scale = shared_scale(exp.maps)
            image_tile(axes[r][0], s.rgb, f"id {s.pid}, {layer}")
            h, w = s.rgb.shape[:2]
            for j, name in enumerate(names):
                col = 1 + POINTS.index(name)
                heat_tile(axes[r][col], s.rgb, exp.maps[0, j], scale, name if r == 0 else None)
                y, x = points[name]
                axes[r][col].scatter([x * w], [y * h], s=14, c="white", edgecolors="black", lw=0.6)
            colour_bar(fig, axes[r][1 : 1 + len(POINTS)], scale)
            cia = fmaps[f"ia{layer[-1]}"][i].float().clamp_min(0).cpu()
            for j, (region, c) in enumerate(channels[layer].items()):
                ax = axes[r][first_channel + j]
                heat = cia[c] / cia[c].max().clamp_min(1e-12)
                heat_tile(ax, s.rgb, heat.numpy(), unit, f"CIA ch {c}\n({region})")
                channel_axes.append(ax)
    if channel_axes:
        colour_bar(fig, channel_axes, unit, "CIA channel / its max")
    return fig
