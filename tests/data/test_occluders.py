"""Occluders draw for any person box, however narrow (small images, side views)."""

from __future__ import annotations

import numpy as np

from workbench.data.synth.draw import OCCLUDER, Canvas
from workbench.data.synth.occluders import _bicycle


def test_bicycle_in_front_of_a_person_narrower_than_a_wheel():
    # 128x64 renders of seed 2 at site 1 met a person box narrower than the wheel radius, where
    # the wheel's range was empty (numpy: "high - low < 0"); the bicycle now stands at x0 - r
    image = np.zeros((128, 64, 3), np.uint8)
    canvas = Canvas(image)
    canvas.mode = "occluder"
    _bicycle(canvas, np.random.default_rng(0), 30.0, 31.0)
    assert (canvas.ids == OCCLUDER).any() and image.any()
