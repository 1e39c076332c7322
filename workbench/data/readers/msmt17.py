"""MSMT17 (Wei et al., "Person transfer GAN to bridge domain gap for person re-identification",
CVPR 2018): 4,101 ids, 15 cameras; images listed in text files rather than named by the folder.

Layout (as torchreid / FastReID read it): ``MSMT17_V1/{train,test}`` or
``MSMT17_V2/{mask_train_v2,mask_test_v2}`` (V2 blurs faces) beside ``list_train.txt``,
``list_val.txt``, ``list_query.txt``, ``list_gallery.txt``, each line ``<relative path> <pid>``,
e.g. ``0000/0000_000_01_0303morning_0015_0.jpg 0``. camid = third ``_`` field of the name - 1.

Where we differ from torchreid / FastReID:
- ``include_val=True`` (default) trains on train + val lists (32,621 images, the training set of
  the paper); both libraries add the val list only with ``combineall``. ``include_val=False``
  reproduces them (30,248 images).
- pid = list pid + 1, because list pids start at 0 and the workbench reserves pid 0 for
  distractors (``split.meta["pid_offset"] = 1``). Train and test pids are separate numberings, as
  in the lists: train pid 1 and query pid 1 are different people.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.readers.registry import DatasetLayoutError, LayoutNotFound, register_layout
from workbench.data.split import FileNameError, Split

VERSIONS = {"MSMT17_V1": ("train", "test"), "MSMT17_V2": ("mask_train_v2", "mask_test_v2")}
PARENTS = (".", "msmt17", "MSMT17")
PID_OFFSET = 1
_SHOW_BAD = 5


def _find(root: Path) -> tuple[Path, str]:
    if root.name in VERSIONS:
        return root, root.name
    for parent in PARENTS:
        for version in VERSIONS:  # V1 first, as torchreid
            if (root / parent / version).is_dir():
                return root / parent / version, version
    raise LayoutNotFound("no MSMT17_V1/ or MSMT17_V2/ in ROOT, ROOT/msmt17 or ROOT/MSMT17")


def _parse_line(line: str) -> tuple[str, int, int] | None:
    """``'<rel path> <pid>'`` -> (rel path, pid, 1-based camera), or None if it does not parse."""
    fields = line.split()
    if len(fields) != 2:
        return None
    rel, pid = fields
    try:
        cam = int(os.path.basename(rel).split("_")[2])
        return (rel, int(pid), cam) if cam >= 1 else None
    except (IndexError, ValueError):
        return None


def read_list(list_path: Path, image_dir: Path) -> pd.DataFrame:
    """Parse one ``list_*.txt`` into ``path, pid, camid`` (pid shifted by ``PID_OFFSET``)."""
    paths, pids, cams, bad = [], [], [], []
    base = str(image_dir)
    with open(list_path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            parsed = _parse_line(line)
            if parsed is None:
                bad.append(f"line {number}: {line.strip()!r}")
                continue
            paths.append(os.path.join(base, parsed[0]))
            pids.append(parsed[1] + PID_OFFSET)
            cams.append(parsed[2] - 1)
    if bad:
        more = f" and {len(bad) - _SHOW_BAD} more" if len(bad) > _SHOW_BAD else ""
        raise FileNameError(
            f"{list_path}: {len(bad)} lines do not read as '<relative path> <pid>' with an image "
            f"name PID_IDX_CAM_..., e.g. '0000/0000_000_01_0303morning_0015_0.jpg 0': "
            f"{bad[:_SHOW_BAD]}{more}; fix or delete these lines"
        )
    if not paths:
        raise DatasetLayoutError(f"{list_path}: the list is empty; unpack the dataset again")
    return pd.DataFrame(
        {
            "path": paths,
            "pid": np.array(pids, dtype=np.int64),
            "camid": np.array(cams, dtype=np.int64),
        }
    )


@register_layout("msmt17", detect_order=10)
def read_msmt17(root: Path, *, auto: bool = True, include_val: bool = True) -> Split:
    """MSMT17 V1 or V2: 15 cameras, images listed in list_{train,val,query,gallery}.txt."""
    data_dir, version = _find(root)
    train_dir, test_dir = (data_dir / d for d in VERSIONS[version])
    lists = {p: data_dir / f"list_{p}.txt" for p in ("train", "val", "query", "gallery")}
    if not include_val:
        del lists["val"]
    needed = [train_dir, test_dir, *lists.values()]
    missing = [p.name for p in needed if not p.exists()]
    if missing:
        raise DatasetLayoutError(
            f"{data_dir}: this {version} folder lacks {missing}; unpack {version} again "
            f"(it has {VERSIONS[version][0]}/, {VERSIONS[version][1]}/ and the list_*.txt files)"
        )
    tables = {p: read_list(path, test_dir if p in ("query", "gallery") else train_dir)
              for p, path in lists.items()}  # fmt: skip
    train = pd.concat([tables.pop("train"), tables.pop("val", None)], ignore_index=True)
    parts = {
        p: t.sort_values("path", kind="stable").reset_index(drop=True)
        for p, t in (("train", train), ("query", tables["query"]), ("gallery", tables["gallery"]))
    }
    meta = {"version": version, "include_val": include_val, "pid_offset": PID_OFFSET}
    return Split(**parts, name="msmt17", root=data_dir, meta=meta)
