"""Market-1501 style folders, shared by the Market-1501, DukeMTMC-reID and CUHK03-NP readers.

A data folder holds ``bounding_box_train/`` (train), ``query/`` and ``bounding_box_test/``
(gallery) with names like ``0002_c1s1_000451_03.jpg`` (see ``split.parse_market_name``).
Junk policy (differs from torchreid, which drops pid -1 everywhere): pid -1 is dropped from train,
*kept* in the gallery (the evaluation ignores it; keeping it keeps the gallery equal to the
folder) and kept in the query with a warning; pid 0 distractors stay in the gallery.
Per-image annotations beside the folders (``masks/``, ``keypoints/``; see ``annotations.py``)
become the optional columns ``mask_path`` and ``keypoints``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.annotations import KEYPOINT_DIR, MASK_DIR, read_keypoints
from workbench.data.manifest import check_complete
from workbench.data.readers.registry import DatasetLayoutError, LayoutNotFound
from workbench.data.split import FileNameError, Split, parse_market_name

MARKET_FOLDERS: dict[str, str] = {
    "train": "bounding_box_train",
    "query": "query",
    "gallery": "bounding_box_test",
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")  # anything else (Thumbs.db, ...) is skipped
_SHOW_BAD = 5  # bad file names quoted in an error


class EmptyFolderError(DatasetLayoutError):
    """A dataset folder without any image."""


def _quote(items: list[str]) -> str:
    """The first few items, and how many more."""
    more = f" and {len(items) - _SHOW_BAD} more" if len(items) > _SHOW_BAD else ""
    return f"{items[:_SHOW_BAD]}{more}"


def show(rel: str) -> str:
    """``"."`` -> ``ROOT``, ``"a/b"`` -> ``ROOT/a/b`` (for messages)."""
    return "ROOT" if rel == "." else f"ROOT/{rel}"


def find_market_folders(root: Path, candidates: Sequence[str]) -> Path:
    """The first ``root/<candidate>`` holding the three Market-1501 folders.

    Raises ``LayoutNotFound`` naming the candidates, or, when one holds only some of the three
    folders, which ones it lacks.
    """
    partial: tuple[str, list[str]] | None = None
    for rel in candidates:
        folder = root / rel
        if not folder.is_dir():
            continue
        present = [f for f in MARKET_FOLDERS.values() if (folder / f).is_dir()]
        if len(present) == len(MARKET_FOLDERS):
            return folder
        if present and partial is None:
            partial = (rel, present)
    if partial is not None:
        rel, present = partial
        missing = [f"{f}/" for f in MARKET_FOLDERS.values() if f not in present]
        have = ", ".join(f"{p}/" for p in present)
        raise LayoutNotFound(f"{show(rel)} has {have} but no {', '.join(missing)}")
    where = ", ".join(show(c) for c in candidates[:-1])
    where = f"{where} or {show(candidates[-1])}" if where else show(candidates[-1])
    raise LayoutNotFound(f"no bounding_box_train/ in {where}")


def read_image_folder(folder: Path) -> pd.DataFrame:
    """One row per image of ``folder`` (Market-1501 names), sorted by path: path, pid, camid[, seq].

    Every name is parsed before failing, so one error lists all bad names (count + the first few).
    """
    names, broken, subfolders = [], [], []
    for e in os.scandir(folder):
        if e.is_dir():
            subfolders.append(e.name)
        elif e.name.lower().endswith(IMAGE_SUFFIXES):
            (names if e.is_file() else broken).append(e.name)  # is_file() follows symlinks
    names.sort()
    if broken:
        raise DatasetLayoutError(
            f"{folder}: {len(broken)} image entries are broken symbolic links or not files: "
            f"{_quote(sorted(broken))}; restore their targets or remove them"
        )
    nested = [
        f"{sub}/{n}"
        for sub in sorted(subfolders)
        for n in sorted(os.listdir(folder / sub))
        if n.lower().endswith(IMAGE_SUFFIXES)
    ]
    if nested:
        warnings.warn(
            f"{folder}: {len(nested)} images in subfolders are not read (only the folder's own "
            f"images are): {_quote(nested)}; move them up if they belong to the dataset",
            stacklevel=2,
        )
    stems: dict[str, list[str]] = {}
    for n in names:
        stems.setdefault(os.path.splitext(n)[0], []).append(n)
    doubled = [" = ".join(v) for v in stems.values() if len(v) > 1]
    if doubled:
        raise DatasetLayoutError(
            f"{folder}: {len(doubled)} images are stored twice under different suffixes and "
            f"would count twice: {_quote(doubled)}; keep one file of each"
        )
    if not names:
        raise EmptyFolderError(
            f"{folder}: no images ({', '.join('*' + s for s in IMAGE_SUFFIXES)}) in this folder; "
            f"the dataset was unpacked incompletely or into another folder: unpack it again"
        )
    parsed, bad = [], []
    for name in names:
        try:
            parsed.append(parse_market_name(name))
        except FileNameError:
            bad.append(name)
    if bad:
        more = f" and {len(bad) - _SHOW_BAD} more" if len(bad) > _SHOW_BAD else ""
        raise FileNameError(
            f"{folder}: {len(bad)} of {len(names)} image names do not parse as "
            f"PPPP_cCsS_FFFFFF_NN.jpg (Market-1501) or PPPP_cC_fFFFFFFF.jpg (DukeMTMC-reID): "
            f"{bad[:_SHOW_BAD]}{more}; rename them or move them out of the folder"
        )
    base = str(folder)
    table = pd.DataFrame(
        {
            "path": [os.path.join(base, n) for n in names],
            "pid": np.array([p.pid for p in parsed], dtype=np.int64),
            "camid": np.array([p.camid for p in parsed], dtype=np.int64),
        }
    )
    seqs = [p.seq for p in parsed]
    if all(s is not None for s in seqs):
        table["seq"] = np.array(seqs, dtype=np.int64)
    elif any(s is not None for s in seqs):
        table["seq"] = pd.array(seqs, dtype="Int64")  # mixed naming: <NA> where a name has no sN
    return table


def add_annotations(table: pd.DataFrame, data_dir: Path, folder_name: str) -> pd.DataFrame:
    """Add ``mask_path`` / ``keypoints`` columns where ``data_dir/masks|keypoints`` have them.

    Each mask folder is listed once (not one ``stat`` per image); images without a mask get
    ``None``, and so do images missing from the keypoint file, whose ``name`` column may hold
    the image file name or its stem.
    """
    mask_dir = data_dir / MASK_DIR / folder_name
    if mask_dir.is_dir():
        have = {e.name for e in os.scandir(mask_dir)}
        # = annotations.mask_path_for(data_dir, path), in plain strings (pathlib is 10x slower)
        names = [os.path.splitext(os.path.basename(p))[0] + ".png" for p in table["path"].tolist()]
        paths = [os.path.join(mask_dir, n) if n in have else None for n in names]
        table["mask_path"] = pd.Series(paths, index=table.index, dtype=object)  # keep None
    kp_file = data_dir / KEYPOINT_DIR / f"{folder_name}.csv"
    if kp_file.is_file():
        by_name = read_keypoints(kp_file)  # {image name: (17, 3) float32}
        column = np.empty(len(table), dtype=object)
        for i, p in enumerate(table["path"].tolist()):
            name = os.path.basename(p)
            column[i] = by_name.get(name, by_name.get(os.path.splitext(name)[0]))
        table["keypoints"] = pd.Series(column, index=table.index, dtype=object)
    return table


def read_market_style(data_dir: Path, name: str, meta: dict | None = None) -> Split:
    """Read the three folders of ``data_dir`` with the junk policy of this module's docstring.

    A folder the workbench generated is checked against its manifest (``manifest.py``) first.
    """
    parts = {}
    meta = dict(meta or {})
    check_complete(data_dir, None)  # an unfinished generation: refuse before reading anything
    tables = {}
    for folder_name in MARKET_FOLDERS.values():
        try:
            tables[folder_name] = read_image_folder(data_dir / folder_name)
        except EmptyFolderError:
            check_complete(data_dir, {folder_name: 0})  # an empty folder of a generated dataset
            raise
    check_complete(data_dir, {name: len(t) for name, t in tables.items()})
    for part, folder_name in MARKET_FOLDERS.items():
        table = tables[folder_name]
        junk = table["pid"] == -1
        if part == "train" and junk.any():
            meta["train_junk_dropped"] = int(junk.sum())
            table = table.loc[~junk].reset_index(drop=True)
        elif part == "query" and junk.any():
            warnings.warn(
                f"{data_dir / folder_name}: {int(junk.sum())} query images have pid -1 (junk); "
                f"kept, but they have no true match; remove them from the query folder",
                stacklevel=4,
            )
        parts[part] = add_annotations(table, data_dir, folder_name)
    return Split(**parts, name=name, root=data_dir, meta=meta)
