"""Six surveillance cameras: each has a scene, a walking-direction mix and an image pipeline.

The pipeline mimics a cheap CCTV chain: optics blur -> sensor resolution -> ISP tone curve
(exposure gain, gamma, contrast, black level, per-channel colour cast, saturation) -> sensor
noise -> JPEG. Parameters differ strongly between cameras (Market-1501 mixes one low-resolution
camera with five high-resolution ones, with very different light), so matching across cameras is
harder than within one. Camera 1 is *neutral* (identity tone curve, little blur and noise, high
JPEG quality): garment colours there equal the rendered palette colours up to compression.
Everything per camera is derived from the dataset seed; per-image exposure jitter comes from the
image's own random generator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from workbench.data.synth import seeds

N_CAMERAS = 6


@dataclass(frozen=True)
class Camera:
    index: int  # 1-based, as in file names
    scene: str  # background style, see backgrounds.SCENES
    views: tuple[float, float, float, float]  # P(front, back, left, right) of walking tracks
    gain: float = 1.0
    gamma: float = 1.0
    contrast: float = 1.0
    black: float = 0.0  # lifted black level, 0..1
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)  # B, G, R multipliers
    saturation: float = 1.0
    blur: float = 0.0  # Gaussian sigma in pixels at image height 256
    resolution: float = 1.0  # < 1: rendered at lower resolution and upsampled
    noise: float = 1.0  # sensor noise sigma, 0..255 scale
    jpeg: int = 90
    exposure_jitter: float = 0.08  # per-image gain jitter (fraction)
    shadow: float = 0.0  # darkness of the ground shadow under people (sunny scenes)
    neutral: bool = False

    def tone_curve(self, gain: float = 1.0) -> np.ndarray:
        """(256, 1, 3) uint8 look-up table of the ISP for one image (``gain`` = exposure jitter)."""
        x = np.arange(256, dtype=np.float64)[:, None] / 255.0  # (256, 1)
        y = x**self.gamma * (self.gain * gain) * np.asarray(self.cast)[None, :]  # (256, 3)
        y = (y - 0.5) * self.contrast + 0.5
        y = self.black + (1.0 - self.black) * y
        return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)[:, None, :]

    def to_json(self) -> dict:
        """The camera's fields as a JSON-ready dict (``synth.json``)."""
        return asdict(self)


# The character of each camera; make_cameras jitters all but the neutral one per seed.
_STYLES: tuple[dict, ...] = (
    dict(scene="campus", views=(0.4, 0.4, 0.1, 0.1), blur=0.5, noise=1.5, jpeg=92,
         exposure_jitter=0.03, neutral=True),
    dict(scene="brick", views=(0.15, 0.15, 0.35, 0.35), gain=1.05, gamma=0.92,
         cast=(0.86, 0.97, 1.1), saturation=1.1, blur=0.8, noise=3.0, jpeg=85, shadow=0.25),
    dict(scene="walkway", views=(0.3, 0.3, 0.2, 0.2), gain=0.85, gamma=1.1,
         cast=(1.14, 1.0, 0.88), contrast=0.85, black=0.04, blur=1.0, noise=4.0, jpeg=78),
    dict(scene="hall", views=(0.25, 0.25, 0.25, 0.25), gain=0.78, gamma=1.2,
         cast=(0.94, 1.07, 0.92), contrast=0.9, blur=0.9, noise=7.0, jpeg=70),
    dict(scene="plaza", views=(0.2, 0.2, 0.3, 0.3), gain=1.06, gamma=0.9, contrast=1.12,
         saturation=1.12, blur=0.6, noise=2.0, jpeg=88, shadow=0.4),
    dict(scene="gate", views=(0.35, 0.35, 0.15, 0.15), gain=0.95, contrast=0.8, black=0.06,
         cast=(1.0, 1.02, 1.04), saturation=0.65, blur=0.8, resolution=0.5, noise=3.5, jpeg=55),
)  # fmt: skip


