"""SA network: the SA layer against naive loops, deep-supervision CAMs, the extra losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from workbench.models import ModelConfigError, build_model, get_layer
from workbench.models.sa import (
    SAConfig,
    SANet,
    SAWeights,
    SpatialAttention,
    spatial_attention_weights,
)


def naive_sa(x: torch.Tensor, mode: str) -> torch.Tensor:
    """The SA weights by explicit loops over positions (paper Eq. 1 / code SpatialAttn)."""
    b, c, h, w = x.shape
    out = torch.zeros(b, 1, h, w, dtype=torch.float64)
    for i in range(b):
        m = [[0.0] * w for _ in range(h)]
        for y in range(h):
            for xx in range(w):
                total = sum(float(x[i, k, y, xx]) for k in range(c))
                m[y][xx] = total if mode == "softmax_sum" else total / c
        if mode == "l1_mean":
            z = sum(sum(row) for row in m)
            for y in range(h):
                for xx in range(w):
                    out[i, 0, y, xx] = m[y][xx] / z
        else:
            mx = max(max(row) for row in m)
            z = sum(math.exp(v - mx) for row in m for v in row)
            for y in range(h):
                for xx in range(w):
                    out[i, 0, y, xx] = math.exp(m[y][xx] - mx) / z
    return out


@pytest.mark.parametrize("mode", ["l1_mean", "softmax_sum", "softmax_mean"])
def test_sa_weights_match_a_naive_loop_and_sum_to_one(mode: str) -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 5, 4, 3)  # post-ReLU-like, small enough for the sum softmax
    a = spatial_attention_weights(x, mode)
    assert a.shape == (2, 1, 4, 3)
    torch.testing.assert_close(a.double(), naive_sa(x, mode), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(a.sum(dim=(2, 3)), torch.ones(2, 1))
    assert (a >= 0).all()


def test_sa_layer_has_no_parameters_and_rescales() -> None:
    layer = SpatialAttention("l1_mean", rescale=False)
    assert sum(p.numel() for p in layer.parameters()) == 0
    assert list(layer.buffers()) == []
    x = torch.rand(2, 3, 4, 2)
    a = naive_sa(x, "l1_mean").float()
    torch.testing.assert_close(layer(x), a * x)
    # rescaled: GAP of the output is the attention-weighted sum Σ a F; uniform maps give F back
    rescaled = SpatialAttention("l1_mean", rescale=True)
    torch.testing.assert_close(rescaled(x).mean(dim=(2, 3)), (a * x).sum(dim=(2, 3)))
    flat = torch.ones(1, 3, 4, 2)
    torch.testing.assert_close(rescaled(flat), flat)


def test_whole_model_sa_adds_no_parameters() -> None:
    cfg = SAConfig.tiny()
    with_sa = SANet(cfg)
    without = SANet(SAConfig.tiny(sa_stages=()))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(with_sa) == count(without)
    assert count(SANet(SAConfig.tiny(sa_stages=("layer1", "layer4")))) == count(without)


def test_softmax_sum_is_nearly_one_hot_on_large_activations() -> None:
    # the reason the default is the code's l1 normalisation (module docstring)
    x = torch.rand(1, 256, 8, 4) * 2
    x[0, :, 3, 1] += 0.1  # a slightly stronger position
    assert spatial_attention_weights(x, "softmax_sum").max() > 0.99
    assert spatial_attention_weights(x, "l1_mean").max() < 0.1


def test_unknown_mode_and_bad_stage_fail_clearly() -> None:
    with pytest.raises(ModelConfigError, match="sa_mode must be one of"):
        SAWeights("softmax")
    with pytest.raises(ModelConfigError, match="sa_stages"):
        SAConfig.tiny(sa_stages=("layer5",))
    with pytest.raises(ModelConfigError, match="deep_supervision is off"):
        SAConfig.tiny(deep_supervision=False)


def test_sa_maps_are_exposed_and_hookable() -> None:
    torch.manual_seed(0)
    model = SANet(SAConfig.tiny(sa_stages=("layer1", "layer3"))).eval()
    x = torch.randn(2, 3, 96, 32)
    with torch.no_grad():
        maps = model.feature_maps(x)
    assert "sa1" in maps and "sa3" in maps and "sa2" not in maps
    kinds = {row.name: row.kind for row in model.layer_info}
    assert kinds["sa1"] == "attention"
    expected = naive_sa(maps["layer3"], "l1_mean").float()
    torch.testing.assert_close(maps["sa3"], expected, rtol=1e-4, atol=1e-6)
    seen = []
    handle = get_layer(model, "sa1").register_forward_hook(lambda _m, _i, o: seen.append(o))
    with torch.no_grad():
        model(x)
    handle.remove()
    torch.testing.assert_close(seen[0], maps["sa1"])


def test_eval_embedding_is_per_stripe_l2_normalised_stripes() -> None:
    torch.manual_seed(0)
    model = SANet(SAConfig.tiny()).eval()
    x = torch.randn(2, 3, 96, 32)
    with torch.no_grad():
        emb = model(x)
        layer4 = model.feature_maps(x)["layer4"]  # (2, 128, 6, 2)
    c = layer4.shape[1]
    for p in range(6):
        stripe = layer4[:, :, p, :].mean(dim=2)  # row p of the 6-row map
        torch.testing.assert_close(emb[:, p * c : (p + 1) * c], F.normalize(stripe, dim=1))


def test_cam_is_exact_for_the_deep_supervision_logits() -> None:
    torch.manual_seed(0)
    model = SANet(SAConfig.tiny()).eval()
    with torch.no_grad():  # non-trivial classifiers and BN statistics
        for branch in model.deep.values():
            branch.classifier.weight.normal_()
            branch.bn.running_mean.normal_()
            branch.bn.running_var.uniform_(0.5, 2.0)
            branch.bn.weight.normal_()
    x = torch.randn(3, 3, 96, 32)
    classes = torch.tensor([0, 5, 7])
    with torch.no_grad():
        maps = model.feature_maps(x)
    for stage in (1, 2, 3):
        w = model.cam_weights(stage)
        stage_map = maps[f"layer{stage}"]
        assert w.shape == (8, stage_map.shape[1])
        with torch.no_grad():
            cam = model.class_activation_map(x, stage, classes)  # (3, h, w)
            expected = model.deep[f"layer{stage}"](stage_map)  # the branch's own logits
        assert cam.shape == (3, *stage_map.shape[2:])
        logit = cam.mean(dim=(1, 2)) + model.cam_bias(stage)[classes]
        torch.testing.assert_close(logit, expected[torch.arange(3), classes])
        # and by hand: h·w · a ⊙ F is what the weights apply to
        a = naive_sa(stage_map, "l1_mean").float() * stage_map.shape[2] * stage_map.shape[3]
        torch.testing.assert_close(model.cam_input(stage, stage_map), a * stage_map)
    with pytest.raises(KeyError, match="Grad-CAM"):
        model.cam_weights(4)


def test_extra_losses_on_a_hand_made_case() -> None:
    model = SANet(SAConfig.tiny(num_classes=3, parts=2))
    labels = torch.tensor([0, 2])
    # logits whose cross-entropy is known in closed form
    zero = torch.zeros(2, 3)  # CE = log 3
    sure = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 10.0]])  # CE = log(1 + 2e-10)
    out = {
        "part_logits": [zero, sure],
        "deep_logits": {"layer1": zero, "layer2": sure, "layer3": zero},
    }
    terms = model.extra_losses(out, {"label": labels})  # type: ignore[arg-type]
    assert sorted(terms) == ["deep1", "deep2", "deep3", "part1", "part2"]
    log3, small = math.log(3), math.log(1 + 2 * math.exp(-10))
    assert terms["part1"].item() == pytest.approx(log3)
    assert terms["part2"].item() == pytest.approx(small, abs=1e-6)
    assert terms["deep2"].item() == pytest.approx(small, abs=1e-6)
    assert terms["deep3"].item() == pytest.approx(log3)
    paper = SANet(SAConfig.tiny(num_classes=3, parts=2, loss_weighting="paper"))
    terms = paper.extra_losses(out, {"label": labels})  # type: ignore[arg-type]
    # 20·(0.8·mean(parts) + 0.2·mean(global, DS)) with the global term weighted 1 by the trainer
    assert terms["part1"].item() == pytest.approx(8 * log3)
    assert terms["deep1"].item() == pytest.approx(log3)


def test_train_output_has_every_branch() -> None:
    model = build_model("sa", **SAConfig.tiny().to_dict()).train()
    out = model(torch.randn(2, 3, 96, 32))
    assert len(out["part_logits"]) == 6 and all(t.shape == (2, 8) for t in out["part_logits"])
    assert sorted(out["deep_logits"]) == ["layer1", "layer2", "layer3"]
    assert out["features"].shape == (2, 6 * 128)


def test_code_heads_cam_is_exact_too() -> None:
    torch.manual_seed(0)
    model = SANet(SAConfig.tiny(head="code")).eval()
    assert model.deep["layer2"].bn is None and model.global_classifier.bias is not None
    assert isinstance(model.part_conv[2], torch.nn.ReLU)
    with torch.no_grad():
        branch = model.deep["layer2"]
        branch.classifier.weight.normal_()
        branch.classifier.bias.normal_()
    x = torch.randn(2, 3, 96, 32)
    classes = torch.tensor([1, 3])
    with torch.no_grad():
        cam = model.class_activation_map(x, 2, classes)
        expected = branch(model.feature_maps(x)["layer2"])[torch.arange(2), classes]
    torch.testing.assert_close(cam.mean(dim=(1, 2)) + model.cam_bias(2)[classes], expected)


def test_trainer_logs_every_sa_loss_term(tiny_synth, tmp_path) -> None:
    from workbench.train.config import TrainConfig, apply_overrides
    from workbench.train.trainer import Trainer

    config = apply_overrides(
        TrainConfig(model="sa", model_config={"backbone": "resnet18", "width": 8, "dim": 16}),
        {
            "data.root": str(tiny_synth),
            "data.height": 96,
            "data.width": 32,
            "data.batch_size": 16,
            "data.workers": 0,
            "optim.epochs": 1,
            "max_steps_per_epoch": 1,
        },
    )
    stats = Trainer(config, tmp_path / "run", progress=False).train_epoch(0)
    names = [f"part{i}" for i in range(1, 7)] + ["deep1", "deep2", "deep3"]
    assert sorted(stats.extra) == sorted(names)
    # total = ID + triplet + the nine extra terms (center loss off)
    total = stats.id_loss + stats.triplet_loss + sum(stats.extra.values())
    assert stats.loss == pytest.approx(total, rel=1e-5)
