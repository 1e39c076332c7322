"""The input contract of a model, checked at every public entry point that takes images.

A workbench model takes ``(B, 3, H, W)`` float images, **RGB**, scaled to 0–1 and normalised
with the ImageNet mean / std (``data.transforms.Normalize``), at the size it was trained for.
:func:`input_contract` reads that from the model's config (``input_size``) and its card
(``input_size``; optional ``pixel_mean`` / ``pixel_std`` / ``channel_order`` of the *input*).

:func:`check_images` is what explain, explain_pair, feature extraction, evaluation and the apps
call on their images:

* a tensor of another shape, an empty batch, a numpy array or a list → refused, naming
  :func:`to_model_input`, the one converter of raw images;
* NaN / inf pixels → refused, with their count;
* another size than the contract → refused naming both sizes (``resize=True`` resizes);
* ``uint8`` tensors → converted by :func:`to_model_input` (the same numbers as the data
  pipeline); float64 / float16 → cast to the model's dtype;
* values far above the normalised range (above 10: 0–255 floats) → refused naming
  :func:`to_model_input`;
* cheap statistical checks warn (:class:`InputWarning`) on all-non-negative batches (0–1
  images that were never normalised) and on batches that fit the statistics the model's first
  BatchNorm keeps of its training images far worse than their red/blue swap (BGR images):
  two convolutions of at most 8 images, no card field needed (untrained models are skipped).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.data.transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "InputContract",
    "InputError",
    "InputWarning",
    "check_images",
    "check_input_size",
    "input_contract",
    "to_model_input",
]

#: a value no normalised image reaches (their range is about −2.1 … 2.6; random test inputs
#: ``torch.randn`` stay below 6) but every 0–255 image with anything brighter than black does
_PIXEL_LIMIT = 10.0
#: how many times worse than their red/blue swap images must fit the first layer to warn
_BGR_RATIO = 2.0
#: images of a batch the BGR check reads (two first-layer convolutions: ~5 % of a forward)
_BGR_IMAGES = 8


class InputError(ValueError):
    """Images that break a model's input contract (the message says how to fix them)."""


class InputWarning(UserWarning):
    """Images that are probably wrong (never normalised, BGR order) but are used as given."""


@dataclass(frozen=True)
class InputContract:
    """What a model takes.

    Attributes:
        input_size: (H, W), or ``None`` for a model that does not declare one (a wrapped network).
        pixel_mean, pixel_std: the normalisation applied to 0–1 pixels (ImageNet's by default).
        channel_order: ``"RGB"`` (every workbench model) or ``"BGR"``.
    """

    input_size: tuple[int, int] | None
    pixel_mean: tuple[float, float, float] = IMAGENET_MEAN
    pixel_std: tuple[float, float, float] = IMAGENET_STD
    channel_order: str = "RGB"

    def value_range(self) -> tuple[float, float]:
        """The lowest and highest value a normalised 0–1 pixel can take."""
        low = min((0 - m) / s for m, s in zip(self.pixel_mean, self.pixel_std, strict=True))
        high = max((1 - m) / s for m, s in zip(self.pixel_mean, self.pixel_std, strict=True))
        return low, high


def input_contract(model: nn.Module) -> InputContract:
    """The contract of ``model``: its config's ``input_size`` and its card's fields.

    A card whose ``input_size`` differs from the config's is an error of the card (the test
    ``tests/models/test_inputs.py`` checks every shipped one); the card wins, as it records what
    the weights were trained on.
    """
    card = getattr(model, "card", None) or {}
    config = getattr(model, "config", None)
    size = card.get("input_size") or getattr(config, "input_size", None)
    order = str(card.get("channel_order", "RGB")).upper()
    if order not in ("RGB", "BGR"):
        raise InputError(f"model card: channel_order must be 'RGB' or 'BGR', got {order!r}")
    return InputContract(
        input_size=None if size is None else (int(size[0]), int(size[1])),
        pixel_mean=tuple(card.get("pixel_mean") or IMAGENET_MEAN),  # type: ignore[arg-type]
        pixel_std=tuple(card.get("pixel_std") or IMAGENET_STD),  # type: ignore[arg-type]
        channel_order=order,
    )


def _model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _describe(images: Any) -> str:
    if isinstance(images, Tensor | np.ndarray):
        return f"a {type(images).__name__} of shape {tuple(images.shape)} ({images.dtype})"
    return f"a {type(images).__name__}"


