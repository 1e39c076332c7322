"""Typed training configuration, saved as JSON beside every checkpoint.

Defaults follow the BoT recipe (Luo et al. 2019; ``shared/reference/modules.md`` §5.3) scaled to the
synthetic dataset: Adam 3.5e-4, weight decay 5e-4, linear warm-up over the first epochs, step decay,
P×K = 16×4 batches, label-smoothing CE + batch-hard triplet (margin 0.3), optional center loss.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class DataConfig:
    root: str = "data/synth"
    height: int = 256
    width: int = 128
    batch_size: int = 64  # P * K
    num_instances: int = 4  # K images per identity
    workers: int = 2
    flip_p: float = 0.5
    pad: int = 10
    erasing_p: float = 0.5


@dataclass
class OptimConfig:
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    epochs: int = 40
    warmup_epochs: int = 5  # BoT: 10 of 120; lr = base * (0.01 + 0.99 * e / warmup)
    milestones: tuple[int, ...] = (25, 35)
    gamma: float = 0.1


@dataclass
class LossConfig:
    label_smoothing: float = 0.1
    triplet_margin: float | None = 0.3  # None: soft margin
    triplet_weight: float = 1.0
    center_weight: float = 0.0  # BoT with center loss: 5e-4
    center_lr: float = 0.5


@dataclass
class TrainConfig:
    model: str = "bot"
    model_config: dict[str, Any] = field(default_factory=dict)  # kwargs of the model's config class
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" ...
    amp: bool = True  # mixed precision, CUDA only
    channels_last: bool = True  # CUDA only
    eval_every: int = 10  # epochs; 0 = only at the end
    flip_eval: bool = False
    max_steps_per_epoch: int | None = None  # for smoke tests

    # -- (de)serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, d, "config")

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a config file, or the ``train_config`` of a model card (to reproduce it)."""
        try:
            raw = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e}); a config file is a JSON object") from e
        if isinstance(raw, dict) and "train_config" in raw:  # a model card: reproduce its run
            raw = raw["train_config"]
        return cls.from_dict(raw)


def _from_dict(cls: type, d: dict[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from a nested dict, failing clearly on unknown keys."""
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; valid keys: {sorted(fields)}")
    kwargs = {}
    for name, value in d.items():
        default = getattr(cls(), name) if name in ("data", "optim", "loss") else None
        if dataclasses.is_dataclass(default):
            kwargs[name] = _from_dict(type(default), value, f"{where}.{name}")
        elif name == "milestones":
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """Set dotted keys (``"optim.epochs": 3``) on a copy of ``config``; None values are skipped."""
    d = config.to_dict()
    for key, value in overrides.items():
        if value is None:
            continue
        node = d
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        if leaf not in node and parents != ["model_config"]:
            raise ValueError(f"unknown config key {key!r}")
        node[leaf] = value
    return TrainConfig.from_dict(d)
