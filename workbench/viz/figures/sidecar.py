"""The JSON sidecar written beside every figure, and redrawing a figure from it.

``NAME.json`` beside ``NAME.png`` records everything the figure was drawn from: the recipe, the
weights of each role (as given: a shipped name or an absolute path) with their sha256, the data
root, the seed, the device, the formats and dpi, the versions of the workbench, torch and
matplotlib, and the sha256 of each file written. :func:`redraw` reads it back, refuses weights
whose sha256 changed, draws the figure again and says whether each file is the same bytes.

The files carry no creation date (``style.save_figure``) and every recipe picks its images by
seed, so a redraw on the same device with the same versions is byte-identical; another device
or another torch / matplotlib version may change a float in the last place, hence a pixel.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["SIDECAR_KEYS", "redraw", "weights_record", "write_sidecar"]

SIDECAR_KEYS = ("recipe", "weights", "data", "seed", "formats", "dpi", "device", "workbench")


def weights_record(model: Any, spec: str | Path | None) -> dict[str, Any]:
    """What a sidecar says about one role's weights: as given (``None``: a model passed in
    Python, which a sidecar cannot redraw), the card's name and the file's sha256."""
    card = getattr(model, "card", None) or {}
    where = None
    if spec is not None:
        path = Path(spec)
        where = str(path.resolve()) if path.exists() else str(spec)
    return {"weights": where, "name": card.get("name"), "sha256": card.get("sha256")}


def _versions() -> dict[str, str]:
    import matplotlib
    import torch

    from workbench import __version__

    return {
        "workbench": __version__,
        "torch": torch.__version__,
        "matplotlib": matplotlib.__version__,
    }


def write_sidecar(
    files: list[Path],
    recipe: Any,
    *,
    weights: Mapping[str, dict[str, Any]],
    split: Any,
    seed: int,
    device: Any,
    dpi: float | None,
) -> Path:
    """Write ``NAME.json`` beside the figure's ``files``; returns its path."""
    from workbench.pretrained import sha256_file

    root = getattr(split, "root", None)
    versions = _versions()
    record = {
        "recipe": recipe.name,
        "paper": recipe.paper,
        "figure": recipe.figure,
        "weights": dict(weights),
        "data": str(Path(root).resolve()) if root is not None else None,
        "split": getattr(split, "name", None),
        "seed": int(seed),
        "device": str(device),
        "formats": [p.suffix[1:] for p in files],
        "dpi": dpi,
        "workbench": versions.pop("workbench"),
        "versions": versions,
        "files": {p.name: sha256_file(p) for p in files},
    }
    path = files[0].with_suffix(".json")
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def _read(sidecar: str | Path) -> dict[str, Any]:
    path = Path(sidecar)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a figure sidecar (invalid JSON: {e.msg})") from None
    missing = [k for k in SIDECAR_KEYS if not isinstance(record, dict) or k not in record]
    if missing:
        raise ValueError(
            f"{path}: not a figure sidecar (no {', '.join(missing)}); pass the NAME.json that "
            f"`workbench figures` wrote beside NAME.png"
        )
    return record


def redraw(
    sidecar: str | Path,
    out: str | Path | None = None,
    *,
    device: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Draw the figure of ``sidecar`` again into ``out`` (default: beside the sidecar).

    Returns the files written. Refuses (``ValueError``) a sidecar of a model passed in Python,
    weights whose sha256 differs from the recorded one, and a data root that is gone; logs, per
    file, whether it is byte-identical to the recorded one.
    """
    from workbench.data.readers import load_split
    from workbench.pretrained import sha256_file, weights_sha256
    from workbench.viz.figures import make_figures

    path = Path(sidecar)
    record = _read(path)
    specs = {}
    for role, w in record["weights"].items():
        if w.get("weights") is None:
            raise ValueError(
                f"{path}: role {role} was drawn from a model passed in Python "
                f"(make_figures(models=...)), which a sidecar cannot load; pass its weights by "
                f"name or path (make_figures(weights=...) / --weights {role}=...) to record them"
            )
        digest = weights_sha256(w["weights"])
        if w.get("sha256") and digest != w["sha256"]:
            raise ValueError(
                f"{path}: the weights of role {role} ({w['weights']}) changed since the figure "
                f"was drawn: sha256 {digest[:16]}… now, {w['sha256'][:16]}… recorded; restore "
                f"them to redraw this figure"
            )
        specs[role] = w["weights"]
    if record["data"] is None or not Path(record["data"]).exists():
        raise FileNotFoundError(
            f"{path}: the data root {record['data']} it was drawn from is not there; the "
            f"figure can be redrawn only from the same data"
        )
    now = _versions()
    then = {"workbench": record["workbench"], **record.get("versions", {})}
    changed = [f"{k} {then[k]} → {now[k]}" for k in now if k in then and then[k] != now[k]]
    if changed:
        log(f"drawn with other versions ({', '.join(changed)}): the bytes may differ")
    made = make_figures(
        [record["recipe"]],
        load_split(record["data"]),
        path.parent if out is None else out,
        weights=specs,
        optional_roles=list(record["weights"]),
        seed=record["seed"],
        device=device or record["device"],
        formats=record["formats"],
        dpi=record["dpi"],
        progress=progress,
        log=log,
    )
    files = made.get(record["recipe"], [])
    for f in files:
        recorded = record.get("files", {}).get(f.name)
        same = recorded is not None and sha256_file(f) == recorded
        log(f"{f}: {'byte-identical to' if same else 'differs from'} the recorded file")
    return files
