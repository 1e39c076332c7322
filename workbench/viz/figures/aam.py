"""AAM interpreter (Chen et al., ICCV 2021) figures: a pair's distance split into attributes, and
the average positive / negative attribute attention maps.

Drawing is :mod:`workbench.viz.attributes` (the official code's AAM rendering); the numbers come
from :mod:`workbench.explain.attributes`.
"""

from __future__ import annotations

import numpy as np
import torch

from workbench.viz.figures import register_figure
from workbench.viz.figures.samples import device_of, input_size, load_samples, pick_rows

__all__ = ["aam_fig1", "aam_supp_fig2"]


def _unit_bar(fig, label: str) -> None:
    """The AAMs are drawn on [0, 1] (min-max normalised, as the official code does)."""
    import matplotlib.pyplot as plt

    from workbench.viz.figures.style import colour_bar
    from workbench.viz.heatmap import Scale

    colour_bar(fig, [ax for ax in fig.axes if ax.images], Scale(0.0, 1.0, "nipy_spectral"), label)
    plt.close(fig)  # drawn with pyplot: leave no open figure behind (the recipe returns it)


def _attribute_vectors(split, pids) -> np.ndarray | None:
    """(N, A) schema attribute vectors of ``pids`` from the split's attribute file, or None."""
    from workbench.data.attributes import load_attributes

    if getattr(split, "root", None) is None:
        return None
    table = load_attributes(split.root, "test")
    return np.stack([table.loc[int(p)].to_numpy(dtype=np.int64) for p in pids])


@register_figure(
    "aam_fig1", paper="AAM", figure="Fig. 1/4", needs=["interpreter"],
    what="a query and its true match: the distance split into the top-3 attributes with their AAMs",
)  # fmt: skip
def aam_fig1(models, split, *, seed=0, k=3):
    from workbench.explain.attributes import explain_pair
    from workbench.viz.attributes import plot_pair_explanation

    model = models["interpreter"]
    size = input_size(model)
    q = split.query
    r = pick_rows(q, 1, seed)[0]
    pid, cam = q.pid.iloc[r], q.camid.iloc[r]
    g = split.gallery
    matches = np.flatnonzero((g.pid.to_numpy() == pid) & (g.camid.to_numpy() != cam))
    g_row = int(matches[0]) if matches.size else 0
    x, y = load_samples(q, [r], size)[0], load_samples(g, [g_row], size)[0]
    attrs = _attribute_vectors(split, [x.pid, y.pid])
    dev = device_of(model)
    ex = explain_pair(
        model, x.image.to(dev), y.image.to(dev), k=k,
        attributes_x=None if attrs is None else attrs[0],
        attributes_y=None if attrs is None else attrs[1],
    )  # fmt: skip
    fig = plot_pair_explanation(ex)
    fig.suptitle(
        f"AAM Fig. 1/4: distance {ex.distance:.2f} (distilled {ex.distilled:.2f}) split into "
        f"attributes; top {k} with their AAMs (value under the name: ground truth)",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    _unit_bar(fig, "AAM (per map, min-max)")
    return fig


@register_figure(
    "aam_supp_fig2", paper="AAM", figure="supp. Fig. 2", needs=["interpreter"],
    what="average positive and negative AAM of every attribute over the query images",
)  # fmt: skip
def aam_supp_fig2(models, split, *, seed=0, limit=400):
    from workbench.explain.attributes import average_aams, interpret_table
    from workbench.viz.attributes import plot_average_aams

    model = models["interpreter"]
    rows = pick_rows(split.query, limit, seed, distinct_ids=False)
    table = split.query.iloc[rows]
    run = interpret_table(model, table, *input_size(model), device=device_of(model), masks=False)
    attrs = _attribute_vectors(split, table.pid.to_numpy())
    labels = torch.from_numpy(attrs[:, model.config.attribute_indices])
    fig = plot_average_aams(average_aams(run.aams, labels), model.attribute_names)
    fig.suptitle(f"AAM supp. Fig. 2: average positive (+) / negative (−) AAMs, {len(rows)} images")
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    _unit_bar(fig, "average binarised AAM")
    return fig
