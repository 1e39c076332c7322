"""The synthetic pedestrian generator: determinism, Market-1501 layout, and annotations that
agree with the pixels. Dataset-level tests read the session fixture ``tiny_synth`` (12 ids,
128×64, seed 1; tests/conftest.py); render-level tests draw single people on a flat canvas.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from scipy.io import loadmat

from workbench.data.annotations import PART_LABELS, mask_path_for, read_keypoints
from workbench.data.schema import MARKET_ATTRIBUTES, MARKET_LOWER_COLOURS, MARKET_UPPER_COLOURS
from workbench.data.split import parse_market_name
from workbench.data.synth import generate
from workbench.data.synth.body import VIEW_YAW, BodyShape, Pose, build_skeleton
from workbench.data.synth.draw import Canvas, capsule, clip, rounded_rect
from workbench.data.synth.identity import sample_identity
from workbench.data.synth.palette import LOWER_PALETTE, UPPER_PALETTE
from workbench.data.synth.render import keypoint_visibility, paint_person

FOLDERS = ("bounding_box_train", "query", "bounding_box_test")
MAGENTA = (255, 0, 255)  # BGR; no palette colour is near it
NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SHO, R_SHO = range(7)
L_KNEE, R_KNEE, L_ANK, R_ANK = 13, 14, 15, 16


# ---- helpers -------------------------------------------------------------------------------
def _meta(root: Path) -> dict:
    return json.loads((root / "synth.json").read_text())


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _images(root: Path) -> list[Path]:
    return [p for f in FOLDERS for p in sorted((root / f).glob("*.jpg"))]


def _identity(seed: int, **attributes: int):
    """A sampled identity with some attributes overridden (the drawing reads them)."""
    ident = sample_identity(np.random.default_rng(seed), 1)
    return dataclasses.replace(ident, attributes={**ident.attributes, **attributes})


def _draw(ident, yaw: float, phase: float = 0.6, h: int = 192, w: int = 96):
    """Paint ``ident`` on a magenta canvas; return canvas, COCO keypoints, skeleton."""
    canvas = Canvas(np.full((h, w, 3), MAGENTA, np.uint8))
    canvas.place(0.85 * h, 0.85 * h, w / 2, 0.07 * h)
    a = ident.attributes
    pose = Pose(yaw=yaw, phase=phase, hold_left=a["handbag"] and ident.handbag_hand == 1,
                hold_right=a["handbag"] and ident.handbag_hand == -1)  # fmt: skip
    sk = build_skeleton(ident.shape, pose)
    xy = paint_person(canvas, ident, sk)
    return canvas, xy, sk


def _nearest(pixels: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    """Majority vote of the palette entries nearest (RGB) to each pixel of (N, 3) RGB pixels."""
    names = list(palette)
    anchors = np.array([palette[n] for n in names], float)  # (K, 3)
    d = ((pixels[:, None, :].astype(float) - anchors[None]) ** 2).sum(-1)  # (N, K)
    return names[int(np.bincount(d.argmin(1), minlength=len(names)).argmax())]


# ---- determinism ---------------------------------------------------------------------------
def test_same_seed_gives_identical_bytes_whatever_the_worker_count(tiny_synth, tmp_path):
    m, again = _meta(tiny_synth), tmp_path / "again"
    generate(again, ids=m["ids"], seed=m["seed"], height=m["height"], width=m["width"], workers=2,
             progress=False)  # fmt: skip
    first, second = _tree(tiny_synth), _tree(again)
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []


def test_different_seed_gives_different_images(tiny_synth, tmp_path):
    m, other = _meta(tiny_synth), tmp_path / "other"
    generate(other, ids=4, seed=m["seed"] + 1, height=m["height"], width=m["width"], workers=1,
             progress=False)  # fmt: skip
    ours = {p.read_bytes() for p in _images(tiny_synth)}
    theirs = [p.read_bytes() for p in _images(other)]
    assert theirs and not any(b in ours for b in theirs)


def test_regenerating_into_the_same_folder_leaves_no_stale_files(tmp_path):
    root = tmp_path / "d"
    generate(root, ids=6, seed=0, height=64, width=32, workers=1, progress=False)
    generate(root, ids=2, seed=0, height=64, width=32, workers=1, progress=False)
    fresh = tmp_path / "fresh"
    generate(fresh, ids=2, seed=0, height=64, width=32, workers=1, progress=False)
    assert _tree(root) == _tree(fresh)


# ---- layout --------------------------------------------------------------------------------
def test_layout_parses_as_market1501(tiny_synth):
    names = [p.name for p in _images(tiny_synth)]
    assert len(names) == len(set(names))
    pattern = re.compile(r"^(\d{4}|-1)_c[1-6]s[1-6]_\d{6}_\d{2}\.jpg$")
    assert [n for n in names if not pattern.match(n)] == []
    pids = {f: {parse_market_name(p).pid for p in (tiny_synth / f).glob("*.jpg")} for f in FOLDERS}
    assert all(0 <= parse_market_name(n).camid <= 5 for n in names)
    assert min(pids["bounding_box_train"]) > 0 and min(pids["query"]) > 0
    assert pids["bounding_box_train"].isdisjoint(pids["query"])
    assert {0, -1} <= pids["bounding_box_test"]  # distractors and junk
    assert pids["query"] == pids["bounding_box_test"] - {0, -1}
    meta = _meta(tiny_synth)
    assert set(meta["ids_train"]) == pids["bounding_box_train"]
    assert set(meta["ids_test"]) == pids["query"]
    assert meta["counts"]["distractors"] > 0 and meta["counts"]["junk"] > 0


def test_frames_increase_within_a_track(tiny_synth):
    """A track is one id in one camera/sequence; the plan writes its frames in time order."""
    rows = [parse_market_name(p) for p in sorted((tiny_synth / "bounding_box_train").glob("*.jpg"))]
    frames: dict[tuple, list[int]] = {}
    for r in rows:
        frames.setdefault((r.pid, r.camid, r.seq), []).append(int(r.rest.split("_")[0]))
    assert all(len(set(f)) == len(f) for f in frames.values())  # no frame twice in a track


def test_every_query_has_a_cross_camera_match(tiny_synth):
    query = [parse_market_name(p) for p in (tiny_synth / "query").glob("*.jpg")]
    gallery = [parse_market_name(p) for p in (tiny_synth / "bounding_box_test").glob("*.jpg")]
    per_id_cam = pd.Series([(q.pid, q.camid) for q in query]).value_counts()
    assert (per_id_cam == 1).all()  # one query per (test id, camera)
    cams = pd.DataFrame([(q.pid, q.camid) for q in query], columns=["pid", "cam"])
    assert (cams.groupby("pid").cam.nunique() >= 2).all()
    for q in query:
        assert any(g.pid == q.pid and g.camid != q.camid for g in gallery), q


# ---- annotations against pixels ------------------------------------------------------------
def test_every_image_has_a_mask_and_keypoints(tiny_synth):
    h, w = _meta(tiny_synth)["height"], _meta(tiny_synth)["width"]
    for folder in FOLDERS:
        kp = read_keypoints(tiny_synth / "keypoints" / f"{folder}.csv")
        paths = sorted((tiny_synth / folder).glob("*.jpg"))
        assert sorted(kp) == [p.name for p in paths]
        for p in paths:
            mask = cv2.imread(str(mask_path_for(tiny_synth, p)), cv2.IMREAD_UNCHANGED)
            assert mask is not None and mask.dtype == np.uint8 and mask.shape == (h, w)
            assert set(np.unique(mask)) <= set(PART_LABELS)
            k = kp[p.name]
            assert set(np.unique(k[:, 2])) <= {0, 1, 2}
            assert (k[k[:, 2] == 0, :2] == 0).all()  # COCO: unlabelled points at (0, 0)
            v = k[:, 2] > 0
            assert ((k[v, 0] >= 0) & (k[v, 0] < w) & (k[v, 1] >= 0) & (k[v, 1] < h)).all()


def test_visible_keypoints_lie_on_the_person_mask(tiny_synth):
    """Every v = 2 keypoint's pixel is a person pixel or within 2 pixels of one."""
    far = 0
    total = 0
    for folder in FOLDERS:
        kp = read_keypoints(tiny_synth / "keypoints" / f"{folder}.csv")
        for name, k in kp.items():
            person = (
                cv2.imread(str(tiny_synth / "masks" / folder / name.replace(".jpg", ".png")), 0) > 0
            )
            for x, y, v in k:
                if v == 2:
                    xi, yi = int(x), int(y)
                    total += 1
                    far += not person[max(0, yi - 2) : yi + 3, max(0, xi - 2) : xi + 3].any()
    assert total > 1000 and far == 0


