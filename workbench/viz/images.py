"""Small image helpers shared by the figures: reading files for display, coloured borders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB (for display; the Dataset is the training path)."""
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f"{path}: cannot decode this image file")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def add_border(image: np.ndarray, colour: tuple[int, int, int], width: int = 4) -> np.ndarray:
    """Return ``image`` with a solid ``colour`` frame of ``width`` pixels drawn inside its edge."""
    out = image.copy()
    out[:width], out[-width:] = colour, colour
    out[:, :width], out[:, -width:] = colour, colour
    return out
