"""An articulated walking body: 3-D joints in body units, projected to the image plane.

Body frame (units: person height, head top at y = 0, soles at y = 1): x points to the person's
*left*, y down, z forward. A pose has a yaw (rotation about the vertical axis) and a walking
phase; the camera is orthographic and looks at the person along -z when yaw = 0, so

    x_img = x cos(yaw) + z sin(yaw),   depth = -x sin(yaw) + z cos(yaw)   (depth > 0: nearer)

yaw 0 = "front" (facing the camera, the person's left on the image right), 180 = "back",
90 = "right" (walking towards the image right), -90 = "left". Walking follows a textbook gait
cycle (hips +-22 deg, knee flexion in swing, arms swinging against the legs); the stance foot is
kept on the ground (shoe soles at y ≈ 1), which gives the vertical bob of walking for free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VIEW_YAW = {"front": 0.0, "right": 90.0, "back": 180.0, "left": -90.0}

JOINTS = (
    "head", "neck_top", "neck_base", "pelvis",
    "l_sho", "r_sho", "l_elb", "r_elb", "l_wri", "r_wri", "l_hand", "r_hand",
    "l_hip", "r_hip", "l_knee", "r_knee", "l_ank", "r_ank", "l_heel", "r_heel", "l_toe", "r_toe",
    "nose", "l_eye", "r_eye", "l_ear", "r_ear",
)  # fmt: skip
J = {name: i for i, name in enumerate(JOINTS)}

# COCO keypoint order (annotations.COCO_KEYPOINTS) -> joint names
COCO_JOINTS = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_sho", "r_sho", "l_elb", "r_elb",
    "l_wri", "r_wri", "l_hip", "r_hip", "l_knee", "r_knee", "l_ank", "r_ank",
)  # fmt: skip

# Surface normals (body frame) of keypoints that can face away from the camera, and the
# threshold on the normal's depth component below which the point counts as self-occluded.
_NORMALS: dict[str, tuple[tuple[float, float, float], float]] = {
    "nose": ((0.0, 0.0, 1.0), -0.25),
    "l_eye": ((0.4, 0.0, 0.92), -0.05),
    "r_eye": ((-0.4, 0.0, 0.92), -0.05),
    "l_ear": ((1.0, 0.0, 0.0), -0.3),
    "r_ear": ((-1.0, 0.0, 0.0), -0.3),
    "l_sho": ((1.0, 0.0, 0.0), -0.6),
    "r_sho": ((-1.0, 0.0, 0.0), -0.6),
    "l_hip": ((1.0, 0.0, 0.0), -0.6),
    "r_hip": ((-1.0, 0.0, 0.0), -0.6),
}


@dataclass(frozen=True)
class BodyShape:
    """Per-identity proportions, in body units (fractions of the person's height)."""

    shoulder: float = 0.115  # half shoulder width (joint to joint / 2)
    hip: float = 0.068  # half hip width
    depth: float = 0.06  # half chest depth (front to back)
    head_rx: float = 0.05  # head half width
    head_ry: float = 0.066  # head half height
    limb: float = 1.0  # limb thickness factor
    leg: float = 1.0  # leg length factor
    female: bool = False


@dataclass(frozen=True)
class Pose:
    """Yaw in degrees (see module docstring), walking phase in radians, stride/arm amplitudes."""

    yaw: float = 0.0
    phase: float = 0.0
    stride: float = 1.0
    arm_swing: float = 1.0
    hold_left: bool = False  # the left hand carries something: little swing, straight arm
    hold_right: bool = False

    @property
    def view(self) -> str:
        """Nearest canonical view: front / back / left / right."""
        return view_of(self.yaw)


def view_of(yaw: float) -> str:
    c, s = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
    if abs(c) >= abs(s):
        return "front" if c > 0 else "back"
    return "right" if s > 0 else "left"


@dataclass
class Skeleton:
    """Projected joints: ``xy`` (N, 2) image-plane body units, ``depth`` (N,), the pose."""

    xy: np.ndarray  # (len(JOINTS), 2): x_img, y
    depth: np.ndarray  # (len(JOINTS),), larger = nearer the camera
    pose: Pose
    shape: BodyShape
    lift: float = 0.0  # vertical shift that put the stance foot on the ground

    def p(self, name: str) -> np.ndarray:
        """(x, y) image position of joint ``name``."""
        return self.xy[J[name]]

    def d(self, name: str) -> float:
        """Depth of joint ``name`` (larger = nearer the camera)."""
        return float(self.depth[J[name]])

    @property
    def cos(self) -> float:
        """cos of the body's yaw (1 = facing the camera)."""
        return float(np.cos(np.radians(self.pose.yaw)))

    @property
    def sin(self) -> float:
        """sin of the body's yaw (±1 = side view)."""
        return float(np.sin(np.radians(self.pose.yaw)))

    def project_point(self, x: float, y: float, z: float) -> tuple[np.ndarray, float]:
        """A body-frame point (relative to the body's vertical axis) -> (x_img, y), depth."""
        c, s = self.cos, self.sin
        return np.array([x * c + z * s, y + self.lift]), -x * s + z * c

    def extent(self, half_x: float, half_z: float) -> float:
        """Projected half width of an ellipse with half axes ``half_x`` (left) and ``half_z``."""
        return float(np.hypot(half_x * self.cos, half_z * self.sin))

    def coco_self_visible(self) -> np.ndarray:
        """(17,) bool: False where a keypoint faces away from the camera (nose in back view)."""
        c, s = self.cos, self.sin
        out = np.ones(len(COCO_JOINTS), bool)
        for k, name in enumerate(COCO_JOINTS):
            if name in _NORMALS:
                (nx, _, nz), thr = _NORMALS[name]
                out[k] = -nx * s + nz * c > thr
        return out


def _rot_x(angle: float, v: np.ndarray) -> np.ndarray:
    """Rotate the (y, z) part of ``v`` by ``angle`` (forward swing about the left-right axis)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([v[0], v[1] * c - v[2] * s, v[1] * s + v[2] * c])


def build_skeleton(shape: BodyShape, pose: Pose) -> Skeleton:
    """Place every joint of ``JOINTS`` for ``pose`` and project it (see module docstring)."""
    p: dict[str, np.ndarray] = {}
    phi = pose.phase
    leg = shape.leg
    y_sho, y_hip = 0.185, 1.0 - 0.48 * leg
    thigh, shin = 0.225 * leg, 0.22 * leg
    p["head"] = np.array([0.0, shape.head_ry + 0.002, 0.006])
    p["neck_top"] = np.array([0.0, 2 * shape.head_ry - 0.01, -0.004])
    p["neck_base"] = np.array([0.0, y_sho - 0.012, -0.006])
    p["pelvis"] = np.array([0.0, y_hip - 0.03, 0.0])
    hy, hz = p["head"][1], p["head"][2]
    p["nose"] = np.array([0.0, hy + 0.016, hz + 0.056])
    for side, sx in (("l", 1.0), ("r", -1.0)):
        p[f"{side}_eye"] = np.array([sx * 0.019, hy - 0.004, hz + 0.046])
        p[f"{side}_ear"] = np.array([sx * 0.046, hy + 0.004, hz - 0.006])

    # legs: hip flexion theta (forward +), knee flexion kappa during swing
    amp_hip = np.radians(22.0) * pose.stride
    for side, sx, ph in (("l", 1.0, phi), ("r", -1.0, phi + np.pi)):
        theta = amp_hip * np.sin(ph)
        kappa = np.radians(5.0 + 42.0 * max(0.0, np.cos(ph)) ** 2) * min(1.0, pose.stride)
        hip = np.array([sx * shape.hip, y_hip, 0.0])
        knee = hip + _rot_x(theta, np.array([0.0, thigh, 0.0]))
        ank = knee + _rot_x(theta - kappa, np.array([0.0, shin, 0.0]))
        # the foot stays nearly level; in swing it tilts toe-down with the bent knee
        tilt = -0.4 * max(0.0, np.cos(ph)) * min(1.0, pose.stride)
        p[f"{side}_hip"], p[f"{side}_knee"], p[f"{side}_ank"] = hip, knee, ank
        p[f"{side}_heel"] = ank + _rot_x(tilt, np.array([0.0, 0.035, -0.015]))
        p[f"{side}_toe"] = ank + _rot_x(tilt, np.array([0.0, 0.035, 0.07]))

    # arms: swing against the same-side leg, slight abduction, elbow bends more when forward
    amp_arm = np.radians(20.0) * pose.arm_swing * pose.stride
    upper, fore = 0.175, 0.15
    for side, sx, ph, hold in (
        ("l", 1.0, phi, pose.hold_left),
        ("r", -1.0, phi + np.pi, pose.hold_right),
    ):
        beta = -amp_arm * np.sin(ph) * (0.25 if hold else 1.0)
        eps = np.radians(4.0 if hold else 10.0) + (0.0 if hold else 0.9 * max(0.0, beta))
        gamma = np.radians(8.0 if hold else 6.0)
        sho = np.array([sx * shape.shoulder, y_sho, -0.004])
        elb = sho + _rot_x(beta, np.array([sx * np.sin(gamma), np.cos(gamma), 0.0]) * upper)
        wri = elb + _rot_x(beta + eps, np.array([sx * 0.5 * np.sin(gamma), 1.0, 0.0])) * fore
        hand = wri + _rot_x(beta + eps, np.array([0.0, 0.045, 0.0]))
        p[f"{side}_sho"], p[f"{side}_elb"] = sho, elb
        p[f"{side}_wri"], p[f"{side}_hand"] = wri, hand

    xyz = np.stack([p[name] for name in JOINTS])  # (N, 3)
    sole = max(xyz[J[n], 1] for n in ("l_heel", "r_heel", "l_toe", "r_toe"))
    lift = 1.0 - 0.012 - sole  # the lowest sole point (the stance foot) touches the ground
    c, s = np.cos(np.radians(pose.yaw)), np.sin(np.radians(pose.yaw))
    x_img = xyz[:, 0] * c + xyz[:, 2] * s
    depth = -xyz[:, 0] * s + xyz[:, 2] * c
    xy = np.stack([x_img, xyz[:, 1] + lift], axis=1)
    return Skeleton(xy=xy, depth=depth, pose=pose, shape=shape, lift=float(lift))
