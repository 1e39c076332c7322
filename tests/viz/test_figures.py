"""Every paper-figure recipe on tiny models and data: structure (panels, titles, shared scales),
and ``make_figures`` writing a PDF and a PNG per figure or skipping what is not shipped."""

from __future__ import annotations

import pytest
import torch

from workbench.data.readers import load_split
from workbench.models import build_model, model_config_class
from workbench.viz.figures import DEFAULT_ZOO, WEIGHTS, ZOOS, list_figures, make_figures
from workbench.viz.ranklist import GREEN, RED

ROLES = {
    "bot": ("bot", {}),
    "daaf": ("daaf", {}),
    "sa": ("sa", {}),
    "sa_plain": ("sa", {"sa_stages": ()}),
    "rga": ("rga", {}),
    "rga_norel": ("rga", {"relations": False}),
    "rga_cbam": ("rga", {"attention": "cbam"}),
    "ianet": ("ianet", {}),
    "interpreter": ("interpreter", {}),
    "interpreter_n1": ("interpreter", {"shared_stages": 1}),
    "interpreter_n5": ("interpreter", {"shared_stages": 5}),
}


@pytest.fixture(scope="module")
def tiny_models():
    models = {}
    for role, (name, overrides) in ROLES.items():
        torch.manual_seed(0)
        models[role] = build_model(name, model_config_class(name).tiny(**overrides)).eval()
    return models


@pytest.fixture(scope="module")
def split(tiny_synth):
    return load_split(tiny_synth)


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


@pytest.mark.parametrize("recipe", list_figures(), ids=lambda r: r.name)
def test_recipe_draws_on_tiny_models(recipe, tiny_models, split):
    if any(role not in tiny_models for role in recipe.needs):
        pytest.skip(f"no tiny stand-in for {recipe.needs}")
    fig = recipe.fn({r: tiny_models[r] for r in recipe.needs}, split, seed=1)
    titles = [ax.get_title() for ax in fig.axes] + [
        fig._suptitle.get_text() if fig._suptitle else ""
    ]
    assert (
        any(recipe.figure.split()[-1] in t or recipe.paper in t for t in titles)
        or recipe.paper == "workbench"
    )
    if recipe.name != "faithfulness":
        assert len(image_axes(fig)) >= 4  # a grid of tiles, not an empty figure
        bars = [ax for ax in fig.axes if not ax.images and ax.get_label() == "<colorbar>"]
        assert bars, "compared values need a colour bar"


def test_one_colour_scale_per_panel_group(tiny_models, split):
    """Every heat tile of the rank-list figure shares one scale: its colour bar's limits."""
    from workbench.viz.figures.beyond import ranklist_heatmaps

    fig = ranklist_heatmaps({"bot": tiny_models["bot"]}, split, seed=0, queries=2, topk=3)
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1


def test_make_figures_writes_pdf_and_png_and_skips_missing(
    tiny_models, split, tmp_path, monkeypatch
):
    monkeypatch.setitem(ZOOS[DEFAULT_ZOO], "rga_cbam", "rga_cbam_not_shipped")  # shipped
    log: list[str] = []
    made = make_figures(
        ["daaf_fig9", "sa_fig5", "rga_supp_fig1"],
        split,
        tmp_path,
        models={k: tiny_models[k] for k in ("daaf", "sa", "sa_plain")},  # one input size
        progress=False,
        log=log.append,
    )
    assert set(made) == {"daaf_fig9", "sa_fig5"}
    for paths in made.values():
        assert [p.suffix for p in paths] == [".pdf", ".png"]
        assert all(p.stat().st_size > 1000 for p in paths)
    skipped = [line for line in log if line.startswith("skipped rga_supp_fig1")]
    assert skipped and "rga_cbam_not_shipped" in skipped[0] and "workbench train" in skipped[0]


def test_the_default_zoo_is_complete_and_the_command_line_takes_it():
    """Every role of the default zoo has a shipped card (so ``workbench figures --all`` draws all
    of them), and ``workbench figures`` without ``--zoo`` uses it."""
    from workbench.cli import build_parser
    from workbench.pretrained import list_pretrained

    shipped = {c["name"] for c in list_pretrained()}
    assert DEFAULT_ZOO == "parts" and sorted(set(ZOOS[DEFAULT_ZOO].values()) - shipped) == []
    assert build_parser().parse_args(["figures", "--all"]).zoo is None  # → DEFAULT_ZOO


