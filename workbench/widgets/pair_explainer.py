"""PairExplainer: why did the model put this query and this gallery image at this distance?

Query and gallery side by side, each with the chosen method's map, on **one** colour scale with
its colour bar (so the brighter side really carries more of the similarity). The method
dropdown lists :func:`~workbench.explain.list_explainers` for the model, the layer dropdown its
``layer_info`` rows (a layer the method cannot use gives a message naming the ones it can), and
the method's parameters are controls built from its ``config_class``.

Every distance shown is the model's ranking distance, named (``1 − cos`` for cosine models).
For a model that declares its pooling, the pair also decomposes exactly into position pairs
(:mod:`workbench.explain.decomposition`): clicking a point on either image
(:meth:`PairExplainer.click_point`, or the image itself with ``ipyevents``) shows where it
matches on the other, the **matches** toggle draws the k strongest position pairs as lines, and
:meth:`PairExplainer.set_contrast` answers "why is this one ranked above that one?".

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

from workbench.evaluate.distance import distance_label
from workbench.explain import ExplainError, explain_pair, get_explainer, list_explainers
from workbench.explain.decomposition import contrast, decompose_pair
from workbench.models.base import pooling_of
from workbench.viz.heatmap import Scale, colour_bar, encode, hstack, overlay, shared_scale
from workbench.viz.images import add_border
from workbench.viz.pairs import draw_matches, mark_point
from workbench.viz.ranklist import GREEN, GREY, RED
from workbench.widgets._cache import LRUCache
from workbench.widgets._controls import (
    ConfigControls,
    DeviceControl,
    click_events,
    guarded,
    interactive,
    message_html,
)
from workbench.widgets._data import ImageStore, model_input_size

__all__ = ["PairExplainer", "PairView", "Row"]

PIXELS = "(input pixels)"  # the layer dropdown's entry for methods that take no layer
GAP = 6  # pixels between the tiles of the pair image (clicks are mapped back through it)
MATCHES = 12  # position pairs drawn by the "matches" toggle


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

        self.model = model  # not switched to eval: each computation restores its mode
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
        #: the ranking's distance of the current pair when a ranking set it (shown as is)
        self.ranked_distance: float | None = None
        #: a clicked point ``(side, y, x)`` (fractions) and its correspondence map (h, w)
        self.point: tuple[str, float, float] | None = None
        self.correspondence: np.ndarray | None = None
        #: the lower-ranked image of a contrast ("why is the pair's gallery above this one?")
        self.lower: Row | None = None
        self.contrast: Any = None
        self.decomposable = pooling_of(model) is not None
        self._listeners: list[Any] = []

        methods = list_explainers(model)
        if not methods:
            raise ExplainError(f"no explanation method applies to {type(model).__name__}")
        self.method = W.Dropdown(
            options=methods,
            value="gradcam" if "gradcam" in methods else methods[0],
            description="method",
        )
        self.layer = W.Dropdown(options=[(PIXELS, PIXELS)], description="layer")
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
        self.matches = W.ToggleButton(
            value=False,
            description="matches",
            icon="link",
            tooltip="lines between the strongest position pairs (exact decomposition)",
        )
        self.matches.layout.display = None if self.decomposable else "none"
        self.clear_point = W.Button(description="clear point", layout=W.Layout(width="auto"))
        self.clear_point.on_click(lambda _b: self.click_point(None))
        self.clear_point.layout.display = "none"
        self.matches_image = W.Image(format="png", layout=W.Layout(display="none"))
        self.matches_image.add_class("wb-pair-matches")
        self._events = []
        event_class = click_events()
        if event_class is not None:  # a click on the image picks a point to match
            event = event_class(source=self.image, watched_events=["click"])
            event.on_dom_event(self._image_clicked)
            self._events.append(event)
        self.views: list[PairView] = list(views) if views is not None else _default_views(model)
        self.controls: ConfigControls | None = None
        self._method_changed({"new": self.method.value})

        self.method.observe(self._method_changed, names="value")
        for w in (self.layer, self.scale_mode, self.map_index):
            w.observe(lambda _c: self._changed(), names="value")
        self.matches.observe(lambda _c: self.refresh(), names="value")
        controls = W.HBox([self.method, self.layer, self.device_control.widget])
        self.widget = W.VBox(
            [
                W.HTML("<b>Pair explanation</b>"),
                controls,
                W.HBox([self.scale_mode, self.map_index, self.matches, self.clear_point]),
                self.params_box,
                self.title,
                self.image,
                self.matches_image,
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
        self.controls.observe(lambda _c: self._changed())
        self.params_box.children = (self.controls.box,)
        layer = _default_layer(cls, self.model)
        self._busy = True  # one refresh for the method change, not one per control
        try:  # only what the method can use: "(input pixels)" never stands for a layer
            self.layer.options = _layer_options(cls, self.model, layer)
            self.layer.value = PIXELS if layer is None else layer
        finally:
            self._busy = False
        self._changed()

    def on_change(self, callback: Any) -> None:
        """Call ``callback()`` whenever the method, layer, parameters or scale change."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        if self._busy:
            return
        self.refresh()
        for callback in self._listeners:
            callback()

    # -- the pair ---------------------------------------------------------------------------
    def set_pair(self, query: Any, gallery: Any, ranked_distance: float | None = None) -> None:
        """Explain ``query`` against ``gallery`` (split-table rows, :class:`Row` s or paths).

        ``ranked_distance``: the ranking's distance of the pair, shown as the pair's distance
        (the explanation's own equals it up to float rounding; tests check both).
        """
        self.query, self.gallery = Row.of(query), Row.of(gallery)
        self.ranked_distance = None if ranked_distance is None else float(ranked_distance)
        self.point, self.correspondence = None, None
        self.lower, self.contrast = None, None
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
        if self.lower is not None:
            return self._show_contrast()
        key = self.key()
        exp = self.cache.get(("exp", *key))
        if exp is None:
            self._working(f"computing {self.method.value} …")
            exp = self._compute()
            self.cache.put(("exp", *key), exp)
        self.explanation = exp
        self._sync_map_names(exp)
        render_key = ("png", *key, self.scale_mode.value, self.map_index.value, self.point)
        drawn = self.cache.get(render_key)
        if drawn is None:
            drawn = self._render(exp)
            self.cache.put(render_key, drawn)
        png, self._scale = drawn
        self.png = png
        self.image.value = png
        self._draw_matches()
        d = self.ranked_distance if self.ranked_distance is not None else float(exp.distance[0])
        same = self.query.pid == self.gallery.pid
        verdict = "same person" if same else "different people"
        layer = exp.query.layer or "input pixels"
        point = ""
        if self.point is not None:
            side, y, x = self.point
            other = "gallery" if side == "query" else "query"
            point = (
                f"<br>correspondence of the {side} point (y {y:.2f}, x {x:.2f}) on the {other}: "
                f"Σ = {float(self.correspondence.sum()):.4f} of the similarity"
            )
        self.title.value = (
            f"<b>{self.method.value}</b> at <b>{layer}</b> · {distance_label(exp.metric)} = "
            f"<b>{d:.3f}</b> · {verdict}{point}"
            f"<br><small>query {self.query.caption()}<br>gallery {self.gallery.caption()}</small>"
        )
        self.status.value = message_html(
            f"scale {self._scale.vmin:.3g} … {self._scale.vmax:.3g} ({self._scale.mode}); "
            f"cache: {len(self.cache)} entries, {self.cache.bytes / 2**20:.1f} of "
            f"{self.cache.max_bytes / 2**20:.0f} MiB",
            "info",
        )

    def _working(self, text: str) -> None:
        """Say that a computation runs (sent to the browser before it starts)."""
        self.status.value = message_html(text, "info")

    # -- what matched what ----------------------------------------------------------------------
    def decomposition(self) -> Any:
        """The exact decomposition of the current pair (cached), on the CPU."""
        if not self.decomposable:
            raise ExplainError(
                f"{type(self.model).__name__} declares no affine pooling: its pairs do not "
                f"decompose into position pairs (use a gradient method's maps)"
            )
        key = ("dec", self.query.path, self.gallery.path, str(self.device_control.device))
        dec = self.cache.get(key)
        if dec is None:
            self._working("decomposing the pair …")
            batch = self.images.tensor([self.query.path, self.gallery.path])
            device = self.device_control.device
            with interactive(device):
                dec = decompose_pair(self.model, batch[:1].to(device), batch[1:].to(device))
            dec = dec.to("cpu")
            self.cache.put(key, dec)
        return dec

    @guarded
    def click_point(self, side: str | None, y: float = 0.5, x: float = 0.5) -> None:
        """Show where the point (y, x) (fractions) of ``side`` matches on the other image;
        ``None`` clears it. The other image's map becomes that point's row of D."""
        if side is None:
            self.point, self.correspondence = None, None
        else:
            dec = self.decomposition()
            self.correspondence = dec.correspondence([(y, x)], side)[0, 0].numpy()
            self.point = (side, float(y), float(x))
        self.clear_point.layout.display = None if self.point is not None else "none"
        self.refresh()

    def _image_clicked(self, event: dict) -> None:
        """ipyevents click on the composite: which tile, and where in it."""
        s = self.display_scale
        h, w = self.size[0] * s, self.size[1] * s
        # ipyevents gives image-array coordinates for Image widgets (robust to CSS scaling)
        px = float(event.get("arrayX", event.get("relativeX", 0)))
        py = float(event.get("arrayY", event.get("relativeY", 0)))
        tile = int(px // (w + GAP))
        if tile > 3 or py >= h:
            return  # the colour bar or below
        fx = (px - tile * (w + GAP)) / w
        if not 0 <= fx <= 1:
            return  # the gap between tiles
        self.click_point("query" if tile < 2 else "gallery", py / h, fx)

    def _draw_matches(self) -> None:
        if not (self.matches.value and self.decomposable):
            self.matches_image.layout.display = "none"
            return
        dec = self.decomposition()
        q_yx, g_yx, value = dec.top_matches(MATCHES)
        s = self.display_scale
        q, g = (self.images.rgb(r.path) for r in (self.query, self.gallery))
        if s > 1:
            q, g = (np.repeat(np.repeat(im, s, 0), s, 1) for im in (q, g))
        lines = draw_matches(q, g, q_yx[0].numpy(), g_yx[0].numpy(), value[0].numpy())
        self.matches_image.value = encode(lines)
        self.matches_image.layout.display = None

    # -- why this one above that one ---------------------------------------------------------
    def set_contrast(
        self, query: Any, higher: Any, lower: Any, distances: tuple[float, float] | None = None
    ) -> None:
        """Explain why ``higher`` is ranked above ``lower`` for ``query``: the query's map of
        s(q, higher) − s(q, lower) (exact where the model decomposes) and each image's own map.

        ``distances``: the ranking's distances of the two pairs, shown as they are.
        """
        self.query, self.gallery, self.lower = Row.of(query), Row.of(higher), Row.of(lower)
        self.ranked_distance = None if distances is None else float(distances[0])
        self._lower_distance = None if distances is None else float(distances[1])
        self.point, self.correspondence = None, None
        self.refresh()

    def _show_contrast(self) -> None:
        key = ("contrast", self.query.path, self.gallery.path, self.lower.path,
               self.method.value, self.layer.value, str(self.device_control.device))  # fmt: skip
        result = self.cache.get(key)
        if result is None:
            self._working("computing the contrast …")
            batch = self.images.tensor([self.query.path, self.gallery.path, self.lower.path])
            device = self.device_control.device
            method = None if self.decomposable else self.method.value
            with interactive(device):
                result = contrast(
                    self.model, *(batch[i : i + 1].to(device) for i in range(3)), method=method,
                    layer=None if self.decomposable else self.selected_layer(),
                )  # fmt: skip
            self.cache.put(key, result)
        self.contrast = result
        maps = [result.query_map, result.higher_map, result.lower_map]
        maps = [m.float().cpu().numpy() for m in maps]
        signed = shared_scale(maps[:1], "signed")
        scale = shared_scale(maps[1:], self.scale_mode.value)
        s = self.display_scale
        tiles = []
        for row, heat, sc, colour in (
            (self.query, maps[0], signed, GREY),
            (self.gallery, maps[1], scale, GREEN if self.gallery.pid == self.query.pid else RED),
            (self.lower, maps[2], scale, GREEN if self.lower.pid == self.query.pid else RED),
        ):
            rgb = self.images.rgb(row.path)
            if s > 1:
                rgb = np.repeat(np.repeat(rgb, s, 0), s, 1)
            tiles.append(add_border(overlay(rgb, heat, sc), colour, 3 * s))
        h = self.size[0] * s
        tiles.insert(1, colour_bar(signed, height=h, width=max(56, self.size[1] * s // 2)))
        tiles.append(colour_bar(scale, height=h, width=max(56, self.size[1] * s // 2)))
        self.png = encode(hstack(tiles))
        self.image.value = self.png
        self.matches_image.layout.display = "none"
        metric = result.metric
        sims = [float(v) for v in result.similarity]
        ranked = ""
        if self.ranked_distance is not None:
            ranked = (
                f" · ranking: {distance_label(metric)} {self.ranked_distance:.3f} vs "
                f"{self._lower_distance:.3f}"
            )
        how = "exact decomposition" if result.exact else f"{result.method} of the difference"
        self.title.value = (
            f"<b>why is the gallery image above the other?</b> ({how}, {result.layer})<br>"
            f"margin s(q, g₁) − s(q, g₂) = <b>{float(result.margin):.4f}</b> "
            f"({sims[0]:.4f} − {sims[1]:.4f}){ranked}"
            f"<br><small>query {self.query.caption()}<br>above: {self.gallery.caption()}"
            f"<br>below: {self.lower.caption()}</small>"
        )
        total = float(np.sum(maps[0]))
        self.status.value = message_html(
            f"query map (signed): red pulls towards the upper image, blue towards the lower; "
            f"it sums to {total:.4f}" + (" = the margin" if result.exact else ""),
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
        if self.point is not None:  # the other side shows where the point matches
            if self.point[0] == "query":
                g_map = self.correspondence
            else:
                q_map = self.correspondence
            scale = shared_scale([self.correspondence], self.scale_mode.value)
        else:
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
            side = "query" if row is self.query else "gallery"
            if self.point is not None and self.point[0] == side:
                # the clicked image: the point, no map (its side's map is on another scale)
                marked = mark_point(rgb, self.point[1], self.point[2])
                tiles += [add_border(marked, colour, 3 * s)] * 2
                continue
            tiles.append(add_border(rgb, colour, 3 * s))
            tiles.append(add_border(overlay(rgb, heat, scale), colour, 3 * s))
        tiles.append(colour_bar(scale, height=h, width=max(56, w // 2)))
        return encode(hstack(tiles, gap=GAP)), scale


def _default_layer(cls: type, model: nn.Module) -> str | None:
    """The method's default layer, or None when its default configuration takes no layer."""
    layer = cls.default_layer(model)
    try:
        cls(model, layer)
    except ExplainError:
        return None
    return layer


def _layer_options(cls: type, model: nn.Module, default: str | None) -> list[tuple[str, str]]:
    """The layer dropdown for a method: its candidate layers, or only "(input pixels)" when
    its default configuration takes no layer."""
    if default is None:
        return [(PIXELS, PIXELS)]
    return [(f"{r.name} ({r.kind})", r.name) for r in cls.candidate_layers(model)]


def _default_views(model: nn.Module) -> list[PairView]:
    from workbench.widgets.attribute_views import AttributeBars

    return [AttributeBars(model)] if AttributeBars.supports(model) else []
