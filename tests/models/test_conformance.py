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
    Capability,
    ModelConfig,
    ReIDModel,
    build_model,
    build_model_from_spec,
    capabilities_of,
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


# -- what a model declares, it can do --------------------------------------------------------
def test_layers_that_may_grow_take_extra_rows(case: tuple[str, ReIDModel, torch.Tensor]) -> None:
    """A row declared ``batch_may_grow`` takes a repeated row at its output: the embedding gets
    one more row, and every image keeps its own embedding (what pair explanations rely on)."""
    _, model, images = case
    model.eval()
    with torch.no_grad():
        plain = model(images)
    for row in model.layer_info:
        if row.reduction is None or not row.batch_may_grow:
            continue
        grow = get_layer(model, row.name).register_forward_hook(
            lambda _m, _i, out: torch.cat([out[:1], out])
        )
        try:
            with torch.no_grad():
                grown = model(images)
        finally:
            grow.remove()
        assert grown.shape[0] == BATCH + 1, f"{row.name}: its rows do not reach the embedding"
        torch.testing.assert_close(grown[1:], plain, msg=f"{row.name}: rows are not independent")
        torch.testing.assert_close(grown[0], plain[0])


def test_declared_kinds_and_capabilities_are_known(
    case: tuple[str, ReIDModel, torch.Tensor],
) -> None:
    _, model, _ = case
    assert {row.kind for row in model.layer_info} <= {"stage", "attention", "relation", "vector"}
    assert all(isinstance(c, Capability) for c in model.capabilities)
    assert capabilities_of(model) == model.capabilities


def test_identity_logits(case: tuple[str, ReIDModel, torch.Tensor]) -> None:
    _, model, images = case
    if Capability.IDENTITY_LOGITS not in model.capabilities:
        pytest.skip(f"{type(model).__name__} declares no identity logits")
    embedding = model.eval()(images).detach().requires_grad_(True)
    logits = model.classify(embedding)
    assert tuple(logits.shape) == (BATCH, model.num_classes) and torch.isfinite(logits).all()
    (grad,) = torch.autograd.grad(logits[:, 0].sum(), embedding)
    assert grad.abs().sum() > 0, "the logits depend on the embedding"


def test_cam_weights(case: tuple[str, ReIDModel, torch.Tensor]) -> None:
    """Each declared CAM stage: weights (classes, C), bias (classes,), and ``stage_cam`` is the
    weights applied per position to ``cam_input`` (with SA) or to the map itself (without)."""
    _, model, images = case
    if Capability.CAM_WEIGHTS not in model.capabilities:
        pytest.skip(f"{type(model).__name__} declares no CAM weights")
    assert model.cam_layers and set(model.cam_layers) <= set(model.layer_names())
    with torch.no_grad():
        maps = model.eval().feature_maps(images)
        classes = torch.arange(BATCH) % model.num_classes
        for stage in model.cam_layers:
            fmap = maps[stage]
            weights, bias = model.cam_weights(stage), model.cam_bias(stage)
            assert tuple(weights.shape) == (model.num_classes, fmap.shape[1])
            assert tuple(bias.shape) == (model.num_classes,)
            x = model.cam_input(stage, fmap)
            assert x.shape == fmap.shape
            want = (x * weights[classes][:, :, None, None]).sum(1)
            torch.testing.assert_close(model.stage_cam(stage, fmap, classes), want)
            plain = (fmap * weights[classes][:, :, None, None]).sum(1)
            torch.testing.assert_close(model.stage_cam(stage, fmap, classes, False), plain)


def test_branch_outputs_and_conv_shuffle(case: tuple[str, ReIDModel, torch.Tensor]) -> None:
    """The branches see the stage maps of ``feature_maps``; the shuffle's diagonal cells
    (group i through its own conv) are the keypoint maps the branch predicts."""
    _, model, images = case
    caps = model.capabilities
    if Capability.BRANCH_OUTPUTS not in caps:
        assert Capability.CONV_SHUFFLE not in caps, "the shuffle runs the partial branch"
        pytest.skip(f"{type(model).__name__} declares no branch outputs")
    with torch.no_grad():
        out = model.eval().branch_outputs(images)
        maps = model.feature_maps(images)
        torch.testing.assert_close(out["layer1"], maps["layer1"])
        torch.testing.assert_close(out["layer4"], maps["layer4"])
        assert {"mask", "keypoints"} & set(out)
        if "keypoints" in out:
            assert out["keypoints"].shape[1] == len(model.keypoint_order)
        if Capability.CONV_SHUFFLE in caps:
            cells = model.conv_shuffle(out["layer4"])
            g = len(cells)
            assert g > 1 and all(len(row) == g for row in cells)
            diagonal = torch.cat([cells[i][i] for i in range(g)], 1)
            scale = out["keypoints"].abs().max()  # tiny decoders start near 0: compare relative
            assert scale > 0
            torch.testing.assert_close(diagonal / scale, out["keypoints"] / scale)


def test_attribute_interpreter(case: tuple[str, ReIDModel, torch.Tensor]) -> None:
    _, model, images = case
    if Capability.ATTRIBUTE_INTERPRETER not in model.capabilities:
        pytest.skip(f"{type(model).__name__} is not an attribute interpreter")
    m = len(model.attribute_names)
    with torch.no_grad():
        out = model.eval().interpret(images)
        embedding = model(images)
    assert out.aams.shape[:2] == (BATCH, m) and out.aams.dim() == 4
    assert out.components.shape[:2] == (BATCH, m)
    torch.testing.assert_close(out.components.flatten(1), embedding)
    assert out.target_embedding.shape == (BATCH, out.components.shape[2])


def test_attribute_logits(case: tuple[str, ReIDModel, torch.Tensor]) -> None:
    _, model, images = case
    if Capability.ATTRIBUTE_LOGITS not in model.capabilities:
        pytest.skip(f"{type(model).__name__} declares no attribute logits")
    with torch.no_grad():
        logits = model.eval().attribute_logits(model(images))
    assert logits.dim() == 2 and logits.shape[0] == BATCH and torch.isfinite(logits).all()


def test_a_daaf_without_its_partial_branch_declares_no_shuffle() -> None:
    from workbench.models.daaf import DAAFConfig

    hab_only = build_model("daaf", DAAFConfig.tiny(pab=False))
    assert Capability.BRANCH_OUTPUTS in hab_only.capabilities
    assert Capability.CONV_SHUFFLE not in hab_only.capabilities
    neither = build_model("daaf", DAAFConfig.tiny(pab=False, hab=False))
    assert not {Capability.BRANCH_OUTPUTS, Capability.CONV_SHUFFLE} & neither.capabilities


def test_modules_outside_the_contract_declare_with_the_same_attribute() -> None:
    class Plain(torch.nn.Module):
        pass

    class Declares(torch.nn.Module):
        capabilities = frozenset({"identity_logits"})

    class Inherits(Declares):
        pass

    assert capabilities_of(Plain()) == frozenset()
    assert capabilities_of(Inherits()) == {Capability.IDENTITY_LOGITS}
    with pytest.raises(ValueError):  # a name that is not a capability fails, not ignored
        capabilities_of(type("Typo", (torch.nn.Module,), {"capabilities": {"clasify"}})())
