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


def test_eval_of_unknown_weights_names_the_available_ones(tiny_synth, capsys):
    assert main(["eval", "--weights", "nope", "--data", str(tiny_synth)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("workbench eval: error: no pretrained weights named 'nope'; available:")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    with pytest.raises(KeyError, match="no pretrained weights named 'nope'"):  # --debug: stack
        main(["eval", "--weights", "nope", "--data", str(tiny_synth), "--debug"])


# --- one error boundary: a message and a non-zero exit, never a traceback ----------------------
def _run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_user_errors_are_one_line_without_traceback(tiny_synth, tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not weights")
    cases = [
        (["train", "--out", str(tmp_path / "missing"), "--resume"], "no such run folder"),
        (["train", "--out", str(tmp_path / "r"), "--data", str(tiny_synth), "--epochs", "0"],
         "optim.epochs=0: need a value >= 1"),
        # without a card beside it, a .safetensors file is read as an imported checkpoint
        (["eval", "--weights", str(garbage), "--data", str(tiny_synth)], "not a readable safetensors file"),
    ]  # fmt: skip
    for args, message in cases:
        proc = _run_cli(*args)
        assert proc.returncode == 1, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and message in proc.stderr, (args, proc.stderr)
    proc = _run_cli("--debug", *cases[0][0])
    assert proc.returncode == 1 and "Traceback" in proc.stderr  # --debug shows the stack


def test_output_paths_and_json_options_are_checked_while_parsing(tiny_synth, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    bad = [
        ["eval", "--weights", "x", "--data", str(tiny_synth), "--json", str(afile / "m.json")],
        ["eval", "--weights", "x", "--data", str(tiny_synth), "--json", str(tmp_path)],
        ["train", "--out", str(tmp_path / "r"), "--model-config", "{width: 32}"],
        ["train", "--out", str(tmp_path / "r"), "--model-config", "[1, 2]"],
        ["synth", "--out", str(afile)],
        ["export", "--run", "r", "--name", "n", "--folder", str(afile)],
    ]
    for args in bad:
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --json: {afile} is a file, so {afile / 'm.json'} cannot be created" in err
    assert "argument --model-config: not valid JSON" in err and "is a JSON list" in err


def test_os_errors_name_the_path_and_the_fix(capsys):
    import errno

    from workbench.cli_support import run_guarded

    def full_disk():
        raise OSError(errno.ENOSPC, "No space left on device", "/data/x/0001.jpg")

    assert run_guarded("synth", full_disk) == 1
    err = capsys.readouterr().err
    assert (
        err
        == "workbench synth: error: /data/x/0001.jpg: the disk is full: free some space or write somewhere else\n"
    )

    def no_cuda():
        from workbench.device import resolve_device

        resolve_device("cuda:7" if not torch.cuda.is_available() else "cuda:999x")

    assert run_guarded("train", no_cuda) == 1
    assert "internal error" not in capsys.readouterr().err

    def ctrl_c():
        raise KeyboardInterrupt

    assert run_guarded("synth", ctrl_c) == 130
    assert capsys.readouterr().err.strip() == "workbench synth: interrupted"

    def bug():
        return 1 / 0

    assert run_guarded("eval", bug) == 1
    assert "internal error (ZeroDivisionError" in capsys.readouterr().err
    with pytest.raises(ZeroDivisionError):
        run_guarded("eval", bug, debug=True)


def test_version_list_and_help_on_every_option(capsys):
    import argparse

    from workbench import __version__
    from workbench.cli import build_parser

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"workbench {__version__}"
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "models (workbench train --model NAME):" in out and "  bot\n" in out
    assert "bot_r18w16_synth" in out
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {'/'.join(a.option_strings)}"
        for name, p in subs.choices.items()
        for a in p._actions
        if a.option_strings and a.help in (None, "") and not isinstance(a, argparse._HelpAction)
    ]
    assert missing == []
    assert set(subs.choices) >= {"synth", "train", "eval", "export", "demo", "list"}


def test_triplet_normalize_flag_reaches_the_run_config(tiny_synth, tmp_path):
    """--triplet-normalize sets loss.triplet_normalize; without it a card's value is kept."""
    base = ["train", "--data", str(tiny_synth), "--epochs", "1", "--max-steps", "1", *TRAIN_ARGS]
    assert main([*base, "--out", str(tmp_path / "on"), "--triplet-normalize"]) == 0
    config = json.loads((tmp_path / "on" / "config.json").read_text())
    assert config["loss"]["triplet_normalize"] is True
    assert (
        main(
            [
                *base,
                "--out",
                str(tmp_path / "kept"),
                "--config",
                str(tmp_path / "on" / "config.json"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "kept" / "config.json").read_text())["loss"]["triplet_normalize"]
    assert main([*base, "--out", str(tmp_path / "off")]) == 0
    assert not json.loads((tmp_path / "off" / "config.json").read_text())["loss"][
        "triplet_normalize"
    ]


def test_list_names_the_explanation_methods_each_model_supports(capsys):
    from workbench.cli import model_methods
    from workbench.explain import list_explainers
    from workbench.models import build_model, list_models, model_config_class

    methods = model_methods()
    assert list(methods) == list_models()
    for name in ("bot", "daaf", "ianet"):
        model = build_model(name, model_config_class(name).tiny())
        assert methods[name] == list_explainers(model)
    assert "shuffle" in methods["daaf"] and "shuffle" not in methods["bot"]
    assert "receptive_field" in methods["ianet"] and "cam" in methods["sa"]
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    lines = out.split("explanation methods of each model")[1].splitlines()
    daaf = next(line for line in lines if line.split()[:1] == ["daaf"])
    assert daaf.split(None, 1)[1] == ", ".join(methods["daaf"])


def test_every_sub_command_names_its_function(tmp_path):
    """The parser carries each sub-command's function (no table filled while building it)."""
    import argparse

    from workbench.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        run = sub.get_default("handler")
        assert callable(run) and run.__name__ == "_" + name.replace("-", "_"), name
    args = parser.parse_args(["synth", "--out", str(tmp_path / "s")])
    assert args.handler is subs.choices["synth"].get_default("handler")
    # export's own --run (the run folder) must not shadow the function
    args = parser.parse_args(["export", "--run", "RUN", "--name", "m"])
    assert args.handler.__name__ == "_export" and args.run == "RUN"
