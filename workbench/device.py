"""Device selection shared by training, evaluation, explanations and widgets."""

from __future__ import annotations

import torch


class DeviceUnavailableError(RuntimeError):
    """A device that this machine does not have (CUDA requested without CUDA)."""


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` → ``cuda`` when available, else ``cpu``; anything else is checked and returned.

    The one resolver of the workbench: every function and app that takes a ``device`` calls it,
    so ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and ``torch.device`` work everywhere.

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
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:
            raise DeviceUnavailableError(
                f"device {spec!r} requested but this machine has {count} CUDA device"
                f"{'s' if count != 1 else ''} (cuda:0 .. cuda:{count - 1})"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError(f"device {spec!r} requested but MPS is not available")
    return device
