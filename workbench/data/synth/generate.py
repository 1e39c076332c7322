"""``generate``: render the synthetic pedestrian dataset in the Market-1501 folder layout.

    OUT/bounding_box_train/0002_c1s1_000451_01.jpg   train identities
    OUT/query/...  OUT/bounding_box_test/...         test identities (+ 0000 distractors, -1 junk)
    OUT/masks/<folder>/<stem>.png                    part labels (annotations.PART_LABELS)
    OUT/keypoints/<folder>.csv                       17 COCO keypoints per image
    OUT/attributes.csv                               pid, the 27 Market attributes, split
    OUT/market_attribute.mat                         the same in Lin et al.'s format
    OUT/synth.json                                   generator settings, cameras, counts
    OUT/counterfactuals.csv, OUT/counterfactuals/    with ``counterfactuals=N``: query images
                                                     rendered with one factor changed
                                                     (``counterfactual.py``)

``synth.json`` is written last, atomically; until then ``OUT/.synth-incomplete`` marks the folder
as an unfinished generation, which every reader refuses (``workbench.data.manifest``).

The same arguments give a byte-identical tree whatever the number of workers: every image draws
from its own random stream (``seeds.py``), every file is written whole, tables are sorted, and
nothing records a time or a path. Images are rendered in parallel processes, in chunks; each
worker writes its own JPEGs and masks and sends back only keypoints.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.data.annotations import (
    COCO_KEYPOINTS,
    KEYPOINT_DIR,
    MASK_DIR,
    PART_LABELS,
    write_keypoints,
)
from workbench.data.attributes import write_attribute_mat
from workbench.data.manifest import META_FILE, PARTIAL_FILE, check_complete
from workbench.data.schema import MARKET_ATTRIBUTES
from workbench.data.synth.camera import make_cameras
from workbench.data.synth.compose import Studio
from workbench.data.synth.counterfactual import (
    COUNTERFACTUAL_CSV,
    COUNTERFACTUAL_DIR,
    write_counterfactuals,
)
from workbench.data.synth.identity import ATTRIBUTE_NAMES, Identity, attribute_table
from workbench.data.synth.plan import FOLDERS, ImageSpec, Plan, make_plan
from workbench.data.synth.summary import SynthSummary
from workbench.fileio import atomic_write_text

GENERATOR_VERSION = "1.0"
DEFAULT_IDS = 500
MIN_HEIGHT, MIN_WIDTH = 64, 32
MAX_HEIGHT = 1024  # 4096x2048 took 4.3 GB per worker; ReID models use 256x128 to 384x192
ATTRIBUTE_CSV, ATTRIBUTE_MAT = "attributes.csv", "market_attribute.mat"
_OUTPUTS = (
    *FOLDERS, MASK_DIR, KEYPOINT_DIR, ATTRIBUTE_CSV, ATTRIBUTE_MAT, META_FILE, PARTIAL_FILE,
    COUNTERFACTUAL_DIR, COUNTERFACTUAL_CSV,
)  # fmt: skip

# per-process state of a worker: the studio, the identities and the output root
_WORKER: dict = {}
# what a worker sends back per chunk: (folder, name, (17, 3) keypoints) rows and stage timings
ChunkResult = tuple[list[tuple[str, str, np.ndarray]], dict[str, float]]


def _check_arguments(
    ids: int | None, seed: int, height: int, width: int, workers: int | None
) -> int:
    n = DEFAULT_IDS if ids is None else ids
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 2 <= n <= 9999:
        raise ValueError(
            f"ids={ids!r}: need an integer from 2 to 9999 identities (half train, half test; "
            f"pids are 4 digits); try ids=500"
        )
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r}: need a non-negative integer")
    for name, v in (("height", height), ("width", width)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise ValueError(f"{name}={v!r}: need a whole number of pixels")
    if height > MAX_HEIGHT:
        raise ValueError(
            f"height={height}: at most {MAX_HEIGHT} pixels (memory grows with the image area); "
            f"Market-1501 uses 128x64, models 256x128 to 384x192"
        )
    if height < MIN_HEIGHT or width < MIN_WIDTH:
        raise ValueError(
            f"height={height}, width={width}: images must be at least {MIN_HEIGHT}x{MIN_WIDTH} "
            f"pixels for the people to be drawable; Market-1501 uses 128x64, models 256x128"
        )
    if not 0.25 <= width / height <= 1.0:
        raise ValueError(
            f"height={height}, width={width}: pedestrian crops are taller than wide; use a width "
            f"between height/4 and height (Market-1501: width = height/2)"
        )
    if workers is not None and workers < 1:
        raise ValueError(f"workers={workers}: need at least 1 (or None for all cores)")
    return int(n)


def _prepare(out: Path) -> None:
    """Create ``out``; replace a previous synthetic dataset there; refuse any other content."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is a file; pass a folder path")
    if out.is_dir() and any(out.iterdir()):
        if not ((out / META_FILE).is_file() or (out / PARTIAL_FILE).is_file()):
            raise ValueError(
                f"{out}: folder is not empty and holds no {META_FILE}, so it is not a synthetic "
                f"dataset that may be overwritten; pass a new or empty folder"
            )
        for name in _OUTPUTS:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    for folder in FOLDERS:
        (out / folder).mkdir(parents=True, exist_ok=True)
        (out / MASK_DIR / folder).mkdir(parents=True, exist_ok=True)


