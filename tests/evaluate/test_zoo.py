"""``workbench zoo``: one table of shipped models, on a tiny dataset with tiny models."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from workbench.cli import main
from workbench.evaluate.protocol import evaluate_model
from workbench.evaluate.zoo import ZOO_COLUMNS, inference_flops, inference_parameters
from workbench.models import build_model
from workbench.models.sa import SAConfig
from workbench.pretrained import load_pretrained, save_pretrained


class _TwoHeads(nn.Module):
    """Eval uses ``a``; ``b`` is a training-only branch."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(4, 100)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) if not self.training else self.b(x)


def test_inference_parameters_and_flops_by_hand() -> None:
    model = _TwoHeads()
    x = torch.randn(1, 4)
    assert inference_parameters(model, x) == 4 * 3 + 3
    assert inference_flops(model, x) == 2 * 4 * 3
    # SA at inference: the backbone only (DS branches and part classifiers are training-only)
    sa = build_model("sa", **SAConfig.tiny().to_dict())
    images = torch.randn(1, 3, 96, 32)
    assert inference_parameters(sa, images) == sum(p.numel() for p in sa.backbone.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        sa.backbone.forward_features(images)
    assert inference_flops(sa, images) == counter.get_total_flops()


def test_zoo_table_on_tiny_models(tiny_synth, tmp_path, monkeypatch) -> None:
    weights = tmp_path / "weights"
    torch.manual_seed(0)
    bot = build_model("bot", backbone="resnet18", width=8, num_classes=6, input_size=(64, 32))
    save_pretrained(bot, weights, "tiny_bot", "bot", bot.config.to_dict(), input_size=[64, 32])
    sa = build_model("sa", **SAConfig.tiny(num_classes=6, width=8).to_dict())
    save_pretrained(sa, weights, "tiny_sa", "sa", sa.config.to_dict(), input_size=[96, 32])
    monkeypatch.setenv("WORKBENCH_WEIGHTS", str(weights))
    out = tmp_path / "zoo"
    argv = ["zoo", "--data", str(tiny_synth), "--out", str(out), "--repeats", "1", "--quiet"]
    assert main([*argv, "--weights", "tiny_bot", "tiny_sa"]) == 0
    table = pd.read_csv(out / "zoo.csv")
    assert list(table.columns) == ZOO_COLUMNS
    assert list(table.model) == ["tiny_bot", "tiny_sa"]
    assert list(table["input"]) == ["64x32", "96x32"]
    # the table's metrics are the evaluator's, at the card's input size
    from workbench.data.readers import load_split

    expected = evaluate_model(
        load_pretrained("tiny_sa"), load_split(tiny_synth), 96, 32, progress=False
    ).headline()
    row = table.set_index("model").loc["tiny_sa"]
    assert row.rank1 == round(expected["rank1"], 1)
    assert row.mAP == round(expected["mAP"], 1)
    assert row.rank1_cross_camera == round(expected["rank1_cross_camera"], 1)
    assert row.params_M < row.params_total_M  # DS / part heads are not run at inference
    assert (table.GFLOPs > 0).all() and (table.ms_per_image_b32 > 0).all()
    md = (out / "zoo.md").read_text()
    assert "| model | architecture |" in md and "tiny_sa" in md
