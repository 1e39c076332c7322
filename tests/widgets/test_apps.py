"""The apps driven headless through ``.value`` / ``.click()``, checked against direct computation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("ipywidgets")

from tests.explain.explain_helpers import tiny_bot
from tests.widgets.fakes import FakeInterpreter
from workbench.data import load_split
from workbench.explain import explain, explain_pair
from workbench.widgets import (
    AttributeExplorer,
    ImageStore,
    PairExplainer,
    RankingBrowser,
    ReceptiveFieldExplorer,
)


@pytest.fixture(scope="module")
def split(tiny_synth):
    return load_split(tiny_synth)


@pytest.fixture(scope="module")
def model():
    return tiny_bot(seed=3, input_size=(128, 64))


@pytest.fixture()
def browser(model, split):
    return RankingBrowser(model, split, topk=5, device="cpu")


def naive_topk(distmat, q, g, i, k):
    """Gallery indices by increasing distance, same pid + camera and junk dropped (loop)."""
    keep = []
    for j in sorted(range(distmat.shape[1]), key=lambda j: (distmat[i, j], j)):
        same = g.pid[j] == q.pid[i] and g.camid[j] == q.camid[i]
        if g.pid[j] != -1 and not same:
            keep.append(j)
    return keep[:k]


def test_import_workbench_never_imports_ipywidgets():
    code = (
        "import sys\n"
        "import workbench, workbench.widgets, workbench.explain, workbench.viz.heatmap\n"
        "from workbench.widgets import RankingBrowser, PairExplainer, ReceptiveFieldExplorer\n"
        "print('ipywidgets' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_feature_extraction_progress_and_ranking(browser, split):
    d = browser.data
    assert browser.progress.value == browser.progress.max >= 2  # query + gallery batches
    for i in (0, len(d.query) - 1):
        browser.index.value = i
        assert browser.gallery_indices.tolist() == naive_topk(d.distmat, d.query, d.gallery, i, 5)
    # distances in the captions are the ranking's
    g0 = browser.gallery_indices[0]
    assert f"1−cos {d.distmat[browser.query_index, g0]:.3f}" in browser.tile_captions[0].value
    q = torch.nn.functional.normalize(
        browser.model(ImageStore((128, 64)).tensor([d.query.path[0]])), dim=1
    )
    assert q.shape[0] == 1


def test_query_by_pid_and_worst_first(browser):
    d = browser.data
    pid = int(d.query.pid.iloc[-1])
    browser.pid.value = str(pid)
    assert d.query.pid[browser.query_index] == pid
    ap = d.ap.copy()
    order = [
        i
        for i in np.argsort(np.where(np.isnan(ap), np.inf, ap), kind="stable")
        if not np.isnan(ap[i])
    ]
    browser.worst.value = 1
    assert browser.query_index == order[1]
    browser.worst.value = 0
    assert browser.query_index == order[0]
    assert f"AP {100 * ap[order[0]]:.1f}%" in browser.query_caption.value


def test_bad_input_is_a_message_not_an_exception(browser):
    before = browser.query_index
    browser.pid.value = "nobody"
    assert "not a number" in browser.status.value and browser.query_index == before
    browser.pid.value = "99999"
    assert "no query of person 99999" in browser.status.value
    ex = browser.explainer
    layers = [value for _label, value in ex.layer.options]
    assert "global" not in layers and "(input pixels)" not in layers  # only what Grad-CAM uses
    ex.method.value = "captum"  # an input-space method: the only layer is the pixels
    assert [v for _l, v in ex.layer.options] == ["(input pixels)"]
    assert ex.explanation.query.layer is None  # "(input pixels)" is not layer4 in disguise
    ex.method.value = "gradcam"
    browser.explainer.controls.controls["fast"].value = False
    browser.explainer.layer.value = "layer3"
    assert browser.explainer.error is None


def _reference_list_maps(model, browser, query):
    store = ImageStore((128, 64))
    d = browser.data
    q = store.tensor([d.query.path[query]])
    g = store.tensor([d.gallery.path[j] for j in browser.gallery_indices])
    return explain_pair("gradcam", model, q, g, fast=False)  # autograd path, computed apart


def test_heat_maps_on_the_list_match_explain_pair(browser, model, split):
    assert browser.data.maps_layer == "layer4"  # kept from the extraction pass (fp16)
    assert browser.data.gallery_maps.shape[0] == len(split.gallery)
    browser.index.value = 2
    browser.heat.value = True
    q_maps, g_maps = browser.list_maps
    assert len(browser.features) == 0  # no forward pass: the kept maps were used
    ref = _reference_list_maps(model, browser, 2)
    for got, want in ((g_maps, ref.gallery.maps), (q_maps, ref.query.maps)):
        tol = 2e-3 * float(want.abs().max())  # fp16 feature maps
        torch.testing.assert_close(torch.from_numpy(got), want, rtol=0, atol=tol)
    assert browser.colour_bar.layout.display is None  # one bar for the whole list
    plain = browser.tile_png[1]
    browser.heat.value = False
    assert browser.tile_png[1] != plain and browser.list_maps is None


def test_heat_maps_without_kept_maps_are_exact(model, split):
    from workbench.evaluate import evaluate_model

    result = evaluate_model(model, split, 128, 64, device="cpu", progress=False)
    browser = RankingBrowser(model, result=result, topk=4, device="cpu")
    assert browser.data.gallery_maps is None
    np.testing.assert_array_equal(browser.data.distmat, result.distmat)
    browser.index.value = 3
    browser.heat.value = True
    ref = _reference_list_maps(model, browser, 3)
    torch.testing.assert_close(
        torch.from_numpy(browser.list_maps[1]), ref.gallery.maps, rtol=1e-4, atol=1e-5
    )
    assert len(browser.features) == 5  # the query and its 4 matches, cached per image
    browser.index.value = 0
    browser.index.value = 3  # back: the list's maps come from the cache
    assert browser.list_cache.hits >= 1


def test_click_opens_the_pair_and_revisits_from_the_cache(browser, model):
    browser.index.value = 1
    browser.tile_buttons[3].click()
    ex = browser.explainer
    g = browser.data.gallery.iloc[browser.gallery_indices[3]]
    assert ex.gallery.path == g.path and browser.selected_rank == 3
    store = ImageStore((128, 64))
    ref = explain_pair("gradcam", model, store.tensor([ex.query.path]), store.tensor([g.path]))
    torch.testing.assert_close(ex.explanation.gallery.maps, ref.gallery.maps)
    first = ex.png
    browser.tile_buttons[0].click()
    assert ex.png != first
    renders, misses = ex.renders, ex.cache.misses
    browser.tile_buttons[3].click()  # back to the first pair: nothing recomputed or redrawn
    assert ex.png == first and ex.renders == renders and ex.cache.misses == misses


def test_method_controls_come_from_the_config(browser):
    ex = browser.explainer
    ex.method.value = "daaf_partial"
    assert set(ex.controls.controls) == {"groups"}
    assert [name for name, _ in ex.map_index.options] == [f"group {i}" for i in range(1, 7)]
    ex.controls.controls["groups"].value = 4
    assert ex.explanation.query.maps.shape[1] == 4 and len(ex.map_index.options) == 4
    ex.controls.controls["groups"].value = 10_000  # more groups than embedding channels
    assert "groups for a" in ex.status.value
    ex.method.value = "captum"
    assert ex.layer.value == "(input pixels)"  # IntegratedGradients takes no layer
    ex.controls.controls["attribute_kwargs"].value = "{not json"
    assert "not valid JSON" in ex.status.value
    assert "cpu" in browser.device_control.widget.options


def test_pair_explainer_alone_takes_paths(model, split):
    ex = PairExplainer(model, device="cpu")
    ex.set_pair(split.query.path[0], split.gallery.path[0])
    assert ex.png[:4] == b"\x89PNG" and ex.error is None
    ex.scale_mode.value = "signed"
    assert "(signed)" in ex.status.value


def test_attribute_explorer_averages_and_messages(split):
    model = FakeInterpreter()
    pids = sorted(split.query.pid.unique())
    attrs = pd.DataFrame({"backpack": [p % 2 for p in pids], "hat": [1] * len(pids)}, index=pids)
    app = AttributeExplorer(model, split, attributes=attrs, device="cpu")
    assert app.error is None, app.error
    from workbench.evaluate.protocol import make_loader

    images = torch.cat([b["image"] for b in make_loader(split.query, 32, 16)])
    aams = model.interpret(images).aams
    labels = np.array([p % 2 for p in split.query.pid])
    from workbench.evaluate.interpretations import average_aams
    from workbench.widgets import attribute_views

    matrix = attribute_views._labels(attrs, split.query.pid.to_numpy(), list(model.attribute_names))
    torch.testing.assert_close(app.averages, average_aams(aams, matrix))  # the paper's rule
    assert (matrix[:, 0] == labels).all()  # backpack: the parity of the pid, as built above
    assert app.averages.shape == (2, 2, 8, 4)
    assert app.attribute.value == "backpack" and app.png[:4] == b"\x89PNG"  # shown at once
    app.attribute.value = "hat"
    assert "without (0)" in app.status.value and app.png[:4] == b"\x89PNG"
    bot = AttributeExplorer(tiny_bot(), split, attributes=attrs, device="cpu")
    assert "not an attribute interpreter" in bot.status.value
    del attribute_views


def test_attribute_explorer_on_a_split_without_attributes(tmp_path, split):
    class NoFile:
        root = tmp_path
        query = split.query

    app = AttributeExplorer(FakeInterpreter(), NoFile(), device="cpu")
    assert "no attribute annotations" in app.status.value and app.averages is None


def test_receptive_field_explorer_on_ianet(split):
    from workbench.models import build_model
    from workbench.models.ianet import IANetConfig

    torch.manual_seed(0)
    model = build_model("ianet", IANetConfig.tiny(input_size=(128, 64))).eval()
    app = ReceptiveFieldExplorer(model, split.query.head(3), device="cpu")
    assert app.error is None, app.error
    app.set_point(0.2, 0.7)
    image = ImageStore((128, 64)).tensor([split.query.path[0]])
    ref = explain("receptive_field", model, image, layer=app.layer.value, points=((0.2, 0.7),))
    np.testing.assert_allclose(app.relation, ref.maps[0, 0].numpy(), rtol=1e-5, atol=1e-7)
    assert abs(app.relation.sum() - 1) < 1e-4  # a row of S is a distribution
    png = app.png
    app.set_point(0.9, 0.1)
    assert app.png != png
    # a click (ipyevents' event fields) on the second tile at 3/4 of its height and 1/4 width,
    # with the picture shown at half size
    w, h = app._composite
    tile_w, tile_h, gap = 64 * app.scale, 128 * app.scale, 6
    x = tile_w + gap + 0.25 * tile_w
    event = {"relativeX": x / 2, "relativeY": 0.75 * tile_h / 2,
             "boundingRectWidth": w / 2, "boundingRectHeight": h / 2}  # fmt: skip
    app._clicked(event)
    assert (app.y.value, app.x.value) == (0.75, 0.25)
    plain = ReceptiveFieldExplorer(tiny_bot(), split.query.head(2), device="cpu")
    assert "no SIA relation maps" in plain.status.value


def test_attribute_bars_view_plugs_into_the_pair_explainer(model, split, monkeypatch):
    """The interpreter's pair view, against a stand-in for its explain_pair (same fields)."""
    import types

    from workbench.widgets import AttributeBars

    calls = []

    def fake_explain_pair(interpreter, x, y, k=3, attributes_x=None, attributes_y=None):
        calls.append((x.shape, attributes_x, attributes_y))
        aams = interpreter.interpret(torch.stack([x, y])).aams
        table = pd.DataFrame(
            {"attribute": ["hat", "backpack"], "contribution": [0.7, 0.3],
             "value_x": [1, 0], "value_y": [0, 0], "exclusive": [True, False]}
        )  # fmt: skip
        return types.SimpleNamespace(
            distance=2.0, distilled=1.9, table=table, top=["hat", "backpack"][:k],
            aams_x=aams[0, :k], aams_y=aams[1, :k],
        )  # fmt: skip

    fake = types.ModuleType("workbench.explain.attributes")
    fake.explain_pair = fake_explain_pair
    monkeypatch.setitem(sys.modules, "workbench.explain.attributes", fake)
    interpreter = FakeInterpreter((128, 64))
    assert AttributeBars.supports(interpreter) and not AttributeBars.supports(model)
    pids = sorted(split.query.pid.unique())
    attrs = pd.DataFrame({"backpack": [1] * len(pids), "hat": [0] * len(pids)}, index=pids)
    bars = AttributeBars(interpreter, k=2, attributes=attrs)
    ex = PairExplainer(model, device="cpu", views=[bars])
    q, g = split.query.iloc[0], split.gallery.iloc[0]
    ex.set_pair(q, g)  # the view is updated with the pair
    assert bars.error is None, bars.error
    assert calls and calls[0][0] == (3, 128, 64) and list(calls[0][1]) == [1, 0]
    assert bars.bars.value[:4] == b"\x89PNG" and bars.maps.value[:4] == b"\x89PNG"
    assert "hat, backpack" in bars.status.value
    monkeypatch.delitem(sys.modules, "workbench.explain.attributes")
    monkeypatch.setattr("builtins.__import__", _no_attributes_module(__import__))
    ex.set_pair(g, q)
    assert "attributes" in bars.status.value  # the missing module is a message


