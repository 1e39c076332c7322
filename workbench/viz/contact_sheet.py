"""Contact sheets of a dataset with part masks and keypoints (Market-1501 layout + annotations).

Works on any folder in the Market-1501 layout that has the annotation files of
``workbench.data.annotations`` beside it (the synthetic dataset always does): images come from
``bounding_box_train``, ``query`` and ``bounding_box_test``, masks from ``masks/``, keypoints
from ``keypoints/``, and attributes, where present, from ``attributes.csv``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from workbench.data.annotations import (
    COCO_KEYPOINTS,
    KEYPOINT_DIR,
    PART_LABELS,
    SKELETON,
    mask_path_for,
    read_keypoints,
)
from workbench.data.split import parse_market_name

IMAGE_FOLDERS = ("bounding_box_train", "query", "bounding_box_test")

# RGB per part label (0 = background is transparent)
PART_COLOURS: dict[int, tuple[int, int, int]] = {
    1: (255, 170, 0),  # head
    2: (30, 144, 255),  # upper body
    3: (40, 200, 80),  # lower body
    4: (220, 0, 220),  # shoes
    5: (230, 40, 40),  # backpack
    6: (255, 235, 0),  # bag
    7: (0, 230, 230),  # handbag
}
_LEFT, _RIGHT, _MID = "#ff8c00", "#1e90ff", "#f5f5f5"


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot decode this image file")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def colourise_parts(labels: np.ndarray) -> np.ndarray:
    """(H, W) part labels -> (H, W, 3) uint8 RGB with ``PART_COLOURS`` (background black)."""
    lut = np.zeros((256, 3), np.uint8)
    for k, rgb in PART_COLOURS.items():
        lut[k] = rgb
    return lut[labels]


def overlay_parts(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend part colours into an RGB image where ``labels > 0``."""
    out = image.astype(np.float32)
    person = labels > 0
    out[person] = (1 - alpha) * out[person] + alpha * colourise_parts(labels)[person]
    return out.astype(np.uint8)


def draw_keypoints(ax: plt.Axes, keypoints: np.ndarray, size: float = 9.0) -> None:
    """COCO skeleton on ``ax`` in imshow coordinates (keypoints: (17, 3) continuous x, y, v).

    Left limbs orange, right limbs blue; visible points filled, occluded points hollow, v = 0
    points omitted. Continuous coordinates are shifted by -0.5 to imshow's pixel centres.
    """
    kp = np.asarray(keypoints, float)
    xy = kp[:, :2] - 0.5
    for a, b in SKELETON:
        if kp[a, 2] > 0 and kp[b, 2] > 0:
            name = COCO_KEYPOINTS[a] + COCO_KEYPOINTS[b]
            colour = (
                _LEFT if name.count("left") == 2 else _RIGHT if name.count("right") == 2 else _MID
            )
            style = "-" if kp[a, 2] == 2 and kp[b, 2] == 2 else ":"
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], style, color=colour, lw=1.0)
    for k, (x, y) in enumerate(xy):
        if kp[k, 2] == 0:
            continue
        name = COCO_KEYPOINTS[k]
        colour = _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _MID
        face = colour if kp[k, 2] == 2 else "none"
        ax.scatter([x], [y], s=size, c=face, edgecolors=colour, linewidths=0.8, zorder=3)


def _images(root: Path) -> list[Path]:
    paths = [
        p for f in IMAGE_FOLDERS if (root / f).is_dir() for p in sorted((root / f).glob("*.jpg"))
    ]
    if not paths:
        raise FileNotFoundError(
            f"{root}: no .jpg images in {', '.join(IMAGE_FOLDERS)}; generate a dataset first "
            f"(`workbench synth --out {root}`) or pass the dataset's root folder"
        )
    return paths


def _caption(pid: int, attributes: pd.DataFrame | None) -> str:
    """Up to three short lines: gender and top, lower body, carried items and hat."""
    if pid == 0:
        return "distractor"
    if pid < 0:
        return "junk"
    if attributes is None or pid not in attributes.index:
        return ""
    a = attributes.loc[pid]
    up = next((c[2:] for c in attributes.columns if c.startswith("up") and c != "up" and a[c]), "?")
    down = next(
        (c[4:] for c in attributes.columns if c.startswith("down") and c != "down" and a[c]), "?"
    )
    lower = "skirt" if a.get("clothes", 1) == 0 else "shorts" if a.get("down", 0) else "pants"
    items = [k for k in ("backpack", "bag", "handbag", "hat") if a.get(k, 0)]
    lines = [f"{'F' if a.get('gender', 0) else 'M'}, {up} top", f"{down} {lower}", ", ".join(items)]
    return "\n".join(lines).strip()


