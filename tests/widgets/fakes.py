"""Stand-ins with the interpreter interface of the attribute views (no trained AAM needed).

``FakeInterpreter`` declares the interpreter capability and has ``attribute_names`` and ``interpret(images).aams`` (B, M, h, w): attribute
k's map is the sigmoid of colour channel k of the input at a quarter of its resolution — a
hand-made, deterministic map that tests can recompute.
"""

from __future__ import annotations

import torch

from workbench.models import Capability


class FakeInterpreter(torch.nn.Module):
    capabilities = frozenset({Capability.ATTRIBUTE_INTERPRETER})
    attribute_names = ("backpack", "hat")

    def __init__(self, input_size: tuple[int, int] = (32, 16)) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))  # a parameter, so it has a device
        self.config = type("Config", (), {"input_size": input_size})()

    def interpret(self, images: torch.Tensor):
        aams = torch.stack([images[:, 0], images[:, 1]], 1)[:, :, ::4, ::4].sigmoid()
        return type("InterpreterOutput", (), {"aams": aams})()
