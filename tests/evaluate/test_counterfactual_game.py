"""The counterfactual game on a hand-built model that sees one image region only.

Truth computed by hand: a model whose embedding reads only the pixels of a window R gives
Δ = 0 exactly for an edit outside R (JPEG keeps pixels bit-identical two blocks away from an
edit, ``tests/data/test_counterfactual.py``), and every map of Δ lies inside R, so an edit that
covers R scores energy 1 and a pointing hit, for every method.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from torch import Tensor, nn

from workbench.evaluate.counterfactual import (
    DEFAULT_METHODS,
    MethodSpec,
    counterfactual_game,
    load_counterfactuals,
)
from workbench.models import LayerInfo

H, W = 64, 32
WINDOW = (slice(16, 32), slice(0, 16))  # R: rows 16..31, columns 0..15 (16-px JPEG blocks)
OUTSIDE = (slice(48, 64), slice(16, 32))  # two blocks below and right of R


class WindowModel(nn.Module):
    """``A = conv1x1(x) · 1_R`` (C = 3, full resolution), embedding ``W · mean_R(A)``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Conv2d(3, 3, 1, bias=False)
        self.body.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.head = nn.Linear(3, 4, bias=False)
        window = torch.zeros(1, 1, H, W)
        window[(0, 0, *WINDOW)] = 1.0
        self.register_buffer("window", window)
        self.layer_info = [LayerInfo("features", 3, 1, "crop", "stage")]
        self.crop = nn.Identity()
        self.model_name = "window"

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.crop(self.body(x) * self.window).sum((2, 3)) / self.window.sum()
        return self.head(pooled)


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])


@pytest.fixture(scope="module")
def window_data(tmp_path_factory) -> Path:
    """A Market-style folder: 3 query people (camera 1), their matches (camera 2), and for
    each query an edit that covers R and one outside it."""
    root = tmp_path_factory.mktemp("window")
    rng = np.random.default_rng(0)
    rows = []
    (root / "bounding_box_train").mkdir()
    _write(
        root / "bounding_box_train/0009_c1s1_000001_01.jpg",
        rng.integers(0, 256, (H, W, 3), np.uint8),
    )
    for pid in (1, 2, 3):
        base = rng.integers(0, 256, (H, W, 3), np.uint8)
        name = f"{pid:04d}_c1s1_00000{pid}_01.jpg"
        _write(root / "query" / name, base)
        person = np.zeros((H, W), np.uint8)  # the "person" (part label 2) fills rows 0..31
        person[:32] = 2
        (root / "masks/query").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "masks/query" / f"{name[:-4]}.png"), person)
        match = np.clip(base.astype(int) + rng.integers(-40, 40, base.shape), 0, 255)
        _write(root / f"bounding_box_test/{pid:04d}_c2s1_00001{pid}_01.jpg", match.astype(np.uint8))
        for factor, region in (("inside", WINDOW), ("outside", OUTSIDE)):
            edited = base.copy()
            edited[region] = (0, 0, 255)  # BGR red, far from the noise's mean grey
            mask = np.zeros((H, W), np.uint8)
            mask[region] = 255
            image = f"counterfactuals/{factor}/{name}"
            mask_path = f"counterfactuals/masks/{factor}/{name[:-4]}.png"
            _write(root / image, edited)
            (root / mask_path).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / mask_path), mask)
            rows.append({"original": f"query/{name}", "counterfactual": image, "factor": factor,
                         "mask": mask_path, "attribute": "", "old": "a", "new": "b", "pid": pid,
                         "camid": 1, "area": 0.125, "attributes": ""})  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "counterfactuals.csv", index=False)
    return root


METHODS = (
    *[m for m in DEFAULT_METHODS if m.method != "gradcam"],
    MethodSpec("gradcam", "features"),
    MethodSpec(
        "captum",
        params=(("algorithm", "Occlusion"),
                ("attribute_kwargs", {"sliding_window_shapes": (3, 16, 16), "strides": (3, 16, 16)})),
        label="occlusion16",
    ),
)  # fmt: skip


@pytest.fixture(scope="module")
def game(window_data):
    return counterfactual_game(
        WindowModel(), window_data, METHODS, input_size=(H, W), device="cpu", progress=False
    )


def test_edits_outside_the_window_leave_the_similarity_unchanged(game):
    rows = game.rows
    outside, inside = rows[rows.factor == "outside"], rows[rows.factor == "inside"]
    assert (outside.delta == 0).all()
    assert not outside.kept.any()  # an edit the model ignores is not scored
    assert (inside.delta.abs() > game.settings["threshold"]).all()


