"""The shared look of every paper figure: fonts, tiles, one colour scale per panel group, saving.

Recipes draw on ``matplotlib.figure.Figure`` objects (never pyplot's global state), so they run in
scripts, notebooks and tests alike. Heat maps go through :mod:`workbench.viz.heatmap`: one
:class:`~workbench.viz.heatmap.Scale` per panel group (``shared_scale``), a colour bar wherever
values are compared.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from workbench.viz.heatmap import MapLike, Scale, overlay

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Colour = tuple[int, int, int] | str  # RGB 0..255 or a matplotlib colour name

__all__ = [
    "FORMATS",
    "STYLE",
    "check_formats",
    "colour_bar",
    "figure_style",
    "grid",
    "heat_tile",
    "image_tile",
    "save_figure",
]

STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.titlepad": 2.5,
    "figure.titlesize": 9,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
    "pdf.fonttype": 42,  # editable text in the PDF
    "svg.hashsalt": "workbench",  # the SVG's element ids: the same on every run
}
FORMATS = ("pdf", "png", "svg")
# no creation date in the files: a figure redrawn from its sidecar is the same bytes
_METADATA = {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": {}}


@contextmanager
def figure_style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def grid(
    rows: int, cols: int, tile: tuple[float, float] = (0.9, 1.8), title: str | None = None
) -> tuple[Figure, np.ndarray]:
    """A Figure with a rows × cols grid of image axes (ticks off); returns ``(fig, axes[r][c])``."""
    with figure_style():
        fig = Figure(figsize=(cols * tile[0] + 0.6, rows * tile[1] + (0.7 if title else 0.3)))
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        height = fig.get_figheight()
        if title:  # the title sits above the first row's (up to two-line) tile titles
            fig.suptitle(title, fontsize=STYLE["figure.titlesize"], y=1 - 0.06 / height)
        fig.subplots_adjust(wspace=0.06, hspace=0.3, top=1 - (0.62 if title else 0.3) / height)
    return fig, axes


def image_tile(
    ax: Axes, image: np.ndarray, title: str | None = None, colour: Colour | None = None
) -> None:
    """An RGB tile, optionally framed in ``colour`` (green/red for right/wrong matches)."""
    ax.imshow(image, interpolation="bilinear")
    ax.set_axis_on()
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(colour is not None)
        if colour is not None:
            spine.set_edgecolor(np.asarray(colour) / 255.0)
            spine.set_linewidth(2.5)
    if title:
        ax.set_title(title, fontsize=STYLE["axes.titlesize"], pad=STYLE["axes.titlepad"])


def heat_tile(
    ax: Axes,
    image: np.ndarray,
    heat: MapLike,
    scale: Scale,
    title: str | None = None,
    colour: Colour | None = None,
) -> None:
    """``image`` with ``heat`` (any resolution) overlaid on ``scale``."""
    image_tile(ax, overlay(image, heat, scale), title, colour)


def colour_bar(
    fig: Figure, axes: Sequence, scale: Scale, label: str = "", location: str = "right"
) -> None:
    """A colour bar beside ``axes`` showing ``scale`` (values as computed, before ReLU).

    ``location="bottom"`` puts it under the axes: for a panel group of a few columns inside a
    wider grid, where a bar on the right would cover the next column.
    """
    import matplotlib as mpl

    norm = mpl.colors.Normalize(vmin=scale.vmin, vmax=scale.vmax)
    mappable = mpl.cm.ScalarMappable(norm=norm, cmap=scale.cmap)
    size = (
        {"fraction": 0.025, "pad": 0.01}
        if location == "right"
        else {"fraction": 0.02, "pad": 0.02, "aspect": 12}
    )
    bar = fig.colorbar(mappable, ax=list(np.ravel(axes)), location=location, **size)
    bar.ax.tick_params(labelsize=6)
    bar.outline.set_linewidth(0.5)
    if label:
        bar.set_label(label, fontsize=6)


def check_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """``"pdf,png"`` or ``["pdf", "png"]`` as a tuple of known formats (:data:`FORMATS`)."""
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    out = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in items if f.strip()))
    unknown = [f for f in out if f not in FORMATS]
    if unknown or not out:
        raise ValueError(
            f"figure formats {list(items)}: need one or more of {', '.join(FORMATS)}, "
            f"comma-separated (e.g. --format pdf,png)"
        )
    return out


def save_figure(
    fig: Figure,
    out: str | Path,
    name: str,
    formats: str | Sequence[str] = ("pdf", "png"),
    dpi: float | None = None,
) -> list[Path]:
    """Write ``out/name.<format>`` for each of ``formats`` at ``dpi`` (default
    ``STYLE["savefig.dpi"]``); returns the paths. No dates are written into the files, so the
    same figure drawn twice is the same bytes."""
    if dpi is not None and not dpi > 0:
        raise ValueError(f"dpi={dpi}: need a positive number of dots per inch (e.g. 300)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.{f}" for f in check_formats(formats)]
    with figure_style():
        for path in paths:
            fig.savefig(path, dpi=dpi or STYLE["savefig.dpi"], metadata=_METADATA[path.suffix[1:]])
    return paths
