"""Tiny copies of the real dataset layouts, written into a tmp folder for the reader tests.

Each ``make_*`` writes 8×4-pixel images under the real folder and file names and returns what it
wrote as ``{part: [Row, ...]}``, computed from the spec (never by parsing names), so the tests can
compare the readers' tables with an independent truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy.io import savemat

_PIXELS = np.full((8, 4, 3), 128, np.uint8)  # H×W×C
_ENCODED = {s: cv2.imencode(s, _PIXELS)[1].tobytes() for s in (".jpg", ".png")}

MARKET_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


@dataclass(frozen=True)
class Row:
    path: str
    pid: int  # as the reader must report it
    camid: int  # 0-based
    seq: int | None = None


def write_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_ENCODED[path.suffix])


def table(rows: list[Row], seq: bool) -> pd.DataFrame:
    """The expected reader table of ``rows``: sorted by path, int64 columns."""
    df = pd.DataFrame([r.__dict__ for r in rows]).sort_values("path").reset_index(drop=True)
    df = df.astype({"pid": np.int64, "camid": np.int64})
    return df.astype({"seq": np.int64}) if seq else df.drop(columns="seq")


# --- Market-1501: (pid, camera 1-based, sequence, frame, box) ------------------------------------
MARKET_SPEC = {
    "train": [(7, 3, 1, 90, 2), (2, 1, 1, 451, 3), (2, 2, 1, 500, 1), (7, 1, 2, 100, 1), (-1, 1, 1, 1, 1)],
    "query": [(3, 1, 1, 10, 1), (5, 2, 3, 20, 1)],
    "gallery": [(3, 2, 1, 30, 1), (5, 1, 2, 40, 1), (0, 3, 1, 50, 1), (-1, 6, 1, 60, 1), (3, 6, 4, 70, 2)],
}  # fmt: skip


def market_name(pid: int, cam: int, seq: int, frame: int, box: int) -> str:
    head = "-1" if pid == -1 else f"{pid:04d}"
    return f"{head}_c{cam}s{seq}_{frame:06d}_{box:02d}.jpg"


def make_market(data_dir: Path, spec: dict = MARKET_SPEC) -> dict[str, list[Row]]:
    """Market-1501 folders in ``data_dir`` (plus a Thumbs.db, as in the real archive)."""
    out: dict[str, list[Row]] = {}
    for part, entries in spec.items():
        folder = data_dir / MARKET_FOLDERS[part]
        folder.mkdir(parents=True, exist_ok=True)
        out[part] = []
        for pid, cam, seq, frame, box in entries:
            path = folder / market_name(pid, cam, seq, frame, box)
            write_image(path)
            out[part].append(Row(str(path), pid, cam - 1, seq))
    (data_dir / MARKET_FOLDERS["gallery"] / "Thumbs.db").write_bytes(b"not an image")
    return out


# --- DukeMTMC-reID: (pid, camera 1..8, frame) ----------------------------------------------------
DUKE_SPEC = {
    "train": [(5, 2, 46985), (5, 8, 1000), (12, 1, 77)],
    "query": [(19, 7, 123)],
    "gallery": [(19, 3, 456), (21, 5, 9)],
}


def make_duke(data_dir: Path) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for part, entries in DUKE_SPEC.items():
        out[part] = []
        for pid, cam, frame in entries:
            path = data_dir / MARKET_FOLDERS[part] / f"{pid:04d}_c{cam}_f{frame:07d}.jpg"
            write_image(path)
            out[part].append(Row(str(path), pid, cam - 1))
    return out


# --- CUHK03-NP: (pid, camera 1..2, image number), different ids per variant ------------------------
def make_cuhk03np(root: Path) -> dict[str, dict[str, list[Row]]]:
    """``root/cuhk03-np/{labeled,detected}``; detected pids are labeled pids + 100."""
    out: dict[str, dict[str, list[Row]]] = {}
    base = {
        "train": [(1, 1, 1), (1, 2, 6)],
        "query": [(2, 1, 3)],
        "gallery": [(2, 2, 8), (4, 2, 1)],
    }
    for variant, shift in (("labeled", 0), ("detected", 100)):
        out[variant] = {}
        for part, entries in base.items():
            out[variant][part] = []
            for pid, cam, n in entries:
                folder = root / "cuhk03-np" / variant / MARKET_FOLDERS[part]
                path = folder / f"{pid + shift:04d}_c{cam}_{n}.png"
                write_image(path)
                out[variant][part].append(Row(str(path), pid + shift, cam - 1))
    return out


# --- MSMT17: list pid, camera 1..15, image index; lines '<pid>/<name> <pid>' ----------------------
MSMT_SPEC = {
    "train": [(0, 1, 0), (0, 15, 1), (1, 3, 0)],
    "val": [(0, 2, 2), (1, 4, 1)],
    "query": [(0, 5, 0), (2, 6, 0)],
    "gallery": [(0, 7, 1), (2, 9, 1), (3, 11, 0)],
}
MSMT_DIRS = {"MSMT17_V1": ("train", "test"), "MSMT17_V2": ("mask_train_v2", "mask_test_v2")}


def msmt_name(pid: int, cam: int, idx: int) -> str:
    return f"{pid:04d}/{pid:04d}_{idx:03d}_{cam:02d}_0303morning_{100 + idx:04d}_0.jpg"


def make_msmt17(root: Path, version: str = "MSMT17_V1") -> dict[str, list[Row]]:
    """``root/<version>`` with images and list files; rows carry pid = list pid + 1."""
    data_dir = root / version
    train_dir, test_dir = (data_dir / d for d in MSMT_DIRS[version])
    out: dict[str, list[Row]] = {}
    for part, entries in MSMT_SPEC.items():
        image_dir = test_dir if part in ("query", "gallery") else train_dir
        lines, out[part] = [], []
        for pid, cam, idx in entries:
            rel = msmt_name(pid, cam, idx)
            write_image(image_dir / rel)
            lines.append(f"{rel} {pid}\n")
            out[part].append(Row(str(image_dir / rel), pid + 1, cam - 1))
        (data_dir / f"list_{part}.txt").write_text("".join(reversed(lines)))  # unsorted on purpose
    return out


# --- attribute .mat files in Lin et al.'s structure ---------------------------------------------
def write_lin_mat(path: Path, key: str, splits: dict[str, dict], orders: dict[str, list]) -> None:
    """Write ``{key: {split: {field: 1×N uint8, image_index: 1×N cell of 'PPPP'}}}``.

    ``splits[split]`` maps attribute name -> file-coded values and ``"ids"`` -> pids;
    ``orders[split]`` gives the field order, so train and test can differ like the real files.
    """
    content = {}
    for split, fields in splits.items():
        ids = np.empty((1, len(fields["ids"])), dtype=object)  # MATLAB cell
        for i, pid in enumerate(fields["ids"]):
            ids[0, i] = f"{int(pid):04d}"
        struct = {}
        for name in orders[split]:
            if name == "image_index":
                struct[name] = ids
            else:
                struct[name] = np.asarray(fields[name], dtype=np.uint8)[None, :]  # 1×N
        content[split] = struct
    savemat(path, {key: content})
