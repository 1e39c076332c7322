"""ReID Explainability Workbench.

Train person re-identification models and find out why they match two people.
Importing the package is cheap: torch-heavy entry points are loaded on first use,
and nothing here imports jupyter or ipywidgets.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (loaded lazily, PEP 562)
_LAZY = {
    "build_model": "workbench.models.registry",
    "list_models": "workbench.models.registry",
    "load_pretrained": "workbench.pretrained",
    "list_pretrained": "workbench.pretrained",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
