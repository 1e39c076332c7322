"""The workbench's apps: stock ipywidgets 8 (JupyterLab 4, Notebook 7, VS Code), no extension.

* :class:`RankingBrowser` — a query and its top-k, worst-first by AP, heat maps on the whole list,
  click a match to explain it;
* :class:`PairExplainer` — query and gallery maps on one colour scale, any method / layer /
  parameter, the interpreter's attribute contributions;
* :class:`ReceptiveFieldExplorer` — IANet's SIA relation map of a chosen position (and the
  attention maps of RGA / SA models);
* :class:`AttributeExplorer` — average positive / negative AAM per attribute and attribute
  localisation scores of an AAM interpreter.

Each app keeps its state as Python attributes and reacts to ``.value`` / ``.click()``, so pytest
drives them without a browser; bad input is shown as a message inside the app. ipywidgets is
imported when an app is first asked for, so ``import workbench`` never needs jupyter.

    >>> from workbench.widgets import RankingBrowser  # doctest: +SKIP
    >>> RankingBrowser(model, split)                  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "RankingBrowser": "workbench.widgets.ranking_browser",
    "PairExplainer": "workbench.widgets.pair_explainer",
    "ReceptiveFieldExplorer": "workbench.widgets.receptive_field",
    "AttributeExplorer": "workbench.widgets.attribute_views",
    "AttributeBars": "workbench.widgets.attribute_views",
    "DeviceControl": "workbench.widgets._controls",
    "LRUCache": "workbench.widgets._cache",
    "ImageStore": "workbench.widgets._data",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench.widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
