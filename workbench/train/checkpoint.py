"""Atomic checkpoints: write to a temporary file in the same folder, then rename.

A run killed at any moment leaves either the previous checkpoint or the new one, never a torn
file, so ``--resume`` loses at most the epoch in progress. Checkpoints load with
``torch.load(weights_only=True)``: no code is executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from workbench.fileio import atomic_writer

CHECKPOINT_NAME = "checkpoint.pt"


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` atomically (temp file + fsync + ``os.replace``, mode 0644)."""
    with atomic_writer(path) as f:
        torch.save(obj, f)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a training checkpoint (tensors and plain containers only)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from; start without --resume")
    return torch.load(path, map_location="cpu", weights_only=True)
