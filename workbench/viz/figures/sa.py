"""Parameter-free spatial attention (Wang et al. 2019) figures: CAM per stage, failure panels."""

from __future__ import annotations

import numpy as np

from workbench.viz.figures import register_figure
from workbench.viz.figures.samples import batch, device_of, input_size, load_samples, pick_rows
from workbench.viz.figures.style import colour_bar, grid, heat_tile, image_tile
from workbench.viz.heatmap import shared_scale
from workbench.viz.ranklist import GREEN, RED

__all__ = ["sa_fig5", "sa_fig6"]


@register_figure(
    "sa_fig5", paper="Parameter-free SA", figure="Fig. 1/5", needs=["sa"],
    what="class activation maps of the deep-supervision stages, with and without SA",
)  # fmt: skip
def sa_fig5(models, split, *, seed=0, n=3):
    from workbench.explain import explain
    from workbench.explain.cam import StageCAM

    model = models["sa"]
    stages = [r.name for r in StageCAM.candidate_layers(model)]
    samples = load_samples(split.query, pick_rows(split.query, n, seed), input_size(model))
    x = batch(samples, device_of(model))
    cols = 1 + 2 * len(stages)
    fig, axes = grid(n, cols, title="SA Fig. 1/5: CAM per stage, without / with spatial attention")
    for k, stage in enumerate(stages):
        without = explain("cam", model, x, layer=stage, with_sa=False).maps
        with_sa = explain("cam", model, x, layer=stage, with_sa=True).maps
        scale = shared_scale([without, with_sa])  # one scale per stage: compare w/o and w/
        for i, s in enumerate(samples):
            first = i == 0
            heat_tile(
                axes[i][1 + 2 * k], s.rgb, without[i], scale, f"{stage} w/o SA" if first else None
            )
            heat_tile(
                axes[i][2 + 2 * k], s.rgb, with_sa[i], scale, f"{stage} w/ SA" if first else None
            )
        pair = [axes[i][1 + 2 * k + d] for i in range(n) for d in (0, 1)]
        colour_bar(fig, pair, scale, f"CAM, {stage}", location="bottom")
    for i, s in enumerate(samples):
        image_tile(axes[i][0], s.rgb, f"id {s.pid}")
    return fig


@register_figure(
    "sa_fig6", paper="Parameter-free SA", figure="Fig. 6", needs=["sa"],
    what="failure panels: a query's nearest same-camera and cross-camera gallery images, Grad-CAM",
)  # fmt: skip
def sa_fig6(models, split, *, seed=0, topk=4):
    """The query with the largest same- vs cross-camera gap among sampled ones (seeded)."""
    from workbench.explain import explain_pair
    from workbench.explain.report import split_distances

    model = models["sa"]
    size, dev = input_size(model), device_of(model)
    q, g = split.query, split.gallery
    dist = split_distances(model, split, size, dev)
    qp, qc, gp, gc = q.pid.to_numpy(), q.camid.to_numpy(), g.pid.to_numpy(), g.camid.to_numpy()
    same_cam = gc[None] == qc[:, None]
    valid = gp[None] > 0
    # a failure: the nearest cross-camera image is another person while the same camera's is right
    near_same = np.where(same_cam & valid, dist, np.inf).argmin(1)
    near_cross = np.where(~same_cam & valid, dist, np.inf).argmin(1)
    failing = np.flatnonzero((gp[near_same] == qp) & (gp[near_cross] != qp))
    rows = failing if failing.size else np.arange(len(q))
    r = int(np.random.default_rng(seed).choice(rows))
    query = load_samples(q, [r], size)[0]
    fig, axes = grid(4, topk + 1, title=(
        f"SA Fig. 6: query {query.pid} (cam {query.camid + 1}) vs same-camera (rows 1–2) "
        f"and cross-camera (rows 3–4) gallery, Grad-CAM of each pair"
    ))  # fmt: skip
    panels = []
    for mask in (same_cam[r], ~same_cam[r]):
        order = np.argsort(np.where(mask & (gp > 0), dist[r], np.inf), kind="stable")[:topk]
        gallery = load_samples(g, order.tolist(), size)
        pair = explain_pair("gradcam", model, batch([query], dev), batch(gallery, dev))
        panels.append((gallery, pair))
    scale = shared_scale([p.gallery.maps for _, p in panels] + [p.query.maps for _, p in panels])
    for k, (gallery, pair) in enumerate(panels):
        image_tile(axes[2 * k][0], query.rgb, "query")
        heat_tile(axes[2 * k + 1][0], query.rgb, pair.query.maps[0], scale, "query × 1st")
        for j, s in enumerate(gallery):
            colour = GREEN if s.pid == query.pid else RED
            title = f"d={float(pair.distance[j]):.2f} cam {s.camid + 1}"
            image_tile(axes[2 * k][j + 1], s.rgb, title, colour)
            heat_tile(axes[2 * k + 1][j + 1], s.rgb, pair.gallery.maps[j], scale, colour=colour)
    colour_bar(fig, axes, scale)
    return fig
