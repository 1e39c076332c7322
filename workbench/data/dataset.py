"""``ReIDDataset``: one row of a split table → one sample dict (DESIGN.md "A sample").

Columns used: ``path``, ``pid``, ``camid`` (required, see ``split.py``), and where present
``mask_path`` (part-label PNG, ``annotations.PART_LABELS``; the person mask is ``parts > 0``) and
``keypoints`` ((17, 3) array per row, COCO order, continuous pixel coordinates as in
``transforms.py``). A row whose ``mask_path`` / ``keypoints`` is empty (None / NaN) simply has no
such field: missing fields are absent, never zero-filled.

Sample fields: ``image`` (C×H×W float tensor), ``pid``, ``camid``, ``path``, ``index`` (row
position), and where known ``mask`` (H×W uint8), ``parts`` (H×W int64), ``keypoints`` ((17, 3)
float32), ``attributes`` (int64 vector, the attribute table's columns in order), ``label``
(contiguous training label). Batch them with ``collate``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, get_worker_info

from workbench.data.split import REQUIRED_COLUMNS, Split, relabel
from workbench.data.transforms import Compose, Normalize, Record, ToTensor, seed_transforms


class ImageDecodeError(OSError):
    """An image or mask file that is missing, empty or does not decode."""


def read_image(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Read an image with ``cv2.imdecode(np.fromfile(...))`` (non-ASCII paths work); BGR → RGB.

    ``flags=cv2.IMREAD_UNCHANGED`` returns label PNGs as they are stored (no colour conversion).
    """
    fix = "delete the file (and its row) or re-extract / regenerate the dataset"
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as err:  # FileNotFoundError, IsADirectoryError, PermissionError
        raise ImageDecodeError(f"{path}: cannot read the file ({err.strerror}); {fix}") from err
    if data.size == 0:
        raise ImageDecodeError(f"{path}: the file is empty; {fix}")
    image = cv2.imdecode(data, flags)
    if image is None:
        raise ImageDecodeError(f"{path}: the file does not decode as an image; {fix}")
    if image.ndim == 3 and flags != cv2.IMREAD_UNCHANGED:  # colour reads, reduced ones too
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)  # H×W×3 RGB
    return image


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


