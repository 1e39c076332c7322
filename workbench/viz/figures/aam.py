"""AAM interpreter (Chen et al., ICCV 2021) figures: a pair's distance split into attributes, and
the average positive / negative attribute attention maps.

Drawing is :mod:`workbench.viz.attributes` (the official code's AAM rendering); the numbers come
from :mod:`workbench.explain.attributes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from workbench.viz.figures import register_figure
from workbench.viz.figures.samples import batch, device_of, input_size, load_samples, pick_rows
from workbench.viz.figures.style import colour_bar

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from workbench.data.split import Split
    from workbench.viz.figures import Models

__all__ = ["aam_fig1", "aam_supp_fig2", "aam_supp_fig3", "aam_supp_fig4", "cross_domain_split"]


def _unit_bar(fig, label: str) -> None:
    """The AAMs are drawn on [0, 1] (min-max normalised, as the official code does)."""
    import matplotlib.pyplot as plt

    from workbench.viz.heatmap import Scale

    colour_bar(fig, [ax for ax in fig.axes if ax.images], Scale(0.0, 1.0, "nipy_spectral"), label)
    plt.close(fig)  # drawn with pyplot: leave no open figure behind (the recipe returns it)


def _attribute_vectors(split, pids) -> np.ndarray | None:
    """(N, A) schema attribute vectors of ``pids`` from the split's attribute file, or None."""
    from workbench.data.attributes import load_attributes
    from workbench.viz.figures.samples import has_input

    if not has_input(split, "attributes"):
        return None
    table = load_attributes(split.root, "test")
    return np.stack([table.loc[int(p)].to_numpy(dtype=np.int64) for p in pids])


@register_figure(
    "aam_fig1", paper="AAM", figure="Fig. 1/4", needs=["interpreter"], uses=["attributes"],
    what="a query and its true match: the distance split into the top-3 attributes with their AAMs",
)  # fmt: skip
def aam_fig1(models: Models, split: Split, *, seed: int = 0, k: int = 3) -> Figure:
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
        f"attributes; top {k} with their AAMs (share of the distance"
        + (" · ground truth)" if attrs is not None else "; no attribute file in the data)"),
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    _unit_bar(fig, "AAM (per map, min-max)")
    return fig


@register_figure(
    "aam_supp_fig2", paper="AAM", figure="supp. Fig. 2", needs=["interpreter"],
    requires=["attributes"],
    what="average positive and negative AAM of every attribute over the query images",
)  # fmt: skip
def aam_supp_fig2(models: Models, split: Split, *, seed: int = 0, limit: int = 400) -> Figure:
    from workbench.evaluate.interpretations import average_aams, interpret_table
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


def cross_domain_split(split: Split, domain: int = 1, ids: int = 40) -> Split:
    """The test split of the synthetic dataset filmed at site ``domain`` (rendered once, reused).

    Same seed and image size as ``split`` when it is synthetic (rendered beside it as
    ``<root>_site<domain>``), else the defaults under ``~/.cache/workbench``.
    """
    import json
    from pathlib import Path

    from workbench.data.readers import load_split
    from workbench.data.synth import ensure_synthetic

    root = Path(getattr(split, "root", None) or "")
    meta_path = root / "synth.json"
    if root.name and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        seed, height, width = meta["seed"], meta["height"], meta["width"]
        ids = min(ids, int(meta["ids"]))
        folder = root.with_name(f"{root.name}_site{domain}")
    else:
        seed, height, width = 0, 256, 128
        folder = Path.home() / ".cache" / "workbench" / f"synth_site{domain}"
    ensure_synthetic(folder, ids=ids, seed=seed, height=height, width=width, progress=False,
                     domain=domain)  # fmt: skip
    return load_split(folder)


def _pairs(split, n_match: int, n_other: int, seed: int) -> list[tuple[int, int, bool]]:
    """(query row, gallery row, same person) pairs chosen by ``seed``: cross-camera true matches,
    then other people."""
    q, g = split.query, split.gallery
    rng = np.random.default_rng(seed)
    pairs = []
    for r in pick_rows(q, n_match + n_other, seed):
        pid, cam = q.pid.iloc[r], q.camid.iloc[r]
        same = len(pairs) < n_match
        if same:
            hits = (g.pid.to_numpy() == pid) & (g.camid.to_numpy() != cam)
        else:
            hits = (g.pid.to_numpy() != pid) & (g.pid.to_numpy() > 0)
        rows = np.flatnonzero(hits)
        if rows.size:
            pairs.append((int(r), int(rng.choice(rows)), same))
    return pairs


