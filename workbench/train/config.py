"""Typed training configuration, saved as JSON beside every checkpoint.

Defaults follow the BoT recipe (Luo et al. 2019; ``shared/reference/modules.md`` §5.3) scaled to the
synthetic dataset: Adam 3.5e-4, weight decay 5e-4, linear warm-up over the first epochs, step decay,
P×K = 16×4 batches, label-smoothing CE + batch-hard triplet (margin 0.3), optional center loss.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class ConfigError(ValueError):
    """A setting with the wrong type or out of range; names the key, the value and the range."""


def _check(
    obj: object, key: str, kind: type, lo: float | None = None, hi: float | None = None,
    *, lo_open: bool = False, optional: bool = False, where: str = "",
) -> None:  # fmt: skip
    """Check ``obj.key`` is a ``kind`` (int / float; bools refused) in ``[lo, hi]``."""
    value = getattr(obj, key)
    name = f"{where}.{key}" if where else key
    if value is None and optional:
        return
    numbers = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, numbers):
        want = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{name}={value!r}: need {want}" + (" or null" if optional else ""))
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{name}={value!r}: need a finite number")
    low = lo is not None and (value <= lo if lo_open else value < lo)
    if low or (hi is not None and value > hi):
        lo_s = "" if lo is None else f"{'>' if lo_open else '>='} {lo:g}"
        hi_s = "" if hi is None else f"<= {hi:g}"
        raise ConfigError(
            f"{name}={value!r}: need a value {' and '.join(filter(None, (lo_s, hi_s)))}"
        )


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

    def __post_init__(self) -> None:
        if not isinstance(self.root, str | Path) or not str(self.root):
            raise ConfigError(f"data.root={self.root!r}: need the path of a dataset folder")
        w = "data"
        _check(self, "height", int, 16, 4096, where=w)
        _check(self, "width", int, 8, 4096, where=w)
        _check(self, "batch_size", int, 2, where=w)
        _check(self, "num_instances", int, 1, where=w)
        _check(self, "workers", int, 0, 256, where=w)
        _check(self, "flip_p", float, 0, 1, where=w)
        _check(self, "pad", int, 0, where=w)
        _check(self, "erasing_p", float, 0, 1, where=w)
        if self.batch_size % self.num_instances:
            raise ConfigError(
                f"data.batch_size={self.batch_size} is not a multiple of data.num_instances="
                f"{self.num_instances}; a P×K batch holds K images of each of P identities"
            )
        if self.batch_size // self.num_instances < 2:
            raise ConfigError(
                f"data.batch_size={self.batch_size} with data.num_instances={self.num_instances} "
                f"gives batches of one identity (P = 1): the triplet loss would be 0; use "
                f"batch_size >= 2 * num_instances"
            )


@dataclass
class OptimConfig:
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    epochs: int = 40
    warmup_epochs: int = 5  # BoT: 10 of 120; lr = base * (0.01 + 0.99 * e / warmup)
    milestones: tuple[int, ...] = (25, 35)
    gamma: float = 0.1

    def __post_init__(self) -> None:
        w = "optim"
        _check(self, "lr", float, 0, 10, lo_open=True, where=w)
        _check(self, "weight_decay", float, 0, where=w)
        _check(self, "epochs", int, 1, where=w)
        _check(self, "warmup_epochs", int, 0, where=w)
        _check(self, "gamma", float, 0, 1, lo_open=True, where=w)
        ms = self.milestones
        if not isinstance(ms, tuple | list) or not all(
            isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in ms
        ):
            raise ConfigError(f"optim.milestones={ms!r}: need a list of epochs >= 1, e.g. [25, 35]")
        if list(ms) != sorted(ms):
            raise ConfigError(f"optim.milestones={list(ms)}: need increasing epochs")


@dataclass
class LossConfig:
    label_smoothing: float = 0.1
    triplet_margin: float | None = 0.3  # None: soft margin
    triplet_weight: float = 1.0
    # L2-normalise the features the triplet sees (FastReID's TRI.NORM_FEAT): the margin then no
    # longer depends on their scale, which attention gates can shrink (RGA's: ~10×)
    triplet_normalize: bool = False
    center_weight: float = 0.0  # BoT with center loss: 5e-4
    center_lr: float = 0.5

    def __post_init__(self) -> None:
        w = "loss"
        _check(self, "label_smoothing", float, 0, 1, where=w)
        if self.label_smoothing >= 1:
            raise ConfigError(f"loss.label_smoothing={self.label_smoothing}: need a value < 1")
        _check(self, "triplet_margin", float, 0, optional=True, where=w)
        _check(self, "triplet_weight", float, 0, where=w)
        if not isinstance(self.triplet_normalize, bool):
            raise ConfigError(f"loss.triplet_normalize={self.triplet_normalize!r}: need true/false")
        _check(self, "center_weight", float, 0, where=w)
        _check(self, "center_lr", float, 0, lo_open=True, where=w)


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
    # weights whose backbone starts the run (a shipped name such as "pretrain_r18w16", or a
    # .safetensors/.json path): the papers' ImageNet start, made here (workbench.train.pretrain)
    init: str | None = None

    def __post_init__(self) -> None:
        """Every setting is checked here, once, so a bad one fails before any work starts."""
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError(f"model={self.model!r}: need a registered model name, e.g. 'bot'")
        if not isinstance(self.model_config, dict):
            raise ConfigError(
                f"model_config={self.model_config!r}: need a JSON object of model settings, "
                f'e.g. {{"width": 32}}'
            )
        for key, cls in (("data", DataConfig), ("optim", OptimConfig), ("loss", LossConfig)):
            if not isinstance(getattr(self, key), cls):
                raise ConfigError(f"{key}: need a {cls.__name__} (a JSON object in a config file)")
        _check(self, "seed", int, 0, 2**63 - 1)
        if not isinstance(self.device, str) or not DEVICE_PATTERN.match(self.device):
            raise ConfigError(
                f"device={self.device!r}: not a device; use auto, cpu, cuda, cuda:N or mps"
            )
        for key in ("amp", "channels_last", "flip_eval"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key}={getattr(self, key)!r}: need true or false")
        _check(self, "eval_every", int, 0)
        _check(self, "max_steps_per_epoch", int, 1, optional=True)
        if self.init is not None and (not isinstance(self.init, str) or not self.init):
            raise ConfigError(
                f"init={self.init!r}: need the name or path of weights with a ResNet backbone, "
                f"e.g. 'pretrain_r18w16', or null"
            )

    # -- (de)serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` rebuilds the config."""
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the config as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build a config from a dict, rejecting unknown keys with the valid ones."""
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
        elif name == "milestones" and isinstance(value, list | tuple):
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
            if not isinstance(node.get(p), dict):
                raise ValueError(f"unknown config key {key!r}")
            node = node[p]
        if leaf not in node and parents != ["model_config"]:
            raise ValueError(f"unknown config key {key!r}")
        node[leaf] = value
    return TrainConfig.from_dict(d)
