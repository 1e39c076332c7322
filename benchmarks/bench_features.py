"""Feature extraction through the data pipeline vs the bare model forward, same run.

    python benchmarks/bench_features.py [--ids 60] [--workers 2] [--height 128 --width 64]

The bare forward embeds pre-loaded, pre-transformed tensors (no I/O, no decoding); the pipeline
reads the JPEGs, resizes and normalises them in DataLoader workers while the model runs.
Target: pipeline throughput ≥ 0.9 × bare forward (data loading is not the bottleneck).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ids", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--weights", default="bot_r18w16_synth", help="shipped name (else untrained)")
    args = ap.parse_args()

    from workbench.data import load_split
    from workbench.data.synth import generate
    from workbench.evaluate import extract_features
    from workbench.evaluate.protocol import make_loader
    from workbench.models.registry import build_model
    from workbench.pretrained import list_pretrained, load_pretrained

    if args.weights in [c["name"] for c in list_pretrained()]:
        model = load_pretrained(args.weights)
        args.height, args.width = model.card["input_size"]
    else:
        model = build_model("bot", backbone="resnet18", width=16, num_classes=10)
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synth"
        generate(root, ids=args.ids, seed=0, progress=False)
        table = load_split(root).gallery
        n = len(table)
        loader = make_loader(table, args.height, args.width, args.batch, args.workers)
        extract_features(model, loader, device="cpu", progress=False)  # warm-up (workers, caches)

        images = torch.cat(
            [b["image"] for b in make_loader(table, args.height, args.width, args.batch, 0)]
        )

        def bare_forward() -> None:
            with torch.inference_mode():
                for i in range(0, n, args.batch):
                    model(images[i : i + args.batch])

        def pipeline() -> None:
            extract_features(model, loader, device="cpu", progress=False)

        # alternate the two, best of `repeats` each, so load from elsewhere hits both alike
        bare_forward()
        best = {"bare": 0.0, "pipeline": 0.0}
        for _ in range(args.repeats):
            for name, fn in (("bare", bare_forward), ("pipeline", pipeline)):
                t = time.perf_counter()
                fn()
                best[name] = max(best[name], n / (time.perf_counter() - t))
        bare, piped = best["bare"], best["pipeline"]

    print(
        f"images: {n} at {args.height}x{args.width}, batch {args.batch}, "
        f"{args.workers} loader workers, torch threads {torch.get_num_threads()}"
    )
    print(f"bare forward         {bare:8.1f} img/s")
    print(f"extract_features     {piped:8.1f} img/s")
    print(f"ratio pipeline/bare  {piped / bare:8.2f}  (target >= 0.90)")


if __name__ == "__main__":
    main()
