"""Attribute figures of the AAM interpreter (Chen et al., ICCV 2021, Fig. 4): contribution bars.

:func:`contribution_bars` draws the top-k attribute contributions c^k of a pair (they sum to 1
over all attributes) with the ground-truth values of both images where known; :func:`figure_png`
turns any matplotlib figure into PNG bytes for an ``ipywidgets.Image``.
"""

from __future__ import annotations

import io

import pandas as pd

__all__ = ["contribution_bars", "figure_png"]


def contribution_bars(table: pd.DataFrame, k: int = 5, title: str = ""):
    """Horizontal bars of the ``k`` largest contributions (``table`` sorted, largest first).

    ``table`` has ``attribute`` and ``contribution`` columns and optionally ``value_x`` /
    ``value_y`` (ground truth of query and gallery), shown as ``q=1 g=0`` beside each bar;
    attributes whose values differ (``exclusive``) are drawn in a stronger colour.
    """
    import matplotlib.pyplot as plt

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


def figure_png(fig, dpi: int = 100) -> bytes:
    """PNG bytes of a matplotlib figure (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
