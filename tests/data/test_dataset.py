"""ReIDDataset: fields present / absent, decoding, errors, collate, DataLoader."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from workbench.data.dataset import ImageDecodeError, ReIDDataset, collate
from workbench.data.split import Split
from workbench.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Compose,
    RandomErasing,
    ToTensor,
    build_transforms,
    worker_init_fn,
)

H, W = 16, 8


def write_image(path: Path, rgb: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    data.tofile(str(path))  # works for non-ASCII paths, unlike cv2.imwrite on some platforms
    return str(path)


def write_parts(path: Path, parts: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imencode(".png", parts)[1].tofile(str(path))
    return str(path)


@pytest.fixture
def table(tmp_path: Path) -> pd.DataFrame:
    """Four images: two with masks, one with keypoints; pid 1 has attributes, pid 2 not."""
    rng = np.random.default_rng(0)
    rows = []
    for i, (pid, cam) in enumerate([(1, 0), (1, 1), (2, 0), (2, 2)]):
        rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        path = write_image(
            tmp_path / "bounding_box_train" / f"{pid:04d}_c{cam + 1}s1_{i:06d}_01.png", rgb
        )
        rows.append({"path": path, "pid": pid, "camid": cam, "mask_path": None, "keypoints": None})
    parts = rng.integers(0, 5, (H, W), dtype=np.uint8)
    rows[0]["mask_path"] = write_parts(tmp_path / "masks" / "a.png", parts)
    rows[2]["mask_path"] = write_parts(tmp_path / "masks" / "b.png", parts)
    kp = np.zeros((17, 3), np.float32)
    kp[:, 0], kp[:, 1], kp[:, 2] = np.arange(17) % W + 0.5, np.arange(17) % H + 0.5, 2
    rows[1]["keypoints"] = kp
    return pd.DataFrame(rows)


@pytest.fixture
def attributes() -> pd.DataFrame:
    return pd.DataFrame({"gender": [1], "hair": [0], "age": [3]}, index=pd.Index([1], name="pid"))


def test_fields_present_only_where_known(table, attributes):
    ds = ReIDDataset(table, attributes=attributes, pid_to_label={1: 0, 2: 1})
    s0, s1, s2, s3 = (ds[i] for i in range(4))
    base = {"image", "pid", "camid", "path", "index", "label"}
    assert set(s0) == base | {"mask", "parts", "attributes"}
    assert set(s1) == base | {"keypoints", "attributes"}
    assert set(s2) == base | {"mask", "parts"}
    assert set(s3) == base
    assert (s2["pid"], s2["camid"], s2["index"], s2["label"]) == (2, 0, 2, 1)
    assert s2["path"] == table.path[2]
    assert s0["attributes"].dtype == torch.int64 and s0["attributes"].tolist() == [1, 0, 3]
    assert ds.attribute_names == ["gender", "hair", "age"] and ds.num_classes == 2


def test_pixels_rgb_parts_mask_and_keypoints_are_read_exactly(table):
    ds = ReIDDataset(table)  # default transform: ToTensor + Normalize(ImageNet), no resize
    raw = cv2.cvtColor(cv2.imread(table.path[0]), cv2.COLOR_BGR2RGB)  # H×W×3 RGB, PNG lossless
    expected = (raw / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    s0 = ds[0]
    np.testing.assert_allclose(s0["image"].numpy(), expected.transpose(2, 0, 1), atol=1e-5)
    parts = cv2.imread(table.mask_path[0], cv2.IMREAD_UNCHANGED)
    assert s0["parts"].dtype == torch.int64 and s0["parts"].numpy().tolist() == parts.tolist()
    assert s0["mask"].numpy().tolist() == (parts > 0).astype(np.uint8).tolist()
    np.testing.assert_array_equal(ds[1]["keypoints"].numpy(), table.keypoints[1])
    record = ds.load_record(0)  # untransformed numpy record
    np.testing.assert_array_equal(record["image"], raw)


def test_training_transform_applies_to_annotations(table):
    ds = ReIDDataset(table, transform=build_transforms(32, 16, seed=0))
    s = ds[0]
    assert s["image"].shape == (3, 32, 16) and s["mask"].shape == (32, 16)
    assert torch.equal(s["mask"], (s["parts"] > 0).to(torch.uint8))


def test_load_masks_false_and_no_optional_columns(table):
    assert "mask" not in ReIDDataset(table, load_masks=False)[0]
    bare = ReIDDataset(table[["path", "pid", "camid"]])
    assert set(bare[1]) == {"image", "pid", "camid", "path", "index"}


def test_non_ascii_path(tmp_path):
    rgb = np.full((H, W, 3), (200, 10, 30), np.uint8)
    path = write_image(tmp_path / "späte_Ärger_行人" / "0001_c1s1_000001_01.png", rgb)
    ds = ReIDDataset(pd.DataFrame({"path": [path], "pid": [1], "camid": [0]}), transform=ToTensor())
    assert ds[0]["image"][:, 0, 0].mul(255).round().tolist() == [200, 10, 30]  # RGB order


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xd8 definitely not a jpeg" * 10, "does not decode"),
        (b"", "empty"),
        (None, "cannot read"),
    ],
)
def test_unreadable_image_names_the_file_and_the_fix(tmp_path, content, message):
    path = tmp_path / "0001_c1s1_000001_01.jpg"
    if content is not None:
        path.write_bytes(content)
    ds = ReIDDataset(pd.DataFrame({"path": [str(path)], "pid": [1], "camid": [0]}))
    with pytest.raises(ImageDecodeError, match=message) as err:
        ds[0]
    assert str(path) in str(err.value) and "delete the file" in str(err.value)


def test_mask_of_wrong_size_is_reported(table, tmp_path):
    table.loc[0, "mask_path"] = write_parts(
        tmp_path / "masks" / "small.png", np.ones((4, 4), np.uint8)
    )
    with pytest.raises(ImageDecodeError, match=r"small.png.*regenerate the masks"):
        ReIDDataset(table)[0]


def test_label_mapping_must_cover_pids(table):
    with pytest.raises(ValueError, match=r"lacks pids \[2\]"):
        ReIDDataset(table, pid_to_label={1: 0})


def test_attribute_table_errors(table):
    dup = pd.DataFrame({"gender": [0, 1]}, index=[1, 1])
    with pytest.raises(ValueError, match="more than once"):
        ReIDDataset(table, attributes=dup)
    text = pd.DataFrame({"gender": ["female"]}, index=[1])
    with pytest.raises(ValueError, match="integer attribute columns"):
        ReIDDataset(table, attributes=text)


def test_transform_must_produce_a_tensor(table):
    ds = ReIDDataset(table, transform=Compose([]))
    with pytest.raises(TypeError, match="ToTensor"):
        ds[0]


def test_from_split_relabels_train_only(table):
    query = table.iloc[[3]].reset_index(drop=True)
    split = Split(train=table.assign(pid=table.pid * 10), query=query, gallery=table)
    train = ReIDDataset.from_split(split, "train")
    assert sorted({train[i]["label"] for i in range(4)}) == [0, 1] and train.num_classes == 2
    assert "label" not in ReIDDataset.from_split(split, "query")[0]
    with pytest.raises(ValueError, match="part must be"):
        ReIDDataset.from_split(split, "test")


def test_dataloader_with_collate(table, attributes):
    ds = ReIDDataset(
        table[["path", "pid", "camid"]], attributes=attributes, pid_to_label={1: 0, 2: 1}
    )
    batch = next(iter(DataLoader(ds, batch_size=2, num_workers=0, collate_fn=collate)))
    assert batch["image"].shape == (2, 3, H, W) and batch["image"].dtype == torch.float32
    assert batch["pid"].tolist() == [1, 1] and batch["pid"].dtype == torch.int64
    assert batch["label"].tolist() == [0, 0] and batch["index"].tolist() == [0, 1]
    assert batch["path"] == list(table.path[:2])
    assert batch["attributes"].shape == (2, 3)


def test_collate_fails_clearly_on_missing_field_and_shape_mismatch(table):
    ds = ReIDDataset(table)
    with pytest.raises(ValueError, match=r"field 'mask' is in 1 of 2 samples.*0002_c3.*load_masks"):
        collate([ds[0], ds[3]])
    small = {**ds[3], "image": torch.zeros(3, 4, 4)}
    with pytest.raises(ValueError, match=r"different shapes.*Resize"):
        collate([ds[3], small])
    batch = collate([ds[0], ds[2]])  # both have masks
    assert batch["mask"].shape == (2, H, W) and batch["parts"].dtype == torch.int64


@pytest.mark.parametrize("init_fn", [worker_init_fn, None])  # the dataset reseeds by itself too
def test_workers_get_different_augmentation_streams(tmp_path, init_fn):
    """Without per-worker reseeding both workers would hold copies of one generator."""
    path = write_image(tmp_path / "0001_c1s1_000001_01.png", np.full((H, W, 3), 128, np.uint8))
    table = pd.DataFrame({"path": [path] * 8, "pid": [1] * 8, "camid": [0] * 8})
    transform = Compose([ToTensor(), RandomErasing(p=1.0, fill=0.0)], seed=0)
    ds = ReIDDataset(table, transform=transform)

    def run() -> list[torch.Tensor]:
        torch.manual_seed(0)
        loader = DataLoader(
            ds, batch_size=1, num_workers=2, collate_fn=collate, worker_init_fn=init_fn
        )
        # worker 0 loads items 0, 2, ...; worker 1 loads 1, 3, ...
        return [b["image"][0] for b in loader]

    first, second = run(), run()
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))  # reproducible
    assert not torch.equal(first[0], first[1])  # the workers' first items differ


def test_unannotated_attribute_cells_become_minus_one():
    from workbench.data.dataset import _attribute_lookup

    table = pd.DataFrame(
        {"gender": [1, 0], "top": pd.array([pd.NA, 1], dtype="Int8")}, index=[3, 7]
    )
    lookup = _attribute_lookup(table)
    assert lookup[3].tolist() == [1, -1] and lookup[7].tolist() == [0, 1]
