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


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read (truncated, or not written by the trainer)."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a training checkpoint (tensors and plain containers only).

    Fails at once, naming the path, for a missing run folder, a folder without a checkpoint,
    and a truncated or foreign file.
    """
    path = Path(path)
    if path.is_dir() or (not path.exists() and path.suffix != ".pt"):  # a run folder
        path = path / CHECKPOINT_NAME
    if not path.parent.exists():
        raise FileNotFoundError(
            f"{path.parent}: no such run folder, so there is nothing to --resume; check --out, "
            f"or start a new run there without --resume"
        )
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no checkpoint to resume from (the run never completed an epoch); start "
            f"without --resume"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise CheckpointError(
            f"{path}: not a readable training checkpoint ({type(e).__name__}: the file is "
            f"truncated, corrupt or was not written by `workbench train`); restore it, or delete "
            f"it and train again without --resume"
        ) from e
    missing = (
        [k for k in ("epoch", "model", "optimizer", "config") if k not in ckpt]
        if (isinstance(ckpt, dict))
        else ["epoch"]
    )
    if missing:
        raise CheckpointError(
            f"{path}: not a checkpoint of `workbench train` (it lacks {missing}); restore it, or "
            f"delete it and train again without --resume"
        )
    return ckpt
