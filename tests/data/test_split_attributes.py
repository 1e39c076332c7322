"""Bad attribute files for a training split fail naming the file and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_layouts import write_lin_mat

from workbench.data.attributes import AttributeFileError, split_attributes
from workbench.data.schema import MARKET_ATTRIBUTES

NAMES = [a.name for a in MARKET_ATTRIBUTES]


def write(path: Path, train_ids: list[int], drop: str | None = None) -> None:
    splits = {}
    for split, ids in (("train", train_ids), ("test", [50, 51])):
        fields: dict = {"ids": ids}
        for a in MARKET_ATTRIBUTES:
            fields[a.name] = np.ones(len(ids), dtype=np.uint8)
        splits[split] = fields
    order = [n for n in NAMES if n != drop] + ["image_index"]
    write_lin_mat(path, "market_attribute", splits, {"train": order, "test": order})


def table(pids: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"path": [f"{p}.jpg" for p in pids], "pid": pids, "camid": 1})


def test_matching_ids_load(tmp_path: Path) -> None:
    write(tmp_path / "market_attribute.mat", [2, 7, 10])
    attrs = split_attributes(tmp_path, table([2, 7, 7, 10, -1]))
    assert attrs.index.tolist() == [2, 7, 10] and list(attrs.columns) == NAMES


def test_ids_of_another_split_fail_naming_file_and_fix(tmp_path: Path) -> None:
    write(tmp_path / "market_attribute.mat", [2, 7, 10])
    with pytest.raises(AttributeFileError) as err:
        split_attributes(tmp_path, table([2, 7, 11]))
    msg = str(err.value)
    assert str(tmp_path / "market_attribute.mat") in msg
    assert "1 table ids have no attributes, e.g. [11]" in msg and "fix:" in msg


def test_missing_attribute_fails_naming_file_attribute_and_fix(tmp_path: Path) -> None:
    write(tmp_path / "market_attribute.mat", [2, 7, 10], drop="hat")
    with pytest.raises(AttributeFileError) as err:
        split_attributes(tmp_path / "market_attribute.mat", table([2, 7, 10]))
    msg = str(err.value)
    assert "market_attribute.mat [train]: no attribute field 'hat'" in msg
    assert "Fix: use the complete file" in msg
