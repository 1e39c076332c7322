"""Shared fixtures: a tiny synthetic dataset rendered once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 identities at 128×64 (6 train, 6 test), seed 1: enough for P×K = 4×4 batches."""
    from workbench.data.synth import generate

    root = tmp_path_factory.mktemp("synth") / "tiny"
    generate(root, ids=12, seed=1, height=128, width=64, workers=1, progress=False)
    return root
