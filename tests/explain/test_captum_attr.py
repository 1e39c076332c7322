"""The captum adapter: same numbers as our Grad-CAM, per-image references under captum's batching."""

from __future__ import annotations

import warnings

import pytest
import torch
from explain_helpers import tiny_bot

from workbench.explain import ExplainError, explain, explain_pair
from workbench.explain.targets import EmbeddingSimilarity

warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(4)
    return tiny_bot(seed=4), torch.randn(3, 3, 64, 32)


def test_layergradcam_through_the_adapter_equals_gradcam(setup):
    model, images = setup
    ours = explain_pair("gradcam", model, images[:1], images[1:], layer="layer3")
    theirs = explain_pair(
        "captum", model, images[:1], images[1:], layer="layer3", algorithm="LayerGradCam"
    )
    torch.testing.assert_close(theirs.query.maps, ours.query.maps, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(theirs.gallery.maps, ours.gallery.maps, rtol=1e-4, atol=1e-6)


def test_integrated_gradients_pairs_equal_pairs_one_by_one(setup):
    """IG repeats the batch n_steps times; each image must keep its own partner."""
    model, images = setup
    kwargs = {"algorithm": "IntegratedGradients", "attribute_kwargs": {"n_steps": 4}}
    together = explain_pair("captum", model, images[:1], images[1:], **kwargs)
    assert together.query.maps.shape == (2, 64, 32)
    for i in (0, 1):
        alone = explain_pair("captum", model, images[:1], images[1 + i : 2 + i], **kwargs)
        torch.testing.assert_close(
            together.gallery.maps[i], alone.gallery.maps[0], rtol=1e-4, atol=1e-6
        )
        torch.testing.assert_close(
            together.query.maps[i], alone.query.maps[0], rtol=1e-4, atol=1e-6
        )


def test_saliency_is_the_input_gradient(setup):
    model, images = setup
    ref = model(images[:1]).detach()[0]
    target = EmbeddingSimilarity(ref)
    exp = explain("captum", model, images[1:], target, algorithm="Saliency")
    x = images[1:].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(target(model(x), model).sum(), x)
    torch.testing.assert_close(exp.maps, grad.abs().sum(1), rtol=1e-4, atol=1e-7)


def test_adapter_errors(setup):
    model, images = setup
    with pytest.raises(ExplainError, match="has no algorithm 'Nope'"):
        explain_pair("captum", model, images[:1], images, algorithm="Nope")
    with pytest.raises(ExplainError, match="takes no layer"):
        explain_pair("captum", model, images[:1], images, algorithm="Saliency", layer="layer3")
