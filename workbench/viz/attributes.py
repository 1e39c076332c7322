"""Figures of the AAM interpreter (Chen et al., ICCV 2021): contributions, pair AAMs, averages.

Drawing only; the numbers come from :mod:`workbench.explain.attributes`.

* :func:`contribution_bars` — the top-k attribute contributions c^k of a pair (they sum to 1 over
  all attributes) with the ground-truth values of both images where known (Fig. 4, the widgets);
* :func:`plot_pair_explanation` — the top-k AAMs on both images (Fig. 1/4);
  :func:`draw_pair_explanation` draws the same into given axes (several pairs per figure);
* :func:`display_aam` — one AAM as it is drawn over its image;
* :func:`plot_average_aams` — average positive / negative AAMs per attribute (supp. Fig. 2);
* :func:`figure_png` — a figure as PNG bytes for an ``ipywidgets.Image``.

AAMs are shown as in the official code: bilinearly upsampled, min-max normalised per map,
squared, overlaid with alpha 0.4 (cmap ``nipy_spectral``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from workbench.data.transforms import denormalize
from workbench.explain.attributes import AttributeExplanation, upsample_aams

__all__ = [
    "contribution_bars",
    "display_aam",
    "draw_pair_explanation",
    "figure_png",
    "plot_average_aams",
    "plot_pair_explanation",
]


def contribution_bars(table: pd.DataFrame, k: int = 5, title: str = "") -> Figure:
    """Horizontal bars of the ``k`` largest contributions (``table`` sorted, largest first).

    ``table`` has ``attribute`` and ``contribution`` columns and optionally ``value_x`` /
    ``value_y`` (ground truth of query and gallery), shown as ``q=1 g=0`` beside each bar;
    attributes whose values differ (``exclusive``) are drawn in a stronger colour.
    """
    top = table.head(k).iloc[::-1]
    fig, ax = plt.subplots(figsize=(4.2, 0.32 * len(top) + 0.8), dpi=100)
    exclusive = top.get("exclusive", pd.Series(False, index=top.index)).astype(bool)
    colours = ["#d9534f" if e else "#5b8ff9" for e in exclusive]
    ax.barh(top["attribute"], 100 * top["contribution"], color=colours)
    if "value_x" in top and "value_y" in top:
        for y, (vx, vy) in enumerate(zip(top["value_x"], top["value_y"], strict=True)):
            ax.text(0.5, y, f"q={vx} g={vy}", va="center", fontsize=7, color="white")
    ax.set_xlabel("contribution to the distance (%)", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def display_aam(aam: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """An (h, w) AAM as drawn over its image: upsampled to ``size``, min-max, squared."""
    up = upsample_aams(aam[None], size)[0]
    lo, hi = up.min(), up.max()
    up = (up - lo) / (hi - lo) if hi > lo else torch.zeros_like(up)
    return (up**2).numpy()


def _rgb(image: torch.Tensor) -> np.ndarray:
    return denormalize(image)  # H×W×3 uint8


def plot_pair_explanation(ex: AttributeExplanation) -> Figure:
    """Top-k AAMs on both images (upper part) and the contributions (lower part), Fig. 4."""
    k = len(ex.top)
    fig, axes = plt.subplots(2, k + 1, figsize=(1.6 * (k + 1), 6.2))
    draw_pair_explanation(ex, axes)
    fig.suptitle(f"distance {ex.distance:.4f} (distilled {ex.distilled:.4f})", fontsize=9)
    fig.tight_layout()
    return fig


def draw_pair_explanation(ex: AttributeExplanation, axes: np.ndarray) -> None:
    """Draw ``ex`` into a (2, k + 1) grid of axes: each image, then its top-k AAMs.

    Tile titles give each attribute's share of the distance and, when known, its ground-truth
    value on that image. For figures that put several pairs side by side.
    """
    k = len(ex.top)
    if np.shape(axes) != (2, k + 1):
        raise ValueError(f"need a (2, {k + 1}) grid of axes for top-{k}, got {np.shape(axes)}")
    size = tuple(ex.images.shape[-2:])
    rows = ex.table.set_index("attribute")
    for r, (image, aams) in enumerate(((ex.images[0], ex.aams_x), (ex.images[1], ex.aams_y))):
        axes[r, 0].imshow(_rgb(image))
        axes[r, 0].set_title("image x" if r == 0 else "image y", fontsize=8)
        for j, name in enumerate(ex.top):
            ax = axes[r, j + 1]
            ax.imshow(_rgb(image))
            ax.imshow(display_aam(aams[j], size), cmap="nipy_spectral", alpha=0.4)
            title = f"{name}\n{100 * rows.loc[name, 'contribution']:.2f} %"
            if "value_x" in rows.columns:
                title += f" · {int(rows.loc[name, 'value_x' if r == 0 else 'value_y'])}"
            ax.set_title(title, fontsize=7)
    for ax in np.asarray(axes).ravel():
        ax.axis("off")


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a matplotlib figure (the figure is closed)."""

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def plot_average_aams(average: torch.Tensor, names: Sequence[str], columns: int = 9) -> Figure:
    """(M, 2, h, w) average AAMs (supplementary Fig. 2): positive and negative per attribute."""
    m = average.shape[0]
    rows = (m + columns - 1) // columns
    fig, axes = plt.subplots(2 * rows, columns, figsize=(1.1 * columns, 2.4 * 2 * rows))
    for ax in np.asarray(axes).ravel():
        ax.axis("off")
    for i, name in enumerate(names):
        r, c = divmod(i, columns)
        for j, kind in enumerate(("+", "−")):
            ax = axes[2 * r + j, c]
            ax.imshow(average[i, j].numpy(), cmap="nipy_spectral", vmin=0, vmax=1)
            ax.set_title(f"{name} {kind}", fontsize=7)
    fig.tight_layout()
    return fig
