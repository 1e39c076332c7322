"""ReceptiveFieldExplorer: click a point of an image, see where IANet gathers its features from.

For IANet (Hou et al. CVPR 2019, Fig. 8) the map is the SIA relation-map row of the chosen
position (:mod:`workbench.explain.receptive_field`: rows of ``relation2`` / ``relation3``, each a
probability distribution over the stage's positions). For models with one-channel attention
maps (RGA-SC's ``attention1..4``, SA's ``sa1..4``) those maps are shown beside it — they do not
depend on the point. The point is chosen with the two sliders (fractions of the height and
width) or, where ``ipyevents`` is installed, by clicking the image.

The full relation map of an image (M × h × w, M = h·w) is computed once per image and layer and
kept in a byte-bounded cache; moving the point only indexes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from torch import nn

from workbench.explain import get_explainer, list_explainers
from workbench.explain.receptive_field import point_index
from workbench.viz.heatmap import colour_bar, encode, hstack, overlay, shared_scale
from workbench.widgets._cache import LRUCache
from workbench.widgets._controls import (
    DeviceControl,
    click_events,
    guarded,
    interactive,
    message_html,
)
from workbench.widgets._data import ImageStore, model_input_size

__all__ = ["ReceptiveFieldExplorer"]

GAP = 6  # pixels between the tiles of the picture


class ReceptiveFieldExplorer:
    """The receptive-field app.

    Args:
        model: IANet (relation maps) and/or a model with one-channel attention layers.
        images: image paths, or a split table (``path`` column) to pick from by index.
        device, cache_bytes: as in the other apps.

    State: ``relation`` ((h, w) row shown, or None), ``attention`` ({layer: (h, w)}), ``png``.
    """

    def __init__(
        self,
        model: nn.Module,
        images: Any,
        device: str = "auto",
        cache_bytes: int = 64 << 20,
        display_height: int = 256,
    ) -> None:
        import ipywidgets as W

        _Event = click_events()

        self.model = model  # not switched to eval: each computation restores its mode
        self.size = model_input_size(model)
        paths = images["path"] if isinstance(images, pd.DataFrame) else images
        self.paths = [str(p) for p in paths]
        self.store = ImageStore(self.size)
        self.cache = LRUCache(cache_bytes)
        self.device_control = DeviceControl(model, device)
        self.device_control.on_change(lambda _d: self.refresh())
        self.scale = max(1, round(display_height / self.size[0]))
        self.status = W.HTML()
        self.error: Exception | None = None
        self.relation: np.ndarray | None = None
        self.attention: dict[str, np.ndarray] = {}
        self.png = b""
        self._composite = (1, 1)  # (width, height) of the picture shown
        methods = list_explainers(model)
        self.relation_layers = (
            [r.name for r in get_explainer("receptive_field").candidate_layers(model)]
            if "receptive_field" in methods
            else []
        )
        self.attention_layers = (
            [r.name for r in get_explainer("attention").candidate_layers(model) if r.channels == 1]
            if "attention" in methods
            else []
        )
        self.index = W.BoundedIntText(
            value=0, min=0, max=max(0, len(self.paths) - 1), description="image #"
        )
        self.layer = W.Dropdown(options=self.relation_layers or ["-"], description="relation")
        self.y = W.FloatSlider(
            value=0.3, min=0, max=1, step=0.01, description="y", continuous_update=False
        )
        self.x = W.FloatSlider(
            value=0.5, min=0, max=1, step=0.01, description="x", continuous_update=False
        )
        self.image = W.Image(format="png", layout=W.Layout(align_self="flex-start"))  # natural size
        self.image.add_class("wb-receptive-image")
        if _Event is not None:
            self._event = _Event(source=self.image, watched_events=["click"])
            self._event.on_dom_event(self._clicked)
        for w in (self.index, self.layer, self.y, self.x):
            w.observe(lambda _c: self.refresh(), names="value")
        self.widget = W.VBox(
            [
                W.HTML("<b>Receptive fields</b> · SIA relation row of a point, attention maps"),
                W.HBox([self.index, self.layer, self.device_control.widget]),
                W.HBox([self.y, self.x]),
                self.image,
                self.status,
            ]
        )
        self.widget.add_class("wb-receptive-field")
        self.refresh()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _clicked(self, event: dict) -> None:
        """ipyevents click → the point: pixel on screen → pixel of the composite → its tile."""
        width, height = self._composite
        sx = width / max(1.0, float(event.get("boundingRectWidth", width)))
        sy = height / max(1.0, float(event.get("boundingRectHeight", height)))
        x, y = float(event["relativeX"]) * sx, float(event["relativeY"]) * sy
        tile_w = self.size[1] * self.scale  # every image tile has the input's width (scaled)
        column = x % (tile_w + GAP)  # the same point on whichever image tile was clicked
        if column < tile_w:
            self.set_point(y / (self.size[0] * self.scale), column / tile_w)

    def set_point(self, y: float, x: float) -> None:
        """Choose the point as fractions ``(y, x)`` of the image height and width."""
        self.y.value, self.x.value = float(np.clip(y, 0, 1)), float(np.clip(x, 0, 1))

    def _maps(self, path: str, layer: str, method: str):
        key = (path, layer, str(self.device_control.device))
        maps = self.cache.get(key)
        if maps is None:
            batch = self.store.tensor([path]).to(self.device_control.device)
            explainer = get_explainer(method)(self.model, layer)
            with interactive(self.device_control.device):
                maps = explainer.activations(batch)[0].float().cpu()  # (M, h, w) or (1, h, w)
            self.cache.put(key, maps)
        return maps

    @guarded
    def refresh(self) -> None:
        """Recompute and redraw the maps of the current image, layer and point."""
        if not self.paths:
            raise ValueError("no images to explore: pass a list of paths or a split table")
        if not self.relation_layers and not self.attention_layers:
            raise ValueError(
                f"{type(self.model).__name__} has no SIA relation maps (IANet) and no "
                f"one-channel attention maps (RGA-SC, SA): nothing to show here"
            )
        self.error = None
        path = self.paths[self.index.value]
        rgb = self.store.rgb(path)
        tiles = []
        self.relation = None
        if self.relation_layers:
            rows = self._maps(path, self.layer.value, "receptive_field")  # (M, h, w)
            h, w = rows.shape[1:]
            p = point_index((self.y.value, self.x.value), h, w)
            self.relation = rows[p].numpy()
            scale = shared_scale(self.relation, percentile=100)  # a row peaks: keep its top
            tiles += [_mark(self._big(rgb), self.y.value, self.x.value)]
            tiles += [
                _mark(self._big(overlay(rgb, self.relation, scale)), self.y.value, self.x.value)
            ]
            tiles.append(colour_bar(scale, height=tiles[0].shape[0], width=56, label="S[p,:]"))
        self.attention = {
            layer: self._maps(path, layer, "attention")[0].numpy()
            for layer in self.attention_layers
        }
        if self.attention:
            scale = shared_scale(list(self.attention.values()))
            if not tiles:
                tiles.append(self._big(rgb))
            tiles += [self._big(overlay(rgb, m, scale)) for m in self.attention.values()]
            tiles.append(colour_bar(scale, height=tiles[0].shape[0], width=56))
        composite = hstack(tiles, gap=GAP)
        self._composite = (composite.shape[1], composite.shape[0])
        self.png = encode(composite)
        self.image.value = self.png
        parts = [Path(path).name]
        if self.relation is not None:
            parts.append(f"{self.layer.value} row of ({self.y.value:.2f}, {self.x.value:.2f})")
        if self.attention:
            parts.append("attention: " + ", ".join(self.attention))
        self.status.value = message_html(" · ".join(parts), "info")

    def _big(self, rgb: np.ndarray) -> np.ndarray:
        s = self.scale
        return np.repeat(np.repeat(rgb, s, 0), s, 1) if s > 1 else rgb


def _mark(image: np.ndarray, y: float, x: float) -> np.ndarray:
    """A white-and-black cross at the fractional point ``(y, x)``."""
    out = image.copy()
    h, w = out.shape[:2]
    cy, cx = int(y * (h - 1)), int(x * (w - 1))
    size = max(4, h // 40)
    cv2.drawMarker(out, (cx, cy), (0, 0, 0), cv2.MARKER_CROSS, size * 2 + 2, 3)
    cv2.drawMarker(out, (cx, cy), (255, 255, 255), cv2.MARKER_CROSS, size * 2, 1)
    return out
