"""DAAF (``workbench.models.daaf``): Gaussian targets, loss terms, inference parity with BoT."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from workbench.models.bot import BoT, BoTConfig
from workbench.models.daaf import (
    DAAF,
    KEYPOINT_GROUPINGS,
    DAAFConfig,
    daaf_losses,
    gaussian_heatmaps,
)

SIZE = (64, 32)


def _bot_twin(model: DAAF) -> BoT:
    """A BoT of the same backbone, loaded with DAAF's backbone and head weights."""
    fields = {f: getattr(model.config, f) for f in BoTConfig.field_names()}
    bot = BoT(BoTConfig(**fields))
    state = model.state_dict()
    bot.load_state_dict({k: state[k] for k in bot.state_dict()}, strict=True)
    return bot


def _params_used(model: nn.Module, images: Tensor) -> int:
    """Parameters of every module that runs during ``model(images)`` (found with hooks)."""
    called: set[nn.Module] = set()
    handles = [
        m.register_forward_hook(lambda mod, _i, _o: called.add(mod)) for m in model.modules()
    ]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for h in handles:
            h.remove()
    return sum(p.numel() for m in called for p in m.parameters(recurse=False))


def _flops(model: nn.Module, images: Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(images)
    return counter.get_total_flops()


def test_gaussian_targets_on_a_hand_worked_case() -> None:
    # 8×4 image, 4×2 map: map pixel (r, c) is centred at image point ((c+.5)·2, (r+.5)·2)
    kp = torch.tensor([[[1.0, 3.0, 2.0], [3.0, 1.0, 1.0], [2.0, 2.0, 0.0]]])  # (1, 3, 3)
    maps = gaussian_heatmaps(kp, (4, 2), (8, 4), sigma=2.0)
    assert maps.shape == (1, 3, 4, 2)
    e = math.exp
    # keypoint 0 at (x=1, y=3): centres x ∈ {1, 3}, y ∈ {1, 3, 5, 7}; d² / (2σ²) = d² / 8
    expected0 = torch.tensor(
        [[e(-4 / 8), e(-8 / 8)], [1.0, e(-4 / 8)], [e(-4 / 8), e(-8 / 8)], [e(-16 / 8), e(-20 / 8)]]
    )
    torch.testing.assert_close(maps[0, 0], expected0)
    assert maps[0, 1, 0, 1] == pytest.approx(1.0)  # v = 1 (occluded but labelled): a Gaussian
    assert maps[0, 1].max() == pytest.approx(1.0)
    assert torch.count_nonzero(maps[0, 2]) == 0  # v = 0: all-zero map


def test_loss_terms_on_a_hand_made_case() -> None:
    b, h, w = 2, 4, 2
    groups = KEYPOINT_GROUPINGS["coco6"]
    # mask prediction 0.5 everywhere, target mask with 3 of 16 pixels on
    mask = torch.zeros(b, h, w, dtype=torch.uint8)
    mask[0, 0, 0] = mask[0, 1, 1] = mask[1, 3, 0] = 1
    mask_pred = torch.full((b, 1, h, w), 0.5)
    # heat maps: zero prediction, one visible keypoint (index 2, group 0 with 5 keypoints) at
    # the centre of map pixel (1, 0) of image 0; σ tiny so its target is a one-hot pixel
    kp = torch.zeros(b, 17, 3)
    kp[0, 2] = torch.tensor([0.5, 1.5, 2.0])
    heat = torch.zeros(b, 17, h, w)
    common = dict(groups=groups, image_size=(h, w), sigma=1e-3, lambda_mask=20.0)
    terms = daaf_losses(mask_pred, heat, mask, kp, lambda_keypoints=65.0, **common)
    # every pixel is off by 0.5: MSE 0.25
    assert terms["hab"].item() == pytest.approx(20 * 0.25)
    # group 0: 1 wrong pixel among 5·2·4·2 values, weighted 5/17; the other groups are exact
    assert terms["pab"].item() == pytest.approx(65 * (5 / 17) * 1 / (5 * b * h * w))
    # ignoring invisible keypoints: group 0's mean runs over its one visible map (h·w values)
    terms = daaf_losses(None, heat, None, kp, lambda_keypoints=1.0, ignore_invisible=True, **common)
    assert set(terms) == {"pab"}
    assert terms["pab"].item() == pytest.approx((5 / 17) * 1 / (h * w))


def test_a_smaller_prediction_is_compared_with_the_area_averaged_mask() -> None:
    mask = torch.zeros(1, 4, 4, dtype=torch.uint8)
    mask[0, :2, :2] = 1  # top-left 2×2 block on → area average [[1, 0], [0, 0]]
    pred = torch.tensor([[[[1.0, 0.0], [0.0, 0.5]]]])
    terms = daaf_losses(
        pred,
        None,
        mask,
        None,
        groups=KEYPOINT_GROUPINGS["coco6"],
        image_size=(4, 4),
        sigma=1.0,
        lambda_mask=1.0,
        lambda_keypoints=1.0,
    )
    assert terms["hab"].item() == pytest.approx(0.25 / 4)


def test_eval_model_is_exactly_the_bot_it_wraps() -> None:
    torch.manual_seed(0)
    model = DAAF(DAAFConfig.tiny()).eval()
    bot = _bot_twin(model).eval()
    images = torch.randn(3, 3, *SIZE)
    with torch.no_grad():
        assert torch.equal(model(images), bot(images))
        assert torch.equal(model.inference_model()(images), bot(images))
    n_bot = sum(p.numel() for p in bot.parameters())
    # the modules that run in eval mode hold the same parameters (BoT's, less the classifier)
    head = model.head.classifier.weight.numel()
    assert _params_used(model, images) == _params_used(bot, images) == n_bot - head
    assert model.inference_parameters() == n_bot
    assert sum(p.numel() for p in model.parameters()) > n_bot  # the branches exist...
    assert _flops(model, images) == _flops(bot, images) > 0  # ...but cost nothing at inference


def test_train_outputs_and_branch_outputs() -> None:
    torch.manual_seed(0)
    model = DAAF(DAAFConfig.tiny())
    images = torch.randn(2, 3, *SIZE)
    out = model.train()(images)
    assert out["mask"].shape == (2, 1, *SIZE) and out["keypoints"].shape == (2, 17, *SIZE)
    assert model.train_fields == ("mask", "keypoints")
    model.eval()
    with torch.no_grad():
        branches = model.branch_outputs(images)
        table = model.pab.shuffle(branches["layer4"])
    assert branches["mask"].shape == (2, 1, *SIZE)
    # the shuffle's diagonal (group i through its own 1×1 conv) is the normal prediction
    diagonal = torch.cat([table[i][i] for i in range(6)], dim=1)
    torch.testing.assert_close(diagonal, branches["keypoints"])
    assert table[0][1].shape == (2, 2, *SIZE)  # group 0's features, head 1 (2 shoulders)
    # the channel groups are disjoint floor(C/6)-wide slices of layer4
    c = model.backbone.num_features
    assert [(s.start, s.stop) for s in model.pab.channel_slices] == [
        (g * (c // 6), (g + 1) * (c // 6)) for g in range(6)
    ]


def test_each_branch_loss_reaches_what_the_paper_says() -> None:
    torch.manual_seed(0)
    model = DAAF(DAAFConfig.tiny()).train()
    images = torch.randn(2, 3, *SIZE)
    kp = torch.rand(2, 17, 3) * torch.tensor([32.0, 64.0, 2.0])
    batch = {"image": images, "mask": (torch.rand(2, *SIZE) > 0.5).to(torch.uint8), "keypoints": kp}

    def grads(term: str) -> dict[str, bool]:
        model.zero_grad(set_to_none=True)
        model.extra_losses(model(images), batch)[term].backward()
        has = {
            n: p.grad is not None and bool(p.grad.abs().sum() > 0)
            for n, p in model.named_parameters()
        }
        return has

    hab = grads("hab")
    # HAB shares only the stem and layer1 with the re-ID network; layer2-4 are its own copy
    assert hab["backbone.layer1.0.conv1.weight"] and hab["hab.encoder.0.0.conv1.weight"]
    assert not hab["backbone.layer2.0.conv1.weight"] and not hab["backbone.layer4.0.conv1.weight"]
    assert not any(v for n, v in hab.items() if n.startswith("pab."))
    pab = grads("pab")
    assert pab["backbone.layer4.0.conv1.weight"] and pab["pab.decoder.0.weight"]
    assert all(pab[f"pab.heads.{g}.weight"] for g in range(6))
    assert not any(v for n, v in pab.items() if n.startswith("hab."))


def test_hab_encoder_is_a_copy_of_the_later_stages() -> None:
    model = DAAF(DAAFConfig.tiny())
    copy_state = model.hab.encoder.state_dict()
    for i, name in enumerate(("layer2", "layer3", "layer4")):
        own = getattr(model.backbone, name)
        assert model.hab.encoder[i] is not own
        for k, v in own.state_dict().items():
            assert torch.equal(copy_state[f"{i}.{k}"], v)


def test_groupings_and_switches() -> None:
    each = DAAF(DAAFConfig.tiny(keypoint_groups="each", width=32))
    assert len(each.pab.heads) == 17 and each.pab.group_channels == 256 // 17
    custom = DAAF(DAAFConfig.tiny(keypoint_groups=[[5, 6], [0]]))
    assert custom.pab.keypoint_order == [5, 6, 0]
    only_hab = DAAF(DAAFConfig.tiny(pab=False))
    assert only_hab.pab is None and only_hab.train_fields == ("mask",)
    with pytest.raises(ValueError, match="at most once"):
        DAAFConfig.tiny(keypoint_groups=[[0, 1], [1]])
    with pytest.raises(ValueError, match="valid: coco6"):
        DAAFConfig.tiny(keypoint_groups="coco5")
    with pytest.raises(ValueError, match="do not fit"):
        DAAF(DAAFConfig.tiny(keypoint_groups="each", group_channels=16))
