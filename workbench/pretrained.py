"""Shipped weights: safetensors files with a JSON model card each, in ``weights/``.

``load_pretrained(name)`` reads the card, verifies the file's sha256 against it, builds the
architecture the card names and loads the tensors. Nothing is unpickled, so no code runs.
Weights are looked up in ``$WORKBENCH_WEIGHTS`` (``os.pathsep``-separated folders) and then in
the repository's ``weights/`` folder.

``save_pretrained`` never replaces existing weights unless asked (``overwrite=True``), takes
plain names only, and publishes the card last: the weights are written to a hidden temporary
file, optionally measured (``measure``), moved into place, and then the card is written
atomically. A save that fails midway leaves nothing that ``list_pretrained`` would show.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.device import resolve_device
from workbench.fileio import atomic_write_text, default_file_mode

CARD_SUFFIX = ".json"
REPO_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ChecksumError(RuntimeError):
    """A weights file whose sha256 does not match its model card."""


def check_weights_name(name: str) -> str:
    """``name`` if it is a plain file name (letters, digits, ``. _ -``), else ``ValueError``."""
    if not isinstance(name, str) or not _PLAIN_NAME.match(name) or ".." in name:
        raise ValueError(
            f"weights name {name!r}: need a plain name of letters, digits, '.', '_' or '-' "
            f"(no folders, no '..'), e.g. 'bot_r18w16_mydata'; the folder is chosen separately"
        )
    return name


def check_can_save(folder: str | Path, name: str, overwrite: bool = False) -> None:
    """Refuse, before any work, a bad name or one whose card or weights already exist."""
    check_weights_name(name)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder}: exists and is not a folder; pass a folder for weights")
    if overwrite:
        return
    existing = [p for p in (folder / f"{name}{CARD_SUFFIX}", folder / f"{name}.safetensors")
                if p.exists()]  # fmt: skip
    if existing:
        raise FileExistsError(
            f"{existing[0]}: weights named {name!r} already exist in {folder}; choose another "
            f"name, or pass --overwrite (overwrite=True) to replace them"
        )


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
            try:
                card = _read_card(p)
            except ValueError as e:  # another JSON file in the folder: not ours to judge
                warnings.warn(f"skipped a JSON file that is not a model card: {e}", stacklevel=2)
                continue
            cards.setdefault(card["name"], card)
    return list(cards.values())


def _read_card(path: Path) -> dict[str, Any]:
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: model card is not valid JSON ({e})") from e
    if not isinstance(card, dict):
        raise ValueError(f"{path}: model card is a JSON {type(card).__name__}, not an object")
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
    if p.suffix in (CARD_SUFFIX, ".safetensors") or len(p.parts) > 1:  # a path, not a name
        raise FileNotFoundError(
            f"{p}: no such weights file; pass a shipped name (see `workbench list`) or the path "
            f"of a .safetensors file with its .json card beside it"
        )
    for d in weight_dirs():
        card_path = d / f"{name_or_path}{CARD_SUFFIX}"
        if card_path.exists():
            return _read_card(card_path)
    names = [c["name"] for c in list_pretrained()]
    raise KeyError(f"no pretrained weights named {str(name_or_path)!r}; available: {names}")


def card_weights(card: dict[str, Any], verify: bool = True) -> Path:
    """The weights file of a card (:func:`find_card`), checked against its sha256.

    Raises:
        FileNotFoundError: the file is missing (the message carries the card's rebuild command).
        ChecksumError: its sha256 is not the card's (``verify=True``).
    """
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
    return weights


def load_pretrained(
    name_or_path: str | Path, device: str | torch.device = "cpu", verify: bool = True
) -> nn.Module:
    """Build the model a card describes and load its verified weights (eval mode, float32).

    ``device``: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``
    (:func:`workbench.device.resolve_device`).

    The card is attached as ``model.card``.
    """
    card = find_card(name_or_path)
    weights = card_weights(card, verify=verify)
    model = _build_and_load(weights, card["architecture"], card["model_config"])
    model.card = card  # type: ignore[assignment]
    return model.to(resolve_device(device)).eval()


def build_model_with_target(name: str, **config: Any) -> nn.Module:
    """Build registered model ``name`` from config fields, loading the model it is built around.

    A model that ``takes_target`` (the AAM interpreter) is given its target as a model: the
    weights its ``target`` field names are loaded here (a shipped name or a path; unknown names
    fail listing the shipped ones) and their card fills ``target_spec`` and ``target_sha256``.
    With ``target_spec`` already set and ``pretrained`` naming target weights, those weights are
    loaded into a target built from the spec. Any other model is built as ``build_model`` does.
    """
    from workbench.models.registry import (
        build_config,
        build_model,
        build_model_from_spec,
        get_model_class,
    )

    cls = get_model_class(name)
    if not cls.takes_target:
        return build_model(name, **config)
    target = None
    if config.get("target_spec") is None and config.get("target") is not None:
        target = load_pretrained(config["target"])
        card = target.card
        config = {
            **config,
            "target_spec": {"name": card["architecture"], "config": card["model_config"]},
            "target_sha256": card["sha256"],
        }
    elif config.get("target_spec") is not None and config.get("pretrained") is not None:
        target = build_model_from_spec(config["target_spec"])
        target.load_state_dict(load_pretrained(config["pretrained"]).state_dict())
    return cls(build_config(name, **config), target=target)


def _is_foreign_checkpoint(path: Path) -> bool:
    """A file of another codebase (no workbench card beside it or given)."""
    has_card = path.suffix == CARD_SUFFIX or path.with_suffix(CARD_SUFFIX).exists()
    return path.is_file() and not has_card


def load_weights(
    name_or_path: str | Path,
    device: str | torch.device = "cpu",
    source: str | None = None,
    **import_config: Any,
) -> nn.Module:
    """Any weights a user can name: a shipped name, a card or ``.safetensors`` path
    (:func:`load_pretrained`, sha256 checked), or a BoT / FastReID / torchreid checkpoint
    (:func:`workbench.models.import_checkpoint` with ``source`` and ``import_config``).

    The model's ``card`` always holds ``name`` and the ``sha256`` of the file read.
    """
    path = Path(name_or_path)
    if source is not None or _is_foreign_checkpoint(path):
        from workbench.models import import_checkpoint

        model = import_checkpoint(path, source, **import_config)
        model.card["sha256"] = sha256_file(path)  # type: ignore[index]
        return model.to(device).eval()
    return load_pretrained(name_or_path, device)


def weights_sha256(name_or_path: str | Path) -> str:
    """The sha256 of the file :func:`load_weights` reads for ``name_or_path`` (its card's for
    shipped weights, which loading verifies), without loading it."""
    path = Path(name_or_path)
    if _is_foreign_checkpoint(path):
        return sha256_file(path)
    return find_card(name_or_path)["sha256"]


def _build_and_load(weights: Path, architecture: str, model_config: dict[str, Any]) -> nn.Module:
    """The model a card names, with the float32 copy of the tensors in ``weights``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from workbench.models.registry import build_model_from_spec, load_checkpoint_state

    model = build_model_from_spec({"name": architecture, "config": model_config})
    try:
        tensors = load_file(weights)
    except (SafetensorError, OSError) as e:
        raise ValueError(
            f"{weights}: not a readable safetensors file ({e}); restore it or rebuild it"
        ) from e
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    load_checkpoint_state(model, state, source=str(weights))
    return model.eval()


def save_pretrained(
    model: nn.Module,
    folder: str | Path,
    name: str,
    architecture: str,
    model_config: dict[str, Any],
    dtype: torch.dtype = torch.float16,
    overwrite: bool = False,
    measure: Callable[[nn.Module], dict[str, Any]] | None = None,
    **card_fields: Any,
) -> dict[str, Any]:
    """Write ``name.safetensors`` (floating tensors cast to ``dtype``) and then ``name.json``.

    ``measure(loaded) -> metrics``: called on the weights *as written* (read back from the file,
    in float32, with ``loaded.card``) before anything is published; its result is the card's
    ``metrics``. Refuses existing weights unless ``overwrite`` and names that are not plain.
    """
    from safetensors.torch import save

    check_can_save(folder, name, overwrite)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    weights = folder / f"{name}.safetensors"
    staged = folder / f".{name}.safetensors.partial"  # hidden until the card can be written
    try:
        # one metadata key only: safetensors writes several in hash order, so bytes would vary
        with open(staged, "wb") as f:
            f.write(save(state, metadata={"format": "pt"}))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(staged, default_file_mode())
        card = {
            "name": name,
            "architecture": architecture,
            "model_config": model_config,
            "weights": weights.name,
            "dtype": str(dtype).removeprefix("torch."),
            "sha256": sha256_file(staged),
            "size_bytes": staged.stat().st_size,
            **card_fields,
        }
        if measure is not None:
            loaded = _build_and_load(staged, architecture, model_config)
            loaded.card = dict(card)  # type: ignore[assignment]
            card["metrics"] = measure(loaded)
        os.replace(staged, weights)
    except OSError as e:
        staged.unlink(missing_ok=True)
        if e.errno is not None and e.filename is None:  # a full disk: say where
            raise OSError(e.errno, e.strerror, str(weights)) from e
        raise
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    atomic_write_text(folder / f"{name}{CARD_SUFFIX}", json.dumps(card, indent=2) + "\n")
    return card
