"""Colours of the synthetic pedestrians: one palette entry per Market-1501 colour attribute.

The upper / lower colour attributes (``upblack`` ... ``downbrown``, Lin et al. 2019, see
``workbench.data.schema``) name the *dominant* colour of a garment. Each name maps to one RGB
anchor here; identities jitter it slightly (``jitter_colour``) and the renderer draws the
garment in that colour, so the nearest anchor of a garment's pixels under neutral light is the
attribute's colour. Anchors are RGB for readability; ``bgr`` converts for OpenCV.
"""

from __future__ import annotations

import numpy as np

from workbench.data.schema import MARKET_LOWER_COLOURS, MARKET_UPPER_COLOURS

RGB = tuple[int, int, int]

UPPER_PALETTE: dict[str, RGB] = {
    "black": (30, 30, 33),
    "white": (232, 232, 228),
    "red": (196, 34, 40),
    "purple": (120, 52, 150),
    "yellow": (230, 198, 42),
    "gray": (128, 128, 126),
    "blue": (38, 74, 178),
    "green": (44, 138, 64),
}
LOWER_PALETTE: dict[str, RGB] = {
    "black": (30, 30, 33),
    "white": (232, 232, 228),
    "pink": (236, 142, 174),
    "purple": (120, 52, 150),
    "yellow": (230, 198, 42),
    "gray": (128, 128, 126),
    "blue": (44, 72, 140),  # denim
    "green": (58, 112, 58),
    "brown": (118, 76, 42),
}
assert tuple(UPPER_PALETTE) == MARKET_UPPER_COLOURS and tuple(LOWER_PALETTE) == MARKET_LOWER_COLOURS

# Market-like frequencies of the dominant colours (dark clothes dominate; lower body: dark / denim)
UPPER_FREQ = (0.20, 0.20, 0.10, 0.06, 0.08, 0.12, 0.12, 0.12)
LOWER_FREQ = (0.30, 0.07, 0.04, 0.03, 0.02, 0.15, 0.25, 0.05, 0.09)

SKIN_TONES: tuple[RGB, ...] = (
    (241, 198, 170), (226, 176, 142), (204, 150, 114), (172, 120, 86), (128, 86, 60), (96, 64, 46),
)  # fmt: skip
HAIR_COLOURS: tuple[RGB, ...] = (
    (24, 22, 22), (24, 22, 22), (52, 36, 26), (92, 62, 38), (128, 62, 32), (196, 160, 98),
)  # fmt: skip
GRAY_HAIR: tuple[RGB, ...] = ((150, 148, 146), (206, 204, 200))
SHOE_COLOURS: tuple[RGB, ...] = (
    (28, 28, 28), (236, 236, 236), (110, 110, 110), (96, 62, 36), (36, 44, 84), (180, 40, 40),
    (200, 180, 140),
)  # fmt: skip
ITEM_COLOURS: tuple[RGB, ...] = (
    (26, 26, 30), (34, 44, 90), (160, 36, 40), (96, 96, 100), (110, 72, 40), (50, 90, 60),
    (220, 140, 170), (196, 176, 136), (70, 120, 170),
)  # fmt: skip
ACCENT_COLOURS: tuple[RGB, ...] = (
    (240, 240, 240), (20, 20, 20), (220, 40, 40), (250, 210, 40), (40, 110, 220), (40, 170, 80),
    (240, 120, 30), (160, 60, 190),
)  # fmt: skip


def bgr(rgb: RGB | np.ndarray) -> tuple[int, int, int]:
    """RGB triple -> OpenCV BGR tuple of Python ints."""
    r, g, b = (int(v) for v in rgb)
    return (b, g, r)


def jitter_colour(rgb: RGB, rng: np.random.Generator, amount: float = 1.0) -> RGB:
    """A per-identity variant of a palette colour: brightness ×U(0.9, 1.08) and ±6 per channel."""
    c = np.asarray(rgb, np.float64) * rng.uniform(1 - 0.1 * amount, 1 + 0.08 * amount)
    c = c + rng.normal(0.0, 6.0 * amount, 3)
    return tuple(int(v) for v in np.clip(np.rint(c), 0, 255))  # type: ignore[return-value]
