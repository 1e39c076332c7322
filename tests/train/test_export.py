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


# --- no overwritten weights, no half-written cards --------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tiny_synth, tmp_path_factory):
    run = tmp_path_factory.mktemp("export") / "run"
    Trainer(tiny_config(tiny_synth, epochs=1), run, progress=False).fit()
    return run


def test_export_refuses_an_existing_name_unless_overwrite(finished_run, tmp_path):
    folder = tmp_path / "weights"
    first = export_run(finished_run, "m", folder=folder, evaluate=False)
    before = (folder / "m.safetensors").read_bytes()
    with pytest.raises(
        FileExistsError, match=r"m\.json: weights named 'm' already exist.*--overwrite"
    ):
        export_run(finished_run, "m", folder=folder, evaluate=False)
    assert (folder / "m.safetensors").read_bytes() == before
    again = export_run(finished_run, "m", folder=folder, evaluate=False, overwrite=True)
    assert again["sha256"] == first["sha256"]


@pytest.mark.parametrize("name", ["../x", "a/b", "/tmp/x", "", ".hidden", "a..b"])
def test_export_names_are_plain_names(finished_run, tmp_path, name):
    folder = tmp_path / "weights"
    with pytest.raises(ValueError, match="need a plain name"):
        export_run(finished_run, name, folder=folder, evaluate=False)
    assert not (tmp_path / "x.json").exists() and not folder.exists()


def test_failed_export_leaves_nothing_that_would_be_listed(finished_run, tmp_path, monkeypatch):
    import workbench.evaluate.protocol as protocol
    from workbench.pretrained import list_pretrained

    def broken(*args, **kwargs):
        raise OSError("a gallery image cannot be read")

    monkeypatch.setattr(protocol, "evaluate_model", broken)
    folder = tmp_path / "weights"
    with pytest.raises(OSError, match="gallery image"):
        export_run(finished_run, "m", folder=folder)
    assert list(folder.iterdir()) == []  # before: a card without metrics, and the weights
    monkeypatch.setenv("WORKBENCH_WEIGHTS", str(folder))
    assert "m" not in [c["name"] for c in list_pretrained()]


def test_weights_cards_and_checkpoints_are_written_0644(finished_run, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        export_run(finished_run, "m", folder=tmp_path, evaluate=False)
    finally:
        os.umask(old)
    for path in (tmp_path / "m.safetensors", tmp_path / "m.json", finished_run / "checkpoint.pt",
                 finished_run / "model.safetensors", finished_run / "model.json"):  # fmt: skip
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
