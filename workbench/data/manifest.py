"""The manifest of a dataset the workbench wrote: complete, or recognisably incomplete.

``workbench synth`` marks its output folder with ``.synth-incomplete`` before it writes anything
and writes ``synth.json`` (settings + the number of images per folder) *last*, atomically, then
removes the marker. ``check_complete`` (called by every Market-style reader) refuses a folder that
still has the marker, or whose image counts or tables differ from its manifest: an interrupted or
disk-full generation is never read as if it were whole. Folders without either file (real
datasets) are not affected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

META_FILE = "synth.json"
PARTIAL_FILE = ".synth-incomplete"
# written after the images, before the manifest (generate._write_tables)
TABLE_FILES = (
    "attributes.csv",
    "market_attribute.mat",
    "keypoints/bounding_box_train.csv",
    "keypoints/query.csv",
    "keypoints/bounding_box_test.csv",
)


class IncompleteDatasetError(FileNotFoundError):
    """A generated dataset whose generation did not finish; the message gives the command."""


def rerun_command(root: Path, meta: dict[str, Any]) -> str:
    args = [f"--out {root}"]
    for key in ("ids", "seed", "height", "width"):
        if key in meta:
            args.append(f"--{key} {meta[key]}")
    return "workbench synth " + " ".join(args)


def read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IncompleteDatasetError(
            f"{path}: the dataset manifest is not valid JSON ({e}); the generation was "
            f"interrupted or the file was edited: rerun `workbench synth --out {path.parent}`"
        ) from None
    return meta if isinstance(meta, dict) else {}


def check_complete(data_dir: Path, image_counts: dict[str, int] | None) -> None:
    """Raise :class:`IncompleteDatasetError` if ``data_dir`` holds an unfinished generation.

    ``image_counts``: images found per folder (``bounding_box_train``, ``query``,
    ``bounding_box_test``), before any filtering; ``None``: only look for the marker.
    """
    partial, manifest = data_dir / PARTIAL_FILE, data_dir / META_FILE
    if partial.exists():
        meta = read_meta(partial)
        raise IncompleteDatasetError(
            f"{data_dir}: incomplete synthetic dataset (its generation was interrupted or ran "
            f"out of disk space: {PARTIAL_FILE} is still there, {META_FILE} was never written); "
            f"rerun `{rerun_command(data_dir, meta)}`"
        )
    if image_counts is None or not manifest.exists():
        return
    meta = read_meta(manifest)
    counts = meta.get("counts", {})
    wrong = [
        f"{folder}/ has {image_counts[folder]} of {counts[folder]} images"
        for folder in image_counts
        if folder in counts and counts[folder] != image_counts[folder]
    ]
    missing = [f for f in TABLE_FILES if not (data_dir / f).exists()]
    if wrong or missing:
        what = "; ".join(wrong + ([f"missing {', '.join(missing)}"] if missing else []))
        raise IncompleteDatasetError(
            f"{data_dir}: incomplete synthetic dataset ({what}, says {META_FILE}); it was "
            f"interrupted or files were removed: rerun `{rerun_command(data_dir, meta)}`"
        )
