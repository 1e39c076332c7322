"""RankingBrowser: browse a model's rank lists, see every match's heat map, open a pair.

Pick a query by index, by person id, or worst-first by average precision; its top-k gallery
images follow with green (same person) / red (another) frames, the distance, camera and file
name — the protocol's exclusions (same person and camera, junk) are skipped exactly as in the
metrics. The heat-map toggle draws the chosen method's map on every image of the list on **one**
colour scale (one colour bar for the list). Clicking a gallery image (its button, or the image
itself where ``ipyevents`` is installed) opens the pair in the :class:`PairExplainer` below.

The ranking is :func:`~workbench.evaluate.protocol.evaluate_model`'s, with the model's ranking
metric, and every distance on screen is that distance, named (``1−cos 0.477``); the pair panel
shows the same number. Changing the query re-targets the pair panel to the same rank of the new
list, and the query #, person id and worst-AP # fields follow each other. A wrong match ranked
above the first right one has a **why above ✓?** button: the pair panel then shows the contrast
of the two (:meth:`PairExplainer.set_contrast`).

The heat maps of a list come from one call, :func:`~workbench.explain.ranklist.explain_ranklist`:
on the pooled layer (Grad-CAM's closed form, the decomposition) from feature maps kept from the
ranking's own extraction pass, with no network; for any other method or layer, the query
broadcast against the k gallery images. The app only caches and draws.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.evaluate.distance import distance_label
from workbench.explain import get_explainer
from workbench.explain.ranklist import closed_form_layer, explain_ranklist
from workbench.models.base import pooling_of
from workbench.viz.heatmap import colour_bar, encode, overlay, shared_scale
from workbench.viz.images import add_border
from workbench.viz.ranklist import GREEN, GREY, RED
from workbench.widgets._cache import LRUCache
from workbench.widgets._controls import (
    DeviceControl,
    click_events,
    guarded,
    interactive,
    message_html,
)
from workbench.widgets._data import ImageStore, RankingData, model_input_size
from workbench.widgets.pair_explainer import PairExplainer, Row

__all__ = ["RankingBrowser"]


class RankingBrowser:
    """The rank-list app, with a :class:`PairExplainer` under it (``browser.explainer``).

    Args:
        model: a workbench model.
        split: a :class:`~workbench.data.split.Split` (features are extracted, with a progress
            bar) — or pass ``result``, a ``RankingResult`` from ``evaluate_model``, to reuse one.
        topk: gallery images per query.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (the device dropdown changes it later).
        cache_bytes: bound of each of the app's caches (feature maps and list heat maps here,
            explanations and images in the explainer); see :class:`LRUCache`.
        map_bytes: when the features are extracted here, the pooled layer's maps of the whole
            split are kept (fp16) if they fit in this many bytes, so the list heat maps need no
            forward pass; otherwise (and with ``result``) they are computed per list and cached.

    State for code and tests: ``query_index``, ``gallery_indices``, ``tile_png`` (bytes shown
    per tile, query first), ``list_maps``, ``error``; drive it with ``.value`` / ``.click()``.
    """

    def __init__(
        self,
        model: nn.Module,
        split: Any = None,
        *,
        result: Any = None,
        topk: int = 10,
        device: str = "auto",
        cache_bytes: int = 64 << 20,
        map_bytes: int = 256 << 20,
        tile_height: int = 150,
    ) -> None:
        import ipywidgets as W

        _Event = click_events()

        if (split is None) == (result is None):
            raise ValueError("pass a split (features are computed) or a result, not both")
        if topk < 1:
            raise ValueError(f"topk must be at least 1, got {topk}")
        self.model = model  # not switched to eval: each computation restores its mode
        self.size = model_input_size(model)
        self.topk = topk
        self.images = ImageStore(self.size)
        self.device_control = DeviceControl(model, device)
        self.status = W.HTML()
        self.progress = W.IntProgress(value=0, min=0, max=1, description="features")
        self.progress.layout.display = "none"
        self.error: Exception | None = None
        self.map_bytes = map_bytes
        if result is not None:
            self.data = RankingData.from_result(result)
        else:
            self.data = self._extract(split)
        self.features = LRUCache(cache_bytes)  # (path, layer, device) -> (C, h, w) CPU maps
        self.list_cache = LRUCache(cache_bytes)  # list heat maps, per query and method
        self.explainer = PairExplainer(
            model, images=self.images, device_control=self.device_control, cache_bytes=cache_bytes
        )
        if split is not None:
            self._attach_attributes(split)
        self.query_index: int = 0
        self.gallery_indices = np.zeros(0, int)
        self.selected_rank: int | None = None
        self.list_maps: tuple[np.ndarray, np.ndarray] | None = None  # (k, h, w) query, gallery
        self.tile_png: list[bytes] = []
        tile_w = round(tile_height * self.size[1] / self.size[0])
        self._tile_width = f"{tile_w}px"
        self._card_width = f"{max(tile_w + 16, 96)}px"  # room for the caption under the image

        nq = len(self.data.query)
        style = {"description_width": "initial"}
        self.index = W.BoundedIntText(
            value=0, min=0, max=nq - 1, description="query #", style=style
        )
        self.pid = W.Text(value="", placeholder="e.g. 6", description="person id", style=style)
        n_valid = max(1, len(self.data.worst_first))
        self.worst = W.BoundedIntText(
            value=0, min=0, max=n_valid - 1, description="worst AP #", style=style
        )
        for w in (self.index, self.pid, self.worst):
            w.layout.width = "170px"
        self.prev = W.Button(description="◀", layout=W.Layout(width="40px"), tooltip="previous")
        self.next = W.Button(description="▶", layout=W.Layout(width="40px"), tooltip="next")
        self.heat = W.ToggleButton(value=False, description="heat maps", icon="fire")
        self.query_image = W.Image(format="jpeg", layout=W.Layout(width=self._tile_width))
        self.query_caption = W.HTML()
        self.colour_bar = W.Image(format="png", layout=W.Layout(display="none"))
        self.tiles, self.tile_images, self.tile_captions, self.tile_buttons = [], [], [], []
        self.why_buttons: list[Any] = []
        self._syncing = False
        self._events = []
        for rank in range(topk):
            image = W.Image(format="jpeg", layout=W.Layout(width=self._tile_width))
            image.add_class("wb-gallery-image")
            caption = W.HTML()
            button = W.Button(description=f"explain #{rank + 1}", layout=W.Layout(width="auto"))
            button.add_class("wb-open-pair")
            button.on_click(lambda _b, r=rank: self.open_pair(r))
            why = W.Button(
                description="why above ✓?",
                layout=W.Layout(width="auto", display="none"),
                tooltip="why is this wrong match ranked above the first right one?",
            )
            why.add_class("wb-why-above")
            why.on_click(lambda _b, r=rank: self.open_contrast(r))
            self.why_buttons.append(why)
            if _Event is not None:
                event = _Event(source=image, watched_events=["click"])
                event.on_dom_event(lambda _e, r=rank: self.open_pair(r))
                self._events.append(event)
            tile = W.VBox(
                [image, caption, button, why],
                layout=W.Layout(align_items="center", width=self._card_width, margin="0 2px"),
            )
            tile.add_class("wb-gallery-tile")
            self.tiles.append(tile)
            self.tile_images.append(image)
            self.tile_captions.append(caption)
            self.tile_buttons.append(button)

        self.index.observe(self._index_changed, names="value")
        self.pid.observe(self._pid_changed, names="value")
        self.worst.observe(self._worst_changed, names="value")
        self.prev.on_click(lambda _b: self._step(-1))
        self.next.on_click(lambda _b: self._step(+1))
        self.heat.observe(lambda _c: self.show_query(self.query_index), names="value")
        self.device_control.on_change(lambda _d: self.show_query(self.query_index))
        self.explainer.on_change(lambda: self._method_changed({}))  # method, layer, parameters

        query_tile = W.VBox(
            [self.query_image, self.query_caption],
            layout=W.Layout(align_items="center", width=self._card_width, margin="0 2px"),
        )
        query_tile.add_class("wb-query-tile")
        summary = (
            f"{nq} queries × {len(self.data.gallery)} gallery images · "
            f"mAP {100 * np.nanmean(self.data.ap):.1f}%"
        )
        self.widget = W.VBox(
            [
                W.HTML(f"<b>Ranking browser</b> · {type(model).__name__} · {summary}"),
                W.HBox([self.index, self.pid, self.worst, self.prev, self.next, self.heat]),
                self.progress,
                W.HBox(
                    [query_tile, self.colour_bar, *self.tiles],
                    layout=W.Layout(flex_flow="row wrap", align_items="flex-start"),
                ),
                self.status,
                self.explainer.widget,
            ]
        )
        self.widget.add_class("wb-ranking-browser")
        self.show_query(0)
        if len(self.gallery_indices):
            self.open_pair(0)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- features ---------------------------------------------------------------------------
    def _extract(self, split: Any) -> RankingData:
        try:  # a live bar while the cell runs (the app itself is shown when it returns)
            from IPython import get_ipython
            from IPython.display import display

            live = get_ipython() is not None
        except ImportError:  # pragma: no cover - IPython comes with ipywidgets
            live = False
        self.progress.layout.display = None
        if live:
            display(self.progress)

        def update(done: int, total: int) -> None:
            self.progress.max = max(1, total)
            self.progress.value = done
            self.progress.description = f"features {done}/{total}"

        pooling = pooling_of(self.model)
        data = RankingData.compute(
            self.model,
            split,
            self.size,
            self.device_control.device,
            progress=update,
            keep_layer=pooling.layer if pooling is not None else None,
            keep_bytes=self.map_bytes,
        )
        self.progress.layout.display = "none"
        return data

    def _attach_attributes(self, split: Any) -> None:
        """Give the interpreter's attribute view the split's ground truth, where it has one."""
        from workbench.widgets.attribute_views import AttributeBars, split_attributes_table

        bars = [v for v in self.explainer.views if isinstance(v, AttributeBars)]
        if not bars:
            return
        try:
            table = split_attributes_table(split)
        except (ValueError, OSError):
            return  # the view still works, without ground-truth values
        for view in bars:
            view.attributes = view.attributes if view.attributes is not None else table

    # -- choosing a query ---------------------------------------------------------------------
    @guarded
    def _index_changed(self, change: dict) -> None:
        if not self._syncing:
            self.show_query(int(change["new"]))

    def _sync_fields(self) -> None:
        """The person id and worst-AP # fields follow the shown query (no callbacks fire)."""
        self._syncing = True
        try:
            self.index.value = self.query_index
            self.pid.value = str(int(self.data.query.pid[self.query_index]))
            where = np.flatnonzero(self.data.worst_first == self.query_index)
            if len(where):
                self.worst.value = int(where[0])
        finally:
            self._syncing = False

    @guarded
    def _pid_changed(self, change: dict) -> None:
        text = str(change["new"]).strip()
        if self._syncing or not text:
            return
        try:
            pid = int(text)
        except ValueError:
            raise ValueError(f"person id {text!r} is not a number") from None
        hits = self.data.queries_of(pid)
        if not len(hits):
            pids = np.unique(self.data.query.pid.to_numpy())
            raise ValueError(
                f"no query of person {pid}; query ids run {pids.min()}..{pids.max()} "
                f"({len(pids)} people)"
            )
        later = (
            hits[hits > self.query_index] if self.data.query.pid[self.query_index] == pid else hits
        )
        self.index.value = int((later if len(later) else hits)[0])  # next image of that person

    @guarded
    def _worst_changed(self, change: dict) -> None:
        if self._syncing:
            return
        if not len(self.data.worst_first):
            raise ValueError("no query has a true match in the gallery: AP is undefined")
        self.index.value = int(self.data.worst_first[int(change["new"])])

    def _step(self, delta: int) -> None:
        self.index.value = int(np.clip(self.query_index + delta, 0, len(self.data.query) - 1))

    @guarded
    def _method_changed(self, _change: dict) -> None:
        if self.heat.value:
            self.show_query(self.query_index)

    # -- drawing ------------------------------------------------------------------------------
    def _row(self, table: Any, i: int) -> Row:
        r = table.iloc[int(i)]
        return Row(str(r.path), int(r.pid), int(r.camid))

    @guarded
    def show_query(self, index: int) -> None:
        """Show query ``index`` and its top-k (heat maps too when the toggle is on)."""
        if not 0 <= index < len(self.data.query):
            raise ValueError(f"query index {index} is out of range 0..{len(self.data.query) - 1}")
        self.error = None
        self.query_index = int(index)
        q = self._row(self.data.query, index)
        ranked = self.data.topk(index, self.topk)
        self.gallery_indices = ranked
        self.first_true = self._first_true(index)
        gallery = [self._row(self.data.gallery, g) for g in ranked]
        self.list_maps = self._list_heat(q, gallery) if self.heat.value and gallery else None
        scale = None
        if self.list_maps is not None:
            scale = shared_scale(list(self.list_maps), self.explainer.scale_mode.value)
            bar = colour_bar(scale, height=int(self._tile_width[:-2]) * 2, width=60)
            self.colour_bar.value = encode(bar)
            self.colour_bar.layout.display = None
        else:
            self.colour_bar.layout.display = "none"
        self._sync_fields()
        tiles = [self._tile(q, GREY, None if scale is None else (self.list_maps[0][0], scale))]
        ap = self.data.ap[index]
        ap_text = "no true match" if np.isnan(ap) else f"AP {100 * ap:.1f}%"
        self.query_image.value = tiles[0]
        self.query_caption.value = _caption(
            f"<b>query #{index}</b> {ap_text}", f"id {q.pid} · cam {q.camid + 1}", Path(q.path).name
        )
        for rank in range(self.topk):
            if rank >= len(gallery):
                self.tiles[rank].layout.display = "none"
                continue
            g = gallery[rank]
            heat = None if scale is None else (self.list_maps[1][rank], scale)
            png = self._tile(g, GREEN if g.pid == q.pid else RED, heat)
            tiles.append(png)
            self.tiles[rank].layout.display = None
            self.tile_images[rank].value = png
            d = self.data.distmat[index, ranked[rank]]
            self.tile_captions[rank].value = _caption(
                f"<b>#{rank + 1}</b> {self.distance_short} {d:.3f}",
                f"id {g.pid} · cam {g.camid + 1}",
                Path(g.path).name,
            )
            above = self.first_true is None or rank < self.first_true
            wrong_above = g.pid != q.pid and above and self.first_true is not None
            self.why_buttons[rank].layout.display = None if wrong_above else "none"
        self.tile_png = tiles
        if self.selected_rank is not None and len(gallery):  # the pair follows the query
            self.open_pair(min(self.selected_rank, len(gallery) - 1))
        what = f" · heat maps: {self.explainer.method.value}" if self.list_maps is not None else ""
        self.status.value = message_html(
            f"query {index}: {len(gallery)} gallery images shown{what}", "info"
        )

    def _tile(self, row: Row, colour: tuple[int, int, int], heat: Any) -> bytes:
        rgb = self.images.rgb(row.path)
        if heat is not None:
            rgb = overlay(rgb, heat[0], heat[1])
        return encode(add_border(rgb, colour, max(2, self.size[0] // 40)), "jpeg")

    def _list_heat(self, q: Row, gallery: list[Row]) -> tuple[np.ndarray, np.ndarray]:
        """(k, h, w) maps of the query against each gallery image, and of each gallery image."""
        ex = self.explainer
        method, layer, device = ex.method.value, ex.selected_layer(), self.device_control.device
        params = ex.params()
        key = (
            q.path,
            tuple(g.path for g in gallery),
            method,
            ex.layer.value,
            ex.controls.key(),
            str(device),
        )
        hit = self.list_cache.get(key)
        if hit is not None:
            return hit
        closed = closed_form_layer(method, self.model, layer, **params)
        with interactive(device):  # small tensors: threads only add waiting (few_threads)
            if closed is not None:  # no network: maps kept from the ranking, or cached here
                maps = self._kept_maps(closed, device)
                if maps is None:  # not kept (a given result, or too large): per list, cached
                    maps = self._feature_maps([q.path] + [g.path for g in gallery], closed, device)
                pair = explain_ranklist(
                    method, self.model, None, None, layer=layer, maps=(maps[:1], maps[1:]), **params
                )
            else:
                batch = self.images.tensor([q.path] + [g.path for g in gallery]).to(device)
                pair = explain_ranklist(
                    method, self.model, batch[:1], batch[1:], layer=layer, **params
                )
        q_maps, g_maps = pair.query.maps, pair.gallery.maps
        if q_maps.dim() == 4:  # k maps per image: the one the explainer shows
            i = min(int(ex.map_index.value or 0), q_maps.shape[1] - 1)
            q_maps, g_maps = q_maps[:, i], g_maps[:, i]
        out = (q_maps.float().cpu().numpy(), g_maps.float().cpu().numpy())
        self.list_cache.put(key, out)
        return out

    def _kept_maps(self, layer: str, device: torch.device) -> torch.Tensor | None:
        """(1 + k, C, h, w) maps of the shown query and list, from the extraction pass."""
        d = self.data
        if d.maps_layer != layer or d.query_maps is None or d.gallery_maps is None:
            return None
        q = d.query_maps[self.query_index : self.query_index + 1]
        g = d.gallery_maps[torch.as_tensor(self.gallery_indices, dtype=torch.long)]
        return torch.cat([q, g]).to(device, torch.float32)

    def _feature_maps(self, paths: list[str], layer: str, device: torch.device) -> torch.Tensor:
        """(N, C, h, w) maps of ``layer`` on ``device``, computed only for the uncached paths."""
        keys = [(p, layer, str(device)) for p in paths]
        missing = [p for p, k in zip(paths, keys, strict=True) if k not in self.features]
        if missing:
            explainer = get_explainer("gradcam")(self.model, layer)
            images = self.images.tensor(missing).to(device)
            maps = explainer.activations(images).cpu()
            for p, m in zip(missing, maps, strict=True):
                self.features.put((p, layer, str(device)), m.clone())
        found = [self.features.get(k) for k in keys]
        if any(m is None for m in found):  # the cache is smaller than one list: no caching
            images = self.images.tensor(paths).to(device)
            return get_explainer("gradcam")(self.model, layer).activations(images)
        return torch.stack(found).to(device)

    # -- opening a pair -----------------------------------------------------------------------
    @guarded
    def open_pair(self, rank: int) -> None:
        """Explain the query against its gallery image at ``rank`` (0-based) in the explainer."""
        if not 0 <= rank < len(self.gallery_indices):
            raise ValueError(
                f"rank {rank + 1} is not shown (the list has {len(self.gallery_indices)})"
            )
        self.selected_rank = int(rank)
        for i, b in enumerate(self.tile_buttons):
            b.button_style = "info" if i == rank else ""
        q = self._row(self.data.query, self.query_index)
        gi = self.gallery_indices[rank]
        g = self._row(self.data.gallery, gi)
        self.explainer.set_pair(q, g, ranked_distance=self.data.distmat[self.query_index, gi])

    @property
    def distance_short(self) -> str:
        """The ranking distance's short name on the tiles (``1−cos``)."""
        return distance_label(self.data.metric, short=True)

    def _first_true(self, index: int) -> int | None:
        """Rank (0-based) of the first true match of query ``index`` in the ranking, if any."""
        ranked = self.data.topk(index, len(self.data.gallery))
        hits = np.flatnonzero(
            self.data.gallery.pid.to_numpy()[ranked] == self.data.query.pid[index]
        )
        return int(hits[0]) if len(hits) else None

    @guarded
    def open_contrast(self, rank: int) -> None:
        """Why is the wrong match at ``rank`` above the query's first true match?"""
        if self.first_true is None or rank >= self.first_true:
            raise ValueError(f"#{rank + 1} is not a wrong match above the first true match")
        ranked = self.data.topk(self.query_index, self.first_true + 1)
        wrong, right = self.gallery_indices[rank], ranked[self.first_true]
        self.selected_rank = int(rank)
        q = self._row(self.data.query, self.query_index)
        d = self.data.distmat[self.query_index]
        self.explainer.set_contrast(
            q,
            self._row(self.data.gallery, wrong),
            self._row(self.data.gallery, right),
            distances=(float(d[wrong]), float(d[right])),
        )


def _caption(first: str, second: str, name: str) -> str:
    return (
        f'<div style="line-height:1.2;font-size:11px;text-align:center">{first}<br>{second}'
        f'<br><span style="font-size:8px;color:#555;word-break:break-all">{name}</span></div>'
    )