@register_figure(
    "aam_supp_fig3", paper="AAM", figure="supp. Fig. 3", needs=["interpreter"],
    what="cross-domain pairs: the interpreter of site 0 explaining pairs filmed at site 1",
)  # fmt: skip
def aam_supp_fig3(
    models: Models, split: Split, *, seed: int = 0, k: int = 3, matches: int = 2, others: int = 1
) -> Figure:
    from workbench.explain.attributes import explain_pair
    from workbench.viz.attributes import draw_pair_explanation
    from workbench.viz.figures.style import grid

    model = models["interpreter"]
    size = input_size(model)
    site = cross_domain_split(split)
    pairs = _pairs(site, matches, others, seed)
    fig, axes = grid(2, len(pairs) * (k + 1), tile=(1.1, 2.5), title=(
        "AAM supp. Fig. 3: cross-domain. Target and interpreter trained at site 0, pairs filmed "
        f"at site 1 (other cameras, a colour cast)\ntop {k} attributes: share of the distance "
        "· ground truth"))  # fmt: skip
    dev = device_of(model)
    for i, (qr, gr, same) in enumerate(pairs):
        x, y = load_samples(site.query, [qr], size)[0], load_samples(site.gallery, [gr], size)[0]
        attrs = _attribute_vectors(site, [x.pid, y.pid])
        ex = explain_pair(
            model, x.image.to(dev), y.image.to(dev), k=k,
            attributes_x=None if attrs is None else attrs[0],
            attributes_y=None if attrs is None else attrs[1],
        )  # fmt: skip
        block = axes[:, i * (k + 1) : (i + 1) * (k + 1)]
        draw_pair_explanation(ex, block)
        left, right = block[1, 0].get_position(), block[1, -1].get_position()
        fig.text((left.x0 + right.x1) / 2, left.y0 - 0.02,
                 f"{'same person' if same else 'different people'}: distance "
                 f"{ex.distance:.2f} (distilled {ex.distilled:.2f})",
                 ha="center", va="top", fontsize=7)  # fmt: skip
    _unit_bar(fig, "AAM (per map, min-max)")
    return fig


@register_figure(
    "aam_supp_fig4", paper="AAM", figure="supp. Fig. 4",
    needs=["interpreter_n1", "interpreter", "interpreter_n5"],
    what="AAMs of interpreters sharing N = 1, 3, 5 stages with the target, same images",
)  # fmt: skip
def aam_supp_fig4(
    models: Models,
    split: Split,
    *,
    seed: int = 0,
    n: int = 3,
    attributes: tuple[str, ...] = ("hair", "up", "down"),
) -> Figure:
    from workbench.viz.attributes import display_aam
    from workbench.viz.figures.style import grid, heat_tile, image_tile
    from workbench.viz.heatmap import Scale

    roles = {1: "interpreter_n1", 3: "interpreter", 5: "interpreter_n5"}
    first = models[roles[3]]
    names = [a for a in attributes if a in first.attribute_names] or first.attribute_names[:3]
    size = input_size(first)
    samples = load_samples(split.query, pick_rows(split.query, n, seed), size)
    fig, axes = grid(len(samples), 1 + len(roles) * len(names), title=(
        "AAM supp. Fig. 4: attribute attention maps of interpreters sharing N stages with the "
        "target (a) N = 1, (b) N = 3, (c) N = 5"))  # fmt: skip
    scale = Scale(0.0, 1.0, "nipy_spectral")
    for col, (stages, role) in enumerate(roles.items()):
        model = models[role]
        if int(model.config.shared_stages) != stages:
            raise ValueError(f"{role} shares {model.config.shared_stages} stages, not {stages}")
        with torch.no_grad():
            aams = model.interpret(batch(samples, device_of(model))).aams.float().cpu()
        for r, s in enumerate(samples):
            if col == 0:
                image_tile(axes[r][0], s.rgb, f"id {s.pid}" if r else f"image\nid {s.pid}")
            for j, name in enumerate(names):
                a = model.attribute_names.index(name)
                title = f"N = {stages}\n{name}" if r == 0 else None
                heat_tile(axes[r][1 + col * len(names) + j], s.rgb,
                          display_aam(aams[r, a], size), scale, title)  # fmt: skip
    _unit_bar(fig, "AAM (per map, min-max)")
    return fig
