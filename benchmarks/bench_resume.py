"""Kill a real training run mid-epoch, resume it, and compare with an uninterrupted run.

    python benchmarks/bench_resume.py [--data data/synth] [--epochs 6] [--kill-after 2.5]

Both runs use the shipped baseline's recipe (weights/bot_r18w16_synth.json) shortened to
``--epochs``; the interrupted one gets SIGKILL ``--kill-after`` epochs in, i.e. mid-epoch. Prints
both runs' metrics, the seconds each took, and the largest weight difference.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train_cmd(card: str, data: str, out: Path, epochs: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "workbench.cli",
        "train",
        "--config",
        card,
        "--data",
        data,
        "--out",
        str(out),
        "--epochs",
        str(epochs),
        "--eval-every",
        "0",
        "--quiet",
        *extra,
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/synth")
    ap.add_argument("--card", default="weights/bot_r18w16_synth.json")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--kill-after", type=float, default=2.5, help="epochs before SIGKILL")
    args = ap.parse_args()

    import torch
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as tmp:
        straight, killed = Path(tmp) / "straight", Path(tmp) / "killed"
        t = time.perf_counter()
        subprocess.run(train_cmd(args.card, args.data, straight, args.epochs), check=True)
        t_straight = time.perf_counter() - t
        epoch_s = t_straight / args.epochs

        t = time.perf_counter()
        proc = subprocess.Popen(train_cmd(args.card, args.data, killed, args.epochs))
        log = killed / "log.jsonl"
        whole = int(args.kill_after)
        while not (log.exists() and log.read_text().count("\n") >= whole):
            time.sleep(0.05)
        time.sleep((args.kill_after - whole) * epoch_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = torch.load(killed / "checkpoint.pt", weights_only=True)["epoch"]
        subprocess.run(train_cmd(args.card, args.data, killed, args.epochs, "--resume"), check=True)
        t_killed = time.perf_counter() - t

        a, b = load_file(straight / "model.safetensors"), load_file(killed / "model.safetensors")
        diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
        ma = json.loads((straight / "model.json").read_text())["metrics"]
        mb = json.loads((killed / "model.json").read_text())["metrics"]

    print(f"uninterrupted: {args.epochs} epochs in {t_straight:.0f} s")
    print(f"killed (SIGKILL) after {done} completed epochs + resumed: {t_killed:.0f} s in all")
    for key in ("rank1", "mAP", "mINP"):
        print(f"  {key:6s} uninterrupted {ma[key]:6.2f}   killed+resumed {mb[key]:6.2f}")
    print(f"largest weight difference: {diff:.3g}")


if __name__ == "__main__":
    main()
