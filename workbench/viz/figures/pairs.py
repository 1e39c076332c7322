"""What matched what, and why a wrong match won: figures of the exact pair decomposition.

* ``pair_correspondence``: queries, their top match, lines between the strongest position pairs
  (QAConv's style) and, for points on the query's head, torso, legs and shoes, where each
  matches on the gallery image — every map on one colour scale.
* ``ranking_contrast``: queries whose first match is another person: the query, that wrong
  match, the true match, and the query's map of s(q, wrong) − s(q, true) (exact: it adds up to
  the margin), beside each gallery image's own map.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from workbench.data.annotations import PART_LABELS
from workbench.viz.figures import register_figure
from workbench.viz.figures.samples import (
    batch,
    device_of,
    input_size,
    load_samples,
    matched_subsplit,
)
from workbench.viz.figures.style import colour_bar, grid, heat_tile, image_tile
from workbench.viz.heatmap import shared_scale
from workbench.viz.pairs import draw_matches, mark_point
from workbench.viz.ranklist import GREEN, RED, ranked_gallery

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from workbench.data.split import Split
    from workbench.viz.figures import Models

__all__ = ["pair_correspondence", "ranking_contrast"]

#: the similarity a decomposition splits, per ranking metric (colour-bar labels)
SIMILARITY = {"cosine": "cos(e_q, e_g)", "euclidean": "−‖e_q − e_g‖²"}

#: where the points sit when the images have no part masks: (y, x) fractions of the image
BODY_POINTS = {
    "head": (0.12, 0.5),
    "upper body": (0.38, 0.5),
    "lower body": (0.68, 0.5),
    "shoes": (0.94, 0.5),
}


def _points(sample) -> dict[str, tuple[float, float]]:
    """Centroids of the query's part masks (fixed body fractions without masks)."""
    if sample.parts is None:
        return dict(BODY_POINTS)
    h, w = sample.parts.shape
    out = {}
    for label, name in PART_LABELS.items():
        if name in BODY_POINTS:
            ys, xs = np.nonzero(sample.parts == label)
            out[name] = (
                ((ys.mean() + 0.5) / h, (xs.mean() + 0.5) / w) if len(ys) else BODY_POINTS[name]
            )
    return out


def _ranking(model, split):
    from workbench.evaluate.protocol import evaluate_model

    return evaluate_model(model, split, *input_size(model), device=device_of(model), progress=False)


@register_figure(
    "pair_correspondence",
    paper="workbench",
    figure="pair correspondence",
    needs=["bot"],
    uses=["masks"],  # the points are part-mask centroids (fixed body fractions without masks)
    what="queries, their top match, the strongest position pairs as lines, and where points on "
    "the head, torso, legs and shoes match (exact decomposition, one colour scale)",
)
def pair_correspondence(models: Models, split: Split, *, seed: int = 0, queries: int = 3) -> Figure:
    from workbench.evaluate.distance import distance_label, ranking_metric
    from workbench.explain.decomposition import decompose_pair

    model = models["bot"]
    size = input_size(model)
    short = distance_label(ranking_metric(model), short=True)
    small = matched_subsplit(split, queries, seed)
    result = _ranking(model, small)
    q, g = small.query, small.gallery
    rows = []
    for r in range(len(q)):
        top = ranked_gallery(result.distmat, q.pid.to_numpy(), g.pid.to_numpy(),
                             q.camid.to_numpy(), g.camid.to_numpy(), r, 1)  # fmt: skip
        query = load_samples(q, [r], size)[0]
        match = load_samples(g, [int(top[0])], size)[0]
        dev = device_of(model)
        dec = decompose_pair(model, batch([query], dev), batch([match], dev)).to("cpu")
        points = _points(query)
        maps = dec.correspondence(list(points.values()))[0].numpy()  # (P, h, w)
        rows.append((query, match, dec, points, maps, float(result.distmat[r, top[0]])))
    scale = shared_scale([row[4] for row in rows])
    cols = 3 + len(BODY_POINTS)
    fig, axes = grid(
        len(rows), cols, title="What matched what: the exact decomposition of the pair"
    )
    for k, (query, match, dec, points, maps, d) in enumerate(rows):
        marked = query.rgb
        for y, x in points.values():
            marked = mark_point(marked, y, x, size=4)
        image_tile(axes[k][0], marked, f"query {query.pid}\ncam {query.camid + 1}")
        colour = GREEN if match.pid == query.pid else RED
        image_tile(axes[k][1], match.rgb, f"top match {match.pid}\n{short} {d:.3f}", colour)
        q_yx, g_yx, value = dec.top_matches(10)
        lines = draw_matches(
            query.rgb, match.rgb, q_yx[0].numpy(), g_yx[0].numpy(), value[0].numpy(), gap=8
        )
        image_tile(axes[k][2], lines, "10 strongest\nposition pairs")
        for p, name in enumerate(points):
            heat_tile(axes[k][3 + p], match.rgb, maps[p], scale, f"{name} →", colour)
    colour_bar(fig, axes, scale, f"share of {SIMILARITY[rows[0][2].metric]}")
    return fig