def check_input_size(model: nn.Module, size: Sequence[int], where: str = "images") -> None:
    """Refuse ``size`` (H, W) if the model's contract names another one."""
    want = input_contract(model).input_size
    got = (int(size[0]), int(size[1]))
    if min(got) < 1:
        raise InputError(f"{where}: an image size must be positive, got {got[0]}×{got[1]}")
    if want is not None and got != want:
        raise InputError(
            f"{where}: {type(model).__name__} takes {want[0]}×{want[1]} images (its input "
            f"contract), got {got[0]}×{got[1]}; load them at {want[0]}×{want[1]}"
        )


def check_images(
    model: nn.Module, images: Any, *, resize: bool = False, where: str = "images"
) -> Tensor:
    """Check ``images`` against ``model``'s input contract; the images to use (see module doc).

    Args:
        model: a workbench model (its config / card give the contract).
        images: (B, 3, H, W) normalised RGB floats; uint8 tensors are converted.
        resize: resize images of another size to the contract's (bilinear) instead of refusing.
        where: the argument's name, for messages (``"query"``, ``"gallery"``).

    Returns:
        The images, float in the model's dtype, at the contract's size.
    """
    fix = "workbench.models.to_model_input(images, model)"
    if not isinstance(images, Tensor):
        raise InputError(
            f"{where} must be a (B, 3, H, W) tensor, got {_describe(images)}; convert pixels "
            f"(numpy HWC, uint8 or 0–255, a list of images) with {fix}"
        )
    if images.dim() != 4 or images.shape[1] != 3:
        hint = (
            f"add the batch dimension: {where}[None]"
            if images.dim() == 3 and images.shape[0] == 3
            else f"channels last? convert with {fix}"
            if images.dim() == 4 and images.shape[-1] == 3
            else "the model takes RGB images"
        )
        raise InputError(
            f"{where} must be a (B, 3, H, W) tensor, got {tuple(images.shape)}; {hint}"
        )
    if images.shape[0] == 0:
        raise InputError(f"{where} is an empty batch (0 images)")
    contract = input_contract(model)
    if images.dtype == torch.uint8:  # the data pipeline's numbers; the size is checked below
        images = to_model_input(images, dataclasses.replace(contract, input_size=None))
    elif not images.is_floating_point():
        raise InputError(f"{where} must be float (normalised) or uint8 pixels, got {images.dtype}")
    # one cheap pass (NaN and inf propagate into the sum); count only if it is not finite
    bad = None if bool(torch.isfinite(images.sum())) else ~torch.isfinite(images)
    if bad is not None and bool(bad.any()):
        n = int(bad.sum())
        raise InputError(
            f"{where} hold {n} NaN/inf value{'s' if n > 1 else ''} (first in image "
            f"{int(bad.flatten(1).any(1).nonzero()[0])}); an explanation of them would be NaN"
        )
    want = contract.input_size
    got = (int(images.shape[2]), int(images.shape[3]))
    if want is not None and got != want:
        if not resize:
            raise InputError(
                f"{where} are {got[0]}×{got[1]} but {type(model).__name__} takes "
                f"{want[0]}×{want[1]} (its input contract); resize them (resize=True, or "
                f"{fix} from pixels)"
            )
        images = F.interpolate(images.float(), size=want, mode="bilinear", align_corners=False)
    images = images.to(_model_dtype(model))
    _check_statistics(model, images, contract, where, fix)
    return images


