"""Command line: ``workbench synth | pretrain | train | eval | export | explain | zoo | figures | demo | list``.

Each sub-command parses its arguments here and calls one library function; heavy modules are
imported only by the sub-command that needs them. ``main`` runs every sub-command inside one
error boundary (``cli_support.run_guarded``): a user error is one line and exit status 1;
``--debug`` shows the stack instead. Output paths are checked while parsing, before any work.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workbench import __version__
from workbench.cli_support import (
    figure_formats,
    json_object,
    non_negative_float,
    non_negative_int,
    output_dir,
    output_file,
    positive_float,
    positive_int,
    role_weights,
    run_guarded,
)

Command = Callable[[argparse.Namespace], int | None]


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
        counterfactuals=args.counterfactuals,
    )
    print(summary)
    if args.counterfactuals:
        import pandas as pd

        table = pd.read_csv(Path(args.out) / "counterfactuals.csv")
        print(
            f"  counterfactuals: {table.original.nunique()} query images x "
            f"{table.factor.nunique()} factors = {len(table)} pairs -> counterfactuals.csv"
        )
    return 0


def _train(args: argparse.Namespace) -> int:
    from workbench.train.config import TrainConfig, apply_overrides
    from workbench.train.trainer import Trainer

    if args.resume and args.config is None and (Path(args.out) / "config.json").exists():
        config = TrainConfig.load(Path(args.out) / "config.json")
    else:
        config = TrainConfig.load(args.config) if args.config else TrainConfig()
    model_config = args.model_config  # a dict: parsed by cli_support.json_object
    config = apply_overrides(
        config,
        {
            "model": args.model,
            "data.root": args.data,
            "optim.epochs": args.epochs,
            "optim.lr": args.lr,
            "device": args.device,
            "seed": args.seed,
            "data.workers": args.workers,
            "data.batch_size": args.batch_size,
            "data.height": args.height,
            "data.width": args.width,
            "eval_every": args.eval_every,
            "max_steps_per_epoch": args.max_steps,
            "loss.triplet_normalize": args.triplet_normalize,
            "init": args.init,
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


def _pretrain(args: argparse.Namespace) -> int:
    from workbench.train import pretrain

    parts = args.parts if args.parts is not None else pretrain.PRETRAIN_PARTS
    meta = pretrain.render_pretraining_data(
        args.data, parts, args.height, args.width, args.holdout, progress=not args.quiet
    )
    print(f"{args.data}: {meta['ids']} identities ({meta['ids_train']} trained), {meta['counts']}")
    if args.data_only:
        return 0
    if args.out is None:
        raise ValueError("--out: need the run folder (or pass --data-only)")
    from workbench.train.config import TrainConfig
    from workbench.train.trainer import Trainer

    if args.resume and (Path(args.out) / "config.json").exists():
        config = TrainConfig.load(Path(args.out) / "config.json")
        if args.epochs is not None:  # extend (or shorten) a run: the schedule follows the epochs
            new = pretrain.pretrain_config(config.data.root, args.epochs)
            config.optim = new.optim
    else:
        config = pretrain.pretrain_config(args.data, args.epochs or 12, args.part_loss)
        config.data.height, config.data.width = args.height, args.width
    metrics = Trainer(config, args.out, resume=args.resume, progress=not args.quiet).fit()
    print(json.dumps({k: round(v, 2) for k, v in metrics.items()}))
    return 0


def _load_weights(args: argparse.Namespace) -> Any:
    """A shipped name / card / safetensors+card, or a BoT / FastReID / torchreid file to import."""
    from workbench.pretrained import load_weights

    extra = {"input_size": tuple(args.input_size)} if args.input_size else {}
    return load_weights(args.weights, source=args.source, **extra)


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

    model = _load_weights(args)
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
    from workbench.train.export import export_imported, export_run

    if (args.run is None) == (args.from_file is None):
        raise SystemExit("workbench export: give exactly one of --run RUN or --from CHECKPOINT")
    if args.from_file is not None:
        extra = {"input_size": tuple(args.input_size)} if args.input_size else {}
        card = export_imported(
            args.from_file, args.name, args.folder, args.source, overwrite=args.overwrite, **extra
        )
    else:
        card = export_run(
            args.run,
            args.name,
            folder=args.folder,
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
    print(
        f"wrote {args.folder}/{args.name}.safetensors ({card['size_bytes'] / 1e6:.2f} MB) and its card"
    )
    if "metrics" in card:
        print(json.dumps(card["metrics"]))
    return 0


def _explain(args: argparse.Namespace) -> int:
    from workbench.data.readers import load_split
    from workbench.evaluate.report import faithfulness_report
    from workbench.pretrained import load_pretrained

    params = _tuples(args.params or {})  # JSON has lists; captum wants shapes as tuples
    model = load_pretrained(args.weights)
    split = load_split(_data_root(args))
    if args.counterfactual:
        return _counterfactual_game(args, model, split, params)
    report = faithfulness_report(
        model,
        split,
        args.method,
        layer=args.layer,
        pairs=args.pairs,
        seed=args.seed,
        steps=args.steps,
        device=args.device,
        progress=not args.quiet,
        **params,
    )
    paths = report.save(args.report)
    print(report.to_markdown())
    print("written: " + ", ".join(str(p) for p in paths))
    return 0


def _tuples(value: Any) -> Any:
    """JSON lists → tuples, recursively (``sliding_window_shapes: [3, 16, 16]`` for captum)."""
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _counterfactual_game(args: argparse.Namespace, model: Any, split: Any, params: dict) -> int:
    from workbench.evaluate.counterfactual import MethodSpec, counterfactual_game

    label = f"{args.method}:{params['algorithm']}" if "algorithm" in params else ""
    spec = MethodSpec(args.method, args.layer, tuple(params.items()), label)
    game = counterfactual_game(
        model,
        args.data,
        (spec,),
        split=split,
        originals=args.pairs,
        threshold=args.threshold,
        device=args.device,
        progress=not args.quiet,
    )
    paths = game.save(args.report)
    print(game.to_markdown())
    print("written: " + ", ".join(str(p) for p in paths))
    return 0


def _zoo(args: argparse.Namespace) -> int:
    from workbench.evaluate.zoo import zoo_report

    table = zoo_report(
        args.data,
        args.out,
        cards=args.weights or None,
        device=args.device,
        repeats=args.repeats,
        workers=args.workers,
        progress=not args.quiet,
    )
    print(table.to_string(index=False))
    print(f"wrote {Path(args.out) / 'zoo.md'} and {Path(args.out) / 'zoo.csv'}")
    return 0


def _data_root(args: argparse.Namespace) -> str:
    """``--data``, or the default synthetic dataset (rendered on first use, saying so)."""
    if args.data is not None:
        return args.data
    from workbench.data.synth import ensure_default_dataset

    return str(ensure_default_dataset(log=print))


def _figures(args: argparse.Namespace) -> int:
    from workbench.viz.figures import DEFAULT_ZOO, list_figures, make_figures

    if args.list:
        rows = [
            (r.name, r.paper, r.figure,
             ", ".join([*r.needs, *(f"[{o}]" for o in r.optional)]),  # [optional]
             ", ".join([*r.requires, *(f"[{u}]" for u in r.uses)]) or "-", r.what)
            for r in list_figures()
        ]  # fmt: skip
        head = ("figure", "paper", "reproduces", "models (roles)", "data", "what it shows")
        widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(5)]
        for row in [head, *rows]:
            print("  ".join(f"{v:{w}s}" for v, w in zip(row, widths, strict=False)) + f"  {row[5]}")
        return 0
    if args.from_sidecar is not None:
        if (
            args.names
            or args.all
            or args.weights
            or args.data
            or args.format
            or args.dpi
            or args.zoo is not None
        ):
            raise SystemExit(
                "workbench figures --from SIDECAR: the sidecar names the figure, weights, data, "
                "formats and dpi; pass only --out (default: beside the sidecar) and --device"
            )
        from workbench.viz.figures.sidecar import redraw

        files = redraw(args.from_sidecar, args.out, device=args.device, log=print)
        return 0 if files else 1
    if not args.all and not args.names:
        raise SystemExit("workbench figures: name figures, or pass --all, --list or --from")
    from workbench.data.readers import load_split

    split = load_split(_data_root(args))
    out = args.out or "outputs/figures"
    formats = args.format or ("pdf", "png")
    made = make_figures(
        None if args.all else args.names,
        split,
        out,
        weights=dict(args.weights or []),
        seed=args.seed,
        device=args.device or "auto",
        formats=formats,
        dpi=args.dpi,
        zoo=args.zoo or DEFAULT_ZOO,
        progress=not args.quiet,
    )
    print(f"{len(made)} figure(s) written to {out} ({', '.join(formats)}, + a .json sidecar)")
    asked = [] if args.all else list(dict.fromkeys(args.names))
    return 1 if len(made) < len(asked) else 0  # a named figure skipped or refused


def _aam_eval(args: argparse.Namespace) -> int:
    """``workbench aam-eval``: explanation metrics of an AAM interpreter (+ its card)."""
    from workbench.train.aam import interpreter_report

    report = interpreter_report(
        args.weights, args.data, out=args.out, card=args.card, target_name=args.target_name
    )
    print(json.dumps(report["metrics"], indent=1))
    print(report["localisation"].to_string(index=False))
    return 0


def _aam_study(args: argparse.Namespace) -> int:
    """``workbench aam-study``: interpreters sharing N = 1..5 stages (supplementary Table 1)."""
    from workbench.train.aam import stage_study

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


def _import_arguments(p: argparse.ArgumentParser) -> None:
    """Options for checkpoints of other codebases (workbench.models.import_checkpoint)."""
    p.add_argument(
        "--source",
        choices=("bot", "fastreid", "torchreid"),
        default=None,
        help="codebase that wrote the checkpoint (default: detected from its key names)",
    )
    p.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="input size of an imported checkpoint (default 256 128)",
    )


def model_methods() -> dict[str, list[str]]:
    """Each registered model → the explanation methods it supports (read from its declared
    layer kinds and capabilities on a ``tiny()`` instance of its config)."""
    import torch

    from workbench.explain import list_explainers
    from workbench.models.registry import build_model, list_models, model_config_class

    out = {}
    with torch.random.fork_rng():  # building draws random weights: leave the caller's stream
        for name in list_models():
            out[name] = list_explainers(build_model(name, model_config_class(name).tiny()))
    return out


def _list(args: argparse.Namespace) -> int:
    from workbench.pretrained import list_pretrained

    methods = model_methods()
    print("models (workbench train --model NAME):")
    for name in methods:
        print(f"  {name}")
    print("explanation methods of each model (workbench explain --method NAME):")
    for name, supported in methods.items():
        print(f"  {name:<12} {', '.join(supported)}")
    print("weights (workbench eval --weights NAME):")
    cards = list_pretrained()
    for card in cards:
        m = card.get("metrics", {})
        score = f"rank-1 {m['rank1']:.1f}, mAP {m['mAP']:.1f}" if {"rank1", "mAP"} <= set(m) else ""
        size = "x".join(str(v) for v in card.get("input_size", []))
        print(f"  {card['name']:<28} {card['architecture']:<8} {size:<8} {score}")
        print(f"    {card['_card_path']}")
    if not cards:
        print("  (none; add folders with $WORKBENCH_WEIGHTS)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench", description="ReID Explainability Workbench command line."
    )
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full stack of an error (anywhere on the line)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="render the synthetic pedestrian dataset (Market-1501 layout)")
    p.add_argument("--out", required=True, type=output_dir, help="output folder")
    p.add_argument("--ids", type=int, default=None, help="number of identities (train + test)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed: same bytes)")
    p.add_argument("--height", type=int, default=256, help="image height, 64 to 1024 pixels")
    p.add_argument("--width", type=int, default=128, help="image width, height/4 to height")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument(
        "--domain", type=int, default=0, help="0 = default cameras; 1, 2.. = another site"
    )
    p.add_argument(
        "--counterfactuals",
        type=non_negative_int,
        default=0,
        help="N query images re-rendered with each factor changed (counterfactuals.csv)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_synth)

    p = sub.add_parser("train", help="train a registered model (also under torchrun)")
    p.add_argument("--model", default=None, help="registry name (default: bot)")
    p.add_argument("--data", default=None, help="dataset root (any supported layout)")
    p.add_argument(
        "--out",
        required=True,
        type=output_dir,
        help="run folder (config, checkpoints, logs, weights)",
    )
    p.add_argument("--config", default=None, help="JSON TrainConfig file (or a model card)")
    p.add_argument(
        "--model-config",
        default=None,
        type=json_object,
        help="JSON model kwargs, e.g. '{\"width\": 32}'",
    )
    p.add_argument("--epochs", type=int, default=None, help="epochs to train (default 40)")
    p.add_argument("--lr", type=float, default=None, help="base learning rate (optim.lr)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--workers", type=int, default=None, help="data-loading processes")
    p.add_argument("--batch-size", type=int, default=None, help="P×K images per step (per process)")
    p.add_argument("--height", type=int, default=None, help="model input height")
    p.add_argument("--width", type=int, default=None, help="model input width")
    p.add_argument("--eval-every", type=int, default=None, help="epochs between evaluations")
    p.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch (smoke tests)")
    p.add_argument(
        "--triplet-normalize",
        action="store_const",
        const=True,
        default=None,
        help="triplet loss on L2-normalised features (the attention models' recipe)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--target", default=None, help="--model interpreter: weights of the model to explain"
    )
    p.add_argument(
        "--init", default=None, help="start the backbone from these weights (e.g. pretrain_r18w16)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    p.set_defaults(handler=_train)

    p = sub.add_parser(
        "pretrain", help="render the pretraining set and train the backbone on it (--init)"
    )
    p.add_argument("--data", default="data/pretrain", help="folder of the pretraining set")
    p.add_argument("--out", default=None, type=output_dir, help="run folder of the training")
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs (default 12)")
    p.add_argument("--height", type=positive_int, default=128, help="image and input height")
    p.add_argument("--width", type=positive_int, default=64, help="image and input width")
    p.add_argument("--holdout", type=non_negative_int, default=50, help="held-out ids per part")
    p.add_argument(
        "--part-loss",
        type=non_negative_float,
        default=0.0,
        help="weight of the part-segmentation objective on layer4 (0 = identity only; "
        "pretrain_r18w16_parts: 1)",
    )
    p.add_argument(
        "--parts",
        default=None,
        type=json.loads,
        help='JSON list of parts, default [{"seed": 1, "domain": 0, "ids": 1200}, '
        '{"seed": 2, "domain": 1, "ids": 1200}]',
    )
    p.add_argument("--data-only", action="store_true", help="render the set, do not train")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_pretrain)

    p = sub.add_parser("eval", help="evaluate weights on a dataset's query/gallery")
    p.add_argument(
        "--weights",
        required=True,
        help="shipped name (see `workbench list`), .safetensors/.json path, or a "
        "BoT/FastReID/torchreid checkpoint",
    )
    p.add_argument("--data", required=True, help="dataset root")
    p.add_argument(
        "--rerank", action="store_true", help="k-reciprocal re-ranking (k1=20, k2=6, λ=0.3)"
    )
    p.add_argument("--flip", action="store_true", help="average embeddings with the flipped image")
    p.add_argument("--json", default=None, type=output_file, help="write the metrics here")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument(
        "--workers", type=non_negative_int, default=2, help="image-decoding threads (0: none)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _import_arguments(p)
    p.set_defaults(handler=_eval)

    p = sub.add_parser(
        "export", help="ship a finished run or an imported checkpoint (safetensors + card)"
    )
    p.add_argument("--run", default=None, help="run folder of `workbench train`")
    p.add_argument("--from", dest="from_file", default=None, help="BoT/FastReID/torchreid file")
    p.add_argument("--name", required=True, help="plain name of the shipped weights")
    p.add_argument(
        "--folder", default="weights", type=output_dir, help="where to write them (weights/)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace weights of the same name")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _import_arguments(p)
    p.set_defaults(handler=_export)

    p = sub.add_parser("zoo", help="one table of every shipped model on a dataset's test split")
    p.add_argument("--data", required=True, help="dataset root (e.g. data/synth)")
    p.add_argument("--out", required=True, type=output_dir, help="folder for zoo.md and zoo.csv")
    p.add_argument(
        "--weights", nargs="*", default=None, help="card names/paths (default: every shipped one)"
    )
    p.add_argument("--device", default="auto", help="for the retrieval features")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed forwards per latency")
    p.add_argument("--workers", type=non_negative_int, default=2, help="image-decoding threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_zoo)

    p = sub.add_parser(
        "explain", help="score a method's heat maps on a split against the person masks"
    )
    p.add_argument("--weights", required=True, help="shipped weights name or .safetensors path")
    p.add_argument(
        "--data",
        default=None,
        help="dataset root with masks (default: the synthetic dataset in data/synth, rendered "
        "on first use)",
    )
    p.add_argument("--method", default="gradcam", help="explanation method (workbench list)")
    p.add_argument("--layer", default=None, help="layer name from the model's layer_info")
    p.add_argument(
        "--params",
        default=None,
        type=json_object,
        help="JSON method parameters, e.g. '{\"groups\": 6}'",
    )
    p.add_argument(
        "--pairs", type=positive_int, default=200, help="queries sampled (with their true match)"
    )
    p.add_argument("--steps", type=positive_int, default=10, help="deletion/insertion steps")
    p.add_argument(
        "--counterfactual",
        action="store_true",
        help="play the counterfactual game on DATA/counterfactuals.csv (--pairs: originals)",
    )
    p.add_argument(
        "--threshold", type=float, default=None, help="--counterfactual: the |Δ| an edit needs"
    )
    p.add_argument("--seed", type=int, default=0, help="which queries are sampled")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument(
        "--report", required=True, type=output_dir, help="output folder: summary.csv/.md, pairs.csv"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_explain)

    p = sub.add_parser("figures", help="paper figures from code, on any weights and data")
    p.add_argument("names", nargs="*", help="figure names (see --list)")
    p.add_argument("--all", action="store_true", help="every figure whose weights are shipped")
    p.add_argument(
        "--list", action="store_true", help="each figure: paper, roles, data it needs ([optional])"
    )
    p.add_argument(
        "--weights",
        nargs="+",
        action="extend",
        type=role_weights,
        default=None,
        metavar="ROLE=NAME_OR_PATH",
        help="the model of a role (bot, daaf, sa, ...; see --list): a shipped name, a card or "
        ".safetensors path, or a BoT/FastReID/torchreid checkpoint (default: the shipped ones)",
    )
    p.add_argument(
        "--zoo",
        choices=("parts", "pretrained", "scratch"),
        default=None,
        help="the shipped weights of the roles not given: trained from the backbone pretrained "
        "with the part objective at 256x128 (the NAME_pt_parts cards, the default), from the "
        "first pretrained backbone (the NAME_pt cards) or from scratch; docs/pretraining.md",
    )
    p.add_argument(
        "--data",
        default=None,
        help="dataset root (default: the synthetic dataset in data/synth, rendered on first use)",
    )
    p.add_argument(
        "--out",
        default=None,
        type=output_dir,
        help="output folder (default outputs/figures; with --from: beside the sidecar)",
    )
    p.add_argument(
        "--format",
        type=figure_formats,
        default=None,
        help="comma-separated: pdf, png, svg (default pdf,png)",
    )
    p.add_argument("--dpi", type=positive_float, default=None, help="PNG resolution (default 200)")
    p.add_argument(
        "--from",
        dest="from_sidecar",
        default=None,
        metavar="SIDECAR",
        help="redraw the figure of a NAME.json sidecar (same weights, data, seed, format)",
    )
    p.add_argument("--seed", type=int, default=0, help="which images are shown")
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_figures)

    p = sub.add_parser("aam-eval", help="AAM interpreter: ADRE, X-mAP, rank-1/mAP, localisation")
    p.add_argument("--weights", required=True, help="interpreter weights (name or path)")
    p.add_argument("--data", required=True, help="dataset root with its attribute file")
    p.add_argument(
        "--out", default=None, type=output_dir, help="folder for metrics.json + localisation.csv"
    )
    p.add_argument("--card", default=None, help="model card to add the metrics to")
    p.add_argument("--target-name", default=None, help="shipped name of the target (card)")
    p.set_defaults(handler=_aam_eval)

    p = sub.add_parser("aam-study", help="AAM interpreters sharing N = 1..5 target stages")
    p.add_argument("--target", required=True, help="weights of the model to explain")
    p.add_argument("--data", required=True, help="dataset root with its attribute file")
    p.add_argument(
        "--out", required=True, type=output_dir, help="folder: one run per N + table.csv"
    )
    p.add_argument(
        "--stages", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="shared stages N to train"
    )
    p.add_argument("--config", default=None, help="JSON TrainConfig of every run")
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs per interpreter")
    p.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_aam_study)

    p = sub.add_parser(
        "demo", help="the main job: data, contact sheet, shipped baseline, rank list"
    )
    p.add_argument("--data", default="data/synth", help="where the synthetic dataset lives")
    p.add_argument("--out", default="outputs", type=output_dir, help="where figures go")
    p.add_argument("--ids", type=positive_int, default=None, help="identities (default 500)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed")
    p.set_defaults(handler=_demo)

    p = sub.add_parser(
        "list", help="registered models, the explanation methods each supports, and the weights"
    )
    p.set_defaults(handler=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the sub-command inside the error boundary (see module doc)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted before or after the sub-command
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    run: Command = args.handler  # each sub-parser names its function (set_defaults)
    return run_guarded(args.command, lambda: run(args), debug=debug)


if __name__ == "__main__":
    sys.exit(main())
