"""BoT / ResNet options for imported checkpoints: each against an independent computation, the
model contract on a model that has all of them, and the config round trip that keeps them."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from workbench.models import (
    ModelConfigError,
    build_model,
    build_model_from_spec,
    get_layer,
    model_spec,
)
from workbench.models.heads import GeM
from workbench.models.resnet import IBN, NonLocal

ALL = {
    "backbone": "resnet50", "width": 4, "num_classes": 5, "input_size": (64, 32),
    "stem_pool": "ceil", "ibn": True, "nonlocal_blocks": (0, 2, 3, 0), "pool": "gem",
    "fc_dim": 12, "pixel_mean": (0.5, 0.4, 0.3), "pixel_std": (0.2, 0.3, 0.25),
}  # fmt: skip


def test_gem_against_the_formula_and_its_state() -> None:
    x = torch.rand(2, 3, 4, 5) - 0.2  # some negatives: clamped at eps
    learn, fixed = GeM(2.5), GeM(3.0, learnable=False)
    ref = x.clamp(min=1e-6).pow(2.5).mean(dim=(2, 3)).pow(1 / 2.5)
    torch.testing.assert_close(learn(x), ref)
    assert list(learn.state_dict()) == ["p"] and fixed.state_dict() == {}
    torch.testing.assert_close(
        GeM(1.0, learnable=False)(x.abs() + 1e-3), (x.abs() + 1e-3).mean(dim=(2, 3))
    )
    g = x.clamp(min=1e-6)
    torch.testing.assert_close(
        fixed(x), torch.stack([g[i].pow(3).mean(dim=(1, 2)) for i in range(2)]).pow(1 / 3)
    )


def test_ibn_normalises_halves_separately() -> None:
    torch.manual_seed(0)
    m = IBN(6).eval()
    x = torch.randn(2, 6, 5, 4) * 3 + 1
    out = m(x)
    a = x[:, :3]
    ref_in = (a - a.mean(dim=(2, 3), keepdim=True)) / torch.sqrt(
        a.var(dim=(2, 3), unbiased=False, keepdim=True) + 1e-5
    )
    torch.testing.assert_close(out[:, :3], ref_in, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out[:, 3:], x[:, 3:] / math.sqrt(1 + 1e-5))  # BN at init, eval


def test_nonlocal_against_a_loop_over_positions() -> None:
    torch.manual_seed(0)
    m = NonLocal(4, 2).eval()
    with torch.no_grad():
        m.W[1].weight.fill_(1.5)
    x = torch.randn(1, 4, 3, 2)
    t, p, g = (conv(x)[0].flatten(1) for conv in (m.theta, m.phi, m.g))  # (inter, N)
    n = x.shape[2] * x.shape[3]
    y = torch.zeros(2, n)
    for i in range(
        n
    ):  # y_i = (1/N) sum_j (θ_i·φ_j) g_j   (Wang et al. eq. 1, embedded dot product)
        for j in range(n):
            y[:, i] += (t[:, i] @ p[:, j]) * g[:, j] / n
    ref = m.W(y.view(1, 2, 3, 2)) + x
    torch.testing.assert_close(m(x), ref)


def test_pixel_stats_renormalise_exactly() -> None:
    img = torch.rand(2, 3, 64, 32)
    imnet = (img - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    mean, std = (
        torch.tensor(ALL["pixel_mean"]).view(1, 3, 1, 1),
        torch.tensor(ALL["pixel_std"]).view(1, 3, 1, 1),
    )
    with_stats = build_model("bot", **ALL).eval()
    plain = build_model("bot", **{**ALL, "pixel_mean": None, "pixel_std": None}).eval()
    plain.load_state_dict(with_stats.state_dict())  # the stats are not in the state dict
    with torch.no_grad():
        torch.testing.assert_close(
            with_stats(imnet), plain((img - mean) / std), rtol=1e-5, atol=1e-5
        )


def test_ceil_stem_pool_has_the_same_size_other_windows() -> None:
    x = torch.randn(1, 3, 64, 32)
    a = build_model("bot", **{**ALL, "stem_pool": "pad"}).backbone
    b = build_model("bot", **{**ALL, "stem_pool": "ceil"}).backbone
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        sa, sb = a.forward_stem(x), b.forward_stem(x)
        conv = a.relu(a.bn1(a.conv1(a.input_norm(x))))
    assert sa.shape == sb.shape == (1, 4, 16, 8)
    torch.testing.assert_close(sb, F.max_pool2d(conv, 3, 2, ceil_mode=True))
    assert not torch.allclose(sa, sb)


def test_the_contract_with_every_option() -> None:
    torch.manual_seed(0)
    model = build_model("bot", **ALL).eval()
    x = torch.randn(3, 3, 64, 32)
    names = model.layer_names()
    assert names == ["stem", "layer1", "nl2_0", "nl2_1", "layer2", "nl3_0", "nl3_1", "nl3_2",
                     "layer3", "layer4", "global", "fc", "embedding"]  # fmt: skip
    captured = {}
    hooks = [
        get_layer(model, n).register_forward_hook(lambda _m, _i, o, n=n: captured.__setitem__(n, o))
        for n in names
    ]
    with torch.no_grad():
        emb = model(x)
        maps = model.feature_maps(x)
    for h in hooks:
        h.remove()
    assert list(maps) == names and set(captured) == set(names)
    for row in model.layer_info:
        torch.testing.assert_close(captured[row.name], maps[row.name], msg=row.name)
        assert maps[row.name].shape[1] == row.channels
        if row.reduction:
            assert maps[row.name].shape[2:] == (
                math.ceil(64 / row.reduction),
                math.ceil(32 / row.reduction),
            )
    torch.testing.assert_close(maps["embedding"], emb)
    assert emb.shape == (3, 12) and maps["layer2"] is maps["nl2_1"]
    out = model.train()(x)  # train mode: every parameter gets a gradient (GeM p, non-local, fc)
    (F.cross_entropy(out["logits"], torch.arange(3)) + out["features"].pow(2).mean()).backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    assert out["features"].shape == (3, 12)


def test_options_survive_the_json_spec_round_trip() -> None:
    model = build_model("bot", **ALL).eval()
    spec = json.loads(json.dumps(model_spec(model)))
    rebuilt = build_model_from_spec(spec)
    assert rebuilt.config == model.config and rebuilt.config.nonlocal_blocks == (0, 2, 3, 0)
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), model(x))


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("stem_pool", "same", "stem_pool"),
        ("pool", "max", "pool"),
        ("nonlocal_blocks", (1, 2), "nonlocal_blocks"),
        ("nonlocal_inter", "quarter", "nonlocal_inter"),
        ("pixel_std", (0.2, 0.0, 0.2), "pixel_std"),
        ("fc_dim", -1, "fc_dim"),
        ("gem_p", 0.0, "gem_p"),
    ],
)
def test_option_validation(field: str, value: object, match: str) -> None:
    with pytest.raises(ModelConfigError, match=match):
        build_model("bot", **{**ALL, field: value})
    with pytest.raises(ValueError, match="nonlocal_blocks"):  # more blocks than the stage has
        build_model("bot", **{**ALL, "backbone": "resnet18", "nonlocal_blocks": (0, 3, 0, 0)})


def test_new_nonlocal_blocks_are_the_identity() -> None:
    torch.manual_seed(0)
    with_nl = build_model("bot", **ALL).eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        maps = with_nl.feature_maps(x)
        bb = with_nl.backbone
        y = bb.layer2(bb.layer1(bb.forward_stem(x)))  # blocks only, no non-local
        torch.testing.assert_close(maps["layer2"], y)
