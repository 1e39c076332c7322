"""Attribute files of Lin et al.: reading the real .mat structure, the Duke quirk, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_layouts import make_market, write_lin_mat

from workbench.data.attributes import (
    AttributeFileError,
    check_attributes,
    load_attributes,
    write_attribute_mat,
)
from workbench.data.readers import load_split
from workbench.data.schema import DUKE_ATTRIBUTES, MARKET_ATTRIBUTES, Attribute

IDS = {"train": [10, 2, 7], "test": [5, 3]}  # unsorted on purpose; Market fake layout's pids


def file_coded(schema: tuple[Attribute, ...], ids: list[int], seed: int) -> dict:
    """Random file-coded values (1/2, age 1..4) for ``ids``."""
    rng = np.random.default_rng(seed)
    out: dict = {"ids": ids}
    for a in schema:
        out[a.name] = rng.integers(1, len(a.values) + 1, size=len(ids))
    return out


def expected_table(fields: dict, schema: tuple[Attribute, ...]) -> pd.DataFrame:
    """The workbench table of ``fields``, built by a plain loop (value v -> v - 1)."""
    rows = {}
    for i, pid in enumerate(fields["ids"]):
        rows[pid] = [int(fields[a.name][i]) - 1 for a in schema]
    df = pd.DataFrame.from_dict(rows, orient="index", columns=[a.name for a in schema])
    df.index.name = "pid"
    return df.sort_index().astype(np.int8)


def write_market(path: Path, drop: tuple[str, str] | None = None) -> dict[str, dict]:
    """market_attribute.mat with train fields in schema order, test fields reversed."""
    splits = {s: file_coded(MARKET_ATTRIBUTES, IDS[s], seed) for seed, s in enumerate(IDS)}
    names = [a.name for a in MARKET_ATTRIBUTES]
    orders = {"train": [*names, "image_index"], "test": ["image_index", *names[::-1]]}
    if drop is not None:
        orders[drop[0]].remove(drop[1])
    write_lin_mat(path, "market_attribute", splits, orders)
    return splits


@pytest.mark.parametrize("split", ["train", "test"])
def test_market_file_read_by_name_exactly(tmp_path: Path, split: str) -> None:
    splits = write_market(tmp_path / "market_attribute.mat")
    table = load_attributes(tmp_path / "market_attribute.mat", split=split)
    pd.testing.assert_frame_equal(table, expected_table(splits[split], MARKET_ATTRIBUTES))
    assert list(table.columns) == [a.name for a in MARKET_ATTRIBUTES]
    assert table.attrs == {
        "schema": "market1501",
        "split": split,
        "source": str(tmp_path / "market_attribute.mat"),
    }


def test_age_keeps_four_values(tmp_path: Path) -> None:
    splits = {s: file_coded(MARKET_ATTRIBUTES, IDS[s], 0) for s in IDS}
    splits["train"]["age"] = np.array([4, 1, 3])  # ids 10, 2, 7
    names = [a.name for a in MARKET_ATTRIBUTES]
    write_lin_mat(
        tmp_path / "m.mat", "market_attribute", splits, {s: [*names, "image_index"] for s in IDS}
    )
    assert load_attributes(tmp_path / "m.mat").age.to_dict() == {2: 0, 7: 2, 10: 3}


def test_root_is_searched_and_schema_detected(tmp_path: Path) -> None:
    (tmp_path / "attribute").mkdir()
    write_market(tmp_path / "attribute" / "market_attribute.mat")
    assert load_attributes(tmp_path).attrs["schema"] == "market1501"
    with pytest.raises(AttributeFileError, match=r"holds 'market_attribute' .* schema='dukemtmc'"):
        load_attributes(tmp_path / "attribute" / "market_attribute.mat", schema="dukemtmc")
    with pytest.raises(FileNotFoundError, match=r"no duke_attribute.mat in ROOT, ROOT/attribute"):
        load_attributes(tmp_path, schema="dukemtmc")


def test_two_files_in_a_root_need_a_schema(tmp_path: Path) -> None:
    market = tmp_path / "market_attribute.mat"
    write_market(market)
    write_attribute_mat(
        tmp_path / "duke_attribute.mat",
        expected_table(file_coded(DUKE_ATTRIBUTES, [1, 4], 3), DUKE_ATTRIBUTES),
        expected_table(file_coded(DUKE_ATTRIBUTES, [8], 4), DUKE_ATTRIBUTES),
        schema="dukemtmc",
    )
    with pytest.raises(AttributeFileError, match=r"pass schema='market1501' or schema='dukemtmc'"):
        load_attributes(tmp_path)
    assert load_attributes(tmp_path, schema="dukemtmc").index.tolist() == [1, 4]


@pytest.mark.parametrize("schema", ["market1501", "dukemtmc"])
def test_round_trip_with_write_attribute_mat(tmp_path: Path, schema: str) -> None:
    attrs = MARKET_ATTRIBUTES if schema == "market1501" else DUKE_ATTRIBUTES
    train = expected_table(file_coded(attrs, [1, 3, 9, 12], 5), attrs)
    test = expected_table(file_coded(attrs, [20, 21], 6), attrs)
    write_attribute_mat(tmp_path / "a.mat", train, test, schema=schema)
    pd.testing.assert_frame_equal(load_attributes(tmp_path / "a.mat", "train"), train)
    pd.testing.assert_frame_equal(load_attributes(tmp_path / "a.mat", "test"), test)


def test_duke_top_zero_is_unknown(tmp_path: Path) -> None:
    ids = [370, 679, 1]
    train = file_coded(DUKE_ATTRIBUTES, ids, 7)
    train["top"] = np.array([0, 0, 2])  # the two real ids with top = 0
    names = [a.name for a in DUKE_ATTRIBUTES]
    splits = {"train": train, "test": file_coded(DUKE_ATTRIBUTES, [5], 8)}
    write_lin_mat(tmp_path / "duke_attribute.mat", "duke_attribute", splits,
                  {"train": [*names, "image_index"], "test": ["image_index", *names]})  # fmt: skip
    table = load_attributes(tmp_path / "duke_attribute.mat")
    assert table.attrs["schema"] == "dukemtmc"
    assert str(table["top"].dtype) == "Int8"
    assert table["top"].isna().tolist() == [False, True, True]  # sorted ids 1, 370, 679
    assert table.loc[1, "top"] == 1
    others = [n for n in names if n != "top"]
    assert all(table[n].dtype == np.int8 for n in others)
    expected = expected_table(train, DUKE_ATTRIBUTES)  # its top column has -1 where file had 0
    pd.testing.assert_frame_equal(table[others], expected[others])


# --- bad files -----------------------------------------------------------------------------------
def test_wrong_top_level_key(tmp_path: Path) -> None:
    splits = {s: file_coded(MARKET_ATTRIBUTES, IDS[s], 0) for s in IDS}
    names = [a.name for a in MARKET_ATTRIBUTES]
    write_lin_mat(
        tmp_path / "x.mat", "attributes", splits, {s: [*names, "image_index"] for s in IDS}
    )
    with pytest.raises(AttributeFileError, match=r"x.mat: top-level key\(s\) \['attributes'\]"):
        load_attributes(tmp_path / "x.mat")


def test_missing_split(tmp_path: Path) -> None:
    splits = {"train": file_coded(MARKET_ATTRIBUTES, IDS["train"], 0)}
    names = [a.name for a in MARKET_ATTRIBUTES]
    write_lin_mat(
        tmp_path / "m.mat", "market_attribute", splits, {"train": [*names, "image_index"]}
    )
    with pytest.raises(AttributeFileError, match=r"m.mat: no split 'test' .*\['train'\]"):
        load_attributes(tmp_path / "m.mat", split="test")
    with pytest.raises(ValueError, match=r"split must be one of"):
        load_attributes(tmp_path / "m.mat", split="query")


def test_missing_attribute_field(tmp_path: Path) -> None:
    write_market(tmp_path / "m.mat", drop=("test", "backpack"))
    load_attributes(tmp_path / "m.mat", split="train")  # the train split is complete
    with pytest.raises(AttributeFileError, match=r"m.mat \[test\]: no attribute field 'backpack'"):
        load_attributes(tmp_path / "m.mat", split="test")


@pytest.mark.parametrize(("name", "value"), [("hat", 3), ("age", 5)])
def test_value_out_of_range(tmp_path: Path, name: str, value: int) -> None:
    splits = {s: file_coded(MARKET_ATTRIBUTES, IDS[s], 0) for s in IDS}
    splits["test"][name][1] = value  # id 3
    names = [a.name for a in MARKET_ATTRIBUTES]
    write_lin_mat(
        tmp_path / "m.mat", "market_attribute", splits, {s: [*names, "image_index"] for s in IDS}
    )
    with pytest.raises(AttributeFileError, match=rf"m.mat \[test\]: attribute '{name}' has values \[{value}\].*ids \[3\]"):  # fmt: skip
        load_attributes(tmp_path / "m.mat", split="test")


def test_not_a_mat_file(tmp_path: Path) -> None:
    (tmp_path / "m.mat").write_text("hello")
    with pytest.raises(AttributeFileError, match=r"m.mat: not a readable MATLAB .mat file"):
        load_attributes(tmp_path / "m.mat")


# --- ids against a split -------------------------------------------------------------------------
def test_check_attributes_against_the_market_split(tmp_path: Path) -> None:
    make_market(tmp_path)  # train ids 2, 7; query/gallery ids 3, 5 (+ junk, distractor)
    write_market(tmp_path / "market_attribute.mat")  # train ids 2, 7, 10; test ids 3, 5
    split = load_split(tmp_path)
    test = load_attributes(tmp_path, split="test")
    check_attributes(test, split)  # query + gallery, junk and distractor ignored
    check_attributes(test, split.query)
    train = load_attributes(tmp_path, split="train")
    with pytest.raises(ValueError, match=r"1 attribute ids are not in the table, e.g. \[10\]"):
        check_attributes(train, split)
    check_attributes(train, split.train, allow_extra=True)


def test_check_attributes_suggests_the_other_split(tmp_path: Path) -> None:
    make_market(tmp_path)
    write_market(tmp_path / "market_attribute.mat")
    split = load_split(tmp_path)
    with pytest.raises(ValueError) as err:
        check_attributes(load_attributes(tmp_path, split="test"), split.train)
    message = str(err.value)
    assert "market_attribute.mat (split='test')" in message
    assert "2 table ids have no attributes, e.g. [2, 7]" in message
    assert "2 attribute ids are not in the table, e.g. [3, 5]" in message
    assert "load them with split='train'" in message
