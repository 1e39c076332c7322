"""Model registry: ``@register_model(name)`` on the class, ``build_model(name, **config)`` to build.

Register where you define (STYLE.md 3): ``@register_model("bot")`` sits on ``class BoT`` in
``workbench/models/bot.py``; importing :mod:`workbench.models` imports every model file, so the
registry is complete. Unknown names and unknown config fields fail with the valid ones listed.

A model is described by a *spec*, ``{"name": "bot", "config": {...}}`` (JSON-ready), written beside
every checkpoint; :func:`build_model_from_spec` rebuilds the model and
:func:`load_checkpoint_state` loads its weights, failing with a readable
:class:`CheckpointMismatchError` when the file belongs to another architecture.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from torch import Tensor

from workbench.models.base import (
    CheckpointMismatchError,
    ModelConfig,
    ModelConfigError,
    ReIDModel,
    compare_state_dicts,
    format_key_lists,
)

__all__ = [
    "CheckpointMismatchError",
    "UnknownModelError",
    "build_config",
    "build_model",
    "build_model_from_spec",
    "get_model_class",
    "list_models",
    "load_checkpoint_state",
    "model_config_class",
    "model_spec",
    "register_model",
]

M = TypeVar("M", bound=type[ReIDModel])

_MODELS: dict[str, type[ReIDModel]] = {}


class UnknownModelError(LookupError):
    """A model name that is not registered."""


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator: register a :class:`ReIDModel` subclass under ``name``.

    The class must set ``config_class`` to a :class:`ModelConfig` dataclass subclass. Sets
    ``cls.model_name = name``. A name registered twice raises ``ValueError``.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"model names are lower-case identifiers like 'bot', got {name!r}")

    def decorator(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, ReIDModel)):
            raise TypeError(f"@register_model({name!r}) needs a ReIDModel subclass, got {cls!r}")
        config_cls = cls.__dict__.get("config_class")
        if not (
            isinstance(config_cls, type)
            and issubclass(config_cls, ModelConfig)
            and dataclasses.is_dataclass(config_cls)
            and config_cls is not ModelConfig
        ):
            raise TypeError(
                f"{cls.__name__} must set config_class to its own ModelConfig dataclass "
                f"subclass (e.g. config_class = {cls.__name__}Config)"
            )
        if name in _MODELS:
            other = _MODELS[name]
            raise ValueError(
                f"model name {name!r} is already registered by "
                f"{other.__module__}.{other.__qualname__}; choose another name"
            )
        cls.model_name = name
        _MODELS[name] = cls
        return cls

    return decorator


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_MODELS)


def get_model_class(name: str) -> type[ReIDModel]:
    """The class registered as ``name``; fails listing the registered names."""
    try:
        return _MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), _MODELS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}; registered models: {', '.join(list_models())}.{hint}"
        ) from None


def model_config_class(name: str) -> type[ModelConfig]:
    """The config dataclass of model ``name`` (e.g. ``BoTConfig`` for ``"bot"``)."""
    return get_model_class(name).config_class


def build_config(name: str, **config: Any) -> ModelConfig:
    """Build model ``name``'s config from keyword arguments, rejecting unknown fields."""
    cls = model_config_class(name)
    valid = cls.field_names()
    unknown = [k for k in config if k not in valid]
    if unknown:
        raise ModelConfigError(
            f"unknown config field(s) {', '.join(map(repr, unknown))} for model {name!r}; "
            f"{cls.__name__} fields: {', '.join(valid)}"
        )
    return cls(**config)


def build_model(name: str, config: ModelConfig | None = None, **overrides: Any) -> ReIDModel:
    """Build a registered model.

    Args:
        name: registry name, see :func:`list_models`.
        config: a ready config instance (optional); ``overrides`` replace its fields.
        **overrides: config fields, e.g. ``num_classes=751, backbone="resnet50"``.

    Example:
        >>> model = build_model("bot", backbone="resnet18", width=16, num_classes=10)
    """
    cls = get_model_class(name)
    if config is not None:
        if not isinstance(config, cls.config_class):
            raise ModelConfigError(
                f"model {name!r} needs a {cls.config_class.__name__}, got {type(config).__name__}"
            )
        config = build_config(name, **{**config.to_dict(), **overrides})
    else:
        config = build_config(name, **overrides)
    return cls(config)


def model_spec(model: ReIDModel) -> dict[str, Any]:
    """``{"name": ..., "config": {...}}``: JSON-ready, enough to rebuild the architecture."""
    if not model.model_name:
        raise ValueError(f"{type(model).__name__} is not a registered model")
    return {"name": model.model_name, "config": model.config.to_dict()}


def build_model_from_spec(spec: Mapping[str, Any]) -> ReIDModel:
    """Rebuild a model from :func:`model_spec` output, without loading ImageNet weights.

    ``pretrained`` is cleared: the caller is about to load trained weights, and the ImageNet file
    named in the spec need not exist on this machine.
    """
    if "name" not in spec:
        raise ValueError(f"a model spec needs 'name' and 'config' keys, got {sorted(spec)}")
    config = dict(spec.get("config", {}))
    config["pretrained"] = None
    return build_model(spec["name"], **config)


def load_checkpoint_state(
    model: ReIDModel,
    state_dict: Mapping[str, Tensor],
    *,
    source: str | None = None,
    limit: int = 10,
) -> None:
    """Load ``state_dict`` into ``model`` strictly.

    Raises:
        CheckpointMismatchError: keys missing, unexpected or with other shapes — the checkpoint
            was saved from another architecture or config. The message lists the first
            ``limit`` keys of each kind with counts; the exception holds the full lists.
    """
    missing, unexpected, mismatched = compare_state_dicts(model.state_dict(), state_dict)
    if missing or unexpected or mismatched:
        what = f"{model.model_name or type(model).__name__} ({type(model).__name__})"
        config = getattr(model, "config", None)
        cfg = f" built with {config.to_dict()}" if isinstance(config, ModelConfig) else ""
        raise CheckpointMismatchError(
            f"{source or 'checkpoint'} does not fit the model {what}{cfg}:\n"
            + format_key_lists(missing, unexpected, mismatched, limit)
            + "\nThe checkpoint was saved from another architecture or configuration; rebuild "
            "the model from the spec (name + config) saved beside it (build_model_from_spec).",
            missing,
            unexpected,
            mismatched,
        )
    model.load_state_dict(state_dict, strict=True)
