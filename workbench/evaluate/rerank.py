"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li, CVPR 2017, "Re-ranking Person
Re-identification with k-reciprocal Encoding").

Semantics follow the reference Python version (``zhunzhong07/person-re-ranking``,
``python-version/re_ranking_ranklist.py``, Huang's float32 edition of Luo's code, the same
algorithm as BoT ``utils/re_ranking.py``) step by step, on all ``M = Nq + Ng`` images:

1. ``d`` = the block matrix ``[[q_q, q_g], [q_gᵀ, g_g]]``; every column is divided by its maximum
   and the result transposed: ``T[i, j] = d[j, i] / max_k d[k, i]`` (float32).
2. ``rank(i)`` = row ``i`` of ``T`` sorted (self included).
3. ``R(i, k)`` = ``{j ∈ rank(i)[:k+1] : i ∈ rank(j)[:k+1]}`` (k-reciprocal neighbours).
4. ``R*(i)`` = ``R(i, k1)`` ∪ every ``R(c, round(k1/2))`` with ``c ∈ R(i, k1)`` whose overlap
   with ``R(i, k1)`` exceeds 2/3 of its size (``round`` is numpy's half-to-even).
5. ``V[i, j] = exp(−T[i, j]) / Σ_{j' ∈ R*(i)} exp(−T[i, j'])`` for ``j ∈ R*(i)`` (eq. 7-8).
6. Local query expansion (eq. 11): ``V[i] ← mean of V[rank(i)[:k2]]`` unless ``k2 == 1``.
7. Jaccard distance (eq. 9-10): ``d_J = 1 − m / (2 − m)``, ``m = Σ_k min(V[i, k], V[j, k])``
   (equal to ``1 − Σ min / Σ max`` because every row of V sums to 1; a row is empty, giving
   ``d_J = 1``, only if an image is not among its own k1 + 1 nearest, e.g. > k1 duplicates).
8. ``d* = (1 − λ)·d_J + λ·T`` for the query × gallery block.

