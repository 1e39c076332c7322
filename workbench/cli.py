"""Command line: ``workbench synth | demo | train | eval``.

Each sub-command parses its arguments here and calls one library function; heavy modules are
imported only by the sub-command that needs them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

_COMMANDS: dict[str, Callable[[argparse.Namespace], int | None]] = {}


def _synth(args: argparse.Namespace) -> int:
    from workbench.data.synth import generate

    summary = generate(
        args.out,
        ids=args.ids,
        seed=args.seed,
        height=args.height,
        width=args.width,
        workers=args.workers,
        progress=not args.quiet,
    )
    print(summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench", description="ReID Explainability Workbench command line."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="render the synthetic pedestrian dataset (Market-1501 layout)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--ids", type=int, default=None, help="number of identities (train + test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _COMMANDS["synth"] = _synth
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(_COMMANDS[args.command](args) or 0)


if __name__ == "__main__":
    sys.exit(main())
