"""BoT (Luo et al. 2019): BNNeck initialisation, train/eval outputs computed by hand, options."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench.models import BoT, BoTConfig, ModelConfigError, build_model, get_model_class
from workbench.models.resnet import build_resnet
from workbench.train.losses import CrossEntropyLabelSmooth, TripletLoss


def tiny(**overrides: object) -> BoT:
    torch.manual_seed(0)
    return BoT(BoTConfig.tiny(**overrides))


def test_registered_as_bot() -> None:
    assert get_model_class("bot") is BoT
    model = build_model("bot", backbone="resnet18", width=16, num_classes=3)
    assert isinstance(model, BoT) and model.config.num_classes == 3


def test_defaults_are_the_paper_model() -> None:
    cfg = BoTConfig()
    assert (cfg.backbone, cfg.width, cfg.last_stride, cfg.neck, cfg.neck_feat) == (
        "resnet50", 64, 1, True, "after",
    )  # fmt: skip
    with torch.device("meta"):
        model = BoT(cfg)
    assert model.embedding_dim == model.feature_dim == 2048
    assert tuple(model.head.classifier.weight.shape) == (751, 2048)


def test_bnneck_init_and_frozen_bias() -> None:
    model = tiny(backbone="resnet50", num_classes=200)  # D = 16 * 8 * 4 = 512
    bn, fc = model.head.bn, model.head.classifier
    assert isinstance(bn, nn.BatchNorm1d)
    assert not bn.bias.requires_grad and bn.weight.requires_grad
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    assert fc.bias is None
    w = fc.weight.detach()  # 102,400 draws of N(0, 0.001): std error ~2e-6
    assert abs(w.std().item() - 0.001) < 5e-5 and abs(w.mean().item()) < 2e-5


def test_train_output_is_gap_then_bn_then_linear() -> None:
    model = tiny().train()
    x = torch.randn(6, 3, 64, 32)
    out = model(x)
    assert set(out) >= {"logits", "features", "embedding"}
    with torch.no_grad():
        gap = model.backbone.forward_features(x).mean((2, 3))  # train-mode BN2d: same batch stats
        bn = model.head.bn
        mu, var = gap.mean(0), gap.var(0, unbiased=False)
        post = (gap - mu) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(out["features"], gap)
    torch.testing.assert_close(out["embedding"], post, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        out["logits"], post @ model.head.classifier.weight.t(), rtol=1e-4, atol=1e-6
    )


def test_eval_returns_post_bn_feature_with_running_stats() -> None:
    model = tiny()
    bn = model.head.bn
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
    model.eval()
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        gap = model.backbone.forward_features(x).mean((2, 3))
        expected = (gap - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight
        emb = model(x)
    torch.testing.assert_close(emb, expected, rtol=1e-4, atol=1e-5)
    assert emb.shape == (3, model.embedding_dim)

    before = tiny(neck_feat="before").eval()
    with torch.no_grad():
        torch.testing.assert_close(before(x), before.backbone.forward_features(x).mean((2, 3)))

    normed = tiny(normalize_embedding=True).eval()
    with torch.no_grad():
        e = normed(x)
        torch.testing.assert_close(e.norm(dim=1), torch.ones(3))
        raw = normed.head.bn(normed.feature_maps(x)["global"])
        torch.testing.assert_close(e, F.normalize(raw, dim=1))


def test_no_neck_classifies_the_global_feature() -> None:
    model = tiny(neck=False)
    assert isinstance(model.head.bn, nn.Identity)
    assert model.head.classifier.bias is not None and torch.all(model.head.classifier.bias == 0)
    x = torch.randn(4, 3, 64, 32)
    out = model.train()(x)
    torch.testing.assert_close(out["embedding"], out["features"])
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.feature_maps(x)["global"])


def test_gradient_reaches_the_backbone_not_the_frozen_bias() -> None:
    model = tiny().train()
    x = torch.randn(8, 3, 64, 32)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    out = model(x)
    loss = CrossEntropyLabelSmooth(8)(out["logits"], y) + TripletLoss(0.3)(out["features"], y)
    loss.backward()
    assert model.backbone.conv1.weight.grad is not None
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    assert model.head.bn.weight.grad is not None and model.head.bn.bias.grad is None


def test_last_stride_1_map_at_256x128() -> None:
    model = tiny(backbone="resnet50", input_size=(256, 128)).eval()
    with torch.no_grad():
        maps = model.feature_maps(torch.randn(1, 3, 256, 128))
    assert tuple(maps["layer4"].shape) == (1, 512, 16, 8)
    assert tuple(maps["layer3"].shape) == (1, 256, 16, 8)


def test_pretrained_path_loads_the_backbone(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = build_resnet("resnet18", width=16, num_classes=1000)  # torchvision layout, with fc
    torch.save(source.state_dict(), tmp_path / "imagenet.pth")
    model = tiny(pretrained=str(tmp_path / "imagenet.pth"), stem_relu=False)
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, source.state_dict()[k]), k
    assert isinstance(model.backbone.relu, nn.Identity)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("backbone", "resnet101", "resnet18, resnet34, resnet50"),
        ("last_stride", 3, "last_stride"),
        ("neck_feat", "middle", "neck_feat"),
        ("width", 0, "width"),
        ("num_classes", 0, "num_classes"),
        ("input_size", (256,), "input_size"),
    ],
)
def test_config_validation(field: str, value: object, match: str) -> None:
    with pytest.raises(ModelConfigError, match=match):
        BoTConfig(**{field: value})
