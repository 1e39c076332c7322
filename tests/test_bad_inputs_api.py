"""The API section of the bad-input benchmark: every case refused, warned about or converted.

Each of its ≥ 100 cases failed on the code before issue 20 in one of the bad ways (a traceback
from inside torch, a silent wrong result, a mutated model or run folder) or is a harmless input
that must keep working; see ``benchmarks/bad_inputs_api.py`` for the classification.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    path = ROOT / "benchmarks" / "bad_inputs_api.py"
    spec = importlib.util.spec_from_file_location("bad_inputs_api", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bad_inputs_api"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.slow
def test_no_traceback_silent_result_or_corrupted_state(tmp_path: Path) -> None:
    api = _load()
    report = api.run_all(tmp_path, verbose=False)
    rows = report["rows"]
    assert len(rows) >= 100
    bad = [f"{c} / {name}: {kind} ({why})" for c, name, kind, why in rows if kind in api.BAD]
    assert not bad, "\n".join(bad)
    kinds = {kind for *_, kind, _ in rows}
    assert kinds <= {*api.GOOD, api.MISSED}, kinds
    statistical = {c.name for c in api.all_cases() if c.statistical}
    assert {name for _, name, kind, _ in rows if kind == api.MISSED} <= statistical
