"""The faithfulness report on a tiny synthetic split: pairing rule, chance level, table shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from explain_helpers import tiny_bot

from workbench.data.dataset import read_image
from workbench.data.readers import load_split
from workbench.evaluate.report import choose_pairs, faithfulness_report


def test_choose_pairs_takes_the_closest_true_match_from_another_camera():
    query = pd.DataFrame({"pid": [1, 2, 3], "camid": [0, 0, 0]})
    gallery = pd.DataFrame({"pid": [1, 1, 1, 2, 4], "camid": [0, 1, 2, 0, 1]})
    distmat = np.array(
        [[0.1, 0.9, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.1, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]
    )
    pairs = choose_pairs(distmat, query, gallery)
    # query 0: same camera 0 excluded, cams 1/2 → 0.5 wins; query 1: only a same-camera match;
    # query 2: no match at all
    assert pairs.to_dict("list") == {"query_row": [0], "gallery_row": [2]}


def test_report_rows_and_chance_follow_the_masks(tiny_synth, tmp_path):
    import cv2

    split = load_split(tiny_synth)
    model = tiny_bot(input_size=(128, 64))
    report = faithfulness_report(
        model, split, "gradcam", input_size=(128, 64), pairs=3, steps=2, progress=False
    )
    rows = report.rows
    assert len(rows) == 6 and sorted(rows.side.unique()) == ["gallery", "query"]
    # chance = the person's area share in the (resized) mask, computed here from the mask file
    first = rows.iloc[0]
    table = split.query if first.side == "query" else split.gallery
    mask_path = table.loc[table.path == first.path, "mask_path"].iloc[0]
    parts = read_image(mask_path, cv2.IMREAD_GRAYSCALE)
    parts = cv2.resize(parts, (64, 128), interpolation=cv2.INTER_NEAREST_EXACT)
    assert first.chance == pytest.approx((parts > 0).mean())
    assert report.summary.loc["energy_over_chance", "query"] == pytest.approx(
        rows[rows.side == "query"].energy.mean() / rows[rows.side == "query"].chance.mean()
    )
    paths = report.save(tmp_path / "r")
    assert [p.name for p in paths] == ["summary.csv", "summary.md", "pairs.csv"]
    assert "energy_on_person" in paths[1].read_text()
    assert torch.is_grad_enabled()


def test_report_without_curves_keeps_the_mask_scores(tiny_synth):
    split = load_split(tiny_synth)
    model = tiny_bot(input_size=(128, 64))
    args = dict(input_size=(128, 64), pairs=3, steps=2, progress=False)
    full = faithfulness_report(model, split, "gradcam", **args).rows
    quick = faithfulness_report(model, split, "gradcam", curves=False, **args).rows
    assert quick.path.tolist() == full.path.tolist()
    np.testing.assert_allclose(quick.energy, full.energy, rtol=1e-5)
    assert quick.chance.tolist() == full.chance.tolist()
    assert quick.deletion_auc.isna().all() and full.deletion_auc.notna().all()


def test_matched_subsplit_pairs_equal_the_whole_gallery_pairs(tiny_synth):
    """Leaving out every gallery identity but the sampled queries' changes no query's pair."""
    from workbench.evaluate.report import split_distances
    from workbench.viz.figures.samples import matched_subsplit

    split = load_split(tiny_synth)
    model = tiny_bot(input_size=(128, 64))
    small = matched_subsplit(split, 4, seed=2)
    assert len(small.query) == 4 and len(small.gallery) < len(split.gallery)
    assert set(small.gallery.pid) == set(small.query.pid)
    whole = choose_pairs(split_distances(model, split, (128, 64)), split.query, split.gallery)
    by_query = dict(
        zip(
            split.query.path.iloc[whole.query_row],
            split.gallery.path.iloc[whole.gallery_row],
            strict=True,
        )
    )
    mine = choose_pairs(split_distances(model, small, (128, 64)), small.query, small.gallery)
    assert len(mine) == 4  # every sampled query has a cross-camera match
    for qr, gr in zip(mine.query_row, mine.gallery_row, strict=True):
        assert by_query[small.query.path.iloc[qr]] == small.gallery.path.iloc[gr]


def test_matched_subsplit_takes_only_queries_with_a_cross_camera_match():
    from workbench.data.split import Split
    from workbench.viz.figures.samples import matched_subsplit

    def table(pids, cams):
        paths = [f"{p}_{c}_{i}" for i, (p, c) in enumerate(zip(pids, cams, strict=True))]
        return pd.DataFrame({"path": paths, "pid": pids, "camid": cams})

    # pid 1: a cross-camera match; pid 2: same camera only; pid 3: absent; 0: distractors
    split = Split(
        table([], []), table([1, 2, 3], [0, 0, 0]), table([1, 1, 2, 0, 0], [0, 1, 0, 1, 2])
    )
    for seed in range(5):
        small = matched_subsplit(split, 3, seed)
        assert small.query.pid.tolist() == [1]
        assert small.gallery.path.tolist() == ["1_0_0", "1_1_1"]
    with pytest.raises(ValueError, match="no query has a true match"):
        matched_subsplit(Split(split.train, split.query.iloc[1:], split.gallery), 2)
