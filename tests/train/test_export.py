"""Exporting a run: fp16 weights + card whose metrics `workbench eval` reproduces."""

from __future__ import annotations

import json

import pytest
from test_trainer import tiny_config

from workbench.cli import main
from workbench.pretrained import sha256_file
from workbench.train.config import TrainConfig
from workbench.train.export import export_run
from workbench.train.trainer import Trainer


def test_export_card_is_complete_and_reproducible(tiny_synth, tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(tiny_config(tiny_synth, epochs=1), run, progress=False).fit()
    card = export_run(run, "tiny_bot", folder=tmp_path / "weights")
    weights = tmp_path / "weights" / "tiny_bot.safetensors"
    assert card["sha256"] == sha256_file(weights) and card["dtype"] == "float16"
    assert card["data"]["seed"] == 1 and card["data"]["ids"] == 12
    assert card["input_size"] == [64, 32]
    assert "workbench train --config weights/tiny_bot.json" in card["reproduce"]
    # the card doubles as the config that reproduces the run
    reloaded = TrainConfig.load(tmp_path / "weights" / "tiny_bot.json")
    assert reloaded == tiny_config(tiny_synth, epochs=1)

    out = tmp_path / "eval.json"
    main(
        [
            "eval",
            "--weights",
            str(weights),
            "--data",
            str(tiny_synth),
            "--json",
            str(out),
            "--quiet",
            "--workers",
            "0",
        ]
    )
    measured = json.loads(out.read_text())
    for key in ("rank1", "mAP", "mINP"):
        assert measured[key] == pytest.approx(card["metrics"][key], abs=0.01)
    capsys.readouterr()


def test_export_is_a_cli_command(tiny_synth, tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(tiny_config(tiny_synth, epochs=1), run, progress=False).fit()
    assert (
        main(["export", "--run", str(run), "--name", "m", "--folder", str(tmp_path), "--quiet"])
        == 0
    )
    assert (tmp_path / "m.safetensors").exists() and '"rank1"' in capsys.readouterr().out
