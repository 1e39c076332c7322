"""Plan a dataset before drawing a pixel: identities, split, walking tracks, file names.

Market-1501 protocol (Zheng et al., ICCV 2015), reproduced at any size:
- identities are split in half, train and test, with disjoint 4-digit pids drawn sparsely from
  1..9999 (Market's pids are not contiguous either);
- every identity walks past 2..6 of the 6 cameras; each pass is a *track*: one camera, one
  sequence ``s1..s6``, increasing frame numbers, one walking direction, one stretch of background;
- query: for each test identity, one image per camera it appears in; the rest of its images go
  to ``bounding_box_test``. Test identities have >= 2 images in every camera they visit, so every
  query has a true match in another camera *and* the gallery keeps same-camera images (which the
  protocol ignores, as in Market);
- the gallery also gets distractors (pid 0000: people who are no query, one image each) and junk
  (pid -1: bad detections, mostly background), about 10% and 5% of the test images.
Differs from Market: fewer images per identity by default (~14), a single bounding box index
``NN`` is unique per (camera, sequence, frame) rather than tied to a detector's output order.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

import numpy as np

from workbench.data.synth import seeds
from workbench.data.synth.body import VIEW_YAW
from workbench.data.synth.camera import Camera
from workbench.data.synth.identity import Identity, sample_identity

TRAIN_DIR, QUERY_DIR, GALLERY_DIR = "bounding_box_train", "query", "bounding_box_test"
FOLDERS = (TRAIN_DIR, QUERY_DIR, GALLERY_DIR)
IMAGES_PER_ID = 14
DISTRACTOR_RATE, JUNK_RATE = 0.1, 0.05
_N_CAMS_P = (0.3, 0.3, 0.2, 0.12, 0.08)  # P(2..6 cameras per identity)
_VIEWS = tuple(VIEW_YAW)  # front, right, back, left


@dataclass(frozen=True)
class ImageSpec:
    """Everything an image needs besides its own random numbers."""

    index: int  # position in the plan; keys the image's random stream
    folder: str
    name: str
    pid: int  # as in the file name: > 0 identity, 0 distractor, -1 junk
    identity: int  # row of Plan.identities, -1 for one-off people (distractors, junk)
    kind: str  # "id" | "distractor" | "junk"
    cam: int  # 1-based
    seq: int  # 1..6
    frame: int
    yaw: float  # degrees, see body.py
    phase: float  # walking phase, radians
    plate: int  # background plate of the camera
    plate_x: float  # horizontal background offset, 0..1
    mirror: bool  # background mirrored


@dataclass
class Plan:
    identities: list[Identity]
    splits: list[str]  # "train" / "test" per identity
    images: list[ImageSpec]

    def count(self, folder: str, kind: str | None = None) -> int:
        """Planned images in ``folder`` (of one ``kind`` only, when given)."""
        return sum(s.folder == folder and kind in (None, s.kind) for s in self.images)


def _name(pid: int, cam: int, seq: int, frame: int, nn: int) -> str:
    head = "-1" if pid < 0 else f"{pid:04d}"
    return f"{head}_c{cam}s{seq}_{frame:06d}_{nn:02d}.jpg"


def _view_yaw(rng: np.random.Generator, cam: Camera) -> float:
    order = ("front", "back", "left", "right")  # Camera.views order
    view = order[int(rng.choice(4, p=np.asarray(cam.views) / sum(cam.views)))]
    return float(VIEW_YAW[view] + rng.uniform(-20.0, 20.0))


def _tracks(rng: np.random.Generator, plan: Plan, cameras: list[Camera]) -> list[ImageSpec]:
    """The images of every identity: 2..6 cameras, one walking track per camera."""
    shots = []
    for i, (ident, split) in enumerate(zip(plan.identities, plan.splits, strict=True)):
        test = split == "test"
        n_cams = 2 + int(rng.choice(len(_N_CAMS_P), p=_N_CAMS_P))
        cams = np.sort(rng.choice(len(cameras), n_cams, replace=False)) + 1
        least = 2 if test else 1  # test ids keep >= 1 gallery image per camera after the query
        n_images = max(least * n_cams, int(rng.poisson(IMAGES_PER_ID)))
        counts = least + rng.multinomial(n_images - least * n_cams, rng.dirichlet(np.ones(n_cams)))
        for cam, n in zip(cams.tolist(), counts.tolist(), strict=True):
            seq, f0 = int(rng.integers(1, 7)), int(rng.integers(0, 150_000))
            frames = (f0 + np.cumsum(rng.integers(4, 30, n))).tolist()
            yaw, phase0 = _view_yaw(rng, cameras[cam - 1]), float(rng.uniform(0, 2 * np.pi))
            plate, x0 = int(rng.integers(0, 1 << 16)), float(rng.uniform())
            mirror = bool(rng.random() < 0.5)
            drift = float(np.sin(np.radians(yaw))) * rng.uniform(0.0005, 0.002)  # side views pan
            query = int(rng.integers(n)) if test else -1
            for k, frame in enumerate(frames):
                folder = GALLERY_DIR if test else TRAIN_DIR
                shots.append(
                    ImageSpec(
                        index=-1, name="", folder=QUERY_DIR if k == query else folder,
                        pid=ident.pid, identity=i, kind="id", cam=cam, seq=seq, frame=frame,
                        yaw=yaw + float(rng.normal(0, 3)),
                        phase=(phase0 + 2 * np.pi * (frame - f0) / ident.gait_period) % (2 * np.pi),
                        plate=plate, plate_x=(x0 + drift * (frame - f0)) % 1.0, mirror=mirror,
                    )
                )  # fmt: skip
    return shots


def _one_offs(
    rng: np.random.Generator, kind: str, n: int, cameras: list[Camera]
) -> list[ImageSpec]:
    """``n`` gallery images of one-off people: distractors (pid 0) or junk (pid -1)."""
    shots = []
    for _ in range(n):
        cam = int(rng.integers(1, len(cameras) + 1))
        shots.append(
            ImageSpec(
                index=-1, name="", folder=GALLERY_DIR, pid=0 if kind == "distractor" else -1,
                identity=-1, kind=kind, cam=cam, seq=int(rng.integers(1, 7)),
                frame=int(rng.integers(0, 160_000)), yaw=_view_yaw(rng, cameras[cam - 1]),
                phase=float(rng.uniform(0, 2 * np.pi)), plate=int(rng.integers(0, 1 << 16)),
                plate_x=float(rng.uniform()), mirror=bool(rng.random() < 0.5),
            )
        )  # fmt: skip
    return shots


def make_plan(n_ids: int, seed: int, cameras: list[Camera]) -> Plan:
    """Identities, split and image list of a dataset with ``n_ids`` identities (see module doc)."""
    rng = seeds.rng(seed, seeds.PLAN)
    pid_max = min(9999, 3 * n_ids + 10)
    pids = np.sort(rng.choice(np.arange(1, pid_max + 1), n_ids, replace=False)).tolist()
    is_test = np.zeros(n_ids, bool)
    is_test[rng.permutation(n_ids)[: n_ids - n_ids // 2]] = True
    plan = Plan(
        identities=[sample_identity(seeds.rng(seed, seeds.IDENTITY, p), p) for p in pids],
        splits=["test" if t else "train" for t in is_test],
        images=[],
    )
    shots = _tracks(rng, plan, cameras)
    n_test = sum(s.folder != TRAIN_DIR for s in shots)
    shots += _one_offs(rng, "distractor", max(1, round(DISTRACTOR_RATE * n_test)), cameras)
    shots += _one_offs(rng, "junk", max(1, round(JUNK_RATE * n_test)), cameras)
    # bounding-box index NN: 01, 02, ... among the boxes of one (camera, sequence, frame)
    seen: Counter = Counter()
    for index, s in enumerate(shots):
        seen[(s.cam, s.seq, s.frame)] += 1
        name = _name(s.pid, s.cam, s.seq, s.frame, seen[(s.cam, s.seq, s.frame)])
        plan.images.append(dataclasses.replace(s, index=index, name=name))
    return plan
