"""Dataset readers: exact tables from tiny fake copies of each real layout, and clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_layouts import (
    MARKET_FOLDERS,
    MARKET_SPEC,
    Row,
    make_cuhk03np,
    make_duke,
    make_market,
    make_msmt17,
    table,
    write_image,
)

from workbench.data.annotations import mask_path_for, write_keypoints
from workbench.data.readers import DatasetLayoutError, layout_names, load_split
from workbench.data.split import FileNameError


def assert_part(actual: pd.DataFrame, rows: list[Row], seq: bool) -> None:
    expected = table(rows, seq)
    pd.testing.assert_frame_equal(actual[list(expected.columns)], expected)


# --- Market-1501 --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sub", [".", "Market-1501-v15.09.15", "market1501", "market1501/Market-1501-v15.09.15"]
)
def test_market_tables_exact_in_every_nesting(tmp_path: Path, sub: str) -> None:
    rows = make_market(tmp_path / sub)
    split = load_split(tmp_path)
    assert split.name == "market1501"
    assert split.root == (tmp_path / sub).resolve()
    # junk (-1) leaves train only; the gallery keeps junk and the pid-0 distractor
    assert_part(split.train, [r for r in rows["train"] if r.pid != -1], seq=True)
    assert_part(split.query, rows["query"], seq=True)
    assert_part(split.gallery, rows["gallery"], seq=True)
    assert sorted(split.gallery.pid) == [-1, 0, 3, 3, 5]
    assert split.meta["train_junk_dropped"] == 1
    assert list(split.train.path) == sorted(split.train.path)
    assert all(Path(p).is_absolute() for p in split.gallery.path)
    assert "mask_path" not in split.train and "keypoints" not in split.train


def test_market_values_worked_by_hand(tmp_path: Path) -> None:
    make_market(tmp_path)
    train = load_split(tmp_path).train
    # 0002_c1s1_000451_03, 0002_c2s1_000500_01, 0007_c1s2_000100_01, 0007_c3s1_000090_02
    assert train.pid.tolist() == [2, 2, 7, 7]
    assert train.camid.tolist() == [0, 1, 0, 2]
    assert train.seq.tolist() == [1, 1, 2, 1]
    assert train.pid.dtype == np.int64 and train.camid.dtype == np.int64


def test_market_query_junk_is_kept_with_a_warning(tmp_path: Path) -> None:
    spec = {**MARKET_SPEC, "query": [*MARKET_SPEC["query"], (-1, 4, 1, 5, 1)]}
    make_market(tmp_path, spec)
    with pytest.warns(UserWarning, match=r"1 query images have pid -1"):
        split = load_split(tmp_path)
    assert sorted(split.query.pid) == [-1, 3, 5]


def test_forced_layout_reads_a_plain_market_folder_as_duke(tmp_path: Path) -> None:
    rows = make_market(tmp_path)
    split = load_split(tmp_path, layout="dukemtmc")
    assert split.name == "dukemtmc"
    assert_part(split.query, rows["query"], seq=True)


def test_synthetic_annotations_become_columns(tmp_path: Path) -> None:
    rows = make_market(tmp_path)
    query = sorted(rows["query"], key=lambda r: r.path)
    names = [Path(r.path).name for r in query]
    # a mask for the first query image only; keypoints for both (listed in reverse order)
    write_image(tmp_path / "masks" / "query" / (Path(names[0]).stem + ".png"))
    kps = np.arange(2 * 17 * 3, dtype=np.float32).reshape(2, 17, 3) * 1.5  # exact at 0.1 px
    kps[..., 2] = 2
    write_keypoints(tmp_path / "keypoints" / "query.csv", names[::-1], kps[::-1])
    split = load_split(tmp_path)
    mask_dir = tmp_path.resolve() / "masks" / "query"
    assert split.query.mask_path.tolist() == [str(mask_dir / (Path(names[0]).stem + ".png")), None]
    assert split.query.mask_path[0] == str(mask_path_for(split.root, split.query.path[0]))
    assert split.query.keypoints.dtype == object
    for i in range(2):
        assert split.query.keypoints[i].shape == (17, 3)
        np.testing.assert_array_equal(split.query.keypoints[i], kps[i])
    assert "mask_path" not in split.train and "keypoints" not in split.gallery


def test_keypoint_rows_may_name_images_by_stem(tmp_path: Path) -> None:
    rows = make_market(tmp_path)
    stems = sorted(Path(r.path).stem for r in rows["query"])
    kps = np.stack([np.full((17, 3), 1.0), np.full((17, 3), 2.0)]).astype(np.float32)
    write_keypoints(tmp_path / "keypoints" / "query.csv", stems, kps)
    query = load_split(tmp_path).query
    assert [float(k[0, 0]) for k in query.keypoints] == [1.0, 2.0]


def test_mixed_names_give_a_nullable_seq(tmp_path: Path) -> None:
    make_market(tmp_path)
    write_image(tmp_path / "bounding_box_train" / "0009_c2_f0000001.jpg")  # Duke-style: no seq
    train = load_split(tmp_path).train
    assert str(train.seq.dtype) == "Int64"
    assert train.seq.isna().tolist() == [False, False, False, False, True]  # 0009 sorts last


# --- DukeMTMC-reID, CUHK03-NP, MSMT17 -------------------------------------------------------------
@pytest.mark.parametrize("sub", ["DukeMTMC-reID", "dukemtmc-reid/DukeMTMC-reID"])
def test_duke_detected_and_exact(tmp_path: Path, sub: str) -> None:
    rows = make_duke(tmp_path / sub)
    split = load_split(tmp_path)
    assert split.name == "dukemtmc"
    for part in ("train", "query", "gallery"):
        assert_part(getattr(split, part), rows[part], seq=False)
    assert "seq" not in split.train  # Duke names carry no sequence number
    assert split.train.camid.tolist() == [1, 7, 0]  # cameras 2, 8, 1 in the names
    # pointing at the DukeMTMC-reID folder itself is detected by its name
    assert load_split(tmp_path / sub).name == "dukemtmc"


def test_cuhk03np_variants(tmp_path: Path) -> None:
    rows = make_cuhk03np(tmp_path)
    for root in (tmp_path, tmp_path / "cuhk03-np"):
        labeled = load_split(root)
        assert labeled.name == "cuhk03np" and labeled.meta["variant"] == "labeled"
        assert_part(labeled.gallery, rows["labeled"]["gallery"], seq=False)
        detected = load_split(root, variant="detected")
        assert detected.meta["variant"] == "detected"
        for part in ("train", "query", "gallery"):
            assert_part(getattr(detected, part), rows["detected"][part], seq=False)
    direct = load_split(tmp_path / "cuhk03-np" / "detected", layout="cuhk03np")
    assert direct.meta["variant"] == "detected"
    assert direct.train.pid.tolist() == [101, 101]
    assert load_split(tmp_path / "cuhk03-np" / "labeled").name == "cuhk03np"  # auto-detected
    with pytest.raises(ValueError, match=r"holds the detected boxes but variant='labeled'"):
        load_split(tmp_path / "cuhk03-np" / "detected", variant="labeled")
    with pytest.raises(ValueError, match=r"unknown CUHK03-NP variant 'both'"):
        load_split(tmp_path, layout="cuhk03np", variant="both")


def test_cuhk03np_only_detected_suggests_the_variant(tmp_path: Path) -> None:
    make_cuhk03np(tmp_path)
    labeled = tmp_path / "cuhk03-np" / "labeled"
    labeled.rename(tmp_path / "elsewhere")
    with pytest.raises(DatasetLayoutError, match=r"detected/ exists: pass variant='detected'"):
        load_split(tmp_path, layout="cuhk03np")


@pytest.mark.parametrize("version", ["MSMT17_V1", "MSMT17_V2"])
def test_msmt17_lists(tmp_path: Path, version: str) -> None:
    rows = make_msmt17(tmp_path / "msmt17", version)
    split = load_split(tmp_path)
    assert split.name == "msmt17" and split.meta["version"] == version
    assert split.root == (tmp_path / "msmt17" / version).resolve()
    assert_part(split.train, rows["train"] + rows["val"], seq=False)
    assert_part(split.query, rows["query"], seq=False)
    assert_part(split.gallery, rows["gallery"], seq=False)
    # list pid 0 becomes pid 1 (pid 0 means distractor); camera 15 -> camid 14
    assert sorted(set(split.train.pid)) == [1, 2]
    assert split.train.camid.max() == 14
    no_val = load_split(tmp_path, include_val=False)
    assert_part(no_val.train, rows["train"], seq=False)


def test_msmt17_bad_list_lines_are_listed(tmp_path: Path) -> None:
    make_msmt17(tmp_path, "MSMT17_V1")
    with open(tmp_path / "MSMT17_V1" / "list_query.txt", "a") as f:
        f.write("\n0004/broken.jpg 4\nonly_one_field\n")
    with pytest.raises(
        FileNameError, match=r"list_query.txt: 2 lines .*line 4: '0004/broken.jpg 4'"
    ):
        load_split(tmp_path)


def test_msmt17_missing_list_file(tmp_path: Path) -> None:
    make_msmt17(tmp_path, "MSMT17_V2")
    (tmp_path / "MSMT17_V2" / "list_gallery.txt").unlink()
    with pytest.raises(DatasetLayoutError, match=r"lacks \['list_gallery.txt'\]"):
        load_split(tmp_path)


# --- registry and errors -------------------------------------------------------------------------
def test_unknown_layout_name_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown dataset layout 'market'.*'market1501'"):
        load_split(tmp_path, layout="market")
    assert set(layout_names()) == {"market1501", "dukemtmc", "msmt17", "cuhk03np"}
    assert layout_names()[-1] == "market1501"  # the generic layout is tried last


def test_unknown_option(tmp_path: Path) -> None:
    make_market(tmp_path)
    with pytest.raises(TypeError, match=r"'variant'.*'market1501'"):
        load_split(tmp_path, layout="market1501", variant="labeled")
    with pytest.raises(TypeError, match=r"\['colour'\] apply to no dataset layout"):
        load_split(tmp_path, colour=1)


def test_folder_in_no_layout_says_what_each_layout_missed(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetLayoutError) as err:
        load_split(tmp_path)
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    for name in layout_names():
        assert f"\n  {name}: " in message
    assert "market1501: no bounding_box_train/ in ROOT, ROOT/Market-1501-v15.09.15" in message


def test_partial_layout_names_the_missing_folder(tmp_path: Path) -> None:
    make_market(tmp_path / "Market-1501-v15.09.15")
    (tmp_path / "Market-1501-v15.09.15" / "query").rename(tmp_path / "q")
    with pytest.raises(
        DatasetLayoutError, match=r"ROOT/Market-1501-v15.09.15 has .* but no query/"
    ):
        load_split(tmp_path)


def test_root_missing_or_a_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=r"no such folder"):
        load_split(tmp_path / "nope")
    archive = tmp_path / "Market-1501-v15.09.15.zip"
    archive.write_bytes(b"PK")
    with pytest.raises(DatasetLayoutError, match=r"is a file, not a folder; unpack"):
        load_split(archive)


def test_bad_file_names_are_collected(tmp_path: Path) -> None:
    make_market(tmp_path)
    for i in range(7):
        write_image(tmp_path / "query" / f"IMG_{i}.jpg")
    with pytest.raises(FileNameError) as err:
        load_split(tmp_path)
    message = str(err.value)
    assert str(tmp_path.resolve() / "query") in message
    assert "7 of 9 image names" in message and "and 2 more" in message
    assert "'IMG_0.jpg'" in message and "rename them or move them out" in message


def test_empty_image_folder(tmp_path: Path) -> None:
    make_market(tmp_path)
    for path in (tmp_path / MARKET_FOLDERS["query"]).iterdir():
        path.unlink()
    with pytest.raises(DatasetLayoutError, match=r"query: no images"):
        load_split(tmp_path)


def test_summary_runs_on_a_read_split(tmp_path: Path) -> None:
    make_market(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = load_split(tmp_path).summary()
    assert summary.loc["gallery", "junk"] == 1 and summary.loc["gallery", "distractors"] == 1


# --- files that would be dropped or doubled silently ----------------------------------------
def test_broken_symlink_is_an_error_naming_it(tmp_path: Path) -> None:
    make_market(tmp_path)
    (tmp_path / "query" / "0999_c1s1_000001_01.jpg").symlink_to(tmp_path / "gone.jpg")
    with pytest.raises(DatasetLayoutError, match=r"broken symbolic links.*0999_c1s1_000001_01"):
        load_split(tmp_path)  # before: skipped without a word


def test_same_image_as_jpg_and_png_is_an_error_naming_both(tmp_path: Path) -> None:
    make_market(tmp_path)
    first = sorted((tmp_path / "bounding_box_test").iterdir())[0]
    name = first.with_suffix(".png").name
    write_image(tmp_path / "bounding_box_test" / name)
    with pytest.raises(DatasetLayoutError, match=rf"stored twice.*{first.name} = {name}"):
        load_split(tmp_path)  # before: counted twice


def test_images_in_a_subfolder_are_named_in_a_warning(tmp_path: Path) -> None:
    rows = make_market(tmp_path)
    write_image(tmp_path / "bounding_box_train" / "extra" / "0001_c1s1_000001_01.jpg")
    with pytest.warns(UserWarning, match=r"images in subfolders are not read.*extra/0001_c1s1"):
        split = load_split(tmp_path)
    assert len(split.train) == len([r for r in rows["train"] if r.pid != -1])
