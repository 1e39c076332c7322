"""Compose one image: background plate -> people behind -> the person -> occluders -> camera.

``Studio`` holds what every image of a process shares (cameras, background plates, noise tiles)
and renders an ``ImageSpec`` from its own random stream ``(seed, IMAGE, index)``. Placement mimics
an imperfect pedestrian detector: the person fills 78-96% of the crop height, is off-centre by a
few percent and is sometimes cut at the feet, the head or a side. Junk images are bad detections:
a person mostly outside the crop, a crop zoomed onto the torso, or background only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.data.synth import seeds
from workbench.data.synth.backgrounds import Backdrops
from workbench.data.synth.body import Pose, build_skeleton
from workbench.data.synth.camera import Camera, NoiseBank, apply_camera, make_cameras
from workbench.data.synth.draw import Canvas
from workbench.data.synth.identity import Identity, sample_identity
from workbench.data.synth.occluders import add_occluder, add_passerby, ground_shadow
from workbench.data.synth.plan import ImageSpec
from workbench.data.synth.render import keypoint_visibility, paint_person

OCCLUSION_RATE = 0.2
PASSERBY_RATE = 0.15


@dataclass
class Rendered:
    image: np.ndarray  # (H, W, 3) uint8 BGR, after the camera pipeline
    labels: np.ndarray  # (H, W) uint8 part labels (annotations.PART_LABELS)
    keypoints: np.ndarray  # (17, 3) float32 COCO x, y, visibility
    occluder: str | None = None


class Studio:
    """Per-process renderer of a dataset's images (cheap to call, ~1 s to build at 256x128)."""

    def __init__(self, seed: int, height: int, width: int, domain: int = 0) -> None:
        self.seed, self.h, self.w = seed, height, width
        self.cameras: list[Camera] = make_cameras(seed, domain)
        plates = seeds.domain_seed(seed, domain)  # another site: other background plates
        self.backdrops = Backdrops([c.scene for c in self.cameras], plates, height, width)
        self.noise = NoiseBank(self.cameras, seed, height, width)

    def render(
        self, spec: ImageSpec, ident: Identity | None, pose_of: Identity | None = None
    ) -> Rendered:
        """Render ``spec``; ``ident`` is its identity, None for one-off people (sampled here).

        ``pose_of``: the identity whose handbag decides the arm pose (default ``ident``); a
        counterfactual that adds or removes a handbag keeps the original's arms with it.
        """
        rng = seeds.rng(self.seed, seeds.IMAGE, spec.index)
        cam = self.cameras[spec.cam - 1]
        if ident is None:  # distractors and junk are one-off people
            ident = sample_identity(rng, max(spec.pid, 0))
        y_offset = float(rng.uniform())
        canvas = Canvas(
            self.backdrops.crop(spec.cam, spec.plate, spec.plate_x, y_offset, spec.mirror)
        )
        if rng.random() < PASSERBY_RATE:
            add_passerby(canvas, rng)
        holder = ident if pose_of is None else pose_of
        hand = holder.handbag_hand if holder.attributes["handbag"] else 0
        pose = Pose(yaw=spec.yaw, phase=spec.phase, stride=ident.stride, arm_swing=ident.arm_swing,
                    hold_left=hand == 1, hold_right=hand == -1)  # fmt: skip
        sk = build_skeleton(ident.shape, pose)
        sx, sy, cx, top, junk = self._placement(rng, spec.kind)
        keypoints = np.zeros((17, 3), np.float32)
        occluder = None
        if junk != "empty":
            if cam.shadow:
                feet = np.array([cx, top + 0.995 * sy])
                ground_shadow(canvas.image, feet, 0.22 * sy, cam.shadow)
            canvas.place(sx, sy, cx, top)
            xy = paint_person(canvas, ident, sk)  # (17, 2) drawing coordinates
            if rng.random() < OCCLUSION_RATE:
                xs = canvas.to_pixels(sk.xy)[:, 0]
                occluder = add_occluder(
                    canvas, rng, (float(xs.min()), top, float(xs.max()), top + sy)
                )
            keypoints = keypoint_visibility(canvas, xy, sk)
        labels = canvas.label_map()
        image = apply_camera(canvas.image, cam, rng, self.noise)
        return Rendered(image=image, labels=labels, keypoints=keypoints, occluder=occluder)

    def _placement(
        self, rng: np.random.Generator, kind: str
    ) -> tuple[float, float, float, float, str]:
        """Detector-like box: x/y scale (person height in px), centre x, top y, junk kind."""
        h, w = self.h, self.w
        s = h * rng.uniform(0.78, 0.96)
        cx = w / 2 + w * rng.normal(0.0, 0.035)
        top = (h - s) / 2 + h * rng.normal(0.0, 0.02)
        cut = rng.random()
        if cut < 0.06:
            top += s * rng.uniform(0.04, 0.12)  # feet cut
        elif cut < 0.1:
            top -= s * rng.uniform(0.03, 0.08)  # head cut
        elif cut < 0.14:
            cx += w * rng.choice((-1, 1)) * rng.uniform(0.15, 0.3)  # side cut
        junk = ""
        if kind == "junk":
            junk = ("edge", "zoom", "empty")[int(rng.integers(3))]
            if junk == "edge":  # mostly outside the box
                cx = w / 2 + w * rng.choice((-1, 1)) * rng.uniform(0.6, 0.85)
            elif junk == "zoom":  # a box on the torso
                s = h * rng.uniform(1.8, 2.6)
                top = -s * rng.uniform(0.25, 0.5)
        return s * rng.uniform(0.93, 1.07), s, cx, top, junk
