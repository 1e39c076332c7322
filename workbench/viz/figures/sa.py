"""Parameter-free spatial attention (Wang et al. 2019) figures: CAM per stage, failure panels.

Both compare the SA network with the same network trained without its SA layers (``sa_plain``:
``sa_stages=[]``, plain GAP before every deep-supervision classifier), as the paper does. Without
that card, Fig. 1/5 falls back to the SA network's own CAM before its SA re-weighting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from workbench.viz.figures import register_figure
from workbench.viz.figures.samples import batch, device_of, input_size, load_samples, pick_rows
from workbench.viz.figures.style import colour_bar, grid, heat_tile, image_tile
from workbench.viz.heatmap import shared_scale
from workbench.viz.ranklist import GREEN, RED

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from workbench.data.split import Split
    from workbench.viz.figures import Models

__all__ = ["sa_fig5", "sa_fig6"]


def _stage_cam(model, x, stage, with_sa=True):
    from workbench.explain import explain

    return explain("cam", model, x, layer=stage, with_sa=with_sa).maps


@register_figure(
    "sa_fig5", paper="Parameter-free SA", figure="Fig. 1/5", needs=["sa"], optional=["sa_plain"],
    what="class activation maps of the deep-supervision stages, plain GAP vs GAP with SA",
)  # fmt: skip
def sa_fig5(models: Models, split: Split, *, seed: int = 0, n: int = 3) -> Figure:
    from workbench.explain.cam import StageCAM

    model, plain = models["sa"], models.get("sa_plain")
    stages = [r.name for r in StageCAM.candidate_layers(model)]
    samples = load_samples(split.query, pick_rows(split.query, n, seed), input_size(model))
    x = batch(samples, device_of(model))
    how = "a network trained without SA" if plain is not None else "the same network, SA removed"
    fig, axes = grid(n, 1 + 2 * len(stages), title=(
        f"SA Fig. 1/5: CAM per stage, plain GAP ({how}) / GAP with SA"
    ))  # fmt: skip
    for k, stage in enumerate(stages):
        without = _stage_cam(plain, x, stage) if plain is not None else _stage_cam(
            model, x, stage, with_sa=False
        )  # fmt: skip
        with_sa = _stage_cam(model, x, stage)
        scale = shared_scale([without, with_sa])  # one scale per stage: compare w/o and w/
        for i, s in enumerate(samples):
            first = i == 0
            heat_tile(
                axes[i][1 + 2 * k], s.rgb, without[i], scale, f"{stage} GAP" if first else None
            )
            heat_tile(
                axes[i][2 + 2 * k], s.rgb, with_sa[i], scale, f"{stage} GAP+SA" if first else None
            )
        pair = [axes[i][1 + 2 * k + d] for i in range(n) for d in (0, 1)]
        colour_bar(fig, pair, scale, f"CAM, {stage}", location="bottom")
    for i, s in enumerate(samples):
        image_tile(axes[i][0], s.rgb, f"id {s.pid}")
    return fig


def _nearest(dist, gp, gc, qp, qc):
    """Per query: the nearest gallery row of its own camera and of the others (pid > 0 only)."""
    same = gc[None] == qc[:, None]
    person = gp[None] > 0
    return (
        np.where(same & person, dist, np.inf).argmin(1),
        np.where(~same & person, dist, np.inf).argmin(1),
    )


@register_figure(
    "sa_fig6", paper="Parameter-free SA", figure="Fig. 6", needs=["sa", "sa_plain"],
    what="failure cases of plain GAP across cameras that GAP with SA gets right, stage-2 CAM",
)  # fmt: skip
def sa_fig6(
    models: Models, split: Split, *, seed: int = 0, n: int = 2, stage: str = "layer2"
) -> Figure:
    """Queries whose nearest same-camera image is right for both models, whose nearest
    cross-camera image is another person for plain GAP and the right one with SA (seeded pick)."""
    from workbench.evaluate.report import cross_camera_matches, split_distances

    roles = ("sa", "sa_plain")
    size = input_size(models["sa"])
    q, g = split.query, split.gallery
    qp, qc, gp, gc = q.pid.to_numpy(), q.camid.to_numpy(), g.pid.to_numpy(), g.camid.to_numpy()
    dist = {r: split_distances(models[r], split, size, device_of(models[r])) for r in roles}
    near = {r: _nearest(dist[r], gp, gc, qp, qc) for r in roles}
    right = {r: (gp[near[r][0]] == qp, gp[near[r][1]] == qp) for r in roles}
    cross = cross_camera_matches(q, g)  # (Q, G)
    has_cross = cross.any(1)
    wanted = right["sa"][0] & right["sa"][1] & right["sa_plain"][0] & ~right["sa_plain"][1]
    found = bool((wanted & has_cross).any())
    if found:
        rows = np.flatnonzero(wanted & has_cross)
    else:  # no such query: where plain GAP fails across cameras (any query, on tiny data)
        fails = has_cross & ~right["sa_plain"][1]
        rows = np.flatnonzero(fails if fails.any() else has_cross)
    picked = sorted(np.random.default_rng(seed).choice(rows, min(n, rows.size), replace=False))
    title = (
        "SA Fig. 6: plain GAP fails across cameras where GAP+SA does not"
        if found else "SA Fig. 6: plain GAP fails across cameras (no query where only SA is right)"
    )  # fmt: skip
    fig, axes = grid(
        3,
        3 * len(picked),
        title=f"{title}\nstage-2 CAM; red frame: that model's nearest image there is someone else",
    )
    panels = []
    for r in picked:
        match = int(np.flatnonzero(cross[r])[dist["sa"][r, cross[r]].argmin()])
        rows_g = [int(near["sa"][0][r]), match]
        images = load_samples(q, [int(r)], size) + load_samples(g, rows_g, size)
        x = batch(images, device_of(models["sa"]))
        cams = {role: _stage_cam(models[role], x, stage) for role in roles}
        panels.append((r, images, cams))
    scales = {role: shared_scale([p[2][role] for p in panels]) for role in roles}
    for k, (r, images, cams) in enumerate(panels):
        heads = ("query", "same camera", "other camera")
        for j, s in enumerate(images):
            col = 3 * k + j
            image_tile(axes[0][col], s.rgb, f"{heads[j]}\nid {s.pid}, cam {s.camid + 1}")
            for row, role, name in ((1, "sa", "GAP+SA"), (2, "sa_plain", "GAP")):
                colour = None if j == 0 else GREEN if right[role][j - 1][r] else RED
                heat_tile(axes[row][col], s.rgb, cams[role][j], scales[role], name, colour)
    for row, role in ((1, "sa"), (2, "sa_plain")):
        colour_bar(fig, axes[row], scales[role], "CAM, " + stage)
    return fig