def make_cameras(seed: int, domain: int = 0) -> list[Camera]:
    """The six cameras of a dataset seeded ``seed`` (style table + small per-seed jitter).

    ``domain`` > 0 gives another site (the cross-domain setting, like Market-1501 →
    DukeMTMC-reID): camera ``i`` takes the character of style ``i + domain`` with a rotated
    scene, every camera (none neutral) shares a domain-wide colour cast, and the per-camera
    jitter is stronger; all drawn from ``(seed, DOMAIN, domain)``. Domain 0 is the default set.
    """
    if domain:
        return _domain_cameras(seed, domain)
    cams = []
    for i, style in enumerate(_STYLES):
        style = dict(style)
        if not style.get("neutral", False):
            rng = seeds.rng(seed, seeds.CAMERA, i)
            for key in ("gain", "gamma", "contrast"):
                style[key] = round(float(style.get(key, 1.0) * rng.uniform(0.95, 1.05)), 4)
            cast = np.asarray(style.get("cast", (1.0, 1.0, 1.0))) * rng.uniform(0.97, 1.03, 3)
            style["cast"] = tuple(round(float(c), 4) for c in cast)
        cams.append(Camera(index=i + 1, **style))
    return cams


def _domain_cameras(seed: int, domain: int) -> list[Camera]:
    from workbench.data.synth.backgrounds import SCENES

    base = seeds.rng(seed, seeds.DOMAIN, domain)
    cast = base.uniform(0.8, 1.2, 3)  # the whole site is tinted (sodium lamps, LED panels...)
    shift = 1 + int(base.integers(len(SCENES) - 1))  # every camera shows another scene style
    cams = []
    for i in range(N_CAMERAS):
        style = dict(_STYLES[(i + domain) % len(_STYLES)])
        style.pop("neutral", None)
        rng = seeds.rng(seed, seeds.DOMAIN, domain, i)
        for key in ("gain", "gamma", "contrast"):
            style[key] = round(float(style.get(key, 1.0) * rng.uniform(0.88, 1.12)), 4)
        own = np.asarray(style.get("cast", (1.0, 1.0, 1.0))) * rng.uniform(0.92, 1.08, 3)
        style["cast"] = tuple(round(float(c), 4) for c in own * cast)
        style["saturation"] = round(float(style.get("saturation", 1.0) * rng.uniform(0.8, 1.1)), 4)
        style["scene"] = SCENES[(SCENES.index(style["scene"]) + shift) % len(SCENES)]
        cams.append(Camera(index=i + 1, **style))
    return cams


class NoiseBank:
    """Pre-drawn sensor noise per camera, cropped at random offsets (drawing per image is slow).

    Noise is stored as two uint8 tiles (positive and negative part) so that applying it is two
    saturating OpenCV additions, with no float conversion of the image.
    """

    def __init__(self, cameras: list[Camera], seed: int, height: int, width: int) -> None:
        self.cameras, self.seed = cameras, seed
        self.h, self.w = height, width
        self._tiles: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def tiles(self, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
        """(positive, negative) uint8 noise tiles of ``cam``, (2H, 2W, 3); drawn on first use."""
        if cam.index not in self._tiles:
            rng = seeds.rng(self.seed, seeds.NOISE, cam.index)
            n = rng.normal(0.0, cam.noise, (2 * self.h, 2 * self.w, 3))
            # chroma noise is weaker than luma noise in real sensors
            n = np.rint(0.7 * n + 0.3 * n.mean(axis=2, keepdims=True) * np.sqrt(3))
            self._tiles[cam.index] = (
                np.clip(n, 0, 255).astype(np.uint8),
                np.clip(-n, 0, 255).astype(np.uint8),
            )
        return self._tiles[cam.index]

    def apply(self, image: np.ndarray, cam: Camera, rng: np.random.Generator) -> np.ndarray:
        """``image`` with this camera's noise added, from a random offset into its noise tiles."""
        pos, neg = self.tiles(cam)
        y, x = int(rng.integers(self.h)), int(rng.integers(self.w))
        sl = (slice(y, y + self.h), slice(x, x + self.w))
        return cv2.subtract(cv2.add(image, pos[sl]), neg[sl])


def apply_camera(
    image: np.ndarray, cam: Camera, rng: np.random.Generator, noise: NoiseBank
) -> np.ndarray:
    """Blur, resolution loss, tone curve, saturation and noise of ``cam`` on a BGR uint8 image."""
    h, w = image.shape[:2]
    sigma = cam.blur * h / 256.0 * float(rng.uniform(0.8, 1.2))
    if sigma > 0.25:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if cam.resolution < 1.0:
        size = (max(8, round(w * cam.resolution)), max(8, round(h * cam.resolution)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        image = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    gain = 1.0 + cam.exposure_jitter * float(rng.uniform(-1.0, 1.0))
    image = cv2.LUT(image, cam.tone_curve(gain))
    if cam.saturation != 1.0:
        grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        image = cv2.addWeighted(image, cam.saturation, grey, 1.0 - cam.saturation, 0.0)
    return noise.apply(image, cam, rng)
