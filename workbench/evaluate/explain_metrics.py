"""Explanation metrics of the AAM interpreter: X-mAP_e / X-mAP_c, ADRE, AAM localisation.

Chen et al., ICCV 2021 (``shared/reference/aam.md`` §3; official code
``ReidEvaluator.explain_eval``, log keys ``Ex_mAP_d`` / ``Ex_mAP_s``):

* **X-mAP_e**: per query–gallery pair rank the M attributes by their share c^k, largest first;
  the relevant items are the *exclusive* attributes (the two identities differ in them); AP over
  that ranking of M items, averaged over pairs with at least one exclusive attribute.
* **X-mAP_c**: pairs with N ≥ 1 exclusive attributes rank by c^k smallest first, relevant = the
  common attributes, AP / (M − N). Pairs with N = 0 (all common) rank largest first and count an
  attribute as relevant only if c^k ≤ λ/M (λ = ``overflow`` = 2): an attribute taking more than
  twice the uniform share is an error; AP is divided by M. Averaged over pairs with M − N ≥ 1.
* **ADRE**: mean |d − d̂| / d (a fraction here; the paper prints percent).

The **localisation score** has no counterpart in the paper: the synthetic data knows its part
masks, so for attributes tied to a region (hat, hair → head; backpack / bag / handbag → that
item; upper colours, sleeve → upper body; lower colours, lower length / type → lower body) it
measures the share of the AAM's energy inside the region against the region's share of the
image (the chance level of a map that ignores the image).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from workbench.data.annotations import ATTRIBUTE_REGIONS, PART_LABELS, attribute_region_masks
from workbench.data.split import Split

__all__ = [
    "adre",
    "evaluate_interpreter",
    "localisation_scores",
    "x_ap",
    "x_map",
]


def _ap_rows(relevant: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """AP of each row of a ranked (P, M) relevance matrix: Σ precision@r over relevant r / denom."""
    hits = np.cumsum(relevant, axis=1)  # (P, M)
    ranks = np.arange(1, relevant.shape[1] + 1)[None, :]
    precision_sum = (relevant * hits / ranks).sum(axis=1)
    return precision_sum / np.maximum(denominator, 1)


def x_ap(
    shares: np.ndarray, exclusive: np.ndarray, overflow: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-pair APs of :func:`x_map`: ``(ap_e, has_e, ap_c, has_c)``, (P,) each.

    ``has_e`` / ``has_c`` say which pairs enter X-mAP_e (N ≥ 1) / X-mAP_c (M − N ≥ 1).
    """
    s, e = np.asarray(shares, np.float64), np.asarray(exclusive, dtype=bool)
    p, m = s.shape
    n = e.sum(1)  # (P,)
    desc = np.argsort(-s, axis=1, kind="stable")
    asc = np.argsort(s, axis=1, kind="stable")
    rows = np.arange(p)[:, None]
    # exclusive: descending order, relevant = exclusive
    ap_e = _ap_rows(e[rows, desc].astype(np.float64), n)
    # common, N >= 1: ascending order, relevant = common
    ap_c = _ap_rows((~e)[rows, asc].astype(np.float64), m - n)
    # common, N = 0: descending order, relevant = share <= overflow / M, AP / M
    ok = (s <= overflow / m)[rows, desc].astype(np.float64)
    ap_c = np.where(n == 0, _ap_rows(ok, np.full(p, m)), ap_c)
    return ap_e, n >= 1, ap_c, (m - n) >= 1


def x_map(
    shares: Tensor | np.ndarray, exclusive: Tensor | np.ndarray, overflow: float = 2.0
) -> dict[str, float]:
    """X-mAP_e and X-mAP_c (fractions, like ``evaluate_ranking``'s mAP) of P pairs.

    Args:
        shares: (P, M) contributions c^k, rows summing to 1.
        exclusive: (P, M) bool, True where the two identities differ in attribute k.
        overflow: λ of the all-common rule (N = 0): relevant iff c^k ≤ λ/M.

    Returns:
        ``{"x_map_e", "x_map_c", "pairs_e", "pairs_c"}`` (the counts are the pairs averaged).
        Ties in ``shares`` are ranked in attribute order (stable sort).
    """
    s = np.asarray(shares.detach().cpu() if isinstance(shares, Tensor) else shares, np.float64)
    e = np.asarray(
        exclusive.detach().cpu() if isinstance(exclusive, Tensor) else exclusive, dtype=bool
    )
    if s.ndim != 2 or s.shape != e.shape:
        raise ValueError(
            f"x_map: shares {s.shape} and exclusive {e.shape} must both be (pairs, attributes)"
        )
    ap_e, has_e, ap_c, has_c = x_ap(s, e, overflow)
    return {
        "x_map_e": float(ap_e[has_e].mean()) if has_e.any() else float("nan"),
        "x_map_c": float(ap_c[has_c].mean()) if has_c.any() else float("nan"),
        "pairs_e": int(has_e.sum()),
        "pairs_c": int(has_c.sum()),
    }


