"""The N-stage study trains one interpreter per N and writes the table (tiny, 1 step each)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from workbench.models.bot import BoT, BoTConfig
from workbench.pretrained import save_pretrained


@pytest.mark.slow
def test_stage_study_writes_the_table_and_figure_aams(tiny_synth: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from workbench.train.aam import stage_study
    from workbench.train.config import TrainConfig

    torch.manual_seed(0)
    bot = BoT(BoTConfig.tiny(num_classes=6, input_size=(128, 64))).eval()
    save_pretrained(bot, tmp_path / "t", "model", "bot", bot.config.to_dict(),
                    dtype=torch.float32, input_size=[128, 64])  # fmt: skip
    cfg = TrainConfig.from_dict({
        "model": "interpreter", "model_config": {"adh_channels": 8},
        "data": {"height": 128, "width": 64, "batch_size": 8, "workers": 0},
        "optim": {"epochs": 1, "warmup_epochs": 0}, "eval_every": 0, "device": "cpu",
        "max_steps_per_epoch": 1,
    })  # fmt: skip
    cfg.save(tmp_path / "recipe.json")
    out = tmp_path / "study"
    table = stage_study(tmp_path / "t" / "model.safetensors", tiny_synth, out, stages=(1, 4),
                        config=tmp_path / "recipe.json", progress=False)  # fmt: skip
    assert table["N"].tolist() == [1, 4]
    assert {"adre", "x_map_e", "x_map_c", "rank1", "mAP", "target_rank1"} <= set(table.columns)
    saved = pd.read_csv(out / "table.csv")
    assert saved["N"].tolist() == [1, 4]
    assert json.loads((out / "table.json").read_text())[1]["N"] == 4
    assert (out / "n1" / "figure_aams.safetensors").exists()
    assert not (out / "n4" / "figure_aams.safetensors").exists()  # only N = 1, 3, 5 are kept
    aams = load_file(str(out / "n1" / "figure_aams.safetensors"))["aams"]
    assert aams.shape[1] == 26  # the Market attributes without age
    # the runs really share N stages: N = 4 trains only layer4 of its own
    card = json.loads((out / "n4" / "model.json").read_text())
    assert card["model_config"]["shared_stages"] == 4
