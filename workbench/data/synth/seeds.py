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
DOMAIN = 8  # key: domain, [camera (0-based)]: the cameras and plates of a second domain


def rng(seed: int, stream: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream, *map(int, key)]))


def domain_seed(seed: int, domain: int) -> int:
    """The seed of a domain's background plates: ``seed`` itself for domain 0."""
    if domain == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), DOMAIN, int(domain)]).generate_state(1)[0])