class _Annotations:
    """Lazy access to a root's masks, keypoints and attributes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._kp: dict[str, dict[str, np.ndarray]] = {}
        csv = root / "attributes.csv"
        self.attributes = pd.read_csv(csv).set_index("pid") if csv.is_file() else None

    def labels(self, path: Path, shape: tuple[int, int]) -> np.ndarray:
        m = cv2.imread(str(mask_path_for(self.root, path)), cv2.IMREAD_UNCHANGED)
        return np.zeros(shape, np.uint8) if m is None else m

    def keypoints(self, path: Path) -> np.ndarray | None:
        folder = path.parent.name
        if folder not in self._kp:
            f = self.root / KEYPOINT_DIR / f"{folder}.csv"
            self._kp[folder] = read_keypoints(f) if f.is_file() else {}
        return self._kp[folder].get(path.name)


def contact_sheet(
    root: str | Path, n: int = 24, seed: int = 0, out: str | Path | None = None, per_row: int = 6
) -> Figure:
    """A grid of ``n`` random images of the dataset at ``root``: each as raw image and with its
    part-mask overlay and keypoint skeleton, titled with pid, camera and a few attributes.

    Distractors and junk are drawn only as often as they occur. Saves a PNG to ``out`` if given.
    """
    if n < 1 or per_row < 1:
        raise ValueError(f"n={n}, per_row={per_row}: need at least one image and one per row")
    root = Path(root)
    paths = _images(root)
    rng = np.random.default_rng(seed)
    pick = [paths[i] for i in np.sort(rng.choice(len(paths), min(n, len(paths)), replace=False))]
    ann = _Annotations(root)
    rows = -(-len(pick) // per_row)
    fig, axes = plt.subplots(
        rows, 2 * per_row, figsize=(2 * per_row * 0.95, rows * 2.7), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for i, path in enumerate(pick):
        image = _read_rgb(path)
        labels = ann.labels(path, image.shape[:2])
        name = parse_market_name(path.name)
        row, col = divmod(i, per_row)
        ax_raw, ax_ann = axes[row, 2 * col], axes[row, 2 * col + 1]
        ax_raw.imshow(image)
        pid = f"{name.pid:04d}" if name.pid >= 0 else "-1"
        ax_raw.set_title(f"{pid} c{name.camid + 1}", fontsize=8, loc="left")
        ax_ann.imshow(overlay_parts(image, labels))
        kp = ann.keypoints(path)
        if kp is not None:
            draw_keypoints(ax_ann, kp, size=6.0)
        ax_ann.set_xlim(-0.5, image.shape[1] - 0.5)
        ax_ann.set_ylim(image.shape[0] - 0.5, -0.5)
        ax_ann.set_title(_caption(name.pid, ann.attributes), fontsize=5.5, loc="left")
    fig.tight_layout(pad=0.3, w_pad=0.1, h_pad=0.6)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=150)
    return fig


def part_sheet(root: str | Path, name: str | None = None, seed: int = 0) -> Figure:
    """One image of the dataset beside its overlay and one binary mask per part label present.

    ``name``: an image file name (any folder); default: a random image of a person with a
    carried item, if there is one.
    """
    root = Path(root)
    paths = _images(root)
    ann = _Annotations(root)
    if name is not None:
        matches = [p for p in paths if p.name == name]
        if not matches:
            raise FileNotFoundError(
                f"{root}: no image named {name!r} in {', '.join(IMAGE_FOLDERS)}"
            )
        path = matches[0]
    else:
        rng = np.random.default_rng(seed)
        path = paths[int(rng.integers(len(paths)))]
        for i in rng.permutation(len(paths))[:200]:
            labels = ann.labels(paths[i], (1, 1))
            if (labels >= 5).any() and (labels == 1).any():
                path = paths[i]
                break
    image = _read_rgb(path)
    labels = ann.labels(path, image.shape[:2])
    present = [k for k in PART_LABELS if k > 0 and (labels == k).any()]
    fig, axes = plt.subplots(1, 2 + len(present), figsize=(1.3 * (2 + len(present)), 2.9))
    axes[0].imshow(image)
    axes[0].set_title(path.name, fontsize=6)
    axes[1].imshow(overlay_parts(image, labels))
    kp = ann.keypoints(path)
    if kp is not None:
        draw_keypoints(axes[1], kp)
    axes[1].set_title("parts + keypoints", fontsize=7)
    for ax, k in zip(axes[2:], present, strict=True):
        ax.imshow(labels == k, cmap="gray", vmin=0, vmax=1)
        ax.set_title(PART_LABELS[k], fontsize=7)
    for ax in axes:
        ax.set_xlim(-0.5, image.shape[1] - 0.5)
        ax.set_ylim(image.shape[0] - 0.5, -0.5)
        ax.axis("off")
    fig.tight_layout(pad=0.3)
    return fig
