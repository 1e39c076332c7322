"""GPU readiness in one command: ``make gpu-check`` (or ``python benchmarks/gpu_check.py``).

On a machine with CUDA it

1. runs the GPU-marked tests (``pytest -m gpu``),
2. times, on the GPU and on the CPU: the evaluation of a shipped model on a small synthetic
   split, one pair explanation (Grad-CAM of a query against its top 10), and the pair app's
   update (``PairExplainer.set_pair`` → a new map),

and prints one table; the whole check takes a few minutes (the tests take the longest). On a
machine without CUDA it says so and exits 0: there is nothing to check.

    python benchmarks/gpu_check.py [--model bot_r18w16_256] [--ids 40] [--no-tests]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


def _seconds(fn: Callable[[], Any], repeats: int = 3, sync: bool = False) -> float:
    """Median wall time of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if sync:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_gpu_tests(timeout: int = 300) -> tuple[str, float]:
    """``pytest -m gpu`` in a subprocess: (its summary line, seconds)."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
           "--no-header", "tests"]  # fmt: skip
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        lines = [line for line in out.stdout.splitlines() if line.strip()]
        summary = lines[-1] if lines else f"exit {out.returncode}"
    except subprocess.TimeoutExpired:
        summary = f"timed out after {timeout} s"
    return summary, time.perf_counter() - t0


def time_steps(
    model_name: str, ids: int, work: Path, devices: tuple[str, ...] = ("cuda", "cpu")
) -> list[tuple[str, str, float, str]]:
    """(step, device, seconds, note) rows, one per step and device."""
    from workbench.data.readers import load_split
    from workbench.data.synth import generate

    data = work / "synth"
    generate(data, ids=ids, seed=3, height=256, width=128, workers=2, progress=False)
    split = load_split(data)
    return [row for device in devices for row in _time_on(device, model_name, split)]


def _time_on(device: str, model_name: str, split: Any) -> list[tuple[str, str, float, str]]:
    from workbench.evaluate.protocol import evaluate_model
    from workbench.explain import explain_pair
    from workbench.models import input_contract
    from workbench.pretrained import load_pretrained
    from workbench.widgets._data import ImageStore

    model = load_pretrained(model_name, device=device)
    h, w = input_contract(model).input_size
    sync = device == "cuda"
    rows = []

    def evaluate() -> Any:
        return evaluate_model(model, split, h, w, device=device, progress=False, workers=2)

    t = _seconds(evaluate, repeats=1, sync=sync)
    n = len(split.query) + len(split.gallery)
    rows.append(("evaluate_model", device, t, f"{n} images, {n / t:.0f} images/s"))

    paths = [split.query.path.iloc[0], *split.gallery.path.iloc[:10]]
    batch = ImageStore((h, w)).tensor(paths).to(device)
    t = _seconds(lambda: explain_pair("gradcam", model, batch[:1], batch[1:]), sync=sync)
    rows.append(("explain_pair gradcam", device, t, "1 query × top 10"))

    try:
        from workbench.widgets import PairExplainer

        app = PairExplainer(model, device=device)
        pairs = [(split.query.iloc[i], split.gallery.iloc[i]) for i in range(4)]
        state = {"i": 0}

        def update() -> None:  # a new pair each time, the cache emptied: no cache hit
            q, g = pairs[state["i"] % len(pairs)]
            state["i"] += 1
            app.cache.clear()
            app.set_pair(q, g)

        t = _seconds(update, sync=sync)
        rows.append(("PairExplainer.set_pair", device, t, "one pair: map + render"))
    except Exception as e:  # the table says what failed
        rows.append(("PairExplainer.set_pair", device, float("nan"), f"failed: {e}"[:60]))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="bot_r18w16_256", help="shipped weights to time")
    p.add_argument("--ids", type=int, default=40, help="identities of the synthetic split")
    p.add_argument("--no-tests", action="store_true", help="skip the GPU-marked tests")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        built = torch.version.cuda or "none"
        print(
            f"gpu-check: no CUDA device on this machine (torch {torch.__version__}, CUDA build: "
            f"{built}); nothing to check. Run it where `python -c 'import torch; "
            f"print(torch.cuda.is_available())'` prints True."
        )
        return 0
    print(f"gpu-check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    rows: list[tuple[str, str, float, str]] = []
    if not args.no_tests:
        summary, seconds = run_gpu_tests()
        rows.append(("pytest -m gpu", "cuda", seconds, summary))
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as work:
        rows += time_steps(args.model, args.ids, Path(work))
    print(f"\n| {'step':24} | device | seconds | note")
    print(f"|{'-' * 26}|--------|---------|-----")
    for step, device, seconds, note in rows:
        print(f"| {step:24} | {device:6} | {seconds:7.3f} | {note}")
    failed = any("failed" in note for *_, note in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
