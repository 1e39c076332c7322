"""evaluate_ranking against a naive per-query loop written here, and hand-worked tiny cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from workbench.evaluate.ranking import evaluate_ranking, format_metrics, stable_row_order

REPEATS = 10  # CUHK03 single-gallery-shot repeats (torchreid)


def naive_eval(dist, qp, gp, qc, gc, max_rank, ap="bot", cuhk03=False, seed=0):
    """One query at a time, one gallery item at a time, in plain Python."""
    nq, ng = dist.shape
    rng = np.random.default_rng(seed)
    aps, inps, firsts, curves = [], [], [], []
    for q in range(nq):
        keys = rng.random((REPEATS, ng)) if cuhk03 else None  # drawn for every query
        order = sorted(range(ng), key=lambda g: (dist[q, g], g))  # ties: gallery order
        ranked = [g for g in order if gp[g] != -1 and not (gp[g] == qp[q] and gc[g] == qc[q])]
        hits = [i + 1 for i, g in enumerate(ranked) if gp[g] == qp[q]]  # 1-based ranks
        if not hits:
            aps.append(math.nan)
            inps.append(math.nan)
            firsts.append(-1)
            continue
        r_total = len(hits)
        if ap == "bot":
            a = sum(n / r for n, r in enumerate(hits, 1)) / r_total
        else:
            a = 0.0
            for n, r in enumerate(hits, 1):
                prev = (n - 1) / (r - 1) if r > 1 else 1.0
                a += (prev + n / r) / 2 / r_total
        aps.append(a)
        inps.append(r_total / hits[-1])
        firsts.append(hits[0])
        curve = np.zeros(max_rank)
        if cuhk03:
            kept = set(ranked)
            for rep in range(REPEATS):
                best = {}
                for g in range(ng):  # gallery order: first smallest key wins
                    if g in kept and (gp[g] not in best or keys[rep, g] < keys[rep, best[gp[g]]]):
                        best[gp[g]] = g
                sampled = [g for g in ranked if best[gp[g]] == g]
                first = next(i for i, g in enumerate(sampled) if gp[g] == qp[q])
                curve += [1.0 if first <= k else 0.0 for k in range(max_rank)]
            curve /= REPEATS
        else:
            curve += [1.0 if hits[0] <= k + 1 else 0.0 for k in range(max_rank)]
        curves.append(curve)
    valid = [i for i in range(nq) if firsts[i] > 0]
    return {
        "cmc": np.mean(curves, axis=0),
        "mAP": float(np.mean([aps[i] for i in valid])),
        "mINP": float(np.mean([inps[i] for i in valid])),
        "num_valid_queries": len(valid),
        "num_skipped_queries": nq - len(valid),
        "ap": np.array(aps),
        "inp": np.array(inps),
        "first_hit": np.array(firsts),
    }


def market_like(seed=0, nq=24, ng=150, levels=12, dtype=np.float32):
    """Several cameras, repeated pids, junk -1, distractors 0, tied distances, skip cases."""
    rng = np.random.default_rng(seed)
    qp = rng.integers(1, 9, nq)
    qc = rng.integers(0, 4, nq)
    gp = rng.choice(np.r_[-1, 0, 0, np.arange(1, 9)], ng)
    gc = rng.integers(0, 4, ng)
    qp[0] = 99  # pid absent from the gallery: skipped
    qp[1], qc[1] = 50, 2  # only same-camera matches: skipped
    gp[:3], gc[:3] = 50, 2
    levels_q_g = rng.integers(0, levels, (nq, ng)) - 3 * (qp[:, None] == gp[None, :])
    dist = (levels_q_g / levels).astype(dtype)  # few distinct values: many exact ties
    return dist, qp, gp, qc, gc


def assert_same(got, want):
    np.testing.assert_allclose(got["cmc"], want["cmc"], atol=1e-12)
    np.testing.assert_allclose(got["ap"], want["ap"], atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(got["inp"], want["inp"], atol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(got["first_hit"], want["first_hit"])
    for key in ("mAP", "mINP"):
        assert got[key] == pytest.approx(want[key], abs=1e-12)
    for key in ("num_valid_queries", "num_skipped_queries"):
        assert got[key] == want[key]


@pytest.mark.parametrize("ap", ["bot", "matlab"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk_size", [None, 1, 7])
def test_matches_naive_loop(ap, dtype, chunk_size):
    dist, qp, gp, qc, gc = market_like(seed=3, dtype=dtype)
    got = evaluate_ranking(dist, qp, gp, qc, gc, max_rank=20, ap=ap, chunk_size=chunk_size)
    want = naive_eval(dist, qp, gp, qc, gc, max_rank=20, ap=ap)
    assert_same(got, want)
    assert got["num_skipped_queries"] >= 2  # the two constructed skip cases
    assert np.isnan(got["ap"][0]) and np.isnan(got["ap"][1])
    assert got["ap_convention"] == ap and got["protocol"] == "market1501"


def test_continuous_distances_and_torch_inputs():
    rng = np.random.default_rng(5)
    dist, qp, gp, qc, gc = market_like(seed=5)
    dist = dist + rng.random(dist.shape).astype(np.float32) * 0.01
    got = evaluate_ranking(
        torch.from_numpy(dist), torch.from_numpy(qp), list(gp), torch.from_numpy(qc), gc
    )
    assert_same(got, naive_eval(dist, qp, gp, qc, gc, max_rank=50))
    assert got["cmc"].shape == (50,)


def test_hand_worked_ap_minp_cmc():
    # Ranked gallery (distance = position): same-cam match (removed), hit, junk (ignored), miss,
    # hit, miss, distractor (negative), hit.  Kept ranks of the hits: 1, 3, 6.
    #   bot:    AP = (1/1 + 2/3 + 3/6) / 3                                = 0.722222...
    #   matlab: AP = ((1+1/1)/2 + (1/2+2/3)/2 + (2/5+3/6)/2) / 3          = 0.677777...
    #   INP = 3 matches / rank 6 of the hardest = 0.5 ; first hit at rank 1.
    gp = np.array([7, 7, -1, 3, 7, 4, 0, 7])
    gc = np.array([0, 1, 1, 2, 3, 1, 2, 2])
    dist = np.arange(8, dtype=np.float32)[None, :]
    bot = evaluate_ranking(dist, [7], gp, [0], gc, max_rank=3)
    assert bot["mAP"] == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    assert bot["mINP"] == pytest.approx(0.5)
    np.testing.assert_allclose(bot["cmc"], [1, 1, 1])
    matlab = evaluate_ranking(dist, [7], gp, [0], gc, max_rank=3, ap="matlab")
    assert matlab["mAP"] == pytest.approx((1 + (1 / 2 + 2 / 3) / 2 + (2 / 5 + 3 / 6) / 2) / 3)
    assert matlab["mAP"] < bot["mAP"]


def test_ties_are_ranked_in_gallery_order():
    # All distances equal: the ranked list is the gallery order, so hits sit at ranks 2 and 4:
    # AP = (1/2 + 2/4) / 2 = 0.5, first hit 2.  Reversing the gallery puts them at 1 and 3.
    gp = np.array([1, 5, 2, 5])
    gc = np.array([0, 0, 0, 0])
    dist = np.zeros((1, 4), dtype=np.float32)
    out = evaluate_ranking(dist, [5], gp, [1], gc, max_rank=4)
    assert out["mAP"] == pytest.approx(0.5) and out["first_hit"][0] == 2
    rev = evaluate_ranking(dist, [5], gp[::-1], [1], gc[::-1], max_rank=4)
    assert rev["mAP"] == pytest.approx((1 + 2 / 3) / 2) and rev["first_hit"][0] == 1


def test_cmc_is_padded_beyond_gallery_length():
    out = evaluate_ranking(np.array([[0.2, 0.1]]), [1], [1, 2], [0], [1, 1], max_rank=5)
    np.testing.assert_allclose(out["cmc"], [0, 1, 1, 1, 1])


@pytest.mark.parametrize("chunk_size", [None, 1, 3])
@pytest.mark.parametrize("seed", [0, 11])
def test_cuhk03_matches_naive_loop(chunk_size, seed):
    dist, qp, gp, qc, gc = market_like(seed=seed + 1, nq=10, ng=60)
    got = evaluate_ranking(
        dist, qp, gp, qc, gc, max_rank=15, cuhk03=True, seed=seed, chunk_size=chunk_size
    )
    want = naive_eval(dist, qp, gp, qc, gc, max_rank=15, cuhk03=True, seed=seed)
    assert_same(got, want)
    assert got["protocol"] == "cuhk03"
    market = evaluate_ranking(dist, qp, gp, qc, gc, max_rank=15)
    assert got["mAP"] == market["mAP"]  # AP uses the full list in both modes


def test_no_valid_query_raises():
    with pytest.raises(ValueError, match="none of the 2 queries"):
        evaluate_ranking(np.zeros((2, 3)), [1, 2], [1, 3, -1], [0, 0], [0, 1, 1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"distmat": np.zeros((2, 4))}, "g_pids has 3 entries"),
        ({"q_pids": [1]}, "q_pids has 1 entries"),
        ({"distmat": np.zeros(3)}, "num_query, num_gallery"),
        ({"ap": "voc"}, "ap='voc' is not known"),
        ({"max_rank": 0}, "max_rank must be >= 1"),
        ({"distmat": np.array([[0.1, np.nan, 0.3], [0.1, 0.2, 0.3]])}, "NaN"),
        ({"g_camids": [[0, 1, 2]]}, "g_camids must be 1-D"),
    ],
)
def test_validation_errors(kwargs, message):
    args = {
        "distmat": np.zeros((2, 3)),
        "q_pids": [1, 2],
        "g_pids": [1, 2, 0],
        "q_camids": [0, 0],
        "g_camids": [1, 1, 1],
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        evaluate_ranking(**args)


def test_stable_row_order_equals_stable_argsort():
    rng = np.random.default_rng(2)
    block = rng.integers(-4, 5, (6, 40)).astype(np.float32) / 3
    block[0, :5] = [-0.0, 0.0, np.inf, -np.inf, 0.0]
    for arr in (block, block.astype(np.float64)):
        want = np.argsort(arr, axis=1, kind="stable")
        np.testing.assert_array_equal(stable_row_order(arr), want)
        np.testing.assert_array_equal(stable_row_order(arr, k=7), want[:, :7])


def test_format_metrics_table():
    dist, qp, gp, qc, gc = market_like(seed=3)
    text = format_metrics(evaluate_ranking(dist, qp, gp, qc, gc, ap="matlab"))
    for label in ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP", "trapezoid", "skipped"):
        assert label in text
