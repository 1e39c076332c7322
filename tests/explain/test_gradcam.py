"""Grad-CAM against captum, a hand-worked model, and its own fast path."""

from __future__ import annotations

import pytest
import torch
from explain_helpers import HandModel, tiny_bot

from workbench.explain import ExplainError, explain, explain_pair
from workbench.explain.gradcam import pair_gradcam, pooled_head
from workbench.explain.targets import EmbeddingSimilarity, IdentityLogit, PairDistance
from workbench.models import InputError


@pytest.fixture(scope="module")
def bot():
    return tiny_bot()


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.randn(4, 3, 64, 32)


@pytest.mark.parametrize("layer", ["layer2", "layer3", "layer4"])
def test_gradcam_equals_captum_layergradcam(bot, images, layer):
    from captum.attr import LayerGradCam

    from workbench.models import get_layer

    ref = bot(images[:1]).detach()[0] + 0.1
    target = EmbeddingSimilarity(ref)
    ours = explain("gradcam", bot, images, target, layer=layer).maps
    cam = LayerGradCam(lambda x: target(bot(x), bot), get_layer(bot, layer))
    theirs = cam.attribute(images, relu_attributions=False)[:, 0]
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)


def test_gradcam_on_hand_weighted_model_matches_the_hand_computation():
    model = HandModel().eval()
    # channel 0 = red, channel 1 = green; one 1×2 image: pixels (r, g) = (1, 3) and (3, 1)
    x = torch.zeros(1, 3, 1, 2)
    x[0, 0] = torch.tensor([[1.0, 3.0]])
    x[0, 1] = torch.tensor([[3.0, 1.0]])
    # A = [[1, 3]], [[3, 1]]; g = (2, 2); e = W g = (4, 0); score = identity logit 0 = e_0 = 2 g_0
    # ∂s/∂A_0(ij) = 2 / 2 = 1, ∂s/∂A_1 = 0  →  map = 1 · A_0 = [1, 3]
    exp = explain("gradcam", model, x, lambda e, m: e[:, 0], layer="features")
    torch.testing.assert_close(exp.maps, torch.tensor([[[1.0, 3.0]]]))
    # score = e_1 = g_0 - g_1: α = (1/2, -1/2) → map = (A_0 - A_1) / 2 = [-1, 1]
    exp = explain("gradcam", model, x, lambda e, m: e[:, 1], layer="features")
    torch.testing.assert_close(exp.maps, torch.tensor([[[-1.0, 1.0]]]))
    assert exp.scores.tolist() == [0.0]
    assert exp.resized((2, 4)).shape == (1, 2, 4)


