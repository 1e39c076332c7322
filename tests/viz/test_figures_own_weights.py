"""``workbench figures`` as an author runs it: their own checkpoint (official BoT and FastReID
formats, written here with those projects' module names), their own Market-layout folder without
masks, keypoints or attributes. Every recipe must draw or refuse in one line (never a traceback,
never an empty ground-truth panel); a figure redrawn from its sidecar is the same bytes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from workbench.cli import main
from workbench.viz.figures import ROLE_MODELS, WEIGHTS, list_figures, make_figures
from workbench.viz.figures.samples import DATA_INPUTS

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
from source_models import BoTBaseline, FastBaseline, randomise

FOLDERS = ("bounding_box_train", "query", "bounding_box_test")


def plain_market_folder(synth: Path, out: Path) -> Path:
    """The images of ``synth`` alone: a Market-1501 folder as a user has it (no masks/,
    keypoints/, attribute file or synth.json)."""
    for folder in FOLDERS:
        shutil.copytree(synth / folder, out / folder)
    return out


def write_checkpoints(folder: Path) -> dict[str, Path]:
    """A BoT checkpoint (bare state dict, ResNet-50) and a FastReID one (``{"model": ...}``,
    SBS-style ResNet-50 IBN-a + non-local + GeM), randomised, saved as each project saves."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    bot = randomise(BoTBaseline("resnet50", 8, 11), 1)
    torch.save(bot.state_dict(), folder / "bot_model_120.pth")
    fast = randomise(FastBaseline("resnet50", 8, 9, ibn=True, nl=(0, 2, 3, 0), pool="gemP"), 2)
    torch.save({"model": fast.state_dict(), "iteration": 1234}, folder / "model_final.pth")
    return {"bot": folder / "bot_model_120.pth", "fastreid": folder / "model_final.pth"}


def run_recipe(name: str, args: list[str], out: Path, capsys) -> tuple[str, str, int]:
    """``workbench figures NAME ARGS`` in-process: (outcome, the line it printed, exit code)."""
    code = main(["figures", name, *args, "--out", str(out), "--format", "png", "--quiet",
                 "--device", "cpu"])  # fmt: skip
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text and "internal error" not in text, text
    lines = [ln for ln in text.splitlines() if name in ln and not ln.startswith("0 figure")]
    if (out / f"{name}.png").exists():
        assert code == 0, text
        return "draws", lines[0], code
    assert code == 1, text
    refusal = [ln for ln in lines if ln.startswith(("refused", "skipped"))]
    assert len(refusal) == 1, text  # one line saying why
    return refusal[0].split()[0], refusal[0], code


@pytest.fixture(scope="module")
def plain_data(tiny_synth, tmp_path_factory):
    return plain_market_folder(tiny_synth, tmp_path_factory.mktemp("mydata"))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return write_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(autouse=True)
def no_home_cache(tmp_path_factory, monkeypatch):
    # the cross-domain figure renders its second site under ~/.cache when the data is not ours
    monkeypatch.setenv("HOME", str(tmp_path_factory.getbasetemp() / "home"))


@pytest.mark.slow
@pytest.mark.parametrize("source", ["bot", "fastreid"])
def test_every_recipe_on_a_foreign_checkpoint_draws_or_refuses_in_one_line(
    source, plain_data, checkpoints, tmp_path, capsys
):
    """The checkpoint plays each recipe's first role. A role that takes any ReID model draws;
    one that must be another architecture refuses naming it; a figure that requires masks
    refuses naming them (masks; attributes for AAM supp. Fig. 2)."""
    outcomes = {}
    for recipe in list_figures():
        role = recipe.needs[0]
        args = ["--weights", f"{role}={checkpoints[source]}", "--data", str(plain_data)]
        outcome, line, _ = run_recipe(recipe.name, args, tmp_path, capsys)
        outcomes[recipe.name] = outcome
        if recipe.requires:
            assert outcome == "refused", line
            assert all(DATA_INPUTS[n][0] in line for n in recipe.requires), line
        elif recipe.name == "pair_correspondence" and source == "fastreid":
            # the exact decomposition needs an affine pooling; FastReID's GeM is not
            assert outcome == "refused" and "no affine pooling" in line, line
        elif ROLE_MODELS[role] is None:
            assert outcome == "draws", line
            sidecar = json.loads((tmp_path / f"{recipe.name}.json").read_text())
            assert sidecar["weights"][role]["weights"] == str(checkpoints[source].resolve())
        else:
            assert outcome == "refused", line
            assert f"must be a model of architecture {ROLE_MODELS[role]!r}" in line, line
            assert f"is of architecture 'bot' (imported from {source})" in line, line
    assert outcomes["ranklist_heatmaps"] == outcomes["daaf_fig5"] == "draws"