def _init_worker(
    root: str, seed: int, height: int, width: int, identities: list[Identity], domain: int = 0
) -> None:
    cv2.setNumThreads(0)  # one process per core; OpenCV's own threads would compete
    studio = Studio(seed, height, width, domain)
    _WORKER.update(root=Path(root), studio=studio, identities=identities)


def _render_chunk(specs: list[ImageSpec]) -> ChunkResult:
    """Render, encode and write the images of ``specs``; return their keypoints and timings."""
    root, studio, identities = _WORKER["root"], _WORKER["studio"], _WORKER["identities"]
    times = {"render": 0.0, "encode": 0.0, "write": 0.0}
    out = []
    for spec in specs:
        t0 = time.perf_counter()
        ident = identities[spec.identity] if spec.identity >= 0 else None
        r = studio.render(spec, ident)
        t1 = time.perf_counter()
        ok1, jpg = cv2.imencode(
            ".jpg", r.image, [cv2.IMWRITE_JPEG_QUALITY, studio.cameras[spec.cam - 1].jpeg]
        )
        ok2, png = cv2.imencode(".png", r.labels, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not (ok1 and ok2):
            raise RuntimeError(f"OpenCV could not encode {spec.name}")
        t2 = time.perf_counter()
        _write_file(root / spec.folder / spec.name, jpg)
        _write_file(root / MASK_DIR / spec.folder / (spec.name[:-4] + ".png"), png)
        times["render"] += t1 - t0
        times["encode"] += t2 - t1
        times["write"] += time.perf_counter() - t2
        out.append((spec.folder, spec.name, r.keypoints))
    return out, times


def _write_file(path: Path, data: np.ndarray) -> None:
    """Write encoded bytes; an OSError (a full disk) names the file."""
    try:
        with open(path, "wb") as f:
            f.write(data.tobytes())
    except OSError as e:
        if e.errno is not None and e.filename is None:
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def _chunks(specs: list[ImageSpec], workers: int) -> list[list[ImageSpec]]:
    size = max(4, min(48, len(specs) // (8 * workers) or 1))
    return [specs[i : i + size] for i in range(0, len(specs), size)]


def _run(
    plan: Plan,
    root: Path,
    seed: int,
    height: int,
    width: int,
    workers: int,
    progress: bool,
    domain: int = 0,
) -> Iterator[ChunkResult]:
    """Render every image of ``plan``; yield (name rows, timings) per chunk (see ChunkResult)."""
    chunks = _chunks(plan.images, workers)
    args = (str(root), seed, height, width, plan.identities, domain)
    bar = tqdm(total=len(plan.images), unit="img", desc="synth", disable=not progress)
    try:
        if workers == 1:
            threads = cv2.getNumThreads()
            _init_worker(*args)
            try:
                for chunk in chunks:
                    res = _render_chunk(chunk)
                    bar.update(len(chunk))
                    yield res
            finally:
                cv2.setNumThreads(threads)
                _WORKER.clear()
        else:
            # fork is cheapest on Linux (workers inherit the imported modules); spawn elsewhere
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            with mp.get_context(method).Pool(workers, _init_worker, args) as pool:
                for res in pool.imap_unordered(_render_chunk, chunks):
                    bar.update(len(res[0]))
                    yield res
    finally:
        bar.close()


def _attribute_frequencies(identities: list[Identity]) -> dict[str, float]:
    freq: dict[str, float] = {}
    for attr in MARKET_ATTRIBUTES:
        values = np.array([ident.attributes[attr.name] for ident in identities])
        if attr.binary:
            freq[attr.name] = round(float(values.mean()), 4)
        else:
            for v, label in enumerate(attr.values):
                freq[f"{attr.name}:{label}"] = round(float((values == v).mean()), 4)
    return freq


def _write_tables(
    root: Path, plan: Plan, keypoints: dict[str, list[tuple[str, np.ndarray]]]
) -> None:
    for folder in FOLDERS:
        rows = sorted(keypoints.get(folder, []), key=lambda t: t[0])
        kp = np.stack([k for _, k in rows]) if rows else np.zeros((0, 17, 3), np.float32)
        write_keypoints(root / KEYPOINT_DIR / f"{folder}.csv", [n for n, _ in rows], kp)
    table = pd.DataFrame(attribute_table(plan.identities, plan.splits)).sort_values("pid")
    table.to_csv(root / ATTRIBUTE_CSV, index=False, lineterminator="\n")
    by_split = {
        s: table[table.split == s].set_index("pid")[list(ATTRIBUTE_NAMES)]
        for s in ("train", "test")
    }
    write_attribute_mat(root / ATTRIBUTE_MAT, by_split["train"], by_split["test"])


def _meta(plan: Plan, seed: int, height: int, width: int, domain: int = 0) -> dict:
    """The content of ``synth.json`` (no time, path or host: the file is reproducible)."""
    counts = {folder: plan.count(folder) for folder in FOLDERS}
    counts["distractors"] = sum(s.kind == "distractor" for s in plan.images)
    counts["junk"] = sum(s.kind == "junk" for s in plan.images)
    pids = {split: [i.pid for i, s in zip(plan.identities, plan.splits, strict=True) if s == split]
            for split in ("train", "test")}  # fmt: skip
    extra = {"domain": int(domain)} if domain else {}  # domain 0 files stay as they were
    return {
        **extra,
        "generator": "workbench.data.synth",
        "version": GENERATOR_VERSION,
        "seed": int(seed),
        "ids": len(plan.identities),
        "ids_train": pids["train"],
        "ids_test": pids["test"],
        "height": height,
        "width": width,
        "cameras": [c.to_json() for c in make_cameras(seed, domain)],
        "part_labels": {str(k): v for k, v in PART_LABELS.items()},
        "keypoints": list(COCO_KEYPOINTS),
        "attribute_schema": "market1501",
        "counts": counts,
    }


def generate(
    out: str | Path,
    ids: int | None = None,
    seed: int = 0,
    height: int = 256,
    width: int = 128,
    workers: int | None = None,
    progress: bool = True,
    domain: int = 0,
    counterfactuals: int = 0,
) -> SynthSummary:
    """Render ``ids`` synthetic identities (default 500; half train, half test) into ``out``.

    ``out`` must be new, empty, or a previous output of this function (which is replaced).
    ``workers``: processes (default: the usable cores). Returns a summary of what was written.
    ``domain``: 0 = the default cameras; 1, 2, ... = the same identities filmed at another
    site (other cameras, backgrounds and colour casts, ``camera.make_cameras``), for
    cross-domain studies; deterministic from ``(seed, domain)``.
    ``counterfactuals``: N > 0 also renders N query images with each factor of
    ``counterfactual.FACTORS`` changed (9 N pairs, ``OUT/counterfactuals.csv``).
    """
    n_ids = _check_arguments(ids, seed, height, width, workers)
    if not isinstance(domain, (int, np.integer)) or isinstance(domain, bool) or domain < 0:
        raise ValueError(f"domain={domain!r}: need a non-negative integer (0 = default cameras)")
    if not isinstance(counterfactuals, (int, np.integer)) or counterfactuals < 0:
        raise ValueError(f"counterfactuals={counterfactuals!r}: need a number of query images >= 0")
    root = Path(out)
    start = time.perf_counter()
    plan = make_plan(n_ids, seed, make_cameras(seed, domain))
    _prepare(root)
    # the marker first: it makes the folder ours (a rerun may replace it) and incomplete
    meta = _meta(plan, seed, height, width, domain)
    settings = {k: meta[k] for k in ("ids", "seed", "height", "width")}
    (root / PARTIAL_FILE).write_text(json.dumps(settings) + "\n", "utf-8")
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        workers = workers or os.cpu_count() or 1
    workers = max(1, min(workers, len(plan.images) // 16 or 1))
    keypoints: dict[str, list[tuple[str, np.ndarray]]] = defaultdict(list)
    stages = {"render": 0.0, "encode": 0.0, "write": 0.0}
    for rows, times in _run(plan, root, seed, height, width, workers, progress, domain):
        for folder, name, kp in rows:
            keypoints[folder].append((name, kp))
        for k, v in times.items():
            stages[k] += v
    t = time.perf_counter()
    _write_tables(root, plan, keypoints)
    if counterfactuals:
        studio = Studio(seed, height, width, domain)
        write_counterfactuals(root, plan, studio, counterfactuals, progress=progress)
    # the manifest last, whole: from now on the folder reads as a complete dataset
    atomic_write_text(root / META_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    (root / PARTIAL_FILE).unlink()
    stages["tables"] = time.perf_counter() - t
    counts = meta["counts"]
    return SynthSummary(
        root=root,
        seed=seed,
        height=height,
        width=width,
        ids_train=len(meta["ids_train"]),
        ids_test=len(meta["ids_test"]),
        images_train=counts["bounding_box_train"],
        images_query=counts["query"],
        images_gallery=counts["bounding_box_test"],
        distractors=counts["distractors"],
        junk=counts["junk"],
        attribute_frequencies=_attribute_frequencies(plan.identities),
        seconds=time.perf_counter() - start,
        workers=workers,
        stage_seconds={k: round(v, 3) for k, v in stages.items()},
    )


def _is_complete(root: Path, meta: dict) -> bool:
    """Marker gone, every table there and every folder holding the count of its manifest."""
    counts = {f: sum(1 for _ in os.scandir(root / f)) for f in FOLDERS if (root / f).is_dir()}
    try:
        check_complete(root, counts)
    except FileNotFoundError:
        return False
    return len(counts) == len(FOLDERS)


def ensure_synthetic(
    out: str | Path,
    ids: int | None = None,
    seed: int = 0,
    height: int = 256,
    width: int = 128,
    progress: bool = True,
    domain: int = 0,
) -> tuple[Path, SynthSummary | None]:
    """Reuse ``out`` when it already holds this exact dataset, else (re)generate it.

    "This exact dataset" = same generator version, seed, domain, number of identities and image
    size (generation is deterministic, so those pin every byte). Returns the folder and the summary
    of a fresh generation (``None`` when reused).
    """
    root = Path(out)
    meta_path = root / "synth.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        wanted = {
            "version": GENERATOR_VERSION,
            "seed": seed,
            "ids": _check_arguments(ids, seed, height, width, None),
            "height": height,
            "width": width,
        }
        same = all(meta.get(k) == v for k, v in wanted.items())
        if same and meta.get("domain", 0) == domain and _is_complete(root, meta):
            return root, None
    summary = generate(
        root, ids=ids, seed=seed, height=height, width=width, progress=progress, domain=domain
    )
    return root, summary


#: where ``workbench figures`` / ``explain`` / ``demo`` look for data when given none
DEFAULT_ROOT = Path("data/synth")


def ensure_default_dataset(
    root: str | Path = DEFAULT_ROOT, log: Callable[[str], None] = print
) -> Path:
    """The default synthetic dataset for commands run without ``--data``, saying which.

    A complete synthetic dataset already in ``root`` is used as it is (whatever its seed or
    size, e.g. the demo's); otherwise the default one (``DEFAULT_IDS`` identities, seed 0,
    256×128) is rendered there first, with a progress bar.
    """
    root = Path(root)
    meta_path = root / META_FILE
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if _is_complete(root, meta):
            log(
                f"no --data given: using the synthetic dataset in {root} ({meta['ids']} identities)"
            )
            return root
    log(
        f"no --data given: rendering the default synthetic dataset ({DEFAULT_IDS} identities, "
        f"seed 0, 256×128) into {root}; once — later runs reuse it"
    )
    ensure_synthetic(root)
    return root
