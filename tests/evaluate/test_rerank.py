"""re_ranking against a direct, loop-based implementation of the algorithm (modules.md §5.6)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.evaluate.rerank import re_ranking


def naive_rerank(q_g, q_q, g_g, k1, k2, lam):
    """Dense, one image at a time, Python sets; Jaccard as Σmin / Σmax (paper eq. 10)."""
    nq = len(q_q)
    d = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float32)
    t = (d / d.max(axis=0)).T  # column-normalised, transposed
    m = len(t)
    rank = np.argsort(t, axis=1, kind="stable")  # ties: by index

    def reciprocal(i, k):
        return [j for j in rank[i, : k + 1] if i in rank[j, : k + 1]]

    v = np.zeros((m, m), dtype=np.float32)
    for i in range(m):
        r_i = reciprocal(i, k1)
        expanded = set(r_i)
        for c in r_i:
            r_c = reciprocal(c, int(np.around(k1 / 2)))
            if len(set(r_c) & set(r_i)) > 2 / 3 * len(r_c):
                expanded |= set(r_c)
        cols = sorted(expanded)
        w = np.exp(-t[i, cols].astype(np.float64))
        v[i, cols] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].astype(np.float64).mean(axis=0) for i in range(m)])
    final = np.zeros((nq, m - nq))
    for i in range(nq):
        for j in range(m - nq):
            a, b = v[i].astype(np.float64), v[nq + j].astype(np.float64)
            jac = 1 - np.minimum(a, b).sum() / np.maximum(a, b).sum()
            final[i, j] = (1 - lam) * jac + lam * t[i, nq + j]
    return final


def sq_distances(seed, nq=5, ng=30, dim=8, ids=6, quantise=None):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, dim))
    feats = centres[rng.integers(0, ids, nq + ng)] + 0.6 * rng.normal(size=(nq + ng, dim))
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    d = ((feats[:, None] - feats[None]) ** 2).sum(-1)
    if quantise:
        d = np.round(d * quantise) / quantise  # many exact ties
    return d[:nq, nq:], d[:nq, :nq], d[nq:, nq:]


@pytest.mark.parametrize(
    ("k1", "k2", "lam"),
    [(20, 6, 0.3), (5, 3, 0.5), (3, 1, 0.0), (7, 2, 1.0), (1, 1, 0.3), (4, 9, 0.2), (21, 6, 0.3)],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_naive_implementation(k1, k2, lam, seed):
    q_g, q_q, g_g = sq_distances(seed)
    got = re_ranking(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lam)
    want = naive_rerank(q_g, q_q, g_g, k1, k2, lam)
    assert got.shape == (5, 30) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("k1", "k2"), [(20, 6), (6, 3)])
def test_ties_follow_index_order(k1, k2):
    q_g, q_q, g_g = sq_distances(4, ng=40, quantise=4)  # distances in steps of 0.25
    got = re_ranking(q_g, q_q, g_g, k1=k1, k2=k2)
    np.testing.assert_allclose(got, naive_rerank(q_g, q_q, g_g, k1, k2, 0.3), atol=1e-5, rtol=0)


def test_small_chunks_give_the_same_result(monkeypatch):
    import workbench.evaluate.rerank as rerank

    q_g, q_q, g_g = sq_distances(2, nq=12, ng=50)
    full = re_ranking(q_g, q_q, g_g, k1=8, k2=4)
    monkeypatch.setattr(rerank, "_CHUNK_ELEMENTS", 97)  # forces many chunks in every step
    np.testing.assert_allclose(re_ranking(q_g, q_q, g_g, k1=8, k2=4), full, atol=1e-7, rtol=0)


def test_lambda_one_returns_normalised_original_distance():
    q_g, q_q, g_g = sq_distances(3)
    col_max = np.maximum(q_q.max(axis=0), q_g.max(axis=1))  # max over column i of the block
    got = re_ranking(q_g, q_q, g_g, lambda_value=1.0)
    np.testing.assert_allclose(got, q_g / col_max[:, None], rtol=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"q_q": np.zeros((4, 4))}, r"q_q must be \(5, 5\)"),
        ({"k1": 0}, "need 1 <= k1"),
        ({"k2": 99}, "1 <= k2"),
        ({"lambda_value": 1.5}, "lambda_value must lie in"),
        ({"q_g": np.full((5, 30), np.nan)}, "NaN or inf"),
    ],
)
def test_validation_errors(change, message):
    q_g, q_q, g_g = sq_distances(0)
    args = {"q_g": q_g, "q_q": q_q, "g_g": g_g} | change
    with pytest.raises(ValueError, match=message):
        re_ranking(**args)


def test_all_zero_distances_raise_a_clear_error():
    with pytest.raises(ValueError, match="no positive distance"):
        re_ranking(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((3, 3)), k1=2, k2=1)


def test_global_scale_of_the_distances_does_not_matter():
    q_g, q_q, g_g = sq_distances(5)  # cosine distance of unit features = squared Euclidean / 2
    np.testing.assert_allclose(
        re_ranking(q_g / 2, q_q / 2, g_g / 2), re_ranking(q_g, q_q, g_g), atol=1e-6, rtol=0
    )
