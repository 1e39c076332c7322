"""Independent random streams of the generator, all derived from the dataset seed.

Every random decision draws from ``numpy.random.default_rng(SeedSequence([seed, stream, *key]))``
for one of the streams below, so that an image's pixels depend only on (seed, image index) and
never on the number of worker processes or the order in which they run.
"""

from __future__ import annotations

import numpy as np

IDENTITY = 1  # key: pid
IMAGE = 2  # key: image index
PLAN = 3  # no key: split, cameras per id, tracks, query choice
CAMERA = 4  # key: camera index (0-based)
PLATE = 5  # key: camera (0-based), plate
NOISE = 7  # key: camera (1-based)


def rng(seed: int, stream: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream, *map(int, key)]))
