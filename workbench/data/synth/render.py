"""Paint one person (body, clothes, hair, hat, carried items) and label its keypoints.

Painter's algorithm: every part gets a sort key and is drawn far-to-near. Limbs and legs sort by
their projected depth; a few parts have per-view keys (a backpack is behind the torso in front
view, over it in back view and behind it, sticking out, in side views; long hair likewise).
Part labels follow ``annotations.PART_LABELS`` (arms and hands count as upper body, the neck and
hair as head, bare legs as lower body).

Keypoint visibility (COCO): 0 outside the image (x = y = 0), 1 occluded, 2 visible. A point is
occluded when (a) it faces away from the camera (``Skeleton.coco_self_visible``: face points in
back view, the far shoulder/hip in side views), (b) a part of another body chain is on top of it
in the z-buffer (the far wrist behind the torso, a knee behind a handbag), or (c) an occluder
covers it. Coordinates are continuous pixel coordinates (pixel ``i`` spans ``[i, i + 1)``, see
``workbench.data.transforms``), i.e. the drawing coordinate + 0.5.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from workbench.data.annotations import PART_LABELS
from workbench.data.synth import draw as dr
from workbench.data.synth.body import COCO_JOINTS, J, Skeleton
from workbench.data.synth.draw import Canvas, clip, ellipse, rounded_rect, shade
from workbench.data.synth.identity import Identity

HEAD, UPPER, LOWER, SHOES, BACKPACK, BAG, HANDBAG = 1, 2, 3, 4, 5, 6, 7
assert [PART_LABELS[i] for i in (HEAD, UPPER, LOWER, SHOES, BACKPACK, BAG, HANDBAG)] == [
    "head", "upper body", "lower body", "shoes", "backpack", "bag", "handbag",
]  # fmt: skip

_TORSO, _SKIRT = frozenset({dr.CHAIN_TORSO}), frozenset({dr.CHAIN_SKIRT})
_LARM, _RARM = frozenset({dr.CHAIN_LARM}), frozenset({dr.CHAIN_RARM})
_LLEG, _RLEG = frozenset({dr.CHAIN_LLEG}), frozenset({dr.CHAIN_RLEG})
# which body chains may lie on top of each COCO keypoint while it still counts as visible
KEYPOINT_CHAINS: tuple[frozenset[int], ...] = (
    *[frozenset({dr.CHAIN_HEAD})] * 5,
    _TORSO | _LARM, _TORSO | _RARM, _LARM, _RARM, _LARM, _RARM,
    _TORSO | _LLEG | _SKIRT, _TORSO | _RLEG | _SKIRT,
    _LLEG | _SKIRT, _RLEG | _SKIRT, _LLEG | _SKIRT, _RLEG | _SKIRT,
)  # fmt: skip
_COCO_INDEX = np.array([J[n] for n in COCO_JOINTS])

Part = tuple[float, Callable[[], None]]


class _Painter:
    """Builds the list of (sort key, draw call) for one identity in one pose."""

    def __init__(self, canvas: Canvas, ident: Identity, sk: Skeleton) -> None:
        self.cv, self.id, self.sk = canvas, ident, sk
        self.a = ident.attributes
        self.c, self.s = sk.cos, sk.sin
        self.view = sk.pose.view
        self.side = self.view in ("left", "right")
        self.k = ident.shape.limb
        self.parts: list[Part] = []

    def add(self, key: float, fn: Callable[[], None]) -> None:
        self.parts.append((key, fn))

    def paint(self) -> None:
        self.legs()
        self.lower_garment()
        self.torso()
        self.arms()
        self.head()
        if self.a["backpack"]:
            self.backpack()
        if self.a["bag"]:
            self.bag()
        for _, fn in sorted(self.parts, key=lambda t: t[0]):
            fn()

    # ---- helpers -------------------------------------------------------------------------
    def P(self, name: str) -> np.ndarray:
        return self.sk.xy[J[name]]

    def far_shade(self, side: str) -> float:
        """Far-side limbs in side views are a little darker (a cheap depth cue)."""
        return 0.82 if self.side and self.sk.d(f"{side}_sho") < 0 else 1.0

    # ---- legs and lower garment ------------------------------------------------------------
    def legs(self) -> None:
        for side, chain in (("l", dr.CHAIN_LLEG), ("r", dr.CHAIN_RLEG)):
            self.add(-3.0 + self.sk.d(f"{side}_knee"), lambda s=side, ch=chain: self._leg(s, ch))

    def _leg(self, side: str, chain: int) -> None:
        cv, k, ident = self.cv, self.k, self.id
        f = self.far_shade(side)
        hip, knee, ank = self.P(f"{side}_hip"), self.P(f"{side}_knee"), self.P(f"{side}_ank")
        pants = self.a["clothes"] == 1 and self.a["down"] == 0
        skin, lower = shade(ident.skin, f), shade(ident.lower, f)
        if pants:
            cv.capsule(hip, knee, 0.05 * k, 0.041 * k, lower, LOWER, chain)
            cv.capsule(knee, ank, 0.041 * k, 0.034 * k, lower, LOWER, chain)
        else:
            cv.capsule(hip, knee, 0.046 * k, 0.036 * k, skin, LOWER, chain)
            cv.capsule(knee, ank, 0.035 * k, 0.026 * k, skin, LOWER, chain)
            if self.a["clothes"] == 1:  # shorts
                end = hip + 0.55 * (knee - hip)
                cv.capsule(hip, end, 0.054 * k, 0.05 * k, lower, LOWER, chain)
        heel, toe = self.P(f"{side}_heel"), self.P(f"{side}_toe")
        cv.capsule(heel, toe, 0.025 * k, 0.022 * k, shade(ident.shoes, f), SHOES, chain)

    def _pelvis_half_width(self) -> float:
        return self.sk.extent(self.id.shape.hip + 0.05 * self.k, self.id.shape.depth * 1.05)

    def lower_garment(self) -> None:
        pel = self.P("pelvis")
        y_hip = self.P("l_hip")[1]
        pw = self._pelvis_half_width()
        y_waist = y_hip - 0.065
        colour = self.id.lower
        if self.a["clothes"] == 1:
            cx = pel[0]
            poly = np.array(
                [
                    [cx - 0.95 * pw, y_waist], [cx + 0.95 * pw, y_waist], [cx + pw, y_hip],
                    [cx + 0.3 * pw, y_hip + 0.07], [cx - 0.3 * pw, y_hip + 0.07], [cx - pw, y_hip],
                ]
            )  # fmt: skip
            self.add(-2.0, lambda: self.cv.fill(poly, colour, LOWER, dr.CHAIN_TORSO))
            return
        # dress / skirt: a trapezoid over both legs, wide enough for the stride
        long = self.a["down"] == 0
        hem = (0.5 * (self.P("l_ank")[1] + self.P("r_ank")[1]) - 0.035) if long else y_hip + 0.2
        ref = "ank" if long else "knee"
        reach = max(abs(self.P(f"l_{ref}")[0] - pel[0]), abs(self.P(f"r_{ref}")[0] - pel[0]))
        hw = max(pw * 1.25, 0.8 * reach + 0.045 * self.k)
        cx = pel[0]
        poly = np.array(
            [
                [cx - 0.95 * pw, y_waist], [cx + 0.95 * pw, y_waist], [cx + hw, hem],
                [cx + 0.5 * hw, hem + 0.012], [cx - 0.5 * hw, hem + 0.012], [cx - hw, hem],
            ]
        )  # fmt: skip
        self.add(-1.5, lambda: self.cv.fill(poly, colour, LOWER, dr.CHAIN_SKIRT))

    # ---- torso ------------------------------------------------------------------------------
    def torso_polygon(self) -> np.ndarray:
        sh = self.id.shape
        sw = self.sk.extent(sh.shoulder + 0.022 * self.k, sh.depth)
        hw = max(self._pelvis_half_width() * (1.08 if sh.female else 1.0), 0.7 * sw)
        top, bot = self.P("neck_base"), self.P("pelvis")
        y_sho = self.P("l_sho")[1]
        y_hem = self.P("l_hip")[1] + 0.03
        lean = 0.012 * self.s  # chest a little forward in side views
        return np.array(
            [
                [top[0] - 0.5 * sw, y_sho - 0.032], [top[0] + 0.5 * sw, y_sho - 0.032],
                [top[0] + sw, y_sho + 0.012], [top[0] + lean + 0.96 * sw, y_sho + 0.1],
                [bot[0] + hw, y_hem], [bot[0] - hw, y_hem],
                [top[0] + lean - 0.96 * sw, y_sho + 0.1], [top[0] - sw, y_sho + 0.012],
            ]
        )  # fmt: skip

    def torso(self) -> None:
        poly = self.torso_polygon()
        ident = self.id
        self.add(0.0, lambda: self.cv.fill(poly, ident.upper, UPPER, dr.CHAIN_TORSO))
        top, base, k = self.P("neck_top"), self.P("neck_base"), self.k

        def neck() -> None:
            self.cv.capsule(top, base, 0.024 * k, 0.026 * k, ident.skin, HEAD, dr.CHAIN_HEAD)

        self.add(-0.5, neck)
        if ident.pattern == "stripes":
            self.add(0.01, lambda: self._stripes(poly))
        elif ident.pattern == "logo" and self.c > 0.35:
            self.add(0.02, lambda: self._logo(poly))

    def _stripes(self, poly: np.ndarray) -> None:
        ident = self.id
        colour = shade(ident.upper, 0.45)  # stripes: 45% garment colour + 55% accent
        colour = tuple(c + int(0.55 * a) for c, a in zip(colour, ident.accent, strict=True))
        y0, y1 = float(poly[:, 1].min()) + 0.05, float(poly[:, 1].max())
        period = ident.stripe_period
        outline, self.cv.outline = self.cv.outline, 0.0
        for y in np.arange(y0, y1 - 0.3 * period, period):
            band = clip(clip(poly, (0.0, -1.0), -y), (0.0, 1.0), y + 0.35 * period)
            if len(band) >= 3:
                self.cv.fill(band, colour, UPPER, dr.CHAIN_TORSO)
        self.cv.outline = outline

    def _logo(self, poly: np.ndarray) -> None:
        ident = self.id
        top = self.P("neck_base")
        width = float(poly[:, 0].max() - poly[:, 0].min())
        r = 0.5 * ident.logo_size * width * 0.55
        centre = np.array([top[0] + 0.02 * self.s, self.P("l_sho")[1] + 0.1])
        if ident.logo_round:
            shape = ellipse(centre, r * self.c, r)
        else:
            shape = rounded_rect(centre[0], centre[1], r * self.c, 0.75 * r, 0.2 * r)
        self.cv.fill(shape, ident.accent, UPPER, dr.CHAIN_TORSO)

    # ---- arms -------------------------------------------------------------------------------
    def arms(self) -> None:
        for side, chain, sign in (("l", dr.CHAIN_LARM, 1), ("r", dr.CHAIN_RARM, -1)):
            if self.side:
                key = 4.0 if self.sk.d(f"{side}_sho") > 0 else -4.0
            else:
                key = 1.0 + self.sk.d(f"{side}_elb")
            self.add(key, lambda s=side, ch=chain: self._arm(s, ch))
            if self.a["handbag"] and self.id.handbag_hand == sign:
                self.add(key + 0.05, lambda s=side, ch=chain: self._handbag(s, ch))

    def _arm(self, side: str, chain: int) -> None:
        cv, k, ident = self.cv, self.k, self.id
        f = self.far_shade(side)
        sho, elb = self.P(f"{side}_sho"), self.P(f"{side}_elb")
        wri, hand = self.P(f"{side}_wri"), self.P(f"{side}_hand")
        skin, upper = shade(ident.skin, f), shade(ident.upper, f)
        if self.a["up"] == 0:  # long sleeves
            cv.capsule(sho, elb, 0.036 * k, 0.031 * k, upper, UPPER, chain)
            cv.capsule(elb, wri, 0.031 * k, 0.026 * k, upper, UPPER, chain)
        else:
            cv.capsule(sho, elb, 0.031 * k, 0.026 * k, skin, UPPER, chain)
            cv.capsule(elb, wri, 0.026 * k, 0.021 * k, skin, UPPER, chain)
            end = sho + 0.45 * (elb - sho)
            cv.capsule(sho, end, 0.035 * k, 0.033 * k, upper, UPPER, chain)
        cv.capsule(wri, hand, 0.02 * k, 0.021 * k, skin, UPPER, chain)

    def _handbag(self, side: str, chain: int) -> None:
        hand = self.P(f"{side}_hand")
        hw = self.sk.extent(0.026, 0.075)
        top, h = hand[1] + 0.045, 0.11
        x = hand[0]
        body = np.array(
            [[x - 0.8 * hw, top], [x + 0.8 * hw, top], [x + hw, top + h], [x - hw, top + h]]
        )
        cv, colour = self.cv, self.id.handbag
        for dx in (-0.55 * hw, 0.55 * hw):  # the two handles, from the fist to the bag's top
            end = np.array([x + dx, top + 0.005])
            cv.capsule(hand, end, 0.006, 0.006, shade(colour, 0.7), HANDBAG, dr.CHAIN_ITEM)
        cv.fill(body, colour, HANDBAG, dr.CHAIN_ITEM)
        cv.ellipse(hand, 0.02 * self.k, 0.02 * self.k, self.id.skin, UPPER, chain)

    # ---- head, hair, hat ------------------------------------------------------------------
    def head(self) -> None:
        sh, ident = self.id.shape, self.id
        hc = self.P("head")
        rx = self.sk.extent(sh.head_rx, sh.head_rx * 1.12)
        ry = sh.head_ry
        self.add(3.0, lambda: self.cv.ellipse(hc, rx, ry, ident.skin, HEAD, dr.CHAIN_HEAD))
        self.add(3.01, lambda: self._face(hc, rx, ry))
        if self.a["hair"]:
            key = {"front": -9.0, "back": 3.05}.get(self.view, 2.9)
            self.add(key, lambda: self._long_hair(hc, rx, ry))
        self.add(3.1, lambda: self._hair_cap(hc, rx, ry))
        if self.a["hat"]:
            self.add(3.2, lambda: self._hat(hc, rx, ry))

    def _face(self, hc: np.ndarray, rx: float, ry: float) -> None:
        cv, skin = self.cv, self.id.skin
        vis = self.sk.coco_self_visible()
        dark = (40, 40, 50)
        outline, cv.outline = cv.outline, 0.0
        if self.side:  # nose profile and the near ear
            nose = self.P("nose")
            base = np.array([hc[0] + 0.6 * (nose[0] - hc[0]), nose[1] - 0.018])
            cv.capsule(base, nose, 0.012, 0.008, skin, HEAD, dr.CHAIN_HEAD)
        for k, name in ((1, "l_eye"), (2, "r_eye")):
            if vis[k] and self.c > -0.2:
                cv.ellipse(self.P(name), 0.007, 0.005, dark, HEAD, dr.CHAIN_HEAD)
        if self.c > 0.4:
            m = np.array([hc[0] + 0.05 * self.s, hc[1] + 0.036])
            cv.ellipse(m, 0.011 * self.c, 0.003, shade(skin, 0.7), HEAD, dr.CHAIN_HEAD)
        cv.outline = outline

    def _hair_cap(self, hc: np.ndarray, rx: float, ry: float) -> None:
        # keep the part of a slightly larger head ellipse above a hairline that runs from the
        # forehead (high) to the nape (low): flat in front/back views, tilted in side views
        fx = self.s  # image-x component of the facing direction
        level = hc[1] + ry * (0.15 - 0.55 * self.c)
        slope = fx * 0.55 * ry / rx
        cap = clip(ellipse(hc, rx * 1.07, ry * 1.06), (slope, 1.0), level + slope * hc[0])
        if len(cap) >= 3:
            self.cv.fill(cap, self.id.hair, HEAD, dr.CHAIN_HEAD)

    def _long_hair(self, hc: np.ndarray, rx: float, ry: float) -> None:
        w = rx * 1.08
        cx = hc[0] - 0.35 * self.s * rx
        bottom = self.P("l_sho")[1] + self.id.hair_length
        poly = np.array(
            [[cx - w, hc[1] - 0.3 * ry], [cx + w, hc[1] - 0.3 * ry], [cx + 0.9 * w, bottom],
             [cx + 0.4 * w, bottom + 0.02], [cx - 0.4 * w, bottom + 0.02], [cx - 0.9 * w, bottom]]
        )  # fmt: skip
        self.cv.fill(poly, self.id.hair, HEAD, dr.CHAIN_HEAD)

    def _hat(self, hc: np.ndarray, rx: float, ry: float) -> None:
        cv, colour = self.cv, self.id.hat
        crown = clip(ellipse(hc - (0, 0.1 * ry), rx * 1.1, ry * 1.0), (0.0, 1.0), hc[1] - 0.2 * ry)
        cv.fill(crown, colour, HEAD, dr.CHAIN_HEAD)
        y = hc[1] - 0.22 * ry
        brim = shade(colour, 0.85)
        if self.side:  # a cap's peak pointing where the person looks
            fx = np.sign(self.s)
            p0 = np.array([hc[0] + fx * 0.4 * rx, y])
            p1 = np.array([hc[0] + fx * (rx + 0.04), y + 0.01])
            cv.capsule(p0, p1, 0.011, 0.008, brim, HEAD, dr.CHAIN_HEAD)
        elif self.c > 0:
            cv.ellipse(np.array([hc[0], y]), rx * 1.2, 0.014, brim, HEAD, dr.CHAIN_HEAD)

    # ---- carried items ----------------------------------------------------------------------
    def backpack(self) -> None:
        sh, colour = self.id.shape, self.id.backpack
        y_sho = self.P("l_sho")[1]
        centre, _ = self.sk.project_point(0.0, 0.31, -(sh.depth + 0.045))
        hw = self.sk.extent(0.088 * self.k, 0.05)
        body = rounded_rect(centre[0], centre[1], hw, 0.12, 0.035)
        strap = shade(colour, 0.75)

        def draw_body() -> None:
            self.cv.fill(body, colour, BACKPACK, dr.CHAIN_ITEM)
            if self.view == "back":
                pocket = rounded_rect(centre[0], centre[1] + 0.05, 0.7 * hw, 0.05, 0.02)
                self.cv.fill(pocket, shade(colour, 0.8), BACKPACK, dr.CHAIN_ITEM)

        self.add({"front": -10.0, "back": 2.5}.get(self.view, -3.5), draw_body)
        straps = []  # (top, bottom) of the shoulder straps seen from this side
        if self.view == "front":
            for sx in (-1.0, 1.0):
                x = self.P("neck_base")[0] + sx * 0.55 * sh.shoulder * self.c
                straps.append(
                    ([x, y_sho - 0.02], [x + sx * 0.3 * sh.shoulder * self.c, y_sho + 0.17])
                )
        elif self.side:
            near = "l" if self.sk.d("l_sho") > 0 else "r"
            fx = np.sign(self.s)
            top = self.P(f"{near}_sho") + np.array([0.01 * fx, -0.025])
            straps.append((top, [self.P("pelvis")[0] + 0.3 * hw * fx, y_sho + 0.19]))

        def draw_straps() -> None:
            for a, b in straps:
                r0, r1 = 0.013 * self.k, 0.012 * self.k
                self.cv.capsule(
                    np.asarray(a), np.asarray(b), r0, r1, strap, BACKPACK, dr.CHAIN_ITEM
                )

        self.add(0.5, draw_straps)

    def bag(self) -> None:
        sh, colour, b = self.id.shape, self.id.bag, self.id.bag_shoulder
        y_hip = self.P("l_hip")[1] - self.sk.lift
        centre, depth = self.sk.project_point(-b * (sh.hip + 0.075 * self.k), y_hip + 0.01, 0.01)
        hw = self.sk.extent(0.03, 0.08)
        body = rounded_rect(centre[0], centre[1], hw, 0.06, 0.015)
        z = sh.depth * (0.9 if self.c >= -0.3 else -0.9)
        p0, _ = self.sk.project_point(b * 0.55 * sh.shoulder, 0.17, z)
        p1, _ = self.sk.project_point(-b * (sh.hip + 0.06), y_hip - 0.05, z)

        def draw_strap() -> None:
            self.cv.capsule(p0, p1, 0.011, 0.011, shade(colour, 0.8), BAG, dr.CHAIN_ITEM)

        def draw_body() -> None:
            self.cv.fill(body, colour, BAG, dr.CHAIN_ITEM)
            flap = rounded_rect(centre[0], centre[1] - 0.025, hw, 0.035, 0.012)
            self.cv.fill(flap, shade(colour, 0.85), BAG, dr.CHAIN_ITEM)

        self.add(0.55, draw_strap)
        if self.side and depth < 0:
            self.add(-3.4, draw_body)
        else:
            self.add(0.6 if not self.side else 3.9, draw_body)


def paint_person(canvas: Canvas, ident: Identity, sk: Skeleton) -> np.ndarray:
    """Draw ``ident`` in pose ``sk`` with the canvas' current placement.

    Returns the 17 COCO keypoints' drawing coordinates (17, 2) in pixels (pixel centres at
    integers), for ``keypoint_visibility`` once occluders are drawn.
    """
    _Painter(canvas, ident, sk).paint()
    return canvas.to_pixels(sk.xy[_COCO_INDEX])


def keypoint_visibility(canvas: Canvas, xy: np.ndarray, sk: Skeleton) -> np.ndarray:
    """(17, 3) float32 COCO keypoints (continuous coordinates, visibility 0/1/2); see module doc."""
    h, w = canvas.ids.shape
    out = np.zeros((len(COCO_JOINTS), 3), np.float32)
    facing = sk.coco_self_visible()
    for k, (x, y) in enumerate(xy):
        xc, yc = x + 0.5, y + 0.5
        xi, yi = int(np.floor(xc)), int(np.floor(yc))
        if not (0 <= xi < w and 0 <= yi < h):
            continue  # v = 0, x = y = 0
        chain = canvas.chain_at(xi, yi)
        if chain == -1 or not facing[k]:
            v = 1
        elif chain == dr.CHAIN_NONE:
            v = 2  # on the silhouette's edge
        else:
            v = 2 if chain in KEYPOINT_CHAINS[k] else 1
        out[k] = (xc, yc, v)
    return out
