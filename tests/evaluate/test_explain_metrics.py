"""X-mAP, ADRE and the AAM localisation score against hand-worked cases and naive loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.evaluate import adre, localisation_scores, x_map


def naive_ap(order: list[int], relevant: set[int], denominator: int) -> float:
    hits, total = 0, 0.0
    for rank, k in enumerate(order, start=1):
        if k in relevant:
            hits += 1
            total += hits / rank
    return total / denominator


def naive_x_map(shares: np.ndarray, exclusive: np.ndarray, lam: float = 2.0) -> tuple:
    aps_e, aps_c = [], []
    for s, e in zip(shares, exclusive, strict=True):
        m, n = len(s), int(e.sum())
        desc = sorted(range(m), key=lambda k: (-s[k], k))
        asc = sorted(range(m), key=lambda k: (s[k], k))
        if n >= 1:
            aps_e.append(naive_ap(desc, {k for k in range(m) if e[k]}, n))
        if n == 0:
            aps_c.append(naive_ap(desc, {k for k in range(m) if s[k] <= lam / m}, m))
        elif m - n >= 1:
            aps_c.append(naive_ap(asc, {k for k in range(m) if not e[k]}, m - n))
    return np.mean(aps_e), np.mean(aps_c)


def test_x_map_hand_worked() -> None:
    shares = np.array([[0.4, 0.3, 0.2, 0.1], [0.7, 0.1, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4]])
    exclusive = np.array([[0, 1, 0, 1], [0, 0, 0, 0], [1, 1, 1, 0]], bool)
    # pair 1: descending 0,1,2,3; exclusive at ranks 2 and 4 -> (1/2 + 2/4) / 2 = 0.5
    #         ascending 3,2,1,0; common at ranks 2 and 4 -> 0.5
    # pair 2: N = 0, 2/M = 0.5: attribute 0 (0.7) overflows at rank 1 ->
    #         (1/2 + 2/3 + 3/4) / 4 = 23/48
    # pair 3: descending 3,2,1,0: exclusive at ranks 2,3,4 -> (1/2 + 2/3 + 3/4) / 3 = 23/36
    #         ascending 0,1,2,3: the common attribute 3 at rank 4 -> (1/4) / 1
    out = x_map(shares, exclusive)
    assert out["x_map_e"] == pytest.approx((0.5 + 23 / 36) / 2)
    assert out["x_map_c"] == pytest.approx((0.5 + 23 / 48 + 0.25) / 3)
    assert (out["pairs_e"], out["pairs_c"]) == (2, 3)


def test_x_map_perfect_and_overflow_parameter() -> None:
    shares = np.array([[0.4, 0.4, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
    exclusive = np.array([[1, 1, 0, 0], [0, 0, 0, 0]], bool)
    assert x_map(shares, exclusive) == {"x_map_e": 1.0, "x_map_c": 1.0, "pairs_e": 1, "pairs_c": 2}
    # with lambda = 0.5 every share 0.25 > 0.5/4 overflows: the all-common pair scores 0
    assert x_map(shares, exclusive, overflow=0.5)["x_map_c"] == pytest.approx(0.5)


def test_x_map_matches_a_naive_loop_on_random_pairs() -> None:
    rng = np.random.default_rng(0)
    raw = rng.gamma(1.0, size=(200, 7))
    shares = raw / raw.sum(1, keepdims=True)
    exclusive = rng.random((200, 7)) < 0.3
    exclusive[:20] = False  # some all-common pairs
    e, c = naive_x_map(shares, exclusive)
    out = x_map(torch.from_numpy(shares), torch.from_numpy(exclusive))
    assert out["x_map_e"] == pytest.approx(e) and out["x_map_c"] == pytest.approx(c)


def test_x_map_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="pairs, attributes"):
        x_map(np.ones((2, 3)) / 3, np.zeros((2, 4), bool))


def test_adre() -> None:
    d = np.array([2.0, 4.0, 0.0])
    d_hat = np.array([1.0, 5.0, 3.0])  # the d = 0 entry is skipped
    assert adre(d, d_hat) == pytest.approx((0.5 + 0.25) / 2)


def test_localisation_score_hand_worked() -> None:
    # one 4x2 image: the head is the top row of a 2x1 AAM grid cell pair (area share 1/4)
    parts = torch.zeros(1, 4, 2, dtype=torch.long)
    parts[0, 0, :] = 1  # head (PART_LABELS 1)
    parts[0, 2:, :] = 3  # lower body
    aams = torch.ones(1, 2, 2, 1)
    aams[0, 0, 0, 0] = 3.0  # "hat" puts 3 of 4 units of mass on the top cell
    table = localisation_scores(aams, parts, ["hat", "gender"])
    assert table["attribute"].tolist() == ["hat"]  # gender has no region
    row = table.iloc[0]
    # top cell = rows 0-1: half of it is head -> region share per cell (0.5, 0)
    assert row["inside"] == pytest.approx(3 * 0.5 / 4)
    assert row["chance"] == pytest.approx(0.25)
    assert row["lift"] == pytest.approx(1.5) and bool(row["above_chance"])


def test_localisation_score_counts_only_images_whose_region_is_present() -> None:
    """An image without the region (no head pixels) has no "inside" share: it must not pull
    the mean down to 0 or its zero area into the chance level."""
    parts = torch.zeros(2, 4, 2, dtype=torch.long)
    parts[0, 0, :] = 1  # image 0 has a head row; image 1 has none
    aams = torch.ones(2, 1, 2, 1)
    aams[:, 0, 0, 0] = 3.0  # both put 3 of 4 units of mass on the top cell
    row = localisation_scores(aams, parts, ["hat"]).iloc[0]
    assert row["images"] == 1
    assert row["inside"] == pytest.approx(3 * 0.5 / 4)  # image 0 alone
    assert row["chance"] == pytest.approx(0.25)
    labelled = localisation_scores(aams, parts, ["hat"], labels={"hat": np.array([1, 1])})
    assert labelled.iloc[0]["images_pos"] == 1
