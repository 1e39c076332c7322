"""Score a method's maps on a whole split against ground truth: ``workbench explain --report``.

For each sampled query, the pair explained is the query and its **closest true match from another
camera** (the match the model finds easiest). Both sides are scored:

* energy on the person mask vs the mask's area share (chance), and their ratio;
* pointing game on the person, and where the maximum lands among the part labels (head, upper
  body, lower body, shoes, carried items, background);
* deletion / insertion of the query's pixels in the map's order: the area under the pair-distance
  curve, against a random pixel order (a ratio > 1 for deletion, < 1 for insertion = the map knows
  which pixels carry the match).

Needs masks (the synthetic data has them; any Market-style folder with a ``masks/`` folder does).
Returns pandas tables; nothing is drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from workbench.data.annotations import PART_LABELS
from workbench.explain.base import ExplainError, explain_pair
from workbench.explain.metrics import (
    area_share,
    curve_area,
    deletion_curve,
    energy_in_mask,
    insertion_curve,
    pointing_game,
)

__all__ = ["FaithfulnessReport", "choose_pairs", "faithfulness_report", "split_distances"]


@dataclass
class FaithfulnessReport:
    """Per-image rows (one per pair side) and the summary table of one method and layer."""

    rows: pd.DataFrame
    summary: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    def to_markdown(self) -> str:
        """The settings and the summary table as a Markdown page."""
        s = self.settings
        head = (
            f"# Faithfulness of {s.get('method')} at {s.get('layer')} ({s.get('model')})\n\n"
            f"{s.get('pairs')} pairs (query, closest true match from another camera), seed "
            f"{s.get('seed')}; energy and pointing on the person mask, deletion/insertion of the "
            f"pair distance over {s.get('steps')} steps against a random pixel order.\n\n"
        )
        return head + self.summary.to_markdown(floatfmt=".3f") + "\n"

    def save(self, out: str | Path) -> list[Path]:
        """Write ``summary.csv``, ``summary.md`` and ``pairs.csv`` into folder ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "summary.csv", out / "summary.md", out / "pairs.csv"]
        self.summary.to_csv(paths[0])
        paths[1].write_text(self.to_markdown())
        self.rows.to_csv(paths[2], index=False)
        return paths


_CURVES = ("deletion", "deletion_random", "insertion", "insertion_random")


def cross_camera_matches(query: pd.DataFrame, gallery: pd.DataFrame) -> np.ndarray:
    """(Q, G) bool: gallery row g shows query row q's person from another camera."""
    q_pid, q_cam = query.pid.to_numpy(), query.camid.to_numpy()
    g_pid, g_cam = gallery.pid.to_numpy(), gallery.camid.to_numpy()
    return (g_pid[None] == q_pid[:, None]) & (g_cam[None] != q_cam[:, None])


def choose_pairs(
    distmat: np.ndarray,
    query: pd.DataFrame,
    gallery: pd.DataFrame,
    count: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """``(query_row, gallery_row)`` of sampled queries and their closest cross-camera true match."""
    valid = cross_camera_matches(query, gallery)
    has = valid.any(1)
    masked = np.where(valid, distmat, np.inf)
    best = masked.argmin(1)
    rows = np.flatnonzero(has)
    if count is not None and count < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=count, replace=False))
    return pd.DataFrame({"query_row": rows, "gallery_row": best[rows]})


def split_distances(
    model: nn.Module,
    split: Any,
    input_size: tuple[int, int],
    device: str | torch.device = "auto",
    progress: bool = False,
) -> np.ndarray:
    """(query × gallery) ranking distances of a split: the model's ``ranking_metric``, from
    :func:`~workbench.evaluate.protocol.evaluate_model` (the one ranking path)."""
    from workbench.evaluate.protocol import evaluate_model

    return evaluate_model(model, split, *input_size, device=device, progress=progress).distmat


def _batches(dataset: Any, indices: np.ndarray, size: int) -> Iterator[dict[str, torch.Tensor]]:
    from workbench.data.dataset import collate

    for start in range(0, len(indices), size):
        yield collate([dataset[int(i)] for i in indices[start : start + size]])


