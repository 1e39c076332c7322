"""wrap(): any embedding network behind the model contract; truth from hand-built tiny networks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench.models import ModelConfigError, ReIDModel, get_layer, model_spec, wrap


class TinyNet(nn.Module):
    """Conv (stride 2) → block of two convs (stride 2) → pooled + linear, or a tuple output."""

    def __init__(self, tuple_out: bool = False) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, 2, 1), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(6, 10, 3, 2, 1), nn.BatchNorm2d(10), nn.ReLU())
        self.proj = nn.Linear(10, 5)
        self.tuple_out = tuple_out

    def forward(self, x: torch.Tensor):
        f = self.body(self.stem(x))
        e = self.proj(f.mean(dim=(2, 3)))
        return (e, f) if self.tuple_out else e


def net(**kw: bool) -> TinyNet:
    torch.manual_seed(0)
    m = TinyNet(**kw)
    with torch.no_grad():
        m.body[1].running_mean.uniform_(-0.5, 0.5)
        m.body[1].running_var.uniform_(0.5, 1.5)
    return m.eval()


LAYERS = {"stem": "stem", "body_conv": "body.0", "body": "body", "proj": "proj"}


def test_layer_info_from_one_probe_forward() -> None:
    model = wrap(net(), LAYERS, input_size=(32, 16))
    assert isinstance(model, ReIDModel)
    rows = [(r.name, r.channels, r.reduction, r.module, r.kind) for r in model.layer_info]
    assert rows == [
        ("stem", 6, 2, "module.stem", "stage"),
        ("body_conv", 10, 4, "module.body.0", "stage"),
        ("body", 10, 4, "module.body", "stage"),
        ("proj", 5, None, "module.proj", "vector"),
        ("embedding", 5, None, "embed", "vector"),
    ]
    assert model.embedding_dim == 5 and model.layer_names()[-1] == "embedding"


def test_feature_maps_equal_a_hand_computed_forward_and_hooks() -> None:
    m = net()
    model = wrap(m, LAYERS, input_size=(32, 16)).eval()
    x = torch.randn(2, 3, 40, 24)
    with torch.no_grad():
        stem = F.relu(F.conv2d(x, m.stem[0].weight, m.stem[0].bias, 2, 1))
        conv = F.conv2d(stem, m.body[0].weight, m.body[0].bias, 2, 1)
        bn = m.body[1]
        body = F.relu(F.batch_norm(conv, bn.running_mean, bn.running_var, bn.weight, bn.bias))
        emb = F.linear(body.mean(dim=(2, 3)), m.proj.weight, m.proj.bias)
        maps = model.feature_maps(x)
        out = model(x)
    assert list(maps) == model.layer_names()
    for name, ref in [("stem", stem), ("body_conv", conv), ("body", body), ("embedding", emb)]:
        torch.testing.assert_close(maps[name], ref, msg=name)
    torch.testing.assert_close(out, emb)
    for row in model.layer_info:  # h = ceil(H / reduction) at another input size too
        if row.reduction:
            assert maps[row.name].shape[2] == math.ceil(40 / row.reduction)
    assert get_layer(model, "body") is m.body
    # no hook is left behind
    assert all(not mod._forward_hooks for mod in m.modules())


def test_feature_maps_are_differentiable_like_an_explainer_needs() -> None:
    model = wrap(net(), {"body": "body"}, input_size=(32, 16))
    x = torch.randn(1, 3, 32, 16, requires_grad=True)
    maps = model.feature_maps(x)
    grad_map, grad_x = torch.autograd.grad(maps["embedding"].sum(), [maps["body"], x])
    assert grad_map.shape == maps["body"].shape and grad_x.abs().sum() > 0


def test_embedding_callable_picks_from_a_tuple_output() -> None:
    m = net(tuple_out=True)
    with pytest.raises(TypeError, match="embedding=callable"):
        wrap(m, {"body": "body"}, input_size=(32, 16))
    model = wrap(m, {"body": "body"}, embedding=lambda out: out[0], input_size=(32, 16))
    x = torch.randn(2, 3, 32, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), m(x)[0])


def test_probe_keeps_train_mode_and_bn_statistics() -> None:
    m = net().train()
    before = m.body[1].running_mean.clone()
    model = wrap(m, {"body": "body"}, input_size=(32, 16))
    assert model.training and m.training
    torch.testing.assert_close(m.body[1].running_mean, before, rtol=0, atol=0)


def test_bad_layer_paths_and_outputs() -> None:
    with pytest.raises(ModelConfigError, match=r"no submodule 'bdy'.*Did you mean 'body'"):
        wrap(net(), {"x": "bdy"})
    with pytest.raises(ModelConfigError, match="reserved"):
        wrap(net(), {"embedding": "proj"})
    with pytest.raises(TypeError, match=r"nn\.Module"):
        wrap(lambda x: x, {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a registered model"):
        model_spec(wrap(net(), {}, input_size=(32, 16)))
