"""The main job on a tiny dataset: it reuses the data, writes its figures, reports metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.demo import DEFAULT_BASELINE, run_demo
from workbench.pretrained import list_pretrained


def test_demo_writes_contact_sheet_and_ranklist(tiny_synth, tmp_path, capsys):
    if DEFAULT_BASELINE not in [c["name"] for c in list_pretrained()]:
        pytest.fail(f"the shipped baseline {DEFAULT_BASELINE} is missing from weights/")
    mat_before = (tiny_synth / "market_attribute.mat").stat().st_mtime_ns
    report = run_demo(
        data=tiny_synth, out=tmp_path, ids=12, seed=1, height=128, width=64,
        figures=("ranklist_heatmaps",),
    )  # fmt: skip
    assert (tiny_synth / "market_attribute.mat").stat().st_mtime_ns == mat_before  # reused
    for key in ("contact_sheet", "ranklist"):
        path = tmp_path / report[key].rsplit("/", 1)[-1]
        assert path.exists() and path.stat().st_size > 10_000
    assert 0 <= report["metrics"]["mAP"] <= 100
    printed = capsys.readouterr().out
    assert "Rank-1" in printed and "cross-camera rank-1" in printed
    assert "[5/5] paper figures" in printed
    for paths in report["figures"].values():  # the figures whose weights are shipped
        assert all(Path(p).stat().st_size > 10_000 for p in paths)


def test_demo_figures_name_unknown_recipes_before_drawing(tiny_synth, tmp_path):
    from workbench.data.readers import load_split
    from workbench.demo import _paper_figures

    with pytest.raises(KeyError, match=r"unknown figure 'daaf_fig99'.*daaf_fig9"):
        _paper_figures(load_split(tiny_synth), ("ranklist_heatmaps", "daaf_fig99"), tmp_path)
    assert not any(tmp_path.iterdir())  # nothing drawn before the check