def _no_attributes_module(real_import):
    def fake_import(name, *args, **kwargs):
        if name == "workbench.explain.attributes":
            raise ImportError("No module named 'workbench.explain.attributes'")
        return real_import(name, *args, **kwargs)

    return fake_import


def test_the_browser_hands_the_splits_attributes_to_the_attribute_view(browser, split):
    from workbench.widgets import AttributeBars

    bars = AttributeBars(FakeInterpreter((128, 64)))
    browser.explainer.views = [bars]
    browser._attach_attributes(split)
    assert set(split.query.pid) <= set(bars.attributes.index)  # the test split's identities
    assert "backpack" in bars.attributes.columns


def test_every_distance_on_screen_is_the_rankings(browser):
    """The tile under each match and the pair panel show the same ranking distance, named, and
    the explanation's own distance is that distance (cosine for BoT)."""
    d = browser.data
    assert d.metric == "cosine"
    browser.index.value = 1
    for rank in range(len(browser.gallery_indices)):
        browser.open_pair(rank)
        dist = d.distmat[browser.query_index, browser.gallery_indices[rank]]
        shown = f"{dist:.3f}"
        assert f"1−cos {shown}" in browser.tile_captions[rank].value
        assert f"cosine distance 1 − cos = <b>{shown}</b>" in browser.explainer.title.value
        exp = browser.explainer.explanation
        assert exp.metric == "cosine"
        assert float(exp.distance[0]) == pytest.approx(float(dist), abs=1e-4)


