"""IANet: SIA / CIA against naive computations, zero-init identity, relation-map API, FLOPs."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from workbench.models import build_model, get_layer
from workbench.models.ianet import (
    CIABlock,
    IANet,
    IANetConfig,
    SIABlock,
    SpatialRelation,
    location_relation,
    relation_entropy,
)


def naive_semantic(f: torch.Tensor, sigma: tuple[float, float], contexts, fusion: str):
    """S for one (C, H, W) map by loops over positions and patch offsets (float64)."""
    c, h, w = f.shape
    f = f.double()
    m = h * w
    pos = [(i // w, i % w) for i in range(m)]  # p = y·W + x

    def feat(y: int, x: int) -> torch.Tensor:
        if 0 <= y < h and 0 <= x < w:
            return f[:, y, x]
        return torch.zeros(c, dtype=torch.float64)

    loc = torch.zeros(m, m, dtype=torch.float64)
    for i, (yi, xi) in enumerate(pos):
        for j, (yj, xj) in enumerate(pos):
            loc[i, j] = math.exp(
                -((xj - xi) ** 2) / (2 * sigma[0] ** 2) - (yj - yi) ** 2 / (2 * sigma[1] ** 2)
            )
    loc = loc / loc.sum(1, keepdim=True)  # paper Eq. 4
    maps = []
    for k in contexts:
        lo = -((k - 1) // 2)
        logit = torch.zeros(m, m, dtype=torch.float64)
        for i, (yi, xi) in enumerate(pos):
            for j, (yj, xj) in enumerate(pos):
                total = 0.0
                for dy in range(lo, lo + k):
                    for dx in range(lo, lo + k):
                        total += float(feat(yi + dy, xi + dx) @ feat(yj + dy, xj + dx))
                logit[i, j] = total / (k * k) / math.sqrt(c)
        maps.append(torch.softmax(logit, 1))  # Eq. 1
    if fusion == "product":
        prod = torch.ones(m, m, dtype=torch.float64)
        for s in maps:
            prod = prod * s ** (1 / len(maps))
        s = prod * loc
        return s / s.sum(1, keepdim=True)
    prod = maps[0]
    for s in maps[1:]:
        prod = prod * s
    appearance = torch.softmax(prod, 1) if len(maps) > 1 else prod  # Eq. 2
    return torch.softmax(appearance * loc, 1)  # Eq. 5


@pytest.mark.parametrize("fusion", ["product", "softmax"])
def test_semantic_relation_matches_naive_and_rows_sum_to_one(fusion: str) -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 4, 3, 4)  # (B, C, H, W)
    rel = SpatialRelation(4, (3, 4), (1.5, 2.0), (1, 2, 3), fusion)
    s = rel(x)  # (B, M, H, W)
    assert s.shape == (2, 12, 3, 4)
    rows = s.flatten(2)
    torch.testing.assert_close(rows.sum(-1), torch.ones(2, 12))
    expected = naive_semantic(x[1], (1.5, 2.0), (1, 2, 3), fusion)
    torch.testing.assert_close(rows[1].double(), expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(rel.components(x)["semantic"], rows)


@pytest.mark.parametrize("contexts", [(1,), (1, 2), (1, 2, 3)])
def test_training_path_matches_naive_values_and_components_gradients(contexts) -> None:
    """With grad the relation takes the offset-stacked Gram path; values and gradients agree."""
    torch.manual_seed(1)
    x = torch.rand(2, 4, 3, 4)
    rel = SpatialRelation(4, (3, 4), (1.5, 2.0), contexts, "product")
    xg = x.clone().requires_grad_()
    s = rel(xg).flatten(2)
    expected = naive_semantic(x[0], (1.5, 2.0), contexts, "product")
    torch.testing.assert_close(s[0].double(), expected, rtol=1e-5, atol=1e-7)
    weights = torch.randn_like(s)
    (grad,) = torch.autograd.grad((s * weights).sum(), xg)
    xr = x.clone().requires_grad_()
    reference = rel.components(xr)["semantic"]  # shifted adds of context_logits, per K
    (grad_ref,) = torch.autograd.grad((reference * weights).sum(), xr)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(rel(x).flatten(2), s.detach())


def test_location_relation_is_a_normalised_gaussian() -> None:
    loc = location_relation(4, 3, 1.0, 2.0)
    torch.testing.assert_close(loc.sum(1), torch.ones(12))
    p = 1 * 3 + 1  # (y=1, x=1)
    q = 3 * 3 + 0  # (y=3, x=0)
    raw = math.exp(-(1**2) / 2 - (2**2) / 8)
    z = sum(math.exp(-((x - 1) ** 2) / 2 - ((y - 1) ** 2) / 8) for y in range(4) for x in range(3))
    assert loc[p, q].item() == pytest.approx(raw / z, rel=1e-5)


def test_double_softmax_is_near_uniform_and_product_is_not() -> None:
    # two "body parts": the top half lights channels 0-15, the bottom half channels 16-31
    torch.manual_seed(0)
    x = torch.rand(1, 32, 16, 8) * 0.2
    x[:, :16, :8] += 2.0
    x[:, 16:, 8:] += 2.0
    literal = SpatialRelation(32, (16, 8), (5.0, 10.0), fusion="softmax")(x).flatten(2)
    product = SpatialRelation(32, (16, 8), (5.0, 10.0), fusion="product")(x).flatten(2)
    uniform = math.log(128)
    assert relation_entropy(literal).item() > 0.999 * uniform
    # the product concentrates each row on its own half (64 positions) and peaks nearby
    assert relation_entropy(product).item() < math.log(64)
    rows = product[0].reshape(128, 16, 8)
    assert (rows[:, :8].sum(dim=(1, 2))[:64] > 0.99).all()  # top queries stay on top


def test_cia_rows_sum_to_one_and_match_naive() -> None:
    torch.manual_seed(0)
    z = torch.rand(2, 5, 3, 2)
    block = CIABlock(5)
    rel = block.relation(z)  # (B, C, C)
    torch.testing.assert_close(rel.sum(-1), torch.ones(2, 5))
    for b in range(2):
        f = z[b].reshape(5, -1).double()
        for m in range(5):
            logits = torch.tensor([float(f[m] @ f[n]) for n in range(5)], dtype=torch.float64)
            torch.testing.assert_close(rel[b, m].double(), torch.softmax(logits, 0))
    scaled = CIABlock(5, scaled=True).relation(z)
    f = z[0].reshape(5, -1).double()
    torch.testing.assert_close(scaled[0].double(), torch.softmax(f @ f.T / math.sqrt(6), 1))
    with torch.no_grad():
        block.bn.weight.fill_(1.0)
    block.eval()  # running stats 0 / 1: BN is the identity up to eps
    e = torch.einsum("bmn,bnk->bmk", rel, z.flatten(2)).reshape(z.shape)
    torch.testing.assert_close(block(z), e / math.sqrt(1 + 1e-5) + z)


def test_fresh_ia_blocks_are_the_identity() -> None:
    torch.manual_seed(0)
    model = IANet(IANetConfig.tiny())
    x = torch.randn(3, 32, 8, 4).relu()  # a layer2-sized map of the tiny model
    for block in model.ia_blocks().values():
        assert (block.sia.bn.weight == 0).all() and (block.sia.bn.bias == 0).all()
    ia2 = model.ia2
    for mode in (True, False):  # batch statistics (train) and running statistics (eval)
        ia2.train(mode)
        torch.testing.assert_close(ia2(x), x)
    # and the whole fresh model equals the plain backbone (IA blocks removed)
    model.eval()
    images = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        maps = model.feature_maps(images)
        plain = model.backbone.forward_features(images)
    torch.testing.assert_close(maps["layer4"], plain)


def test_relation_rows_are_reachable_by_name_and_hook() -> None:
    torch.manual_seed(0)
    model = IANet(IANetConfig.tiny()).eval()
    images = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        maps = model.feature_maps(images)
        rel = model.relation_maps(images)
    s = maps["relation2"]  # (B, M, H, W): channel p is the row of query p
    assert s.shape == (2, 32, 8, 4)
    p = 5 * 4 + 2  # y = 5, x = 2
    torch.testing.assert_close(s[:, p].flatten(1), rel["relation2"][:, p])
    torch.testing.assert_close(rel["relation2"].sum(-1), torch.ones(2, 32))
    assert rel["channel3"].shape == (2, 64, 64)
    seen = []
    hook = get_layer(model, "relation3").register_forward_hook(lambda _m, _i, o: seen.append(o))
    cia = model.ia3.cia.relation.register_forward_hook(lambda _m, _i, o: seen.append(o))
    with torch.no_grad():
        model(images)
    hook.remove()
    cia.remove()
    torch.testing.assert_close(seen[0], maps["relation3"])
    torch.testing.assert_close(seen[1], rel["channel3"])


def test_wrong_map_size_fails_clearly() -> None:
    model = IANet(IANetConfig.tiny()).eval()
    with pytest.raises(ValueError, match="built for a 8×4 map"):
        model(torch.randn(1, 3, 128, 64))


def test_sia_and_cia_flops_by_flop_counter() -> None:
    # FLOPs of a block = its matrix products: Gram (M²C) and aggregation (M²C) for SIA,
    # C²M twice for CIA (multiply-adds ×2); no parameters apart from the two BNs
    c, h, w = 8, 4, 2
    m = h * w
    sia = SIABlock(SpatialRelation(c, (h, w), (1.0, 2.0))).eval()
    cia = CIABlock(c).eval()
    x = torch.rand(1, c, h, w)
    for block, expected in ((sia, 2 * 2 * m * m * c), (cia, 2 * 2 * c * c * m)):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            block(x)
        assert counter.get_total_flops() == expected
    assert sum(p.numel() for p in sia.parameters()) == 2 * c  # BN γ, β


def test_config_round_trip_and_defaults() -> None:
    cfg = IANetConfig()
    assert cfg.sigma("layer2") == (10.0, 20.0) and cfg.sigma("layer3") == (5.0, 10.0)
    model = build_model("ianet", **IANetConfig.tiny(use_cia=False).to_dict())
    assert model.ia2.cia is None
    assert model.ia2.sia.relation.size == (8, 4) and model.ia3.sia.relation.size == (4, 2)
