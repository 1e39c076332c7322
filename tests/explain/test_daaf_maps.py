"""DAAF holistic / partial maps (eq. 5–8) against a naive per-component loop."""

from __future__ import annotations

import pytest
import torch
from explain_helpers import tiny_bot

from workbench.explain import explain, explain_pair
from workbench.explain.targets import group_slices


def naive_component_maps(model, images, layer):
    """L^n = (1/K) Σ_k |∂x_n/∂A_k ⊙ A_k|, one backward per embedding component."""
    maps = model.feature_maps(images)
    a, emb = maps[layer], maps["embedding"]
    out = []
    for n in range(emb.shape[1]):
        (grad,) = torch.autograd.grad(emb[:, n].sum(), a, retain_graph=True)
        out.append((grad * a).abs().mean(1))
    return torch.stack(out, 1).detach()  # (B, N, h, w)


@pytest.fixture(scope="module")
def setup():
    model = tiny_bot(seed=2, width=4)  # a 32-d embedding: 32 backward passes in the loop
    torch.manual_seed(3)
    return model, torch.randn(2, 3, 64, 32)


@pytest.mark.parametrize("layer", ["layer4", "layer3"])  # closed form / batched autograd
def test_holistic_and_partial_equal_the_naive_loop(setup, layer):
    model, images = setup
    naive = naive_component_maps(model, images, layer)
    holistic = explain("daaf_holistic", model, images, layer=layer)
    torch.testing.assert_close(holistic.maps, naive.mean(1), rtol=1e-4, atol=1e-9)
    partial = explain("daaf_partial", model, images, layer=layer, groups=3)
    parts = group_slices(naive.shape[1], 3)
    expected = torch.stack([naive[:, s].mean(1) for s in parts], 1)
    torch.testing.assert_close(partial.maps, expected, rtol=1e-4, atol=1e-9)
    assert partial.names == ("group 1", "group 2", "group 3")
    assert (partial.maps >= 0).all() and holistic.maps.max() > 0


def test_generic_path_on_the_pooled_layer_equals_the_closed_form(setup, monkeypatch):
    model, images = setup
    fast = explain("daaf_holistic", model, images, layer="layer4").maps
    monkeypatch.setattr(model, "pooling", lambda: None)
    slow = explain("daaf_holistic", model, images, layer="layer4").maps
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-9)


def test_group_slices_keep_every_channel():
    parts = group_slices(2048, 6)
    assert [s.stop - s.start for s in parts] == [341] * 5 + [343]
    assert parts[0].start == 0 and parts[-1].stop == 2048


def test_pair_of_partner_free_maps_repeats_the_query_map(setup):
    model, images = setup
    pair = explain_pair("daaf_holistic", model, images[:1], images)
    single = explain("daaf_holistic", model, images)
    torch.testing.assert_close(pair.query.maps, single.maps[:1].expand(2, -1, -1))
    torch.testing.assert_close(pair.gallery.maps, single.maps)
    assert pair.distance[0] < 1e-3 < pair.distance[1]
