"""A fast test-time image loader: threads decode JPEGs straight to the model's input size.

For evaluation, explanation and widgets the per-image work is only decode → resize → normalise,
and with a small CPU model that work costs as much as the forward pass itself. This loader

- decodes with OpenCV's reduced-size JPEG decoding (``IMREAD_REDUCED_COLOR_2/4/8``, a DCT-domain
  downscale) when the stored images are at least twice the target size, then resizes the rest
  of the way bilinearly (the ``Resize`` transform's interpolation);
- runs decoding in a thread pool (``cv2.imdecode`` releases the GIL), prefetching batches while
  the model runs, with no worker processes to start and nothing to pickle;
- normalises in numpy inside the decoding threads, straight into the batch array.

It yields the same collated batch dicts as ``DataLoader(ReIDDataset(...), collate_fn=collate)``
with the test transforms: ``image`` (B, 3, H, W) float32, ``pid``, ``camid`` (int64 tensors),
``path`` (list), ``index`` (int64). With ``reduced_decode=False`` the images are bit-identical
to that pipeline; with it, they differ by the DCT-vs-bilinear downscale (≈1 grey level).
"""

from __future__ import annotations

import itertools
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch

from workbench.data.dataset import read_image
from workbench.data.transforms import IMAGENET_MEAN, IMAGENET_STD

_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}  # fmt: skip


def reduce_factor(stored: tuple[int, int], target: tuple[int, int]) -> int:
    """Largest of 1, 2, 4, 8 that keeps the decoded image at least ``target`` in both sides."""
    factor = 1
    for f in (2, 4, 8):
        if stored[0] // f >= target[0] and stored[1] // f >= target[1]:
            factor = f
    return factor


def decode_flag(path: str, size: tuple[int, int], reduced_decode: bool = True) -> int:
    """The OpenCV decode flag the loader uses for images like ``path`` at target ``size``:
    reduced JPEG decoding by the largest factor that keeps the image at least ``size``."""
    if not (reduced_decode and str(path).lower().endswith((".jpg", ".jpeg"))):
        return cv2.IMREAD_COLOR
    stored = read_image(path).shape[:2]  # datasets store one crop size
    return _REDUCED[reduce_factor(stored, size)]


def decode_at(path: str, size: tuple[int, int], flag: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """(H, W, 3) uint8 RGB of ``path`` at ``size``: decoded with ``flag``, then resized
    bilinearly — the pixels the loader gives the model (the apps show and explain the same)."""
    return _decode(path, size, flag)[0]


def _decode(
    path: str, size: tuple[int, int], flag: int
) -> tuple[np.ndarray, tuple[int, int] | None]:
    """:func:`decode_at`, and the stored size of a file smaller than the reduced decode assumed
    (a folder of mixed crop sizes): such a file is decoded whole, never reduced below ``size``."""
    h, w = size
    image = read_image(path, flag)  # H'×W'×3 RGB uint8
    odd = None
    if flag != cv2.IMREAD_COLOR and (image.shape[0] < h or image.shape[1] < w):
        image = read_image(path)
        odd = (int(image.shape[0]), int(image.shape[1]))
    if image.shape[:2] != (h, w):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return image, odd


class BatchImageLoader:
    """Iterate a split table in batches of normalised image tensors (see module docstring)."""

    def __init__(
        self,
        table: pd.DataFrame,
        height: int,
        width: int,
        batch_size: int = 128,
        threads: int = 2,
        reduced_decode: bool = True,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        prefetch: int = 2,
    ) -> None:
        if batch_size < 1 or threads < 1:
            raise ValueError(f"batch_size={batch_size}, threads={threads}: both must be >= 1")
        self.paths = table["path"].astype(str).tolist()
        self.pids = torch.tensor(table["pid"].to_numpy(np.int64))
        self.camids = torch.tensor(table["camid"].to_numpy(np.int64))
        self.size = (height, width)
        self.batch_size, self.threads, self.prefetch = batch_size, threads, prefetch
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1) * 255.0
        self.inv_std = 1.0 / (np.asarray(std, np.float32).reshape(3, 1, 1) * 255.0)
        self.flag = (
            decode_flag(self.paths[0], self.size, reduced_decode)
            if self.paths
            else cv2.IMREAD_COLOR
        )
        self.odd_sizes: list[tuple[str, tuple[int, int]]] = []  # files decoded whole (see _decode)

    def __len__(self) -> int:
        return (len(self.paths) + self.batch_size - 1) // self.batch_size

    def _load_into(self, out: np.ndarray, start: int, stop: int, offset: int) -> None:
        """Decode and normalise images ``start..stop`` into ``out`` (one task per thread).

        numpy, not torch: a torch op in this thread would start a second OpenMP team that
        fights the model's threads for the cores.
        """
        for i in range(start, stop):
            image, odd = _decode(self.paths[i], self.size, self.flag)  # H×W×3 RGB uint8
            if odd is not None:
                self.odd_sizes.append((self.paths[i], odd))
            out[i - offset] = (image.transpose(2, 0, 1) - self.mean) * self.inv_std  # (3, H, W)

    def _batch(self, pool: ThreadPoolExecutor, start: int) -> dict[str, Any]:
        stop = min(start + self.batch_size, len(self.paths))
        images = np.empty((stop - start, 3, *self.size), np.float32)  # (B, 3, H, W)
        bounds = np.linspace(start, stop, self.threads + 1).astype(int)
        tasks = [
            pool.submit(self._load_into, images, a, b, start) for a, b in itertools.pairwise(bounds)
        ]
        for task in tasks:
            task.result()
        return {
            "image": torch.from_numpy(images),
            "pid": self.pids[start:stop],
            "camid": self.camids[start:stop],
            "path": self.paths[start:stop],
            "index": torch.arange(start, stop),
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        starts = deque(range(0, len(self.paths), self.batch_size))
        with ThreadPoolExecutor(self.threads) as pool, ThreadPoolExecutor(1) as feeder:
            pending: deque[Future] = deque()
            while starts or pending:
                while starts and len(pending) < self.prefetch:
                    pending.append(feeder.submit(self._batch, pool, starts.popleft()))
                yield pending.popleft().result()
        if self.odd_sizes:
            path, size = self.odd_sizes[0]
            warnings.warn(
                f"{len(self.odd_sizes)} of {len(self.paths)} images are smaller than the first "
                f"one (e.g. {path}: {size[0]}×{size[1]}), so they were decoded at full scale "
                f"and upscaled to {self.size[0]}×{self.size[1]}: crops of mixed sizes often mean "
                f"mixed sources or a damaged folder",
                UserWarning,
                stacklevel=1,  # the caller is whatever iterates (tqdm): name this file
            )
