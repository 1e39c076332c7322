"""Figures of the AAM interpreter (Chen et al., ICCV 2021): pair explanations, average AAMs.

Drawing only; the numbers come from :mod:`workbench.explain.attributes`. AAMs are shown as in
the official code: bilinearly upsampled, min-max normalised per map, squared, overlaid with
alpha 0.4 (cmap ``nipy_spectral``).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from workbench.data.transforms import denormalize
from workbench.explain.attributes import AttributeExplanation, upsample_aams

__all__ = ["plot_average_aams", "plot_pair_explanation"]


def _display(aam: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    up = upsample_aams(aam[None], size)[0]
    lo, hi = up.min(), up.max()
    up = (up - lo) / (hi - lo) if hi > lo else torch.zeros_like(up)
    return (up**2).numpy()


def _rgb(image: torch.Tensor) -> np.ndarray:
    return denormalize(image)  # H×W×3 uint8


def plot_pair_explanation(ex: AttributeExplanation) -> Figure:
    """Top-k AAMs on both images (upper part) and the contributions (lower part), Fig. 4."""
    k = len(ex.top)
    size = tuple(ex.images.shape[-2:])
    fig, axes = plt.subplots(2, k + 1, figsize=(1.6 * (k + 1), 6.2))
    rows = ex.table.set_index("attribute")
    for r, (image, aams) in enumerate(((ex.images[0], ex.aams_x), (ex.images[1], ex.aams_y))):
        axes[r, 0].imshow(_rgb(image))
        axes[r, 0].set_title("image x" if r == 0 else "image y", fontsize=8)
        for j, name in enumerate(ex.top):
            ax = axes[r, j + 1]
            ax.imshow(_rgb(image))
            ax.imshow(_display(aams[j], size), cmap="nipy_spectral", alpha=0.4)
            title = f"{name} {100 * rows.loc[name, 'contribution']:.2f} %"
            if "value_x" in rows.columns:
                title += f"\n{int(rows.loc[name, 'value_x' if r == 0 else 'value_y'])}"
            ax.set_title(title, fontsize=7)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(f"distance {ex.distance:.4f} (distilled {ex.distilled:.4f})", fontsize=9)
    fig.tight_layout()
    return fig


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
