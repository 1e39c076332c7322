"""CUHK03-NP: CUHK03 (Li et al., CVPR 2014) in the new protocol of Zhong et al. ("Re-ranking person
re-identification with k-reciprocal encoding", CVPR 2017): 767 train / 700 test ids, two cameras.

Layout: ``cuhk03-np/{labeled,detected}/{bounding_box_train,query,bounding_box_test}`` with
Market-style names ``0001_c1_1.png``. ``variant`` picks the hand-labelled or the detected boxes
(default ``labeled``); root may be the folder above ``cuhk03-np``, ``cuhk03-np`` itself, or
``.../labeled`` / ``.../detected`` directly. torchreid reads the original .mat files instead.
"""

from __future__ import annotations

from pathlib import Path

from workbench.data.readers.folders import find_market_folders, read_market_style
from workbench.data.readers.registry import LayoutNotFound, register_layout
from workbench.data.split import Split

VARIANTS = ("labeled", "detected")
PARENTS = ("cuhk03-np", "CUHK03-NP", "cuhk03_np")


@register_layout("cuhk03np", detect_order=20)
def read_cuhk03np(root: Path, *, auto: bool = True, variant: str | None = None) -> Split:
    """CUHK03-NP, labeled or detected boxes: 2 cameras, names 0001_c1_1.png."""
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"unknown CUHK03-NP variant {variant!r}; choose one of {VARIANTS}")
    if root.name in VARIANTS:  # root points at .../labeled or .../detected
        if variant is not None and variant != root.name:
            raise ValueError(
                f"{root} holds the {root.name} boxes but variant={variant!r} was asked; point root "
                f"at the folder above it to choose the variant"
            )
        data_dir = find_market_folders(root, (".",))
        return read_market_style(data_dir, "cuhk03np", {"variant": root.name})
    chosen = variant or "labeled"
    candidates = [chosen, *(f"{p}/{chosen}" for p in PARENTS)]
    try:
        data_dir = find_market_folders(root, candidates)
    except LayoutNotFound as e:
        other = VARIANTS[1 - VARIANTS.index(chosen)]
        if variant is None and any((root / c).is_dir() for c in (other, f"{PARENTS[0]}/{other}")):
            raise LayoutNotFound(f"{e}; {other}/ exists: pass variant={other!r}") from None
        raise
    return read_market_style(data_dir, "cuhk03np", {"variant": chosen})
