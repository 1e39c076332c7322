"""Per-image annotations beside a Market-1501 style folder: part masks and COCO keypoints.

The synthetic generator writes them; readers pick them up when present (any dataset laid out
the same way gets masks and keypoints for free):

    ROOT/masks/<image folder>/<image stem>.png    uint8 part-label map, see PART_LABELS
    ROOT/keypoints/<image folder>.csv             one row per image: name, <kp>_x, <kp>_y, <kp>_v

Keypoints follow COCO: 17 points, (x, y) in pixels of the stored image, visibility
v = 0 outside the image / not labelled, 1 labelled but occluded, 2 visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from torch import Tensor

COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

# index pairs swapped by a horizontal flip
FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2),
    (3, 4),
    (5, 6),
    (7, 8),
    (9, 10),
    (11, 12),
    (13, 14),
    (15, 16),
)

# limbs drawn between keypoints (COCO skeleton, 0-based)
SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
    (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip

# values of the part-label map; the person mask is ``labels > 0``
PART_LABELS: dict[int, str] = {
    0: "background",
    1: "head",
    2: "upper body",
    3: "lower body",
    4: "shoes",
    5: "backpack",
    6: "bag",
    7: "handbag",
}

_LABEL = {name: k for k, name in PART_LABELS.items()}
# region of each attribute as part labels of annotations.PART_LABELS
ATTRIBUTE_REGIONS: dict[str, tuple[int, ...]] = {
    "hat": (_LABEL["head"],),
    "hair": (_LABEL["head"],),
    "backpack": (_LABEL["backpack"],),
    "bag": (_LABEL["bag"],),
    "handbag": (_LABEL["handbag"],),
    "up": (_LABEL["upper body"],),
    "down": (_LABEL["lower body"],),
    "clothes": (_LABEL["lower body"],),
    **{
        f"up{c}": (_LABEL["upper body"],)
        for c in ("black", "white", "red", "purple", "yellow", "gray", "blue", "green", "brown")
    },
    **{
        f"down{c}": (_LABEL["lower body"],)
        for c in (
            "black",
            "white",
            "pink",
            "purple",
            "yellow",
            "gray",
            "blue",
            "green",
            "brown",
            "red",
        )
    },
}

MASK_DIR = "masks"
KEYPOINT_DIR = "keypoints"


def flip_permutation() -> np.ndarray:
    """Index array that reorders keypoints after a horizontal flip (left <-> right)."""
    perm = np.arange(len(COCO_KEYPOINTS))
    for a, b in FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return perm


def keypoint_columns() -> list[str]:
    return [f"{k}_{c}" for k in COCO_KEYPOINTS for c in ("x", "y", "v")]


def mask_path_for(root: str | Path, image_path: str | Path) -> Path:
    """Where the part-label mask of ``image_path`` (inside ``root``) lives."""
    image_path = Path(image_path)
    return Path(root) / MASK_DIR / image_path.parent.name / f"{image_path.stem}.png"


def write_keypoints(path: str | Path, names: list[str], keypoints: np.ndarray) -> None:
    """Write an (N, 17, 3) keypoint array for images ``names`` as CSV (x, y rounded to 0.1 px)."""
    kp = np.asarray(keypoints, dtype=np.float64).reshape(len(names), -1)
    df = pd.DataFrame(kp, columns=keypoint_columns())
    for c in df.columns:
        df[c] = df[c].astype(int) if c.endswith("_v") else df[c].round(1)
    df.insert(0, "name", names)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, lineterminator="\n")


def read_keypoints(path: str | Path) -> dict[str, np.ndarray]:
    """Read a keypoint CSV into ``{image name: (17, 3) float32 array}``."""
    df = pd.read_csv(path)
    missing = [c for c in ["name", *keypoint_columns()] if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path}: keypoint file lacks columns {missing[:4]}{'...' if len(missing) > 4 else ''}; "
            f"expected 'name' and <keypoint>_x/_y/_v for the 17 COCO keypoints"
        )
    arr = df[keypoint_columns()].to_numpy(np.float32).reshape(len(df), len(COCO_KEYPOINTS), 3)
    return dict(zip(df["name"].astype(str), arr, strict=True))


def attribute_region_masks(
    parts: Tensor, attributes: Sequence[str], size: tuple[int, int] | None = None
) -> tuple[Tensor, list[str]]:
    """Region masks of the region-tied attributes from part-label maps.

    Args:
        parts: (B, H, W) int part labels (``annotations.PART_LABELS``).
        attributes: attribute names (those not in ``ATTRIBUTE_REGIONS`` are skipped).
        size: (h, w) to area-average the masks to (the AAM grid), or None for full size.

    Returns:
        ``(masks (B, R, h, w) float in [0, 1], names of the R region-tied attributes)``.
    """
    import torch
    import torch.nn.functional as F

    names = [a for a in attributes if a in ATTRIBUTE_REGIONS]
    masks = torch.stack(
        [torch.isin(parts, torch.tensor(ATTRIBUTE_REGIONS[a], device=parts.device)) for a in names],
        dim=1,
    ).float()  # (B, R, H, W)
    if size is not None and tuple(masks.shape[-2:]) != tuple(size):
        masks = F.adaptive_avg_pool2d(masks, size)
    return masks, names
