"""BoT's part-segmentation objective (``part_loss``, used by the pretraining): its targets against a
naive loop, its loss against a hand-written soft cross-entropy, and the paper's BoT left intact."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from workbench.data.annotations import PART_LABELS
from workbench.models import ModelConfigError, build_model
from workbench.models.bot import BoT, BoTConfig, part_shares


def test_part_shares_against_a_loop_over_cells() -> None:
    g = torch.Generator().manual_seed(0)
    parts = torch.randint(0, 8, (2, 12, 6), generator=g)
    parts[0, :4, :3] = 5  # a whole cell of one label: share 1
    got = part_shares(parts, 8, (3, 2))  # 4×3-pixel cells
    want = torch.zeros(2, 8, 3, 2)
    for b in range(2):
        for i in range(3):
            for j in range(2):
                cell = parts[b, 4 * i : 4 * i + 4, 3 * j : 3 * j + 3].flatten().tolist()
                for label in range(8):
                    want[b, label, i, j] = cell.count(label) / 12
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got.sum(1), torch.ones(2, 3, 2))
    assert got[0, 5, 0, 0] == 1
    with pytest.raises(ValueError, match=r"outside 0\.\.7"):
        part_shares(parts + 1, 8, (3, 2))
    with pytest.raises(ValueError, match=r"need \(B, H, W\)"):
        part_shares(parts[0], 8, (3, 2))


def test_part_loss_is_the_weighted_soft_cross_entropy_of_layer4_positions() -> None:
    torch.manual_seed(0)
    model = BoT(BoTConfig.tiny(part_loss=2.5)).train()
    assert model.train_fields == ("parts",) and model.part_head is not None
    images = torch.randn(3, 3, 64, 32)
    out = model(images)
    logits = out["parts"]
    assert logits.shape == (3, len(PART_LABELS), 4, 2)  # layer4 of 64×32 at last stride 1
    torch.testing.assert_close(
        logits, model.part_head(model.backbone.forward_features(images)), rtol=1e-5, atol=1e-5
    )
    parts = torch.randint(0, 8, (3, 64, 32))
    loss = model.extra_losses(out, {"image": images, "parts": parts})["parts"]
    share = part_shares(parts, 8, (4, 2))
    by_hand = -(share * F.log_softmax(logits, dim=1)).sum(1).mean()
    torch.testing.assert_close(loss, 2.5 * by_hand)
    # the objective reaches the backbone; the ReID losses alone leave the head a zero gradient
    model.zero_grad()
    loss.backward(retain_graph=True)
    assert model.backbone.layer4[1].conv2.weight.grad.abs().sum() > 0
    assert model.head.classifier.weight.grad is None or not model.head.classifier.weight.grad.any()
    model.zero_grad()
    out["features"].sum().backward()
    assert model.part_head.weight.grad is not None and not model.part_head.weight.grad.any()


def test_without_part_loss_bot_is_the_papers_and_eval_ignores_the_head() -> None:
    plain = build_model("bot", backbone="resnet18", width=8, num_classes=5, input_size=(64, 32))
    assert plain.part_head is None and plain.train_fields == ()
    assert not any(k.startswith("part_head") for k in plain.state_dict())
    assert plain.extra_losses({}, {}) == {}
    with_head = build_model(
        "bot", backbone="resnet18", width=8, num_classes=5, input_size=(64, 32), part_loss=1.0
    )
    missing, unexpected = with_head.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["part_head.weight", "part_head.bias"] and unexpected == []
    x = torch.randn(2, 3, 64, 32)
    plain.eval(), with_head.eval()
    with torch.no_grad():
        torch.testing.assert_close(with_head(x), plain(x))
    assert set(with_head.feature_maps(x)) == set(plain.feature_maps(x))


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), True, "1"])
def test_part_loss_validation(value: object) -> None:
    with pytest.raises(ModelConfigError, match="part_loss must be a number >= 0"):
        BoTConfig.tiny(part_loss=value)
