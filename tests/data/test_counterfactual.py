"""Counterfactual pedestrians: one factor changed, nothing else; masks that say exactly where.

Render-level tests re-render query images of a 40-identity plan at 256×128 in memory (every
camera occurs); file-level tests read a tiny dataset written with ``counterfactuals=3``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from workbench.data.annotations import mask_path_for
from workbench.data.synth import generate
from workbench.data.synth.camera import make_cameras
from workbench.data.synth.compose import Studio
from workbench.data.synth.counterfactual import (
    CSV_COLUMNS,
    FACTORS,
    add_counterfactuals,
    choose_originals,
    counterfactuals_of,
    jpeg_round_trip,
    render_counterfactual,
)
from workbench.data.synth.identity import ATTRIBUTE_NAMES
from workbench.data.synth.plan import make_plan

# the part labels (annotations.PART_LABELS) each factor paints
FACTOR_PARTS = {
    "upper_colour": (2,), "lower_colour": (3,), "hat": (1,), "hair": (1,), "shoes": (4,),
    "backpack": (5,), "bag": (6,), "handbag": (7,),
}  # fmt: skip


@pytest.fixture(scope="module")
def renders():
    """Every factor of 12 query images at 256×128 (seed 0, 40 identities), two per camera."""
    plan = make_plan(40, 0, make_cameras(0))
    studio = Studio(0, 256, 128)
    queries = choose_originals(plan, 100, 0)
    specs = [s for cam in range(1, 7) for s in [q for q in queries if q.cam == cam][:2]]
    assert len(specs) == 12
    return [
        (spec, render_counterfactual(studio, spec, plan.identities[spec.identity], f))
        for spec in specs
        for f in FACTORS
    ]


@pytest.fixture(scope="module")
def cf_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cf") / "data"
    generate(root, ids=8, seed=2, height=128, width=64, workers=1, progress=False,
             counterfactuals=3)  # fmt: skip
    return root


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _blocks(mask: np.ndarray, size: int) -> np.ndarray:
    """Pixels of the ``size``×``size`` JPEG blocks that hold at least one mask pixel."""
    h, w = mask.shape
    hit = mask.reshape(h // size, size, w // size, size).any((1, 3))
    return np.repeat(np.repeat(hit, size, 0), size, 1)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def test_renders_are_identical_outside_the_mask_before_jpeg(renders):
    for spec, cf in renders:
        same = (cf.original == cf.counterfactual).all(axis=2)
        assert same[~cf.mask].all(), (spec.name, cf.factor)
        assert not same[cf.mask].any(), (spec.name, cf.factor)  # the mask is exactly the change
        assert cf.mask.any(), f"{spec.name} {cf.factor}: an edit that changed no pixel"


def test_the_change_sits_on_the_edited_part(renders):
    """Nothing but the factor moved: the change lies on the person (either render, give or
    take the camera's blur, <= 6 px) and almost all of it on the part the factor paints; a
    drift of the random stream would move the person and the background and fail here."""
    shares = []
    for spec, cf in renders:
        if cf.factor == "background":
            continue
        person = _dilate((cf.labels > 0) | (cf.labels_after > 0), 6)
        assert not (cf.mask & ~person).any(), (spec.name, cf.factor)
        part = np.isin(cf.labels, FACTOR_PARTS[cf.factor]) | np.isin(
            cf.labels_after, FACTOR_PARTS[cf.factor]
        )
        shares.append(cf.mask[_dilate(part, 6)].sum() / cf.mask.sum())
    # the rest: anti-aliased edges of what is drawn over the part (arms, hands, poles), and
    # the hand that grips a new handbag
    assert np.mean(shares) > 0.98 and min(shares) > 0.85, (np.mean(shares), min(shares))


def test_after_jpeg_differences_stay_in_the_16px_blocks_touching_the_mask(renders):
    """Measured: with OpenCV's default 4:2:0 chroma subsampling a change reaches the whole
    16×16 MCU (the 8×8 luma blocks are not enough: about 15 % of the differing pixels lie
    outside them) and libjpeg's fancy chroma upsampling one pixel beyond it."""
    diff = out8 = out16 = out16_band = 0
    for _, cf in renders:
        a, b = _jpeg(cf.original, cf.jpeg), _jpeg(cf.counterfactual, cf.jpeg)
        d = (a != b).any(axis=2)
        diff += d.sum()
        out8 += (d & ~_blocks(cf.mask, 8)).sum()
        out16 += (d & ~_blocks(cf.mask, 16)).sum()
        out16_band += (d & ~_dilate(_blocks(cf.mask, 16), 1)).sum()
    assert out16_band == 0
    assert out16 > 0 and out8 / diff > 0.05  # the statement above is not vacuous


def test_background_change_never_touches_the_person(renders):
    for spec, cf in renders:
        if cf.factor != "background":
            continue
        assert not (cf.mask & (cf.labels > 0)).any(), spec.name
        assert cf.mask.mean() > 0.3, spec.name  # the scene really changed


def test_attribute_edits_follow_the_schema(renders):
    for _, cf in renders:
        if cf.factor in ("hat", "bag", "backpack", "handbag", "hair"):
            assert cf.attribute == cf.factor and {cf.old, cf.new} == {"0", "1"}
            assert cf.attributes[cf.factor] == int(cf.new)
        elif cf.factor in ("upper_colour", "lower_colour"):
            prefix = "up" if cf.factor == "upper_colour" else "down"
            assert cf.old != cf.new
            assert (
                cf.attributes[f"{prefix}{cf.new}"] == 1 and cf.attributes[f"{prefix}{cf.old}"] == 0
            )
            colours = [n for n in ATTRIBUTE_NAMES if n.startswith(prefix) and n != prefix]
            assert sum(cf.attributes[n] for n in colours) == 1  # still one-hot


def test_counterfactual_csv_and_files(cf_root):
    table = pd.read_csv(cf_root / "counterfactuals.csv", dtype={"old": str, "new": str})
    assert tuple(table.columns) == CSV_COLUMNS
    assert len(table) == 3 * len(FACTORS) and table.original.nunique() == 3
    attrs = pd.read_csv(cf_root / "attributes.csv").set_index("pid")
    for row in table.itertuples():
        assert row.original.startswith("query/") and (cf_root / row.original).is_file()
        image = cv2.imread(str(cf_root / row.counterfactual))
        mask = cv2.imread(str(cf_root / row.mask), cv2.IMREAD_UNCHANGED)
        assert image.shape == (128, 64, 3) and mask.shape == (128, 64)
        assert set(np.unique(mask)) <= {0, 255} and row.area == pytest.approx(
            (mask > 0).mean(), abs=1e-6
        )
        vector = np.array(row.attributes.split(), int)
        changed = [n for n, a, b in zip(ATTRIBUTE_NAMES, vector, attrs.loc[row.pid, list(ATTRIBUTE_NAMES)], strict=True) if a != b]  # fmt: skip
        expected = {"upper_colour": 2, "lower_colour": 2, "shoes": 0, "background": 0}
        assert len(changed) == expected.get(row.factor, 1), (row.factor, changed)
        if row.factor == "background":
            parts = cv2.imread(str(mask_path_for(cf_root, row.original)), cv2.IMREAD_UNCHANGED)
            assert not ((parts > 0) & (mask > 0)).any()


def test_same_seed_gives_the_same_files(cf_root, tmp_path):
    again = tmp_path / "again"
    generate(again, ids=8, seed=2, height=128, width=64, workers=2, progress=False,
             counterfactuals=3)  # fmt: skip
    first = sorted(p.relative_to(cf_root) for p in (cf_root / "counterfactuals").rglob("*.*"))
    assert first == sorted(p.relative_to(again) for p in (again / "counterfactuals").rglob("*.*"))
    for rel in [*first, Path("counterfactuals.csv")]:
        assert (cf_root / rel).read_bytes() == (again / rel).read_bytes(), rel
    # added to a dataset already on disk: the same files again
    add_counterfactuals(again, 3, progress=False)
    for rel in [*first, Path("counterfactuals.csv")]:
        assert (cf_root / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_another_seed_gives_other_counterfactuals(cf_root, tmp_path):
    other = tmp_path / "other"
    generate(other, ids=8, seed=3, height=128, width=64, workers=1, progress=False,
             counterfactuals=3)  # fmt: skip
    a = pd.read_csv(cf_root / "counterfactuals.csv")
    b = pd.read_csv(other / "counterfactuals.csv")
    assert not a[["original", "old", "new"]].equals(b[["original", "old", "new"]])


def test_bad_counts_and_factors_are_refused(cf_root):
    with pytest.raises(ValueError, match="counterfactuals=-1"):
        generate(cf_root, ids=8, seed=2, height=128, width=64, counterfactuals=-1)
    plan = make_plan(8, 2, make_cameras(2))
    spec = choose_originals(plan, 1, 2)[0]
    with pytest.raises(ValueError, match="unknown factor 'scarf'"):
        render_counterfactual(Studio(2, 128, 64), spec, plan.identities[spec.identity], "scarf")
    with pytest.raises(ValueError, match=r"no synth\.json"):
        add_counterfactuals(cf_root / "query", 2, progress=False)


def test_a_handbag_edit_keeps_the_original_pose(renders):
    """The arm that carries a new handbag keeps its swing (the pose is the original's): the
    change stays near the hand, far from the shoulder."""
    for spec, cf in renders:
        if cf.factor != "handbag":
            continue
        ys = np.nonzero(cf.mask)[0]
        shoulders = np.nonzero((cf.labels == 2).any(1))[0].min()  # top row of the upper body
        assert ys.min() > shoulders + 20, spec.name


def test_dataclass_replace_leaves_the_original_identity_alone():
    plan = make_plan(8, 2, make_cameras(2))
    spec = choose_originals(plan, 1, 2)[0]
    ident = plan.identities[spec.identity]
    before = dataclasses.asdict(ident)
    render_counterfactual(Studio(2, 128, 64), spec, ident, "upper_colour")
    assert dataclasses.asdict(ident) == before


def test_in_memory_counterfactuals_are_the_written_files(cf_root):
    """``counterfactuals_of`` (the figure's source) renders what ``synth`` wrote, pixel for
    pixel after the JPEG round trip."""
    table = pd.read_csv(cf_root / "counterfactuals.csv")
    for index in (0, 2):
        original, cfs = counterfactuals_of(cf_root, index)
        rows = table[table.original == original]
        assert list(rows.factor) == [cf.factor for cf in cfs]
        for cf, row in zip(cfs, rows.itertuples(), strict=True):
            on_disk = cv2.imread(str(cf_root / row.counterfactual))
            np.testing.assert_array_equal(jpeg_round_trip(cf.counterfactual, cf.jpeg), on_disk)
            mask = cv2.imread(str(cf_root / row.mask), cv2.IMREAD_UNCHANGED) > 0
            np.testing.assert_array_equal(cf.mask, mask)
        np.testing.assert_array_equal(
            jpeg_round_trip(cfs[0].original, cfs[0].jpeg), cv2.imread(str(cf_root / original))
        )
