"""A second synthetic domain: deterministic from its seed, really another site, same people."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from workbench.data.synth import generate
from workbench.data.synth.camera import make_cameras


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_domain_cameras_are_deterministic_and_differ() -> None:
    assert make_cameras(0, 1) == make_cameras(0, 1)
    assert make_cameras(0) == make_cameras(0, 0)
    a, b = make_cameras(0), make_cameras(0, 1)
    assert [c.scene for c in a] != [c.scene for c in b]
    assert [c.cast for c in a] != [c.cast for c in b]
    assert not any(c.neutral for c in b)
    assert make_cameras(0, 1) != make_cameras(0, 2) != make_cameras(1, 1)


@pytest.fixture(scope="module")
def domains(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("domains")
    kw = {"ids": 4, "seed": 2, "height": 64, "width": 32, "workers": 1, "progress": False}
    out = {}
    for name, domain in (("d0", 0), ("d1", 1), ("d1_again", 1)):
        generate(root / name, domain=domain, **kw)
        out[name] = root / name
    return out


@pytest.mark.slow
def test_second_domain_is_byte_identical_on_rerun(domains: dict[str, Path]) -> None:
    assert digest(domains["d1"]) == digest(domains["d1_again"])


@pytest.mark.slow
def test_second_domain_renders_the_same_people_elsewhere(domains: dict[str, Path]) -> None:
    d0, d1 = domains["d0"], domains["d1"]
    meta0, meta1 = (json.loads((d / "synth.json").read_text()) for d in (d0, d1))
    assert "domain" not in meta0 and meta1["domain"] == 1
    assert meta0["ids_train"] == meta1["ids_train"]
    assert (d0 / "attributes.csv").read_bytes() == (d1 / "attributes.csv").read_bytes()
    names = sorted(p.name for p in (d0 / "bounding_box_train").iterdir())
    assert names == sorted(p.name for p in (d1 / "bounding_box_train").iterdir())
    # backgrounds: mean absolute pixel difference over the non-person pixels
    diffs = []
    for name in names[:6]:
        a = cv2.imread(str(d0 / "bounding_box_train" / name)).astype(np.float32)
        b = cv2.imread(str(d1 / "bounding_box_train" / name)).astype(np.float32)
        diffs.append(np.abs(a - b).mean())
    assert min(diffs) > 10.0
