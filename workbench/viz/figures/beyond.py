"""Figures beyond the papers: a rank list with heat maps on every image; a faithfulness panel."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from workbench.viz.figures import register_figure
from workbench.viz.figures.samples import (
    batch,
    device_of,
    input_size,
    load_samples,
    matched_subsplit,
    pick_rows,
)
from workbench.viz.figures.style import colour_bar, grid, heat_tile, image_tile
from workbench.viz.heatmap import shared_scale
from workbench.viz.ranklist import GREEN, RED

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from workbench.data.split import Split
    from workbench.viz.figures import Models

__all__ = ["faithfulness_panel", "person_energy", "ranklist_heatmaps"]


@register_figure(
    "ranklist_heatmaps",
    paper="workbench",
    figure="rank list",
    needs=["bot"],
    what="queries and their top-8 with Grad-CAM of each pair's similarity, one colour scale",
)
def ranklist_heatmaps(
    models: Models, split: Split, *, seed: int = 0, queries: int = 3, topk: int = 8
) -> Figure:
    from workbench.evaluate.distance import distance_label, ranking_metric
    from workbench.evaluate.report import split_distances
    from workbench.explain import explain_pair
    from workbench.viz.ranklist import ranked_gallery

    model = models["bot"]
    size = input_size(model)
    distmat = split_distances(model, split, size, device_of(model))
    short = distance_label(ranking_metric(model), short=True)
    q, g = split.query, split.gallery
    rows = pick_rows(q, queries, seed)
    fig, axes = grid(
        2 * len(rows), topk + 1, title="Rank list with Grad-CAM of the pair similarity"
    )
    panels = []
    for r in rows:
        top = ranked_gallery(
            distmat,
            q.pid.to_numpy(),
            g.pid.to_numpy(),
            q.camid.to_numpy(),
            g.camid.to_numpy(),
            r,
            topk,
        )
        query = load_samples(q, [r], size)[0]
        gallery = load_samples(g, list(top), size)
        dev = device_of(model)
        pair = explain_pair("gradcam", model, batch([query], dev), batch(gallery, dev))
        panels.append((query, gallery, pair, distmat[r, top]))
    scale = shared_scale([p[2].query.maps for p in panels] + [p[2].gallery.maps for p in panels])
    for k, (query, gallery, pair, ranked) in enumerate(panels):
        image_tile(axes[2 * k][0], query.rgb, f"query {query.pid}\ncam {query.camid + 1}")
        heat_tile(axes[2 * k + 1][0], query.rgb, pair.query.maps[0], scale, "query × rank 1")
        for j, s in enumerate(gallery):
            colour = GREEN if s.pid == query.pid else RED
            d = float(ranked[j])  # the ranking's distance (the maps explain the same pair)
            label = f"{j + 1}: {short} {d:.2f}\ncam {s.camid + 1}"
            image_tile(axes[2 * k][j + 1], s.rgb, label, colour)
            heat_tile(axes[2 * k + 1][j + 1], s.rgb, pair.gallery.maps[j], scale, colour=colour)
    colour_bar(fig, axes, scale, "Grad-CAM (ReLU)")
    return fig


@register_figure(
    "faithfulness",
    paper="workbench",
    figure="faithfulness",
    needs=["bot"],
    optional=["daaf", "sa", "rga", "ianet"],
    requires=["masks"],
    what="energy of Grad-CAM on the person mask per model and layer, against its chance level",
)
def faithfulness_panel(
    models: Models,
    split: Split,
    *,
    seed: int = 0,
    pairs: int = 24,
    layers: tuple[str, ...] = ("layer2", "layer3", "layer4"),
) -> Figure:
    from workbench.viz.figures.style import figure_style

    table = person_energy(models, split, seed=seed, pairs=pairs, layers=layers)
    with figure_style():
        from matplotlib.figure import Figure

        fig = Figure(figsize=(1.0 + 0.7 * len(table), 2.4))
        ax = fig.subplots()
        x = np.arange(len(table))
        ax.bar(x - 0.18, table.energy, 0.36, label="Grad-CAM energy on person")
        ax.bar(x + 0.18, table.chance, 0.36, label="chance (person area share)", color="0.7")
        ax.set_xticks(x, [f"{r.role}\n{r.layer}" for r in table.itertuples()])
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of positive map energy")
        ax.legend(fontsize=6, loc="upper left")
        ax.set_title(f"Energy on the person mask ({pairs} pairs, both sides)")
    return fig


def person_energy(
    models: Models,
    split: Split,
    *,
    seed: int = 0,
    pairs: int = 24,
    layers: tuple[str, ...] = ("layer2", "layer3", "layer4"),
) -> pd.DataFrame:
    """What the faithfulness panel draws: per role and layer, the pair Grad-CAM's share of
    positive energy on the person mask and the mask's area share (chance), both sides of
    ``pairs`` matched (query, true match) pairs; columns role, layer, energy, chance, ratio."""
    import pandas as pd

    from workbench.evaluate.report import faithfulness_report, split_distances

    small = matched_subsplit(split, pairs, seed)  # the same pairs, without the whole gallery
    rows = []
    for role, model in models.items():
        size, dev = input_size(model), device_of(model)
        distmat = split_distances(model, small, size, dev)  # once per model, not per layer
        for layer in layers:
            report = faithfulness_report(
                model, small, "gradcam", layer=layer, input_size=size, pairs=None, seed=seed,
                curves=False, progress=False, device=dev, distmat=distmat,
            )  # fmt: skip
            s = report.summary
            energy, chance = s.loc["energy_on_person"].mean(), s.loc["chance"].mean()
            rows.append((role, layer, energy, chance, energy / chance))
    return pd.DataFrame(rows, columns=["role", "layer", "energy", "chance", "ratio"])