@pytest.mark.parametrize(
    "make_target",
    [
        lambda ref: EmbeddingSimilarity(ref),
        lambda ref: EmbeddingSimilarity(ref, metric="cosine"),
        lambda ref: PairDistance(ref),
        lambda ref: IdentityLogit(torch.tensor([0, 3, 5, 7])),
    ],
    ids=["euclidean", "cosine", "distance", "logit"],
)
def test_fast_path_equals_autograd(bot, images, make_target):
    target = make_target(bot(images[1:2]).detach()[0] * 0.5)
    fast = explain("gradcam", bot, images, target, layer="layer4")
    slow = explain("gradcam", bot, images, target, layer="layer4", fast=False)
    torch.testing.assert_close(fast.maps, slow.maps, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(fast.scores, slow.scores)
    assert fast.maps.abs().max() > 1e-3  # not trivially zero


@pytest.mark.parametrize("fast", [True, False])
def test_pair_with_broadcast_query_equals_pairs_one_by_one(bot, images, fast):
    query, gallery = images[:1], images[1:]
    together = explain_pair("gradcam", bot, query, gallery, fast=fast)
    assert together.query.maps.shape == (3, 4, 2) and together.distance.shape == (3,)
    for i in range(3):
        alone = explain_pair("gradcam", bot, query, gallery[i : i + 1], fast=fast)
        torch.testing.assert_close(
            together.query.maps[i], alone.query.maps[0], rtol=1e-4, atol=1e-6
        )
        torch.testing.assert_close(
            together.gallery.maps[i], alone.gallery.maps[0], rtol=1e-4, atol=1e-6
        )
    # the query's maps differ per partner: the explanation is of the pair, not of the query
    assert (together.query.maps[0] - together.query.maps[1]).abs().max() > 1e-4


def test_pair_sides_equal_one_sided_explanations_against_the_partner(bot, images):
    """explain_pair = each side explained with EmbeddingSimilarity to the other's embedding."""
    query, gallery = images[:2], images[2:]
    pair = explain_pair("gradcam", bot, query, gallery, layer="layer3")
    emb_q, emb_g = bot(query).detach(), bot(gallery).detach()
    q = explain("gradcam", bot, query, EmbeddingSimilarity(emb_g), layer="layer3")
    g = explain("gradcam", bot, gallery, EmbeddingSimilarity(emb_q), layer="layer3")
    torch.testing.assert_close(pair.query.maps, q.maps, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(pair.gallery.maps, g.maps, rtol=1e-4, atol=1e-6)
    cosine = torch.nn.functional.cosine_similarity(emb_q, emb_g, dim=1)  # BoT ranks by cosine
    torch.testing.assert_close(pair.distance, 1 - cosine, rtol=1e-5, atol=1e-6)
    assert pair.metric == "cosine"


def test_pair_gradcam_on_cached_maps_equals_explain_pair(bot, images):
    with torch.no_grad():
        maps = bot.feature_maps(images)["layer4"]
    q, g, _ = pair_gradcam(pooled_head(bot)[1], maps[:1], maps[1:])
    pair = explain_pair("gradcam", bot, images[:1], images[1:], fast=False)
    torch.testing.assert_close(q, pair.query.maps, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(g, pair.gallery.maps, rtol=1e-4, atol=1e-6)


def test_bad_inputs_fail_with_messages(bot, images):
    with pytest.raises(KeyError, match="valid names: stem, layer1"):
        explain("gradcam", bot, images, EmbeddingSimilarity(torch.zeros(128)), layer="layer9")
    with pytest.raises(ExplainError, match="spatial map"):
        explain("gradcam", bot, images, EmbeddingSimilarity(torch.zeros(128)), layer="embedding")
    with pytest.raises(ExplainError, match="single query"):
        explain_pair("gradcam", bot, images[:2], images[:3])
    with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):  # the model's input contract
        explain("gradcam", bot, images[0], EmbeddingSimilarity(torch.zeros(128)))
    with pytest.raises(ExplainError, match="does not match embeddings"):
        explain("gradcam", bot, images, EmbeddingSimilarity(torch.zeros(7)))
    with pytest.raises(ExplainError, match="valid parameters: fast"):
        explain("gradcam", bot, images, EmbeddingSimilarity(torch.zeros(128)), speed=3)
    with pytest.raises(LookupError, match="Did you mean 'gradcam'"):
        explain("gradcan", bot, images)


def test_explainers_run_on_a_wrapped_foreign_network():
    """Any nn.Module behind ``wrap`` gets Grad-CAM pairs equal to captum on its layer."""
    from captum.attr import LayerGradCam

    from workbench.explain import list_explainers
    from workbench.models import wrap

    torch.manual_seed(5)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 12),
    )
    model = wrap(net, {"conv2": "3"}, input_size=(32, 16))
    assert "gradcam" in list_explainers(model)
    x = torch.randn(3, 3, 32, 16)
    pair = explain_pair("gradcam", model, x[:1], x[1:], layer="conv2")
    emb = net(x).detach()
    cam = LayerGradCam(lambda y: EmbeddingSimilarity(emb[0])(net(y)), net[3])
    theirs = cam.attribute(x[1:], relu_attributions=False)[:, 0]
    torch.testing.assert_close(pair.gallery.maps, theirs, rtol=1e-4, atol=1e-6)