def test_person_mask_is_exactly_what_was_painted():
    """On a magenta canvas, mask pixels are painted and painted pixels are the mask (+1 px AA)."""
    for seed, yaw in [(0, 0.0), (1, 90.0), (2, 180.0), (3, -90.0), (4, 30.0), (5, 200.0)]:
        canvas, _, _ = _draw(_identity(seed, backpack=1, bag=1), yaw)
        painted = np.abs(canvas.image.astype(int) - MAGENTA).sum(-1) > 24
        person = canvas.label_map() > 0
        near = cv2.dilate(person.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert (painted & ~near).sum() == 0, f"seed {seed}: paint outside the mask"
        assert (person & ~painted).sum() <= 0.01 * person.sum(), f"seed {seed}: unpainted mask"


def test_keypoint_sides_and_self_occlusion_follow_the_view():
    ident = _identity(7, hat=0)
    canvas_f, xy_f, sk_f = _draw(ident, VIEW_YAW["front"])
    kp_f = keypoint_visibility(canvas_f, xy_f, sk_f)
    assert kp_f[L_SHO, 0] > kp_f[R_SHO, 0]  # facing the camera: the person's left is image right
    assert (kp_f[[NOSE, L_EYE, R_EYE], 2] == 2).all()
    canvas_b, xy_b, sk_b = _draw(ident, VIEW_YAW["back"])
    kp_b = keypoint_visibility(canvas_b, xy_b, sk_b)
    assert kp_b[L_SHO, 0] < kp_b[R_SHO, 0]
    assert (kp_b[[NOSE, L_EYE, R_EYE], 2] == 1).all() and (kp_b[[L_EAR, R_EAR], 2] == 2).all()
    canvas_r, xy_r, sk_r = _draw(ident, VIEW_YAW["right"])  # walking right: left side away
    kp_r = keypoint_visibility(canvas_r, xy_r, sk_r)
    assert kp_r[NOSE, 0] > kp_r[R_EAR, 0]  # the nose points where the person walks
    assert kp_r[L_EAR, 2] == 1 and kp_r[R_EAR, 2] == 2 and kp_r[L_SHO, 2] == 1
    # continuous coordinates: drawing coordinate + 0.5
    np.testing.assert_allclose(kp_f[kp_f[:, 2] > 0, :2], xy_f[kp_f[:, 2] > 0] + 0.5, atol=1e-4)


def test_occluder_removes_mask_pixels_and_hides_keypoints():
    canvas, xy, sk = _draw(_identity(8), 0.0, phase=1.5)
    y_knee = xy[L_KNEE, 1]
    h, w = canvas.ids.shape
    canvas.mode = "occluder"
    canvas.place(1.0, 1.0, 0.0, 0.0)
    canvas.fill(
        rounded_rect(w / 2, (y_knee + h) / 2, w, (h - y_knee) / 2 + 8, 0), (90, 90, 90), 0, 0
    )
    kp = keypoint_visibility(canvas, xy, sk)
    assert (kp[[L_KNEE, R_KNEE, L_ANK, R_ANK], 2] == 1).all()
    assert (kp[[L_SHO, R_SHO], 2] == 2).all()
    labels = canvas.label_map()
    assert not labels[int(np.ceil(y_knee)) - 7 :].any() and labels[: int(y_knee) - 10].any()


@pytest.mark.parametrize(("item", "label"), [("backpack", 5), ("bag", 6), ("handbag", 7)])
def test_carried_items_are_in_the_mask_in_every_view(item, label):
    for yaw in VIEW_YAW.values():
        carried = {"backpack": 0, "bag": 0, "handbag": 0, item: 1}
        canvas, _, _ = _draw(_identity(9, **carried), yaw, phase=0.3)
        labels = canvas.label_map()
        assert (labels == label).sum() > 20, (item, yaw)
        assert set(np.unique(labels)) & {5, 6, 7} == {label}
    canvas, _, _ = _draw(_identity(9, backpack=0, bag=0, handbag=0), 180.0)
    assert not np.isin(canvas.label_map(), [5, 6, 7]).any()


def test_carried_items_in_dataset_masks_follow_the_attributes(tiny_synth):
    attrs = pd.read_csv(tiny_synth / "attributes.csv").set_index("pid")
    for item, label in (("backpack", 5), ("bag", 6), ("handbag", 7)):
        assert attrs[item].any(), f"pick a fixture seed with a {item}"
        shown = {True: [], False: []}
        for p in _images(tiny_synth):
            pid = parse_market_name(p).pid
            if pid > 0:
                mask = cv2.imread(str(mask_path_for(tiny_synth, p)), cv2.IMREAD_UNCHANGED)
                shown[bool(attrs.loc[pid, item])].append(bool((mask == label).any()))
        assert not any(shown[False]), item
        assert np.mean(shown[True]) >= 0.75, item


def test_garment_colours_match_the_attributes_in_the_neutral_camera(tiny_synth):
    neutral = [c["index"] for c in _meta(tiny_synth)["cameras"] if c["neutral"]]
    assert neutral == [1]
    attrs = pd.read_csv(tiny_synth / "attributes.csv").set_index("pid")
    upper_ok, lower_ok = [], []
    for p in _images(tiny_synth):
        name = parse_market_name(p)
        if name.pid <= 0 or name.camid != 0:
            continue
        rgb = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(str(mask_path_for(tiny_synth, p)), cv2.IMREAD_UNCHANGED)
        a = attrs.loc[name.pid]
        inner = cv2.erode((mask == 2).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        if inner.sum() >= 30:
            want = next(c for c in MARKET_UPPER_COLOURS if a[f"up{c}"])
            upper_ok.append(_nearest(rgb[inner], UPPER_PALETTE) == want)
        inner = cv2.erode((mask == 3).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        if a["clothes"] == 1 and a["down"] == 0 and inner.sum() >= 30:  # long pants: no skin
            want = next(c for c in MARKET_LOWER_COLOURS if a[f"down{c}"])
            lower_ok.append(_nearest(rgb[inner], LOWER_PALETTE) == want)
    assert len(upper_ok) >= 10 and np.mean(upper_ok) >= 0.85
    assert len(lower_ok) >= 5 and np.mean(lower_ok) >= 0.85


# ---- attribute files -----------------------------------------------------------------------
def test_attribute_table_is_one_hot_and_in_range(tiny_synth):
    table = pd.read_csv(tiny_synth / "attributes.csv")
    names = [a.name for a in MARKET_ATTRIBUTES]
    assert list(table.columns) == ["pid", *names, "split"]
    for a in MARKET_ATTRIBUTES:
        assert table[a.name].between(0, len(a.values) - 1).all(), a.name
    assert (table[[f"up{c}" for c in MARKET_UPPER_COLOURS]].sum(axis=1) == 1).all()
    assert (table[[f"down{c}" for c in MARKET_LOWER_COLOURS]].sum(axis=1) == 1).all()
    train_pids = {
        parse_market_name(p).pid for p in (tiny_synth / "bounding_box_train").glob("*.jpg")
    }
    assert set(table.pid[table.split == "train"]) == train_pids
    assert len(table) == _meta(tiny_synth)["ids"] and set(table.split) == {"train", "test"}


def test_attribute_mat_matches_the_csv(tiny_synth):
    table = pd.read_csv(tiny_synth / "attributes.csv").set_index("pid")
    mat = loadmat(tiny_synth / "market_attribute.mat")["market_attribute"][0, 0]
    for split in ("train", "test"):
        part = mat[split][0, 0]
        pids = [int(s[0]) for s in part["image_index"][0]]
        assert pids == sorted(table.index[table.split == split])
        for a in MARKET_ATTRIBUTES:
            expected = table.loc[pids, a.name].to_numpy() + 1  # Lin et al. code 1 = no, 2 = yes
            np.testing.assert_array_equal(part[a.name][0], expected, err_msg=a.name)


# ---- geometry helpers and the skeleton -------------------------------------------------------
def test_capsule_is_the_hull_of_its_two_discs():
    rng = np.random.default_rng(0)
    p0, p1, r0, r1 = np.array([10.0, 20.0]), np.array([30.0, 60.0]), 6.0, 3.0
    poly = capsule(p0, p1, r0, r1).astype(np.float32)
    pts = rng.uniform(-10, 80, (4000, 2))
    inside = np.array(
        [cv2.pointPolygonTest(poly, (float(x), float(y)), False) >= 0 for x, y in pts]
    )
    # distance to the hull of the discs: a disc of radius r(t) swept along the segment
    t = np.linspace(0, 1, 400)
    centres = p0 + t[:, None] * (p1 - p0)
    slack = np.min(
        np.linalg.norm(pts[:, None] - centres[None], axis=-1) - (r0 + t * (r1 - r0)), axis=1
    )
    assert inside[slack < -0.15].all()  # well inside the hull -> inside the polygon
    assert not inside[slack > 0.05].any()  # outside the hull -> outside


def test_clip_cuts_a_square_along_a_half_plane():
    square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
    got = clip(square, (1.0, 1.0), 4.0)  # keep x + y <= 4: the triangle below the diagonal
    assert {tuple(p) for p in got.round(6)} == {(0.0, 0.0), (4.0, 0.0), (0.0, 4.0)}
    assert len(clip(square, (1.0, 0.0), -1.0)) == 0


def test_skeleton_back_view_mirrors_front_view_and_feet_stay_on_the_ground():
    shape = BodyShape()
    for phase in np.linspace(0, 2 * np.pi, 7):
        front = build_skeleton(shape, Pose(yaw=0.0, phase=phase))
        back = build_skeleton(shape, Pose(yaw=180.0, phase=phase))
        np.testing.assert_allclose(back.xy[:, 0], -front.xy[:, 0], atol=1e-9)
        np.testing.assert_allclose(back.depth, -front.depth, atol=1e-9)
        feet = [front.p(n)[1] for n in ("l_heel", "r_heel", "l_toe", "r_toe")]
        assert max(feet) == pytest.approx(0.988)
        side = build_skeleton(shape, Pose(yaw=90.0, phase=phase))  # thighs swing in the image plane
        thigh = np.linalg.norm(side.p("l_knee") - side.p("l_hip"))
        assert thigh == pytest.approx(0.225 * shape.leg)


# ---- arguments -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ids": 1}, "from 2 to 9999"),
        ({"ids": 10_000}, "from 2 to 9999"),
        ({"height": 32, "width": 16}, "at least 64x32"),
        ({"height": 128, "width": 24}, "at least 64x32"),
        ({"height": 128, "width": 160}, "taller than wide"),
        ({"workers": 0}, "workers=0"),
        ({"seed": -1}, "non-negative"),
        ({"height": 4096, "width": 2048}, "at most 1024 pixels"),
        ({"height": 128.5}, "whole number"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(tmp_path / "x", **{"ids": 4, **kwargs}, progress=False)
    assert not (tmp_path / "x").exists()


def test_refuses_to_write_into_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds no synth\.json"):
        generate(tmp_path, ids=2, progress=False)
    with pytest.raises(ValueError, match="is a file"):
        generate(tmp_path / "notes.txt", ids=2, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_summary_counts_match_the_files(tmp_path):
    summary = generate(
        tmp_path / "s", ids=4, seed=5, height=64, width=32, workers=1, progress=False
    )
    root = tmp_path / "s"
    assert summary.images_train == len(list((root / "bounding_box_train").glob("*.jpg")))
    assert summary.images_query == len(list((root / "query").glob("*.jpg")))
    assert summary.images_gallery == len(list((root / "bounding_box_test").glob("*.jpg")))
    assert summary.distractors == len(list((root / "bounding_box_test").glob("0000_*.jpg")))
    assert summary.junk == len(list((root / "bounding_box_test").glob("-1_*.jpg")))
    assert (summary.ids_train, summary.ids_test) == (2, 2)
    text = str(summary)
    assert "bounding_box_train" in text and "images/s" in text and "backpack" in text


# ---- contact sheet -------------------------------------------------------------------------
def test_contact_sheet_shows_each_sample_raw_and_annotated(tiny_synth, tmp_path):
    import matplotlib.pyplot as plt

    from workbench.viz.contact_sheet import PART_COLOURS, colourise_parts, contact_sheet

    fig = contact_sheet(tiny_synth, n=3, seed=0, out=tmp_path / "sheet.png", per_row=2)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 6 and (tmp_path / "sheet.png").stat().st_size > 0
    titles = [ax.get_title(loc="left") for ax in shown[::2]]
    assert all(re.match(r"^(\d{4}|-1) c[1-6]$", t) for t in titles), titles
    plt.close(fig)
    labels = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], np.uint8)
    rgb = colourise_parts(labels)
    assert (rgb[0, 0] == 0).all()
    assert all((rgb.reshape(-1, 3)[k] == PART_COLOURS[k]).all() for k in range(1, 8))


# ---- an unfinished generation is never read as a whole dataset -----------------------------
def _interrupt_after(monkeypatch, chunks: int, error: BaseException) -> None:
    """Make the (single-process) renderer raise ``error`` after ``chunks`` chunks."""
    gen_module = importlib.import_module("workbench.data.synth.generate")
    real, calls = gen_module._render_chunk, []

    def render(specs):
        calls.append(1)
        if len(calls) > chunks:
            raise error
        return real(specs)

    monkeypatch.setattr(gen_module, "_render_chunk", render)


def test_interrupted_generation_is_refused_by_the_reader(tmp_path, monkeypatch):
    from workbench.data.manifest import IncompleteDatasetError
    from workbench.data.readers import load_split

    root = tmp_path / "s"
    _interrupt_after(monkeypatch, 2, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        generate(root, ids=4, seed=5, height=64, width=32, workers=1, progress=False)
    assert any((root / "bounding_box_train").iterdir())  # a fragment is on disk
    # before: synth.json was written first and load_split read the fragment without a word
    with pytest.raises(
        IncompleteDatasetError,
        match=r"incomplete synthetic dataset.*rerun "
        r"`workbench synth --out .* --ids 4 --seed 5 --height 64 --width 32`",
    ):
        load_split(root)
    monkeypatch.undo()
    from workbench.data.synth import ensure_synthetic

    # the demo's ensure_synthetic regenerates it rather than reusing the fragment
    _, fresh = ensure_synthetic(root, ids=4, seed=5, height=64, width=32, progress=False)
    assert fresh is not None and len(load_split(root).query) == fresh.images_query
    assert ensure_synthetic(root, ids=4, seed=5, height=64, width=32, progress=False)[1] is None


def test_full_disk_names_the_file_and_leaves_an_incomplete_dataset(tmp_path, monkeypatch):
    import errno

    from workbench.data.manifest import IncompleteDatasetError
    from workbench.data.readers import load_split

    gen_module = importlib.import_module("workbench.data.synth.generate")  # the module
    opened = []

    class FullDisk:  # a file whose write() fails like a full disk does (no file name)
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    def fake_open(path, mode="r", *args, **kwargs):
        opened.append(path)
        return FullDisk() if len(opened) > 6 else open(path, mode, *args, **kwargs)

    monkeypatch.setattr(gen_module, "open", fake_open, raising=False)  # the image writer's open
    with pytest.raises(OSError, match="No space left") as info:
        gen_module.generate(tmp_path / "s", ids=4, height=64, width=32, workers=1, progress=False)
    assert info.value.errno == errno.ENOSPC
    assert Path(info.value.filename).parent.parent == tmp_path / "s"  # names the file
    with pytest.raises(IncompleteDatasetError, match="rerun"):
        load_split(tmp_path / "s")


def test_dataset_with_removed_images_disagrees_with_its_manifest(tiny_synth, tmp_path):
    import shutil

    from workbench.data.manifest import IncompleteDatasetError
    from workbench.data.readers import load_split

    root = tmp_path / "copy"
    shutil.copytree(tiny_synth, root)
    query = sorted((root / "query").glob("*.jpg"))
    for p in query[1:]:
        p.unlink()
    n = _meta(root)["counts"]["query"]
    with pytest.raises(IncompleteDatasetError, match=rf"query/ has 1 of {n} images"):
        load_split(root)
    (root / "attributes.csv").unlink()
    with pytest.raises(IncompleteDatasetError, match=rf"has 1 of {n} images; missing attributes"):
        load_split(root)
    for p in (root / "query").glob("*.jpg"):
        p.unlink()  # an empty folder: the manifest's message, not "unpack it again"
    with pytest.raises(IncompleteDatasetError, match=rf"query/ has 0 of {n} images"):
        load_split(root)


def test_manifest_is_written_last_and_the_marker_removed(tiny_synth):
    from workbench.data.manifest import PARTIAL_FILE

    assert (tiny_synth / "synth.json").is_file() and not (tiny_synth / PARTIAL_FILE).exists()
    meta = _meta(tiny_synth)
    assert meta["counts"]["query"] == len(list((tiny_synth / "query").glob("*.jpg")))


def test_a_broken_link_in_a_generated_dataset_is_named_as_such(tiny_synth, tmp_path):
    import shutil

    from workbench.data.readers import DatasetLayoutError, load_split

    root = tmp_path / "copy"
    shutil.copytree(tiny_synth, root)
    (root / "query" / "0999_c1s1_000001_01.jpg").symlink_to(tmp_path / "gone.jpg")
    with pytest.raises(DatasetLayoutError, match="broken symbolic links") as info:
        load_split(root)
    assert "incomplete" not in str(info.value)