def test_the_pair_panel_follows_the_query_and_the_fields_stay_in_sync(browser):
    d = browser.data
    browser.index.value = 0
    browser.open_pair(2)
    browser.index.value = 3  # another query: the panel re-targets to rank 3 of the new list
    ex = browser.explainer
    assert ex.query.path == d.query.path[3]
    assert ex.gallery.path == d.gallery.path[browser.gallery_indices[2]]
    assert browser.pid.value == str(d.query.pid[3])
    pid = int(d.query.pid[5])
    browser.pid.value = str(pid)
    assert (
        d.query.pid[browser.query_index] == pid
        and ex.query.path == d.query.path[browser.query_index]
    )
    assert browser.index.value == browser.query_index
    browser.worst.value = 0
    assert browser.query_index == d.worst_first[0]
    assert browser.index.value == browser.query_index
    assert browser.pid.value == str(d.query.pid[browser.query_index])
    assert ex.query.path == d.query.path[browser.query_index]


def test_clicking_a_point_shows_where_it_matches(browser):
    from workbench.explain.decomposition import decompose_pair

    ex = browser.explainer
    browser.open_pair(0)
    png = ex.png
    ex.click_point("query", 0.1, 0.5)  # the head
    head = ex.correspondence.copy()
    assert ex.png != png and "correspondence of the query point" in ex.title.value
    ex.click_point("query", 0.9, 0.5)  # the feet: another row of D
    assert not np.allclose(head, ex.correspondence)
    store = ImageStore((128, 64))
    batch = store.tensor([ex.query.path, ex.gallery.path])
    dec = decompose_pair(browser.model, batch[:1], batch[1:])
    np.testing.assert_allclose(ex.correspondence, dec.correspondence([(0.9, 0.5)])[0, 0], atol=1e-6)
    # a click on the composite image: tile 2 is the gallery image
    h, w = 128 * ex.display_scale, 64 * ex.display_scale
    ex._image_clicked({"relativeX": 2 * (w + 6) + w * 0.25, "relativeY": h * 0.5})
    assert ex.point == ("gallery", 0.5, 0.25)
    np.testing.assert_allclose(
        ex.correspondence, dec.correspondence([(0.5, 0.25)], side="gallery")[0, 0], atol=1e-6
    )
    ex.matches.value = True
    assert ex.matches_image.layout.display is None and len(ex.matches_image.value) > 0
    ex.matches.value = False
    ex.click_point(None)
    assert ex.point is None and ex.correspondence is None


