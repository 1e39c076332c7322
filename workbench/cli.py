"""Command line: ``workbench synth | train | eval | export | demo``.

Each sub-command parses its arguments here and calls one library function; heavy modules are
imported only by the sub-command that needs them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
        domain=args.domain,
    )
    print(summary)
    return 0


def _train(args: argparse.Namespace) -> int:
    from workbench.train.config import TrainConfig, apply_overrides
    from workbench.train.trainer import Trainer

    if args.resume and args.config is None and (Path(args.out) / "config.json").exists():
        config = TrainConfig.load(Path(args.out) / "config.json")
    else:
        config = TrainConfig.load(args.config) if args.config else TrainConfig()
    model_config = json.loads(args.model_config) if args.model_config else None
    config = apply_overrides(
        config,
        {
            "model": args.model,
            "data.root": args.data,
            "optim.epochs": args.epochs,
            "device": args.device,
            "seed": args.seed,
            "data.workers": args.workers,
            "data.batch_size": args.batch_size,
            "data.height": args.height,
            "data.width": args.width,
            "eval_every": args.eval_every,
            "max_steps_per_epoch": args.max_steps,
        },
    )
    if model_config is not None:
        config.model_config = {**config.model_config, **model_config}
    if args.target is not None:
        config.model_config = _target_config(args.target, config.model_config)
    trainer = Trainer(config, args.out, resume=args.resume, progress=not args.quiet)
    metrics = trainer.fit()
    if trainer.env.is_main and metrics:
        print(json.dumps({k: round(v, 2) for k, v in metrics.items()}, indent=None))
    return 0


def _target_config(target: str, model_config: dict) -> dict:
    """``--target WEIGHTS``: the model explained by an interpreter (``--model interpreter``)."""
    from workbench.pretrained import find_card

    card = find_card(target)  # fails early, listing the shipped names, if WEIGHTS is unknown
    path = target if Path(target).exists() else card["_card_path"]
    return {**model_config, "target": str(path), "target_spec": None}


def _eval(args: argparse.Namespace) -> int:
    from workbench.data.readers import load_split
    from workbench.evaluate import format_metrics
    from workbench.evaluate.protocol import evaluate_model
    from workbench.pretrained import load_pretrained

    model = load_pretrained(args.weights)
    height, width = model.card.get("input_size", (256, 128))
    split = load_split(args.data)
    result = evaluate_model(
        model,
        split,
        height,
        width,
        device=args.device,
        flip=args.flip,
        rerank=args.rerank,
        workers=args.workers,
        progress=not args.quiet,
    )
    print(
        f"{model.card['name']} on {split.name} ({args.data})"
        + (" + re-ranking" if args.rerank else "")
    )
    print(format_metrics(result.metrics))
    if args.json:
        out = {
            "weights": model.card["name"],
            "data": str(args.data),
            "rerank": args.rerank,
            "flip": args.flip,
            **result.headline(),
            "num_valid_queries": int(result.metrics["num_valid_queries"]),
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"metrics written to {args.json}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from workbench.train.export import export_run

    card = export_run(args.run, args.name, folder=args.folder, progress=not args.quiet)
    print(
        f"wrote {args.folder}/{args.name}.safetensors ({card['size_bytes'] / 1e6:.2f} MB) and its card"
    )
    if "metrics" in card:
        print(json.dumps(card["metrics"]))
    return 0


def _aam_eval(args: argparse.Namespace) -> int:
    """``workbench aam-eval``: explanation metrics of an AAM interpreter (+ its card)."""
    from workbench.explain.aam import interpreter_report

    report = interpreter_report(
        args.weights, args.data, out=args.out, card=args.card, target_name=args.target_name
    )
    print(json.dumps(report["metrics"], indent=1))
    print(report["localisation"].to_string(index=False))
    return 0


def _aam_study(args: argparse.Namespace) -> int:
    """``workbench aam-study``: interpreters sharing N = 1..5 stages (supplementary Table 1)."""
    from workbench.explain.aam import stage_study

    table = stage_study(
        args.target,
        args.data,
        args.out,
        stages=tuple(args.stages),
        config=args.config,
        epochs=args.epochs,
        max_steps=args.max_steps,
        progress=not args.quiet,
    )
    print(table.to_string(index=False))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from workbench.demo import run_demo

    run_demo(data=args.data, out=args.out, ids=args.ids, seed=args.seed)
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
    p.add_argument(
        "--domain", type=int, default=0, help="0 = default cameras; 1, 2.. = another site"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _COMMANDS["synth"] = _synth

    p = sub.add_parser("train", help="train a registered model (also under torchrun)")
    p.add_argument("--model", default=None, help="registry name (default: bot)")
    p.add_argument("--data", default=None, help="dataset root (any supported layout)")
    p.add_argument("--out", required=True, help="run folder (config, checkpoints, logs, weights)")
    p.add_argument("--config", default=None, help="JSON TrainConfig file")
    p.add_argument("--model-config", default=None, help="JSON model kwargs, e.g. '{\"width\": 32}'")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--device", default=None, help="auto | cpu | cuda")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--workers", type=int, default=None, help="data-loading processes")
    p.add_argument("--batch-size", type=int, default=None, help="P×K images per step (per process)")
    p.add_argument("--height", type=int, default=None, help="model input height")
    p.add_argument("--width", type=int, default=None, help="model input width")
    p.add_argument("--eval-every", type=int, default=None, help="epochs between evaluations")
    p.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch (smoke tests)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--target", default=None, help="--model interpreter: weights of the model to explain"
    )
    p.add_argument("--quiet", action="store_true")
    _COMMANDS["train"] = _train

    p = sub.add_parser("eval", help="evaluate weights on a dataset's query/gallery")
    p.add_argument(
        "--weights", required=True, help="shipped name (see list) or .safetensors/.json path"
    )
    p.add_argument("--data", required=True, help="dataset root")
    p.add_argument(
        "--rerank", action="store_true", help="k-reciprocal re-ranking (k1=20, k2=6, λ=0.3)"
    )
    p.add_argument("--flip", action="store_true", help="average embeddings with the flipped image")
    p.add_argument("--json", default=None, help="write the metrics here")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--quiet", action="store_true")
    _COMMANDS["eval"] = _eval

    p = sub.add_parser("export", help="ship a finished run: fp16 safetensors + model card")
    p.add_argument("--run", required=True, help="run folder of `workbench train`")
    p.add_argument("--name", required=True, help="name of the shipped weights")
    p.add_argument("--folder", default="weights")
    p.add_argument("--quiet", action="store_true")
    _COMMANDS["export"] = _export

    p = sub.add_parser("aam-eval", help="AAM interpreter: ADRE, X-mAP, rank-1/mAP, localisation")
    p.add_argument("--weights", required=True, help="interpreter weights (name or path)")
    p.add_argument("--data", required=True, help="dataset root with its attribute file")
    p.add_argument("--out", default=None, help="folder for metrics.json + localisation.csv")
    p.add_argument("--card", default=None, help="model card to add the metrics to")
    p.add_argument("--target-name", default=None, help="shipped name of the target (card)")
    _COMMANDS["aam-eval"] = _aam_eval

    p = sub.add_parser("aam-study", help="AAM interpreters sharing N = 1..5 target stages")
    p.add_argument("--target", required=True, help="weights of the model to explain")
    p.add_argument("--data", required=True, help="dataset root with its attribute file")
    p.add_argument("--out", required=True, help="folder: one run per N + table.csv")
    p.add_argument("--stages", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--config", default=None, help="JSON TrainConfig of every run")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch")
    p.add_argument("--quiet", action="store_true")
    _COMMANDS["aam-study"] = _aam_study

    p = sub.add_parser(
        "demo", help="the main job: data, contact sheet, shipped baseline, rank list"
    )
    p.add_argument("--data", default="data/synth", help="where the synthetic dataset lives")
    p.add_argument("--out", default="outputs", help="where figures go")
    p.add_argument("--ids", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    _COMMANDS["demo"] = _demo
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(_COMMANDS[args.command](args) or 0)


if __name__ == "__main__":
    sys.exit(main())
