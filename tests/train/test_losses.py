"""BoT losses against hand-worked values and naive O(B²) loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from workbench.train.losses import (
    CenterLoss,
    CrossEntropyLabelSmooth,
    TripletLoss,
    euclidean_dist,
    hard_example_mining,
)

# -- label-smoothing cross entropy --------------------------------------------------------------


def test_label_smoothing_hand_worked() -> None:
    # K = 2, logits (0, ln 3) -> p = (1/4, 3/4); y = 1, eps = 0.1 -> q = (0.05, 0.95)
    logits = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)
    loss = CrossEntropyLabelSmooth(2, epsilon=0.1)(logits, torch.tensor([1]))
    expected = -0.05 * math.log(0.25) - 0.95 * math.log(0.75)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    uniform = CrossEntropyLabelSmooth(3, epsilon=0.3)(torch.zeros(2, 3), torch.tensor([0, 2]))
    assert uniform.item() == pytest.approx(math.log(3.0), rel=1e-6)


def test_label_smoothing_matches_naive_formula() -> None:
    torch.manual_seed(0)
    k, eps = 7, 0.1
    logits = torch.randn(5, k, dtype=torch.float64)
    y = torch.tensor([0, 3, 6, 3, 1])
    total = 0.0
    for i in range(5):
        z = logits[i].tolist()
        log_z = math.log(sum(math.exp(v) for v in z))
        for c in range(k):
            q = (1 - eps) * (c == y[i].item()) + eps / k
            total -= q * (z[c] - log_z)
    loss = CrossEntropyLabelSmooth(k, eps)(logits, y)
    assert loss.item() == pytest.approx(total / 5, rel=1e-12)
    plain = CrossEntropyLabelSmooth(k, 0.0)(logits, y)
    torch.testing.assert_close(plain, F.cross_entropy(logits, y))


def test_label_smoothing_rejects_wrong_shapes() -> None:
    loss = CrossEntropyLabelSmooth(4)
    with pytest.raises(ValueError, match="built for 4"):
        loss(torch.zeros(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="targets must have shape"):
        loss(torch.zeros(2, 4), torch.tensor([0, 1, 2]))


# -- batch-hard triplet -------------------------------------------------------------------------


def naive_triplet(
    x: torch.Tensor, y: list[int], margin: float | None
) -> tuple[torch.Tensor, float, int]:
    """Loop over anchors; pick hardest positive / negative with python comparisons."""
    terms, active = [], 0
    for i in range(len(y)):
        pos = [j for j in range(len(y)) if j != i and y[j] == y[i]]
        neg = [j for j in range(len(y)) if y[j] != y[i]]
        if not pos or not neg:
            continue

        def d(j: int, i: int = i) -> torch.Tensor:
            return ((x[i] - x[j]) ** 2).sum().clamp(min=1e-12).sqrt()

        d_ap = max((d(j) for j in pos), key=lambda t: t.item())
        d_an = min((d(j) for j in neg), key=lambda t: t.item())
        gap = (d_ap - d_an).item()
        if margin is None:
            terms.append(torch.log1p(torch.exp(d_ap - d_an)))
            active += gap > 0
        else:
            terms.append(torch.clamp(d_ap - d_an + margin, min=0.0))
            active += gap + margin > 0
    return torch.stack(terms).mean(), active / len(terms), len(terms)


BATCHES = {
    "pk": [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3],
    "unequal": [5, 5, 9, 2, 2, 2, 2, 2, 7, 7, 7, 4],  # ids 9 and 4 have no positive: skipped
}


@pytest.mark.parametrize("batch", list(BATCHES))
@pytest.mark.parametrize("margin", [0.3, None, 5.0])
def test_triplet_matches_naive_loop_value_and_gradient(batch: str, margin: float | None) -> None:
    torch.manual_seed(0)
    y = BATCHES[batch]
    x = torch.randn(len(y), 6, dtype=torch.float64, requires_grad=True)
    loss_fn = TripletLoss(margin)
    loss = loss_fn(x, torch.tensor(y))
    (grad,) = torch.autograd.grad(loss, x)
    x2 = x.detach().clone().requires_grad_(True)
    expected, active, valid = naive_triplet(x2, y, margin)
    (expected_grad,) = torch.autograd.grad(expected, x2)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    torch.testing.assert_close(grad, expected_grad)
    stats = loss_fn.last_stats
    assert stats is not None
    assert stats.active.item() == pytest.approx(active) and stats.valid.item() == valid
    if batch == "unequal":
        assert valid == 10


def test_normalized_triplet_is_the_naive_loss_of_unit_features_and_scale_free() -> None:
    torch.manual_seed(1)
    y = BATCHES["pk"]
    x = torch.randn(len(y), 6, dtype=torch.float64, requires_grad=True)
    loss = TripletLoss(0.3, normalize=True)(x, torch.tensor(y))
    unit = x / x.norm(dim=1, keepdim=True)
    expected, _, _ = naive_triplet(unit, y, 0.3)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    (grad,) = torch.autograd.grad(loss, x)
    (expected_grad,) = torch.autograd.grad(expected, x)
    torch.testing.assert_close(grad, expected_grad)
    # features shrunk 10× (an attention gate): same normalized loss, smaller plain loss spread
    small = 0.1 * x.detach()
    assert TripletLoss(0.3, normalize=True)(small, torch.tensor(y)).item() == pytest.approx(
        loss.item(), rel=1e-10
    )
    assert TripletLoss(0.3)(small, torch.tensor(y)).item() != pytest.approx(
        TripletLoss(0.3)(x.detach(), torch.tensor(y)).item()
    )


def test_hard_example_mining_hand_worked() -> None:
    # points on a line: 0, 1, 3 (id a) and 4, 10 (id b)
    x = torch.tensor([[0.0], [1.0], [3.0], [4.0], [10.0]])
    y = torch.tensor([0, 0, 0, 1, 1])
    d_ap, d_an, valid = hard_example_mining(euclidean_dist(x, x), y)
    torch.testing.assert_close(d_ap, torch.tensor([3.0, 2.0, 3.0, 6.0, 6.0]))
    torch.testing.assert_close(d_an, torch.tensor([4.0, 3.0, 1.0, 1.0, 7.0]))
    assert valid.all()
    loss = TripletLoss(0.3)(x, y)  # hinge: 0, 0, 2.3, 5.3, 0
    assert loss.item() == pytest.approx((2.3 + 5.3) / 5, rel=1e-6)


def test_euclidean_dist_matches_cdist() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(5, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    torch.testing.assert_close(euclidean_dist(a, b), torch.cdist(a, b))
    assert euclidean_dist(a, a).diagonal().max().item() == pytest.approx(1e-6)


def test_triplet_without_valid_anchor_is_zero_and_differentiable() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    loss = TripletLoss(0.3)(x, torch.tensor([1, 1, 1, 1]))  # no negatives
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.all(x.grad == 0)


def test_triplet_gradient_is_finite_for_duplicate_features() -> None:
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0], [0.0, 0.0]], requires_grad=True)
    TripletLoss(None)(x, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(x.grad).all()


# -- center loss --------------------------------------------------------------------------------


def test_center_loss_value_and_gradients_match_naive_expression() -> None:
    torch.manual_seed(0)
    loss_fn = CenterLoss(num_classes=4, feat_dim=3).double()
    f = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    y = [2, 0, 2, 3, 2]
    loss = loss_fn(f, torch.tensor(y))
    g_f, g_c = torch.autograd.grad(loss, [f, loss_fn.centers])

    c = loss_fn.centers.detach().clone().requires_grad_(True)
    f2 = f.detach().clone().requires_grad_(True)
    naive = sum(sum((f2[i, d] - c[y[i], d]) ** 2 for d in range(3)) for i in range(5)) / 5
    n_f, n_c = torch.autograd.grad(naive, [f2, c])
    assert loss.item() == pytest.approx(naive.item(), rel=1e-12)
    torch.testing.assert_close(g_f, n_f)
    torch.testing.assert_close(g_c, n_c)
    assert torch.all(g_c[1] == 0)  # class 1 absent from the batch: its center does not move


def test_center_update_follows_bot_recipe() -> None:
    # BoT: loss weight w on the network side, but centers step with lr 0.5 on the unweighted grad
    torch.manual_seed(0)
    loss_fn = CenterLoss(3, 2)
    f, y = torch.randn(4, 2), torch.tensor([0, 1, 1, 2])
    c0 = loss_fn.centers.detach().clone()
    opt = loss_fn.make_optimizer()
    w = 0.0005
    (w * loss_fn(f, y)).backward()
    loss_fn.rescale_center_grad(w)
    opt.step()
    expected = torch.zeros_like(c0)  # d/dc of Σ‖f_i − c_yi‖²/B = −2 Σ (f_i − c_yi) / B
    for i, label in enumerate(y.tolist()):
        expected[label] -= 2 * (f[i] - c0[label]) / 4
    torch.testing.assert_close(loss_fn.centers.detach(), c0 - 0.5 * expected)
    with pytest.raises(ValueError, match="> 0"):
        loss_fn.rescale_center_grad(0.0)


def test_center_loss_rejects_wrong_dim() -> None:
    with pytest.raises(ValueError, match="centers 3"):
        CenterLoss(2, 3)(torch.zeros(2, 4), torch.tensor([0, 1]))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_losses_on_cuda_match_cpu() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(12, 5), torch.tensor(BATCHES["unequal"])
    for loss_fn in (TripletLoss(0.3), TripletLoss(None), CenterLoss(10, 5)):
        expected = loss_fn(x, y)
        got = loss_fn.to("cuda")(x.cuda(), y.cuda())
        torch.testing.assert_close(got.cpu(), expected, rtol=1e-5, atol=1e-6)