def test_why_is_a_wrong_match_above_the_true_one(browser):
    d = browser.data
    for i in range(len(d.query)):
        browser.index.value = i
        if browser.first_true is not None and 0 < browser.first_true < len(browser.gallery_indices):
            break
    else:
        pytest.skip("no query with a wrong match above its first true match")
    first = browser.first_true
    shown = [
        b.layout.display != "none" for b in browser.why_buttons[: len(browser.gallery_indices)]
    ]
    assert shown == [r < first for r in range(len(browser.gallery_indices))]
    browser.why_buttons[0].click()
    result = browser.explainer.contrast
    assert result.exact
    wrong = browser.gallery_indices[0]
    right = browser.data.topk(i, first + 1)[first]
    assert browser.explainer.gallery.path == d.gallery.path[wrong]
    assert browser.explainer.lower.path == d.gallery.path[right]
    assert float(result.query_map.sum()) == pytest.approx(float(result.margin), abs=1e-5)
    # the margin of similarities is the difference of the ranking's distances
    margin = d.distmat[i, right] - d.distmat[i, wrong]
    assert float(result.margin) == pytest.approx(float(margin), abs=1e-4)
    assert "margin" in browser.explainer.title.value
    with pytest.raises(ValueError, match="not a wrong match"):
        browser.open_contrast.__wrapped__(browser, first)


