"""Procedural camera backgrounds: one street-level scene style per camera, painted once per process.

A *plate* is a wide image (about 1.15 H tall, 3 W wide) of a wall or far field above a floor with
texture and structures (windows, bricks, columns, hedges, trees, fences, parked bicycles). Each
image crops its background from one of the camera's plates at an offset that drifts along a
walking track, so images of one track share a background and different cameras share none.
Plates depend only on (seed, camera, plate index, image size): every worker paints the same.
"""

from __future__ import annotations

import cv2
import numpy as np

from workbench.data.synth import seeds

SCENES = ("campus", "brick", "walkway", "hall", "plaza", "gate")
PLATES_PER_CAMERA = 3


def _blotch(rng: np.random.Generator, h: int, w: int, cells: int, amp: float) -> np.ndarray:
    """(h, w, 1) float32 smooth random field in [-amp, amp] (upsampled coarse noise)."""
    small = rng.uniform(-amp, amp, (max(2, cells * h // w), cells)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)[:, :, None]


def _grain(rng: np.random.Generator, h: int, w: int, amp: float) -> np.ndarray:
    return rng.normal(0.0, amp, (h, w, 1)).astype(np.float32)


def _vgrad(h: int, w: int, top: tuple, bottom: tuple) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    return (
        (1 - t) * np.asarray(top, np.float32)
        + t * np.asarray(bottom, np.float32)
        + np.zeros((1, w, 1), np.float32)
    )


def _tint(rng: np.random.Generator, bgr: tuple, amount: float = 12.0) -> np.ndarray:
    """``bgr`` with a random brightness change and a weaker random hue change."""
    shift = rng.normal(0, amount) + rng.normal(0, 0.3 * amount, 3)
    return np.clip(np.asarray(bgr, np.float32) + shift, 0, 255).astype(np.float32)


def _floor(rng, img, y0: int, base: tuple, kind: str) -> None:
    """Fill rows y0: with a floor of ``kind`` (asphalt, slabs, tiles, stone, concrete)."""
    h, w = img.shape[:2]
    fh = h - y0
    if fh <= 0:
        return
    floor = _vgrad(fh, w, _tint(rng, base) * 0.9, _tint(rng, base) * 1.08)
    grain = {"asphalt": 9.0, "concrete": 5.0}.get(kind, 3.0)
    floor += _blotch(rng, fh, w, 6, 14.0) + _grain(rng, fh, w, grain)
    img[y0:] = floor
    line = tuple(float(v) for v in np.asarray(base) * 0.72)
    if kind in ("slabs", "tiles", "stone"):
        # perspective grid: rows denser near the horizon, columns converging to a vanishing point
        rows = {"slabs": 7, "tiles": 10, "stone": 5}[kind]
        for k in range(1, rows + 1):
            y = y0 + fh * (k / rows) ** 1.6
            cv2.line(img, (0, int(y)), (w - 1, int(y)), line, 1, cv2.LINE_AA)
        vx, vy = w * rng.uniform(0.3, 0.7), y0 - 0.6 * fh
        step = w / {"slabs": 6, "tiles": 9, "stone": 4}[kind]
        for x in np.arange(-w, 2 * w, step):
            t = (y0 - vy) / (h - vy)
            cv2.line(img, (int(vx + (x - vx) * t), y0), (int(x), h - 1), line, 1, cv2.LINE_AA)
        if kind == "tiles":  # glossy: a bright reflection band
            img[y0:] += _blotch(rng, fh, w, 3, 10.0) + 8.0
    elif kind == "asphalt" and rng.random() < 0.6:
        y = int(y0 + fh * rng.uniform(0.3, 0.7))
        cv2.rectangle(img, (0, y), (w - 1, y + max(2, fh // 30)), (200, 205, 205), -1)


def _windows(rng, img, y0, y1, frame: tuple, glass: tuple) -> None:
    w = img.shape[1]
    ww, wh = int(w * rng.uniform(0.08, 0.14)), int((y1 - y0) * rng.uniform(0.18, 0.3))
    gap_x, gap_y = int(ww * rng.uniform(0.6, 1.2)), int(wh * rng.uniform(0.4, 0.8))
    for y in range(y0 + gap_y // 2, y1 - wh, wh + gap_y):
        for x in range(int(rng.integers(0, ww)), w - ww, ww + gap_x):
            g = _tint(rng, glass, 10)
            cv2.rectangle(img, (x - 2, y - 2), (x + ww + 2, y + wh + 2), frame, -1)
            img[y : y + wh, x : x + ww] = g + _vgrad(wh, ww, (18, 18, 18), (-12, -12, -12))


def _trees(rng, img, y_base: int, n: int) -> None:
    h, w = img.shape[:2]
    for _ in range(n):
        x = int(rng.uniform(0, w))
        tw = max(3, int(w * rng.uniform(0.012, 0.025)))
        top = int(y_base - h * rng.uniform(0.3, 0.5))
        cv2.rectangle(
            img, (x, top), (x + tw, y_base), tuple(_tint(rng, (40, 55, 70), 8).tolist()), -1
        )
        for _ in range(7):
            c = (int(x + rng.normal(0, w * 0.05)), int(top - rng.uniform(0, h * 0.12)))
            ax = (int(w * rng.uniform(0.04, 0.08)), int(h * rng.uniform(0.04, 0.08)))
            col = tuple(_tint(rng, (50, 110, 60), 15).tolist())
            cv2.ellipse(img, c, ax, 0, 0, 360, col, -1, cv2.LINE_AA)


def _bicycles(rng, img, y_base: int, n: int) -> None:
    h, w = img.shape[:2]
    r = int(h * 0.05)
    for _ in range(n):
        x = int(rng.uniform(0, w))
        col = tuple(_tint(rng, (40, 40, 45), 20).tolist())
        for dx in (0, int(2.4 * r)):
            cv2.circle(img, (x + dx, y_base - r), r, col, 2, cv2.LINE_AA)
        pts = np.array([[x, y_base - r], [x + r, y_base - 2 * r], [x + int(2.4 * r), y_base - r],
                        [x + int(1.3 * r), y_base - r]], np.int32)  # fmt: skip
        cv2.polylines(img, [pts], True, col, 2, cv2.LINE_AA)


def _campus(rng, img, yf: int) -> None:
    """Pale building with windows, a hedge and trees, asphalt road."""
    h, w = img.shape[:2]
    img[:yf] = _vgrad(yf, w, _tint(rng, (200, 205, 210)), _tint(rng, (175, 185, 190)))
    img[:yf] += _blotch(rng, yf, w, 5, 8.0)
    _windows(rng, img, int(0.05 * h), int(yf - 0.12 * h), (150, 150, 150), (110, 95, 80))
    hedge = int(0.1 * h)
    img[yf - hedge : yf] = _tint(rng, (55, 120, 70), 10) + _blotch(rng, hedge, w, 30, 25.0)
    _trees(rng, img, yf - hedge, 2)
    _floor(rng, img, yf, (112, 112, 116), "asphalt")


def _brick(rng, img, yf: int) -> None:
    """Red brick wall (one random tint per brick) with windows, beige paving slabs."""
    w = img.shape[1]
    bh = max(3, int(0.035 * img.shape[0]))  # brick height
    period = 2 * bh + bh // 2  # brick length + mortar
    rows, xs = np.arange(yf)[:, None] // bh, np.arange(w)[None, :]
    shifted = xs + (rows % 2) * bh  # every other row offset by half a brick
    tint = rng.normal(0, 14, (int(rows.max()) + 2, int(shifted.max()) // period + 2, 1))
    img[:yf] = _tint(rng, (60, 75, 150), 10) + tint.astype(np.float32)[rows, shifted // period]
    mortar = (np.arange(yf) % bh == 0)[:, None] | (shifted % period == 0)
    img[:yf][mortar] = (170, 175, 180)
    img[:yf] += _grain(rng, yf, w, 5.0)
    _windows(rng, img, int(0.1 * img.shape[0]), int(yf - 0.1 * img.shape[0]), (60, 60, 60),
             (70, 60, 50))  # fmt: skip
    _floor(rng, img, yf, (150, 170, 185), "slabs")


def _walkway(rng, img, yf: int) -> None:
    """Concrete columns in front of dark glass, concrete floor."""
    w = img.shape[1]
    img[:yf] = _vgrad(yf, w, (75, 60, 50), (95, 80, 70)) + _blotch(rng, yf, w, 8, 18.0)
    x = int(rng.uniform(-0.2, 0.1) * w)
    while x < w:
        cw = int(w * rng.uniform(0.1, 0.16))
        img[:yf, max(0, x) : max(0, x + cw)] = _tint(rng, (170, 172, 170), 8)
        img[:yf, max(0, x + cw - cw // 4) : max(0, x + cw)] *= 0.8  # shaded side
        x += cw + int(w * rng.uniform(0.15, 0.3))
    _floor(rng, img, yf, (140, 140, 138), "concrete")


def _hall(rng, img, yf: int) -> None:
    """Indoor: light wall panels, a glass door, skirting board, glossy tiles."""
    h, w = img.shape[:2]
    img[:yf] = _vgrad(yf, w, _tint(rng, (215, 218, 215)), _tint(rng, (190, 195, 192)))
    for x in np.arange(rng.uniform(0, w / 8), w, w / rng.uniform(5, 9)):
        cv2.line(img, (int(x), 0), (int(x), yf), (160, 165, 162), 1, cv2.LINE_AA)
    x0, y0 = int(rng.uniform(0.1, 0.6) * w), int(0.1 * h)
    dw = int(rng.uniform(0.15, 0.3) * w)
    cv2.rectangle(img, (x0, y0), (x0 + dw, yf), (90, 85, 80), -1)
    img[y0 + 3 : yf, x0 + 3 : x0 + dw - 3] = _vgrad(
        yf - y0 - 3, dw - 6, (190, 170, 150), (140, 125, 110)
    )
    img[yf - int(0.02 * h) : yf] = (120, 120, 125)
    _floor(rng, img, yf, (165, 175, 178), "tiles")


def _plaza(rng, img, yf: int) -> None:
    """Sunny square: sky, trees, parked bicycles, light stone tiles."""
    h, w = img.shape[:2]
    sky = int(0.3 * h)
    img[:sky] = _vgrad(sky, w, (235, 205, 170), (240, 225, 205))
    img[sky:yf] = _vgrad(yf - sky, w, (205, 215, 220), (185, 195, 200))
    img[sky:yf] += _blotch(rng, yf - sky, w, 6, 10.0)
    _trees(rng, img, yf, 3)
    _floor(rng, img, yf, (190, 200, 205), "stone")
    _bicycles(rng, img, yf + int(0.06 * h), int(rng.integers(2, 5)))


def _gate(rng, img, yf: int) -> None:
    """Dim entrance: bushes, a guard booth behind a metal fence, dark asphalt."""
    h, w = img.shape[:2]
    img[:yf] = _vgrad(yf, w, (70, 80, 75), (55, 65, 60)) + _blotch(rng, yf, w, 12, 20.0)
    x0 = int(rng.uniform(0, 0.7) * w)
    cv2.rectangle(img, (x0, int(0.15 * h)), (x0 + int(0.25 * w), yf), (150, 160, 165), -1)
    cv2.rectangle(
        img, (x0 + 8, int(0.22 * h)), (x0 + int(0.2 * w), int(0.35 * h)), (80, 70, 60), -1
    )
    bar, y_bar = max(2, w // 150), int(0.3 * h)
    for x in np.arange(0, w, rng.uniform(0.03, 0.05) * w):
        cv2.rectangle(img, (int(x), y_bar), (int(x) + bar, yf), (35, 35, 35), -1)
    cv2.rectangle(img, (0, y_bar), (w - 1, y_bar + 2 * bar), (35, 35, 35), -1)
    _floor(rng, img, yf, (85, 85, 88), "asphalt")


_PAINTERS = {"campus": _campus, "brick": _brick, "walkway": _walkway, "hall": _hall,
             "plaza": _plaza, "gate": _gate}  # fmt: skip
assert tuple(_PAINTERS) == SCENES


def paint_plate(scene: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """One (h, w, 3) uint8 BGR background plate of ``scene``."""
    if scene not in _PAINTERS:
        raise ValueError(f"unknown scene {scene!r}; known: {SCENES}")
    img = np.zeros((h, w, 3), np.float32)
    _PAINTERS[scene](rng, img, int(h * rng.uniform(0.5, 0.64)))  # floor from this row down
    return np.clip(img, 0, 255).astype(np.uint8)


class Backdrops:
    """The plates of every camera (painted on first use), and cropping backgrounds from them."""

    def __init__(self, scenes: list[str], seed: int, height: int, width: int) -> None:
        self.scenes, self.seed = scenes, seed
        self.h, self.w = height, width
        self.ph, self.pw = round(height * 1.15), 3 * width
        self._plates: dict[tuple[int, int], np.ndarray] = {}

    def plate(self, cam: int, plate: int) -> np.ndarray:
        """Plate ``plate`` of camera ``cam`` (1-based), (1.15 H, 3 W, 3) uint8."""
        key = (cam, plate % PLATES_PER_CAMERA)
        if key not in self._plates:
            rng = seeds.rng(self.seed, seeds.PLATE, cam - 1, key[1])
            self._plates[key] = paint_plate(self.scenes[cam - 1], rng, self.ph, self.pw)
        return self._plates[key]

    def crop(self, cam: int, plate: int, x: float, y: float, mirror: bool) -> np.ndarray:
        """A fresh (H, W, 3) background: camera ``cam`` (1-based), offsets ``x, y`` in [0, 1]."""
        src = self.plate(cam, plate)
        x0 = round(float(np.clip(x, 0.0, 1.0)) * (self.pw - self.w))
        y0 = round(float(np.clip(y, 0.0, 1.0)) * (self.ph - self.h))
        out = src[y0 : y0 + self.h, x0 : x0 + self.w]
        return np.ascontiguousarray(out[:, ::-1] if mirror else out)