def test_every_map_of_an_edit_inside_the_window_lies_on_the_edit(game):
    kept = game.rows[game.rows.kept]
    # Occlusion with 32-px windows overlaps R from outside; every other method is exact
    exact = kept[kept.method != "occlusion"]
    # the window model declares no pooling: the decomposition does not apply and is skipped
    assert game.settings["skipped"] == ["decomposition"]
    assert set(exact.method) == {m.name for m in METHODS} - {"occlusion", "decomposition"}
    np.testing.assert_allclose(exact.energy, 1.0, atol=1e-6)
    assert exact.pointing.all()
    np.testing.assert_allclose(exact.chance, 16 * 16 / (H * W))
    # scored as the faithfulness report does, on the person mask (rows 0..31, holding R)
    np.testing.assert_allclose(exact.person_energy, 1.0, atol=1e-6)
    np.testing.assert_allclose(exact.person_chance, 0.5)
    coarse = kept[kept.method == "occlusion"]
    assert (coarse.energy < 1).all() and (coarse.energy > coarse.chance).all()


def test_delta_is_the_similarity_drop_of_the_model(game, window_data):
    """Δ recomputed independently from the JPEG files with the model and cosine."""
    from workbench.data.dataset import read_image

    model = WindowModel().eval()
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])

    def embed(rel: str) -> Tensor:
        x = (read_image(window_data / rel) / 255.0 - mean) / std
        return model(torch.tensor(x, dtype=torch.float32).permute(2, 0, 1)[None])

    row = game.rows[(game.rows.factor == "inside")].iloc[0]
    g = embed(row.reference)
    with torch.no_grad():
        want = torch.cosine_similarity(embed(row.original), g) - torch.cosine_similarity(
            embed(row.counterfactual), g
        )
    assert row.delta == pytest.approx(float(want), abs=1e-5)


def test_summary_and_sensitivity(game, tmp_path):
    s = game.summary
    assert set(s.factor) == {"inside", "outside"}
    assert (s[s.factor == "outside"].kept == 0).all() and (s[s.factor == "inside"].kept == 3).all()
    assert list(game.sensitivity.index) == ["inside", "outside"]  # ranked by median |Δ|
    assert game.sensitivity.loc["outside", "median_abs_delta"] == 0
    paths = game.save(tmp_path / "report")
    assert [p.name for p in paths] == ["summary.csv", "summary.md", "pairs.csv", "sensitivity.csv"]
    assert "Sensitivity profile" in paths[1].read_text()


def test_a_method_the_model_cannot_run_is_skipped_with_its_reason(window_data):
    methods = (
        MethodSpec("gradcam", "features"),
        MethodSpec("captum", params=(("algorithm", "Nonexistent"),), label="broken"),
    )
    game = counterfactual_game(
        WindowModel(), window_data, methods, input_size=(H, W), device="cpu", progress=False
    )
    assert set(game.rows.method) == {"gradcam@features"}
    (skipped,) = game.settings["skipped"]
    assert skipped.startswith("broken (captum.attr has no algorithm 'Nonexistent'")


def test_two_methods_of_one_name_are_refused(window_data):
    twice = (MethodSpec("gradcam", "features"), MethodSpec("gradcam", "features"))
    with pytest.raises(ValueError, match="its own name"):
        counterfactual_game(WindowModel(), window_data, twice, input_size=(H, W), device="cpu")


def test_missing_counterfactuals_name_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="--counterfactuals"):
        load_counterfactuals(tmp_path)


