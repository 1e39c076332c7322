"""compute_distance against torch.cdist and the textbook formulas, for every chunk size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.evaluate.distance import compute_distance


def reference(qf: torch.Tensor, gf: torch.Tensor, metric: str) -> torch.Tensor:
    q, g = qf.double(), gf.double()
    if metric == "euclidean":
        return torch.cdist(q, g)
    if metric == "sqeuclidean":
        return ((q[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    cos = (q @ g.T) / (q.norm(dim=1)[:, None] * g.norm(dim=1)[None, :])
    return 1 - cos


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("chunk_size", [1, 3, 10, 64])
def test_chunked_equals_reference(metric, chunk_size):
    gen = torch.Generator().manual_seed(0)
    qf = torch.randn(10, 16, generator=gen)  # chunk 3 does not divide 10
    gf = torch.randn(23, 16, generator=gen) * 2
    got = compute_distance(qf, gf, metric=metric, chunk_size=chunk_size)
    assert got.shape == (10, 23) and got.dtype == torch.float32 and got.device.type == "cpu"
    torch.testing.assert_close(got.double(), reference(qf, gf, metric), rtol=1e-5, atol=1e-5)


def test_float64_inputs_are_computed_in_float64():
    rng = np.random.default_rng(1)
    qf, gf = rng.normal(size=(7, 5)), rng.normal(size=(9, 5))
    got = compute_distance(qf, gf, metric="sqeuclidean", chunk_size=4, as_numpy=True)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    want = ((qf[:, None] - gf[None]) ** 2).sum(-1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_identical_rows_are_clamped_at_zero():
    f = torch.nn.functional.normalize(torch.randn(6, 32), dim=1)
    for metric in ("euclidean", "sqeuclidean", "cosine"):
        d = compute_distance(f, f, metric=metric, chunk_size=4)
        assert (d >= 0).all()
        assert d.diagonal().abs().max() < (1e-3 if metric == "euclidean" else 1e-6)


def test_half_precision_inputs_and_device_argument():
    qf = torch.randn(4, 8).half()
    gf = torch.randn(5, 8).half()
    got = compute_distance(qf, gf, metric="cosine", device="cpu")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), reference(qf.float(), gf.float(), "cosine"))


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((torch.zeros(3, 4), torch.zeros(5, 6)), {}, "4 feature dimensions but gf has 6"),
        ((torch.zeros(3, 4), torch.zeros(5, 4)), {"metric": "l1"}, "metric='l1' is not known"),
        ((torch.zeros(3), torch.zeros(5, 3)), {}, "qf must be a non-empty"),
        ((torch.zeros(3, 4), torch.zeros(5, 4)), {"chunk_size": 0}, "chunk_size must be >= 1"),
    ],
)
def test_validation_errors(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compute_distance(*args, **kwargs)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_cuda_matches_cpu(metric):
    qf, gf = torch.randn(50, 16), torch.randn(70, 16)
    got = compute_distance(qf, gf, metric=metric, chunk_size=16, device="cuda")
    assert got.device.type == "cpu"
    torch.testing.assert_close(got, compute_distance(qf, gf, metric=metric), rtol=1e-4, atol=1e-4)
