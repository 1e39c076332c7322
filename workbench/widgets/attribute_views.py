"""Attribute views of an AAM interpreter (Chen et al., ICCV 2021): per pair and per split.

The interface these views need from a model (what ``workbench.models.interpreter.Interpreter``
provides; anything else with the same two members works, e.g. the test fakes):

* ``model.attribute_names`` — the M attribute names, in the order of the maps;
* ``model.interpret(images)`` → an object with ``aams`` (B, M, h, w), the attribute attention
  maps (for pairs, ``workbench.explain.attributes.explain_pair`` is used when present).

:class:`AttributeBars` is a :class:`~workbench.widgets.pair_explainer.PairView`: the top-k
attribute contributions of the current pair as a bar chart with the ground-truth values, and
their AAMs on both images (one colour scale). :class:`AttributeExplorer` shows the average
positive / negative AAM of each attribute over a split and the attribute localisation scores
(synthetic data, whose part masks say where each attribute is). A split without attributes, or a
model that is not an interpreter, gives a message in the app.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from workbench.evaluate.explain_metrics import localisation_scores
from workbench.evaluate.interpretations import average_aams
from workbench.models.base import Capability, capabilities_of
from workbench.viz.attributes import contribution_bars, figure_png
from workbench.viz.heatmap import colour_bar, encode, hstack, overlay, shared_scale
from workbench.widgets._controls import DeviceControl, guarded, message_html
from workbench.widgets._data import ImageStore, ProgressLoader, model_input_size

__all__ = [
    "AttributeBars",
    "AttributeExplorer",
    "is_interpreter",
    "split_attributes_table",
]


def is_interpreter(model: nn.Module) -> bool:
    """Whether ``model`` declares the interpreter interface (``attribute_names``, ``interpret``):
    ``Capability.ATTRIBUTE_INTERPRETER``."""
    return Capability.ATTRIBUTE_INTERPRETER in capabilities_of(model)


def _not_interpreter(model: nn.Module) -> str:
    return (
        f"{type(model).__name__} is not an attribute interpreter (it has no attribute_names / "
        f"interpret); train one with `workbench train --model interpreter` (AAM) and open it here"
    )


def split_attributes_table(split: Any, part: str = "test") -> pd.DataFrame:
    """The per-identity attribute table of a split (index pid), or a clear error."""
    from workbench.data.attributes import find_attribute_file, load_attributes

    root = getattr(split, "root", None)
    if root is None:
        raise ValueError("this split has no root folder, so no attribute file can be found")
    try:
        path = find_attribute_file(root)
    except (FileNotFoundError, ValueError) as e:
        raise ValueError(
            f"the split at {root} has no attribute annotations ({e}); the attribute views need "
            f"a Lin et al. attribute file (market_attribute.mat / duke_attribute.mat)"
        ) from None
    return load_attributes(path, part)


def _labels(attributes: pd.DataFrame, pids: np.ndarray, names: list[str]) -> np.ndarray:
    """(N, M) 0/1 labels (-1 unknown) of ``pids`` for the attributes ``names``."""
    missing = [n for n in names if n not in attributes.columns]
    if missing:
        raise ValueError(
            f"the attribute table lacks {missing} (it has {list(attributes.columns)[:8]}...); "
            f"is it the interpreter's schema?"
        )
    table = attributes.reindex(pids)[names]
    return table.fillna(-1).to_numpy(np.int64)


class AttributeBars:
    """The pair explainer's attribute view: top-k contributions + their AAMs (paper Fig. 4)."""

    def __init__(self, model: nn.Module, k: int = 5, attributes: pd.DataFrame | None = None):
        import ipywidgets as W

        self.model, self.k, self.attributes = model, k, attributes
        self.bars = W.Image(format="png", layout=W.Layout(align_self="flex-start"))  # natural size
        self.maps = W.Image(format="png", layout=W.Layout(align_self="flex-start"))  # natural size
        self.status = W.HTML()
        self.result: Any = None
        self.error: Exception | None = None
        self.widget = W.VBox(
            [W.HTML("<b>Attribute contributions</b>"), W.HBox([self.bars, self.maps]), self.status]
        )

    @staticmethod
    def supports(model: nn.Module) -> bool:
        return is_interpreter(model)

    def _values(self, pid: int) -> np.ndarray | None:
        if self.attributes is None or pid not in self.attributes.index:
            return None
        return self.attributes.loc[pid].to_numpy()

    @guarded
    def update(self, query: Any, gallery: Any, images: ImageStore) -> None:
        self.error = None
        from workbench.explain.attributes import explain_pair  # the AAM interpreter's API

        batch = images.tensor([query.path, gallery.path]).to(_device(self.model))
        self.result = res = explain_pair(
            self.model,
            batch[0],
            batch[1],
            k=self.k,
            attributes_x=self._values(query.pid),
            attributes_y=self._values(gallery.pid),
        )
        title = (  # the target's Euclidean distance that AAM distils, not the app's ranking
            f"target's Euclidean distance d = {res.distance:.3f} · "
            f"distilled d̂ = {res.distilled:.3f}"
        )
        self.bars.value = figure_png(contribution_bars(res.table, self.k, title))
        scale = shared_scale([res.aams_x, res.aams_y])
        tiles = []
        for side, row in ((res.aams_x, query), (res.aams_y, gallery)):
            rgb = images.rgb(row.path)
            tiles += [overlay(rgb, side[i].cpu(), scale) for i in range(side.shape[0])]
        tiles.append(colour_bar(scale, height=images.size[0]))
        self.maps.value = encode(hstack(tiles, gap=3))
        self.status.value = message_html(
            f"top {self.k}: {', '.join(res.top)} (left: query, right: gallery)", "info"
        )