def adre(d: Tensor | np.ndarray, d_hat: Tensor | np.ndarray) -> float:
    """Average distance relative error mean |d − d̂| / d over entries with d > 0 (a fraction)."""
    a = np.asarray(d.detach().cpu() if isinstance(d, Tensor) else d, np.float64).ravel()
    b = np.asarray(d_hat.detach().cpu() if isinstance(d_hat, Tensor) else d_hat, np.float64)
    b = b.ravel()
    if a.shape != b.shape:
        raise ValueError(f"adre: d {a.shape} and d_hat {b.shape} differ in size")
    keep = a > 0
    if not keep.any():
        raise ValueError("adre: no pair with a positive target distance")
    return float(np.mean(np.abs(a[keep] - b[keep]) / a[keep]))


def localisation_scores(
    aams: Tensor,
    parts: Tensor | None,
    attributes: Sequence[str],
    power: float = 1.0,
    labels: Mapping[str, np.ndarray] | None = None,
    masks: tuple[Tensor, list[str]] | None = None,
) -> pd.DataFrame:
    """AAM energy inside each region-tied attribute's region vs the region's area share.

    Args:
        aams: (B, M, h, w) positive attention maps, M = len(attributes).
        parts: (B, H, W) part labels of the same images (area-averaged to h×w, i.e. the map is
            read as constant over each cell, as the masking in the model uses it).
        attributes: the M attribute names of ``aams``.
        power: energy = AAM ** power (1: the attention mass the masked pooling sums).
        labels: optional ``{attribute: (B,) 0/1}``; adds ``inside_pos``/``chance_pos`` over
            the images that have the attribute.
        masks: precomputed :func:`attribute_region_masks` at the AAM grid (then ``parts`` is
            ignored and may be None).

    Returns:
        One row per region-tied attribute: ``attribute, region, images`` (with a non-empty
        region), ``inside`` (mean share of energy in the region), ``chance`` (mean area share),
        ``lift`` = inside / chance; ``above_chance`` = inside > chance.
    """
    if aams.dim() != 4 or aams.shape[1] != len(attributes):
        raise ValueError(f"aams {tuple(aams.shape)} must be (B, {len(attributes)}, h, w)")
    if masks is None:
        masks = attribute_region_masks(parts, attributes, aams.shape[-2:])
    masks, names = masks  # (B, R, h, w), R names
    index = [list(attributes).index(a) for a in names]
    energy = aams[:, index].double() ** power  # (B, R, h, w)
    inside = (energy * masks).sum((2, 3)) / energy.sum((2, 3)).clamp(min=1e-12)  # (B, R)
    area = masks.double().mean((2, 3))  # (B, R)
    present = area > 0
    rows = []
    for r, name in enumerate(names):
        keep = present[:, r]
        row = {
            "attribute": name,
            "region": "+".join(PART_LABELS[k] for k in ATTRIBUTE_REGIONS[name]),
            "images": int(keep.sum()),
            "inside": float(inside[keep, r].mean()) if keep.any() else float("nan"),
            "chance": float(area[keep, r].mean()) if keep.any() else float("nan"),
        }
        if labels is not None and name in labels:
            pos = keep & torch.as_tensor(np.asarray(labels[name]) == 1, device=keep.device)
            row["images_pos"] = int(pos.sum())
            row["inside_pos"] = float(inside[pos, r].mean()) if pos.any() else float("nan")
            row["chance_pos"] = float(area[pos, r].mean()) if pos.any() else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    table["lift"] = table["inside"] / table["chance"]
    table["above_chance"] = table["inside"] > table["chance"]
    return table