def _check_statistics(
    model: nn.Module, images: Tensor, contract: InputContract, where: str, fix: str
) -> None:
    low, high = contract.value_range()
    bottom, top = (float(v) for v in torch.aminmax(images))
    if top > _PIXEL_LIMIT:
        raise InputError(
            f"{where} reach {top:.1f}, but normalised images stay within "
            f"[{low:.2f}, {high:.2f}]: these look like 0–255 pixels; convert them with {fix}"
        )
    if bottom >= 0 and images[0].numel() >= 64:
        warnings.warn(
            f"{where} have no negative value: 0–1 pixels that were never normalised? "
            f"Normalise them with {fix}",
            InputWarning,
            stacklevel=3,
        )
        return
    stem = _first_conv_and_norm(model)
    if stem is not None:
        mean = torch.tensor(contract.pixel_mean, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(contract.pixel_std, device=images.device).view(1, 3, 1, 1)
        few = images[:_BGR_IMAGES].float()
        flipped = ((few * std + mean).flip(1) - mean) / std  # red ↔ blue, in pixels
        given, swapped = (_stem_mismatch(*stem, x) for x in (few, flipped))
        if given > _BGR_RATIO * swapped:
            other = "RGB" if contract.channel_order == "BGR" else "BGR"
            warnings.warn(
                f"{where} fit the statistics the model's first layer learnt (its BatchNorm "
                f"running mean/var) {given / swapped:.1f}× worse than the same images with red "
                f"and blue swapped: {other} images (OpenCV reads BGR)? Convert them with "
                f"{fix.replace(')', ', bgr=True)')}",
                InputWarning,
                stacklevel=3,
            )


def _first_conv_and_norm(model: nn.Module) -> tuple[nn.Conv2d, nn.BatchNorm2d] | None:
    """The model's first 3-channel convolution and the BatchNorm after it, if trained."""
    conv = None
    for m in model.modules():
        if conv is None and isinstance(m, nn.Conv2d) and m.in_channels == 3:
            conv = m
        elif conv is not None and isinstance(m, nn.BatchNorm2d):
            trained = m.running_var is not None and int(m.num_batches_tracked or 0) > 0
            return (conv, m) if trained and m.num_features == conv.out_channels else None
    return None


@torch.no_grad()
def _stem_mismatch(conv: nn.Conv2d, norm: nn.BatchNorm2d, images: Tensor) -> float:
    """Mean Gaussian KL (×2) between the first layer's responses to ``images`` and the running
    statistics its BatchNorm keeps of the training images.

    Swapping red and blue raises it for images of the training kind. Measured on six shipped
    models (BoT 256×128 and 128×64, RGA-SC, IANet, SA, DAAF) over synthetic galleries, BGR
    batches scored more than twice their swap in 11–20 % of single images, 9–22 % of batches
    of 2, 25–31 % of 4 and 12–47 % of 8, and 1 of 3,342 RGB batches did (the synthetic cameras'
    colour casts make the two orders hard to tell apart): a warning when it fires, no guarantee
    when it does not.
    """
    x = images.to(conv.weight.device, conv.weight.dtype)
    y = conv(x).float()  # (b, C, h, w)
    mean, var = y.mean((0, 2, 3)), y.var((0, 2, 3)).clamp_min(1e-8)
    mu, sigma2 = norm.running_mean.float(), norm.running_var.float().clamp_min(1e-8)
    ratio = var / sigma2
    return float(((mean - mu) ** 2 / sigma2 + ratio - 1 - torch.log(ratio)).mean())


def to_model_input(
    images: Any,
    model: nn.Module | InputContract | None = None,
    *,
    bgr: bool = False,
) -> Tensor:
    """Pixels as a user has them → the (B, 3, H, W) normalised float tensor a model takes.

    Accepts a ``(H, W, 3)`` or ``(B, H, W, 3)`` numpy array (what image readers return), a list
    of them, or a ``(3, H, W)`` / ``(B, 3, H, W)`` tensor; ``uint8`` or floats in 0–255 (any
    value above 1.5) or 0–1. ``bgr=True`` for OpenCV's channel order. With a model (or its
    :class:`InputContract`) the images are resized (bilinear) to its input size and normalised
    with its statistics; without, they keep their size and get ImageNet's.

    Example:
        >>> x = to_model_input(cv2.imread(path), model, bgr=True)  # doctest: +SKIP
    """
    contract = (
        model
        if isinstance(model, InputContract)
        else input_contract(model)
        if model is not None
        else InputContract(None)
    )
    if isinstance(images, list | tuple):
        if not images:
            raise InputError("to_model_input: an empty list of images")
        return torch.cat([to_model_input(im, contract, bgr=bgr) for im in images])
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4) or images.shape[-1] not in (3, 4):
            raise InputError(
                f"to_model_input: numpy images must be (H, W, 3) or (B, H, W, 3), got "
                f"{images.shape}"
            )
        t = torch.from_numpy(np.ascontiguousarray(images[..., :3]))
        t = t.permute(2, 0, 1) if t.dim() == 3 else t.permute(0, 3, 1, 2)
    elif isinstance(images, Tensor):
        t = images
    else:
        raise InputError(
            f"to_model_input: expected numpy arrays or tensors, got {_describe(images)}"
        )
    if t.dim() == 3:
        t = t[None]
    if t.dim() != 4 or t.shape[1] != 3:
        raise InputError(f"to_model_input: expected 3 channels, got shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        x = t.float() / 255
    elif t.is_floating_point():
        x = t.float()
        if float(x.min()) < 0:
            raise InputError(
                "to_model_input: the images have negative values, so they are already "
                "normalised; pass them to the model as they are"
            )
        if float(x.max()) > 1.5:
            x = x / 255
    else:
        raise InputError(f"to_model_input: unsupported dtype {t.dtype}")
    if bgr != (contract.channel_order == "BGR"):
        x = x.flip(1)
    if contract.input_size is not None and tuple(x.shape[2:]) != contract.input_size:
        x = F.interpolate(x, size=contract.input_size, mode="bilinear", align_corners=False)
    mean = torch.tensor(contract.pixel_mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(contract.pixel_std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
