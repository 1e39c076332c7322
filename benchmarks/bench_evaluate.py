"""Speed of workbench.evaluate against the straightforward code it replaces, measured in one run.

1. ``evaluate_ranking`` on a Market-1501-sized 3,368 × 15,913 distance matrix (751 query ids,
   6 cameras, gallery with distractors and junk) vs the classic per-query loop of torchreid /
   FastReID ``eval_func`` (argsort + mask + cumsum, AP by list comprehension) and vs the same
   loop with a numpy AP. All three must agree to 1e-6.
2. ``re_ranking`` on 1,000 × 5,000 vs a straightforward dense implementation (full (M, M)
   matrices, a Python loop per image, the structure of the reference Python code): seconds and
   peak memory. Each runs in a fresh subprocess that loads its inputs from .npy files; the peak
   is the resident high-water mark during the call minus the resident size just before it
   (Linux /proc; this counts numpy, scipy and any C allocation, which tracemalloc would not).

Run: ``.venv/bin/python benchmarks/bench_evaluate.py [--quick]`` (about 2 minutes on 2 cores;
``--quick`` uses 400 queries for the classic loop and a 300 × 1,500 re-ranking problem).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from workbench.evaluate import compute_distance, evaluate_ranking, re_ranking

# --------------------------------------------------------------------------- synthetic data


def market_like_features(num_query, num_gallery, ids, distractors, junk, seed=0, dim=64):
    """Features of query/gallery images: id centre + camera offset + noise (float32)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids + 1, dim)) / np.sqrt(dim)
    cam_offset = rng.normal(size=(6, dim)) * 0.6 / np.sqrt(dim)
    q_pids = np.r_[np.arange(1, ids + 1), rng.integers(1, ids + 1, num_query - ids)]
    n_true = num_gallery - distractors - junk
    g_pids = np.r_[np.arange(1, ids + 1), rng.integers(1, ids + 1, n_true - ids)]
    g_pids = np.r_[g_pids, np.zeros(distractors, int), -np.ones(junk, int)]
    q_cams, g_cams = rng.integers(0, 6, num_query), rng.integers(0, 6, num_gallery)

    def feats(pids, cams):
        f = centres[np.maximum(pids, 0)] + cam_offset[cams]
        f += rng.normal(size=f.shape) * (0.9 / np.sqrt(dim))
        other = pids <= 0  # distractors and junk: unrelated people / bad boxes
        f[other] = rng.normal(size=(other.sum(), dim)) / np.sqrt(dim)
        return torch.from_numpy(f.astype(np.float32))

    return feats(q_pids, q_cams), feats(g_pids, g_cams), q_pids, g_pids, q_cams, g_cams


# --------------------------------------------------------------------------- baselines


def classic_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50, numpy_ap=False):
    """torchreid / FastReID ``eval_func`` style: one query at a time (plus junk removal)."""
    all_cmc, all_ap, all_inp = [], [], []
    for q in range(distmat.shape[0]):
        order = np.argsort(distmat[q], kind="stable")
        remove = (g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q])
        remove |= g_pids[order] == -1
        raw_cmc = (g_pids[order] == q_pids[q])[~remove].astype(np.int32)
        if not raw_cmc.any():
            continue
        cmc = raw_cmc.cumsum()
        last = np.flatnonzero(raw_cmc)[-1]
        all_inp.append(cmc[last] / (last + 1.0))
        cmc[cmc > 1] = 1
        all_cmc.append(cmc[:max_rank])
        if numpy_ap:
            prec = raw_cmc.cumsum() / np.arange(1.0, len(raw_cmc) + 1)
        else:
            prec = np.asarray([x / (i + 1.0) for i, x in enumerate(raw_cmc.cumsum())])
        all_ap.append((prec * raw_cmc).sum() / raw_cmc.sum())
    return np.mean(all_cmc, axis=0), np.mean(all_ap), np.mean(all_inp), np.array(all_ap)


def straightforward_rerank(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):
    """Dense k-reciprocal re-ranking, one image at a time (modules.md §5.6)."""
    nq = len(q_q)
    d = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float32)
    t = (d / d.max(axis=0)).T  # (M, M)
    del d
    m = len(t)
    rank = np.argsort(t, axis=1, kind="stable").astype(np.int32)  # (M, M)
    half = int(np.around(k1 / 2))

    def reciprocal(i, k):
        fwd = rank[i, : k + 1]
        return fwd[(rank[fwd, : k + 1] == i).any(axis=1)]

    v = np.zeros((m, m), dtype=np.float32)
    for i in range(m):
        r_i = reciprocal(i, k1)
        sets = [r_i]
        for c in r_i:
            r_c = reciprocal(c, half)
            if len(np.intersect1d(r_c, r_i)) > 2 / 3 * len(r_c):
                sets.append(r_c)
        cols = np.unique(np.concatenate(sets))
        w = np.exp(-t[i, cols])
        v[i, cols] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(m)])
    inverted = [np.flatnonzero(v[:, k]) for k in range(m)]
    jac = np.zeros((nq, m), dtype=np.float32)
    for i in range(nq):
        acc = np.zeros(m, dtype=np.float32)
        for k in np.flatnonzero(v[i]):
            acc[inverted[k]] += np.minimum(v[i, k], v[inverted[k], k])
        jac[i] = 1 - acc / (2 - acc)
    return (jac * (1 - lambda_value) + t[:nq] * lambda_value)[:, nq:]