def evaluate_interpreter(
    model: torch.nn.Module,
    split: Split,
    height: int,
    width: int,
    attributes: pd.DataFrame,
    device: str | torch.device = "cpu",
    chunk: int = 64,
    overflow: float = 2.0,
    progress: bool = False,
) -> dict[str, Any]:
    """All explanation metrics of an interpreter on ``split.query`` × ``split.gallery``.

    Args:
        model: an :class:`~workbench.models.interpreter.Interpreter`.
        split: the dataset split (synthetic data adds the localisation scores).
        attributes: per-identity table of the test ids (``load_attributes(root, "test")``).
            X-mAP uses the pairs whose two identities are annotated (distractors / junk are
            not); ADRE and the rankings use every query–gallery pair.

    Returns:
        ``{"metrics": {...}, "localisation": DataFrame, "query": Interpretations,
        "gallery": Interpretations}``; metrics (percent, like ``RankingResult.summary``):
        ``adre``, ``x_map_e``, ``x_map_c``, ``rank1``/``mAP`` by the distilled distance,
        ``target_rank1``/``target_mAP`` by the target's Euclidean distance (the distance
        distilled) and ``target_rank1_cosine``/``target_mAP_cosine`` (the zoo's protocol).
    """
    from workbench.evaluate.distance import compute_distance
    from workbench.evaluate.interpretations import interpret_table
    from workbench.evaluate.ranking import evaluate_ranking
    from workbench.models.interpreter import contributions, pairwise_distances

    q_tab, g_tab = split.query, split.gallery
    q = interpret_table(model, q_tab, height, width, device=device, progress=progress)
    g = interpret_table(model, g_tab, height, width, device=device, progress=progress)
    cols = model.config.attribute_indices
    lookup = {int(p): row for p, row in zip(attributes.index, attributes.to_numpy(), strict=False)}

    def vectors(pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        known = np.array([int(p) in lookup for p in pids])
        out = np.zeros((len(pids), len(cols)), np.int64)
        for i, p in enumerate(pids):
            if known[i]:
                out[i] = np.asarray(lookup[int(p)], dtype=np.float64)[cols].astype(np.int64)
        return np.where(out < 0, 0, out), known

    qa, q_known = vectors(q.pids)
    ga, g_known = vectors(g.pids)
    valid_g = g.pids != -1
    nq, ng = len(q.pids), len(g.pids)
    d_full = torch.empty(nq, ng, dtype=torch.float64)
    dhat_full = torch.empty(nq, ng, dtype=torch.float64)
    ap_e_sum = ap_c_sum = 0.0
    n_e = n_c = 0
    for a in range(0, nq, chunk):
        b = min(a + chunk, nq)
        d = pairwise_distances(q.target[a:b].double(), g.target.double())  # (c, G)
        d_k = pairwise_distances(q.components[a:b].double(), g.components.double())  # (c,G,M)
        d_full[a:b], dhat_full[a:b] = d, d_k.mean(-1)
        pair = q_known[a:b, None] & g_known[None, :]  # (c, G)
        if pair.any():
            shares = contributions(d_k)[torch.from_numpy(pair)].numpy()  # (P, M)
            excl = (qa[a:b, None, :] != ga[None, :, :])[pair]  # (P, M)
            ap_e, has_e, ap_c, has_c = x_ap(shares, excl, overflow)
            ap_e_sum += float(ap_e[has_e].sum())
            ap_c_sum += float(ap_c[has_c].sum())
            n_e += int(has_e.sum())
            n_c += int(has_c.sum())
    keep = torch.from_numpy(np.broadcast_to(valid_g[None, :], (nq, ng)).copy())
    ids = (q.pids, g.pids, q.camids, g.camids)
    ours = evaluate_ranking(dhat_full.numpy(), *ids)
    tgt = evaluate_ranking(d_full.numpy(), *ids)
    cos = evaluate_ranking(compute_distance(q.target, g.target, metric="cosine").numpy(), *ids)
    metrics = {
        "adre": 100 * adre(d_full[keep], dhat_full[keep]),
        "x_map_e": 100 * ap_e_sum / max(n_e, 1),
        "x_map_c": 100 * ap_c_sum / max(n_c, 1),
        "pairs_e": n_e,
        "pairs_c": n_c,
        "rank1": 100 * float(ours["cmc"][0]),
        "mAP": 100 * ours["mAP"],
        "target_rank1": 100 * float(tgt["cmc"][0]),
        "target_mAP": 100 * tgt["mAP"],
        "target_rank1_cosine": 100 * float(cos["cmc"][0]),
        "target_mAP_cosine": 100 * cos["mAP"],
    }
    loc = pd.DataFrame()
    if q.region_masks is not None and g.region_masks is not None:
        aams = torch.cat([q.aams, g.aams])
        masks = torch.cat([q.region_masks, g.region_masks])
        known = np.concatenate([q_known, g_known])
        labels_all = np.concatenate([qa, ga])
        names = model.attribute_names
        labels = {a: np.where(known, labels_all[:, i], -1) for i, a in enumerate(names)}
        loc = localisation_scores(
            aams, None, names, labels=labels, masks=(masks, q.region_names or [])
        )
    return {"metrics": metrics, "localisation": loc, "query": q, "gallery": g}
