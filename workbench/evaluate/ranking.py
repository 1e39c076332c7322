"""Ranking metrics of person re-identification: CMC, mAP and mINP under the Market-1501 protocol.

Protocol (Zheng et al., ICCV 2015, "Scalable Person Re-identification: A Benchmark"; the same
rule is used by torchreid, BoT and FastReID). For each query, in order of increasing distance:

* gallery items with the query's pid **and** the query's camera are removed (same-camera matches
  are too easy to count);
* gallery junk (pid -1) is ignored entirely; distractors (pid 0) stay as negatives;
* a query with no remaining true match is skipped (counted in ``num_skipped_queries``).

Metrics on the remaining ranked list:

* **CMC** rank-k: fraction of valid queries whose *first* true match is within the top k.
* **AP**, two conventions (label the one you report):
  ``ap="bot"`` non-interpolated ``AP = (1/R) sum_n n / rank_n`` over the R true matches, where
  ``rank_n`` is the rank of the n-th match (BoT ``eval_func``, FastReID, torchreid);
  ``ap="matlab"`` trapezoid rule of the official Market-1501 MATLAB code (mirrored by
  layumi/Person_reID_baseline_pytorch ``compute_mAP``):
  ``AP = (1/R) sum_n (p_prev + n / rank_n) / 2`` with ``p_prev = (n - 1) / (rank_n - 1)``, the
  precision one item earlier (1 when ``rank_n = 1``). Because ``(n-1)/(r-1) <= n/r`` the MATLAB
  value is never higher than the BoT value.
* **mINP** (Ye et al., TPAMI 2021, "Deep Learning for Person Re-identification: A Survey and
  Outlook"): ``INP = R / rank of the hardest (last) match``, averaged over valid queries.

**Ties.** Gallery items at equal distance are ranked in gallery order (a stable sort), so the
metrics are deterministic. torchreid and BoT use ``np.argsort``'s default quicksort, whose order
for ties is unspecified; with tied distances their numbers can differ from ours.

**CUHK03 mode** (``cuhk03=True``) is torchreid's classic single-gallery-shot CMC: for each query
and each of ``N = 10`` repeats one image of every remaining gallery pid is drawn at random and
the CMC of that list is averaged over repeats. As in torchreid, AP and INP use the full list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

AP_CONVENTIONS = {
    "bot": "non-interpolated (BoT/FastReID/torchreid)",
    "matlab": "trapezoid (official Market-1501 MATLAB code)",
}
CUHK03_REPEATS = 10
_CHUNK_ELEMENTS = 1 << 21  # ~2 M distance entries per chunk: ~50 MB of temporaries


def stable_row_order(block: np.ndarray, k: int | None = None) -> np.ndarray:
    """Per-row ``argsort`` of ``block`` (rows × n) with ties broken by column index.

    Equals ``np.argsort(block, axis=1, kind="stable")[:, :k]`` but is faster. float32 values are
    packed with their column index into unique int64 keys (order-preserving bit trick) and the
    keys are sorted (or the k smallest selected with ``torch.topk``). Other dtypes use an
    unstable sort and re-sort stably only the rows that contain ties. NaN is not allowed.
    """
    if block.ndim != 2:
        raise ValueError(f"stable_row_order expects a 2-D array, got shape {block.shape}")
    n = block.shape[1]
    k = n if k is None else min(int(k), n)
    if block.dtype in (np.float16, np.float32):
        vals = np.add(block, np.float32(0.0), dtype=np.float32)  # a copy; -0.0 -> +0.0
        bits = vals.view(np.int32)
        bits ^= (bits >> 31) & 0x7FFFFFFF  # negative floats: reverse the bit order
        keys = bits.astype(np.int64)  # (rows, n) unique keys: value bits, then column
        keys <<= 32
        keys |= np.arange(n, dtype=np.int64)
        if k < n:  # k smallest keys, ascending (exact: keys are unique)
            keys = torch.topk(torch.from_numpy(keys), k, dim=1, largest=False).values.numpy()
        else:
            keys.sort(axis=1)
        keys &= 0xFFFFFFFF
        return keys
    order = np.argsort(block, axis=1)  # (rows, n), order of ties unspecified
    svals = np.take_along_axis(block, order, axis=1)
    tied = (svals[:, 1:] == svals[:, :-1]).any(axis=1)
    if tied.any():
        order[tied] = np.argsort(block[tied], axis=1, kind="stable")
    return order[:, :k]


def _as_numpy(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _ids(x: Any, name: str, n: int | None) -> np.ndarray:
    arr = _as_numpy(x, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one id per image), got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries but the distance matrix needs {n}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _check_inputs(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, ap):
    dist = _as_numpy(distmat, "distmat")
    if dist.ndim != 2 or 0 in dist.shape:
        raise ValueError(
            f"distmat must be a non-empty (num_query, num_gallery) matrix, got shape {dist.shape}"
        )
    if not np.issubdtype(dist.dtype, np.number) or np.iscomplexobj(dist):
        raise ValueError(f"distmat must hold real distances, got dtype {dist.dtype}")
    nq, ng = dist.shape
    ids = (
        _ids(q_pids, "q_pids", nq),
        _ids(g_pids, "g_pids", ng),
        _ids(q_camids, "q_camids", nq),
        _ids(g_camids, "g_camids", ng),
    )
    if ap not in AP_CONVENTIONS:
        raise ValueError(f"ap={ap!r} is not known; choose one of {sorted(AP_CONVENTIONS)}")
    if int(max_rank) < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    return dist, ids


def _hits(order, qp, qc, g_pids, g_camids, g_junk):
    """Positions of true matches in each sorted row and their 1-based rank among kept items.

    Returns ``hit_row`` (H,), ``hit_rank`` (H,), row-major (rows ascending, ranks ascending).
    """
    match = g_pids[order] == qp[:, None]  # (c, n) same pid, in ranked order
    mr, mc = np.nonzero(match)  # row-major: sorted by row, then rank
    g_idx = order[mr, mc]
    same_cam = g_camids[g_idx] == qc[mr]
    keep = ~g_junk[order] if g_junk.any() else np.ones(order.shape, dtype=bool)  # (c, n)
    keep[mr[same_cam], mc[same_cam]] = False
    ok = ~same_cam & ~g_junk[g_idx]
    rank = np.cumsum(keep, axis=1, dtype=np.int32)  # (c, n) 1-based rank among kept items
    return mr[ok], rank[mr[ok], mc[ok]].astype(np.float64)


def _ap_inp(hit_row, hit_rank, rows, ap):
    """Per-row AP, INP and first-hit rank (NaN / -1 where a row has no hit)."""
    nh = np.bincount(hit_row, minlength=rows)  # (c,) true matches per query
    start = np.cumsum(nh) - nh
    n = np.arange(len(hit_row)) - start[hit_row] + 1.0  # n-th match of its query, 1-based
    prec = n / hit_rank
    if ap == "matlab":
        prev = np.where(hit_rank > 1, (n - 1) / np.maximum(hit_rank - 1, 1), 1.0)
        prec = (prev + prec) / 2
    valid = nh > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        ap_row = np.bincount(hit_row, weights=prec, minlength=rows) / nh
    ap_row[~valid] = np.nan
    first = np.full(rows, -1, dtype=np.int64)
    inp = np.full(rows, np.nan)
    first[valid] = hit_rank[start[valid]]
    inp[valid] = nh[valid] / hit_rank[start[valid] + nh[valid] - 1]
    return ap_row, inp, first


def _cuhk03_cmc(order, qp, qc, g_pids, g_camids, g_junk, max_rank, rng):
    """Single-gallery-shot CMC counts (c, max_rank) averaged over CUHK03_REPEATS draws.

    Sampling order (documented so that it can be reproduced): per query, in query order, one
    ``rng.random((CUHK03_REPEATS, num_gallery))`` array of uniform keys over *all* gallery items
    in gallery order (drawn for skipped queries too); in each repeat every remaining pid keeps
    its remaining image with the smallest key (pid 0 distractors form one group, as in torchreid).
    """
    c, n = order.shape
    reps = CUHK03_REPEATS
    pos = np.empty_like(order)  # (c, n) rank position of each gallery item
    np.put_along_axis(pos, order, np.arange(n)[None, :], axis=1)
    gperm = np.argsort(g_pids, kind="stable")  # gallery grouped by pid
    gp_sorted = g_pids[gperm]
    gstart = np.flatnonzero(np.r_[True, gp_sorted[1:] != gp_sorted[:-1]])
    gsize = np.diff(np.r_[gstart, n])
    removed = ((g_pids[None] == qp[:, None]) & (g_camids[None] == qc[:, None])) | g_junk[None]
    u = rng.random((c, reps, n))  # (c, R, n) uniform keys, gallery order
    u[np.broadcast_to(removed[:, None, :], u.shape)] = np.inf
    u = u[:, :, gperm]  # (c, R, n) grouped by pid
    gmin = np.minimum.reduceat(u, gstart, axis=2)  # (c, R, G)
    first = (u == np.repeat(gmin, gsize, axis=2)) & np.isfinite(u)
    cs = np.cumsum(first, axis=2, dtype=np.int32)
    before = np.concatenate([np.zeros((c, reps, 1), np.int32), cs[:, :, gstart[1:] - 1]], axis=2)
    chosen = first & (cs - np.repeat(before, gsize, axis=2) == 1)  # one image per pid (c, R, n)
    pos_g = pos[:, gperm][:, None, :]  # (c, 1, n)
    is_pos = (gp_sorted[None] == qp[:, None])[:, None, :]  # (c, 1, n)
    p_star = np.where(chosen & is_pos, pos_g, n).min(axis=2)  # (c, R) position of sampled match
    rank0 = (chosen & (pos_g < p_star[..., None])).sum(axis=2)  # (c, R) 0-based rank
    flat = np.arange(c)[:, None] * (max_rank + 1) + np.minimum(rank0, max_rank)  # (c, R)
    counts = np.bincount(flat.ravel(), minlength=c * (max_rank + 1)).reshape(c, max_rank + 1)
    return np.cumsum(counts, axis=1)[:, :max_rank] / reps  # (c, max_rank)


def evaluate_ranking(
    distmat: np.ndarray | torch.Tensor,
    q_pids: Sequence[int] | np.ndarray | torch.Tensor,
    g_pids: Sequence[int] | np.ndarray | torch.Tensor,
    q_camids: Sequence[int] | np.ndarray | torch.Tensor,
    g_camids: Sequence[int] | np.ndarray | torch.Tensor,
    max_rank: int = 50,
    ap: str = "bot",
    cuhk03: bool = False,
    seed: int = 0,
    chunk_size: int | None = None,
) -> dict[str, Any]:
    """CMC, mAP and mINP of a query × gallery distance matrix (Market-1501 protocol, see module).

    Args:
        distmat: (num_query, num_gallery) distances, smaller = more similar. Ties are ranked in
            gallery order.
        q_pids, g_pids: (num_query,), (num_gallery,) person ids; gallery pid -1 is junk, 0 a
            distractor.
        q_camids, g_camids: camera ids of the same lengths.
        max_rank: length of the returned CMC curve (padded with the final value when the gallery
            is shorter: every valid query has a match somewhere).
        ap: ``"bot"`` (non-interpolated) or ``"matlab"`` (trapezoid), see the module docstring.
        cuhk03: CUHK03 single-gallery-shot CMC (10 seeded random repeats); AP/INP unchanged.
        seed: seed of ``np.random.default_rng`` for ``cuhk03``.
        chunk_size: queries per vectorised step. The default keeps each step near 2 M matrix
            entries (~50 MB of temporaries; the 3,368 × 15,913 Market matrix runs in 26 steps).

    Returns:
        dict with ``cmc`` (max_rank,), ``mAP``, ``mINP``, ``num_valid_queries``,
        ``num_skipped_queries``, per query ``ap`` and ``inp`` (num_query,; NaN if skipped) and
        ``first_hit`` (1-based rank of the first true match; -1 if skipped), ``ap_convention``
        and ``protocol``.

    Raises:
        ValueError: bad shapes, NaN distances, or no query with a valid match.
    """
    dist, (qp, gp, qc, gc) = _check_inputs(
        distmat, q_pids, g_pids, q_camids, g_camids, max_rank, ap
    )
    max_rank = int(max_rank)
    nq, ng = dist.shape
    rows = chunk_size or max(1, _CHUNK_ELEMENTS // (ng * (CUHK03_REPEATS if cuhk03 else 1)))
    g_junk = gp == -1
    rng = np.random.default_rng(seed) if cuhk03 else None
    ap_all = np.full(nq, np.nan)
    inp_all = np.full(nq, np.nan)
    first_all = np.full(nq, -1, dtype=np.int64)
    cmc_sum = np.zeros(max_rank)
    for a in range(0, nq, rows):
        b = min(a + rows, nq)
        block = dist[a:b]  # (c, ng)
        if np.isnan(block).any():
            bad = a + int(np.flatnonzero(np.isnan(block).any(axis=1))[0])
            raise ValueError(
                f"distmat has NaN distances (first in query row {bad}); fix the features"
            )
        order = stable_row_order(block)  # (c, ng) gallery indices, nearest first
        hit_row, hit_rank = _hits(order, qp[a:b], qc[a:b], gp, gc, g_junk)
        ap_all[a:b], inp_all[a:b], first_all[a:b] = _ap_inp(hit_row, hit_rank, b - a, ap)
        valid = first_all[a:b] > 0
        if cuhk03:
            curves = _cuhk03_cmc(order, qp[a:b], qc[a:b], gp, gc, g_junk, max_rank, rng)
            cmc_sum += curves[valid].sum(axis=0)
        else:  # rank-k counts every valid query whose first hit is at rank <= k
            first0 = np.minimum(first_all[a:b][valid] - 1, max_rank)
            cmc_sum += np.cumsum(np.bincount(first0, minlength=max_rank + 1)[:max_rank])
    valid = first_all > 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError(
            f"none of the {nq} queries has a true match in the gallery (same pid, other camera, "
            "pid != -1): check that query and gallery come from the same split and that "
            "pids/camids were parsed from the file names"
        )
    return {
        "cmc": cmc_sum / num_valid,
        "mAP": float(np.mean(ap_all[valid])),
        "mINP": float(np.mean(inp_all[valid])),
        "num_valid_queries": num_valid,
        "num_skipped_queries": nq - num_valid,
        "ap": ap_all,
        "inp": inp_all,
        "first_hit": first_all,
        "ap_convention": ap,
        "protocol": "cuhk03" if cuhk03 else "market1501",
    }


def format_metrics(metrics: Mapping[str, Any], ranks: Sequence[int] = (1, 5, 10)) -> str:
    """A small text table of Rank-k, mAP and mINP (percent) for the CLI."""
    cmc = np.asarray(metrics["cmc"])
    rows = [(f"Rank-{k}", f"{100 * cmc[k - 1]:6.2f}%") for k in ranks if 0 < k <= len(cmc)]
    conv = metrics.get("ap_convention", "bot")
    rows.append(("mAP", f"{100 * metrics['mAP']:6.2f}%  (AP: {AP_CONVENTIONS.get(conv, conv)})"))
    rows.append(("mINP", f"{100 * metrics['mINP']:6.2f}%"))
    skipped = metrics.get("num_skipped_queries", 0)
    rows.append(("queries", f"{metrics['num_valid_queries']} valid, {skipped} skipped"))
    lines = [f"{name:<8} {value}" for name, value in rows]
    if metrics.get("protocol") == "cuhk03":
        lines.append(f"CMC: CUHK03 single-gallery-shot, {CUHK03_REPEATS} repeats")
    return "\n".join(lines)
