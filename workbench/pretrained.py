"""Shipped weights: safetensors files with a JSON model card each, in ``weights/``.

``load_pretrained(name)`` reads the card, verifies the file's sha256 against it, builds the
architecture the card names and loads the tensors. Nothing is unpickled, so no code runs.
Weights are looked up in ``$WORKBENCH_WEIGHTS`` (``os.pathsep``-separated folders) and then in
the repository's ``weights/`` folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

CARD_SUFFIX = ".json"
REPO_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


class ChecksumError(RuntimeError):
    """A weights file whose sha256 does not match its model card."""


def weight_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("WORKBENCH_WEIGHTS", "").split(os.pathsep) if p]
    return [*extra, REPO_WEIGHTS]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def list_pretrained() -> list[dict[str, Any]]:
    """All model cards found, as dicts (``name``, ``architecture``, ``metrics``, ...)."""
    cards: dict[str, dict[str, Any]] = {}
    for d in weight_dirs():
        for p in sorted(d.glob(f"*{CARD_SUFFIX}")):
            card = _read_card(p)
            cards.setdefault(card["name"], card)
    return list(cards.values())


def _read_card(path: Path) -> dict[str, Any]:
    try:
        card = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: model card is not valid JSON ({e})") from e
    for key in ("name", "architecture", "model_config", "weights", "sha256"):
        if key not in card:
            raise ValueError(f"{path}: model card lacks the key {key!r}")
    card["_card_path"] = str(path)
    return card


def find_card(name_or_path: str | Path) -> dict[str, Any]:
    """Resolve a card by registry name, card path, or weights path (card beside it)."""
    p = Path(name_or_path)
    if p.suffix == CARD_SUFFIX and p.exists():
        return _read_card(p)
    if p.suffix == ".safetensors" and p.exists():
        card_path = p.with_suffix(CARD_SUFFIX)
        if not card_path.exists():
            raise FileNotFoundError(
                f"{p}: no model card {card_path.name} beside it; a weights file needs its card "
                f"(architecture, config, sha256) to be loaded. A BoT / FastReID / torchreid "
                f"checkpoint is read with workbench.models.import_checkpoint({str(p)!r}) or "
                f"shipped with `workbench export --from {p} --name NAME`"
            )
        return _read_card(card_path)
    if p.is_file():  # a .pth / .pth.tar of another codebase
        raise ValueError(
            f"{p}: not a workbench card or safetensors file. A BoT / FastReID / torchreid "
            f"checkpoint is read with workbench.models.import_checkpoint({str(p)!r}) (or `workbench "
            f"eval --weights {p} --source ...`), and shipped with `workbench export --from {p} "
            f"--name NAME`"
        )
    for d in weight_dirs():
        card_path = d / f"{name_or_path}{CARD_SUFFIX}"
        if card_path.exists():
            return _read_card(card_path)
    names = [c["name"] for c in list_pretrained()]
    raise KeyError(f"no pretrained weights named {str(name_or_path)!r}; available: {names}")


def load_pretrained(
    name_or_path: str | Path, device: str | torch.device = "cpu", verify: bool = True
) -> nn.Module:
    """Build the model a card describes and load its verified weights (eval mode, float32).

    The card is attached as ``model.card``.
    """
    from safetensors.torch import load_file

    from workbench.models.registry import build_model_from_spec, load_checkpoint_state

    card = find_card(name_or_path)
    weights = Path(card["_card_path"]).parent / card["weights"]
    if not weights.exists():
        raise FileNotFoundError(
            f"{weights}: weights file of card {card['name']!r} is missing"
            + (f"; rebuild it with: {card['reproduce']}" if card.get("reproduce") else "")
        )
    if verify:
        digest = sha256_file(weights)
        if digest != card["sha256"]:
            raise ChecksumError(
                f"{weights}: sha256 {digest[:16]}… does not match its card "
                f"({card['sha256'][:16]}…); the file is corrupt or was replaced — restore it "
                f"(git checkout -- {weights.name}) or rebuild it"
            )
    model = build_model_from_spec({"name": card["architecture"], "config": card["model_config"]})
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(weights).items()}
    load_checkpoint_state(model, state, source=str(weights))
    model.card = card  # type: ignore[assignment]
    return model.to(device).eval()


def save_pretrained(
    model: nn.Module,
    folder: str | Path,
    name: str,
    architecture: str,
    model_config: dict[str, Any],
    dtype: torch.dtype = torch.float16,
    **card_fields: Any,
) -> dict[str, Any]:
    """Write ``name.safetensors`` (floating tensors cast to ``dtype``) and ``name.json``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    weights = folder / f"{name}.safetensors"
    # one metadata key only: safetensors writes several in hash order, so bytes would vary
    save_file(state, weights, metadata={"format": "pt"})
    card = {
        "name": name,
        "architecture": architecture,
        "model_config": model_config,
        "weights": weights.name,
        "dtype": str(dtype).removeprefix("torch."),
        "sha256": sha256_file(weights),
        "size_bytes": weights.stat().st_size,
        **card_fields,
    }
    (folder / f"{name}{CARD_SUFFIX}").write_text(json.dumps(card, indent=2) + "\n")
    return card
