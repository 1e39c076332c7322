"""Device selection shared by training, evaluation, explanations and widgets."""

from __future__ import annotations

import torch


class DeviceUnavailableError(RuntimeError):
    """A device that this machine does not have (CUDA requested without CUDA)."""


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` → ``cuda`` when available, else ``cpu``; anything else is checked and returned.

    Asking for CUDA on a machine without it fails with a message saying so, rather than deep in
    the first ``.to(device)``.
    """
    if spec is None or str(spec) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError) as e:  # torch: "Expected one of cpu, cuda, ... device type"
        raise ValueError(
            f"device {spec!r} is not a device; use auto, cpu, cuda, cuda:N or mps"
        ) from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device {spec!r} requested but CUDA is not available; use 'cpu' or 'auto'"
        )
    return device
