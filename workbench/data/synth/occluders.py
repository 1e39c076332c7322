"""Things between the camera and the person: poles, boxes and bins, bushes, bicycles, railings
and other pedestrians. They are drawn after the person in the canvas' occluder mode, so the
pixels they cover become background in the part mask and keypoints under them get visibility 1.
All coordinates here are pixels (the canvas is placed with unit scale).
"""

from __future__ import annotations

import numpy as np

from workbench.data.synth.body import Pose, build_skeleton
from workbench.data.synth.draw import Canvas, ellipse, rounded_rect, shade
from workbench.data.synth.identity import sample_identity
from workbench.data.synth.render import paint_person

KINDS = ("pole", "box", "bush", "bicycle", "railing", "pedestrian")
_PROBS = (0.22, 0.2, 0.15, 0.13, 0.12, 0.18)


def _colour(rng: np.random.Generator, options: tuple) -> tuple[int, int, int]:
    c = np.asarray(options[int(rng.integers(len(options)))], float) * rng.uniform(0.85, 1.1)
    return tuple(int(v) for v in np.clip(c, 0, 255))  # type: ignore[return-value]


def _pole(canvas: Canvas, rng: np.random.Generator, x0: float, x1: float) -> None:
    """A lamp post or sign pole over the full height, with a highlight."""
    h, w = canvas.image.shape[:2]
    pw, cx = w * rng.uniform(0.05, 0.11), rng.uniform(x0, x1)
    col = _colour(rng, ((120, 120, 125), (60, 90, 60), (40, 40, 40), (170, 170, 165)))
    canvas.fill(rounded_rect(cx, h / 2, pw / 2, h, 0), col, 0, 0)
    canvas.fill(rounded_rect(cx - pw / 4, h / 2, pw / 10, h, 0), shade(col, 1.3), 0, 0)


def _box(canvas: Canvas, rng: np.random.Generator, x0: float, x1: float) -> None:
    """A bin or crate standing on the ground at one side of the person, with a lid."""
    h, w = canvas.image.shape[:2]
    bh, bw = h * rng.uniform(0.15, 0.35), w * rng.uniform(0.35, 0.75)
    cx = rng.choice((x0, x1)) + rng.uniform(-0.15, 0.15) * w
    col = _colour(rng, ((60, 110, 160), (60, 120, 60), (90, 90, 95), (40, 60, 150)))
    canvas.fill(rounded_rect(cx, h - bh / 2, bw / 2, bh / 2, 2), col, 0, 0)
    lid = rounded_rect(cx, h - 0.94 * bh, bw / 2 + 1, 0.06 * bh, 1)
    canvas.fill(lid, shade(col, 1.2), 0, 0)


def _bush(canvas: Canvas, rng: np.random.Generator, x0: float, x1: float) -> None:
    """A clump of leafy ellipses over the legs."""
    h, w = canvas.image.shape[:2]
    cx, top = rng.uniform(x0, x1), h * rng.uniform(0.7, 0.82)
    for _ in range(int(rng.integers(6, 11))):
        c = np.array([cx + rng.normal(0, 0.18 * w), rng.uniform(top, h)])
        r = w * rng.uniform(0.08, 0.16)
        col = _colour(rng, ((50, 120, 60), (40, 100, 50), (60, 140, 80)))
        canvas.fill(ellipse(c, r, r * rng.uniform(0.7, 1.0)), col, 0, 0)


def _bicycle(canvas: Canvas, rng: np.random.Generator, x0: float, x1: float) -> None:
    """A parked bicycle in front of the legs: two wheels and a frame (thin occluders)."""
    h = canvas.image.shape[0]
    r = h * rng.uniform(0.1, 0.14)
    yb = h - rng.uniform(0.0, 0.05) * h - r  # wheel axles
    xa = rng.uniform(x0 - r, max(x0 - r, x1 - 2 * r))  # a person narrower than r: at x0 - r
    xb = xa + 2.3 * r
    col = _colour(rng, ((30, 30, 30), (40, 40, 160), (150, 80, 30), (170, 170, 170)))
    px = max(1, round(h / 110))
    for xc in (xa, xb):
        canvas.ring(np.array([xc, yb]), r, (30, 30, 30), 2 * px)
    frame = [[xa, yb], [xa + r, yb - 1.1 * r], [xb - 0.3 * r, yb - 1.1 * r], [xb, yb],
             [xa + 1.2 * r, yb], [xa + r, yb - 1.1 * r]]  # fmt: skip
    canvas.stroke(np.array(frame), col, 2 * px)
    canvas.stroke(np.array([[xa + 0.9 * r, yb - 1.4 * r], [xa + r, yb - 1.1 * r]]), col, 2 * px)


