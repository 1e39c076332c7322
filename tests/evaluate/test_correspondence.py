"""Correspondence accuracy: pairs, hits and chance checked against a naive recomputation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.explain.explain_helpers import tiny_bot
from workbench.data import load_split
from workbench.data.dataset import ReIDDataset
from workbench.data.transforms import build_transforms
from workbench.evaluate import correspondence as corr


@pytest.fixture(scope="module")
def split(tiny_synth):
    return load_split(tiny_synth)


class _SameCell:
    """A stand-in decomposition whose correspondence puts all mass on the point's own cell."""

    def __init__(self, grid=(8, 4)):
        self.grid = grid

    def correspondence(self, points, side="query"):
        h, w = self.grid
        out = torch.zeros(1, len(points), h, w)
        for p, (y, x) in enumerate(points):
            out[0, p, min(int(y * h), h - 1), min(int(x * w), w - 1)] = 1.0
        return out


def test_hits_and_chance_against_a_naive_loop(split, monkeypatch):
    import workbench.explain.decomposition as decomposition

    monkeypatch.setattr(decomposition, "decompose_pair", lambda *a, **k: _SameCell())
    table = corr.correspondence_accuracy(tiny_bot(), split, pairs=6, seed=0, input_size=(128, 64))
    dataset = {
        part: ReIDDataset(getattr(split, part), build_transforms(128, 64, train=False))
        for part in ("query", "gallery")
    }
    hits = {p: [] for p in corr.BODY_PARTS}
    chance = {p: [] for p in corr.BODY_PARTS}
    for qi, gi in corr._pairs(split, 6, 0):
        assert split.query.pid[qi] == split.gallery.pid[gi]  # the same person ...
        assert split.query.camid[qi] != split.gallery.camid[gi]  # ... from another camera
        q_parts = dataset["query"][qi]["parts"].numpy()
        g_parts = dataset["gallery"][gi]["parts"].numpy()
        for name, label in corr.BODY_PARTS.items():
            ys, xs = np.nonzero(q_parts == label)
            if not len(ys) or not (g_parts == label).any():
                continue
            y, x = (ys.mean() + 0.5) / 128, (xs.mean() + 0.5) / 64
            cy, cx = min(int(y * 8), 7), min(int(x * 4), 3)  # the point's own cell
            centre = g_parts[int((cy + 0.5) * 16), int((cx + 0.5) * 16)]
            hits[name].append(centre == label)
            cells = [
                g_parts[int((i + 0.5) * 16), int((j + 0.5) * 16)]
                for i in range(8)
                for j in range(4)
            ]
            chance[name].append(np.mean([c == label for c in cells]))
    for _, row in table.iterrows():
        assert row["points"] == len(hits[row["part"]])
        assert row["accuracy"] == pytest.approx(np.mean(hits[row["part"]]))
        assert row["chance"] == pytest.approx(np.mean(chance[row["part"]]))


def test_a_real_model_scores_between_zero_and_one(split):
    model = tiny_bot(input_size=(128, 64))  # built for the size it is given (its input contract)
    table = corr.correspondence_accuracy(model, split, pairs=4, seed=1, input_size=(128, 64))
    assert list(table["part"]) == list(corr.BODY_PARTS)
    assert table["accuracy"].between(0, 1).all() and table["chance"].between(0, 1).all()
