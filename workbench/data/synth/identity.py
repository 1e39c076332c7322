"""Synthetic identities: Market-1501 attributes plus the details that tell look-alikes apart.

Attributes follow the Market-1501 schema of Lin et al. (2019) in the workbench coding
(``workbench.data.schema.MARKET_ATTRIBUTES``: 0/1, age 0..3; ``up`` 1 = short sleeves, ``down``
1 = short lower body, ``clothes`` 0 = dress/skirt, 1 = pants). Frequencies are Market-like but
not copied: carried items and hats are a little more frequent so that small datasets have
positives, and colours are exactly one-hot (real annotations leave ~10% of ids without a colour).
Identity details (shirt pattern, logo, shoe/hair/skin/bag colours, body proportions, gait) are
not annotated; they make identities that share every attribute still distinguishable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.data.schema import MARKET_ATTRIBUTES, MARKET_LOWER_COLOURS, MARKET_UPPER_COLOURS
from workbench.data.synth import palette as pal
from workbench.data.synth.body import BodyShape

ATTRIBUTE_NAMES: tuple[str, ...] = tuple(a.name for a in MARKET_ATTRIBUTES)
AGE_PROBS = (0.05, 0.55, 0.34, 0.06)  # young, teenager, adult, old
PATTERNS = ("plain", "stripes", "logo")


@dataclass(frozen=True)
class Identity:
    """One synthetic person. Colours are BGR tuples (OpenCV order)."""

    pid: int
    attributes: dict[str, int]  # the 27 Market attributes, workbench coding
    shape: BodyShape
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    upper: tuple[int, int, int]
    lower: tuple[int, int, int]
    shoes: tuple[int, int, int]
    hat: tuple[int, int, int]
    pattern: str  # plain | stripes | logo
    accent: tuple[int, int, int]  # stripe / logo colour
    stripe_period: float  # body units
    logo_size: float  # fraction of the torso width
    logo_round: bool  # round badge or rectangular print
    backpack: tuple[int, int, int]
    bag: tuple[int, int, int]
    handbag: tuple[int, int, int]
    bag_shoulder: int  # +1: strap on the left shoulder (bag on the right hip), -1: mirrored
    handbag_hand: int  # +1 left hand, -1 right hand
    hair_length: float  # long hair: how far below the shoulders (body units)
    stride: float = 1.0
    arm_swing: float = 1.0
    gait_period: float = 26.0  # frames per walking cycle


def _choice(rng: np.random.Generator, options: tuple, p: tuple[float, ...] | None = None):
    return options[int(rng.choice(len(options), p=None if p is None else np.asarray(p) / sum(p)))]


def sample_identity(rng: np.random.Generator, pid: int) -> Identity:
    """Draw one identity: attributes first (with gender correlations), then the details."""
    a: dict[str, int] = {}
    female = rng.random() < 0.42
    a["gender"] = int(female)
    a["age"] = int(rng.choice(4, p=AGE_PROBS))
    a["hair"] = int(rng.random() < (0.72 if female else 0.06))
    a["clothes"] = int(not (rng.random() < (0.32 if female else 0.01)))  # 0 = dress / skirt
    a["up"] = int(rng.random() < 0.72)  # short sleeves (filmed in summer)
    a["down"] = int(rng.random() < (0.3 if a["clothes"] else 0.6))  # shorts / short skirt
    a["hat"] = int(rng.random() < 0.1)
    a["backpack"] = int(rng.random() < 0.25)
    a["bag"] = int(rng.random() < 0.2)
    a["handbag"] = int(rng.random() < (0.22 if female else 0.06))
    up = int(rng.choice(len(MARKET_UPPER_COLOURS), p=pal.UPPER_FREQ))
    down = int(rng.choice(len(MARKET_LOWER_COLOURS), p=pal.LOWER_FREQ))
    if a["clothes"] == 0 and MARKET_LOWER_COLOURS[down] == "blue" and rng.random() < 0.5:
        down = MARKET_LOWER_COLOURS.index(_choice(rng, ("black", "pink", "white", "purple")))
    for i, c in enumerate(MARKET_UPPER_COLOURS):
        a[f"up{c}"] = int(i == up)
    for i, c in enumerate(MARKET_LOWER_COLOURS):
        a[f"down{c}"] = int(i == down)
    attributes = {name: a[name] for name in ATTRIBUTE_NAMES}  # schema order

    young, old = a["age"] == 0, a["age"] == 3
    width = rng.uniform(0.88, 1.16) * (0.92 if young else 1.0)
    shape = BodyShape(
        shoulder=(0.101 if female else 0.118) * width,
        hip=(0.074 if female else 0.066) * width,
        depth=0.058 * width,
        head_rx=0.05 * rng.uniform(0.94, 1.06) * (1.1 if young else 1.0),
        head_ry=0.066 * rng.uniform(0.96, 1.04) * (1.12 if young else 1.0),
        limb=width * rng.uniform(0.92, 1.08) * (0.92 if female else 1.0),
        leg=rng.uniform(0.97, 1.03) * (0.95 if young else 1.0),
        female=female,
    )
    hair = (
        _choice(rng, pal.GRAY_HAIR)
        if old and rng.random() < 0.7
        else _choice(rng, pal.HAIR_COLOURS)
    )
    upper_name, lower_name = MARKET_UPPER_COLOURS[up], MARKET_LOWER_COLOURS[down]
    return Identity(
        pid=pid,
        attributes=attributes,
        shape=shape,
        skin=pal.bgr(pal.jitter_colour(_choice(rng, pal.SKIN_TONES), rng, 0.5)),
        hair=pal.bgr(pal.jitter_colour(hair, rng, 0.5)),
        upper=pal.bgr(pal.jitter_colour(pal.UPPER_PALETTE[upper_name], rng)),
        lower=pal.bgr(pal.jitter_colour(pal.LOWER_PALETTE[lower_name], rng)),
        shoes=pal.bgr(pal.jitter_colour(_choice(rng, pal.SHOE_COLOURS), rng)),
        hat=pal.bgr(pal.jitter_colour(_choice(rng, pal.ITEM_COLOURS + pal.ACCENT_COLOURS), rng)),
        pattern=_choice(rng, PATTERNS, (0.55, 0.25, 0.2)),
        accent=pal.bgr(_contrasting(pal.UPPER_PALETTE[upper_name], rng)),
        stripe_period=float(rng.uniform(0.035, 0.07)),
        logo_size=float(rng.uniform(0.35, 0.6)),
        logo_round=bool(rng.random() < 0.5),
        backpack=pal.bgr(pal.jitter_colour(_choice(rng, pal.ITEM_COLOURS), rng)),
        bag=pal.bgr(pal.jitter_colour(_choice(rng, pal.ITEM_COLOURS), rng)),
        handbag=pal.bgr(
            pal.jitter_colour(_choice(rng, pal.ITEM_COLOURS + pal.ACCENT_COLOURS), rng)
        ),
        bag_shoulder=int(rng.choice((-1, 1))),
        handbag_hand=int(rng.choice((-1, 1))),
        hair_length=float(rng.uniform(0.02, 0.14)),
        stride=float(rng.uniform(0.8, 1.15)) * (0.8 if old else 1.0),
        arm_swing=float(rng.uniform(0.7, 1.3)),
        gait_period=float(rng.uniform(22.0, 32.0)),
    )


def _contrasting(rgb: pal.RGB, rng: np.random.Generator) -> pal.RGB:
    """An accent colour (stripes, logo) clearly different from the garment colour."""
    base = np.asarray(rgb, float)
    options = [c for c in pal.ACCENT_COLOURS if np.abs(np.asarray(c, float) - base).sum() > 150]
    return options[int(rng.integers(len(options)))]


def attribute_table(
    identities: list[Identity], split: str | list[str]
) -> list[dict[str, int | str]]:
    """Rows ``{pid, <27 attributes>, split}`` for ``attributes.csv``."""
    splits = [split] * len(identities) if isinstance(split, str) else split
    return [
        {"pid": ident.pid, **ident.attributes, "split": s}
        for ident, s in zip(identities, splits, strict=True)
    ]