def _railing(canvas: Canvas, rng: np.random.Generator, x0: float, x1: float) -> None:
    """A handrail across the image at waist height, with one or two posts."""
    h, w = canvas.image.shape[:2]
    y, t = h * rng.uniform(0.45, 0.65), h * rng.uniform(0.012, 0.022)
    col = _colour(rng, ((150, 150, 150), (40, 40, 40), (60, 100, 140)))
    canvas.fill(rounded_rect(w / 2, y, w, t, 0), col, 0, 0)
    for x in rng.uniform(0, w, int(rng.integers(1, 3))):
        canvas.fill(rounded_rect(x, (y + h) / 2, t * 0.8, (h - y) / 2, 0), col, 0, 0)


def _pedestrian(canvas: Canvas, rng: np.random.Generator, x0: float, x1: float) -> None:
    """Another pedestrian, nearer the camera, at the left or right edge."""
    h, w = canvas.image.shape[:2]
    other = sample_identity(rng, 0)
    yaw = float(rng.choice((0.0, 180.0, 90.0, -90.0)) + rng.uniform(-15, 15))
    pose = Pose(yaw=yaw, phase=float(rng.uniform(0, 2 * np.pi)))
    s = h * rng.uniform(0.95, 1.25)
    side = rng.choice((-1.0, 1.0))
    canvas.place(s, s, w / 2 + side * w * rng.uniform(0.5, 0.75), h * rng.uniform(-0.05, 0.1))
    paint_person(canvas, other, build_skeleton(other.shape, pose))


_DRAW = {"pole": _pole, "box": _box, "bush": _bush, "bicycle": _bicycle, "railing": _railing,
         "pedestrian": _pedestrian}  # fmt: skip
assert tuple(_DRAW) == KINDS


def add_occluder(
    canvas: Canvas, rng: np.random.Generator, box: tuple[float, float, float, float]
) -> str:
    """Draw one random occluder overlapping the person's pixel box ``(x0, y0, x1, y1)``."""
    kind = KINDS[int(rng.choice(len(KINDS), p=_PROBS))]
    canvas.mode = "occluder"
    canvas.place(1.0, 1.0, 0.0, 0.0)
    _DRAW[kind](canvas, rng, box[0], box[2])
    canvas.mode = "person"
    return kind


def add_passerby(canvas: Canvas, rng: np.random.Generator) -> None:
    """A smaller pedestrian *behind* the person (background clutter; not in the mask)."""
    h, w = canvas.image.shape[:2]
    other = sample_identity(rng, 0)
    pose = Pose(yaw=float(rng.choice((0.0, 180.0, 90.0, -90.0))), phase=float(rng.uniform(0, 6.3)))
    s = h * rng.uniform(0.45, 0.7)
    canvas.mode = "background"
    canvas.place(s, s, w * rng.choice((rng.uniform(0.0, 0.25), rng.uniform(0.75, 1.0))),
                 h * rng.uniform(0.3, 0.55) - 0.5 * s)  # fmt: skip
    paint_person(canvas, other, build_skeleton(other.shape, pose))
    canvas.mode = "person"


def ground_shadow(image: np.ndarray, feet: np.ndarray, width: float, strength: float) -> None:
    """Darken an ellipse under the feet (in place): ``feet`` (x, y) pixels, ``width`` pixels."""
    h, w = image.shape[:2]
    cx, cy = float(feet[0]) + 0.25 * width, float(feet[1])
    ax, ay = 0.9 * width, 0.12 * width
    x0, x1 = max(0, int(cx - ax)), min(w, int(cx + ax) + 1)
    y0, y1 = max(0, int(cy - ay)), min(h, int(cy + ay) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    inside = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0
    roi = image[y0:y1, x0:x1]
    roi[inside] = (roi[inside] * (1.0 - strength)).astype(np.uint8)