@pytest.mark.slow
def test_shipped_weights_on_a_folder_without_annotations(plain_data, tmp_path, capsys):
    """With the shipped weights, what needs no annotation draws (IANet with fixed body points,
    DAAF Fig. 7–8 without its ground-truth columns) and what requires one refuses naming it."""
    import matplotlib.image as mpimg

    outcomes = {}
    for recipe in list_figures():
        outcome, line, _ = run_recipe(recipe.name, ["--data", str(plain_data)], tmp_path, capsys)
        outcomes[recipe.name] = (outcome, line)
    refused = {n for n, (o, _) in outcomes.items() if o == "refused"}
    # ranking_contrast: on 6 test identities the shipped BoT ranks every query's match first
    assert refused - {"ranking_contrast"} == {
        "faithfulness",
        "aam_supp_fig2",
        "counterfactual_game",
    }, outcomes
    assert "synth.json" in outcomes["counterfactual_game"][1]
    assert "masks" in outcomes["faithfulness"][1]
    assert "attribute file" in outcomes["aam_supp_fig2"][1]
    assert all(o == "draws" for n, (o, _) in outcomes.items() if n not in refused), outcomes
    assert mpimg.imread(tmp_path / "daaf_fig78.png").shape[0] > 100


def test_daaf_branches_figure_drops_missing_ground_truth(tiny_synth, plain_data, tmp_path):
    """Fig. 7–8 has a ground-truth column only for what the data has: 4 columns on the
    synthetic data (parts, HAB, keypoints, PAB), 2 without annotations, and no blank tile."""
    from workbench.data.readers import load_split
    from workbench.models import build_model, model_config_class
    from workbench.viz.figures.daaf import daaf_fig78

    torch.manual_seed(0)
    model = build_model("daaf", model_config_class("daaf").tiny()).eval()
    for root, columns in ((tiny_synth, 4), (plain_data, 2)):
        fig = daaf_fig78({"daaf": model}, load_split(root), seed=0, n=2)
        tiles = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        assert len(tiles) == 2 * columns
        assert all(ax.images for ax in tiles), "a tile without a picture"
        title = fig._suptitle.get_text()
        assert ("no ground truth" in title) == (root == plain_data), title


def test_receptive_fields_fall_back_to_fixed_body_points():
    import numpy as np

    from workbench.viz.figures.ianet import FIXED_POINTS, body_points

    assert body_points(None, None, (256, 128)) == FIXED_POINTS
    kp = np.zeros((17, 3), np.float32)
    kp[0] = (64, 32, 2)  # nose at x = 64, y = 32 of a 256×128 image
    kp[15] = (50, 240, 2)
    parts = np.zeros((256, 128), np.uint8)
    parts[100:120, 10:30] = 5  # a backpack
    points = body_points(kp, parts, (256, 128))
    assert points["head"] == (32 / 256, 64 / 128)
    assert points["shoe"] == (240 / 256, 50 / 128)
    assert points["bag"] == pytest.approx((109.5 / 256, 19.5 / 128))
    assert "torso" not in points  # no shoulder or hip annotated


def test_redraw_from_sidecar_is_byte_identical(tiny_synth, tmp_path, capsys):
    """Drawn from an exported card by path, then redrawn with ``--from`` elsewhere: every
    format is the same bytes; weights that changed since are refused."""
    from workbench.models import build_model, model_config_class
    from workbench.pretrained import save_pretrained

    torch.manual_seed(0)
    config = model_config_class("bot").tiny()
    save_pretrained(build_model("bot", config), tmp_path / "w", "mine", "bot", config.to_dict(),
                    input_size=[128, 64])  # fmt: skip
    card = tmp_path / "w" / "mine.json"
    first, second = tmp_path / "first", tmp_path / "second"
    args = ["--weights", f"bot={card}", "--data", str(tiny_synth), "--seed", "2"]
    code = main(["figures", "ranklist_heatmaps", *args, "--out", str(first), "--format",
                 "png,pdf,svg", "--dpi", "120", "--quiet", "--device", "cpu"])  # fmt: skip
    assert code == 0
    sidecar = first / "ranklist_heatmaps.json"
    record = json.loads(sidecar.read_text())
    assert (
        record["seed"] == 2 and record["dpi"] == 120 and record["formats"] == ["png", "pdf", "svg"]
    )
    assert record["data"] == str(tiny_synth.resolve())
    assert record["weights"]["bot"]["sha256"] == json.loads(card.read_text())["sha256"]
    capsys.readouterr()
    assert main(["figures", "--from", str(sidecar), "--out", str(second)]) == 0
    log = capsys.readouterr().out
    assert log.count("byte-identical") == 3, log
    for suffix in ("png", "pdf", "svg"):
        a, b = (d / f"ranklist_heatmaps.{suffix}" for d in (first, second))
        assert a.read_bytes() == b.read_bytes(), suffix
    # the PNG at 120 dpi is smaller than at the default 200
    assert (first / "ranklist_heatmaps.png").stat().st_size > 1000

    weights = tmp_path / "w" / "mine.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    card.write_text(card.read_text().replace(record["weights"]["bot"]["sha256"], "0" * 64))
    assert main(["figures", "--from", str(sidecar), "--out", str(second)]) == 1
    assert "changed since the figure was drawn" in capsys.readouterr().err


