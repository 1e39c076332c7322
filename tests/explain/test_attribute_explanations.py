"""Pair explanations and average AAMs of the interpreter (hand-worked and naive checks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.evaluate.interpretations import average_aams
from workbench.explain.attributes import explain_pair
from workbench.models import build_model
from workbench.models.interpreter import InterpreterConfig


def test_average_aams_hand_worked() -> None:
    # 3 images, 1 attribute, 1x3 maps; top-1/3 of 3 cells = the single largest cell
    aams = torch.tensor([[[[5.0, 1.0, 0.0]]], [[[0.0, 1.0, 4.0]]], [[[2.0, 9.0, 1.0]]]])
    labels = np.array([[1], [1], [0]])
    out = average_aams(aams, labels)
    assert out.shape == (1, 2, 1, 3)
    # positives: binary maps [1,0,0] + [0,0,1] = [1,0,1] -> min-max [1,0,1]
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([1.0, 0.0, 1.0]))
    # negatives: [0,1,0] -> [0,1,0]
    torch.testing.assert_close(out[0, 1, 0], torch.tensor([0.0, 1.0, 0.0]))


def test_average_aams_skip_unknown_and_empty_sets() -> None:
    aams = torch.rand(2, 2, 2, 2)
    out = average_aams(aams, np.array([[-1, 1], [-1, 1]]))
    assert torch.equal(out[0], torch.zeros(2, 2, 2))  # attribute 0: nobody annotated
    assert torch.equal(out[1, 1], torch.zeros(2, 2))  # attribute 1: no negative image


def test_explain_pair_shows_ground_truth_and_top_k() -> None:
    torch.manual_seed(0)
    model = build_model("interpreter", InterpreterConfig.tiny()).eval()
    x, y = torch.randn(3, 64, 32), torch.randn(3, 64, 32)
    ax = np.zeros(27, np.int64)
    ay = ax.copy()
    ay[5] = 1  # hat differs (schema column 5)
    ex = explain_pair(model, x, y, k=2, attributes_x=ax, attributes_y=ay)
    row = ex.table.set_index("attribute").loc["hat"]
    assert (row["value_x"], row["value_y"], bool(row["exclusive"])) == (0, 1, True)
    assert ex.table["exclusive"].sum() == 1
    with torch.no_grad():
        z = model.target(torch.stack([x, y]))
    assert ex.distance == pytest.approx(float((z[0] - z[1]).norm()), rel=1e-5)
    assert len(ex.top) == 2 and ex.aams_x.shape == (2, 4, 2)
    i = model.attribute_names.index(ex.top[0])
    with torch.no_grad():
        aams = model.interpret(torch.stack([x, y])).aams
    torch.testing.assert_close(ex.aams_y[0], aams[1, i])


def test_figures_draw(tmp_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from workbench.viz.attributes import plot_average_aams, plot_pair_explanation

    torch.manual_seed(0)
    model = build_model("interpreter", InterpreterConfig.tiny()).eval()
    ex = explain_pair(model, torch.randn(3, 64, 32), torch.randn(3, 64, 32), k=3)
    plot_pair_explanation(ex).savefig(tmp_path / "pair.png")
    avg = average_aams(torch.rand(4, 6, 4, 2), np.random.default_rng(0).integers(0, 2, (4, 6)))
    plot_average_aams(avg, model.attribute_names, columns=3).savefig(tmp_path / "avg.png")
    assert (tmp_path / "pair.png").stat().st_size > 0 and (tmp_path / "avg.png").exists()