def _device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


class AttributeExplorer:
    """Average positive / negative AAM per attribute over a split, and localisation scores.

    Args:
        model: an interpreter (see the module docstring for the interface).
        split: a split (its ``query`` table is used) or a table with ``path, pid, camid``.
        attributes: per-identity table (index pid, one column per attribute); default: the
            split's attribute file.
        max_images: images interpreted (evenly spaced over the table).

    State: ``averages`` (M, 2, h, w), ``localisation`` (DataFrame or None), ``png``, ``error``.
    """

    def __init__(
        self,
        model: nn.Module,
        split: Any,
        attributes: pd.DataFrame | None = None,
        max_images: int = 256,
        device: str = "auto",
        batch_size: int = 32,
    ) -> None:
        import ipywidgets as W

        self.model = model
        self.size = model_input_size(model)
        self.status = W.HTML()
        self.progress = W.IntProgress(value=0, min=0, max=1, description="AAMs")
        self.attribute = W.Dropdown(options=[], description="attribute")
        self.image = W.Image(format="png", layout=W.Layout(align_self="flex-start"))  # natural size
        self.image.add_class("wb-attribute-image")
        self.table = W.HTML()
        self.averages: Tensor | None = None
        self.localisation: pd.DataFrame | None = None
        self.png = b""
        self.error: Exception | None = None
        self.widget = W.VBox(
            [
                W.HTML("<b>Attribute explorer</b> · average AAM with / without each attribute"),
                self.attribute,
                self.progress,
                self.image,
                self.status,
                self.table,
            ]
        )
        self.widget.add_class("wb-attribute-explorer")
        self._load(split, attributes, max_images, device, batch_size)
        self.attribute.observe(lambda _c: self.show(), names="value")
        self.show()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    @guarded
    def _load(self, split, attributes, max_images, device, batch_size) -> None:
        if not is_interpreter(self.model):
            raise ValueError(_not_interpreter(self.model))
        table = split.query if hasattr(split, "query") else split
        if attributes is None:
            attributes = split_attributes_table(split)
        names = list(self.model.attribute_names)
        pick = np.unique(np.linspace(0, len(table) - 1, min(max_images, len(table))).astype(int))
        table = table.iloc[pick].reset_index(drop=True)
        labels = _labels(attributes, table.pid.to_numpy(), names)  # (N, M)
        self.device_control = DeviceControl(self.model, device)
        from workbench.evaluate.protocol import make_loader

        def update(done: int, total: int) -> None:
            self.progress.max, self.progress.value = max(1, total), done

        aams = []
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                loader = ProgressLoader(make_loader(table, *self.size, batch_size), update)
                for batch in loader:
                    images = batch["image"].to(self.device_control.device)
                    aams.append(self.model.interpret(images).aams.float().cpu())
        finally:
            self.model.train(was_training)
        aams_t = torch.cat(aams)  # (N, M, h, w)
        self.averages = average_aams(aams_t, labels)  # the AAM paper's rule (top third)
        self.counts = {n: (int((labels[:, i] == 1).sum()), int((labels[:, i] == 0).sum()))
                       for i, n in enumerate(names)}  # fmt: skip
        self.attribute.options = names
        self.attribute.value = names[0]
        self.progress.layout.display = "none"
        self.localisation = self._localisation(aams_t, table, names)

    def _localisation(self, aams: Tensor, table: pd.DataFrame, names: list[str]):
        if "mask_path" not in table.columns:
            self.table.value = message_html(
                "localisation scores need part masks (the synthetic dataset has them)", "info"
            )
            return None
        import cv2

        from workbench.data.dataset import read_image

        h, w = self.size
        parts = torch.from_numpy(
            np.stack(
                [
                    cv2.resize(
                        read_image(p, cv2.IMREAD_UNCHANGED), (w, h), interpolation=cv2.INTER_NEAREST
                    )
                    for p in table.mask_path
                ]
            ).astype(np.int64)
        )
        scores = localisation_scores(aams, parts, names)
        self.table.value = scores.round(3).to_html(index=False)
        return scores

    @guarded
    def show(self) -> None:
        """Display the app in the notebook."""
        if self.averages is None or self.attribute.value is None:
            return
        i = list(self.attribute.options).index(self.attribute.value)
        pos, neg = self.averages[i, 0], self.averages[i, 1]
        scale = shared_scale([pos, neg])
        s = max(1, round(192 / pos.shape[0]))
        tiles = []
        for m in (pos, neg):
            big = np.kron(m.numpy(), np.ones((s, s), np.float32))
            tiles.append(overlay(np.full((*big.shape, 3), 255, np.uint8), big, scale, alpha=1.0))
        tiles.append(colour_bar(scale, height=tiles[0].shape[0]))
        self.png = encode(hstack(tiles))
        self.image.value = self.png
        n_pos, n_neg = self.counts[self.attribute.value]
        self.status.value = message_html(
            f"{self.attribute.value}: left with it ({n_pos} images), right without ({n_neg})",
            "info",
        )