def test_weights_roles_are_checked_before_drawing(tiny_synth, tmp_path):
    from workbench.data.readers import load_split

    split = load_split(tiny_synth)
    with pytest.raises(ValueError, match="no role 'bott'"):
        make_figures(["daaf_fig9"], split, tmp_path, weights={"bott": "x"}, progress=False)
    with pytest.raises(ValueError, match="none of the figures asked for shows role 'sa'"):
        make_figures(["daaf_fig9"], split, tmp_path, weights={"sa": "x"}, progress=False)
    with pytest.raises(ValueError, match="need one or more of pdf, png, svg"):
        make_figures(["daaf_fig9"], split, tmp_path, formats="png,jpg", progress=False)
    assert set(ROLE_MODELS) == set(WEIGHTS)


def test_sidecar_of_a_model_passed_in_python_cannot_be_redrawn(tiny_synth, tmp_path):
    from workbench.data.readers import load_split
    from workbench.models import build_model, model_config_class
    from workbench.viz.figures.sidecar import redraw

    torch.manual_seed(0)
    model = build_model("daaf", model_config_class("daaf").tiny()).eval()
    made = make_figures(["daaf_fig9"], load_split(tiny_synth), tmp_path, models={"daaf": model},
                        formats="png", progress=False, log=lambda _: None)  # fmt: skip
    assert [p.name for p in made["daaf_fig9"]] == ["daaf_fig9.png"]
    with pytest.raises(ValueError, match="drawn from a model passed in Python"):
        redraw(tmp_path / "daaf_fig9.json", tmp_path / "again")


def test_commands_without_data_render_the_default_dataset(tmp_path, monkeypatch, capsys):
    """No ``--data``: the default synthetic dataset is rendered on first use, saying so, and
    reused afterwards, by ``figures`` and ``explain`` (a 4-identity stand-in for the default)."""
    import importlib

    generate = importlib.import_module("workbench.data.synth.generate")  # the package's
    # attribute of that name is the function generate()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(generate, "DEFAULT_IDS", 4)
    original = generate.ensure_synthetic
    monkeypatch.setattr(
        generate, "ensure_synthetic",
        lambda root, **kw: original(root, ids=4, height=128, width=64, progress=False),
    )  # fmt: skip
    args = ["figures", "daaf_fig9", "--format", "png", "--quiet", "--device", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "rendering the default synthetic dataset" in out and "data/synth" in out
    assert (tmp_path / "outputs" / "figures" / "daaf_fig9.png").exists()
    assert main(args) == 0
    assert "using the synthetic dataset in data/synth (4 identities)" in capsys.readouterr().out
    report = ["explain", "--weights", "bot_r18w16_synth", "--pairs", "2", "--steps", "2",
              "--report", "faith", "--quiet", "--device", "cpu"]  # fmt: skip
    assert main(report) == 0
    assert "using the synthetic dataset in data/synth" in capsys.readouterr().out
    assert (tmp_path / "faith" / "summary.csv").exists()


def test_list_names_the_roles_and_data_of_each_figure(capsys):
    assert main(["figures", "--list"]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()[1:]}
    assert set(lines) == {r.name for r in list_figures()}
    assert " masks " in lines["faithfulness"] and "[daaf]" in lines["faithfulness"]
    assert "[masks], [keypoints]" in lines["daaf_fig78"]
    assert " attributes " in lines["aam_supp_fig2"]


def test_a_figure_that_cannot_be_drawn_is_refused_and_the_others_still_are(
    tiny_synth, tmp_path, monkeypatch
):
    """A recipe's ValueError (e.g. an ExplainError for a model without what the method needs)
    is one 'refused' line; the next figure is drawn."""
    import dataclasses

    import workbench.viz.figures as figures
    from workbench.data.readers import load_split
    from workbench.explain.base import ExplainError
    from workbench.models import build_model, model_config_class

    def cannot(models, split, *, seed=0):
        raise ExplainError("gradcam does not apply to X: it has no layer of kind stage")

    broken = dataclasses.replace(figures.get_figure("daaf_fig1"), fn=cannot)
    monkeypatch.setitem(figures._FIGURES, "daaf_fig1", broken)
    torch.manual_seed(0)
    model = build_model("daaf", model_config_class("daaf").tiny()).eval()
    log: list[str] = []
    made = make_figures(["daaf_fig1", "daaf_fig9"], load_split(tiny_synth), tmp_path,
                        models={"daaf": model}, formats="png", progress=False, log=log.append)  # fmt: skip
    assert list(made) == ["daaf_fig9"]
    assert log[0] == (
        "refused daaf_fig1 (DAAF Fig. 1): gradcam does not apply to X: it has no layer of kind stage"
    )


def test_bad_weights_and_format_options_fail_while_parsing(capsys):
    with pytest.raises(SystemExit):
        main(["figures", "daaf_fig9", "--weights", "daaf"])
    assert "write ROLE=NAME_OR_PATH" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["figures", "daaf_fig9", "--format", "png,tiff"])
    assert "need one or more of pdf, png, svg" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["figures", "daaf_fig9", "--dpi", "0"])
    assert "need a positive number" in capsys.readouterr().err
