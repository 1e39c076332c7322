"""Counterfactual pedestrians: one image rendered twice, differing in exactly one factor.

The generator knows every pixel, so it can play XFR's "inpainting game" (Williford et al., ECCV
2020, ``stresearch/xfr``; ``reference/pairs.md`` §3) without an inpainting network: render an
image, change one factor of its identity or scene, render it again from the same random stream
(same pose, camera, placement, background crop, passers-by, occluders, exposure, noise and JPEG
quality) and compare. Factors (``FACTORS``):

* ``upper_colour``, ``lower_colour`` — the garment recoloured to another Market-1501 colour
  (the ``up<colour>`` / ``down<colour>`` one-hot attributes follow);
* ``hat``, ``bag``, ``backpack``, ``handbag``, ``hair`` — the binary attribute toggled (added when
  absent, removed when present; ``hair`` is Market's long hair). A handbag changes no pose: the
  counterfactual keeps the original's arms (``Studio.render(pose_of=...)``);
* ``shoes`` — the shoes recoloured (an identity detail the schema does not annotate);
* ``background`` — another background plate of the same camera behind the person; the person's
  pixels (part labels > 0 of the original) are copied from the original after the camera
  pipeline, so the change never touches them (their 1–2 px blur halo keeps the old scene).

The change mask is ``original != counterfactual`` on the camera pipeline's output, **before**
JPEG encoding: the pipeline's blur spreads an edit 1–3 px beyond the drawn shapes, and the mask
includes that. JPEG then spreads differences to the 8×8 blocks (16×16 for the subsampled colour
planes) that touch the mask; ``tests/data/test_counterfactual.py`` measures how far.

``write_counterfactuals`` writes, beside a synthetic dataset (deterministic from its seed)::

    DIR/counterfactuals/<factor>/<original stem>.jpg        the counterfactual image
    DIR/counterfactuals/masks/<factor>/<original stem>.png  the change mask (0 / 255)
    DIR/counterfactuals.csv                                 one row per pair (CSV_COLUMNS)

The originals are query images, already in ``DIR/query`` (the same render, byte for byte).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.data.schema import MARKET_LOWER_COLOURS, MARKET_UPPER_COLOURS
from workbench.data.synth import palette as pal
from workbench.data.synth import seeds
from workbench.data.synth.compose import Studio
from workbench.data.synth.identity import ATTRIBUTE_NAMES, Identity
from workbench.data.synth.plan import QUERY_DIR, ImageSpec, Plan

__all__ = [
    "COUNTERFACTUAL_CSV",
    "COUNTERFACTUAL_DIR",
    "CSV_COLUMNS",
    "FACTORS",
    "FACTOR_ATTRIBUTES",
    "Counterfactual",
    "add_counterfactuals",
    "choose_originals",
    "counterfactuals_of",
    "jpeg_round_trip",
    "render_counterfactual",
    "write_counterfactuals",
]

FACTORS: tuple[str, ...] = (
    "upper_colour", "lower_colour", "hat", "bag", "backpack", "handbag", "hair", "shoes",
    "background",
)  # fmt: skip
# the schema attributes each factor changes (empty: not annotated in the Market schema)
FACTOR_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "upper_colour": tuple(f"up{c}" for c in MARKET_UPPER_COLOURS),
    "lower_colour": tuple(f"down{c}" for c in MARKET_LOWER_COLOURS),
    "hat": ("hat",),
    "bag": ("bag",),
    "backpack": ("backpack",),
    "handbag": ("handbag",),
    "hair": ("hair",),
    "shoes": (),
    "background": (),
}
COUNTERFACTUAL_CSV = "counterfactuals.csv"
COUNTERFACTUAL_DIR = "counterfactuals"
CSV_COLUMNS = (
    "original", "counterfactual", "factor", "mask", "attribute", "old", "new", "pid", "camid",
    "area", "attributes",
)  # fmt: skip
COUNTERFACTUAL_STREAM = 9  # seeds stream: key (image index, factor index)
_BINARY = ("hat", "bag", "backpack", "handbag", "hair")


@dataclass
class Counterfactual:
    """Two renders of one image that differ in one factor (before JPEG encoding).

    ``attribute`` names what changed in the schema (a binary attribute, ``"upper colour"`` /
    ``"lower colour"`` for the one-hot colours, ``""`` for shoes and background); ``old`` and
    ``new`` are its values (``"0"``/``"1"``, colour names, ``#rrggbb`` for shoes, the plate).
    """

    original: np.ndarray  # (H, W, 3) uint8 BGR
    counterfactual: np.ndarray  # (H, W, 3) uint8 BGR
    mask: np.ndarray  # (H, W) bool: pixels that differ
    labels: np.ndarray  # (H, W) uint8 part labels of the original
    labels_after: np.ndarray  # (H, W) uint8 part labels of the counterfactual
    factor: str
    attribute: str
    old: str
    new: str
    attributes: dict[str, int]  # the counterfactual's 27 Market attributes
    jpeg: int  # the camera's JPEG quality

    @property
    def area(self) -> float:
        return float(self.mask.mean())


def _hex(bgr: tuple[int, int, int]) -> str:
    b, g, r = bgr
    return f"#{r:02x}{g:02x}{b:02x}"


def _one_hot_name(attributes: dict[str, int], prefix: str, names: tuple[str, ...]) -> str:
    return next(c for c in names if attributes[f"{prefix}{c}"])


def edit_identity(
    ident: Identity, factor: str, rng: np.random.Generator
) -> tuple[Identity, str, str, str]:
    """``(edited identity, attribute, old, new)`` for ``factor`` (not ``background``)."""
    a = dict(ident.attributes)
    if factor in ("upper_colour", "lower_colour"):
        prefix, names, palette, field = (
            ("up", MARKET_UPPER_COLOURS, pal.UPPER_PALETTE, "upper")
            if factor == "upper_colour"
            else ("down", MARKET_LOWER_COLOURS, pal.LOWER_PALETTE, "lower")
        )
        old = _one_hot_name(a, prefix, names)
        others = [c for c in names if c != old]
        new = others[int(rng.integers(len(others)))]
        a[f"{prefix}{old}"], a[f"{prefix}{new}"] = 0, 1
        colour = pal.bgr(pal.jitter_colour(palette[new], rng))
        group = "upper colour" if prefix == "up" else "lower colour"
        return dataclasses.replace(ident, attributes=a, **{field: colour}), group, old, new
    if factor in _BINARY:
        old_v = a[factor]
        a[factor] = 1 - old_v
        return dataclasses.replace(ident, attributes=a), factor, str(old_v), str(1 - old_v)
    if factor == "shoes":
        current = np.asarray(pal.bgr(ident.shoes)[::-1], float)  # BGR -> RGB
        options = [c for c in pal.SHOE_COLOURS if np.abs(np.asarray(c) - current).sum() > 150]
        colour = pal.bgr(pal.jitter_colour(options[int(rng.integers(len(options)))], rng))
        return dataclasses.replace(ident, shoes=colour), "", _hex(ident.shoes), _hex(colour)
    raise ValueError(f"unknown factor {factor!r}; factors: {', '.join(FACTORS)}")


def render_counterfactual(
    studio: Studio, spec: ImageSpec, ident: Identity, factor: str
) -> Counterfactual:
    """Render ``spec`` as it is and with ``factor`` changed (see the module doc)."""
    if factor not in FACTORS:
        raise ValueError(f"unknown factor {factor!r}; factors: {', '.join(FACTORS)}")
    rng = seeds.rng(studio.seed, COUNTERFACTUAL_STREAM, spec.index, FACTORS.index(factor))
    before = studio.render(spec, ident)
    if factor == "background":
        from workbench.data.synth.backgrounds import PLATES_PER_CAMERA

        plate = spec.plate + 1 + int(rng.integers(PLATES_PER_CAMERA - 1))
        other = dataclasses.replace(spec, plate=plate, plate_x=float(rng.uniform()))
        after = studio.render(other, ident)
        person = before.labels > 0
        after.image[person] = before.image[person]  # the person's pixels stay the original's
        edited, attribute = ident, ""
        old = f"plate {spec.plate % PLATES_PER_CAMERA} at x={spec.plate_x:.3f}"
        new = f"plate {plate % PLATES_PER_CAMERA} at x={other.plate_x:.3f}"
    else:
        edited, attribute, old, new = edit_identity(ident, factor, rng)
        after = studio.render(spec, edited, pose_of=ident)
    mask = (before.image != after.image).any(axis=2)
    return Counterfactual(
        original=before.image,
        counterfactual=after.image,
        mask=mask,
        labels=before.labels,
        labels_after=after.labels,
        factor=factor,
        attribute=attribute,
        old=old,
        new=new,
        attributes=dict(edited.attributes),
        jpeg=studio.cameras[spec.cam - 1].jpeg,
    )


def choose_originals(plan: Plan, count: int, seed: int) -> list[ImageSpec]:
    """``count`` query images of ``plan`` in a random order fixed by ``seed`` (all if fewer)."""
    queries = [s for s in plan.images if s.folder == QUERY_DIR and s.identity >= 0]
    order = seeds.rng(seed, COUNTERFACTUAL_STREAM).permutation(len(queries))
    return [queries[i] for i in order[:count]]


def _encode(ext: str, image: np.ndarray, params: list[int], name: str) -> bytes:
    ok, data = cv2.imencode(ext, image, params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {name}")
    return data.tobytes()


def write_counterfactuals(
    root: str | Path,
    plan: Plan,
    studio: Studio,
    count: int,
    factors: tuple[str, ...] = FACTORS,
    progress: bool = True,
) -> pd.DataFrame:
    """Render ``count`` query images of ``plan`` with every factor changed; write them under
    ``root`` (module doc) and return the ``counterfactuals.csv`` table (one row per pair)."""
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 1:
        raise ValueError(f"counterfactuals={count!r}: need a positive number of query images")
    unknown = sorted(set(factors) - set(FACTORS))
    if unknown:
        raise ValueError(f"unknown factors {unknown}; factors: {', '.join(FACTORS)}")
    root = Path(root)
    originals = choose_originals(plan, int(count), studio.seed)
    rows = []
    bar = tqdm(total=len(originals) * len(factors), desc="counterfactuals", disable=not progress)
    for spec in originals:
        ident = plan.identities[spec.identity]
        stem = spec.name[:-4]
        for factor in factors:
            cf = render_counterfactual(studio, spec, ident, factor)
            image = Path(COUNTERFACTUAL_DIR) / factor / f"{stem}.jpg"
            mask = Path(COUNTERFACTUAL_DIR) / "masks" / factor / f"{stem}.png"
            for rel, data in (
                (image, _encode(".jpg", cf.counterfactual, [cv2.IMWRITE_JPEG_QUALITY, cf.jpeg], stem)),
                (mask, _encode(".png", cf.mask.astype(np.uint8) * 255, [], stem)),
            ):  # fmt: skip
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(data)
            rows.append(
                {
                    "original": f"{spec.folder}/{spec.name}",
                    "counterfactual": image.as_posix(),
                    "factor": factor,
                    "mask": mask.as_posix(),
                    "attribute": cf.attribute,
                    "old": cf.old,
                    "new": cf.new,
                    "pid": spec.pid,
                    "camid": spec.cam,
                    "area": round(cf.area, 6),
                    "attributes": " ".join(str(cf.attributes[n]) for n in ATTRIBUTE_NAMES),
                }
            )
            bar.update(1)
    bar.close()
    table = pd.DataFrame(rows, columns=list(CSV_COLUMNS))
    table.to_csv(root / COUNTERFACTUAL_CSV, index=False, lineterminator="\n")
    return table


def _dataset(root: Path) -> tuple[Plan, Studio]:
    """The plan and studio of the synthetic dataset at ``root`` (from its ``synth.json``)."""
    import json

    from workbench.data.manifest import META_FILE, check_complete
    from workbench.data.synth.camera import make_cameras
    from workbench.data.synth.plan import make_plan

    check_complete(root, None)
    meta_path = root / META_FILE
    if not meta_path.is_file():
        raise ValueError(
            f"{root}: no {META_FILE}; counterfactuals are rendered beside a synthetic dataset "
            f"(workbench synth --out {root} --counterfactuals N)"
        )
    meta = json.loads(meta_path.read_text("utf-8"))
    seed, domain = int(meta["seed"]), int(meta.get("domain", 0))
    plan = make_plan(int(meta["ids"]), seed, make_cameras(seed, domain))
    return plan, Studio(seed, int(meta["height"]), int(meta["width"]), domain)


def counterfactuals_of(
    root: str | Path, index: int = 0, factors: tuple[str, ...] = FACTORS
) -> tuple[str, list[Counterfactual]]:
    """Render, in memory, the counterfactuals of the ``index``-th original that
    ``write_counterfactuals`` would write beside the dataset at ``root`` (the same pixels; no
    file is written). Returns the original's path relative to ``root`` and one
    :class:`Counterfactual` per factor (before JPEG; :func:`jpeg_round_trip` gives the files'
    pixels)."""
    plan, studio = _dataset(Path(root))
    spec = choose_originals(plan, index + 1, studio.seed)[-1]
    ident = plan.identities[spec.identity]
    return f"{spec.folder}/{spec.name}", [
        render_counterfactual(studio, spec, ident, f) for f in factors
    ]


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, 3) BGR uint8 as the dataset stores it: JPEG-encoded at ``quality`` and decoded."""
    data = _encode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality], "image")
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def add_counterfactuals(
    root: str | Path, count: int, factors: tuple[str, ...] = FACTORS, progress: bool = True
) -> pd.DataFrame:
    """``write_counterfactuals`` beside a complete synthetic dataset already on disk (its
    ``synth.json`` gives the seed, size, identities and domain the renders must match)."""
    plan, studio = _dataset(Path(root))
    return write_counterfactuals(root, plan, studio, count, factors, progress)
