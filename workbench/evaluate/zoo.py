"""The model zoo report: every shipped model on one test split, one table.

``workbench zoo --data DIR --out DIR`` writes ``zoo.md`` and ``zoo.csv`` (pandas): for each model
card (:func:`workbench.list_pretrained`), at the card's input size, on the same query/gallery:

* rank-1, mAP, mINP (Market-1501 protocol, cosine, no re-ranking, no flip — as the cards);
* same- vs cross-camera rank-1 (:meth:`RankingResult.camera_gap`);
* parameters at inference — those of the modules that run in an eval-mode forward (training-only
  branches such as SA's deep supervision or DAAF's decoders are not counted) — and all parameters;
* GFLOPs of one image at inference, by ``torch.utils.flop_counter.FlopCounterMode`` (it counts
  matrix products and convolutions, 2 FLOPs per multiply-add; element-wise ops are not counted);
* CPU latency per image at batch 1 and batch 32 (median of ``repeats`` timed forwards after a
  warm-up, ``torch.no_grad``, float32, the threads torch uses by default). Latency depends on the
  machine and its load: compare rows of one report, not reports of different machines.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.models.base import eval_mode

__all__ = [
    "ZOO_COLUMNS",
    "inference_flops",
    "inference_parameters",
    "latency_ms",
    "markdown_table",
    "zoo_report",
]

ZOO_COLUMNS = [
    "model",
    "architecture",
    "input",
    "rank1",
    "mAP",
    "mINP",
    "rank1_same_camera",
    "rank1_cross_camera",
    "params_M",
    "params_total_M",
    "GFLOPs",
    "ms_per_image_b1",
    "ms_per_image_b32",
]


def inference_parameters(model: nn.Module, images: torch.Tensor) -> int:
    """Parameters of the modules an eval-mode forward of ``images`` actually calls."""
    called: set[int] = set()
    handles = [
        m.register_forward_pre_hook(lambda mod, _a: called.add(id(mod))) for m in model.modules()
    ]
    try:
        with eval_mode(model), torch.no_grad():
            model(images)
    finally:
        for h in handles:
            h.remove()
    seen: set[int] = set()
    total = 0
    for m in model.modules():
        if id(m) not in called:
            continue
        for p in m.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total


def inference_flops(model: nn.Module, images: torch.Tensor) -> int:
    """FLOPs of one eval-mode forward of ``images`` (``FlopCounterMode`` total)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with eval_mode(model), counter, torch.no_grad():
        model(images)
    return int(counter.get_total_flops())


def latency_ms(model: nn.Module, images: torch.Tensor, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time per image (ms) of an eval-mode forward of ``images`` on its device."""
    times = []
    with eval_mode(model), torch.no_grad():
        for i in range(warmup + repeats):
            t0 = time.perf_counter()
            model(images)
            if images.is_cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times) / images.shape[0]


def _card_input_size(card: dict[str, Any]) -> tuple[int, int]:
    size = card.get("input_size") or card["model_config"].get("input_size") or (256, 128)
    return int(size[0]), int(size[1])


def zoo_report(
    data: str | Path,
    out: str | Path | None = None,
    cards: Iterable[dict[str, Any] | str] | None = None,
    device: str = "auto",
    repeats: int = 5,
    batch_sizes: tuple[int, int] = (1, 32),
    workers: int = 2,
    progress: bool = True,
) -> Any:
    """Evaluate every card on ``data``'s query/gallery; returns the pandas table.

    Args:
        data: dataset root (any layout ``load_split`` reads), e.g. the synthetic data.
        out: folder for ``zoo.csv`` and ``zoo.md`` (None: write nothing).
        cards: cards or names/paths to include (default: :func:`list_pretrained`, all shipped).
        device: where retrieval features are extracted; latency is always measured on CPU.
        repeats: timed forwards per latency measurement (median).
        batch_sizes: the two batch sizes of the latency columns.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from workbench.data.readers import load_split
    from workbench.evaluate.protocol import evaluate_model
    from workbench.pretrained import find_card, list_pretrained, load_pretrained

    if cards is None:
        cards = list_pretrained()
    resolved = [find_card(c) if isinstance(c, (str, Path)) else c for c in cards]
    if not resolved:
        raise FileNotFoundError(
            "no model cards found: ship weights into weights/ (workbench export) or set "
            "$WORKBENCH_WEIGHTS to a folder of cards"
        )
    split = load_split(data)
    b1, bn = batch_sizes
    rows = []
    bar = tqdm(resolved, desc="zoo", unit="model", disable=not progress)
    for card in bar:
        bar.set_postfix_str(card["name"])
        model = load_pretrained(card["_card_path"])
        h, w = _card_input_size(card)
        result = evaluate_model(
            model, split, h, w, device=device, workers=workers, progress=progress
        )
        metrics = result.headline()
        model = model.cpu()
        one = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))
        many = torch.randn(bn, 3, h, w, generator=torch.Generator().manual_seed(0))
        rows.append(
            {
                "model": card["name"],
                "architecture": card["architecture"],
                "input": f"{h}x{w}",
                "rank1": metrics["rank1"],
                "mAP": metrics["mAP"],
                "mINP": metrics["mINP"],
                "rank1_same_camera": metrics["rank1_same_camera"],
                "rank1_cross_camera": metrics["rank1_cross_camera"],
                "params_M": inference_parameters(model, one) / 1e6,
                "params_total_M": sum(p.numel() for p in model.parameters()) / 1e6,
                "GFLOPs": inference_flops(model, one) / 1e9,
                f"ms_per_image_b{b1}": latency_ms(model, one.expand(b1, -1, -1, -1), repeats),
                f"ms_per_image_b{bn}": latency_ms(model, many, repeats),
            }
        )
    table = pd.DataFrame(rows).round(
        {
            "rank1": 1,
            "mAP": 1,
            "mINP": 1,
            "rank1_same_camera": 1,
            "rank1_cross_camera": 1,
            "params_M": 3,
            "params_total_M": 3,
            "GFLOPs": 3,
            f"ms_per_image_b{b1}": 2,
            f"ms_per_image_b{bn}": 2,
        }
    )
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "zoo.csv", index=False)
        note = (
            f"Data: {data} ({split.name}); query {len(split.query)}, gallery "
            f"{len(split.gallery)}. Market-1501 protocol, cosine, no re-ranking, no flip. "
            f"Params at inference: modules an eval forward runs. GFLOPs: FlopCounterMode, one "
            f"image. Latency: CPU ({torch.get_num_threads()} threads), median of {repeats}, "
            f"ms per image.\n"
        )
        (out / "zoo.md").write_text(note + "\n" + markdown_table(table) + "\n")
    return table


def markdown_table(table: Any) -> str:
    """A pipe table of a DataFrame (no ``tabulate`` dependency, unlike ``to_markdown``)."""
    cols = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(cols) + " |"]
    lines.append(
        "|"
        + "|".join("---:" if table[c].dtype.kind in "fiu" else "---" for c in table.columns)
        + "|"
    )
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)
