"""Readers for real ReID datasets: ``load_split(root)`` detects the layout and reads it.

One file per layout, each registered with ``@register_layout``; importing this package registers
them all. Layouts: ``market1501`` (also the synthetic dataset), ``dukemtmc``, ``msmt17``,
``cuhk03np``.
"""

from workbench.data.readers import cuhk03np, dukemtmc, market1501, msmt17  # noqa: F401 (register)
from workbench.data.readers.registry import (
    LAYOUTS,
    DatasetLayoutError,
    Layout,
    layout_names,
    load_split,
    register_layout,
)

__all__ = [
    "LAYOUTS",
    "DatasetLayoutError",
    "Layout",
    "layout_names",
    "load_split",
    "register_layout",
]
