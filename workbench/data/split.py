"""The dataset-split contract and Market-1501 style file names.

A split is three pandas DataFrames (train, query, gallery), one row per image, with at least
the columns ``path`` (absolute str), ``pid`` (int; -1 junk, 0 distractor) and ``camid`` (int,
0-based). Readers may add optional columns (``seq``, ``frame``, ``mask_path``, ...).
Readers only build these tables; loading pixels is the Dataset's job.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

REQUIRED_COLUMNS = ("path", "pid", "camid")

# 0002_c1s1_000451_03.jpg   -1_c3s2_012345_01.jpg   (Market-1501, DukeMTMC-reID: 0005_c2_f0046985.jpg)
_MARKET_NAME = re.compile(r"^(?P<pid>-1|\d+)_c(?P<cam>\d+)(?:s(?P<seq>\d+))?_(?P<rest>[^.]+)\.\w+$")


class FileNameError(ValueError):
    """A file name that does not follow the Market-1501 naming scheme."""


@dataclass(frozen=True)
class MarketName:
    pid: int
    camid: int  # 0-based
    seq: int | None
    rest: str  # frame / bbox part, as written


def parse_market_name(name: str | Path) -> MarketName:
    """Parse ``PPPP_cCsS_FFFFFF_NN.jpg`` (Market-1501) or ``PPPP_cC_fFFFFFFF.jpg`` (Duke).

    Camera numbers are 1-based in file names and 0-based in the returned ``camid``.
    """
    base = os.path.basename(name)
    m = _MARKET_NAME.match(base)
    if m is None:
        raise FileNameError(
            f"{name}: file name does not parse as PPPP_cCsS_FFFFFF_NN.jpg (Market-1501) or "
            f"PPPP_cC_fFFFFFFF.jpg (DukeMTMC-reID); rename the file or remove it from the folder"
        )
    cam = int(m["cam"])
    if cam < 1:
        raise FileNameError(f"{name}: camera number must be >= 1 (cameras are 1-based in names)")
    seq = int(m["seq"]) if m["seq"] is not None else None
    return MarketName(pid=int(m["pid"]), camid=cam - 1, seq=seq, rest=m["rest"])


@dataclass
class Split:
    """Train / query / gallery tables of one dataset."""

    train: pd.DataFrame
    query: pd.DataFrame
    gallery: pd.DataFrame
    name: str = "custom"
    root: Path | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for part in ("train", "query", "gallery"):
            df = getattr(self, part)
            missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
            if missing:
                raise ValueError(f"Split.{part} lacks required columns {missing}")

    def summary(self) -> pd.DataFrame:
        """Identities, images and cameras per part, as a small table."""
        rows = []
        for part in ("train", "query", "gallery"):
            df = getattr(self, part)
            rows.append(
                {
                    "split": part,
                    "ids": int(df.loc[df.pid > 0, "pid"].nunique()),
                    "images": len(df),
                    "cameras": int(df.camid.nunique()),
                    "distractors": int((df.pid == 0).sum()),
                    "junk": int((df.pid == -1).sum()),
                }
            )
        return pd.DataFrame(rows).set_index("split")

    def __repr__(self) -> str:
        sizes = ", ".join(f"{p}={len(getattr(self, p))}" for p in ("train", "query", "gallery"))
        return f"Split({self.name!r}, {sizes})"


def relabel(pids: pd.Series | list[int]) -> tuple[list[int], dict[int, int]]:
    """Map arbitrary training pids to contiguous labels 0..K-1 (sorted by pid)."""
    mapping = {pid: i for i, pid in enumerate(sorted(set(int(p) for p in pids)))}
    return [mapping[int(p)] for p in pids], mapping


def split_warnings(split: Split) -> list[str]:
    """What is probably wrong with a split's tables (each line a sentence; empty if nothing).

    * identities (pid > 0) both in ``train`` and in ``query``/``gallery``: a test on seen people;
    * distractor (pid 0) or junk (pid -1) queries: the Market-1501 protocol has none, and they
      have no true match, so they would count as failures;
    * queries without any gallery image of their identity (they count in no metric).
    """
    train = set(split.train.pid[split.train.pid > 0].tolist())
    test = (
        split.query.pid[split.query.pid > 0].tolist()
        + split.gallery.pid[split.gallery.pid > 0].tolist()
    )
    lines = []
    seen = sorted(train & set(test))
    if seen:
        lines.append(
            f"{len(seen)} identities are in both train and query/gallery (e.g. {seen[:5]}): the "
            f"test measures people the model was trained on; use a split with disjoint ids"
        )
    for pid, kind in ((0, "distractor (pid 0)"), (-1, "junk (pid -1)")):
        n = int((split.query.pid == pid).sum())
        if n:
            lines.append(
                f"{n} queries are {kind} images, which have no true match; the Market-1501 "
                f"protocol has none among the queries: drop them from the query table"
            )
    gallery = set(split.gallery.pid.tolist())
    lonely = sorted(set(split.query.pid[split.query.pid > 0].tolist()) - gallery)
    if lonely:
        lines.append(
            f"{len(lonely)} query identities have no gallery image (e.g. {lonely[:5]}); they "
            f"count in no metric: query.csv and gallery of different datasets?"
        )
    return lines


def warn_split(split: Split) -> None:
    """:func:`split_warnings` as Python warnings (what evaluation and training call)."""
    import warnings

    for line in split_warnings(split):
        warnings.warn(f"{split.name}: {line}", UserWarning, stacklevel=3)
