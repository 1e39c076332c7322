"""IANet (Hou et al. CVPR 2019) Fig. 8: SIA receptive fields of points on the body.

The points come from the dataset's annotations, not from a hand: the head (nose, else the eyes'
or ears' mean), the torso (mean of shoulders and hips), a carried bag (centre of the backpack /
bag / handbag mask, when the person carries one), the legs (mean of the knees) and a shoe (the
visible ankle lowest in the image). An image without keypoints gets fixed fractions of the crop
instead (:data:`FIXED_POINTS`, where a detector's box puts them on average), and no bag.
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

__all__ = ["CHANNEL_PARTS", "FIXED_POINTS", "body_points", "ianet_fig8", "part_channels"]

POINTS = ("head", "torso", "bag", "legs", "shoe")
#: (y, x) fractions of a pedestrian crop used when an image has no keypoints: the means of the
#: synthetic dataset's annotated points (nose; shoulders and hips; knees; ankles), rounded — a
#: detector's box frames a person the same way
FIXED_POINTS: dict[str, tuple[float, float]] = {
    "head": (0.14, 0.5),
    "torso": (0.37, 0.5),
    "legs": (0.71, 0.5),
    "shoe": (0.89, 0.5),
}


def body_points(
    keypoints: np.ndarray | None, parts: np.ndarray | None, size: tuple[int, int]
) -> dict[str, tuple[float, float]]:
    """``{name: (y, x) fractions}`` of the points of Fig. 8 that this image has.

    ``keypoints``: (17, 3) x, y, visibility in pixels of an image of ``size`` (H, W), or None
    for :data:`FIXED_POINTS`; ``parts``: its part labels (for the bag), or None.
    """
    H, W = size
    candidates: dict[str, np.ndarray | None] = {}
    if keypoints is None:
        candidates = {k: np.array([x * W, y * H]) for k, (y, x) in FIXED_POINTS.items()}
    else:
        kp = np.asarray(keypoints, float)

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
    out: dict[str, tuple[float, float]] = {}
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
    "ianet_fig8", paper="IANet", figure="Fig. 8", needs=["ianet"], uses=["keypoints", "masks"],
    what="SIA receptive fields (relation-map rows) of head, torso, bag, legs and shoe points, "
    "and CIA output channels of the head, bag and shoes",
)  # fmt: skip
def ianet_fig8(models: Models, split: Split, *, seed: int = 0, n: int = 3) -> Figure:
    """Without keypoints the points are :data:`FIXED_POINTS`; without masks there is no bag
    point and no CIA channel (they are chosen by their share inside the part masks)."""
    import torch

    from workbench.explain import explain
    from workbench.explain.receptive_field import ReceptiveField
    from workbench.viz.heatmap import Scale, shared_scale

    model = models["ianet"]
    layers = [r.name for r in ReceptiveField.candidate_layers(model)]
    size = input_size(model)
    samples = load_samples(split.query, pick_rows(split.query, 4 * n, seed), size)
    if not samples:
        raise ValueError(f"{split.name}: no query image of a person (pid > 0) to draw")
    samples = sorted(samples, key=lambda s: -len(body_points(s.keypoints, s.parts, size)))[:n]
    n = len(samples)
    fixed = all(s.keypoints is None for s in samples)
    dev = device_of(model)
    with torch.no_grad():
        fmaps = model.feature_maps(batch(samples, dev))
    has_parts = all(s.parts is not None for s in samples)
    channels = {
        layer: part_channels(fmaps[f"ia{layer[-1]}"].cpu(), [s.parts for s in samples])
        if has_parts else {}
        for layer in layers
    }  # fmt: skip
    points = [body_points(s.keypoints, s.parts, size) for s in samples]
    shown = [p for p in POINTS if any(p in pts for pts in points)]  # no all-blank column
    n_channels = max((len(c) for c in channels.values()), default=0)
    first_channel = 2 + len(shown)  # after a blank column that holds the rows' colour bars
    where = (
        "points at fixed fractions of the crop: the data has no keypoints"
        if fixed else "points from the keypoints and masks"
    )  # fmt: skip
    cia = (
        "then CIA output channels (the one most inside each part)"
        if has_parts else "no CIA channels: they are picked with part masks, which the data lacks"
    )  # fmt: skip
    fig, axes = grid(
        n * len(layers), first_channel + n_channels,
        title=f"IANet Fig. 8: receptive fields of SIA ({where});\n{cia}",
    )  # fmt: skip
    unit = Scale(0.0, 1.0)
    channel_axes = []
    titled: set[str] = set()
    for i, s in enumerate(samples):
        names = [p for p in shown if p in points[i]]
        for k, layer in enumerate(layers):
            r = i * len(layers) + k
            exp = explain("receptive_field", model, batch([s], dev), layer=layer,
                          points=tuple(points[i][p] for p in names))  # fmt: skip
            scale = shared_scale(exp.maps)
            image_tile(axes[r][0], s.rgb, f"id {s.pid}, {layer}")
            h, w = s.rgb.shape[:2]
            for j, name in enumerate(names):
                col = 1 + shown.index(name)
                heat_tile(axes[r][col], s.rgb, exp.maps[0, j], scale,
                          None if name in titled else name)  # fmt: skip
                titled.add(name)
                y, x = points[i][name]
                axes[r][col].scatter([x * w], [y * h], s=14, c="white", edgecolors="black", lw=0.6)
            colour_bar(fig, axes[r][1 : 1 + len(shown)], scale)
            fmap = fmaps[f"ia{layer[-1]}"][i].float().clamp_min(0).cpu()
            for j, (region, c) in enumerate(channels[layer].items()):
                ax = axes[r][first_channel + j]
                heat = fmap[c] / fmap[c].max().clamp_min(1e-12)
                heat_tile(ax, s.rgb, heat.numpy(), unit, f"CIA ch {c}\n({region})")
                channel_axes.append(ax)
    if channel_axes:
        colour_bar(fig, channel_axes, unit, "CIA channel / its max")
    return fig