class ReIDDataset(Dataset):
    """Person images of one split table, with the annotations the table knows about.

    Args:
        table: one row per image (``path, pid, camid`` + optional ``mask_path``, ``keypoints``).
        transform: record → sample (``transforms.build_transforms``); ``None`` means
            ToTensor + Normalize(ImageNet) only (no resizing, so only equal-sized images batch).
        attributes: per-identity attribute table, index = pid, one int column per attribute
            (``schema.py`` coding). Samples of pids not in it get no ``attributes`` field.
        pid_to_label: pid → contiguous label (``split.relabel``); adds ``label`` to samples.
        load_masks: read ``mask_path`` files (set False to skip the extra PNG decode).

    Random transforms are reseeded per DataLoader worker (torch's worker seed) on the first
    item a worker loads, so workers never repeat each other's augmentations.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        transform: Callable[[Record], Record] | None = None,
        attributes: pd.DataFrame | None = None,
        pid_to_label: Mapping[int, int] | None = None,
        load_masks: bool = True,
    ) -> None:
        missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"ReIDDataset: table lacks required columns {missing}")
        self.transform = transform if transform is not None else Compose([ToTensor(), Normalize()])
        self.paths: list[str] = [str(p) for p in table["path"]]
        self.pids = table["pid"].to_numpy(np.int64)
        self.camids = table["camid"].to_numpy(np.int64)
        use_masks = load_masks and "mask_path" in table.columns
        self.mask_paths = list(table["mask_path"]) if use_masks else None
        self.keypoints = list(table["keypoints"]) if "keypoints" in table.columns else None
        self.attributes = _attribute_lookup(attributes)
        self.attribute_names = (
            [str(c) for c in attributes.columns] if attributes is not None else []
        )
        self.pid_to_label = (
            None if pid_to_label is None else {int(k): int(v) for k, v in pid_to_label.items()}
        )
        if self.pid_to_label is not None:
            unknown = sorted(set(self.pids.tolist()) - set(self.pid_to_label))
            if unknown:
                raise ValueError(
                    f"ReIDDataset: pid_to_label lacks pids {unknown[:5]}"
                    f"{' ...' if len(unknown) > 5 else ''} of the table; build it with "
                    f"split.relabel(table.pid) over the same table"
                )
        self._worker_seed: int | None = None

    @classmethod
    def from_split(
        cls,
        split: Split,
        part: str = "train",
        transform: Callable[[Record], Record] | None = None,
        attributes: pd.DataFrame | None = None,
        load_masks: bool = True,
        relabel_pids: bool | None = None,
    ) -> ReIDDataset:
        """Dataset of ``split.train`` / ``.query`` / ``.gallery``; train pids are relabelled
        to 0..K-1 by default (``relabel_pids``)."""
        if part not in ("train", "query", "gallery"):
            raise ValueError(
                f"from_split: part must be 'train', 'query' or 'gallery', got {part!r}"
            )
        table = getattr(split, part)
        if relabel_pids is None:
            relabel_pids = part == "train"
        mapping = relabel(table["pid"])[1] if relabel_pids else None
        return cls(table, transform, attributes, mapping, load_masks)

    @property
    def num_classes(self) -> int:
        """Number of training labels (0 when the dataset has no ``pid_to_label``)."""
        return 0 if self.pid_to_label is None else len(self.pid_to_label)

    def __len__(self) -> int:
        return len(self.paths)

    def load_record(self, index: int) -> Record:
        """The untransformed record: numpy image (H×W×3 uint8 RGB) and annotations."""
        path = self.paths[index]
        record: Record = {"image": read_image(path)}
        if self.mask_paths is not None and not _is_missing(self.mask_paths[index]):
            parts = read_image(self.mask_paths[index], cv2.IMREAD_UNCHANGED)
            if parts.ndim != 2 or parts.shape != record["image"].shape[:2]:
                raise ImageDecodeError(
                    f"{self.mask_paths[index]}: expected a single-channel part-label PNG of "
                    f"size {record['image'].shape[:2]} (the image {path}), got {parts.shape}; "
                    f"regenerate the masks"
                )
            record["parts"] = parts.astype(np.uint8)
            record["mask"] = (parts > 0).astype(np.uint8)
        if self.keypoints is not None and not _is_missing(self.keypoints[index]):
            record["keypoints"] = np.asarray(self.keypoints[index], np.float32).reshape(-1, 3)
        return record

    def __getitem__(self, index: int) -> dict[str, Any]:
        info = get_worker_info()
        if info is not None and info.seed != self._worker_seed:  # once per worker
            seed_transforms(self.transform, info.seed)
            self._worker_seed = info.seed
        sample = self.transform(self.load_record(index))
        if not isinstance(sample.get("image"), torch.Tensor):
            raise TypeError(
                "ReIDDataset: the transform must return a tensor image; end it with "
                "ToTensor() and Normalize() (see transforms.build_transforms)"
            )
        pid = int(self.pids[index])
        sample.update(pid=pid, camid=int(self.camids[index]), path=self.paths[index], index=index)
        if pid in self.attributes:
            sample["attributes"] = torch.from_numpy(self.attributes[pid].copy())
        if self.pid_to_label is not None:
            sample["label"] = self.pid_to_label[pid]
        return sample


def _attribute_lookup(attributes: pd.DataFrame | None) -> dict[int, np.ndarray]:
    """pid → int64 attribute vector (-1 = not annotated), with clear errors for a bad table."""
    if attributes is None:
        return {}
    if not attributes.index.is_unique:
        dup = attributes.index[attributes.index.duplicated()].unique().tolist()[:5]
        raise ValueError(f"attribute table: pids {dup} appear more than once; index must be pid")
    try:
        # unannotated cells (<NA>, e.g. Duke's two `top`=0 ids) become -1: "unknown"
        values = attributes.astype("Int64").fillna(-1).to_numpy(np.int64)  # (ids, attributes)
        pids = [int(p) for p in attributes.index]
    except (TypeError, ValueError) as err:
        raise ValueError(
            "attribute table must have integer pids as index and integer attribute columns "
            f"(schema.py coding); got columns {list(attributes.columns)[:5]}...: {err}"
        ) from err
    return dict(zip(pids, values, strict=True))


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch sample dicts: tensors stacked, ints → int64 tensor, strings kept as a list.

    Every sample must have the same fields (missing fields are absent, so a batch mixing
    images with and without a mask cannot be stacked): the error names the field and paths.
    """
    if not samples:
        raise ValueError("collate: empty batch")
    keys = set().union(*(s.keys() for s in samples))
    batch: dict[str, Any] = {}
    for key in sorted(keys):
        lacking = [s.get("path", f"#{i}") for i, s in enumerate(samples) if key not in s]
        if lacking:
            raise ValueError(
                f"collate: field {key!r} is in {len(samples) - len(lacking)} of {len(samples)} "
                f"samples but missing for {lacking[:3]}{' ...' if len(lacking) > 3 else ''}; "
                f"annotate every image or drop the field (e.g. load_masks=False)"
            )
        values = [s[key] for s in samples]
        first = values[0]
        if isinstance(first, torch.Tensor):
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) > 1:
                raise ValueError(
                    f"collate: field {key!r} has different shapes {sorted(shapes)[:3]}; "
                    f"resize every image to one size (transforms.Resize)"
                )
            batch[key] = torch.stack(values)
        elif isinstance(first, bool | str) or not isinstance(first, int | float | np.number):
            batch[key] = values
        else:
            batch[key] = torch.as_tensor(values)  # ints → int64, floats → float32
    return batch
