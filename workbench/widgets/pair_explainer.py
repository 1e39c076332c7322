"""PairExplainer: why did the model put this query and this gallery image at this distance?

Query and gallery side by side, each with the chosen method's map, on **one** colour scale with
its colour bar (so the brighter side really carries more of the similarity). The method
dropdown lists :func:`~workbench.explain.list_explainers` for the model, the layer dropdown its
``layer_info`` rows (a layer the method cannot use gives a message naming the ones it can), and
the method's parameters are controls built from its ``config_class``.

Explanations (maps on the CPU at the layer's resolution) and rendered images are kept in a
byte-bounded LRU cache (:class:`~workbench.widgets._cache.LRUCache`), so going back to a pair
costs a dictionary lookup. Extra views of a pair (the interpreter's attribute bars,
:mod:`workbench.widgets.attribute_views`) plug in through :class:`PairView`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np
from torch import nn

from workbench.explain import ExplainError, explain_pair, get_explainer, list_explainers
from workbench.viz.heatmap import Scale, colour_bar, encode, hstack, overlay, shared_scale
from workbench.viz.images import add_border
from workbench.viz.ranklist import GREEN, GREY, RED
from workbench.widgets._cache import LRUCache
from workbench.widgets._controls import (
    ConfigControls,
    DeviceControl,
    guarded,
    interactive,
    message_html,
)
from workbench.widgets._data import ImageStore, model_input_size

__all__ = ["PairExplainer", "PairView", "Row"]

PIXELS = "(input pixels)"  # the layer dropdown's entry for methods that take no layer


@dataclasses.dataclass(frozen=True)
class Row:
    """One image of a pair: its file and labels (a row of a split table)."""

    path: str
    pid: int = -1
    camid: int = -1

    @classmethod
    def of(cls, row: Any) -> Row:
        if isinstance(row, Row):
            return row
        if isinstance(row, str):
            return cls(row)
        get = row.get if hasattr(row, "get") else lambda k, d=None: getattr(row, k, d)
        return cls(str(get("path")), int(get("pid", -1)), int(get("camid", -1)))

    def caption(self) -> str:
        from pathlib import Path

        return f"{Path(self.path).name} · id {self.pid} · cam {self.camid + 1}"


class PairView(Protocol):
    """An extra view of the current pair, shown under the maps (e.g. attribute contributions).

    ``widget`` is displayed; ``update`` is called with the pair and the app's image store
    whenever the pair or the device changes. Raise to show a message instead.
    """

    widget: Any

    def update(self, query: Row, gallery: Row, images: ImageStore) -> None: ...


class PairExplainer:
    """The pair app. Drive it from Python as from the browser: ``set_pair``, ``.value``, ``.click()``.

    Args:
        model: a workbench model (``layer_info``, eval embedding).
        images: the pixel store to share with a :class:`RankingBrowser` (default: a new one).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` — or pass ``device_control`` to share one.
        cache_bytes: bound of the explanation + image cache.
        views: extra :class:`PairView` s; an AAM interpreter gets its attribute bars by default.
        display_height: pixels of the tallest image on screen (maps are drawn at that size).

    Attributes: ``explanation`` (the last :class:`~workbench.explain.PairExplanation`, on the
    CPU), ``png`` (the image shown), ``error`` (the last exception shown as a message).
    """

    def __init__(
        self,
        model: nn.Module,
        images: ImageStore | None = None,
        device: str = "auto",
        device_control: DeviceControl | None = None,
        cache_bytes: int = 64 << 20,
        views: list[PairView] | None = None,
        display_height: int = 256,
    ) -> None:
        import ipywidgets as W

        self.model = model.eval()
        self.size = model_input_size(model)
        self.images = images or ImageStore(self.size)
        self.device_control = device_control or DeviceControl(model, device)
        self.device_control.on_change(lambda _d: self.refresh())
        self.cache = LRUCache(cache_bytes)
        self.display_scale = max(1, round(display_height / self.size[0]))
        self.query: Row | None = None
        self.gallery: Row | None = None
        self.explanation: Any = None
        self.png: bytes = b""
        self.error: Exception | None = None
        self.renders = 0  # images drawn (cache misses of the render step)
        self._scale: Scale = shared_scale(np.zeros(1))
        self._busy = False

        methods = list_explainers(model)
        if not methods:
            raise ExplainError(f"no explanation method applies to {type(model).__name__}")
        layer_rows = getattr(model, "layer_info", None) or []
        layer_options = [(PIXELS, PIXELS)] + [(f"{r.name} ({r.kind})", r.name) for r in layer_rows]
        self.method = W.Dropdown(
            options=methods,
            value="gradcam" if "gradcam" in methods else methods[0],
            description="method",
        )
        self.layer = W.Dropdown(options=layer_options, description="layer")
        self.scale_mode = W.ToggleButtons(
            options=[("ReLU", "positive"), ("signed", "signed")],
            value="positive",
            description="scale",
            style={"button_width": "110px"},
        )
        self.map_index = W.Dropdown(options=[("-", 0)], description="map")
        self.map_index.layout.display = "none"
        self.params_box = W.HBox()
        self.title = W.HTML()
        self.status = W.HTML()
        self.image = W.Image(format="png", layout=W.Layout(align_self="flex-start"))  # natural size
        self.image.add_class("wb-pair-image")
        self.views: list[PairView] = list(views) if views is not None else _default_views(model)
        self.controls: ConfigControls | None = None
        self._method_changed({"new": self.method.value})

        self.method.observe(self._method_changed, names="value")
        for w in (self.layer, self.scale_mode, self.map_index):
            w.observe(lambda _c: self.refresh(), names="value")
        controls = W.HBox([self.method, self.layer, self.device_control.widget])
        self.widget = W.VBox(
            [
                W.HTML("<b>Pair explanation</b>"),
                controls,
                W.HBox([self.scale_mode, self.map_index]),
                self.params_box,
                self.title,
                self.image,
                self.status,
                *[v.widget for v in self.views],
            ]
        )
        self.widget.add_class("wb-pair-explainer")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- controls ---------------------------------------------------------------------------
    @guarded
    def _method_changed(self, change: dict) -> None:
        cls = get_explainer(change["new"])
        self.controls = ConfigControls(cls.config_class)
        self.controls.observe(lambda _c: self.refresh())
        self.params_box.children = (self.controls.box,)
        layer = _default_layer(cls, self.model)
        self._busy = True  # one refresh for the method change, not one per control
        try:
            self.layer.value = PIXELS if layer is None else layer
        finally:
            self._busy = False
        self.refresh()

    # -- the pair ---------------------------------------------------------------------------
    def set_pair(self, query: Any, gallery: Any) -> None:
        """Explain ``query`` against ``gallery`` (split-table rows, :class:`Row` s or paths)."""
        self.query, self.gallery = Row.of(query), Row.of(gallery)
        self.refresh()
        for view in self.views:
            self._update_view(view)

    @guarded
    def _update_view(self, view: PairView) -> None:
        view.update(self.query, self.gallery, self.images)

    def params(self) -> dict[str, Any]:
        return self.controls.values() if self.controls is not None else {}

    def selected_layer(self) -> str | None:
        return None if self.layer.value == PIXELS else self.layer.value

    def key(self) -> tuple:
        """The cache key of the current explanation (pair, method, layer, parameters, device)."""
        return (
            self.query.path if self.query else None,
            self.gallery.path if self.gallery else None,
            self.method.value,
            self.layer.value,
            self.controls.key() if self.controls else "",
            str(self.device_control.device),
        )

    @guarded
    def refresh(self) -> None:
        """Compute (or fetch) the current explanation and draw it."""
        if self._busy or self.query is None or self.gallery is None:
            return
        self.error = None
        key = self.key()
        exp = self.cache.get(("exp", *key))
        if exp is None:
            exp = self._compute()
            self.cache.put(("exp", *key), exp)
        self.explanation = exp
        self._sync_map_names(exp)
        render_key = ("png", *key, self.scale_mode.value, self.map_index.value)
        drawn = self.cache.get(render_key)
        if drawn is None:
            drawn = self._render(exp)
            self.cache.put(render_key, drawn)
        png, self._scale = drawn
        self.png = png
        self.image.value = png
        d = float(exp.distance[0])
        same = self.query.pid == self.gallery.pid
        verdict = "same person" if same else "different people"
        layer = exp.query.layer or "input pixels"
        self.title.value = (
            f"<b>{self.method.value}</b> at <b>{layer}</b> · ‖e<sub>q</sub> − e<sub>g</sub>‖₂ = <b>{d:.3f}</b> · {verdict}"
            f"<br><small>query {self.query.caption()}<br>gallery {self.gallery.caption()}</small>"
        )
        self.status.value = message_html(
            f"scale {self._scale.vmin:.3g} … {self._scale.vmax:.3g} ({self._scale.mode}); "
            f"cache: {len(self.cache)} entries, {self.cache.bytes / 2**20:.1f} of "
            f"{self.cache.max_bytes / 2**20:.0f} MiB",
            "info",
        )

    def _compute(self) -> Any:
        batch = self.images.tensor([self.query.path, self.gallery.path])  # (2, 3, H, W)
        device = self.device_control.device
        params = self.params()
        with interactive(device):  # two images: one thread is faster on a busy CPU
            pair = explain_pair(
                self.method.value,
                self.model,
                batch[:1].to(device),
                batch[1:].to(device),
                layer=self.selected_layer(),
                **params,
            )
        pair.query, pair.gallery = pair.query.to("cpu"), pair.gallery.to("cpu")
        pair.distance = pair.distance.cpu()
        return pair

    def _sync_map_names(self, exp: Any) -> None:
        maps = exp.query.maps
        if maps.dim() == 4:  # (1, k, h, w): one of k maps at a time
            names = exp.query.names or tuple(f"map {i + 1}" for i in range(maps.shape[1]))
            options = [(n, i) for i, n in enumerate(names)]
            if list(self.map_index.options) != options:
                self._busy = True
                try:
                    self.map_index.options = options
                    self.map_index.value = 0
                finally:
                    self._busy = False
            self.map_index.layout.display = None
        else:
            self.map_index.layout.display = "none"

    def _maps(self, exp: Any) -> tuple[np.ndarray, np.ndarray]:
        q, g = exp.query.maps[0], exp.gallery.maps[0]
        if q.dim() == 3:
            i = min(int(self.map_index.value or 0), q.shape[0] - 1)
            q, g = q[i], g[i]
        return q.float().numpy(), g.float().numpy()

    def _render(self, exp: Any) -> tuple[bytes, Scale]:
        """The composite image (query, query + map, gallery, gallery + map, colour bar)."""
        self.renders += 1
        q_map, g_map = self._maps(exp)
        scale = shared_scale([q_map, g_map], self.scale_mode.value)
        s = self.display_scale
        h, w = self.size[0] * s, self.size[1] * s
        tiles = []
        for row, heat, colour in (
            (self.query, q_map, GREY),
            (self.gallery, g_map, GREEN if self.gallery.pid == self.query.pid else RED),
        ):
            rgb = self.images.rgb(row.path)
            if s > 1:
                rgb = np.repeat(np.repeat(rgb, s, 0), s, 1)
            tiles.append(add_border(rgb, colour, 3 * s))
            tiles.append(add_border(overlay(rgb, heat, scale), colour, 3 * s))
        tiles.append(colour_bar(scale, height=h, width=max(56, w // 2)))
        return encode(hstack(tiles)), scale


def _default_layer(cls: type, model: nn.Module) -> str | None:
    """The method's default layer, or None when its default configuration takes no layer."""
    layer = cls.default_layer(model)
    try:
        cls(model, layer)
    except ExplainError:
        return None
    return layer


def _default_views(model: nn.Module) -> list[PairView]:
    from workbench.widgets.attribute_views import AttributeBars

    return [AttributeBars(model)] if AttributeBars.supports(model) else []
