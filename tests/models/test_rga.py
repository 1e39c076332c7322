"""RGA-SC (``workbench.models.rga``) against computations written out here, loop by loop."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from workbench.models import get_layer
from workbench.models.rga import RGA, CBAMModule, InputSizeError, RGAConfig, RGAModule


def _randomise_bn(module: nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics and affine parameters, so eval-mode BN matters."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _embed_vec(seq: nn.Sequential, v: Tensor) -> Tensor:
    """conv1x1 → BN(eval) → ReLU applied by hand to one input vector ``v`` (in,)."""
    conv, bn = seq[0], seq[1]
    z = conv.weight[:, :, 0, 0] @ v
    z = (z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    return z.clamp_min(0)


@pytest.fixture
def module() -> RGAModule:
    torch.manual_seed(0)
    m = RGAModule(8, (3, 2), spa_ratio=2, cha_ratio=2, down_ratio=2).eval()
    _randomise_bn(m)
    return m


def test_spatial_relation_matches_a_naive_loop(module: RGAModule) -> None:
    x = torch.randn(1, 8, 3, 2)
    n = 6
    feats = [x[0, :, p // 2, p % 2] for p in range(n)]  # node p = position (row p//2, col p%2)
    theta = [_embed_vec(module.theta_spatial, f) for f in feats]
    phi = [_embed_vec(module.phi_spatial, f) for f in feats]
    rel = torch.tensor([[float((theta[i] @ phi[j]).detach()) for j in range(n)] for i in range(n)])
    expected = torch.zeros(1, 1 + module.n_inter, 3, 2)
    for p in range(n):
        r = torch.cat([rel[p, :], rel[:, p]])  # r_p = [R(p,:); R(:,p)], 2N values
        unary = _embed_vec(module.gx_spatial, feats[p]).mean()
        expected[0, :, p // 2, p % 2] = torch.cat([unary[None], _embed_vec(module.gg_spatial, r)])
    with torch.no_grad():
        got = module.spatial_descriptor(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_channel_relation_matches_a_naive_loop(module: RGAModule) -> None:
    x = torch.randn(1, 8, 3, 2)
    c = 8
    feats = [x[0, k].flatten() for k in range(c)]  # node k = channel k, an N-vector
    theta = [_embed_vec(module.theta_channel, f) for f in feats]
    phi = [_embed_vec(module.phi_channel, f) for f in feats]
    rel = torch.tensor([[float((theta[i] @ phi[j]).detach()) for j in range(c)] for i in range(c)])
    expected = torch.zeros(1, 1 + module.c_inter, c, 1)
    for k in range(c):
        r = torch.cat([rel[k, :], rel[:, k]])
        unary = _embed_vec(module.gx_channel, feats[k]).mean()
        expected[0, :, k, 0] = torch.cat([unary[None], _embed_vec(module.gg_channel, r)])
    with torch.no_grad():
        got = module.channel_descriptor(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_module_is_spatial_then_channel_gating(module: RGAModule) -> None:
    x = torch.randn(2, 8, 3, 2)
    with torch.no_grad():
        out, maps = module.forward_maps(x)
        a = torch.sigmoid(module.W_spatial(module.spatial_descriptor(x)))  # (2, 1, 3, 2)
        xs = a * x
        ac = torch.sigmoid(module.W_channel(module.channel_descriptor(xs))).reshape(2, 8)
    torch.testing.assert_close(maps["spatial"], a)
    torch.testing.assert_close(maps["channel"], ac)
    torch.testing.assert_close(out, xs * ac[:, :, None, None])


def test_attention_maps_are_in_the_unit_interval_and_hookable() -> None:
    # a fresh model's BN running statistics (0, 1) do not fit the unnormalised affinities and
    # saturate the sigmoid in float32: calibrate them on one batch, as training would
    torch.manual_seed(0)
    model = RGA(RGAConfig.tiny())
    images = torch.randn(3, 3, 64, 32)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 1.0
    with torch.no_grad():
        model.train()(images)
        maps = model.eval().feature_maps(images)
    sizes = {1: (16, 8), 2: (8, 4), 3: (4, 2), 4: (4, 2)}
    for k in range(1, 5):
        a = maps[f"attention{k}"]
        assert a.shape == (3, 1, *sizes[k])
        assert (a > 0).all() and (a < 1).all()
        assert a.std() > 0  # not a constant map
        ch = maps[f"channel_attention{k}"]
        assert ch.shape == (3, model.backbone.stage_info[k].channels)
        assert (ch > 0).all() and (ch < 1).all()
        assert get_layer(model, f"attention{k}") is model.get_submodule(f"att{k}.spatial_map")
        # the module output is the stage output gated by both maps
        gated = maps[f"layer{k}"] * a * ch[:, :, None, None]
        torch.testing.assert_close(maps[f"att{k}"], gated)


def test_a_wrong_input_size_fails_naming_the_built_size() -> None:
    model = RGA(RGAConfig.tiny()).eval()
    with pytest.raises(InputSizeError, match=r"built for 64×32 inputs.*got 32×16"):
        model(torch.randn(1, 3, 32, 16))
    with pytest.raises(InputSizeError, match="64×32"):
        model.feature_maps(torch.randn(1, 3, 128, 64))
    with pytest.raises(InputSizeError, match=r"att2 \(after layer2\) was built for 8×4"):
        model.att2(torch.randn(1, 32, 4, 2))
    # CBAM has no relations: any size works
    cbam = RGA(RGAConfig.tiny(attention="cbam")).eval()
    assert cbam(torch.randn(1, 3, 32, 16)).shape == (1, cbam.embedding_dim)


def test_switches_change_what_they_should() -> None:
    base = RGA(RGAConfig.tiny())
    s_only = RGA(RGAConfig.tiny(channel=False))
    c_only = RGA(RGAConfig.tiny(spatial=False))
    no_first = RGA(RGAConfig.tiny(stages=(False, True, True, True)))
    names = set(base.layer_names())
    assert {f"attention{k}" for k in range(1, 5)} <= names
    assert not any(n.startswith("channel_attention") for n in s_only.layer_names())
    assert not any(n.startswith("attention") for n in c_only.layer_names())
    assert not hasattr(s_only.att1, "W_channel") and not hasattr(c_only.att1, "W_spatial")
    assert no_first.attention_module(1) is None and "attention1" not in no_first.layer_names()
    n_att1 = sum(p.numel() for p in base.att1.parameters())
    total = sum(p.numel() for p in base.parameters())
    assert sum(p.numel() for p in no_first.parameters()) == total - n_att1
    with pytest.raises(ValueError, match="both False"):
        RGAConfig.tiny(spatial=False, channel=False)


def _attention_at(model: RGA, images: Tensor, k: int) -> Tensor:
    with torch.no_grad():
        return model.feature_maps(images)[f"attention{k}"]


def test_without_relations_the_spatial_map_is_local() -> None:
    # w/o Rel.: a position's attention depends only on its own feature; with relations, on all
    for relations, local in ((False, True), (True, False)):
        torch.manual_seed(0)
        module = RGAModule(
            16, (4, 2), channel=False, relations=relations, cha_ratio=1, spa_ratio=1, down_ratio=1
        )
        module.eval()
        _randomise_bn(module)
        x = torch.randn(1, 16, 4, 2)
        y = x.clone()
        y[0, :, 0, 0] = torch.randn(16) * 3  # change the feature of one position
        with torch.no_grad():
            a = module.forward_maps(x)[1]["spatial"]
            b = module.forward_maps(y)[1]["spatial"]
        changed = ((a - b).abs() > 1e-6)[0, 0].flatten()
        assert changed[0]
        assert bool(changed[1:].any()) is not local, relations
        if not relations:
            assert not hasattr(module, "theta_spatial") and not hasattr(module, "gg_spatial")


def test_cbam_gates_match_the_formulas() -> None:
    torch.manual_seed(0)
    m = CBAMModule(16, ratio=4).eval()
    _randomise_bn(m)
    x = torch.randn(2, 16, 5, 3)
    with torch.no_grad():
        out, maps = m.forward_maps(x)
        mlp = m.mlp
        ac = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.flatten(2).max(-1).values))
        xc = x * ac[:, :, None, None]
        pooled = torch.stack([xc.mean(1), xc.max(1).values], 1)
        a = torch.sigmoid(m.bn(nn.functional.conv2d(pooled, m.conv.weight, padding=3)))
    torch.testing.assert_close(maps["channel"], ac)
    torch.testing.assert_close(maps["spatial"], a)
    torch.testing.assert_close(out, xc * a)


def test_resnet50_full_configuration_builds_with_the_expected_parameters() -> None:
    # parameter count of att1 (C=256, 64×32, N=2048) written out from modules.md §1.1
    model = RGA(RGAConfig(num_classes=751))
    c, n = 256, 2048
    ci, ni = c // 8, n // 8

    def emb(i: int, o: int) -> int:
        return i * o + 2 * o  # conv + BN

    def mlp(i: int) -> int:
        mid = i // 8
        return i * mid + 2 * mid + mid + 2

    spatial = 3 * emb(c, ci) + emb(2 * n, ni) + mlp(1 + ni)
    channel = 3 * emb(n, ni) + emb(2 * c, ci) + mlp(1 + ci)
    assert sum(p.numel() for p in model.att1.parameters()) == spatial + channel == 2_673_172
    assert model.att1.size == (64, 32) and model.att4.size == (16, 8)
    assert [model.attention_module(k).channels for k in range(1, 5)] == [256, 512, 1024, 2048]


@pytest.mark.slow
def test_cpu_card_configuration_runs_at_256x128() -> None:
    model = RGA(RGAConfig(backbone="resnet18", width=16, stages=(False, True, True, True))).eval()
    with torch.no_grad():
        maps = model.feature_maps(torch.randn(1, 3, 256, 128))
    assert maps["layer4"].shape[-2:] == (16, 8)
    assert maps["attention2"].shape == (1, 1, 32, 16) and "attention1" not in maps
