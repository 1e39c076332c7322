"""Heat maps on images: one colour scale for many maps, overlays, a colour bar, PNG/JPEG bytes.

The explainers return raw signed maps at the layer's resolution (``Explanation.maps``); this
module makes the rendering choices, once, for the figures and the widgets:

* **scale** — :func:`shared_scale` gives one ``(vmin, vmax)`` for a whole set of maps (a query and
  its top-k, both sides of a pair), so a brighter tile really has a larger value. ``"positive"``
  is Grad-CAM's ReLU (Selvaraju et al. eq. 2) with the scale ``[0, max]``; ``"signed"`` keeps the
  sign on a symmetric scale ``[-m, m]`` with a diverging colour map (why similar *and* why not).
  ``max`` is a high percentile (default 99.5) rather than the maximum, so one hot pixel does not
  wash out the rest; values above it saturate.
* **overlay** — :func:`overlay` upsamples a map bilinearly to the image and alpha-blends the
  colour-mapped value; :func:`colour_bar` draws the matching bar with its numbers.

Everything works on numpy arrays (H×W×3 uint8 RGB images, h×w float maps) and returns arrays;
:func:`encode` turns one into PNG/JPEG bytes for an ``ipywidgets.Image``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, Union

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

#: a map as the renderers take it: an array or a torch tensor (any device; not imported here)
MapLike = Union[np.ndarray, "torch.Tensor"]

__all__ = [
    "Scale",
    "colour_bar",
    "colourise",
    "encode",
    "hstack",
    "overlay",
    "shared_scale",
]

Mode = Literal["positive", "signed"]


@dataclass(frozen=True)
class Scale:
    """A colour scale: values ``vmin..vmax`` map to the colour map ``cmap`` (clipped outside)."""

    vmin: float
    vmax: float
    cmap: str = "jet"
    mode: Mode = "positive"

    def normalise(self, values: np.ndarray) -> np.ndarray:
        """Values → [0, 1] on this scale (ReLU first in ``"positive"`` mode)."""
        v = np.asarray(values, np.float32)
        if self.mode == "positive":
            v = np.maximum(v, 0.0)
        span = self.vmax - self.vmin
        return np.clip((v - self.vmin) / (span if span > 0 else 1.0), 0.0, 1.0)


def _as_numpy(maps: MapLike | Sequence[MapLike]) -> np.ndarray:
    if hasattr(maps, "detach"):  # a torch tensor, on any device
        maps = maps.detach().float().cpu().numpy()
    return np.asarray(maps, np.float32)


def shared_scale(
    maps: MapLike | Sequence[MapLike],
    mode: Mode = "positive",
    percentile: float = 99.5,
    cmap: str | None = None,
) -> Scale:
    """One colour scale for every map in ``maps`` (an array, a tensor or a list of them).

    ``"positive"``: ``[0, p]`` with ``p`` the ``percentile`` of the positive values (ReLU).
    ``"signed"``: ``[-p, p]`` with ``p`` the ``percentile`` of ``|values|``.
    All-zero (or all-negative in positive mode) maps get the unit scale.
    """
    if mode not in ("positive", "signed"):
        raise ValueError(f"colour scale mode must be 'positive' or 'signed', got {mode!r}")
    parts = maps if isinstance(maps, list | tuple) else [maps]
    values = np.concatenate([_as_numpy(m).ravel() for m in parts]) if parts else np.zeros(1)
    values = values[np.isfinite(values)]
    if mode == "positive":
        values = values[values > 0]
    else:
        values = np.abs(values)
    top = float(np.percentile(values, percentile)) if values.size else 0.0
    top = top if top > 0 else 1.0
    if mode == "positive":
        return Scale(0.0, top, cmap or "jet", mode)
    return Scale(-top, top, cmap or "RdBu_r", mode)


@lru_cache(maxsize=16)
def _lut(cmap: str) -> np.ndarray:
    """(256, 3) uint8 RGB lookup table of a matplotlib colour map."""
    import matplotlib

    table = matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 256))[:, :3]
    return (table * 255.0 + 0.5).astype(np.uint8)


def colourise(values: np.ndarray, scale: Scale) -> np.ndarray:
    """(h, w) values → (h, w, 3) uint8 RGB on ``scale``."""
    idx = (scale.normalise(values) * 255.0 + 0.5).astype(np.uint8)
    return _lut(scale.cmap)[idx]


def overlay(image: np.ndarray, heat: MapLike, scale: Scale, alpha: float = 0.5) -> np.ndarray:
    """Blend a map onto an RGB image: the map is upsampled bilinearly to the image size.

    Args:
        image: (H, W, 3) uint8 RGB.
        heat: (h, w) map (array or tensor) at any resolution.
        scale: from :func:`shared_scale` (one for every image shown together).
        alpha: weight of the colour (0 = the image alone).

    The blend weight follows the value's strength (its size in ``"positive"`` mode, its
    distance from zero in ``"signed"`` mode), so neutral regions keep the image visible instead
    of being painted over.
    """
    h, w = image.shape[:2]
    values = _as_numpy(heat)
    if values.shape != (h, w):
        values = cv2.resize(values, (w, h), interpolation=cv2.INTER_LINEAR)
    colour = colourise(values, scale).astype(np.float32)
    if scale.mode == "positive":
        strength = scale.normalise(values)
    else:  # distance from the neutral middle of the diverging scale
        strength = np.abs(2.0 * scale.normalise(values) - 1.0)
    weight = alpha * (0.15 + 0.85 * strength)[..., None]
    out = (1.0 - weight) * image.astype(np.float32) + weight * colour
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def colour_bar(scale: Scale, height: int = 128, width: int = 56, label: str = "") -> np.ndarray:
    """A vertical colour bar (height × width × 3 uint8) with its top, middle and bottom values."""
    bar_w = max(8, width // 4)
    grad = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None].repeat(bar_w, 1)
    values = scale.vmin + grad * (scale.vmax - scale.vmin)
    out = np.full((height, width, 3), 255, np.uint8)
    out[:, :bar_w] = colourise(values, Scale(scale.vmin, scale.vmax, scale.cmap, "signed"))
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.3
    mid = (scale.vmin + scale.vmax) / 2
    for y, v in ((9, scale.vmax), (height // 2 + 3, mid), (height - 3, scale.vmin)):
        cv2.putText(out, f"{v:.3g}", (bar_w + 2, y), font, size, (0, 0, 0), 1, cv2.LINE_AA)
    if label:
        cv2.putText(out, label[:8], (bar_w + 2, height // 4), font, size, (90, 90, 90), 1)
    return out


def hstack(images: list[np.ndarray], gap: int = 6, height: int | None = None) -> np.ndarray:
    """RGB images side by side on white, top-aligned, ``gap`` pixels apart (for one PNG)."""
    height = height or max(im.shape[0] for im in images)
    width = sum(im.shape[1] for im in images) + gap * (len(images) - 1)
    out = np.full((height, width, 3), 255, np.uint8)
    x = 0
    for im in images:
        out[: im.shape[0], x : x + im.shape[1]] = im[:height]
        x += im.shape[1] + gap
    return out


def encode(image: np.ndarray, fmt: Literal["png", "jpeg"] = "png", quality: int = 90) -> bytes:
    """RGB uint8 array → PNG or JPEG bytes (``ipywidgets.Image(value=..., format=fmt)``)."""
    bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpeg" else []
    ok, buf = cv2.imencode(".png" if fmt == "png" else ".jpg", bgr, params)
    if not ok:  # pragma: no cover - cv2 encodes any uint8 RGB array
        raise ValueError(f"could not encode a {image.shape} image as {fmt}")
    return buf.tobytes()
