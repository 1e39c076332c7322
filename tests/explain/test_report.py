"""The faithfulness report on a tiny synthetic split: pairing rule, chance level, table shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from explain_helpers import tiny_bot

from workbench.data.dataset import read_image
from workbench.data.readers import load_split
from workbench.explain.report import choose_pairs, faithfulness_report


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
