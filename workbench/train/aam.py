"""AAM interpreter runs: the metrics report of trained weights and the N-stage study.

* :func:`interpreter_report` (``workbench aam-eval``): ADRE, X-mAP_e, X-mAP_c, interpreter vs
  target rank-1/mAP and the localisation score per attribute on a split's query × gallery
  (``evaluate.explain_metrics.evaluate_interpreter``), the average positive / negative AAMs
  (supplementary Fig. 2), written to a folder and optionally into the weights' model card.
* :func:`stage_study` (``workbench aam-study``): trains one interpreter per number of shared
  stages N (supplementary Table 1: N = 1..5), evaluates each and writes the table; the AAMs of
  N = 1, 3, 5 on a fixed set of query images are kept for the figure recipe (Fig. 4).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

__all__ = ["FIGURE_STAGES", "default_recipe", "interpreter_report", "stage_study"]

FIGURE_STAGES = (1, 3, 5)  # supplementary Fig. 4
FIGURE_IMAGES = 16  # query images whose AAMs are kept per N


def default_recipe() -> dict[str, Any]:
    """The interpreter's training recipe (a ``TrainConfig`` dict), scaled to the synthetic data.

    AMD (aam.md §2.4): Adam 1e-4 constant after warm-up, 60 epochs, batch 6×4, random erasing.
    Here: Adam 3e-4 (a CPU budget of ~2k steps, not 32k), 1 warm-up epoch, 20 epochs with one
    decay at 80 %, batch 8×4, no random erasing (it hides the attributes the prior loss is told
    about).
    """
    return {
        "model": "interpreter",
        "data": {"batch_size": 32, "num_instances": 4, "erasing_p": 0.0, "workers": 1},
        "optim": {
            "lr": 3e-4,
            "weight_decay": 5e-4,
            "epochs": 20,
            "warmup_epochs": 1,
            "milestones": [16],
            "gamma": 0.1,
        },
        "eval_every": 0,
    }


def _recipe(config: str | Path | None, data: str | Path):
    from workbench.train.config import TrainConfig

    if config is not None:
        cfg = TrainConfig.load(config)
    else:
        d = default_recipe()
        cfg = TrainConfig.from_dict({**d, "data": {**d["data"], "root": str(data)}})
    cfg.data.root = str(data)
    cfg.model = "interpreter"
    return cfg


def interpreter_report(
    weights: str | Path,
    data: str | Path,
    out: str | Path | None = None,
    card: str | Path | None = None,
    target_name: str | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate interpreter ``weights`` on ``data``'s test split; write the results.

    ``out``: folder for ``metrics.json``, ``localisation.csv`` and ``average_aams.safetensors``
    ((M, 2, h, w) positive / negative). ``card``: a model card JSON that gets an
    ``explanation`` section (metrics, localisation, protocol) and a ``target`` section
    (``target_name``, the target's architecture and sha256).
    """
    import numpy as np
    from safetensors.torch import save_file

    from workbench.data.attributes import check_attributes, find_attribute_file, load_attributes
    from workbench.data.readers import load_split
    from workbench.evaluate.explain_metrics import evaluate_interpreter
    from workbench.evaluate.interpretations import average_aams
    from workbench.pretrained import load_pretrained

    model = load_pretrained(weights, device=device)
    h, w = model.config.input_size
    split = load_split(data)
    path = Path(data) if Path(data).is_file() else find_attribute_file(data)
    attributes = load_attributes(path, "test")
    check_attributes(attributes, split)
    result = evaluate_interpreter(model, split, h, w, attributes, device=device, progress=progress)
    metrics = {
        k: v if isinstance(v, int) else round(float(v), 3) for k, v in result["metrics"].items()
    }
    loc = result["localisation"]
    # average AAMs over the annotated test images (query + gallery)
    q, g = result["query"], result["gallery"]
    pids = np.concatenate([q.pids, g.pids])
    known = np.isin(pids, attributes.index.to_numpy())
    cols = model.config.attribute_indices
    table = attributes.astype("Int64").fillna(-1).astype("int64")
    labels = table.reindex(pids[known]).to_numpy()[:, cols]
    aams = torch.cat([q.aams, g.aams])[torch.from_numpy(known)]
    average = average_aams(aams, labels)
    report = {"metrics": metrics, "localisation": loc, "average_aams": average}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        loc.to_csv(out / "localisation.csv", index=False)
        save_file({"average_aams": average.contiguous()}, str(out / "average_aams.safetensors"))
    if card is not None:
        card_path = Path(card)
        content = json.loads(card_path.read_text())
        content["explanation"] = {
            "metrics": metrics,
            "localisation": [
                {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
                for row in loc.to_dict("records")
            ],
            "attributes": list(model.attribute_names),
            "protocol": "query x gallery of the test split; target distance = Euclidean on the "
            "target's embedding; X-mAP over pairs of annotated identities (N = 0 rule, lambda 2); "
            "ADRE over all pairs; rank-1/mAP by the distilled distance mean_k d^k; localisation "
            "= share of AAM mass in the attribute's part mask vs the mask's area share",
        }
        if "metrics" in content:  # export's: cosine on the concatenated attribute embeddings
            content["metrics_concatenated_embedding"] = content.pop("metrics")
        content["metrics"] = {
            "rank1": metrics["rank1"],
            "mAP": metrics["mAP"],
            "protocol": "Market-1501 protocol ranked by the distilled distance mean_k d^k "
            "(Euclidean per attribute), no re-ranking, no flip",
        }
        content["target"] = {
            "name": target_name or model.config.target,
            "built_from": model.config.target,
            "sha256": model.config.target_sha256,
            "architecture": model.config.target_spec,
        }
        card_path.write_text(json.dumps(content, indent=2) + "\n")
    return report


def stage_study(
    target: str | Path,
    data: str | Path,
    out: str | Path,
    stages: Sequence[int] = (1, 2, 3, 4, 5),
    config: str | Path | None = None,
    epochs: int | None = None,
    max_steps: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Train (or resume) one interpreter per N in ``stages`` and tabulate their metrics.

    Runs go to ``out/n{N}`` (resumable: an existing checkpoint is continued); the table is
    written as ``out/table.csv`` / ``table.json``; for N in :data:`FIGURE_STAGES` the AAMs of
    the first ``FIGURE_IMAGES`` query images go to ``out/n{N}/figure_aams.safetensors``.
    """
    from safetensors.torch import save_file

    from workbench.data.readers import load_split
    from workbench.evaluate.interpretations import interpret_table
    from workbench.pretrained import load_pretrained
    from workbench.train.checkpoint import CHECKPOINT_NAME
    from workbench.train.trainer import Trainer

    out = Path(out)
    rows = []
    split = load_split(data)
    for n in stages:
        cfg = _recipe(config, data)
        cfg.model_config = {**cfg.model_config, "target": str(target), "target_spec": None,
                            "shared_stages": int(n)}  # fmt: skip
        if epochs is not None:
            cfg.optim.epochs = epochs
        if max_steps is not None:
            cfg.max_steps_per_epoch = max_steps
        run = out / f"n{n}"
        resume = (run / CHECKPOINT_NAME).exists()
        if not (resume and (run / "model.safetensors").exists()):
            Trainer(cfg, run, resume=resume, progress=progress).fit()
        report = interpreter_report(run / "model.safetensors", data, out=run / "eval")
        rows.append({"N": n, **report["metrics"]})
        if n in FIGURE_STAGES:
            model = load_pretrained(run / "model.safetensors")
            h, w = model.config.input_size
            head = split.query.iloc[:FIGURE_IMAGES]
            aams = interpret_table(model, head, h, w, masks=False).aams
            save_file({"aams": aams.contiguous()}, str(run / "figure_aams.safetensors"))
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "table.csv", index=False)
    (out / "table.json").write_text(table.to_json(orient="records", indent=2) + "\n")
    return table


def snapshot_run(run: str | Path) -> Path:
    """Write ``run/model.safetensors`` (+ card) from the last checkpoint of an unfinished run.

    For runs stopped early (CPU budget): ``workbench export --run RUN`` then works as after a
    finished run; the card's ``training`` section counts the epochs in ``log.jsonl``.
    """
    from workbench.models.registry import load_checkpoint_state
    from workbench.pretrained import build_model_with_target, save_pretrained
    from workbench.train.checkpoint import load_checkpoint
    from workbench.train.config import TrainConfig

    run = Path(run)
    ckpt = load_checkpoint(run)
    cfg = TrainConfig.from_dict(ckpt["config"])
    state = ckpt["model"]
    mc = dict(cfg.model_config)
    n_classes = len(ckpt["pid_to_label"])
    model = build_model_with_target(
        cfg.model, **mc, num_classes=n_classes, input_size=(cfg.data.height, cfg.data.width)
    )
    load_checkpoint_state(model, state, source=str(run / "checkpoint.pt"))
    save_pretrained(
        model, run, "model", cfg.model, model.config.to_dict(), dtype=torch.float32,
        input_size=[cfg.data.height, cfg.data.width], metrics={},
        train_config=cfg.to_dict(), snapshot_epoch=int(ckpt["epoch"]),
    )  # fmt: skip
    return run / "model.safetensors"