def test_broadcast_pairs_on_a_model_that_mixes_branches_equal_pairs_one_by_one():
    """The AAM interpreter combines the hooked layer with another branch of the same batch:
    the query is then repeated at the input, and the maps still equal pairs one by one; a
    frozen layer (computed under no_grad) fails with a message naming the ones that work."""
    from workbench.models import build_model, model_config_class

    torch.manual_seed(0)
    model = build_model("interpreter", model_config_class("interpreter").tiny()).eval()
    x = torch.randn(3, 3, *model.config.input_size)
    together = explain_pair("gradcam", model, x[:1], x[1:], layer="aam")
    for i in (0, 1):
        alone = explain_pair("gradcam", model, x[:1], x[1 + i : 2 + i], layer="aam")
        torch.testing.assert_close(
            together.query.maps[i], alone.query.maps[0], rtol=1e-4, atol=1e-6
        )
        torch.testing.assert_close(
            together.gallery.maps[i], alone.gallery.maps[0], rtol=1e-4, atol=1e-6
        )
    with pytest.raises(ExplainError, match="computed without gradients from layer 'stem'"):
        explain_pair("gradcam", model, x[:1], x[1:], layer="stem")


def test_row_aligned_queries_each_use_their_own_query(bot, images):
    """B different queries against B gallery images: pair i equals pair i explained alone
    (a closed form that used only the first query would fail), fast and slow paths alike."""
    query, gallery = images[:2], images[2:4]
    for fast in (True, False):
        together = explain_pair("gradcam", bot, query, gallery, fast=fast)
        for i in range(2):
            alone = explain_pair("gradcam", bot, query[i : i + 1], gallery[i : i + 1], fast=fast)
            torch.testing.assert_close(
                together.query.maps[i], alone.query.maps[0], rtol=1e-4, atol=1e-6
            )
            torch.testing.assert_close(
                together.gallery.maps[i], alone.gallery.maps[0], rtol=1e-4, atol=1e-6
            )
            torch.testing.assert_close(
                together.distance[i], alone.distance[0], rtol=1e-4, atol=1e-6
            )
    with torch.no_grad():
        maps = bot.feature_maps(torch.cat([query, gallery]))["layer4"]
    q, _, _ = pair_gradcam(pooled_head(bot)[1], maps[:2], maps[2:])
    q1, _, _ = pair_gradcam(pooled_head(bot)[1], maps[1:2], maps[3:4])
    torch.testing.assert_close(q[1], q1[0], rtol=1e-4, atol=1e-6)


def test_broadcast_pairs_at_attention_weights_repeat_the_query_at_the_input():
    """RGA's spatial attention map weighs the features of its own batch
    (``batch_may_grow=False``): a broadcast query is repeated at the input, and the maps equal
    pairs one by one."""
    from workbench.models import build_model, get_layer_info, model_config_class

    torch.manual_seed(0)
    model = build_model("rga", model_config_class("rga").tiny()).eval()
    assert not get_layer_info(model, "attention3").batch_may_grow
    x = torch.randn(3, 3, *model.config.input_size)
    together = explain_pair("gradcam", model, x[:1], x[1:], layer="attention3")
    for i in (0, 1):
        alone = explain_pair("gradcam", model, x[:1], x[1 + i : 2 + i], layer="attention3")
        torch.testing.assert_close(together.query.maps[i], alone.query.maps[0])
        torch.testing.assert_close(together.gallery.maps[i], alone.gallery.maps[0])


def test_a_runtime_error_in_a_pair_is_not_retried(bot, images):
    """Only a declared layer repeats the query at the input; any other RuntimeError (CUDA out
    of memory) reaches the caller instead of being retried with a larger batch."""

    class OutOfMemoryOnce(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model, self.layer_info, self.calls = model, model.layer_info, 0

        def forward(self, x):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("CUDA out of memory (simulated)")
            return self.model(x)

    flaky = OutOfMemoryOnce(bot)
    flaky.layer_info = [r.prefixed("model") for r in bot.layer_info]
    with pytest.raises(RuntimeError, match="out of memory"):
        explain_pair("gradcam", flaky, images[:1], images[1:], layer="layer3")