# --------------------------------------------------------------------------- helpers


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _status_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def rerank_worker(which, folder):
    """Subprocess body: load inputs, run one implementation, report seconds and peak memory.

    Peak = VmHWM (this process's resident high-water mark) after the call minus VmRSS before it,
    with the high-water mark reset to the current RSS just before the call (``clear_refs`` 5).
    ``getrusage``'s ru_maxrss is not used: Linux carries it across ``exec`` from the parent.
    """
    folder = Path(folder)
    q_g, q_q, g_g = (np.load(folder / f"{n}.npy") for n in ("q_g", "q_q", "g_g"))
    fn = re_ranking if which == "ours" else straightforward_rerank
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before_rss = _status_kb("VmRSS")
    slack = _status_kb("VmHWM") - before_rss
    t0 = time.perf_counter()
    out = fn(q_g, q_q, g_g)
    seconds = time.perf_counter() - t0
    peak = _status_kb("VmHWM")
    np.save(folder / f"out_{which}.npy", out)
    result = {
        "seconds": seconds,
        "peak_extra_mb": (peak - before_rss) / 1024,
        "slack_mb": slack / 1024,
    }
    print(json.dumps(result))


def run_worker(which, folder):
    res = subprocess.run(
        [sys.executable, __file__, "--rerank-worker", which, str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- benchmarks


def bench_ranking(quick):
    print(
        "== evaluate_ranking: 3,368 x 15,913, 751 query ids, 6 cams, 2,793 distractors, 1,000 junk"
    )
    qf, gf, qp, gp, qc, gc = market_like_features(3368, 15913, 751, 2793, 1000)
    dist = compute_distance(qf, gf, metric="euclidean", as_numpy=True)  # float32
    ours_s, ours = best_of(lambda: evaluate_ranking(dist, qp, gp, qc, gc, max_rank=50), 3)
    nb = 400 if quick else len(qp)
    print(f"ours: {ours_s:.2f} s  (R1 {ours['cmc'][0]:.4f}, mAP {ours['mAP']:.4f}, "
          f"mINP {ours['mINP']:.4f}, {ours['num_valid_queries']} valid queries)")  # fmt: skip
    for label, numpy_ap in (("classic loop, list-comprehension AP", False),
                            ("classic loop, numpy AP", True)):  # fmt: skip
        t0 = time.perf_counter()
        cmc, m_ap, m_inp, aps = classic_eval(dist[:nb], qp[:nb], gp, qc[:nb], gc, 50, numpy_ap)
        base_s = (time.perf_counter() - t0) * len(qp) / nb
        sub = evaluate_ranking(dist[:nb], qp[:nb], gp, qc[:nb], gc, max_rank=50)
        agree = max(
            np.abs(sub["cmc"] - cmc).max(),
            abs(sub["mAP"] - m_ap),
            abs(sub["mINP"] - m_inp),
            np.abs(sub["ap"][~np.isnan(sub["ap"])] - aps).max(),
        )
        assert agree < 1e-6, f"{label} disagrees with evaluate_ranking by {agree}"
        extrap = " (extrapolated)" if nb < len(qp) else ""
        print(f"{label}: {base_s:.2f} s{extrap}  ratio {base_s / ours_s:.1f}x  "
              f"max |diff| {agree:.1e} < 1e-6 OK")  # fmt: skip


def bench_rerank(quick):
    nq, ng = (300, 1500) if quick else (1000, 5000)
    print(f"== re_ranking: {nq:,} x {ng:,} (k1=20, k2=6, lambda=0.3), squared Euclidean inputs")
    qf, gf, qp, gp, qc, gc = market_like_features(nq, ng, 300, ng // 10, 0, seed=1)
    qf, gf = torch.nn.functional.normalize(qf, dim=1), torch.nn.functional.normalize(gf, dim=1)
    mats = {
        "q_g": compute_distance(qf, gf, "sqeuclidean", as_numpy=True),
        "q_q": compute_distance(qf, qf, "sqeuclidean", as_numpy=True),
        "g_g": compute_distance(gf, gf, "sqeuclidean", as_numpy=True),
    }
    inputs_mb = sum(a.nbytes for a in mats.values()) / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        for name, arr in mats.items():
            np.save(Path(tmp) / f"{name}.npy", arr)
        ours = run_worker("ours", tmp)
        base = run_worker("baseline", tmp)
        diff = np.abs(np.load(Path(tmp) / "out_ours.npy") - np.load(Path(tmp) / "out_baseline.npy"))
        out = np.load(Path(tmp) / "out_ours.npy")
    print(f"inputs: {inputs_mb:.0f} MB (q_g + q_q + g_g, float32)")
    for label, r in (("ours", ours), ("straightforward dense", base)):
        print(f"{label}: {r['seconds']:.2f} s, peak memory above inputs {r['peak_extra_mb']:.0f} MB "
              f"(reset slack {r['slack_mb']:.0f} MB)")  # fmt: skip
    print(f"ratio: {base['seconds'] / ours['seconds']:.1f}x faster, "
          f"{base['peak_extra_mb'] / max(ours['peak_extra_mb'], 1e-9):.1f}x less peak memory; "
          f"max |diff| {diff.max():.1e}")  # fmt: skip
    before = evaluate_ranking(mats["q_g"], qp, gp, qc, gc)
    after = evaluate_ranking(out, qp, gp, qc, gc)
    print(f"synthetic mAP {before['mAP']:.4f} -> {after['mAP']:.4f} after re-ranking, "
          f"R1 {before['cmc'][0]:.4f} -> {after['cmc'][0]:.4f}")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller baselines (smoke test)")
    parser.add_argument(
        "--rerank-worker", nargs=2, metavar=("WHICH", "DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.rerank_worker:
        rerank_worker(*args.rerank_worker)
        return
    print(f"torch {torch.__version__}, numpy {np.__version__}, {torch.get_num_threads()} threads")
    bench_ranking(args.quick)
    bench_rerank(args.quick)


if __name__ == "__main__":
    main()
