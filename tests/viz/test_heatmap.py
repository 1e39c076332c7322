"""Heat-map rendering: one scale for many maps, overlays, colour bars (hand-worked values)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from workbench.viz.heatmap import Scale, colour_bar, colourise, encode, overlay, shared_scale


def test_positive_scale_is_a_percentile_of_the_positive_values_of_all_maps():
    a = np.array([[-5.0, 0.0], [1.0, 2.0]])
    b = torch.tensor([[3.0, 4.0], [-1.0, 0.0]])
    s = shared_scale([a, b], "positive", percentile=100)
    assert (s.vmin, s.vmax, s.mode) == (0.0, 4.0, "positive")  # the -5 is ReLU'd away
    s50 = shared_scale([a, b], "positive", percentile=50)
    assert s50.vmax == pytest.approx(np.percentile([1, 2, 3, 4], 50))


def test_signed_scale_is_symmetric_and_degenerate_maps_get_a_unit_scale():
    s = shared_scale([np.array([-5.0, 1.0])], "signed", percentile=100)
    assert (s.vmin, s.vmax) == (-5.0, 5.0)
    assert shared_scale([np.zeros((2, 2))]).vmax == 1.0
    assert shared_scale([-np.ones((2, 2))], "positive").vmax == 1.0
    with pytest.raises(ValueError, match="positive' or 'signed"):
        shared_scale([np.zeros(1)], "log")


def test_normalise_and_colourise_follow_the_scale():
    s = Scale(0.0, 2.0, "gray", "positive")
    np.testing.assert_allclose(s.normalise(np.array([-1.0, 0.0, 1.0, 3.0])), [0, 0, 0.5, 1])
    rgb = colourise(np.array([[0.0, 2.0]]), s)
    assert (
        rgb.shape == (1, 2, 3)
        and rgb[0, 0].tolist() == [0, 0, 0]
        and rgb[0, 1].tolist() == [255] * 3
    )


def test_overlay_upsamples_and_blends():
    image = np.full((8, 4, 3), 100, np.uint8)
    heat = np.array([[0.0, 0.0], [0.0, 2.0]])  # (2, 2) → 8 × 4 bilinear
    s = Scale(0.0, 2.0, "gray", "positive")
    out = overlay(image, heat, s, alpha=1.0)
    up = cv2.resize(heat.astype(np.float32), (4, 8), interpolation=cv2.INTER_LINEAR)
    n = np.clip(up / 2.0, 0, 1)
    weight = 0.15 + 0.85 * n  # positive mode: the colour's weight follows the value
    want = (1 - weight) * 100 + weight * np.round(n * 255)
    np.testing.assert_allclose(out[..., 0], want, atol=1.01)
    assert overlay(image, heat, s, alpha=0.0).tolist() == image.tolist()


def test_colour_bar_and_encoding():
    bar = colour_bar(Scale(0.0, 1.0, "jet"), height=64, width=48)
    assert bar.shape == (64, 48, 3)
    assert not np.array_equal(bar[1, 2], bar[-2, 2])  # top and bottom colours differ
    png, jpg = encode(bar), encode(bar, "jpeg")
    assert png[:4] == b"\x89PNG" and jpg[:2] == b"\xff\xd8"
    back = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    np.testing.assert_array_equal(back, bar)
