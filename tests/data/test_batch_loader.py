"""BatchImageLoader: same batches as the Dataset + test transforms, faster."""

from __future__ import annotations

import pytest
import torch

from workbench.data import ReIDDataset, build_transforms, collate, load_split
from workbench.data.batch_loader import BatchImageLoader, reduce_factor


def reference_batches(table, h, w, bs):
    ds = ReIDDataset(table, build_transforms(h, w, train=False), load_masks=False)
    items = [ds[i] for i in range(len(ds))]
    return [collate(items[i : i + bs]) for i in range(0, len(items), bs)]


@pytest.mark.parametrize("threads", [1, 3])
def test_full_decode_is_bit_identical_to_the_dataset_pipeline(tiny_synth, threads):
    table = load_split(tiny_synth).gallery
    loader = BatchImageLoader(table, 96, 48, batch_size=7, threads=threads, reduced_decode=False)
    batches = list(loader)
    ref = reference_batches(table, 96, 48, 7)
    assert len(batches) == len(loader) == len(ref)
    for got, want in zip(batches, ref, strict=True):
        torch.testing.assert_close(got["image"], want["image"], rtol=0, atol=1e-6)
        assert got["path"] == want["path"]
        assert got["pid"].tolist() == want["pid"].tolist()
        assert got["camid"].tolist() == want["camid"].tolist()


def test_reduced_decode_is_close_to_full_decode(tiny_synth):
    table = load_split(tiny_synth).query  # stored 128x64 -> decoded at 64x32 directly
    fast = torch.cat([b["image"] for b in BatchImageLoader(table, 64, 32, 16)])
    full = torch.cat(
        [b["image"] for b in BatchImageLoader(table, 64, 32, 16, reduced_decode=False)]
    )
    diff = (fast - full).abs() * 255 * 0.226  # back to grey levels (std ≈ 0.226)
    assert diff.mean() < 3.0 and fast.shape == full.shape


def test_reduce_factor():
    assert reduce_factor((256, 128), (128, 64)) == 2
    assert reduce_factor((256, 128), (64, 32)) == 4
    assert reduce_factor((256, 128), (256, 128)) == 1
    assert reduce_factor((256, 128), (100, 70)) == 1  # width would fall below the target
    assert reduce_factor((1024, 512), (64, 32)) == 8


def test_bad_arguments_and_bad_files(tiny_synth, tmp_path):
    table = load_split(tiny_synth).query.iloc[:3].copy()
    with pytest.raises(ValueError, match="batch_size"):
        BatchImageLoader(table, 64, 32, batch_size=0)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    table.iloc[1, table.columns.get_loc("path")] = str(bad)
    from workbench.data import ImageDecodeError

    with pytest.raises(ImageDecodeError, match=r"broken\.jpg"):
        list(BatchImageLoader(table, 64, 32, batch_size=2, reduced_decode=False))
    assert torch.isfinite(next(iter(BatchImageLoader(table.iloc[:1], 64, 32)))["image"]).all()
