"""Pretraining (issue 21): a large synthetic set disjoint from the zoo's data, and ``--init``.

Every paper of the zoo starts its ResNet from ImageNet; ImageNet cannot be downloaded here, so the
workbench pretrains its own backbone on many more synthetic identities than the zoo sees, filmed
at both synthetic sites, then starts the zoo from it (``workbench train --init NAME``).

The set is made of *parts*, each an ordinary ``workbench synth`` dataset (its own seed, site and
number of identities), merged into one Market-style folder::

    OUT/parts/s1_d0_n1200/        workbench synth --ids 1200 --seed 1 --domain 0
    OUT/parts/s2_d1_n1200/        workbench synth --ids 1200 --seed 2 --domain 1
    OUT/bounding_box_train/       every identity of every part (hard links), but the held-out ones
    OUT/query, bounding_box_test  ``holdout`` identities per part, to watch the pretraining
    OUT/masks/<folder>/           each image's part-label mask, renamed with it (``part_loss``)
    OUT/pretrain.json             the recipe and counts; written last (the folder is complete)

Pids are renumbered 1..N over the parts in order (part, pid), so identities of different parts
never share a label; a file keeps the rest of its name (camera, sequence, frame). Distractors and
junk are dropped.

Disjoint from the zoo: the zoo renders ``--seed 0`` (site 0, and site 1 for the AAM cross-domain
figure). A synthetic identity is the set of parameters drawn for it (attributes, colours, pattern,
body shape, gait) from the stream ``(seed, IDENTITY, pid)``, and an image is drawn from
``(seed, IMAGE, index)``: parts on other seeds share no random stream with the zoo, and
:func:`shared_identities` checks on the drawn parameters themselves that no zoo test identity is
among them (``tests/train/test_pretrain.py``).

Resumable: a part that is complete is reused (``ensure_synthetic``), an interrupted one is
rendered again; the merge is redone whole (hard links are cheap) and ``pretrain.json`` is written
last, atomically. ``pretrain_config`` is the training recipe (``workbench pretrain``), and
``prepare_init`` checks and extracts the backbone a zoo run starts from (``--init``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.fileio import atomic_write_text

PRETRAIN_META = "pretrain.json"
_FOLDERS = ("bounding_box_train", "query", "bounding_box_test")


@dataclass(frozen=True)
class Part:
    """One ``workbench synth`` dataset of the pretraining set."""

    seed: int
    domain: int
    ids: int

    @property
    def folder(self) -> str:
        return f"s{self.seed}_d{self.domain}_n{self.ids}"

    def command(self, out: str | Path, height: int, width: int) -> str:
        return (
            f"workbench synth --out {Path(out) / 'parts' / self.folder} --ids {self.ids} "
            f"--seed {self.seed} --domain {self.domain} --height {height} --width {width}"
        )


# the recipe of ``pretrain_r18w16``: 2,400 identities, both sites, seeds the zoo does not use
PRETRAIN_PARTS: tuple[Part, ...] = (
    Part(seed=1, domain=0, ids=1200),
    Part(seed=2, domain=1, ids=1200),
)
HOLDOUT_IDS = 50  # per part: query / gallery of the pretraining set (not trained on)
# the zoo's data: `workbench synth --out data/synth --ids 500 --seed 0` (+ domain 1 for AAM)
ZOO_PARTS: tuple[Part, ...] = (Part(seed=0, domain=0, ids=500), Part(seed=0, domain=1, ids=500))


def _check_parts(parts: tuple[Part, ...] | list[Part], holdout: int) -> list[Part]:
    if not isinstance(parts, list | tuple):
        raise ValueError(f"parts={parts!r}: need a list of parts")
    try:
        parts = [p if isinstance(p, Part) else Part(**p) for p in parts]
    except TypeError as e:
        raise ValueError(
            f'parts={parts!r}: each part is {{"seed": S, "domain": D, "ids": N}} ({e})'
        ) from None
    for p in parts:
        for key in ("seed", "domain", "ids"):
            value = getattr(p, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"part {p}: {key}={value!r}: need a whole number >= 0")
    if not parts:
        raise ValueError("parts=[]: a pretraining set needs at least one part")
    if len(set(parts)) != len(parts):
        raise ValueError(f"parts={parts}: a part is listed twice")
    if not isinstance(holdout, int) or holdout < 0:
        raise ValueError(f"holdout={holdout!r}: need a whole number of identities >= 0")
    zoo = sorted({p.seed for p in ZOO_PARTS})
    for p in parts:
        if p.seed in zoo:
            raise ValueError(
                f"part {p}: seed {p.seed} is the zoo's (seeds {zoo}); pretraining on it would "
                f"show the zoo's test identities to the backbone; use another seed"
            )
        if holdout >= p.ids // 2:
            raise ValueError(
                f"holdout={holdout}: part {p.folder} has {p.ids - p.ids // 2} test identities; "
                f"hold out fewer"
            )
    return parts


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed: copy
        shutil.copyfile(src, dst)


def render_pretraining_data(
    out: str | Path,
    parts: tuple[Part, ...] | list[Part] = PRETRAIN_PARTS,
    height: int = 128,
    width: int = 64,
    holdout: int = HOLDOUT_IDS,
    progress: bool = True,
) -> dict[str, Any]:
    """Render (or reuse) every part under ``out/parts`` and merge them into ``out``; see module.

    Returns the content of ``out/pretrain.json``.
    """
    from workbench.data.annotations import MASK_DIR, mask_path_for
    from workbench.data.synth.generate import ensure_synthetic

    parts = _check_parts(parts, holdout)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "parts").is_dir():
        raise ValueError(
            f"{out}: folder is not empty and is not a pretraining set (no parts/); pass a new "
            f"or empty folder"
        )
    done = _read_meta(out)
    if done and done.get("masks") and (done.get("height"), done.get("width")) == (height, width):
        recipe = [{k: p[k] for k in ("seed", "domain", "ids")} for p in done["parts"]]
        if recipe == [dataclasses.asdict(p) for p in parts] and done.get("holdout") == holdout:
            return done  # this exact set is there, complete
    (out / "parts").mkdir(parents=True, exist_ok=True)
    (out / PRETRAIN_META).unlink(missing_ok=True)  # incomplete until the merge is done
    for folder in (*_FOLDERS, MASK_DIR):
        if (out / folder).exists():
            shutil.rmtree(out / folder)
    for folder in _FOLDERS:
        (out / folder).mkdir()
        (out / MASK_DIR / folder).mkdir(parents=True)
    next_pid, counts, rows, masks = 1, dict.fromkeys(_FOLDERS, 0), [], 0
    for part in parts:
        root, _ = ensure_synthetic(
            out / "parts" / part.folder, part.ids, part.seed, height, width, progress, part.domain
        )
        meta = json.loads((root / "synth.json").read_text())
        held = set(sorted(meta["ids_test"])[:holdout])
        pids = sorted(meta["ids_train"] + meta["ids_test"])
        new_pid = {pid: next_pid + i for i, pid in enumerate(pids)}
        next_pid += len(pids)
        if next_pid > 10_000:
            raise ValueError(
                f"parts={parts}: {next_pid - 1} identities in all; pids are 4 digits (at most 9999)"
            )
        for folder in _FOLDERS:
            for src in sorted((root / folder).iterdir()):
                head, rest = src.name.split("_", 1)
                pid = int(head)
                if pid <= 0:  # distractor / junk
                    continue
                dest = "bounding_box_train"
                if pid in held:
                    dest = folder if folder != "bounding_box_train" else dest
                name = f"{new_pid[pid]:04d}_{rest}"
                _link(src, out / dest / name)
                mask = mask_path_for(root, src)
                if mask.is_file():
                    _link(mask, mask_path_for(out, out / dest / name))
                    masks += 1
                counts[dest] += 1
        rows.append(
            {
                **dataclasses.asdict(part),
                "command": part.command(out, height, width),
                "pids": [new_pid[min(pids)], new_pid[max(pids)]],
                "held_out": len(held),
            }
        )
    meta = {
        "recipe": "workbench.train.pretrain",
        "height": height,
        "width": width,
        "holdout": holdout,
        "parts": rows,
        "ids": next_pid - 1,
        "ids_train": next_pid - 1 - holdout * len(parts),
        "counts": counts,
        "masks": masks,
    }
    atomic_write_text(out / PRETRAIN_META, json.dumps(meta, indent=2) + "\n")
    return meta


def _read_meta(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / PRETRAIN_META).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def pretrain_config(
    data: str | Path = "data/pretrain", epochs: int = 12, part_loss: float = 0.0
) -> Any:
    """The training recipe of ``pretrain_r18w16``: BoT (ResNet-18, width 16, last stride 1) at
    128×64 on the pretraining set, identity objective (label-smoothed CE + batch-hard triplet),
    the zoo's optimiser (Adam 2e-3, weight decay 5e-4), warm-up 2 epochs, steps at 60 % / 85 %.

    ``part_loss`` > 0 adds BoT's part-segmentation objective at that weight (``BoTConfig.
    part_loss``: layer4's positions predict their part labels; ``pretrain_r18w16_parts``).
    """
    from workbench.train.config import DataConfig, OptimConfig, TrainConfig

    if not isinstance(epochs, int) or epochs < 3:
        raise ValueError(f"epochs={epochs!r}: the pretraining recipe needs at least 3 epochs")
    model_config: dict[str, Any] = {"backbone": "resnet18", "width": 16, "last_stride": 1}
    if part_loss:
        model_config["part_loss"] = part_loss
    milestones = tuple(sorted({max(3, round(0.6 * epochs)), max(3, round(0.85 * epochs))}))
    return TrainConfig(
        model="bot",
        model_config=model_config,
        data=DataConfig(root=str(data), height=128, width=64, batch_size=64, workers=1, pad=5),
        optim=OptimConfig(lr=2e-3, epochs=epochs, warmup_epochs=2, milestones=milestones),
        eval_every=0,
    )


# -- disjointness from the zoo ----------------------------------------------------------------
def identity_parameters(part: Part, split: str | None = None) -> tuple[list[int], np.ndarray]:
    """The pids of ``part`` (of one ``split``, "train"/"test", or all) and their drawn parameters.

    A synthetic identity *is* its drawn parameters: every number of ``Identity`` (attributes,
    colours, pattern, sizes, body shape, gait) but the pid, as one float vector per identity,
    (N, F). The site (domain) changes cameras, not people, so it does not enter.
    """
    from workbench.data.synth.camera import make_cameras
    from workbench.data.synth.plan import make_plan

    plan = make_plan(part.ids, part.seed, make_cameras(part.seed, part.domain))
    pids, vectors = [], []
    for ident, s in zip(plan.identities, plan.splits, strict=True):
        if split is not None and s != split:
            continue
        d = dataclasses.asdict(ident)
        d.pop("pid")
        pids.append(ident.pid)
        vectors.append(_flatten(d))
    return pids, np.asarray(vectors, dtype=np.float64)


def _flatten(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _flatten(value[k])]
    if isinstance(value, list | tuple):
        return [x for v in value for x in _flatten(v)]
    if isinstance(value, str):
        return [float(sum(ord(c) * 31**i for i, c in enumerate(value)) % 1_000_003)]
    return [float(value)]


def shared_identities(
    parts: tuple[Part, ...] | list[Part], zoo: Part, tol: float = 1e-6
) -> list[tuple[int, Part, int]]:
    """Zoo test identities drawn again in ``parts``: ``(zoo pid, part, part pid)`` per pair.

    Two identities are the same when every drawn parameter agrees within ``tol``.
    """
    zoo_pids, zoo_vec = identity_parameters(zoo, "test")
    found = []
    for part in parts:
        pids, vec = identity_parameters(part)
        if vec.shape[1] != zoo_vec.shape[1]:
            raise ValueError(
                f"{part}: identities with {vec.shape[1]} parameters, zoo {zoo_vec.shape[1]}"
            )
        for i, row in enumerate(vec):
            same = np.flatnonzero(np.abs(zoo_vec - row).max(axis=1) <= tol)
            found += [(zoo_pids[j], part, pids[i]) for j in same]
    return found


def data_card(root: str | Path) -> dict[str, Any] | None:
    """The ``data`` field of a model card trained on the pretraining set at ``root`` (or None)."""
    path = Path(root) / PRETRAIN_META
    if not path.is_file():
        return None
    meta = json.loads(path.read_text())
    parts = [{k: p[k] for k in ("seed", "domain", "ids")} for p in meta["parts"]]
    return {
        "dataset": "workbench synthetic pedestrians, pretraining set (workbench.train.pretrain)",
        "parts": parts,
        "ids": meta["ids"],
        "ids_train": meta["ids_train"],
        "holdout": meta["holdout"],
        "counts": meta["counts"],
        "image_size": [meta["height"], meta["width"]],
        "command": f"workbench pretrain --data {root} --data-only --parts '{json.dumps(parts)}' "
        f"--holdout {meta['holdout']} --height {meta['height']} --width {meta['width']}",
    }


# -- the backbone a run starts from (--init) --------------------------------------------------
INIT_FILE = "init_backbone.safetensors"


class InitMismatchError(ValueError):
    """``--init`` weights whose backbone does not fit the model; names both and the keys."""


def prepare_init(
    init: str | Path, model: str, model_config: dict[str, Any], out: str | Path
) -> tuple[Path, dict[str, Any]]:
    """Check that the backbone of the weights ``init`` fits ``model`` and write it to ``out``.

    ``init``: a shipped name (``pretrain_r18w16``) or a ``.safetensors`` / ``.json`` path of
    workbench weights with their card (sha256 verified). Its ``backbone.*`` tensors (float32) are
    written to ``out/init_backbone.safetensors`` with torchvision names, which the model then
    loads at construction (``model_config.pretrained``, ``resnet.backbone_from_config``), so that
    models that copy stages when they are built (DAAF's holistic branch) copy the loaded ones.

    Strict: every backbone tensor of the model must be in the file with its shape, and nothing
    else; other heads of the source model are not used. Returns the file and the card's record
    (``{"weights", "architecture", "sha256", "tensors"}``).

    Raises:
        InitMismatchError: the model has no ResNet backbone, the weights hold none, or keys or
            shapes differ (another depth, width or block type); the message lists them.
    """
    from safetensors.torch import load_file, save_file

    from workbench.models.base import compare_state_dicts, format_key_lists
    from workbench.models.registry import build_config
    from workbench.models.resnet import backbone_from_config
    from workbench.pretrained import card_weights, find_card

    card = find_card(init)
    weights = card_weights(card)  # missing or corrupt: says so, with the rebuild command
    src = card["model_config"]
    src_desc = (
        f"{card['name']} ({card['architecture']}, {src.get('backbone')} width {src.get('width')})"
    )
    config = build_config(model, **{**model_config, "pretrained": None})
    if not {"backbone", "width"} <= set(type(config).field_names()):
        raise InitMismatchError(
            f"--init {init}: model {model!r} has no ResNet backbone of its own to initialise "
            f"(the interpreter shares its target's stages: initialise the target instead)"
        )
    dst_desc = f"model {model!r} ({config.backbone} width {config.width})"
    tensors = load_file(str(weights))
    state = {
        k[len("backbone.") :]: v.float() for k, v in tensors.items() if k.startswith("backbone.")
    }
    if not state:
        raise InitMismatchError(
            f"--init {init}: {src_desc} holds no backbone.* tensors; --init needs the weights "
            f"of a ResNet model of the zoo (bot, rga, daaf, sa, ianet)"
        )
    expected = backbone_from_config(config).state_dict()
    missing, unexpected, mismatched = compare_state_dicts(expected, state)
    if missing or unexpected or mismatched:
        raise InitMismatchError(
            f"--init {init}: the backbone of {src_desc} does not fit {dst_desc}:\n"
            + format_key_lists(missing, unexpected, mismatched)
            + f"\nInitialise from weights of the same backbone, or set the model's backbone and "
            f'width to the card\'s (--model-config \'{{"backbone": "{src.get("backbone")}", '
            f'"width": {src.get("width")}}}\')'
        )
    path = Path(out) / INIT_FILE
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    record = {
        "weights": card["name"],
        "architecture": card["architecture"],
        "sha256": card["sha256"],
        "tensors": len(state),
    }
    return path, record
