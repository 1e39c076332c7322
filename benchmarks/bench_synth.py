"""Speed of the synthetic pedestrian generator: 1 worker vs 2 workers, measured in one run.

Prints images/s for each worker count, the speed-up, and where the time goes (render = background,
person, occluders and camera pipeline; encode = JPEG + PNG; write = files), summed over workers.
The target on a 2-core machine is >= 400 images/s at 256x128 with 2 workers.

    python benchmarks/bench_synth.py [--ids 200] [--height 256] [--width 128] [--repeat 1]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from workbench.data.synth import SynthSummary, generate

# outputs/ is git-ignored; it is also on the repository's disk (tmpfs or /tmp may be slower)
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "outputs" / "bench_synth"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=200)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=1, help="runs per worker count; best is kept")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    best: dict[int, SynthSummary] = {}
    for workers in (1, 2):
        for _ in range(args.repeat):
            root = args.out / f"workers{workers}"
            s = generate(root, ids=args.ids, seed=0, height=args.height, width=args.width,
                         workers=workers, progress=False)  # fmt: skip
            if workers not in best or s.seconds < best[workers].seconds:
                best[workers] = s
    print(f"synthetic pedestrians: {args.ids} ids, {args.height}x{args.width}")
    for workers, s in best.items():
        st = s.stage_seconds
        work = st["render"] + st["encode"] + st["write"]
        shares = ", ".join(f"{k} {st[k] / work:.0%}" for k in ("render", "encode", "write"))
        print(
            f"  workers={workers}: {s.images} images in {s.seconds:.2f} s = "
            f"{s.images_per_second:6.0f} images/s   ({shares}; tables {st['tables']:.2f} s)"
        )
    ratio = best[2].images_per_second / best[1].images_per_second
    print(f"  speed-up 2 workers / 1 worker: {ratio:.2f}x")
    shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
