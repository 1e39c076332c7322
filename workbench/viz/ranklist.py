"""Rank-list figure: each query followed by its top-k gallery images (torchreid's "visrank").

Green frame = same identity, red = different; gallery images the protocol ignores for that
query (same identity and camera, junk) are skipped, exactly as in the metrics. Each tile shows
the distance and the file name, which users of torchreid and FastReID had to patch in.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

from workbench.viz.images import add_border, read_rgb

GREEN, RED, GREY = (40, 170, 60), (210, 40, 40), (120, 120, 120)


def ranked_gallery(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    query: int,
    topk: int = 10,
) -> np.ndarray:
    """Gallery indices of the ``topk`` nearest valid gallery items for one query (stable order)."""
    order = np.argsort(distmat[query], kind="stable")
    drop = (g_pids[order] == -1) | (
        (g_pids[order] == q_pids[query]) & (g_camids[order] == q_camids[query])
    )
    return order[~drop][:topk]


def choose_queries(
    ap: np.ndarray | None,
    n: int,
    order: Literal["worst", "best", "random", "first"] = "random",
    seed: int = 0,
) -> list[int]:
    """Pick ``n`` query indices: lowest/highest AP first (FastReID sorts worst-first), or random."""
    if ap is None or order == "first":
        return list(range(n))
    valid = np.flatnonzero(~np.isnan(ap))
    if order == "random":
        return sorted(np.random.default_rng(seed).choice(valid, min(n, len(valid)), replace=False))
    ranked = valid[np.argsort(ap[valid], kind="stable")]
    return list((ranked if order == "worst" else ranked[::-1])[:n])


def plot_ranklist(
    distmat: np.ndarray,
    query: pd.DataFrame,
    gallery: pd.DataFrame,
    queries: list[int],
    topk: int = 10,
    out: str | Path | None = None,
    title: str | None = None,
    metric: str = "cosine",
) -> Figure:
    """Draw ``queries`` (row indices into ``query``) each with its top-``topk`` gallery images.

    ``query`` / ``gallery`` are split tables (``path, pid, camid``); ``metric`` names the
    distance of ``distmat`` on every tile. Returns the matplotlib Figure and saves it when
    ``out`` is given.
    """
    from workbench.evaluate.distance import distance_label

    short = distance_label(metric, short=True)
    import matplotlib.pyplot as plt

    q_pids, g_pids = query.pid.to_numpy(), gallery.pid.to_numpy()
    q_cams, g_cams = query.camid.to_numpy(), gallery.camid.to_numpy()
    fig, axes = plt.subplots(
        len(queries), topk + 1, figsize=(1.25 * (topk + 1), 2.9 * len(queries)), squeeze=False
    )
    for row, qi in enumerate(queries):
        q = query.iloc[qi]
        ax = axes[row, 0]
        ax.imshow(add_border(read_rgb(q.path), GREY))
        ax.set_title(f"query\nid {q.pid} cam {q.camid + 1}", fontsize=8)
        ax.set_xlabel(Path(q.path).name, fontsize=5.5)
        ranked = ranked_gallery(distmat, q_pids, g_pids, q_cams, g_cams, qi, topk)
        for col in range(topk):
            ax = axes[row, col + 1]
            if col < len(ranked):
                gi = ranked[col]
                g = gallery.iloc[gi]
                match = g.pid == q.pid
                ax.imshow(add_border(read_rgb(g.path), GREEN if match else RED, width=5))
                ax.set_title(f"#{col + 1}  {short} {distmat[qi, gi]:.3f}", fontsize=7)
                ax.set_xlabel(f"{Path(g.path).name}\nid {g.pid} cam {g.camid + 1}", fontsize=5.5)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=130)
    return fig
