"""Model-specific read-outs against the models' own computations: CAM, receptive fields, RGA/SA
attention, DAAF branches and the 1×1-conv shuffle."""

from __future__ import annotations

import pytest
import torch

from workbench.explain import ExplainError, explain, explain_pair, list_explainers
from workbench.explain.receptive_field import point_index
from workbench.explain.shuffle import feature_following_score
from workbench.models import build_model, model_config_class


def tiny(name: str, **overrides):
    torch.manual_seed(0)
    return build_model(name, model_config_class(name).tiny(**overrides)).eval()


def images_for(model, n=2, seed=1):
    torch.manual_seed(seed)
    return torch.randn(n, 3, *model.config.input_size)


@pytest.mark.parametrize("stage", ["layer1", "layer2", "layer3"])
def test_cam_mean_plus_bias_is_the_branch_logit(stage):
    model = tiny("sa")
    x = images_for(model)
    exp = explain("cam", model, x, layer=stage)
    with torch.no_grad():
        feats = model.feature_maps(x)[stage]
        logits = model.deep[stage](feats)  # the DS branch itself
    top = logits.argmax(1)
    bias = model.cam_bias(stage)[top]
    torch.testing.assert_close(
        exp.maps.mean((1, 2)) + bias, logits.gather(1, top[:, None])[:, 0], rtol=1e-4, atol=1e-6
    )
    # without SA: the same weights on the stage's own map
    plain = explain("cam", model, x, layer=stage, with_sa=False, classes=3)
    w = model.cam_weights(stage)[3]
    torch.testing.assert_close(
        plain.maps, torch.einsum("bchw,c->bhw", feats, w), rtol=1e-4, atol=1e-6
    )


def test_cam_refuses_models_without_deep_supervision():
    with pytest.raises(ExplainError, match="cam needs a model with deep-supervision"):
        explain("cam", tiny("bot"), torch.randn(1, 3, 64, 32))


def test_receptive_field_is_the_relation_row_of_the_point():
    model = tiny("ianet")
    x = images_for(model)
    points = ((0.1, 0.5), (0.9, 0.2))
    exp = explain("receptive_field", model, x, layer="relation2", points=points)
    with torch.no_grad():
        s = model.relation_maps(x)["relation2"]  # (B, M, M)
    h, w = exp.maps.shape[2:]
    for k, (y, xx) in enumerate(points):
        p = int(y * h) * w + int(xx * w)
        torch.testing.assert_close(exp.maps[:, k], s[:, p].view(-1, h, w))
    torch.testing.assert_close(exp.maps.sum((2, 3)), torch.ones(2, 2), rtol=1e-4, atol=1e-5)
    assert point_index((1.0, 1.0), 4, 2) == 7 and point_index((0.0, 0.0), 4, 2) == 0
    with pytest.raises(ExplainError, match=r"fractions in \[0, 1\]"):
        explain("receptive_field", model, x, points=((2.0, 0.5),))


@pytest.mark.parametrize(("name", "layer"), [("rga", "attention2"), ("sa", "sa1")])
def test_attention_read_out_is_the_models_own_map(name, layer):
    model = tiny(name)
    x = images_for(model)
    exp = explain("attention", model, x, layer=layer)
    with torch.no_grad():
        expected = model.feature_maps(x)[layer][:, 0]
    torch.testing.assert_close(exp.maps, expected)
    if name == "rga":
        assert ((exp.maps > 0) & (exp.maps < 1)).all()  # sigmoid maps
    else:
        torch.testing.assert_close(exp.maps.sum((1, 2)), torch.ones(2))  # SA weights sum to 1
    assert "attention" not in list_explainers(tiny("ianet"))  # its attention: receptive fields


def test_daaf_branches_in_coco_order():
    model = tiny("daaf")
    x = images_for(model)
    exp = explain("daaf_branches", model, x)
    with torch.no_grad():
        out = model.branch_outputs(x)
    torch.testing.assert_close(exp.maps[:, 0], out["mask"][:, 0])
    for channel, coco in enumerate(model.pab.keypoint_order):
        torch.testing.assert_close(exp.maps[:, 1 + coco], out["keypoints"][:, channel])
    assert exp.names[0] == "mask" and exp.names[1] == "nose" and len(exp.names) == 18


def test_shuffle_grid_and_score():
    model = tiny("daaf")
    x = images_for(model)
    exp = explain("shuffle", model, x)
    g = exp.extras["grid"][0]
    with torch.no_grad():
        cells = model.pab.shuffle(model.branch_outputs(x)["layer4"])
    torch.testing.assert_close(exp.maps[:, 1 * g + 2], cells[1][2].amax(1))  # features 2 × conv 3
    assert exp.names[1 * g + 2] == "features 2 × conv 3"
    pair = explain_pair("shuffle", model, x[:1], x)
    assert pair.query.maps.shape == (2, g * g, *exp.maps.shape[2:])


def test_feature_following_score_by_construction():
    torch.manual_seed(0)
    patterns = torch.rand(1, 3, 8, 4)  # P_1..P_3
    follows_features = patterns[:, :, None].expand(1, 3, 3, 8, 4)  # M_ij = P_i
    follows_convs = patterns[:, None, :].expand(1, 3, 3, 8, 4)  # M_ij = P_j
    flat = patterns.flatten(2)[0]
    corr = torch.corrcoef(flat)
    off = corr[~torch.eye(3, dtype=torch.bool)].mean()
    f = feature_following_score(follows_features)
    c = feature_following_score(follows_convs)
    torch.testing.assert_close(f, (1 - off).reshape(1))
    torch.testing.assert_close(c, -(1 - off).reshape(1))
