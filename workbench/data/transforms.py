"""Training and test transforms on a *record* dict, in numpy/OpenCV (no torchvision, no PIL).

A record holds ``image`` (H×W×3 uint8 RGB) and optionally ``parts`` (H×W uint8 part-label map,
see ``annotations.PART_LABELS``), ``mask`` (H×W uint8 {0, 1}) and ``keypoints`` ((17, 3)
float32, COCO order: x, y, visibility). Every geometric transform moves the label maps and the
keypoints with the image; ``ToTensor`` turns the record into the sample of DESIGN.md (torch
tensors: image C×H×W float32, mask H×W uint8, parts H×W int64, keypoints (17, 3) float32).

Keypoint coordinates (used by every transform here):
    continuous pixel coordinates: pixel ``i`` covers ``[i, i + 1)``, so its centre is at
    ``i + 0.5`` (detectron2's convention). This makes every transform exactly affine:
    resize ``x -> x * W'/W`` (matches OpenCV's half-pixel-centred sampling), flip
    ``x -> W - x``, pad/crop ``x -> x + left``. A point is inside a W×H image iff
    ``0 <= x < W`` and ``0 <= y < H``; a point that leaves the image gets visibility 0, and
    every point with visibility 0 has ``x = y = 0`` after any geometric transform (COCO's
    convention for unlabelled points). A horizontal flip also swaps left/right keypoints
    (``annotations.flip_permutation()``).

Pipelines (``build_transforms``):
    BoT (Luo et al. 2019, ``data/transforms/build.py``): Resize(256×128) → RandomHorizontalFlip(0.5)
    → Pad(10) → RandomCrop(256×128) → ToTensor → Normalize(ImageNet) → RandomErasing(0.5,
    fill = ImageNet mean *written into the normalised tensor*).
    RGA-SC (Zhang et al. 2020, ``rga_model`` scripts): Random2DTranslation(p=0.5) → flip →
    ToTensor → Normalize → RandomErasing(0.5, fill 0 after normalisation). The official code
    erases per batch inside the trainer; per sample here (same distribution).
    Differences: OpenCV's INTER_LINEAR does not antialias when shrinking (PIL's bilinear does);
    pass ``interpolation=cv2.INTER_AREA`` for large inputs. Label maps use INTER_NEAREST_EXACT
    (pixel-centre aligned, unlike OpenCV's INTER_NEAREST, which is shifted by half a pixel).

Randomness: every random transform draws from a ``numpy.random.Generator`` — the one passed to
``__call__(record, rng)`` or else its own (``seed=``). Inside ``Compose`` the Compose's generator
drives all children. Never the global numpy RNG. DataLoader workers each hold a copy of the
transform, so reseed per worker: ``DataLoader(..., worker_init_fn=worker_init_fn)`` reseeds
``dataset.transform`` with torch's per-worker seed (``base_seed + worker_id``; ``base_seed``
comes from the DataLoader's torch generator each epoch, so ``torch.manual_seed`` makes a run
reproducible). ``ReIDDataset`` does the same by itself on the first item a worker loads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

from workbench.data.annotations import flip_permutation

Record = dict[str, Any]
SeedLike = int | np.random.Generator | None

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
LABEL_KEYS = ("mask", "parts")  # H×W maps moved with the image, nearest-neighbour


class Transform:
    """Base class: ``__call__(record, rng=None) -> record`` returning a new dict (input untouched)."""

    def __call__(self, record: Record, rng: np.random.Generator | None = None) -> Record:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "rng")
        return f"{type(self).__name__}({args})"


class RandomTransform(Transform):
    """A transform holding its own ``numpy.random.Generator`` (used when none is passed in)."""

    def __init__(self, seed: SeedLike = None) -> None:
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: SeedLike) -> None:
        """Restart the transform's random stream from ``seed``."""
        self.rng = np.random.default_rng(seed)

    def _gen(self, rng: np.random.Generator | None) -> np.random.Generator:
        return self.rng if rng is None else rng


def check_probability(owner: str, p: float) -> float:
    """``p`` as a float in [0, 1], else a ``ValueError`` naming ``owner`` and the value."""
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{owner}: p={p!r} is not a probability; pass a number from 0 to 1")
    return float(p)


def check_size(owner: str, height: int, width: int) -> tuple[int, int]:
    """``(height, width)`` as positive ints, else a ``ValueError`` naming ``owner``."""
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{owner}: {name}={v!r}; need a positive whole number of pixels")
    return int(height), int(width)


def _image_size(record: Record) -> tuple[int, int]:
    image = record["image"]
    if isinstance(image, torch.Tensor):
        return int(image.shape[-2]), int(image.shape[-1])
    return int(image.shape[0]), int(image.shape[1])


