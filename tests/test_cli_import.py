"""workbench eval --weights FILE --source S and workbench export --from FILE on imported files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent / "models"))
from source_models import TorchreidResNet, randomise

from workbench.cli import main


def test_eval_and_export_take_imported_checkpoints(
    tiny_synth: Path, tmp_path: Path, capsys
) -> None:
    from workbench.data.readers import load_split
    from workbench.evaluate.protocol import evaluate_model
    from workbench.models import import_checkpoint

    torch.manual_seed(0)
    source = randomise(TorchreidResNet("resnet18", 4, 6, 16), 3)
    ckpt = tmp_path / "model.pth.tar-60"
    torch.save({"state_dict": source.state_dict(), "epoch": 60}, ckpt)
    size = ["--input-size", "128", "64"]
    common = ["--data", str(tiny_synth), "--workers", "0", "--device", "cpu", "--quiet"]
    main(["eval", "--weights", str(ckpt), "--source", "torchreid", *size, *common,
          "--json", str(tmp_path / "a.json")])  # fmt: skip
    a = json.loads((tmp_path / "a.json").read_text())
    expected = evaluate_model(
        import_checkpoint(ckpt, input_size=(128, 64)), load_split(tiny_synth), 128, 64,
        device="cpu", workers=0, progress=False,
    ).headline()  # fmt: skip
    assert a["weights"] == ckpt.name
    for k, v in expected.items():
        assert a[k] == v, k

    main(["export", "--from", str(ckpt), "--name", "mine", "--folder", str(tmp_path / "w"), *size])
    card = json.loads((tmp_path / "w" / "mine.json").read_text())
    assert card["source"] == "torchreid" and card["model_config"]["fc_dim"] == 16
    assert card["input_size"] == [128, 64]
    main(["eval", "--weights", str(tmp_path / "w" / "mine.json"), *common,
          "--json", str(tmp_path / "b.json")])  # fmt: skip
    b = json.loads((tmp_path / "b.json").read_text())
    assert {k: b[k] for k in expected} == {k: a[k] for k in expected}
    assert "wrote" in capsys.readouterr().out