def test_pretrained_zoo_names_its_own_cards_and_how_to_train_them(split, tmp_path, monkeypatch):
    """zoo="pretrained" looks for each role's NAME_pt card; a missing one is skipped with the
    scratch card's recipe started from the pretrained backbone (RGA at its official lr)."""
    assert ZOOS["pretrained"]["rga"] == "rga_r18w16_256_pt"
    assert set(ZOOS["pretrained"]) == set(WEIGHTS)
    monkeypatch.setitem(ZOOS["pretrained"], "rga_cbam", "rga_cbam_not_shipped_pt")
    monkeypatch.setitem(ZOOS["pretrained"], "ianet", "ianet_not_shipped_pt")
    log: list[str] = []
    made = make_figures(
        ["rga_supp_fig1", "ianet_fig8"], split, tmp_path, zoo="pretrained", progress=False,
        log=log.append,
    )  # fmt: skip
    assert made == {}
    cbam, ianet = log
    assert cbam.startswith("skipped rga_supp_fig1") and "rga_cbam_not_shipped_pt" in cbam
    assert "--config weights/rga_cbam_r18w16_256.json --init pretrain_r18w16 --lr 8e-4" in cbam
    assert "--init pretrain_r18w16 --out runs/ianet_not_shipped_pt" in ianet
    monkeypatch.setitem(ZOOS["pretrained"], "interpreter", "interpreter_not_shipped_pt")
    make_figures(["aam_fig1"], split, tmp_path, zoo="pretrained", progress=False, log=log.append)
    assert """--target bot_r18w16_256_pt --model-config '{"distill_weight": 5.0}'""" in log[-1]
    with pytest.raises(ValueError, match="zoo='imagenet'"):
        make_figures(["ianet_fig8"], split, tmp_path, zoo="imagenet", progress=False)


def test_the_parts_zoo_starts_from_its_own_backbone(split, tmp_path, monkeypatch):
    from workbench.cli import build_parser

    assert ZOOS["parts"]["rga"] == "rga_r18w16_256_pt_parts" and set(ZOOS["parts"]) == set(WEIGHTS)
    assert build_parser().parse_args(["figures", "--all", "--zoo", "parts"]).zoo == "parts"
    monkeypatch.setitem(ZOOS["parts"], "rga_cbam", "rga_cbam_not_shipped_pt_parts")
    monkeypatch.setitem(ZOOS["parts"], "interpreter", "interpreter_not_shipped_pt_parts")
    log: list[str] = []
    make_figures(
        ["rga_supp_fig1", "aam_fig1"], split, tmp_path, zoo="parts", progress=False,
        log=log.append,
    )  # fmt: skip
    cbam = next(line for line in log if "rga_cbam_not_shipped_pt_parts" in line)
    assert "--init pretrain_r18w16_parts256 --lr 8e-4 --out runs/rga_cbam_not_shipped" in cbam
    aam = next(line for line in log if "interpreter_not_shipped_pt_parts" in line)
    assert f"--target {ZOOS['parts']['bot']} " in aam


def test_cross_domain_figure_explains_site_one_pairs(tiny_models, split, tiny_synth):
    """supp. Fig. 3 renders the same-seed dataset at site 1 beside the split and explains pairs
    from it: two true matches then another person, each an image row pair with top-3 AAMs."""
    import json

    from workbench.viz.figures.aam import aam_supp_fig3

    fig = aam_supp_fig3({"interpreter": tiny_models["interpreter"]}, split, seed=0)
    site = tiny_synth.with_name(f"{tiny_synth.name}_site1")
    assert json.loads((site / "synth.json").read_text())["domain"] == 1
    assert len(image_axes(fig)) == 3 * 2 * 4  # 3 pairs × 2 images × (image + 3 AAMs)
    texts = [t.get_text() for t in fig.texts]
    assert sum(t.startswith("same person") for t in texts) == 2
    assert sum(t.startswith("different people") for t in texts) == 1


def test_stage_figure_shows_each_n_on_the_same_images(tiny_models, split):
    from workbench.viz.figures.aam import aam_supp_fig4

    roles = {r: tiny_models[r] for r in ("interpreter_n1", "interpreter", "interpreter_n5")}
    fig = aam_supp_fig4(roles, split, seed=0, n=2, attributes=("hat", "upred"))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    heads = [t.split("\n")[0] for t in titles if t.startswith("N =")]
    assert heads == [f"N = {n}" for n in (1, 1, 3, 3, 5, 5)]  # one header row, N in order
    assert len(image_axes(fig)) == 2 * (1 + 3 * 2)
    swapped = {**roles, "interpreter_n5": roles["interpreter_n1"]}
    with pytest.raises(ValueError, match="interpreter_n5 shares 1 stages, not 5"):
        aam_supp_fig4(swapped, split, seed=0, n=1)


def test_cia_channels_are_those_most_inside_each_part():
    """part_channels against hand-made maps: channel c responds only inside one region."""
    import numpy as np

    from workbench.viz.figures.ianet import part_channels

    parts = np.zeros((2, 8, 8), np.uint8)
    parts[:, :2] = 1  # head: top quarter
    parts[:, 6:] = 4  # shoes: bottom quarter
    parts[1, 3:5, 4:8] = 6  # a bag in the second image only
    maps = torch.full((2, 5, 4, 4), 0.1)
    maps[:, 2, :1] = 5.0  # channel 2: the head rows
    maps[:, 0, 3:] = 5.0  # channel 0: the shoe rows
    maps[1, 4, 1:3, 2:] = 5.0  # channel 4: where the bag is
    maps[:, 3] = -1.0  # negative everywhere: no ReLU mass, never chosen
    assert part_channels(maps, list(parts)) == {"head": 2, "bag": 4, "shoes": 0}
    # no bag anywhere: the region is left out; each region still gets its own channel
    no_bag = parts.copy()
    no_bag[no_bag == 6] = 2
    maps[:, 2] = 0.1  # channel 2 flat; channel 0 fires on the head and the shoes alike
    maps[:, 0, :1] = 5.0
    # head takes channel 0 (share ~0.49 vs 0.25 flat); shoes, with 0 taken, the first flat one
    assert part_channels(maps, list(no_bag)) == {"head": 0, "shoes": 1}


