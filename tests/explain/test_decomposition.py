"""The exact pair decomposition, the contrast and the rank-list explanations, checked against
independent computations (naive loops, the models' own embeddings, finite differences)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from explain_helpers import tiny_bot
from torch import nn

from workbench.evaluate.distance import compute_distance
from workbench.explain import ExplainError, explain, explain_pair, list_explainers
from workbench.explain.decomposition import contrast, decompose_maps, decompose_pair
from workbench.explain.ranklist import explain_ranklist
from workbench.explain.targets import EmbeddingSimilarity, SimilarityMargin
from workbench.models import build_model, list_models
from workbench.models.base import Pooling
from workbench.models.registry import model_config_class


def _randomise_bn(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            if m.bias is not None:
                m.bias.data.uniform_(-0.3, 0.3)  # a real shift: it must be folded, not dropped
    return model.eval()


def _tiny(name: str, **overrides) -> nn.Module:
    torch.manual_seed(0)
    return _randomise_bn(build_model(name, model_config_class(name).tiny(**overrides)))


def _declared_models() -> list[tuple[str, dict]]:
    """Every registered model (tiny) plus the configurations that change how it pools."""
    cases = [(name, {}) for name in list_models()]
    cases += [("bot", {"normalize_embedding": True}), ("bot", {"neck_feat": "before"})]
    return cases


@pytest.mark.parametrize(("name", "overrides"), _declared_models())
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_matrix_sums_to_the_models_own_similarity(name, overrides, metric):
    model = _tiny(name, **overrides)
    if model.pooling() is None:  # the interpreter: refused, naming what it lacks
        with pytest.raises(ExplainError, match="declares no affine pooling"):
            decompose_pair(model, torch.randn(1, 3, 64, 32), torch.randn(2, 3, 64, 32))
        return
    h, w = model.config.input_size
    torch.manual_seed(1)
    query, gallery = torch.randn(1, 3, h, w), torch.randn(3, 3, h, w)
    dec = decompose_pair(model, query, gallery, metric=metric)
    with torch.no_grad():
        e_q, e_g = model(query), model(gallery)
    if metric == "cosine":
        expected = F.cosine_similarity(e_q.expand_as(e_g), e_g, dim=1).double()
    else:
        expected = -(e_q - e_g).pow(2).sum(1).double()
    total = dec.matrix.double().sum((1, 2, 3, 4))
    rtol = 1e-5 if metric == "cosine" else 1e-4  # squared distances of ~40: float32 rounding
    torch.testing.assert_close(total, expected, rtol=rtol, atol=1e-5)
    torch.testing.assert_close(dec.similarity.double(), expected, rtol=rtol, atol=1e-5)
    torch.testing.assert_close(dec.query_map.sum((1, 2)), dec.similarity, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dec.gallery_map.sum((1, 2)), dec.similarity, rtol=1e-5, atol=1e-5)
    ranked = compute_distance(e_q, e_g, metric=metric)[0]  # what the ranking used
    torch.testing.assert_close(dec.distance, ranked, rtol=1e-4, atol=1e-5)


def test_matrix_equals_a_naive_loop_on_a_hand_weighted_head():
    """D[i, j] = φ_q(i)·φ_g(j) / (n_q n_g ‖e_q‖ ‖e_g‖), φ(i) = W A(i) + b, written as loops."""
    torch.manual_seed(3)
    c, d, (h, w) = 3, 2, (2, 2)
    lin = nn.Linear(c, d)
    lin.weight.data = torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, 3.0]])
    lin.bias.data = torch.tensor([0.7, -0.4])
    a_q, a_g = torch.randn(1, c, h, w), torch.randn(1, c, h, w)
    dec = decompose_maps(Pooling("x", lin), a_q, a_g, "cosine")
    e_q = lin(a_q.mean((2, 3)))[0]
    e_g = lin(a_g.mean((2, 3)))[0]
    n = h * w
    naive = torch.zeros(h, w, h, w)
    for yi in range(h):
        for xi in range(w):
            for yj in range(h):
                for xj in range(w):
                    total = 0.0
                    for k in range(d):
                        phi_q = sum(lin.weight[k, ch] * a_q[0, ch, yi, xi] for ch in range(c))
                        phi_g = sum(lin.weight[k, ch] * a_g[0, ch, yj, xj] for ch in range(c))
                        total += (phi_q + lin.bias[k]) * (phi_g + lin.bias[k])
                    naive[yi, xi, yj, xj] = total / (n * n * e_q.norm() * e_g.norm())
    torch.testing.assert_close(dec.matrix[0], naive.detach(), rtol=1e-5, atol=1e-7)
    assert float(naive.sum()) == pytest.approx(
        float(F.cosine_similarity(e_q, e_g, dim=0)), abs=1e-6
    )


def test_stripes_decompose_stripe_by_stripe():
    """PCB: cos of unit stripes = mean over stripes of each stripe's cosine, by loops."""
    torch.manual_seed(4)
    pooling = Pooling("x", None, parts=3, normalize=True)
    a_q, a_g = torch.randn(1, 4, 7, 2), torch.randn(1, 4, 7, 2)  # 7 rows: stripes overlap
    dec = decompose_maps(pooling, a_q, a_g, "cosine")
    sq = F.adaptive_avg_pool2d(a_q, (3, 1))[0, :, :, 0].T  # (3, C)
    sg = F.adaptive_avg_pool2d(a_g, (3, 1))[0, :, :, 0].T
    expected = F.cosine_similarity(sq, sg, dim=1).mean()
    assert float(dec.similarity[0]) == pytest.approx(float(expected), abs=1e-6)
    e_q, e_g = pooling.embed(a_q), pooling.embed(a_g)
    assert float(F.cosine_similarity(e_q, e_g)[0]) == pytest.approx(float(expected), abs=1e-6)


