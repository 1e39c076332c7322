"""Attribute schemas as data: Market-1501 (27 attributes) and DukeMTMC-reID (23).

Annotations of Lin et al., "Improving person re-identification by attribute and identity
learning" (Pattern Recognition 2019; `market_attribute.mat`, `duke_attribute.mat`).
The files code every attribute as 1/2 (age 1..4); the workbench stores them as 0/1
(age 0..3), where value ``v`` means ``values[v]`` below. Note the README semantics of
Market's ``up``/``down``: 2 means *short* sleeves / lower body (the paper's figure labels
look flipped; we follow the README).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Attribute:
    name: str  # field name in the .mat file
    values: tuple[str, ...]  # meaning of 0, 1, ... in the workbench coding
    group: str  # body region / kind, for grouping in figures and explanations

    @property
    def binary(self) -> bool:
        """Whether the attribute has two values (no / yes)."""
        return len(self.values) == 2


def _yes_no(names: list[str], group: str) -> list[Attribute]:
    return [Attribute(n, ("no", "yes"), group) for n in names]


MARKET_UPPER_COLOURS = ("black", "white", "red", "purple", "yellow", "gray", "blue", "green")
MARKET_LOWER_COLOURS = (
    "black", "white", "pink", "purple", "yellow", "gray", "blue", "green", "brown",
)  # fmt: skip
DUKE_UPPER_COLOURS = ("black", "white", "red", "purple", "gray", "blue", "green", "brown")
DUKE_LOWER_COLOURS = ("black", "white", "red", "gray", "blue", "green", "brown")

MARKET_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("gender", ("male", "female"), "global"),
    Attribute("hair", ("short", "long"), "head"),
    Attribute("up", ("long sleeve", "short sleeve"), "upper"),
    Attribute("down", ("long lower", "short lower"), "lower"),
    Attribute("clothes", ("dress", "pants"), "lower"),
    *_yes_no(["hat"], "head"),
    *_yes_no(["backpack", "bag", "handbag"], "carried"),
    *_yes_no([f"up{c}" for c in MARKET_UPPER_COLOURS], "upper colour"),
    *_yes_no([f"down{c}" for c in MARKET_LOWER_COLOURS], "lower colour"),
    Attribute("age", ("young", "teenager", "adult", "old"), "global"),
)

DUKE_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("gender", ("male", "female"), "global"),
    Attribute("top", ("short upper", "long upper"), "upper"),
    Attribute("boots", ("no", "yes"), "lower"),
    Attribute("shoes", ("dark", "light"), "lower"),
    *_yes_no(["hat"], "head"),
    *_yes_no(["backpack", "bag", "handbag"], "carried"),
    *_yes_no([f"up{c}" for c in DUKE_UPPER_COLOURS], "upper colour"),
    *_yes_no([f"down{c}" for c in DUKE_LOWER_COLOURS], "lower colour"),
)

SCHEMAS: dict[str, tuple[Attribute, ...]] = {
    "market1501": MARKET_ATTRIBUTES,
    "dukemtmc": DUKE_ATTRIBUTES,
}


def get_schema(name: str) -> tuple[Attribute, ...]:
    """The attribute schema of a dataset (``"market1501"`` or ``"dukemtmc"``)."""
    try:
        return SCHEMAS[name]
    except KeyError:
        raise KeyError(f"unknown attribute schema {name!r}; known: {sorted(SCHEMAS)}") from None


def schema_table(name: str) -> pd.DataFrame:
    """The schema as a table: one row per attribute with ``name, values, group``."""
    return pd.DataFrame(
        [{"name": a.name, "values": a.values, "group": a.group} for a in get_schema(name)]
    )
