"""Attribute annotation files of Lin et al. (``market_attribute.mat``, ``duke_attribute.mat``).

File format (see ``shared/reference/aam.md`` §4): top-level key ``market_attribute`` /
``duke_attribute`` holding a 1×1 struct with fields ``train`` and ``test``; each is a 1×1 struct
with one uint8 1×N array per attribute (1 = no / first value, 2 = yes / second value; age 1..4)
plus ``image_index``, a 1×N cell of 4-character id strings. The field order differs between
train and test, so everything is indexed by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.schema import get_schema

MAT_KEYS = {"market1501": "market_attribute", "dukemtmc": "duke_attribute"}


def write_attribute_mat(
    path: str | Path, train: pd.DataFrame, test: pd.DataFrame, schema: str = "market1501"
) -> None:
    """Write per-identity attribute tables (index pid, workbench 0/1 coding) in Lin et al.'s format.

    The file is byte-reproducible: scipy's creation-date header is replaced by a fixed one.
    """
    from scipy.io import savemat

    attrs = get_schema(schema)

    def struct(df: pd.DataFrame, reverse: bool) -> dict:
        names = [a.name for a in attrs]
        missing = [n for n in names if n not in df.columns]
        if missing:
            raise ValueError(f"attribute table lacks columns {missing} of schema {schema!r}")
        out: dict = {}
        # real files store train and test fields in different orders; so do we
        for name in reversed(names) if reverse else names:
            out[name] = (df[name].to_numpy(np.int64) + 1).astype(np.uint8)[None, :]
        ids = np.empty((1, len(df)), dtype=object)
        for i, pid in enumerate(df.index):
            ids[0, i] = f"{int(pid):04d}"
        out["image_index"] = ids
        return out

    key = MAT_KEYS[schema]
    path = Path(path)
    savemat(path, {key: {"train": struct(train, False), "test": struct(test, True)}})
    raw = bytearray(path.read_bytes())
    header = f"MATLAB 5.0 MAT-file, written by reid-workbench ({schema} attributes)".encode()
    raw[:116] = header.ljust(116, b" ")
    path.write_bytes(bytes(raw))