def test_the_decomposition_contrast_adds_up_to_delta():
    """Its map of Δ is query_map(x, g) − query_map(x', g), which sums to Δ exactly (cosine)."""
    import sys

    import torch.nn.functional as F

    sys.path.insert(0, str(Path(__file__).parents[1] / "explain"))
    from explain_helpers import tiny_bot

    from workbench.evaluate.counterfactual import delta_maps
    from workbench.evaluate.distance import pair_similarity
    from workbench.explain import explain
    from workbench.explain.targets import EmbeddingSimilarity

    model = tiny_bot()
    torch.manual_seed(1)
    x, x_cf, g = torch.randn(3, 3, 3, 64, 32).unbind(0)
    with torch.no_grad():
        e_g = model(g)
        delta = pair_similarity(model(x), e_g, "cosine") - pair_similarity(
            model(x_cf), e_g, "cosine"
        )
    target = EmbeddingSimilarity(e_g, "cosine")
    layer = (
        explain("decomposition", model, x, target).maps
        - explain("decomposition", model, x_cf, target).maps
    )  # (3, h, w) on the pooled layer's grid
    torch.testing.assert_close(layer.sum((1, 2)), delta, atol=1e-5, rtol=1e-4)
    maps = delta_maps(model, MethodSpec("decomposition"), x, e_g, "cosine", x_cf)
    up = F.interpolate(layer[:, None], size=(64, 32), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(maps, up)
    with pytest.raises(ValueError, match="contrast"):
        delta_maps(model, MethodSpec("decomposition"), x, e_g, "cosine")


def test_cli_explain_counterfactual_writes_the_report(tmp_path, capsys):
    from workbench.cli import main
    from workbench.data.synth import generate
    from workbench.data.synth.counterfactual import FACTORS

    root = tmp_path / "data"
    generate(root, ids=8, seed=2, height=128, width=64, workers=1, progress=False,
             counterfactuals=2)  # fmt: skip
    out = tmp_path / "report"
    argv = ["explain", "--weights", "bot_r18w16_synth", "--data", str(root), "--method",
            "gradcam", "--layer", "layer3", "--counterfactual", "--report", str(out), "--quiet",
            "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.factor) == list(FACTORS) and set(summary.method) == {"gradcam@layer3"}
    assert (summary.pairs == 2).all()
    pairs = pd.read_csv(out / "pairs.csv")
    assert len(pairs) == 2 * len(FACTORS) and (root / pairs.reference.iloc[0]).is_file()
    assert "Sensitivity profile" in capsys.readouterr().out
    # JSON lists reach captum as the tuples it needs (window shapes, strides)
    params = '{"algorithm": "Occlusion", "attribute_kwargs": {"sliding_window_shapes": [3, 32, 32], "strides": [3, 16, 16]}}'
    argv = ["explain", "--weights", "bot_r18w16_synth", "--data", str(root), "--method", "captum",
            "--params", params, "--counterfactual", "--report", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert set(pd.read_csv(out / "summary.csv").method) == {"captum:Occlusion"}
    assert main(["explain", "--weights", "bot_r18w16_synth", "--data", str(tmp_path / "none"),
                 "--counterfactual", "--report", str(out)]) == 1  # fmt: skip


def test_interpreter_changes_split_the_distilled_distance(window_data):
    """Per factor, the change of the edited attributes' share of d̂ = mean_k d^k, recomputed
    from the interpreter's attribute embeddings; shoes (not annotated) get NaN."""
    from workbench.data.dataset import read_image
    from workbench.evaluate.counterfactual import interpreter_changes
    from workbench.models import build_model, model_config_class

    torch.manual_seed(0)
    interpreter = build_model("interpreter", model_config_class("interpreter").tiny()).eval()
    names = list(interpreter.attribute_names)  # hat, backpack, upred, upblack, downblue, gender
    rows = pd.DataFrame(
        {
            "original": ["query/0001_c1s1_000001_01.jpg"] * 3,
            "counterfactual": ["counterfactuals/inside/0001_c1s1_000001_01.jpg"] * 3,
            "reference": ["bounding_box_test/0001_c2s1_000011_01.jpg"] * 3,
            "factor": ["hat", "upper_colour", "shoes"],
        }
    )
    got = interpreter_changes(interpreter, window_data, rows, device="cpu").set_index("factor")
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])

    def comps(rel: str) -> Tensor:
        x = (read_image(window_data / rel) / 255.0 - mean) / std
        x = torch.tensor(x, dtype=torch.float32).permute(2, 0, 1)[None]
        with torch.no_grad():
            return interpreter.interpret(x).components[0]  # (M, D)

    x, x_cf, g = (comps(rows[c].iloc[0]) for c in ("original", "counterfactual", "reference"))
    change = ((x_cf - g).norm(dim=1) - (x - g).norm(dim=1)) / len(names)  # (M,)
    assert got.loc["hat", "attribute_change"] == pytest.approx(float(change[0]), abs=1e-5)
    colours = float(change[names.index("upred")] + change[names.index("upblack")])
    assert got.loc["upper_colour", "attribute_change"] == pytest.approx(colours, abs=1e-5)
    assert np.isnan(got.loc["shoes", "attribute_change"])
    assert (got.distance_change - float(change.sum())).abs().max() < 1e-5


def test_maps_are_oriented_by_the_sign_of_delta():
    """sign(Δ)·map: an edit that raised the similarity (Δ < 0) scores the map's negative part;
    DAAF's non-negative maps are scored as they are."""
    from workbench.evaluate.counterfactual import orient_maps

    maps = torch.tensor([[[1.0, -2.0]], [[1.0, -2.0]]])  # (2, 1, 2)
    delta = torch.tensor([0.3, -0.3])
    oriented = orient_maps(MethodSpec("gradcam", "layer4"), maps, delta)
    torch.testing.assert_close(oriented, torch.tensor([[[1.0, -2.0]], [[-1.0, 2.0]]]))
    assert orient_maps(MethodSpec("daaf_holistic"), maps, delta) is maps


def test_top_k_precision_by_hand():
    """k = the mask's area; the k highest pixels of the map, counted inside the mask."""
    from workbench.evaluate.counterfactual import top_k_precision

    maps = torch.tensor([[[4.0, 3.0, 2.0, 1.0]], [[1.0, 2.0, 3.0, 4.0]], [[1.0, 1.0, 1.0, 1.0]]])
    masks = torch.tensor([[[True, False, True, False]]] * 2 + [[[False, False, False, False]]])
    got = top_k_precision(maps, masks)  # top-2 pixels: 0, 1 (one in); 3, 2 (one in)
    torch.testing.assert_close(got[:2], torch.tensor([0.5, 0.5]))
    assert torch.isnan(got[2])  # an empty mask scores nothing
    perfect = top_k_precision(
        torch.tensor([[[0.0, 5.0, 0.1, 9.0]]]), torch.tensor([[[0, 1, 0, 1]]])
    )
    assert float(perfect[0]) == 1.0
