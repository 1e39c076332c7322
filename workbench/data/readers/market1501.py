"""Market-1501 (Zheng et al., "Scalable person re-identification: a benchmark", ICCV 2015).

Also the generic Market-style layout: the synthetic dataset and any folder with
``bounding_box_train/``, ``query/``, ``bounding_box_test/`` read as ``market1501``.
Folders searched as torchreid / FastReID place them: ROOT, ROOT/Market-1501-v15.09.15,
ROOT/market1501, ROOT/market1501/Market-1501-v15.09.15.
"""

from __future__ import annotations

from pathlib import Path

from workbench.data.readers.folders import find_market_folders, read_market_style
from workbench.data.readers.registry import register_layout
from workbench.data.split import Split

CANDIDATES = (".", "Market-1501-v15.09.15", "market1501", "market1501/Market-1501-v15.09.15")


@register_layout("market1501", detect_order=90)  # generic: tried last
def read_market1501(root: Path, *, auto: bool = True) -> Split:
    """Market-1501 layout (also the synthetic dataset's): 6 cameras, names 0002_c1s1_000451_03.jpg."""
    return read_market_style(find_market_folders(root, CANDIDATES), "market1501")
