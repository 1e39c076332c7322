"""Embedding extraction: run a model in eval mode over a loader of collated sample dicts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from workbench.device import resolve_device
from workbench.models.base import eval_mode
from workbench.models.inputs import check_images

REQUIRED_KEYS = ("image", "pid", "camid", "path")


@dataclass
class Features:
    """Embeddings of N images and their labels, row-aligned."""

    feats: torch.Tensor  # (N, D) float32, CPU
    pids: np.ndarray  # (N,) int64
    camids: np.ndarray  # (N,) int64
    paths: list[str]

    def __post_init__(self) -> None:
        n = self.feats.shape[0]
        if self.feats.ndim != 2 or not len(self.pids) == len(self.camids) == len(self.paths) == n:
            raise ValueError(
                f"Features are not row-aligned: feats {tuple(self.feats.shape)}, "
                f"{len(self.pids)} pids, {len(self.camids)} camids, {len(self.paths)} paths"
            )

    def __len__(self) -> int:
        return self.feats.shape[0]


def _labels(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().astype(np.int64).reshape(-1)
    return np.asarray(value, dtype=np.int64).reshape(-1)


def _embed(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    out = model(images)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != images.shape[0]:
        got = (
            f"a {type(out).__name__}"
            if not isinstance(out, torch.Tensor)
            else f"shape {tuple(out.shape)}"
        )
        raise TypeError(
            f"{type(model).__name__}(images) must return the (B, D) embedding in eval mode "
            f"(the workbench model contract), got {got} for a batch of {images.shape[0]}"
        )
    return out


def extract_features(
    model: nn.Module,
    loader: Iterable[Mapping[str, Any]],
    device: str | torch.device = "auto",
    flip: bool = False,
    normalize: bool = False,
    progress: bool = True,
) -> Features:
    """Embed every image of ``loader`` with ``model`` in eval mode.

    Args:
        model: ``forward(images) -> (B, D)`` in eval mode. It is moved to ``device`` and put in
            eval mode for the call; its train/eval mode is restored afterwards.
        loader: iterable of collated sample dicts with ``image`` (B, 3, H, W), ``pid`` and
            ``camid`` (tensors or lists) and ``path`` (list of str), e.g. a ``DataLoader``.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda:0"``, ...
        flip: average the embedding of each image and of its horizontal flip (a common test-time
            augmentation; BoT and FastReID offer it, off by default).
        normalize: L2-normalise each (averaged) embedding.
        progress: show a tqdm bar.

    Returns:
        ``Features`` with (N, D) float32 embeddings on the CPU. Embeddings stay on ``device``
        until the end (one copy, no per-batch synchronisation).
    """
    dev = resolve_device(device)
    model.to(dev)
    feats: list[torch.Tensor] = []
    pids: list[np.ndarray] = []
    camids: list[np.ndarray] = []
    paths: list[str] = []
    with eval_mode(model), torch.inference_mode():
        for batch in tqdm(loader, desc="features", unit="batch", disable=not progress):
            missing = [k for k in REQUIRED_KEYS if k not in batch]
            if missing:
                raise KeyError(
                    f"loader batches must be dicts with keys {list(REQUIRED_KEYS)} (the "
                    f"sample contract); this batch lacks {missing}, has {sorted(batch)}"
                )
            images = check_images(model, batch["image"], where="loader images")  # (B, 3, H, W)
            images = images.to(dev, non_blocking=True)
            emb = _embed(model, images)  # (B, D)
            if flip:
                emb = (emb + _embed(model, images.flip(-1))) / 2
            if normalize:
                emb = F.normalize(emb, dim=1)
            feats.append(emb.float())
            pids.append(_labels(batch["pid"]))
            camids.append(_labels(batch["camid"]))
            paths.extend(str(p) for p in batch["path"])
    if not feats:
        raise ValueError("the loader yielded no batches: check the dataset is not empty")
    return Features(
        feats=torch.cat(feats).cpu(),
        pids=np.concatenate(pids),
        camids=np.concatenate(camids),
        paths=paths,
    )