def faithfulness_report(
    model: nn.Module,
    split: Any,
    method: str = "gradcam",
    *,
    layer: str | None = None,
    input_size: tuple[int, int] | None = None,
    pairs: int | None = 200,
    seed: int = 0,
    batch_size: int = 16,
    steps: int = 10,
    device: str | torch.device = "auto",
    progress: bool = True,
    distmat: np.ndarray | None = None,
    curves: bool = True,
    **params: Any,
) -> FaithfulnessReport:
    """Explain ``pairs`` (query, true match) pairs of ``split`` and score the maps (module doc).

    Args:
        model: a workbench model (eval embedding, ``layer_info``).
        split: a :class:`~workbench.data.split.Split` whose tables have ``mask_path``.
        method, layer, **params: as for :func:`workbench.explain.explain_pair`.
        input_size: (H, W) the model takes (default: ``model.card["input_size"]`` or the config's).
        pairs: how many queries to sample (None: all that have a cross-camera match).
        steps: deletion/insertion resolution (steps + 1 forward passes per side and order).
        distmat: the model's (query × gallery) distances if already computed (else extracted).
        curves: score deletion / insertion too (4 × (steps + 1) forwards per side); without
            them the ``*_auc`` columns are NaN and only the mask scores are computed.
    """
    from tqdm.auto import tqdm

    from workbench.data.dataset import ReIDDataset
    from workbench.data.transforms import build_transforms
    from workbench.device import resolve_device
    from workbench.evaluate.distance import pair_distance, ranking_metric
    from workbench.models.base import eval_mode
    from workbench.models.inputs import check_input_size

    for part in ("query", "gallery"):
        if "mask_path" not in getattr(split, part).columns:
            raise ExplainError(
                f"the {part} table has no masks (mask_path column): the faithfulness report "
                f"scores maps against person masks; use the synthetic data (workbench synth) or a "
                f"Market-style folder with a masks/ folder beside the images"
            )
    dev = resolve_device(device)
    model = model.to(dev)
    metric = ranking_metric(model)  # deletion / insertion move the ranking's own distance
    with eval_mode(model):  # the mode the model came in is restored
        if input_size is None:
            card = getattr(model, "card", None) or {}
            input_size = tuple(card.get("input_size") or model.config.input_size)
        check_input_size(model, input_size, where="faithfulness_report(input_size)")
        h, w = input_size
        if distmat is None:
            distmat = split_distances(model, split, (h, w), dev, progress)
        chosen = choose_pairs(distmat, split.query, split.gallery, pairs, seed)
        if chosen.empty:
            raise ExplainError("no query has a true match from another camera in the gallery")
        transform = build_transforms(h, w, train=False)
        sets = {p: ReIDDataset(getattr(split, p), transform) for p in ("query", "gallery")}
        gen = torch.Generator(device="cpu").manual_seed(seed)
        records: list[dict[str, Any]] = []
        q_idx, g_idx = chosen.query_row.to_numpy(), chosen.gallery_row.to_numpy()
        bar = tqdm(
            total=len(chosen), desc=f"{method} faithfulness", disable=not progress, leave=False
        )
        for qb, gb in zip(
            _batches(sets["query"], q_idx, batch_size),
            _batches(sets["gallery"], g_idx, batch_size),
            strict=True,
        ):
            q, g = qb["image"].to(dev), gb["image"].to(dev)
            pair = explain_pair(method, model, q, g, layer=layer, **params)
            with torch.no_grad():
                emb_q, emb_g = model(q), model(g)
            for side, images, batch, exp, partner in (
                ("query", q, qb, pair.query, emb_g),
                ("gallery", g, gb, pair.gallery, emb_q),
            ):
                maps = exp.resized((h, w))
                if maps.dim() == 4:  # several maps per image: score their mean
                    maps = maps.mean(1)
                parts = batch["parts"].to(dev)
                person = parts > 0
                top = maps.flatten(1).argmax(1)
                top_part = parts.flatten(1).gather(1, top[:, None])[:, 0]

                def dist(x: torch.Tensor, partner: torch.Tensor = partner) -> torch.Tensor:
                    return pair_distance(model(x), partner, metric)  # the ranking's distance

                if curves:
                    noise = torch.rand(maps.shape, generator=gen).to(dev)
                    areas = {
                        "deletion": deletion_curve(dist, images, maps, steps),
                        "deletion_random": deletion_curve(dist, images, noise, steps),
                        "insertion": insertion_curve(dist, images, maps, steps),
                        "insertion_random": insertion_curve(dist, images, noise, steps),
                    }
                    areas = {k: curve_area(v).cpu() for k, v in areas.items()}
                else:
                    nan = torch.full((images.shape[0],), float("nan"))
                    areas = dict.fromkeys(_CURVES, nan)
                energy = energy_in_mask(maps, person).cpu()
                chance = area_share(person).cpu()
                hit = pointing_game(maps, person).cpu()
                for i in range(images.shape[0]):
                    records.append(
                        {
                            "side": side,
                            "path": batch["path"][i],
                            "pid": int(batch["pid"][i]),
                            "distance": float(pair.distance[i]),
                            "energy": float(energy[i]),
                            "chance": float(chance[i]),
                            "pointing": bool(hit[i]),
                            "top_part": PART_LABELS.get(int(top_part[i]), str(int(top_part[i]))),
                            **{f"{k}_auc": float(v[i]) for k, v in areas.items()},
                        }
                    )
            bar.update(q.shape[0])
        bar.close()
        rows = pd.DataFrame.from_records(records)
        settings = {
            "method": method,
            "layer": pair.query.layer,
            "model": getattr(model, "model_name", type(model).__name__),
            "pairs": len(chosen),
            "seed": seed,
            "steps": steps if curves else None,
            "input_size": [h, w],
        }
        return FaithfulnessReport(rows, summarize(rows), settings)


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per side: means of the scores, their ratios to chance / random, part shares."""
    out = {}
    for side, group in rows.groupby("side", sort=False):
        parts = group.top_part.value_counts(normalize=True)
        out[side] = {
            "energy_on_person": group.energy.mean(),
            "chance": group.chance.mean(),
            "energy_over_chance": group.energy.mean() / group.chance.mean(),
            "pointing_person": group.pointing.mean(),
            "deletion_auc": group.deletion_auc.mean(),
            "deletion_auc_random": group.deletion_random_auc.mean(),
            "deletion_over_random": group.deletion_auc.mean() / group.deletion_random_auc.mean(),
            "insertion_auc": group.insertion_auc.mean(),
            "insertion_auc_random": group.insertion_random_auc.mean(),
            "insertion_over_random": group.insertion_auc.mean() / group.insertion_random_auc.mean(),
            **{f"max_on_{name}": parts.get(name, 0.0) for name in PART_LABELS.values()},
        }
    return pd.DataFrame(out)