def test_marginals_are_derivatives_of_the_similarity_with_the_norms_frozen():
    """query_map(i) = d/dt cos-numerator(e_q + t P(i) φ_q(i), e_g) / (‖e_q‖‖e_g‖), by central
    finite differences through the model's own head on its own feature maps."""
    model = tiny_bot(seed=5)
    torch.manual_seed(6)
    query, gallery = torch.randn(1, 3, 64, 32), torch.randn(1, 3, 64, 32)
    dec = decompose_pair(model, query, gallery)
    with torch.no_grad():
        a_q = model.feature_maps(query)["layer4"].double()
        e_q, e_g = model(query).double(), model(gallery).double()
    head = model.head.double()
    n = a_q.shape[2] * a_q.shape[3]
    norms = e_q.norm() * e_g.norm()
    eps = 1e-3
    for y, x in [(0, 0), (2, 1), (3, 1)]:
        with torch.no_grad():
            phi = head.affine(a_q[:, :, y, x])  # (1, D) this position's contribution

            def numerator(t: float, phi=phi) -> float:
                return float(((e_q + t * phi / n) * e_g).sum() / norms)

            fd = (numerator(eps) - numerator(-eps)) / (2 * eps)
        assert float(dec.query_map[0, y, x]) == pytest.approx(fd, rel=1e-4, abs=1e-7)


