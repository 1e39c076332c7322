"""Every registered model honours the contract of ``workbench.models.base``.

Parametrised over ``list_models()``: a new model file is tested here without editing this file.
Each model is built from its config's ``tiny()`` at the config's ``input_size``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from workbench.models import (
    ModelConfig,
    ReIDModel,
    build_model,
    build_model_from_spec,
    get_layer,
    list_models,
    load_checkpoint_state,
    model_config_class,
    model_spec,
)

REQUIRED_NAMES = ["stem", "layer1", "layer2", "layer3", "layer4", "global", "embedding"]
BATCH = 4


@pytest.fixture(scope="module", params=list_models())
def case(request: pytest.FixtureRequest) -> tuple[str, ReIDModel, torch.Tensor]:
    name = request.param
    torch.manual_seed(0)
    model = build_model(name, model_config_class(name).tiny())
    images = torch.randn(BATCH, 3, *model.config.input_size)
    return name, model, images


def test_class_and_config(case: tuple[str, ReIDModel, torch.Tensor]) -> None:
    name, model, _ = case
    cls = type(model)
    assert isinstance(model, ReIDModel) and model.model_name == name
    assert cls.__module__ == f"workbench.models.{name}", "file name = registry name"
    assert dataclasses.is_dataclass(cls.config_class) and issubclass(cls.config_class, ModelConfig)
    assert isinstance(model.config, cls.config_class)
    assert model.num_classes == model.config.num_classes
    assert model.embedding_dim > 0 and model.feature_dim > 0


def test_eval_returns_the_embedding(case: tuple[str, ReIDModel, torch.Tensor]) -> None:
    _, model, images = case
    model.eval()
    with torch.no_grad():
        a, b = model(images), model(images)
    assert isinstance(a, torch.Tensor) and tuple(a.shape) == (BATCH, model.embedding_dim)
    assert torch.isfinite(a).all() and torch.equal(a, b)


def test_train_returns_the_dict(case: tuple[str, ReIDModel, torch.Tensor]) -> None:
    _, model, images = case
    out = model.train()(images)
    assert isinstance(out, dict)
    assert tuple(out["logits"].shape) == (BATCH, model.num_classes)
    assert tuple(out["features"].shape) == (BATCH, model.feature_dim)
    assert tuple(out["embedding"].shape) == (BATCH, model.embedding_dim)


def test_feature_maps_follow_layer_info(case: tuple[str, ReIDModel, torch.Tensor]) -> None:
    _, model, images = case
    model.eval()
    names = model.layer_names()
    assert len(set(names)) == len(names) and set(REQUIRED_NAMES) <= set(names)
    with torch.no_grad():
        maps = model.feature_maps(images)
        embedding = model(images)
    assert list(maps) == names
    h, w = images.shape[-2:]
    for row in model.layer_info:
        t = maps[row.name]
        assert t.shape[:2] == (BATCH, row.channels), row.name
        if row.reduction is None:
            assert t.dim() == 2, row.name
        else:
            assert t.shape[2:] == (math.ceil(h / row.reduction), math.ceil(w / row.reduction))
    torch.testing.assert_close(maps["embedding"], embedding)


def test_hooks_on_get_layer_see_the_feature_maps(case: tuple[str, ReIDModel, torch.Tensor]) -> None:
    _, model, images = case
    model.eval()
    captured: dict[str, torch.Tensor] = {}
    handles = [
        get_layer(model, n).register_forward_hook(
            lambda _m, _i, out, n=n: captured.__setitem__(n, out)
        )
        for n in model.layer_names()
    ]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    with torch.no_grad():
        maps = model.feature_maps(images)
    assert set(captured) == set(maps)
    for n, t in maps.items():
        torch.testing.assert_close(captured[n], t, msg=n)


def test_get_layer_lists_valid_names(case: tuple[str, ReIDModel, torch.Tensor]) -> None:
    _, model, _ = case
    with pytest.raises(KeyError, match=r"valid names: .*layer4"):
        get_layer(model, "layer9")


def test_backward_reaches_every_trainable_parameter(
    case: tuple[str, ReIDModel, torch.Tensor],
) -> None:
    # an unused parameter would also break DistributedDataParallel. The loss is the trainer's:
    # ID + feature terms plus the model's own extra_losses (deep supervision, part classifiers),
    # for models whose extra losses need no annotation fields beyond image and label.
    _, model, images = case
    model.train().zero_grad(set_to_none=True)
    out = model(images)
    labels = torch.arange(BATCH) % model.num_classes
    loss = F.cross_entropy(out["logits"], labels) + out["features"].pow(2).mean()
    if not model.train_fields:
        extra = model.extra_losses(out, {"image": images, "label": labels})
        loss = loss + sum(extra.values(), torch.zeros(()))
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    first = next(p for p in model.parameters() if p.requires_grad)
    assert first.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)


def test_safetensors_round_trip_from_spec(
    case: tuple[str, ReIDModel, torch.Tensor], tmp_path: Path
) -> None:
    _, model, images = case
    model.eval()
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    spec = json.loads(json.dumps(model_spec(model)))
    torch.manual_seed(123)
    rebuilt = build_model_from_spec(spec)
    load_checkpoint_state(rebuilt, load_file(str(path)), source=str(path))
    rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(images), model(images))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(case: tuple[str, ReIDModel, torch.Tensor]) -> None:
    _, model, images = case
    model.eval()
    with torch.no_grad():
        expected = model(images)
        maps = model.to("cuda").feature_maps(images.to("cuda"))
        got = model(images.to("cuda")).cpu()
    model.to("cpu")
    assert all(t.is_cuda for t in maps.values())
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3)