def test_sa_failure_figure_picks_the_query_only_sa_gets_right(tiny_models, split, monkeypatch):
    """Fig. 6 shows the query whose nearest cross-camera image is right with SA and another
    person with plain GAP (both right within the camera), framed green / red accordingly."""
    import numpy as np

    import workbench.evaluate.report as report
    from workbench.viz.figures.sa import sa_fig6

    q, g = split.query, split.gallery
    qp, qc, gp, gc = q.pid.to_numpy(), q.camid.to_numpy(), g.pid.to_numpy(), g.camid.to_numpy()
    same = (gp[None] == qp[:, None]) & (gc[None] == qc[:, None])
    cross = (gp[None] == qp[:, None]) & (gc[None] != qc[:, None])
    other = (gp[None] != qp[:, None]) & (gp[None] > 0) & (gc[None] != qc[:, None])
    r = int(np.flatnonzero(same.any(1) & cross.any(1) & other.any(1))[-1])
    dist = {}
    for role, impostor in (("sa", 3.0), ("sa_plain", 1.5)):
        d = np.full((len(q), len(g)), 10.0)
        d[r, np.flatnonzero(same[r])[0]] = 1.0
        d[r, np.flatnonzero(cross[r])[0]] = 2.0
        d[r, np.flatnonzero(other[r])[0]] = impostor
        dist[id(tiny_models[role])] = d
    monkeypatch.setattr(report, "split_distances", lambda model, *a, **k: dist[id(model)])
    models = {role: tiny_models[role] for role in ("sa", "sa_plain")}
    fig = sa_fig6(models, split, seed=0, n=1)
    assert fig._suptitle.get_text().startswith("SA Fig. 6: plain GAP fails across cameras where")
    axes = image_axes(fig)
    assert len(axes) == 9 and axes[0].get_title().endswith(f"id {qp[r]}, cam {qc[r] + 1}")

    def frame(ax):
        return tuple(np.round(ax.spines["left"].get_edgecolor()[:3], 3))

    green, red = (tuple(np.round(np.array(c) / 255, 3)) for c in (GREEN, RED))
    # rows: images, GAP+SA, GAP; columns: query, same camera, other camera
    assert [frame(axes[i]) for i in (4, 5, 7, 8)] == [green, green, green, red]


def test_counterfactual_figure_has_a_row_per_factor_and_a_column_per_method(tiny_models, split):
    """Nine edits of one query (rendered in memory: nothing is written beside the data), each
    with the original, the counterfactual (titled with its Δ), the mask and every method."""
    from workbench.data.synth.counterfactual import FACTORS
    from workbench.evaluate.counterfactual import DEFAULT_METHODS
    from workbench.explain import get_explainer
    from workbench.viz.figures.counterfactual import counterfactual_game_figure

    before = sorted(p.name for p in split.root.iterdir())
    fig = counterfactual_game_figure({"bot": tiny_models["bot"]}, split, seed=0)
    methods = [m for m in DEFAULT_METHODS if get_explainer(m.method).supports(tiny_models["bot"])]
    assert len(methods) == len(DEFAULT_METHODS)  # the tiny BoT takes every default method
    tiles = image_axes(fig)
    assert len(tiles) == len(FACTORS) * (3 + len(methods))
    titles = [ax.get_title() for ax in tiles]
    assert sum("Δ=" in t for t in titles) == len(FACTORS)
    assert sum(t.startswith("E=") or "\nE=" in t for t in titles) == len(FACTORS) * len(methods)
    assert sorted(p.name for p in split.root.iterdir()) == before


def test_person_energy_is_the_faithfulness_report_of_each_layer(tiny_models, split):
    """The panel's numbers: one row per role and layer, the report's person energy and chance."""
    from workbench.evaluate.report import faithfulness_report
    from workbench.viz.figures.beyond import person_energy
    from workbench.viz.figures.samples import input_size, matched_subsplit

    bot = tiny_models["bot"]
    table = person_energy({"bot": bot}, split, seed=0, pairs=4, layers=("layer2", "layer4"))
    assert list(table.layer) == ["layer2", "layer4"] and set(table.role) == {"bot"}
    small = matched_subsplit(split, 4, 0)
    report = faithfulness_report(
        bot, small, "gradcam", layer="layer4", input_size=input_size(bot), pairs=None, seed=0,
        curves=False, progress=False, device="cpu",
    )  # fmt: skip
    row = table.iloc[1]
    assert row.energy == pytest.approx(report.summary.loc["energy_on_person"].mean())
    assert row.chance == pytest.approx(report.summary.loc["chance"].mean())
    assert row.ratio == pytest.approx(row.energy / row.chance)
    assert table.energy.iloc[0] != pytest.approx(row.energy)  # the layer is passed on