def test_list_heat_maps_follow_the_method_parameters(browser):
    browser.index.value = 0
    browser.explainer.method.value = "daaf_partial"
    browser.heat.value = True
    six = browser.list_maps[0].copy()
    browser.explainer.controls.controls["groups"].value = 2  # a parameter, not the method
    assert not np.allclose(six, browser.list_maps[0])
    direct = explain_pair(
        "daaf_partial",
        browser.model,
        ImageStore((128, 64)).tensor([browser.data.query.path[0]]),
        ImageStore((128, 64)).tensor(
            [browser.data.gallery.path[j] for j in browser.gallery_indices]
        ),
        groups=2,
    )
    np.testing.assert_allclose(
        browser.list_maps[0], direct.query.maps[:, 0].numpy(), rtol=1e-4, atol=1e-6
    )


def test_image_store_gives_the_pixels_the_ranking_saw(split):
    """The apps explain exactly the pixels the ranking embedded: the loader's reduced JPEG
    decoding (128×64 files at 64×32: factor 2), not a full decode and a resize."""
    from workbench.evaluate.protocol import make_loader

    first = next(iter(make_loader(split.query, 64, 32, batch_size=4)))
    store = ImageStore((64, 32))
    assert torch.equal(store.tensor(list(first["path"])), first["image"])


def test_a_computation_says_it_is_working_before_it_runs(browser):
    seen = []
    ex = browser.explainer
    ex.status.observe(lambda change: seen.append(change["new"]), names="value")
    ex.method.value = "captum"  # not cached: integrated gradients on the pixels
    assert any("computing captum" in text for text in seen)
    assert "computing" not in ex.status.value  # and the final message replaces it
    ex.method.value = "gradcam"
