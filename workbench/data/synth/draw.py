"""Drawing surface: a BGR image and a part-id map painted together, plus convex shape builders.

Every shape is a convex polygon in *body units* (see ``body.py``), mapped to pixels by the
canvas' affine placement and filled with OpenCV at 1/16-pixel precision (``shift = 4``):
anti-aliased in the image, hard-edged in the id map. Each fill gets a fresh part id; the id
map therefore is a z-buffer of the painter's algorithm, and at the end two look-up tables turn
it into part labels (``annotations.PART_LABELS``) and body chains (for keypoint visibility).
Occluders write ``OCCLUDER`` into the id map; background clutter does not touch it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SHIFT = 4
ONE = float(1 << SHIFT)
OCCLUDER = 255  # id-map value of anything in front of the person
AA_INSET = 0.6  # pixels; see Canvas.fill

# body chains: which keypoints a part may show (see render.KEYPOINT_CHAINS)
CHAIN_NONE, CHAIN_HEAD, CHAIN_TORSO, CHAIN_LARM, CHAIN_RARM = 0, 1, 2, 3, 4
CHAIN_LLEG, CHAIN_RLEG, CHAIN_SKIRT, CHAIN_ITEM = 5, 6, 7, 8

_UNIT = np.linspace(0.0, 1.0, 7)  # arc samples for capsule ends
_RING = np.linspace(0.0, 2 * np.pi, 24, endpoint=False)
_RING_COS, _RING_SIN = np.cos(_RING), np.sin(_RING)


class Canvas:
    """``image`` (H, W, 3) uint8 BGR and ``ids`` (H, W) uint8, drawn with one placement.

    Placement: pixel = (x * sx + ox, y * sy + oy) with (x, y) in body units; pixel centres
    sit at integer coordinates (OpenCV's convention). ``mode`` is ``"person"`` (fills get part
    ids), ``"occluder"`` (fills write ``OCCLUDER``) or ``"background"`` (id map untouched).
    """

    def __init__(self, image: np.ndarray, ids: np.ndarray | None = None) -> None:
        self.image = image
        self.ids = np.zeros(image.shape[:2], np.uint8) if ids is None else ids
        self.labels: list[int] = [0]  # part id -> part label
        self.chains: list[int] = [CHAIN_NONE]  # part id -> body chain
        self.mode = "person"
        self.outline = 0.62  # outline colour = fill * outline (0 disables outlines)
        self.place(1.0, 1.0, 0.0, 0.0)

    def place(self, sx: float, sy: float, ox: float, oy: float) -> None:
        """Set the body-to-image scale ``(sx, sy)`` and offset ``(ox, oy)`` of the next drawing."""
        self._scale = np.array([sx, sy]) * ONE
        self._offset = np.array([ox, oy]) * ONE
        self.sx, self.sy, self.ox, self.oy = sx, sy, ox, oy

    def to_pixels(self, pts: np.ndarray) -> np.ndarray:
        """(N, 2) body units -> (N, 2) pixel coordinates (float)."""
        return np.asarray(pts) * (self.sx, self.sy) + (self.ox, self.oy)

    def fill(
        self,
        pts: np.ndarray,
        colour: tuple[int, int, int],
        label: int,
        chain: int,
        aa: np.ndarray | None = None,
    ) -> None:
        """Fill the convex polygon ``pts`` (N, 2) in body units.

        The id map gets the polygon's pixel centres (hard edges). The image gets an anti-aliased
        fill of the polygon inset by ``AA_INSET`` pixels, because OpenCV's anti-aliased fill
        spreads about that far beyond the true edge; so image and mask edges coincide to a
        fraction of a pixel. The outline is drawn on the same inset polygon (inside the mask).
        ``aa``: that inset polygon in body units, when the caller can build it more cheaply.
        """
        px = pts * (self.sx, self.sy) + (self.ox, self.oy)  # (N, 2) pixels
        q = np.rint(px * ONE).astype(np.int32)
        if aa is None:
            qa = np.rint(inset(px, AA_INSET) * ONE).astype(np.int32)
        else:
            qa = np.rint(aa * self._scale + self._offset).astype(np.int32)
        cv2.fillConvexPoly(self.image, qa, colour, cv2.LINE_AA, SHIFT)
        if self.mode == "person":
            if len(self.labels) >= OCCLUDER:
                raise RuntimeError("too many parts for a uint8 id map")
            cv2.fillConvexPoly(self.ids, q, len(self.labels), cv2.LINE_8, SHIFT)
            self.labels.append(label)
            self.chains.append(chain)
        elif self.mode == "occluder":
            cv2.fillConvexPoly(self.ids, q, OCCLUDER, cv2.LINE_8, SHIFT)
        if self.outline:
            dark = tuple(int(c * self.outline) for c in colour)
            cv2.polylines(self.image, [qa], True, dark, 1, cv2.LINE_AA, SHIFT)

    def capsule(
        self, p0: np.ndarray, p1: np.ndarray, r0: float, r1: float,
        colour: tuple[int, int, int], label: int, chain: int,
    ) -> None:  # fmt: skip
        """Fill ``capsule(p0, p1, r0, r1)`` (the inset for anti-aliasing is a thinner capsule)."""
        outer, inner = _capsule_pair(p0, p1, r0, r1, AA_INSET / self.sy)
        self.fill(outer, colour, label, chain, aa=inner)

    def ellipse(
        self,
        c: np.ndarray,
        rx: float,
        ry: float,
        colour: tuple[int, int, int],
        label: int,
        chain: int,
    ) -> None:
        """Fill ``ellipse(c, rx, ry)`` (the inset for anti-aliasing is a smaller ellipse)."""
        d = AA_INSET / self.sy
        inner = ellipse(c, max(rx - d, 0.5 * rx), max(ry - d, 0.5 * ry))
        self.fill(ellipse(c, rx, ry), colour, label, chain, aa=inner)

    def stroke(
        self, pts: np.ndarray, colour: tuple[int, int, int], px: int, closed: bool = False
    ) -> None:
        """A polyline ``px`` pixels thick; in occluder mode it also occludes the id map."""
        q = np.rint(np.asarray(pts) * self._scale + self._offset).astype(np.int32)
        cv2.polylines(self.image, [q], closed, colour, px, cv2.LINE_AA, SHIFT)
        if self.mode == "occluder":
            cv2.polylines(self.ids, [q], closed, OCCLUDER, px, cv2.LINE_8, SHIFT)

    def ring(self, centre: np.ndarray, r: float, colour: tuple[int, int, int], px: int) -> None:
        """A circle outline (a wheel); in occluder mode it also occludes the id map."""
        c = tuple(int(v) for v in np.rint(np.asarray(centre) * self._scale + self._offset))
        rr = round(r * self.sx * ONE)
        cv2.circle(self.image, c, rr, colour, px, cv2.LINE_AA, SHIFT)
        if self.mode == "occluder":
            cv2.circle(self.ids, c, rr, OCCLUDER, px, cv2.LINE_8, SHIFT)

    def label_map(self) -> np.ndarray:
        """(H, W) uint8 part labels: the id map through the label table; occluders -> 0."""
        lut = np.zeros(256, np.uint8)
        lut[: len(self.labels)] = self.labels
        return lut[self.ids]

    def chain_at(self, x: int, y: int) -> int:
        """The keypoint chain drawn at pixel (x, y): −1 for an occluder, ``CHAIN_NONE`` for none."""
        pid = int(self.ids[y, x])
        if pid == OCCLUDER:
            return -1
        return self.chains[pid] if pid < len(self.chains) else CHAIN_NONE


def inset(px: np.ndarray, d: float) -> np.ndarray:
    """Move each edge of a convex polygon (pixels) inwards by ``d``; tiny polygons stay as they are.

    Vertex i moves along the sum of the inward normals of its two edges (scaled so that both
    edges move by exactly ``d``). Plain Python: for ~14 vertices it is 2x faster than numpy.
    """
    pts = px.tolist()
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if max(xs) - min(xs) < 6 * d or max(ys) - min(ys) < 6 * d:
        return px
    k = len(pts)
    area2 = 0.0
    normals: list[tuple[float, float] | None] = []  # inward normal of edge i (vertex i -> i + 1)
    for i in range(k):
        (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % k]
        area2 += x0 * y1 - x1 * y0
        length = math.hypot(x1 - x0, y1 - y0)
        normals.append((-(y1 - y0) / length, (x1 - x0) / length) if length > 1e-6 else None)
    s = d if area2 > 0 else -d
    prev = next(n for n in reversed(normals) if n is not None)
    out = []
    for (x, y), n in zip(pts, normals, strict=True):
        if n is None:  # repeated vertex
            continue
        den = max(1.0 + prev[0] * n[0] + prev[1] * n[1], 0.3)
        out.append((x + s * (prev[0] + n[0]) / den, y + s * (prev[1] + n[1]) / den))
        prev = n
    return np.array(out)


def capsule(p0: np.ndarray, p1: np.ndarray, r0: float, r1: float) -> np.ndarray:
    """Convex hull of two discs (centre p0 radius r0, p1 radius r1), as a (14, 2) polygon."""
    return _capsule_pair(p0, p1, r0, r1, 0.0)[0]


def _capsule_pair(
    p0: np.ndarray, p1: np.ndarray, r0: float, r1: float, shrink: float
) -> tuple[np.ndarray, np.ndarray]:
    """The capsule and the same capsule with both radii reduced by ``shrink`` (its inset)."""
    x0, y0, x1, y1 = float(p0[0]), float(p0[1]), float(p1[0]), float(p1[1])
    length = math.hypot(x1 - x0, y1 - y0)
    s0, s1 = max(r0 - shrink, 0.5 * r0), max(r1 - shrink, 0.5 * r1)
    if length < 1e-9:
        r, s = max(r0, r1), max(s0, s1)
        return ellipse(p0, r, r), ellipse(p0, s, s)
    a0 = math.atan2(y1 - y0, x1 - x0)
    delta = math.asin(max(-0.99, min(0.99, (r0 - r1) / length)))
    # outer tangents touch both discs where the normal makes 90 - delta degrees with p0 -> p1;
    # end p1 keeps the arc a0 +- (90 - delta), end p0 the rest
    half = math.pi / 2 - delta
    t = np.empty(14)
    t[:7] = (a0 - half) + _UNIT * (2 * half)
    t[7:] = (a0 + half) + _UNIT * (2 * math.pi - 2 * half)
    unit = np.empty((14, 2))  # (14, 2) directions from the disc centres
    unit[:, 0], unit[:, 1] = np.cos(t), np.sin(t)
    radii = np.array([[r1] * 7 + [r0] * 7, [s1] * 7 + [s0] * 7])  # (2, 14): capsule, inset
    centre = np.array([[x1, y1]] * 7 + [[x0, y0]] * 7)  # (14, 2)
    out = centre + radii[:, :, None] * unit  # (2, 14, 2)
    return out[0], out[1]


def ellipse(c: np.ndarray, rx: float, ry: float, angle: float = 0.0) -> np.ndarray:
    """(24, 2) polygon of an ellipse centred at ``c``, rotated by ``angle`` radians."""
    x, y = rx * _RING_COS, ry * _RING_SIN
    if angle:
        ca, sa = np.cos(angle), np.sin(angle)
        x, y = x * ca - y * sa, x * sa + y * ca
    return np.stack([x + c[0], y + c[1]], 1)


def rounded_rect(cx: float, cy: float, hw: float, hh: float, r: float) -> np.ndarray:
    """(8, 2) octagon: a rectangle of half sizes hw, hh with corners cut by ``r``."""
    r = min(r, hw, hh)
    return np.array(
        [
            [cx - hw + r, cy - hh], [cx + hw - r, cy - hh], [cx + hw, cy - hh + r],
            [cx + hw, cy + hh - r], [cx + hw - r, cy + hh], [cx - hw + r, cy + hh],
            [cx - hw, cy + hh - r], [cx - hw, cy - hh + r],
        ]
    )  # fmt: skip


def clip(poly: np.ndarray, normal: tuple[float, float], offset: float) -> np.ndarray:
    """Part of a convex polygon where ``normal . p <= offset`` (Sutherland-Hodgman, one edge)."""
    nx, ny = float(normal[0]), float(normal[1])
    pts = poly.tolist()
    dist = [nx * x + ny * y - offset for x, y in pts]  # <= 0 inside
    out = []
    k = len(pts)
    for i in range(k):
        (ax, ay), (bx, by) = pts[i], pts[(i + 1) % k]
        sa, sb = dist[i], dist[(i + 1) % k]
        if sa <= 0:
            out.append((ax, ay))
        if (sa <= 0) != (sb <= 0):
            t = sa / (sa - sb)
            out.append((ax + (bx - ax) * t, ay + (by - ay) * t))
    return np.asarray(out, float).reshape(-1, 2)


def shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    """Scale a BGR colour (for limbs on the far side, pockets, soles)."""
    return tuple(int(min(255, c * factor)) for c in colour)  # type: ignore[return-value]
