"""The input contract: every shipped card agrees with its config, and check_images / to_model_input
refuse, convert or warn as documented (each case compared with the pipeline's own numbers)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from workbench.models import (
    BoT,
    BoTConfig,
    InputError,
    InputWarning,
    check_images,
    eval_mode,
    input_contract,
    to_model_input,
)

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


@pytest.mark.parametrize("card", sorted(WEIGHTS.glob("*.json")), ids=lambda p: p.stem)
def test_every_shipped_card_agrees_with_its_config(card: Path) -> None:
    c = json.loads(card.read_text())
    assert list(c["model_config"]["input_size"]) == list(c["input_size"]), card.name


@pytest.fixture(scope="module")
def model() -> BoT:
    m = BoT(BoTConfig.tiny(width=8))
    m.card = {"input_size": [64, 32]}
    with torch.no_grad():  # "train" its BatchNorm statistics on RGB images of one kind
        for seed in range(20):
            m.train()(_by_hand(_pixels(seed)))
    return m.eval()


def _pixels(seed: int = 0) -> torch.Tensor:
    """(4, 3, 64, 32) uint8 RGB: a warm (skin-like) upper half over dark noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 120, (4, 3, 64, 32), generator=g, dtype=torch.uint8)
    x[:, 0, :32], x[:, 1, :32], x[:, 2, :32] = 220, 150, 60
    return x


def _by_hand(pixels: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (pixels.float() / 255 - mean) / std


def test_contract_reads_card_and_config(model: BoT) -> None:
    c = input_contract(model)
    assert c.input_size == (64, 32) and c.channel_order == "RGB"
    assert c.pixel_mean == IMAGENET_MEAN
    bare = BoT(BoTConfig.tiny(width=8, input_size=(48, 24)))
    assert input_contract(bare).input_size == (48, 24)  # no card: the config's


def test_to_model_input_matches_the_pipeline(model: BoT) -> None:
    pixels = _pixels()
    want = _by_hand(pixels)
    hwc = pixels.permute(0, 2, 3, 1).numpy()
    assert torch.allclose(to_model_input(pixels, model), want, atol=1e-6)
    assert torch.allclose(to_model_input(hwc, model), want, atol=1e-6)
    assert torch.allclose(to_model_input(list(hwc), model), want, atol=1e-6)
    assert torch.allclose(to_model_input(hwc.astype(np.float32), model), want, atol=1e-5)  # 0–255
    assert torch.allclose(to_model_input(hwc / 255.0, model), want, atol=1e-5)  # 0–1
    assert torch.allclose(to_model_input(hwc[..., ::-1], model, bgr=True), want, atol=1e-6)
    big = np.repeat(np.repeat(hwc[0], 2, 0), 2, 1)  # 128×64: resized to the contract
    assert to_model_input(big, model).shape == (1, 3, 64, 32)
    with pytest.raises(InputError, match="already normalised"):
        to_model_input(want, model)


def test_check_images_converts_uint8_and_float64(model: BoT) -> None:
    pixels = _pixels()
    assert torch.equal(check_images(model, pixels), to_model_input(pixels, model))
    x = _by_hand(pixels)
    out = check_images(model, x.double())
    assert out.dtype == torch.float32 and torch.allclose(out, x)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda x: x[:, :, ::2], "takes 64×32"),  # wrong size names both sizes
        (lambda x: x * 255 + 120, "0–255 pixels"),
        (lambda x: x.index_put((torch.tensor(0),) * 4, torch.tensor(float("nan"))), "NaN/inf"),
        (lambda x: x.index_put((torch.tensor(1),) * 4, torch.tensor(float("inf"))), "NaN/inf"),
        (lambda x: x[0], r"\[None\]"),
        (lambda x: x.permute(0, 2, 3, 1), "channels last"),
        (lambda x: x[:0], "empty batch"),
        (lambda x: x[:, :1], "RGB"),
        (lambda x: x.numpy(), "to_model_input"),
        (lambda x: list(x), "to_model_input"),
        (lambda x: x.long(), "float"),
    ],
)
def test_check_images_refuses(model: BoT, make, match: str) -> None:
    with pytest.raises(InputError, match=match):
        check_images(model, make(_by_hand(_pixels())))


def test_resize_on_request(model: BoT) -> None:
    x = _by_hand(_pixels())
    big = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear")
    out = check_images(model, big, resize=True)
    assert out.shape == x.shape


def test_statistical_warnings(model: BoT) -> None:
    pixels = _pixels()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right input: no warning at all
        check_images(model, _by_hand(pixels))
    with pytest.warns(InputWarning, match="never normalised"):
        check_images(model, pixels.float() / 255)
    with pytest.warns(InputWarning, match="BGR"):  # the first BatchNorm knows RGB
        check_images(model, _by_hand(pixels.flip(1)))
    untrained = BoT(BoTConfig.tiny(width=8)).eval()  # running stats at their init: no check
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_images(untrained, _by_hand(pixels.flip(1)))


def test_eval_mode_restores_every_module() -> None:
    m = BoT(BoTConfig.tiny(width=8)).train()
    m.backbone.eval()  # a frozen part stays frozen
    with eval_mode(m):
        assert not any(x.training for x in m.modules())
    assert m.training and not m.backbone.training