@register_figure(
    "ranking_contrast",
    paper="workbench",
    figure="ranking contrast",
    needs=["bot"],
    what="queries whose first match is wrong: the wrong match, the true match, and the query map "
    "of s(q, wrong) − s(q, true), which adds up to the margin",
)
def ranking_contrast(models: Models, split: Split, *, seed: int = 0, queries: int = 3) -> Figure:
    from workbench.explain.decomposition import contrast

    model = models["bot"]
    size = input_size(model)
    result = _ranking(model, split)
    q, g = split.query, split.gallery
    q_pid, g_pid = q.pid.to_numpy(), g.pid.to_numpy()
    picks = []
    for r in np.random.default_rng(seed).permutation(len(q)):
        ranked = ranked_gallery(
            result.distmat, q_pid, g_pid, q.camid.to_numpy(), g.camid.to_numpy(), int(r), len(g)
        )
        right = np.flatnonzero(g_pid[ranked] == q_pid[r])
        if len(right) and right[0] > 0:  # the first match is another person
            picks.append((int(r), int(ranked[0]), int(ranked[right[0]]), int(right[0])))
        if len(picks) == queries:
            break
    if not picks:
        raise ValueError("every query's first match is right: there is no wrong match to contrast")
    panels = []
    dev = device_of(model)
    for r, wrong, right, rank in picks:
        query = load_samples(q, [r], size)[0]
        above, below = load_samples(g, [wrong, right], size)
        result_c = contrast(model, *(batch([s], dev) for s in (query, above, below)))
        panels.append((query, above, below, rank, result_c))
    signed = shared_scale([p[4].query_map.cpu().numpy() for p in panels], "signed")
    own = shared_scale(
        [m for p in panels for m in (p[4].higher_map.cpu().numpy(), p[4].lower_map.cpu().numpy())]
    )
    fig, axes = grid(len(panels), 6, title="Why is the wrong person ranked first?")
    for k, (query, above, below, rank, c) in enumerate(panels):
        image_tile(axes[k][0], query.rgb, f"query {query.pid}\ncam {query.camid + 1}")
        image_tile(axes[k][1], above.rgb, f"#1: {above.pid}\ns={float(c.similarity[0]):.3f}", RED)
        image_tile(
            axes[k][2],
            below.rgb,
            f"#{rank + 1}: {below.pid} (true)\ns={float(c.similarity[1]):.3f}",
            GREEN,
        )
        heat_tile(
            axes[k][3],
            query.rgb,
            c.query_map.cpu().numpy(),
            signed,
            f"{'exact' if c.exact else c.method}: s₁ − s₂\n= {float(c.margin):.3f}",
        )
        heat_tile(axes[k][4], above.rgb, c.higher_map.cpu().numpy(), own, "#1\nown map", RED)
        heat_tile(axes[k][5], below.rgb, c.lower_map.cpu().numpy(), own, "true\nown map", GREEN)
    colour_bar(fig, axes[:, 3], signed, "s₁ − s₂ per position", location="bottom")
    colour_bar(fig, axes[:, 4:], own, "share of each similarity")
    return fig
