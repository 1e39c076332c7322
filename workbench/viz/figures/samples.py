"""The images a figure shows: chosen by seed from a split, with their ground truth for display."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

__all__ = [
    "DATA_INPUTS",
    "Sample",
    "batch",
    "has_input",
    "load_samples",
    "matched_subsplit",
    "missing_inputs",
    "pick_rows",
]


def _has_column(column: str) -> Callable[[Any], bool]:
    def has(split: Any) -> bool:
        q = split.query
        return column in q.columns and bool(q[column].notna().any())

    return has


def _has_attributes(split: Any) -> bool:
    from workbench.data.attributes import find_attribute_file

    root = getattr(split, "root", None)
    if root is None:
        return False
    try:
        find_attribute_file(root)
    except FileNotFoundError:
        return False
    except ValueError:  # two attribute files: there are attributes (loading asks which)
        return True
    return True


def _is_synthetic(split: Any) -> bool:
    from workbench.data.manifest import META_FILE

    root = getattr(split, "root", None)
    return root is not None and (Path(root) / META_FILE).is_file()


#: the dataset annotations a recipe can declare (``register_figure(requires=..., uses=...)``):
#: name -> (what it is and where the reader finds it, whether a split has it). A new kind of
#: annotation is one line here.
DATA_INPUTS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "masks": ("person/part masks (masks/<folder>/<image>.png)", _has_column("mask_path")),
    "keypoints": ("keypoints (keypoints/<folder>.csv, 17 COCO points)", _has_column("keypoints")),
    "attributes": (
        "an attribute file (market_attribute.mat / duke_attribute.mat)",
        _has_attributes,
    ),
    "synthetic": (
        "a dataset the workbench rendered (synth.json; `workbench synth`)",
        _is_synthetic,
    ),
}


def has_input(split: Any, name: str) -> bool:
    """Whether the split's query images have the annotation ``name`` (:data:`DATA_INPUTS`)."""
    return DATA_INPUTS[name][1](split)


def missing_inputs(split: Any, names: Sequence[str]) -> list[str]:
    """The annotations of ``names`` that the split lacks, described for a user."""
    return [DATA_INPUTS[n][0] for n in names if not has_input(split, n)]


@dataclass
class Sample:
    """One image at the model's input size: the tensor, the RGB picture and what is known."""

    image: Tensor  # (3, H, W), normalised
    rgb: np.ndarray  # (H, W, 3) uint8
    parts: np.ndarray | None  # (H, W) part labels (annotations.PART_LABELS)
    keypoints: np.ndarray | None  # (17, 3) x, y, visibility at the input size
    pid: int
    camid: int
    path: str


def pick_rows(table: pd.DataFrame, n: int, seed: int = 0, distinct_ids: bool = True) -> list[int]:
    """``n`` row positions of ``table`` chosen by ``seed`` (one per identity by default)."""
    rng = np.random.default_rng(seed)
    rows = np.arange(len(table))
    if distinct_ids:
        first = table.reset_index(drop=True).groupby("pid", sort=True).head(1).index.to_numpy()
        rows = first[table.pid.to_numpy()[first] > 0]
    n = min(n, len(rows))
    return sorted(rng.choice(rows, size=n, replace=False).tolist())


def matched_subsplit(split: Any, queries: int, seed: int = 0) -> Any:
    """``queries`` queries with a cross-camera true match, and only their identities' gallery.

    Each query's closest cross-camera true match (:func:`~workbench.evaluate.report.choose_pairs`)
    is the same as over the whole gallery, since what is left out holds no true match; embedding
    this small split instead of the whole test split is what keeps per-model panels quick.
    """
    from workbench.evaluate.report import cross_camera_matches

    q, g = split.query.reset_index(drop=True), split.gallery
    matched = np.flatnonzero(cross_camera_matches(q, g).any(1))
    if not matched.size:
        raise ValueError("no query has a true match from another camera in the gallery")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(matched, size=min(queries, len(matched)), replace=False))
    query = q.iloc[rows].reset_index(drop=True)
    gallery = g[g.pid.isin(set(query.pid))].reset_index(drop=True)
    return replace(split, query=query, gallery=gallery, name=f"{split.name} ({len(rows)} queries)")


def load_samples(table: pd.DataFrame, rows: list[int], input_size: tuple[int, int]) -> list[Sample]:
    """The rows' images resized to ``input_size`` (the test transform), with masks and keypoints."""
    from workbench.data.dataset import ReIDDataset
    from workbench.data.transforms import build_transforms, denormalize

    h, w = input_size
    dataset = ReIDDataset(table, build_transforms(h, w, train=False))
    out = []
    for r in rows:
        s = dataset[int(r)]
        out.append(
            Sample(
                image=s["image"],
                rgb=denormalize(s["image"]),
                parts=s["parts"].numpy() if "parts" in s else None,
                keypoints=s["keypoints"].numpy() if "keypoints" in s else None,
                pid=int(s["pid"]),
                camid=int(s["camid"]),
                path=str(s["path"]),
            )
        )
    return out


def batch(samples: list[Sample], device: torch.device | str = "cpu") -> Tensor:
    """(N, 3, H, W) of the samples' images on ``device``."""
    return torch.stack([s.image for s in samples]).to(device)


def input_size(model: torch.nn.Module) -> tuple[int, int]:
    """(H, W) the model is evaluated at: its card's, else its config's."""
    from workbench.models.inputs import input_contract

    return input_contract(model).input_size or tuple(model.config.input_size)


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