def _fix_keypoints(kp: np.ndarray, height: int, width: int) -> np.ndarray:
    """Visibility 0 for points outside [0, W)×[0, H); x = y = 0 wherever visibility is 0."""
    inside = (kp[:, 0] >= 0) & (kp[:, 0] < width) & (kp[:, 1] >= 0) & (kp[:, 1] < height)
    kp[~inside, 2] = 0
    kp[kp[:, 2] == 0, :2] = 0
    return kp


def _map_keypoints(record: Record, scale: tuple[float, float], shift: tuple[float, float]) -> None:
    """In place on the (copied) record: ``x -> x*sx + tx``, ``y -> y*sy + ty``, then clip visibility."""
    if "keypoints" not in record:
        return
    kp = np.array(record["keypoints"], dtype=np.float32).reshape(-1, 3)  # (17, 3), a copy
    kp[:, 0] = kp[:, 0] * scale[0] + shift[0]
    kp[:, 1] = kp[:, 1] * scale[1] + shift[1]
    h, w = _image_size(record)
    record["keypoints"] = _fix_keypoints(kp, h, w)


def _crop(record: Record, top: int, left: int, height: int, width: int) -> Record:
    out = dict(record)
    for key in ("image", *LABEL_KEYS):
        if key in out:
            out[key] = np.ascontiguousarray(out[key][top : top + height, left : left + width])
    _map_keypoints(out, (1.0, 1.0), (-left, -top))
    return out


class Compose(RandomTransform):
    """Apply transforms in order; this Compose's generator drives every random child."""

    def __init__(self, transforms: Sequence[Transform], seed: SeedLike = None) -> None:
        super().__init__(seed)
        self.transforms = list(transforms)

    def __call__(self, record: Record, rng: np.random.Generator | None = None) -> Record:
        gen = self._gen(rng)
        for t in self.transforms:
            record = t(record, gen)
        return record

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


class Resize(Transform):
    """Resize to ``height × width``: image with ``interpolation``, label maps nearest (exact)."""

    def __init__(self, height: int, width: int, interpolation: int = cv2.INTER_LINEAR) -> None:
        self.height, self.width = check_size("Resize", height, width)
        self.interpolation = interpolation

    def __call__(self, record: Record, rng: np.random.Generator | None = None) -> Record:
        h, w = _image_size(record)
        out = dict(record)
        size = (self.width, self.height)  # OpenCV takes (width, height)
        out["image"] = cv2.resize(record["image"], size, interpolation=self.interpolation)
        for key in LABEL_KEYS:
            if key in out:
                out[key] = cv2.resize(out[key], size, interpolation=cv2.INTER_NEAREST_EXACT)
        _map_keypoints(out, (self.width / w, self.height / h), (0.0, 0.0))
        return out


class RandomHorizontalFlip(RandomTransform):
    """Mirror with probability ``p``: ``x -> W - x`` and left/right keypoints swap names."""

    def __init__(self, p: float = 0.5, seed: SeedLike = None) -> None:
        super().__init__(seed)
        self.p = check_probability("RandomHorizontalFlip", p)

    def __call__(self, record: Record, rng: np.random.Generator | None = None) -> Record:
        if self._gen(rng).random() >= self.p:
            return record
        _, w = _image_size(record)
        out = dict(record)
        for key in ("image", *LABEL_KEYS):
            if key in out:
                out[key] = np.ascontiguousarray(out[key][:, ::-1])
        _map_keypoints(out, (-1.0, 1.0), (float(w), 0.0))
        if "keypoints" in out:  # the mirrored left wrist is now the right wrist, ...
            out["keypoints"] = out["keypoints"][flip_permutation()]
        return out


class Pad(Transform):
    """Constant padding (torchvision ``Pad``): ``padding`` = int or (left, top, right, bottom).

    The image is filled with ``fill`` (int or RGB triple), label maps with 0 (background).
    """

    def __init__(self, padding: int | Sequence[int] = 10, fill: int | Sequence[int] = 0) -> None:
        pads = (padding,) * 4 if isinstance(padding, int) else tuple(int(p) for p in padding)
        if len(pads) != 4 or min(pads) < 0:
            raise ValueError(f"Pad: padding must be an int >= 0 or 4 ints, got {padding!r}")
        self.padding = pads
        self.fill = fill

    def __call__(self, record: Record, rng: np.random.Generator | None = None) -> Record:
        left, top, right, bottom = self.padding
        fill = (self.fill,) * 3 if isinstance(self.fill, int) else tuple(self.fill)
        out = dict(record)
        out["image"] = cv2.copyMakeBorder(
            record["image"], top, bottom, left, right, cv2.BORDER_CONSTANT, value=fill
        )
        for key in LABEL_KEYS:
            if key in out:
                out[key] = cv2.copyMakeBorder(
                    out[key], top, bottom, left, right, cv2.BORDER_CONSTANT, value=0
                )
        _map_keypoints(out, (1.0, 1.0), (left, top))
        return out


