"""Tiny models for the explainer tests (imported by the test files)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from workbench.models import BoTConfig, LayerInfo, build_model


def tiny_bot(seed: int = 0, **overrides) -> nn.Module:
    """A random ResNet-18 width-16 BoT with non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = build_model("bot", BoTConfig.tiny(**overrides))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


class HandModel(nn.Module):
    """A hand-weighted two-layer model: ``A = relu(conv1x1(x))`` (C=2), embedding ``W·GAP(A)``.

    Small enough that Grad-CAM maps can be written down in the test.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 2, 1, bias=False)
        self.body.weight.data = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).view(2, 3, 1, 1)
        self.act = nn.ReLU()
        self.head = nn.Linear(2, 2, bias=False)
        self.head.weight.data = torch.tensor([[2.0, 0.0], [1.0, -1.0]])
        self.layer_info = [LayerInfo("features", 2, 1, "act")]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.act(self.body(x)).mean((2, 3)))
