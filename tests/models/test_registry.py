"""Model registry: registration rules, readable errors, specs and checkpoint mismatch messages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from workbench.models import (
    BoT,
    BoTConfig,
    CheckpointMismatchError,
    ModelConfig,
    ModelConfigError,
    ReIDModel,
    UnknownModelError,
    build_model,
    build_model_from_spec,
    list_models,
    load_checkpoint_state,
    model_config_class,
    model_spec,
    register_model,
    registry,
)
from workbench.models.resnet import build_resnet


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> dict:
    """A copy of the registry, restored after the test (test models must not leak)."""
    models = dict(registry._MODELS)
    monkeypatch.setattr(registry, "_MODELS", models)
    return models


@dataclass
class ToyConfig(ModelConfig):
    dim: int = 4


class Toy(ReIDModel):
    config_class = ToyConfig

    def __init__(self, config: ToyConfig) -> None:
        super().__init__(config)
        self.proj = nn.Linear(3, config.dim)

    def forward(self, images: Tensor) -> Tensor:
        return self.proj(images.mean((2, 3)))


def test_bot_is_listed_and_lists_are_sorted() -> None:
    names = list_models()
    assert "bot" in names and names == sorted(names)
    assert model_config_class("bot") is BoTConfig


def test_unknown_model_lists_registered_names() -> None:
    with pytest.raises(UnknownModelError, match=r"registered models: .*bot.*Did you mean 'bot'"):
        build_model("bto")


def test_unknown_config_field_lists_valid_fields() -> None:
    with pytest.raises(ModelConfigError) as info:
        build_model("bot", depth=50, num_classes=3)
    msg = str(info.value)
    assert "'depth'" in msg and "backbone" in msg and "last_stride" in msg and "num_classes" in msg


def test_build_from_config_instance_with_overrides() -> None:
    model = build_model("bot", BoTConfig.tiny(), num_classes=5)
    assert isinstance(model, BoT) and model.num_classes == 5 and model.config.width == 16
    with pytest.raises(ModelConfigError, match="BoTConfig"):
        build_model("bot", ToyConfig())


def test_register_rules(sandbox: dict) -> None:
    register_model("toy")(Toy)
    assert "toy" in list_models() and Toy.model_name == "toy"
    assert isinstance(build_model("toy", dim=2), Toy)
    with pytest.raises(ValueError, match=r"already registered by .*Toy"):
        register_model("toy")(Toy)
    with pytest.raises(TypeError, match="ReIDModel subclass"):
        register_model("linear")(nn.Linear)

    class NoConfig(ReIDModel):  # inherits ModelConfig: not its own dataclass
        pass

    with pytest.raises(TypeError, match="config_class"):
        register_model("noconfig")(NoConfig)
    with pytest.raises(ValueError, match="identifiers"):
        register_model("has space")
    assert "noconfig" not in list_models()


def test_registry_is_restored_after_sandbox() -> None:
    assert "toy" not in list_models()


def test_spec_round_trips_through_json(tmp_path: Path) -> None:
    imagenet = tmp_path / "resnet18.pth"
    torch.save(build_resnet("resnet18", width=16).state_dict(), imagenet)
    model = build_model("bot", BoTConfig.tiny(pretrained=str(imagenet)))
    imagenet.unlink()  # e.g. the spec travelled to another machine
    spec = json.loads(json.dumps(model_spec(model)))
    assert spec["name"] == "bot" and spec["config"]["input_size"] == [64, 32]
    rebuilt = build_model_from_spec(spec)  # must not try to read the ImageNet file
    assert rebuilt.config.pretrained is None
    assert rebuilt.config.input_size == (64, 32)
    assert rebuilt.config == BoTConfig.tiny()


def test_load_checkpoint_state_loads_exactly() -> None:
    torch.manual_seed(0)
    src = build_model("bot", BoTConfig.tiny())
    torch.manual_seed(1)
    dst = build_model("bot", BoTConfig.tiny())
    load_checkpoint_state(dst, src.state_dict())
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k


def test_checkpoint_of_another_architecture_is_explained() -> None:
    r18 = build_model("bot", BoTConfig.tiny())
    r34 = build_model("bot", BoTConfig.tiny(backbone="resnet34"))
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint_state(r34, r18.state_dict(), source="runs/r18/checkpoint.pt")
    err = info.value
    msg = str(err)
    # resnet34 has 8 more BasicBlocks (layer1.2, layer2.2-3, layer3.2-5, layer4.2), 12 entries each
    assert len(err.missing) == 96 and "missing from the file (96)" in msg and "(+86 more)" in msg
    assert "backbone.layer1.2.conv1.weight" in msg
    assert "runs/r18/checkpoint.pt" in msg and "build_model_from_spec" in msg
    assert err.unexpected == [] and err.mismatched == []

    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint_state(r18, r34.state_dict(), limit=3)
    assert len(info.value.unexpected) == 96 and "(+93 more)" in str(info.value)

    other_ids = build_model("bot", BoTConfig.tiny(num_classes=10))
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint_state(other_ids, r18.state_dict())
    assert info.value.mismatched == [("head.classifier.weight", (8, 128), (10, 128))]
    assert "head.classifier.weight file [8, 128] vs model [10, 128]" in str(info.value)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("backbone", "resnet99", "backbone must be one of"), ("last_stride", 3, "last_stride must be"),
     ("width", 0, "width must be a positive int")],
)  # fmt: skip
def test_every_resnet_config_refuses_bad_backbone_fields(name, field, value, message):
    from workbench.models import ModelConfigError, model_config_class

    cls = model_config_class(name)
    if field not in cls.field_names():
        pytest.skip(f"{cls.__name__} has no {field}")
    with pytest.raises(ModelConfigError, match=message):
        cls.tiny(**{field: value})