class RandomCrop(RandomTransform):
    """Crop a ``height × width`` window at a uniformly drawn position (BoT: after Pad(10))."""

    def __init__(self, height: int, width: int, seed: SeedLike = None) -> None:
        super().__init__(seed)
        self.height, self.width = check_size("RandomCrop", height, width)

    def __call__(self, record: Record, rng: np.random.Generator | None = None) -> Record:
        h, w = _image_size(record)
        if h < self.height or w < self.width:
            raise ValueError(
                f"RandomCrop({self.height}, {self.width}): image is only {h}×{w}; "
                f"put a Resize/Pad before the crop"
            )
        gen = self._gen(rng)
        top = int(gen.integers(0, h - self.height + 1))
        left = int(gen.integers(0, w - self.width + 1))
        return _crop(record, top, left, self.height, self.width)


class Random2DTranslation(RandomTransform):
    """RGA-SC / torchreid augmentation: with probability ``p`` resize to 1.125× and crop back.

    Otherwise a plain resize to ``height × width``. The crop offset is ``round(U(0, range))``
    as in torchreid ``Random2DTranslation``.
    """

    def __init__(
        self,
        height: int,
        width: int,
        p: float = 0.5,
        interpolation: int = cv2.INTER_LINEAR,
        seed: SeedLike = None,
    ) -> None:
        super().__init__(seed)
        self.height, self.width = check_size("Random2DTranslation", height, width)
        self.p = check_probability("Random2DTranslation", p)
        self.interpolation = interpolation

    def __call__(self, record: Record, rng: np.random.Generator | None = None) -> Record:
        gen = self._gen(rng)
        if gen.random() > self.p:
            return Resize(self.height, self.width, self.interpolation)(record)
        big_h, big_w = round(self.height * 1.125), round(self.width * 1.125)
        record = Resize(big_h, big_w, self.interpolation)(record)
        top = round(gen.uniform(0, big_h - self.height))
        left = round(gen.uniform(0, big_w - self.width))
        return _crop(record, top, left, self.height, self.width)


class ToTensor(Transform):
    """numpy record → torch sample: image C×H×W float32 in [0, 1], mask uint8, parts int64."""

    def __call__(self, record: Record, rng: np.random.Generator | None = None) -> Record:
        out = dict(record)
        image = np.ascontiguousarray(record["image"].transpose(2, 0, 1))  # H×W×3 -> 3×H×W
        out["image"] = torch.from_numpy(image).float().div_(255.0)
        if "mask" in out:
            out["mask"] = torch.from_numpy(np.ascontiguousarray(out["mask"], dtype=np.uint8))
        if "parts" in out:
            out["parts"] = torch.from_numpy(np.ascontiguousarray(out["parts"], dtype=np.int64))
        if "keypoints" in out:
            kp = np.asarray(out["keypoints"], dtype=np.float32).reshape(-1, 3)
            out["keypoints"] = torch.from_numpy(kp.copy())
        return out


class Normalize(Transform):
    """``(image - mean) / std`` per channel on the C×H×W tensor (after ``ToTensor``)."""

    def __init__(
        self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
    ) -> None:
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)

    def __call__(self, record: Record, rng: np.random.Generator | None = None) -> Record:
        image = record["image"]
        if not isinstance(image, torch.Tensor):
            raise TypeError("Normalize expects a tensor image: put ToTensor() before Normalize()")
        mean = torch.tensor(self.mean, dtype=image.dtype).view(-1, 1, 1)  # C×1×1
        std = torch.tensor(self.std, dtype=image.dtype).view(-1, 1, 1)
        return {**record, "image": (image - mean) / std}


