"""The command line as a user runs it: train (killed and resumed), eval with --json."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from workbench.cli import main

TRAIN_ARGS = [
    "--model-config", '{"backbone": "resnet18", "width": 8}', "--height", "64", "--width", "32",
    "--batch-size", "16", "--workers", "0", "--eval-every", "0", "--seed", "2", "--quiet",
]  # fmt: skip


def _train_cmd(data: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "workbench.cli", "train", "--data", str(data), "--out", str(out),
        "--epochs", str(epochs), *TRAIN_ARGS, *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_train_killed_mid_epoch_resumes_to_the_same_weights(tiny_synth, tmp_path):
    straight = tmp_path / "straight"
    subprocess.run(_train_cmd(tiny_synth, straight, 3), check=True, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(tiny_synth, killed, 3), stderr=subprocess.DEVNULL)
    log = killed / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and log.read_text().count("\n") >= 1):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # inside epoch 2: its first steps are running
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = torch.load(killed / "checkpoint.pt", weights_only=True)["epoch"]
    assert 1 <= done < 3
    subprocess.run(_train_cmd(tiny_synth, killed, 3, "--resume"), check=True, capture_output=True)

    a = load_file(straight / "model.safetensors")
    b = load_file(killed / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    ma = json.loads((straight / "model.json").read_text())["metrics"]
    mb = json.loads((killed / "model.json").read_text())["metrics"]
    assert ma == mb


def test_eval_writes_the_metrics_it_prints(tiny_synth, tmp_path, capsys):
    from workbench.models.registry import build_model
    from workbench.pretrained import save_pretrained

    model = build_model("bot", backbone="resnet18", width=8, num_classes=6)
    save_pretrained(model, tmp_path, "m", "bot", model.config.to_dict(), input_size=[64, 32])
    out = tmp_path / "metrics.json"
    args = ["eval", "--weights", str(tmp_path / "m.safetensors"), "--data", str(tiny_synth)]
    assert main([*args, "--json", str(out), "--quiet", "--workers", "0"]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads(out.read_text())
    assert {"rank1", "mAP", "mINP", "rank1_cross_camera", "rank1_same_camera"} <= set(metrics)
    assert f"{metrics['rank1']:.2f}%" in printed
    assert 0 <= metrics["mINP"] <= metrics["mAP"] <= 100


def test_eval_of_unknown_weights_names_the_available_ones(tiny_synth):
    with pytest.raises(KeyError, match="no pretrained weights named 'nope'"):
        main(["eval", "--weights", "nope", "--data", str(tiny_synth)])
