"""Drawing what matched what: correspondence markers and match lines between two images.

QAConv's figure style (Liao & Shao, ECCV 2020): the query and the gallery image side by side,
a line between each of the k strongest position pairs of the decomposition
(:meth:`~workbench.explain.decomposition.PairDecomposition.top_matches`), coloured by strength.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["draw_matches", "mark_point"]


def mark_point(
    image: np.ndarray,
    y: float,
    x: float,
    colour: tuple[int, int, int] = (0, 255, 255),
    size: int = 7,
) -> np.ndarray:
    """A copy of ``image`` with a cross at (y, x), fractions of its height and width."""
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    cy, cx = round(y * (h - 1)), round(x * (w - 1))
    for colour_, thick in (((0, 0, 0), 4), (colour, 2)):
        cv2.line(out, (cx - size, cy), (cx + size, cy), colour_, thick)
        cv2.line(out, (cx, cy - size), (cx, cy + size), colour_, thick)
    return out


def draw_matches(
    query: np.ndarray,
    gallery: np.ndarray,
    query_yx: np.ndarray,
    gallery_yx: np.ndarray,
    values: np.ndarray,
    gap: int = 24,
    cmap: str = "viridis",
) -> np.ndarray:
    """Query and gallery RGB images side by side with a line per matched position pair.

    Args:
        query, gallery: (H, W, 3) uint8 images of one height.
        query_yx, gallery_yx: (k, 2) cell centres as (y, x) fractions.
        values: (k,) each pair's entry of the decomposition; the strongest is drawn brightest
            and thickest, negative entries (pairs that push the two apart) in red.
    """
    import matplotlib

    h = max(query.shape[0], gallery.shape[0])
    wq, wg = query.shape[1], gallery.shape[1]
    out = np.full((h, wq + gap + wg, 3), 255, np.uint8)
    out[: query.shape[0], :wq] = query
    out[: gallery.shape[0], wq + gap :] = gallery
    values = np.asarray(values, np.float64)
    top = float(np.abs(values).max()) if values.size else 1.0
    colours = matplotlib.colormaps[cmap]
    for k in np.argsort(np.abs(values)):  # strongest drawn last, on top
        v = values[k] / (top or 1.0)
        rgb = (220, 40, 40) if v < 0 else tuple(int(255 * c) for c in colours(0.35 + 0.65 * v)[:3])
        p = (int(query_yx[k, 1] * wq), int(query_yx[k, 0] * query.shape[0]))
        q = (wq + gap + int(gallery_yx[k, 1] * wg), int(gallery_yx[k, 0] * gallery.shape[0]))
        thick = 1 + round(2 * abs(v))
        cv2.line(out, p, q, rgb, thick, cv2.LINE_AA)
        cv2.circle(out, p, 2 + thick, rgb, -1, cv2.LINE_AA)
        cv2.circle(out, q, 2 + thick, rgb, -1, cv2.LINE_AA)
    return out
