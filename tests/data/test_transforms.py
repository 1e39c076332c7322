"""Transforms: keypoints and masks follow the pixels; erasing, normalisation, seeding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from workbench.data.annotations import COCO_KEYPOINTS, flip_permutation
from workbench.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Compose,
    Normalize,
    Pad,
    Random2DTranslation,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    Resize,
    ToTensor,
    build_transforms,
    denormalize,
    seed_transforms,
)

H, W = 20, 12  # a small portrait image
LEFT_WRIST, RIGHT_WRIST = COCO_KEYPOINTS.index("left_wrist"), COCO_KEYPOINTS.index("right_wrist")


def coordinate_image(h: int = H, w: int = W) -> np.ndarray:
    """R = row, G = column, B = 200 (marks real pixels; padding is 0)."""
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = np.arange(h)[:, None]
    image[..., 1] = np.arange(w)[None, :]
    image[..., 2] = 200
    return image


def random_keypoints(rng: np.random.Generator, h: int = H, w: int = W) -> np.ndarray:
    kp = np.zeros((17, 3), np.float32)
    kp[:, 0] = rng.uniform(0, w, 17)
    kp[:, 1] = rng.uniform(0, h, 17)
    kp[:, 2] = 2
    return kp


def pixel_under(image: np.ndarray, x: float, y: float) -> np.ndarray:
    return image[int(np.floor(y)), int(np.floor(x))]


def test_flip_maps_keypoints_onto_their_mirrored_pixel_and_swaps_left_right():
    rng = np.random.default_rng(0)
    kp = random_keypoints(rng)
    out = RandomHorizontalFlip(p=1.0)({"image": coordinate_image(), "keypoints": kp})
    perm = flip_permutation()
    for j in range(17):
        x, y, v = out["keypoints"][j]
        assert v == 2
        row, col, _ = pixel_under(out["image"], x, y)
        src = kp[perm[j]]  # the new left wrist is the old right wrist, mirrored
        assert (row, col) == (int(src[1]), int(src[0]))
    # hand-worked: left_wrist lands where the mirrored right wrist was (x -> W - x)
    np.testing.assert_allclose(
        out["keypoints"][LEFT_WRIST, :2], [W - kp[RIGHT_WRIST, 0], kp[RIGHT_WRIST, 1]]
    )
    np.testing.assert_allclose(
        out["keypoints"][RIGHT_WRIST, :2], [W - kp[LEFT_WRIST, 0], kp[LEFT_WRIST, 1]]
    )


def test_flip_pixel_centre_maps_to_mirrored_pixel_centre():
    kp = np.zeros((17, 3), np.float32)
    kp[0] = (0.5, 3.5, 2)  # centre of pixel column 0
    out = RandomHorizontalFlip(p=1.0)({"image": coordinate_image(), "keypoints": kp})
    np.testing.assert_allclose(out["keypoints"][0], (W - 0.5, 3.5, 2))  # centre of column W-1


def test_single_bright_pixel_resize_by_three_keeps_keypoint_on_it():
    image = np.zeros((6, 4, 3), np.uint8)
    image[4, 1] = 255
    kp = np.zeros((17, 3), np.float32)
    kp[0] = (1.5, 4.5, 2)  # centre of the bright pixel
    out = Resize(18, 12)({"image": image, "keypoints": kp})  # bilinear, ×3
    gray = out["image"][..., 0]
    row, col = np.unravel_index(np.argmax(gray), gray.shape)
    assert gray[row, col] == 255 and (gray == 255).sum() == 1
    x, y, v = out["keypoints"][0]
    assert (int(y), int(x), v) == (row, col, 2)


@pytest.mark.parametrize("size", [(40, 24), (7, 5), (33, 17)])
def test_resize_keypoint_at_intensity_centroid_of_bright_block(size):
    image = np.zeros((H, W, 3), np.uint8)
    image[8:12, 4:8] = 255  # 4×4 block centred at (x, y) = (6, 10)
    kp = np.zeros((17, 3), np.float32)
    kp[0] = (6.0, 10.0, 2)
    out = Resize(*size, interpolation=cv2.INTER_AREA)({"image": image, "keypoints": kp})
    g = out["image"][..., 0].astype(np.float64)
    ys, xs = np.mgrid[0 : g.shape[0], 0 : g.shape[1]] + 0.5  # pixel centres
    centroid = ((g * xs).sum() / g.sum(), (g * ys).sum() / g.sum())
    sx, sy = size[1] / W, size[0] / H
    np.testing.assert_allclose(out["keypoints"][0, :2], centroid, atol=0.5 * max(sx, sy, 1))


def test_resize_mask_matches_bilinear_image_for_integer_downscale():
    # ×1/3: bilinear samples exactly source pixel 3j+1, as INTER_NEAREST_EXACT must for the mask
    mask = (np.random.default_rng(1).random((30, 21)) > 0.5).astype(np.uint8)
    record = {"image": np.repeat(mask[..., None] * 255, 3, axis=2), "mask": mask, "parts": mask * 3}
    out = Resize(10, 7)(record)
    np.testing.assert_array_equal(out["image"][..., 0], out["mask"] * 255)
    np.testing.assert_array_equal(out["parts"], out["mask"] * 3)


@pytest.mark.parametrize("seed", range(25))
def test_bot_geometry_moves_keypoints_and_masks_with_pixels(seed):
    rng = np.random.default_rng(100 + seed)
    kp = random_keypoints(rng)
    mask = (rng.random((H, W)) > 0.5).astype(np.uint8)
    image = coordinate_image()
    image[..., 2] = 100 + 100 * mask  # B encodes the mask (and > 0 on real pixels)
    record = {"image": image, "mask": mask, "parts": mask * 2, "keypoints": kp}
    geometry = Compose(
        [
            Resize(2 * H, 2 * W, interpolation=cv2.INTER_NEAREST_EXACT),
            RandomHorizontalFlip(0.5),
            Pad(6),
            RandomCrop(2 * H, 2 * W),
        ],
        seed=seed,
    )
    out = geometry(record)
    img = out["image"]
    np.testing.assert_array_equal(out["mask"], (img[..., 2] == 200).astype(np.uint8))
    np.testing.assert_array_equal(out["parts"], out["mask"] * 2)
    row = int(np.argwhere(img[..., 2] > 0)[0, 0])
    cols = img[row, img[row, :, 2] > 0, 1].astype(int)  # source columns along a real row
    flipped = cols[0] > cols[-1]
    perm = flip_permutation() if flipped else np.arange(17)
    for j in range(17):
        x, y, v = out["keypoints"][j]
        if v == 0:
            assert x == 0 and y == 0
            continue
        pixel = pixel_under(img, x, y)
        assert pixel[2] > 0, "a visible keypoint sits on padding"
        src = kp[perm[j]]
        assert (pixel[0], pixel[1]) == (int(src[1]), int(src[0]))


def test_random_crop_hides_points_that_leave_and_zeroes_them():
    kp = np.zeros((17, 3), np.float32)
    kp[0] = (0.2, 5.0, 2)  # leaves if left = 1
    kp[1] = (W - 0.5, 5.0, 1)  # leaves if the last column is cut
    kp[2] = (5.0, 0.7, 2)  # leaves if top = 1
    kp[3] = (5.0, 6.0, 0)  # not labelled: stays 0 and is zeroed
    seen = set()
    for seed in range(40):
        out = RandomCrop(H - 1, W - 1, seed=seed)({"image": coordinate_image(), "keypoints": kp})
        top, left = int(out["image"][0, 0, 0]), int(out["image"][0, 0, 1])
        seen.add((top, left))
        expected = kp.copy()
        expected[:, 0] -= left
        expected[:, 1] -= top
        inside = (
            (expected[:, 0] >= 0)
            & (expected[:, 0] < W - 1)
            & (expected[:, 1] >= 0)
            & (expected[:, 1] < H - 1)
        )
        expected[~inside | (kp[:, 2] == 0)] = 0
        np.testing.assert_allclose(out["keypoints"], expected, atol=1e-5)
    assert seen == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_pad_shifts_keypoints_and_fills():
    kp = np.zeros((17, 3), np.float32)
    kp[5] = (3.5, 4.5, 2)
    out = Pad((1, 2, 3, 4), fill=(7, 8, 9))({"image": coordinate_image(), "keypoints": kp})
    assert out["image"].shape == (H + 6, W + 4, 3)
    np.testing.assert_array_equal(out["image"][0, 0], (7, 8, 9))
    np.testing.assert_allclose(out["keypoints"][5], (4.5, 6.5, 2))
    assert tuple(pixel_under(out["image"], 4.5, 6.5)[:2]) == (4, 3)


def test_random_crop_too_small_image_says_what_to_do():
    with pytest.raises(ValueError, match="Resize/Pad"):
        RandomCrop(30, 12)({"image": coordinate_image()})


@pytest.mark.parametrize("seed", range(8))
def test_random_2d_translation_keeps_keypoints_within_a_pixel(seed):
    kp = random_keypoints(np.random.default_rng(seed))
    t = Random2DTranslation(2 * H, 2 * W, p=1.0, interpolation=cv2.INTER_NEAREST_EXACT, seed=seed)
    out = t({"image": coordinate_image(), "keypoints": kp})
    assert out["image"].shape == (2 * H, 2 * W, 3)
    for j in np.flatnonzero(out["keypoints"][:, 2] > 0):
        row, col, _ = pixel_under(out["image"], *out["keypoints"][j, :2])
        assert abs(int(row) - int(kp[j, 1])) <= 1 and abs(int(col) - int(kp[j, 0])) <= 1


def erased_box(image: torch.Tensor, value: float) -> tuple[int, int, int, int] | None:
    hit = (image == value).all(dim=0).numpy()
    if not hit.any():
        return None
    rows, cols = np.flatnonzero(hit.any(1)), np.flatnonzero(hit.any(0))
    assert hit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all(), "erased region not a box"
    return rows[0], cols[0], len(rows), len(cols)


def test_random_erasing_box_area_aspect_and_fill_in_bounds():
    eraser = RandomErasing(p=1.0, fill=5.0, seed=0)
    h, w = 256, 128
    record = {"image": torch.zeros(3, h, w), "mask": torch.ones(h, w, dtype=torch.uint8)}
    for _ in range(300):
        out = eraser(record)
        box = erased_box(out["image"], 5.0)
        assert box is not None
        _, _, eh, ew = box
        # h = round(sqrt(S r)), w = round(sqrt(S / r)) with S/A in [0.02, 0.4], r in [0.3, 1/0.3]
        assert (eh - 0.5) * (ew - 0.5) <= 0.4 * h * w and (eh + 0.5) * (ew + 0.5) >= 0.02 * h * w
        assert (eh + 0.5) / (ew - 0.5) >= 0.3 and (eh - 0.5) / (ew + 0.5) <= 1 / 0.3
        assert out["image"].eq(5.0).sum() == 3 * eh * ew  # nothing else touched
        assert out["mask"] is record["mask"]
    assert record["image"].abs().sum() == 0  # input not modified


def test_random_erasing_fills_mean_constants_in_normalised_space():
    out = RandomErasing(p=1.0, seed=3)({"image": torch.full((3, 64, 32), -9.0)})
    erased = out["image"] != -9.0
    assert erased.any()
    for c, m in enumerate(IMAGENET_MEAN):
        assert torch.all(out["image"][c][erased[c]] == torch.tensor(m))
    zero = RandomErasing(p=1.0, fill=0, seed=3)({"image": torch.full((3, 64, 32), -9.0)})
    assert torch.equal(zero["image"] == 0, erased)  # same seed, same box, fill 0 (RGA-SC)


def test_random_erasing_probability():
    eraser = RandomErasing(p=0.3, fill=1.0, seed=0)
    hits = sum(
        erased_box(eraser({"image": torch.zeros(3, 64, 32)})["image"], 1.0) is not None
        for _ in range(1000)
    )
    assert 250 < hits < 350
    never = RandomErasing(p=0.0, seed=0)
    assert all(never({"image": torch.zeros(3, 8, 8)})["image"].abs().sum() == 0 for _ in range(50))


def test_to_tensor_normalize_match_formula_and_denormalize_inverts():
    image = np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    parts = np.random.default_rng(3).integers(0, 8, (H, W), dtype=np.uint8)
    kp = random_keypoints(np.random.default_rng(4))
    record = {"image": image, "parts": parts, "mask": (parts > 0).astype(np.uint8), "keypoints": kp}
    out = Normalize()(ToTensor()(record))
    expected = (image / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)  # H×W×3
    np.testing.assert_allclose(out["image"].numpy(), expected.transpose(2, 0, 1), atol=1e-5)
    assert out["image"].dtype == torch.float32 and out["image"].shape == (3, H, W)
    assert out["parts"].dtype == torch.int64 and torch.equal(
        out["parts"], torch.from_numpy(parts).long()
    )
    assert out["mask"].dtype == torch.uint8
    assert out["keypoints"].dtype == torch.float32 and out["keypoints"].shape == (17, 3)
    np.testing.assert_array_equal(denormalize(out["image"]), image)


def test_build_transforms_test_pipeline_is_resize_and_normalise():
    image = np.random.default_rng(5).integers(0, 256, (64, 32, 3), dtype=np.uint8)
    out = build_transforms(128, 64, train=False)({"image": image})
    expected = cv2.resize(image, (64, 128), interpolation=cv2.INTER_LINEAR) / 255.0
    expected = (expected - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(out["image"].numpy(), expected.transpose(2, 0, 1), atol=1e-5)


def test_build_transforms_recipes():
    bot = build_transforms()
    assert [type(t).__name__ for t in bot.transforms] == [
        "Resize", "RandomHorizontalFlip", "Pad", "RandomCrop", "ToTensor", "Normalize", "RandomErasing",
    ]  # fmt: skip
    rga = build_transforms(recipe="rga")
    assert [type(t).__name__ for t in rga.transforms] == [
        "Random2DTranslation", "RandomHorizontalFlip", "ToTensor", "Normalize", "RandomErasing",
    ]  # fmt: skip
    assert rga.transforms[-1].fill == 0.0
    bare = build_transforms(flip_p=0, pad=0, erasing_p=0)
    assert [type(t).__name__ for t in bare.transforms] == ["Resize", "ToTensor", "Normalize"]
    with pytest.raises(ValueError, match="'bot' or 'rga'"):
        build_transforms(recipe="fastreid")


def test_same_seed_same_augmentations_different_seed_differs():
    image = np.random.default_rng(6).integers(0, 256, (64, 32, 3), dtype=np.uint8)
    record = {"image": image, "keypoints": random_keypoints(np.random.default_rng(7), 64, 32)}

    def run(seed: int) -> list[torch.Tensor]:
        t = build_transforms(64, 32, seed=seed)
        return [t(record)["image"] for _ in range(6)]

    a, b, c = run(11), run(11), run(12)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    # a generator passed to __call__ wins over the transform's own; reseeding restarts the stream
    t = build_transforms(64, 32, seed=0)
    x = t(record, np.random.default_rng(3))["image"]
    assert torch.equal(x, t(record, np.random.default_rng(3))["image"])
    seed_transforms(t, 11)
    assert torch.equal(t(record)["image"], a[0])


def test_transforms_do_not_touch_global_numpy_rng():
    before = np.random.get_state()[1].copy()  # noqa: NPY002 (the global RNG is the subject)
    build_transforms(64, 32, seed=1)({"image": np.zeros((64, 32, 3), np.uint8)})
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"flip_p": 2}, "flip_p: p=2 is not a probability"),
        ({"erasing_p": -0.1}, "erasing_p: p=-0.1 is not a probability"),
        ({"flip_p": "0.5"}, "is not a probability"),
        ({"pad": -3}, "pad=-3"),
        ({"pad": 2.5}, "pad=2.5"),
        ({"height": 0}, "height=0"),
        ({"width": -8}, "width=-8"),
    ],
)
def test_build_transforms_refuses_nonsense_settings(kwargs, message):
    # before: flip_p=2 flipped every image, pad=-3 silently meant "no padding", height=0
    # failed later inside OpenCV
    with pytest.raises(ValueError, match=message):
        build_transforms(**{"height": 32, "width": 16, **kwargs})


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomHorizontalFlip(1.5),
        lambda: RandomErasing(p=-1),
        lambda: Resize(0, 16),
        lambda: RandomCrop(32, 0),
        lambda: Random2DTranslation(32, 16, p=3),
    ],
)
def test_transforms_check_their_arguments_when_built(make):
    with pytest.raises(ValueError, match=r"Resize|RandomCrop|Flip|Erasing|Translation"):
        make()