**Input distances are used as given.** Huang's version squares its inputs first, BoT computes
squared Euclidean distances of the features itself: pass squared Euclidean distances (e.g.
``compute_distance(..., metric="sqeuclidean")`` on L2-normalised features, BoT's choice) to
reproduce either. The column-max normalisation makes the result invariant to a global scale of
the distances, so cosine distances of L2-normalised features (= squared Euclidean / 2) give the
same ranking; Euclidean (not squared) distances do not. Distances must be finite and every image
must have a positive distance to some image (the column maxima divide).

Where this code differs from the reference (same numbers, other means):

* ties in step 2 are broken by index (stable sort; the reference's quicksort order is
  unspecified), and only the ``max(k1 + 1, k2)`` nearest are kept (``torch.topk`` on unique
  value-and-index keys, per chunk of rows) instead of a full (M, M) argsort;
* the block matrix is never built: rows of ``T`` are sliced from the three inputs in chunks;
* V is a scipy CSR matrix (float32, as in Huang's version; BoT uses float16), step 6 is a
  sparse product and step 7 an inverted-index min-sum vectorised over query chunks
  (accumulated in float64, so it can differ from the reference in the 7th digit).

Memory besides the inputs and the (Nq, Ng) float32 result: the top-k table (M × (k1+1) int64),
sparse V (about M × 100 non-zeros after expansion) and one chunk of T rows / min-sum terms,
bounded by ``_CHUNK_ELEMENTS``; no (M, M) dense matrix is built. Measured on 1,000 × 5,000
(benchmarks/bench_evaluate.py): 45-60 MB above the inputs, 40 MB of it the result and one (Nq, Ng)
temporary, against ~690 MB for the dense structure of the reference code.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from workbench.evaluate.ranking import stable_row_order

_CHUNK_ELEMENTS = 1 << 20  # entries per vectorised chunk (T rows, min-sum terms)


def _check(q_g, q_q, g_g, k1, k2, lambda_value):
    q_g, q_q, g_g = (np.asarray(x, dtype=np.float32) for x in (q_g, q_q, g_g))
    if q_g.ndim != 2 or 0 in q_g.shape:
        raise ValueError(f"q_g must be a non-empty (Nq, Ng) matrix, got shape {q_g.shape}")
    nq, ng = q_g.shape
    for name, arr, n in (("q_q", q_q, nq), ("g_g", g_g, ng)):
        if arr.shape != (n, n):
            raise ValueError(f"{name} must be ({n}, {n}) to match q_g {q_g.shape}, got {arr.shape}")
    for name, arr in (("q_g", q_g), ("q_q", q_q), ("g_g", g_g)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} holds NaN or inf distances; fix the features first")
    if not (1 <= k1 < nq + ng) or not (1 <= k2 <= nq + ng):
        raise ValueError(f"need 1 <= k1 < Nq+Ng={nq + ng} and 1 <= k2 <= Nq+Ng; got {k1=}, {k2=}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"lambda_value must lie in [0, 1], got {lambda_value}")
    return q_g, q_q, g_g


def _column_max(q_g, q_q, g_g):
    """(M,) maximum of every column of the block matrix d."""
    cmax = np.concatenate(
        [np.maximum(q_q.max(axis=0), q_g.max(axis=1)), np.maximum(q_g.max(axis=0), g_g.max(axis=0))]
    )
    if (cmax <= 0).any():
        bad = int(np.flatnonzero(cmax <= 0)[0])
        raise ValueError(
            f"image {bad} (of queries then gallery) has no positive distance to any image; "
            "re-ranking divides by each column's maximum: remove duplicates or use a real metric"
        )
    return cmax


def _t_rows(q_g, q_q, g_g, cmax, a, b):
    """Rows a:b of T (b−a, M): column i of d divided by its max, as a row."""
    nq = q_g.shape[0]
    parts = []
    if a < nq:  # query rows: T[i] = [q_q[:, i], q_g[i, :]] / m_i
        e = min(b, nq)
        parts.append(np.concatenate([q_q[:, a:e].T, q_g[a:e]], axis=1))
    if b > nq:  # gallery rows: T[nq+j] = [q_g[:, j], g_g[:, j]] / m_{nq+j}
        s = max(a, nq) - nq
        parts.append(np.concatenate([q_g[:, s : b - nq].T, g_g[:, s : b - nq].T], axis=1))
    return np.concatenate(parts, axis=0) / cmax[a:b, None]


def _d_entries(q_g, q_q, g_g, r, c):
    """d[r, c] of the block matrix for index arrays r, c (float32)."""
    nq = q_g.shape[0]
    out = np.empty(len(r), dtype=np.float32)
    rq, cq = r < nq, c < nq
    for sel, src, rr, cc in (
        (rq & cq, q_q, r, c),
        (rq & ~cq, q_g, r, c - nq),
        (~rq & cq, q_g, c, r - nq),  # d[nq+j, i] = q_g[i, j]
        (~rq & ~cq, g_g, r - nq, c - nq),
    ):
        out[sel] = src[rr[sel], cc[sel]]
    return out


def _reciprocal(top):
    """(M, k+1) bool: top[i, r] is a k-reciprocal neighbour of i (i is in its top-(k+1))."""
    m = len(top)
    mask = np.empty(top.shape, dtype=bool)
    step = max(1, _CHUNK_ELEMENTS // top.shape[1] ** 2)
    for a in range(0, m, step):
        back = top[top[a : a + step]]  # (c, k+1, k+1) neighbours of the neighbours
        mask[a : a + step] = (back == np.arange(a, a + len(back))[:, None, None]).any(axis=2)
    return mask


def _expanded_sets(fwd, rmask, htop, hmask):
    """Rows and columns (CSR order, unique per row) of R*(i) for all i."""
    m, kk = fwd.shape
    rows_out, cols_out = [], []
    step = max(1, _CHUNK_ELEMENTS // (kk * kk * htop.shape[1]))
    for a in range(0, m, step):
        f, rm = fwd[a : a + step], rmask[a : a + step]  # (c, k1+1)
        cand_h, cand_m = htop[f], hmask[f]  # (c, k1+1, h+1) R(cand, h) per candidate
        in_r = ((cand_h[..., None] == f[:, None, None, :]) & rm[:, None, None, :]).any(axis=3)
        inter = (in_r & cand_m).sum(axis=2)  # (c, k1+1) |R(cand, h) ∩ R(i, k1)|
        accept = rm & (inter > 2.0 / 3 * cand_m.sum(axis=2))
        members = np.concatenate(
            [
                np.where(rm, f, -1),
                np.where(accept[..., None] & cand_m, cand_h, -1).reshape(len(f), -1),
            ],
            axis=1,
        )  # (c, W) with -1 for empty slots
        members.sort(axis=1)
        first = (members >= 0) & np.concatenate(
            [np.ones((len(f), 1), bool), members[:, 1:] != members[:, :-1]], axis=1
        )
        r, col = np.nonzero(first)
        rows_out.append(r + a)
        cols_out.append(members[r, col])
    return np.concatenate(rows_out), np.concatenate(cols_out)


def _encode(q_g, q_q, g_g, cmax, top, k1, k2):
    """Sparse V (M, M) float32 after the k-reciprocal expansion and query expansion."""
    m = len(top)
    half = int(np.around(k1 / 2.0))
    fwd, htop = top[:, : k1 + 1], top[:, : half + 1]
    rows, cols = _expanded_sets(fwd, _reciprocal(fwd), htop, _reciprocal(htop))
    w = np.exp(-(_d_entries(q_g, q_q, g_g, cols, rows) / cmax[rows]))  # exp(−T[i, j])
    wsum = np.bincount(rows, weights=w, minlength=m).astype(np.float32)
    v = sp.csr_matrix((w / wsum[rows], (rows, cols)), shape=(m, m), dtype=np.float32)
    if k2 != 1:  # V[i] <- mean of V over the k2 nearest rows of i
        qe = sp.csr_matrix(
            (np.ones(m * k2, np.float32), top[:, :k2].ravel(), np.arange(0, m * k2 + 1, k2)),
            shape=(m, m),
        )
        v = (qe @ v).tocsr()
        v.data /= np.float32(k2)
    v.eliminate_zeros()
    return v


def _jaccard(v, nq):
    """(Nq, Ng) float32 ``1 − m/(2 − m)``, ``m = Σ_k min(V[i, k], V[nq + j, k])``."""
    vq = v[:nq].tocsr()
    vg = v[nq:].tocsc()  # inverted index: column k -> gallery rows with V[j, k] != 0
    ng = vg.shape[0]
    col_nnz = np.diff(vg.indptr)
    terms = np.bincount(
        np.repeat(np.arange(nq), np.diff(vq.indptr)), weights=col_nnz[vq.indices], minlength=nq
    )  # (Nq,) number of min() terms per query
    cost = np.cumsum(terms + ng)  # (Nq,) work and output entries up to each query
    out = np.empty((nq, ng), dtype=np.float32)
    a = 0
    while a < nq:  # chunks of queries whose min() terms and output fit the budget
        done = cost[a - 1] if a else 0
        b = max(a + 1, int(np.searchsorted(cost, done + _CHUNK_ELEMENTS, side="right")))
        sub = vq[a:b]
        row = np.repeat(np.arange(b - a), np.diff(sub.indptr))  # (nnz,)
        lens = col_nnz[sub.indices]
        starts = vg.indptr[sub.indices]
        pos = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        mins = np.minimum(np.repeat(sub.data, lens), vg.data[pos])
        flat = np.repeat(row, lens) * ng + vg.indices[pos]
        msum = np.bincount(flat, weights=mins, minlength=(b - a) * ng).astype(np.float32)
        out[a:b] = (1 - msum / (2 - msum)).reshape(b - a, ng)
        a = b
    return out


def re_ranking(
    q_g: np.ndarray,
    q_q: np.ndarray,
    g_g: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> np.ndarray:
    """k-reciprocal re-ranked query × gallery distances (Zhong et al. 2017; see module docstring).

    Args:
        q_g: (Nq, Ng) query-gallery distances, used as given (e.g. squared Euclidean).
        q_q: (Nq, Nq) query-query distances, same metric.
        g_g: (Ng, Ng) gallery-gallery distances, same metric.
        k1: size of the k-reciprocal neighbourhood (paper default 20).
        k2: neighbours averaged by local query expansion (6; 1 switches it off).
        lambda_value: weight of the original distance (0.3).

    Returns:
        (Nq, Ng) float32 re-ranked distances, to be scored by the same ``evaluate_ranking``
        (junk and same-camera removal are unchanged by re-ranking).
    """
    q_g, q_q, g_g = _check(q_g, q_q, g_g, k1, k2, lambda_value)
    nq, ng = q_g.shape
    m = nq + ng
    cmax = _column_max(q_g, q_q, g_g)  # (M,)
    k = max(k1 + 1, k2)
    top = np.empty((m, k), dtype=np.int64)  # (M, k) nearest first, ties by index
    step = max(1, _CHUNK_ELEMENTS // m)
    for a in range(0, m, step):
        b = min(a + step, m)
        top[a:b] = stable_row_order(_t_rows(q_g, q_q, g_g, cmax, a, b), k=k)
    v = _encode(q_g, q_q, g_g, cmax, top, k1, k2)
    final = _jaccard(v, nq)  # (Nq, Ng)
    final *= np.float32(1 - lambda_value)
    original = q_g / cmax[:nq, None]  # T[i, nq+j] = q_g[i, j] / m_i
    original *= np.float32(lambda_value)
    final += original
    return final
