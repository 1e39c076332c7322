"""Faithfulness metrics on hand-made maps and a hand-made "model"."""

from __future__ import annotations

import math

import pytest
import torch

from workbench.explain import ExplainError
from workbench.explain.metrics import (
    area_share,
    curve_area,
    deletion_curve,
    energy_in_mask,
    insertion_curve,
    pointing_game,
)


def test_energy_in_mask_and_chance_by_hand():
    maps = torch.tensor([[[1.0, -2.0], [3.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    masks = torch.tensor([[[1, 1], [0, 0]], [[1, 0], [0, 0]]])
    energy = energy_in_mask(maps, masks)
    assert energy[0].item() == pytest.approx(1 / 4)  # relu: (1 + 0) / (1 + 3)
    assert math.isnan(energy[1].item())  # nothing positive: undefined, not 0
    assert area_share(masks).tolist() == [0.5, 0.25]
    uniform = energy_in_mask(
        torch.ones(1, 4, 4), masks[:1].repeat_interleave(2, 1).repeat_interleave(2, 2)
    )
    assert uniform.item() == pytest.approx(0.5)  # a flat map scores exactly chance


def test_pointing_game_by_hand():
    maps = torch.tensor([[[0.0, 5.0], [1.0, 0.0]], [[0.0, 5.0], [1.0, 0.0]]])
    masks = torch.tensor([[[0, 1], [0, 0]], [[1, 0], [1, 1]]])
    assert pointing_game(maps, masks).tolist() == [True, False]
    with pytest.raises(ExplainError, match="same shape"):
        pointing_game(maps, masks[:, :1])


def test_deletion_and_insertion_follow_the_map_order():
    # "distance" = sum of the image's first channel; the map ranks pixel 3 > 0 > 1 > 2
    images = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2).expand(1, 3, 2, 2).clone()
    maps = torch.tensor([[[3.0, 2.0], [1.0, 4.0]]])

    def dist(x):
        return x[:, 0].flatten(1).sum(1)

    deletion = deletion_curve(dist, images, maps, steps=4)
    assert deletion.tolist() == [[10.0, 6.0, 5.0, 3.0, 0.0]]  # remove 4, then 1, 2, 3
    insertion = insertion_curve(dist, images, maps, steps=4)
    assert insertion.tolist() == [[0.0, 4.0, 5.0, 7.0, 10.0]]
    assert curve_area(insertion).item() == pytest.approx((0 + 2 * (4 + 5 + 7) + 10) / 8)
