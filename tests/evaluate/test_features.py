"""extract_features with hand-weighted models whose embeddings are known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from workbench.evaluate.features import Features, extract_features

H, W = 3, 4


class ChannelMean(nn.Module):
    """Embedding = per-channel mean of the image: (B, 3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class ColumnWeighted(nn.Module):
    """Embedding = Σ_{h,w} x[c, h, w] · w  (depends on left/right, so flipping changes it)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("w", torch.arange(W, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).sum(dim=(2, 3))


class Samples(Dataset):
    def __init__(self, n: int = 7) -> None:
        gen = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 5, (n, 3, H, W), generator=gen).float()  # exact sums

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "pid": 10 + i, "camid": i % 3, "path": f"img_{i}.jpg"}


def test_channel_mean_embeddings_and_labels_through_a_dataloader():
    data = Samples()
    model = ChannelMean().train()
    out = extract_features(model, DataLoader(data, batch_size=3), device="cpu", progress=False)
    assert isinstance(out, Features) and len(out) == 7
    torch.testing.assert_close(out.feats, data.images.mean(dim=(2, 3)), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(out.pids, np.arange(10, 17))
    np.testing.assert_array_equal(out.camids, np.arange(7) % 3)
    assert out.paths == [f"img_{i}.jpg" for i in range(7)]
    assert out.feats.dtype == torch.float32 and out.feats.device.type == "cpu"
    assert model.training  # mode restored
    out.feats.mul_(2)  # a normal tensor, not an inference tensor


def test_flip_averages_image_and_mirror_exactly():
    data = Samples()
    images = data.images
    plain = (images * torch.arange(W)).sum(dim=(2, 3))  # Σ x·w
    mirrored = (images * torch.arange(W).flip(0)).sum(dim=(2, 3))  # flip(x) weighted = Σ x·(W−1−w)
    loader = DataLoader(data, batch_size=4)
    out = extract_features(ColumnWeighted(), loader, device="cpu", progress=False)
    assert torch.equal(out.feats, plain)
    flipped = extract_features(ColumnWeighted(), loader, device="cpu", flip=True, progress=False)
    assert torch.equal(flipped.feats, (plain + mirrored) / 2)
    assert torch.equal(flipped.feats, images.sum(dim=(2, 3)) * (W - 1) / 2)
    assert not torch.equal(flipped.feats, plain)


def test_normalize_and_list_batches():
    gen = torch.Generator().manual_seed(1)
    batches = [
        {"image": torch.rand(2, 3, H, W, generator=gen), "pid": [1, 2], "camid": [0, 1],
         "path": ["a", "b"]},
        {"image": torch.rand(1, 3, H, W, generator=gen), "pid": torch.tensor([3]),
         "camid": torch.tensor([2]), "path": ["c"]},
    ]  # fmt: skip
    out = extract_features(ChannelMean(), batches, device="auto", normalize=True, progress=False)
    want = torch.cat([b["image"].mean(dim=(2, 3)) for b in batches])
    torch.testing.assert_close(out.feats, want / want.norm(dim=1, keepdim=True))
    np.testing.assert_array_equal(out.pids, [1, 2, 3])
    assert out.paths == ["a", "b", "c"]


class TrainDict(nn.Module):
    def forward(self, x: torch.Tensor) -> dict:
        return {"logits": x.mean(dim=(2, 3))}


def test_clear_errors():
    batch = {"image": torch.zeros(2, 3, H, W), "pid": [1, 2], "camid": [0, 0], "path": ["a", "b"]}
    with pytest.raises(TypeError, match="must return the \\(B, D\\) embedding"):
        extract_features(TrainDict(), [batch], device="cpu", progress=False)
    with pytest.raises(KeyError, match="lacks \\['camid'\\]"):
        bad = {k: v for k, v in batch.items() if k != "camid"}
        extract_features(ChannelMean(), [bad], device="cpu", progress=False)
    with pytest.raises(ValueError, match="no batches"):
        extract_features(ChannelMean(), [], device="cpu", progress=False)
    with pytest.raises(ValueError, match="not row-aligned"):
        Features(torch.zeros(2, 3), np.zeros(2), np.zeros(1), ["a", "b"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    loader = DataLoader(Samples(), batch_size=3, pin_memory=True)
    cpu = extract_features(ColumnWeighted(), loader, device="cpu", flip=True, progress=False)
    gpu = extract_features(ColumnWeighted(), loader, device="cuda", flip=True, progress=False)
    assert gpu.feats.device.type == "cpu"
    torch.testing.assert_close(gpu.feats, cpu.feats)
