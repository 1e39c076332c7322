"""Turn a finished training run into shippable weights: fp16 safetensors + a model card.

``workbench export --run RUN --name NAME [--folder weights] [--overwrite]``

Existing weights are never replaced without ``overwrite``, and the name is a plain name. The
card is published last (``save_pretrained``): an export that fails midway — in the evaluation,
on a full disk, by Ctrl-C — leaves nothing in ``folder``.

The card's metrics are measured on the *exported* (fp16-rounded) weights, so that
``workbench eval --weights NAME`` reproduces them; the card also keeps the run's own final
metrics, the full training config, the data it saw and the command that rebuilds it.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch


def export_run(
    run: str | Path,
    name: str,
    folder: str | Path = "weights",
    dtype: torch.dtype = torch.float16,
    evaluate: bool = True,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export ``run/model.safetensors`` as ``folder/name.safetensors`` with ``folder/name.json``."""
    from workbench.data.readers import load_split
    from workbench.evaluate.protocol import evaluate_model
    from workbench.pretrained import check_can_save, load_pretrained, save_pretrained
    from workbench.train.config import TrainConfig
    from workbench.train.lock import RunLock

    run = Path(run)
    check_can_save(folder, name, overwrite)  # before any work
    if not run.is_dir():
        raise FileNotFoundError(f"{run}: no such run folder; pass the --out of `workbench train`")
    if not (run / "model.safetensors").exists():
        raise FileNotFoundError(
            f"{run}: no model.safetensors; this is not a finished run of `workbench train` "
            f"(train it to the end, or --resume it)"
        )
    with RunLock(run, "workbench export"):  # not while `workbench train` writes the run
        model = load_pretrained(run / "model.safetensors")
    run_card = model.card
    config = TrainConfig.from_dict(run_card["train_config"])
    data_root = Path(config.data.root)
    data: dict[str, Any] = {"root": str(config.data.root)}
    if (data_root / "synth.json").exists():
        meta = json.loads((data_root / "synth.json").read_text())
        data = {
            "dataset": "workbench synthetic pedestrians",
            "generator_version": meta["version"],
            "seed": meta["seed"],
            "ids": meta["ids"],
            "image_size": [meta["height"], meta["width"]],
            "command": f"workbench synth --out {config.data.root} --ids {meta['ids']} "
            f"--seed {meta['seed']} --height {meta['height']} --width {meta['width']}",
        }
    else:
        from workbench.train.pretrain import data_card

        data = data_card(data_root) or data  # the pretraining set (workbench pretrain)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line]
    if not log:
        raise ValueError(f"{run / 'log.jsonl'}: the run logged no completed epoch; nothing to ship")
    card_fields: dict[str, Any] = {
        "input_size": run_card["input_size"],
        "data": data,
        "train_config": run_card["train_config"],
        "training": {
            "epochs": len(log),
            "seconds": round(sum(r["seconds"] for r in log), 1),
            "images_per_second": round(sum(r["images_per_second"] for r in log) / len(log), 1),
            "final_train_accuracy": round(log[-1]["accuracy"], 4),
            "machine": f"{platform.machine()} CPU ({torch.get_num_threads()} threads), "
            f"torch {torch.__version__}",
            "run_metrics_fp32": run_card.get("metrics", {}),
        },
        **({"init": run_card["init"]} if "init" in run_card else {}),
        "reproduce": (
            f"{data.get('command', '')} && workbench train --config weights/{name}.json "
            f"--out runs/{name} && workbench export --run runs/{name} --name {name}"
        ).lstrip(" &"),
    }
    split = load_split(config.data.root) if evaluate else None  # a bad dataset fails here

    def measure(exported: torch.nn.Module) -> dict[str, Any]:
        h, w = run_card["input_size"]
        result = evaluate_model(exported, split, h, w, progress=progress)
        metrics: dict[str, Any] = {k: round(v, 2) for k, v in result.headline().items()}
        metrics["protocol"] = "Market-1501 (cosine, no re-ranking, no flip)"
        return metrics

    return save_pretrained(
        model,
        folder,
        name,
        run_card["architecture"],
        run_card["model_config"],
        dtype,
        overwrite=overwrite,
        measure=measure if evaluate else None,
        **card_fields,
    )


def export_imported(
    path: str | Path,
    name: str,
    folder: str | Path = "weights",
    source: str | None = None,
    dtype: torch.dtype = torch.float32,
    overwrite: bool = False,
    **config: Any,
) -> dict[str, Any]:
    """Import a BoT / FastReID / torchreid checkpoint and ship it as ``folder/name.safetensors``.

    ``workbench export --from model.pth --name NAME``. The card names the source file (and its
    sha256), the source codebase and the full model config (every option the import inferred),
    so ``load_pretrained(NAME)`` rebuilds the same model. Weights stay float32 by default, so the
    loaded model returns exactly the imported model's embeddings; ``dtype=torch.float16`` halves
    the file. No metrics are measured (run ``workbench eval --weights NAME --data ...``).
    """
    from workbench.models.importer import import_checkpoint
    from workbench.pretrained import check_can_save, save_pretrained, sha256_file

    check_can_save(folder, name, overwrite)  # before any work
    model = import_checkpoint(path, source, **config)
    report = model.import_report
    card_fields: dict[str, Any] = {
        "input_size": list(model.config.input_size),
        "source": report.source,
        "source_file": Path(path).name,
        "source_sha256": sha256_file(path),
        "embedding": report.embedding,
        "imported": {"mapped": report.mapped, "dropped": report.dropped, "filled": report.filled},
        "reproduce": f"workbench export --from {Path(path).name} --source {report.source} "
        f"--name {name}",
    }
    return save_pretrained(
        model,
        folder,
        name,
        "bot",
        model.config.to_dict(),
        dtype,
        overwrite=overwrite,
        **card_fields,
    )
