"""Two CPU processes under torchrun (gloo): DDP keeps their parameters identical."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.slow
def test_two_process_ddp_keeps_parameters_identical(tiny_synth, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(WORKER), str(tiny_synth), str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2
    changed = 0
    for k, v in r0["final"].items():
        torch.testing.assert_close(v, r1["final"][k], rtol=0, atol=0, msg=k)
        if v.is_floating_point() and not torch.equal(v, r0["initial"][k]):
            changed += 1
    assert changed > 10  # it trained: most tensors moved
    assert (out / "checkpoint.pt").exists() and (out / "model.safetensors").exists()