class RandomErasing(RandomTransform):
    """Random Erasing (Zhong et al. AAAI 2020) as in BoT: on the *normalised* C×H×W tensor.

    With probability ``p``, up to 100 attempts draw an area fraction ``U(area)`` and an aspect
    ratio ``h/w ~ U(aspect)`` (uniform, not log-uniform, like BoT), ``h = round(sqrt(S·r))``,
    ``w = round(sqrt(S/r))``; the first box that fits strictly inside the image is filled.
    ``fill``: ``"mean"`` writes the pipeline's mean constants (BoT: 0.485/0.456/0.406 into the
    normalised tensor), a number or per-channel sequence writes that (RGA-SC: 0), ``"random"``
    writes standard-normal noise (the paper's default). Masks and keypoints are left alone.
    Differs from BoT only in requiring ``h, w >= 1``.
    """

    def __init__(
        self,
        p: float = 0.5,
        area: tuple[float, float] = (0.02, 0.4),
        aspect: tuple[float, float] = (0.3, 1 / 0.3),
        fill: str | float | Sequence[float] = "mean",
        mean: Sequence[float] = IMAGENET_MEAN,
        attempts: int = 100,
        seed: SeedLike = None,
    ) -> None:
        super().__init__(seed)
        if isinstance(fill, str) and fill not in ("mean", "random"):
            raise ValueError(
                f"RandomErasing: fill must be 'mean', 'random' or numbers, got {fill!r}"
            )
        self.p = check_probability("RandomErasing", p)
        self.area, self.aspect, self.fill = area, aspect, fill
        self.mean, self.attempts = tuple(mean), int(attempts)

    def __call__(self, record: Record, rng: np.random.Generator | None = None) -> Record:
        gen = self._gen(rng)
        if gen.random() >= self.p:
            return record
        image = record["image"]
        if not isinstance(image, torch.Tensor):
            raise TypeError(
                "RandomErasing works on the normalised tensor: put it after Normalize()"
            )
        c, h, w = image.shape
        for _ in range(self.attempts):
            target = gen.uniform(*self.area) * h * w
            ratio = gen.uniform(*self.aspect)
            eh, ew = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
            if 1 <= eh < h and 1 <= ew < w:
                top, left = int(gen.integers(0, h - eh + 1)), int(gen.integers(0, w - ew + 1))
                image = image.clone()
                image[:, top : top + eh, left : left + ew] = self._fill_value(c, eh, ew, gen, image)
                return {**record, "image": image}
        return record

    def _fill_value(
        self, c: int, h: int, w: int, gen: np.random.Generator, like: torch.Tensor
    ) -> torch.Tensor:
        if self.fill == "random":
            return torch.from_numpy(gen.standard_normal((c, h, w))).to(like.dtype)
        values = self.mean if self.fill == "mean" else self.fill
        values = [float(values)] * c if isinstance(values, int | float) else list(values)
        if len(values) != c:
            raise ValueError(f"RandomErasing: fill has {len(values)} values for {c} channels")
        return torch.tensor(values, dtype=like.dtype).view(c, 1, 1)  # broadcast over the box


def build_transforms(
    height: int = 256,
    width: int = 128,
    train: bool = True,
    flip_p: float = 0.5,
    pad: int = 10,
    erasing_p: float = 0.5,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    recipe: str = "bot",
    seed: SeedLike = None,
) -> Compose:
    """The BoT (``recipe="bot"``) or RGA-SC (``"rga"``) training pipeline, or the test one.

    Test: Resize → ToTensor → Normalize. A step whose probability / padding is 0 is left out.
    """
    check_size("build_transforms", height, width)
    for name, p in (("flip_p", flip_p), ("erasing_p", erasing_p)):
        check_probability(f"build_transforms: {name}", p)
    if isinstance(pad, bool) or not isinstance(pad, int | np.integer) or pad < 0:
        raise ValueError(f"build_transforms: pad={pad!r}; need a whole number of pixels >= 0")
    tail: list[Transform] = [ToTensor(), Normalize(mean, std)]
    if not train:
        return Compose([Resize(height, width), *tail], seed=seed)
    if recipe == "bot":
        steps: list[Transform] = [Resize(height, width)]
        if flip_p > 0:
            steps.append(RandomHorizontalFlip(flip_p))
        if pad > 0:
            steps += [Pad(pad), RandomCrop(height, width)]
        fill: str | float = "mean"
    elif recipe == "rga":
        steps = [Random2DTranslation(height, width)]
        if flip_p > 0:
            steps.append(RandomHorizontalFlip(flip_p))
        fill = 0.0
    else:
        raise ValueError(f"build_transforms: unknown recipe {recipe!r}; use 'bot' or 'rga'")
    steps += tail
    if erasing_p > 0:
        steps.append(RandomErasing(erasing_p, fill=fill, mean=mean))
    return Compose(steps, seed=seed)


def denormalize(
    image: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """Normalised C×H×W tensor → H×W×3 uint8 RGB array (for display)."""
    x = image.detach().cpu().float()
    x = x * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
    x = (x.clamp(0, 1) * 255.0).round().to(torch.uint8)
    return x.permute(1, 2, 0).numpy()  # H×W×3


def seed_transforms(transform: object, seed: SeedLike) -> None:
    """Reseed ``transform`` (a ``RandomTransform``/``Compose``); other callables are left as is."""
    if isinstance(transform, RandomTransform):
        transform.reseed(seed)


def worker_init_fn(worker_id: int) -> None:
    """DataLoader hook: reseed ``dataset.transform`` of this worker with torch's worker seed.

    Follows ``.dataset`` links (``torch.utils.data.Subset``) to find the transform.
    """
    info = torch.utils.data.get_worker_info()
    if info is None:
        return
    dataset = info.dataset
    while not hasattr(dataset, "transform") and hasattr(dataset, "dataset"):
        dataset = dataset.dataset
    seed_transforms(getattr(dataset, "transform", None), info.seed)
