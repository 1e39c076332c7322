"""benchmarks/gpu_check.py: says so and exits 0 without CUDA; its timing path runs (on the CPU)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_without_cuda_it_says_so_and_exits_0(monkeypatch, capsys) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _load().main([]) == 0
    assert "no CUDA device on this machine" in capsys.readouterr().out


@pytest.mark.slow
def test_timing_steps_run_on_the_cpu(tmp_path: Path) -> None:
    rows = _load().time_steps("bot_r18w16_256", ids=4, work=tmp_path, devices=("cpu",))
    assert [r[0] for r in rows] == [
        "evaluate_model",
        "explain_pair gradcam",
        "PairExplainer.set_pair",
    ]
    assert all(r[2] > 0 and "failed" not in r[3] for r in rows), rows
