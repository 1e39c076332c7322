"""Every registered model × every explainer that applies to it: shapes, devices, no hooks left.

Driven by the registries (``list_models()``, ``list_explainers(model)``): a new model or method is
covered without editing this file.
"""

from __future__ import annotations

import pytest
import torch

from workbench.explain import Explanation, explain, explain_pair, list_explainers
from workbench.explain.base import get_explainer
from workbench.explain.targets import EmbeddingSimilarity
from workbench.models import build_model, list_models, model_config_class

CHEAP = {"captum": {"algorithm": "LayerGradCam"}}  # a fast captum algorithm for the sweep


def hook_count(model: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


def cases():
    for name in list_models():
        config = model_config_class(name).tiny()
        torch.manual_seed(0)
        model = build_model(name, config).eval()
        for method in list_explainers(model):
            yield pytest.param(name, model, method, id=f"{name}-{method}")


@pytest.mark.parametrize(("name", "model", "method"), list(cases()))
def test_every_model_with_every_explainer(name, model, method):
    torch.manual_seed(1)
    h, w = model.config.input_size
    images = torch.randn(3, 3, h, w)
    params = CHEAP.get(method, {})
    before = hook_count(model)
    ref = model(images[:1]).detach()[0]
    cls = get_explainer(method)
    target = EmbeddingSimilarity(ref) if cls.needs_target else None
    exp = explain(method, model, images, target, **params)
    assert isinstance(exp, Explanation) and exp.method == method
    assert exp.maps.shape[0] == 3 and exp.maps.dim() in (3, 4)
    assert torch.isfinite(exp.maps).all()
    assert exp.resized().shape[-2:] == (h, w)
    pair = explain_pair(method, model, images[:1], images, **params)
    assert pair.query.maps.shape == pair.gallery.maps.shape == exp.maps.shape
    assert pair.distance.shape == (3,)
    assert hook_count(model) == before, "an explainer left a hook behind"
    assert not model.training


@pytest.mark.parametrize("method", list_explainers())
def test_no_hook_left_behind_on_error(method, monkeypatch):
    """A failure inside the forward pass (after the hooked layer) removes the hooks too."""
    torch.manual_seed(0)
    model = build_model("bot", model_config_class("bot").tiny()).eval()
    if method not in list_explainers(model):
        pytest.skip(f"{method} does not apply to BoT")

    def broken(x):
        raise RuntimeError("forward failed after the layer")

    ref = torch.zeros(model.embedding_dim)
    target = EmbeddingSimilarity(ref) if get_explainer(method).needs_target else None
    layers = [r.name for r in get_explainer(method).candidate_layers(model)]
    layer = "layer3" if "layer3" in layers else layers[-1]  # the decomposition: layer4 only
    before = hook_count(model)
    monkeypatch.setattr(model.pool, "forward", broken)
    with pytest.raises(RuntimeError, match="forward failed"):
        explain(
            method,
            model,
            torch.randn(2, 3, 64, 32),
            target,
            layer=layer,
            **CHEAP.get(method, {}),
        )
    assert hook_count(model) == before
    assert torch.is_grad_enabled()


def test_list_explainers_filters_by_model():
    from explain_helpers import HandModel

    everything = list_explainers()
    assert {"gradcam", "attention", "captum"} <= set(everything)
    bot = build_model("bot", model_config_class("bot").tiny())
    assert "attention" not in list_explainers(bot)  # BoT has no attention module
    assert "gradcam" in list_explainers(HandModel())


def test_discovery_imports_only_the_method_modules():
    """Asking for the registry imports the files that register a method, not the attribute
    tables, the metrics or the rank-list helpers (nor anything of evaluate's report / train)."""
    import subprocess
    import sys

    code = (
        "import sys; from workbench.explain import list_explainers; list_explainers(); "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('workbench.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert {"workbench.explain.gradcam", "workbench.explain.shuffle"} <= set(out)
    for job in ("explain.attributes", "explain.metrics", "evaluate.report", "train.aam"):
        assert f"workbench.{job}" not in out