def test_correspondence_rows_sum_to_the_marginal_and_follow_the_point():
    model = tiny_bot(seed=7)
    torch.manual_seed(8)
    query, gallery = torch.randn(1, 3, 64, 32), torch.randn(2, 3, 64, 32)
    dec = decompose_pair(model, query, gallery)
    h, w = dec.query_map.shape[1:]
    points = [(0.1, 0.2), (0.9, 0.8)]
    rows = dec.correspondence(points, side="query")  # (B, P, h_g, w_g)
    for p, (y, x) in enumerate(points):
        cell = (min(int(y * h), h - 1), min(int(x * w), w - 1))
        torch.testing.assert_close(rows[:, p], dec.matrix[:, cell[0], cell[1]])
        torch.testing.assert_close(rows[:, p].sum((1, 2)), dec.query_map[:, cell[0], cell[1]])
    cols = dec.correspondence([(0.5, 0.5)], side="gallery")
    torch.testing.assert_close(cols[:, 0], dec.matrix[:, :, :, h // 2, w // 2])
    assert not torch.allclose(rows[:, 0], rows[:, 1])  # another point, another map
    _, _, value = dec.top_matches(5)
    assert torch.all(value[:, :-1] >= value[:, 1:])
    assert float(value[0, 0]) == pytest.approx(float(dec.matrix[0].max()))
    with pytest.raises(ExplainError, match="fractions"):
        dec.correspondence([(1.5, 0.0)])


def test_contrast_map_sums_to_the_margin():
    model = tiny_bot(seed=9)
    torch.manual_seed(10)
    q, g1, g2 = (torch.randn(1, 3, 64, 32) for _ in range(3))
    result = contrast(model, q, g1, g2)
    with torch.no_grad():
        e = model(torch.cat([q, g1, g2]))
    s = F.cosine_similarity(e[:1].expand(2, -1), e[1:], dim=1)
    assert result.exact and result.method == "decomposition"
    assert float(result.query_map.sum()) == pytest.approx(float(s[0] - s[1]), abs=1e-5)
    assert float(result.margin) == pytest.approx(float(s[0] - s[1]), abs=1e-5)
    assert float(result.higher_map.sum()) == pytest.approx(float(s[0]), abs=1e-5)
    assert float(result.lower_map.sum()) == pytest.approx(float(s[1]), abs=1e-5)
    # a model without a declared pooling: Grad-CAM of the difference, one scalar target
    model.pooling = lambda: None  # type: ignore[method-assign]
    grad = contrast(model, q, g1, g2)
    assert not grad.exact and grad.method == "gradcam"
    direct = explain("gradcam", model, q, SimilarityMargin(e[1], e[2]))
    torch.testing.assert_close(grad.query_map, direct.maps[0])
    assert float(grad.margin) == pytest.approx(float(s[0] - s[1]), abs=1e-5)


def test_similarity_margin_is_the_difference_of_two_similarities():
    torch.manual_seed(11)
    e, g1, g2 = torch.randn(3, 5), torch.randn(5), torch.randn(5)
    cos = SimilarityMargin(g1, g2, "cosine")(e)
    expected = F.cosine_similarity(e, g1[None], dim=1) - F.cosine_similarity(e, g2[None], dim=1)
    torch.testing.assert_close(cos, expected)
    euc = SimilarityMargin(g1, g2, "euclidean")(e)
    torch.testing.assert_close(euc, -(e - g1).norm(dim=1) + (e - g2).norm(dim=1))


def test_one_sided_decomposition_sums_to_the_target_score():
    model = tiny_bot(seed=12)
    torch.manual_seed(13)
    images, ref = torch.randn(2, 3, 64, 32), torch.randn(128)
    for metric in ("cosine", "euclidean"):
        exp = explain("decomposition", model, images, EmbeddingSimilarity(ref, metric))
        with torch.no_grad():
            e = model(images)
        if metric == "cosine":
            expected = F.cosine_similarity(e, ref[None], dim=1)
        else:
            expected = -(e - ref).pow(2).sum(1)
        torch.testing.assert_close(exp.maps.sum((1, 2)), expected, rtol=1e-5, atol=1e-5)
    pair = explain_pair("decomposition", model, images[:1], images)
    dec = pair.extras["decomposition"]
    one = explain(
        "decomposition",
        model,
        images[:1].expand(2, -1, -1, -1),
        EmbeddingSimilarity(model(images).detach()),
    )
    torch.testing.assert_close(pair.query.maps, one.maps, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pair.query.maps, dec.query_map)


@pytest.mark.parametrize("method", ["gradcam", "decomposition", "gradcam@layer3"])
def test_ranklist_from_cached_maps_equals_each_pair_alone(method):
    model = tiny_bot(seed=14)
    method, _, layer = method.partition("@")
    torch.manual_seed(15)
    query, gallery = torch.randn(1, 3, 64, 32), torch.randn(4, 3, 64, 32)
    with torch.no_grad():
        maps = model.feature_maps(torch.cat([query, gallery]))["layer4"]
    listed = explain_ranklist(
        method, model, query, gallery, layer=layer or None, maps=(maps[:1], maps[1:])
    )
    for i in range(4):
        alone = explain_pair(method, model, query, gallery[i : i + 1], layer=layer or None)
        torch.testing.assert_close(listed.query.maps[i], alone.query.maps[0], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(
            listed.gallery.maps[i], alone.gallery.maps[0], rtol=1e-4, atol=1e-6
        )
        assert float(listed.distance[i]) == pytest.approx(float(alone.distance[0]), abs=1e-5)
    if not layer:  # the closed form needs no images at all
        no_images = explain_ranklist(method, model, None, None, maps=(maps[:1], maps[1:]))
        torch.testing.assert_close(no_images.query.maps, listed.query.maps)
    else:
        with pytest.raises(ExplainError, match="needs the images"):
            explain_ranklist(method, model, None, None, layer=layer, maps=(maps[:1], maps[1:]))


def test_every_method_reports_the_ranking_distance():
    """PairExplanation.distance = the entry of the ranking's distance matrix, for every method
    and with the query NOT among the gallery images (a distance against emb[:n] would fail)."""
    model = tiny_bot(seed=16)
    torch.manual_seed(17)
    query, gallery = torch.randn(1, 3, 64, 32), torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        ranked = compute_distance(model(query), model(gallery), metric="cosine")[0]
    methods = list_explainers(model)
    assert "decomposition" in methods
    for method in methods:
        pair = explain_pair(method, model, query, gallery)
        assert pair.metric == "cosine", method
        torch.testing.assert_close(pair.distance, ranked, rtol=1e-4, atol=1e-5, msg=method)


def test_undecomposable_models_name_what_they_lack():
    gem = _tiny("bot", pool="gem")
    assert "decomposition" not in list_explainers(gem)
    with pytest.raises(ExplainError, match="GeM"):
        decompose_pair(gem, torch.randn(1, 3, 64, 32), torch.randn(1, 3, 64, 32))
    with pytest.raises(ExplainError, match="declares no affine pooling"):
        explain_pair("decomposition", gem, torch.randn(1, 3, 64, 32), torch.randn(1, 3, 64, 32))
