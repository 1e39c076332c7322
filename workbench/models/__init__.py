"""ReID models: a ResNet backbone with torchvision names, one file per method, a registry.

Every model honours the contract of :mod:`workbench.models.base` and is registered by name::

    from workbench.models import build_model, list_models
    model = build_model("bot", backbone="resnet50", num_classes=751)

Trained elsewhere? ``import_checkpoint(path)`` reads BoT / FastReID / torchreid files
(:mod:`workbench.models.importer`); ``wrap(module, layers={...})`` puts any other embedding
network behind the same contract (:mod:`workbench.models.wrap`).

Importing this package imports every module in it (except ``_private`` ones), so each
``@register_model`` runs and a new model file needs no edit here (fairseq-style discovery).
"""

from __future__ import annotations

import importlib
import pkgutil

from workbench.models.base import (
    Capability,
    CheckpointMismatchError,
    LayerInfo,
    ModelConfig,
    ModelConfigError,
    ReIDModel,
    TrainOutput,
    UnknownLayerError,
    capabilities_of,
    eval_mode,
    get_layer,
    get_layer_info,
)
from workbench.models.heads import BNNeck, GlobalAvgPool
from workbench.models.registry import (
    UnknownModelError,
    build_config,
    build_model,
    build_model_from_spec,
    get_model_class,
    list_models,
    load_checkpoint_state,
    model_config_class,
    model_spec,
    register_model,
)
from workbench.models.resnet import (
    ImageNetLoadReport,
    ResNet,
    build_resnet,
    load_imagenet_weights,
    resnet18,
    resnet34,
    resnet50,
)

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

from workbench.models.bot import BoT, BoTConfig  # noqa: E402  (already imported by the loop)
from workbench.models.importer import (  # noqa: E402
    CheckpointFormatError,
    UnsupportedArchitectureError,
    import_checkpoint,
)
from workbench.models.inputs import (  # noqa: E402
    InputContract,
    InputError,
    InputWarning,
    check_images,
    input_contract,
    to_model_input,
)
from workbench.models.wrap import WrappedModel, wrap  # noqa: E402

__all__ = [
    "BNNeck",
    "BoT",
    "BoTConfig",
    "Capability",
    "CheckpointFormatError",
    "CheckpointMismatchError",
    "GlobalAvgPool",
    "ImageNetLoadReport",
    "InputContract",
    "InputError",
    "InputWarning",
    "LayerInfo",
    "ModelConfig",
    "ModelConfigError",
    "ReIDModel",
    "ResNet",
    "TrainOutput",
    "UnknownLayerError",
    "UnknownModelError",
    "UnsupportedArchitectureError",
    "WrappedModel",
    "build_config",
    "build_model",
    "build_model_from_spec",
    "build_resnet",
    "capabilities_of",
    "check_images",
    "eval_mode",
    "get_layer",
    "get_layer_info",
    "get_model_class",
    "import_checkpoint",
    "input_contract",
    "list_models",
    "load_checkpoint_state",
    "load_imagenet_weights",
    "model_config_class",
    "model_spec",
    "register_model",
    "resnet18",
    "resnet34",
    "resnet50",
    "to_model_input",
    "wrap",
]
